//! Response bodies read under a size limit.

use std::fmt;

/// How reading a body failed.
#[derive(Debug)]
pub enum BodyError {
    /// Over the limit: announced in `Content-Length` (then nothing was read), or found
    /// while reading (`read` bytes, the last chunk included).
    TooLarge {
        /// The announced length, when that was over the limit.
        announced: Option<u64>,
        /// The bytes received when reading stopped.
        read: u64,
    },
    /// The body could not be read.
    Transport(reqwest::Error),
}

/// Reads a body of at most `limit` bytes, chunk by chunk: a `Content-Length` over the
/// limit is refused before reading, and reading stops at the first chunk that passes it
/// (so at most `limit` bytes and one chunk are ever held).
pub async fn read_body(mut response: reqwest::Response, limit: u64) -> Result<Vec<u8>, BodyError> {
    let announced = response.content_length();
    if let Some(n) = announced
        && n > limit
    {
        return Err(BodyError::TooLarge {
            announced: Some(n),
            read: 0,
        });
    }
    // Room for what is announced, up to 1 MiB; a larger body grows the buffer as it comes.
    let initial = announced.unwrap_or(0).min(1024 * 1024);
    let mut body = Vec::with_capacity(usize::try_from(initial).unwrap_or(0));
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        let read = (body.len() + chunk.len()) as u64;
        if read > limit {
            return Err(BodyError::TooLarge {
                announced: None,
                read,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A response body larger than its limit, as an error a source returns. The message names
/// the system, the request, the limit and its key, never the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseTooLarge {
    /// The source system, for messages (`Calpendo`, `REDCap`).
    pub system: &'static str,
    /// The request, for messages (`booking list`, `record export`).
    pub request: &'static str,
    /// The limit, in bytes.
    pub limit: u64,
    /// The key that sets it (`max_response_bytes`).
    pub key: &'static str,
    /// The `Content-Length` the server announced, when that was over the limit (then
    /// nothing was read).
    pub announced: Option<u64>,
    /// The bytes received when reading stopped (the last chunk included).
    pub read: u64,
}

impl fmt::Display for ResponseTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (system, request, key, limit) = (self.system, self.request, self.key, self.limit);
        match self.announced {
            Some(n) => write!(
                f,
                "the {system} {request} response announces {n} bytes (Content-Length), more \
                 than {key} allows ({limit} bytes): refused without reading it"
            ),
            None => write!(
                f,
                "the {system} {request} response is larger than {key} allows ({limit} \
                 bytes): reading stopped after {} bytes",
                self.read
            ),
        }
    }
}

impl std::error::Error for ResponseTooLarge {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_the_system_request_and_key() {
        let mut e = ResponseTooLarge {
            system: "REDCap",
            request: "record export",
            limit: 100,
            key: "max_response_bytes",
            announced: Some(500),
            read: 0,
        };
        assert_eq!(
            e.to_string(),
            "the REDCap record export response announces 500 bytes (Content-Length), more \
             than max_response_bytes allows (100 bytes): refused without reading it"
        );
        e.announced = None;
        e.read = 130;
        assert!(e.to_string().ends_with("reading stopped after 130 bytes"));
    }
}
