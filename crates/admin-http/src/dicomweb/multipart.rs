//! A `multipart/related` payload (RFC 2387, PS3.18 8.6.1.2): one part per representation,
//! each with its own `Content-Type`, between delimiters made of a boundary drawn at random
//! for each response.
//!
//! The body is `--{boundary}` CRLF, the part's header fields, CRLF, its bytes, CRLF, for
//! each part, then `--{boundary}--` CRLF. With no part (a search that matched nothing)
//! the body is empty: RFC 2046 has no multipart body without parts.

/// A multipart payload under construction.
pub(crate) struct Multipart {
    boundary: String,
    body: Vec<u8>,
    parts: usize,
}

impl Multipart {
    /// An empty payload with a fresh random boundary (128 random bits, in hex: it cannot
    /// occur in a part, whose XML or JSON never holds 32 hex digits after `--` at the
    /// start of a line by chance).
    pub(crate) fn new() -> Multipart {
        Multipart::with_boundary(format!("mwlbridge-{:032x}", rand::random::<u128>()))
    }

    fn with_boundary(boundary: String) -> Multipart {
        Multipart {
            boundary,
            body: Vec::new(),
            parts: 0,
        }
    }

    /// Adds a part of media type `content_type`.
    pub(crate) fn part(&mut self, content_type: &str, bytes: &[u8]) {
        self.body.extend_from_slice(b"--");
        self.body.extend_from_slice(self.boundary.as_bytes());
        self.body.extend_from_slice(b"\r\nContent-Type: ");
        self.body.extend_from_slice(content_type.as_bytes());
        self.body.extend_from_slice(b"\r\n\r\n");
        self.body.extend_from_slice(bytes);
        self.body.extend_from_slice(b"\r\n");
        self.parts += 1;
    }

    /// The payload's `Content-Type`: `multipart/related; type="{part_type}";
    /// boundary={boundary}` (`part_type` without parameters).
    pub(crate) fn content_type(&self, part_type: &str) -> String {
        format!(
            "multipart/related; type=\"{part_type}\"; boundary={}",
            self.boundary
        )
    }

    /// The body, closed.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        if self.parts > 0 {
            self.body.extend_from_slice(b"--");
            self.body.extend_from_slice(self.boundary.as_bytes());
            self.body.extend_from_slice(b"--\r\n");
        }
        self.body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_between_delimiters() {
        let mut m = Multipart::with_boundary("B".into());
        m.part("application/dicom+xml", b"<a/>");
        m.part("application/dicom+xml", b"<b/>");
        assert_eq!(
            m.content_type("application/dicom+xml"),
            "multipart/related; type=\"application/dicom+xml\"; boundary=B"
        );
        assert_eq!(
            m.finish(),
            b"--B\r\nContent-Type: application/dicom+xml\r\n\r\n<a/>\r\n\
              --B\r\nContent-Type: application/dicom+xml\r\n\r\n<b/>\r\n--B--\r\n"
        );
        assert!(Multipart::with_boundary("B".into()).finish().is_empty());
    }

    #[test]
    fn boundaries_differ() {
        let (a, b) = (Multipart::new(), Multipart::new());
        assert_ne!(a.boundary, b.boundary);
        assert!(a.boundary.len() <= 70, "RFC 2046 limit");
    }
}
