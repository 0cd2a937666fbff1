//! How a REDCap request fails: which request it was (`Request`), whether an attempt is
//! worth retrying (`AttemptError`), and the typed [`SourceError`] a failed request ends
//! the cycle with.
//!
//! HTTP 400, 401, 403 and 404 are configuration errors, never retried: REDCap's own
//! message (`{"error": "..."}`, which names fields or rights, never subject data) is kept,
//! with a hint. 5xx, 408, 429, timeouts and connection failures are retried. A body that
//! is not JSON, or JSON of the wrong shape, fails the cycle as an invalid response.
//! (The same classification as `calpendo-source`'s `error.rs`, which also tells TLS
//! failures apart; here a TLS failure is a transport failure.) A body over
//! `max_response_bytes` ([`ResponseTooLarge`]) fails the cycle as an invalid response, not
//! retried; a redirect that is not followed ([`RedirectRefused`]) is a configuration
//! error, not retried.

use reqwest::StatusCode;
use worklist_store::SourceError;
use worklist_store::source::{ConfigFailure, FetchFailure};

/// Which request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Request {
    /// `content=metadata`.
    Metadata,
    /// `content=record`.
    Records,
}

impl Request {
    /// Every kind, in the order of their index.
    pub(crate) const ALL: [Request; 2] = [Request::Metadata, Request::Records];

    /// The `kind` label of the request counters.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Request::Metadata => "metadata",
            Request::Records => "records",
        }
    }

    /// The request, for messages.
    pub(crate) fn what(self) -> &'static str {
        match self {
            Request::Metadata => "metadata (data dictionary)",
            Request::Records => "record export",
        }
    }
}

pub(crate) use bounded_http::find_cause;
pub use bounded_http::{RedirectRefusal, RedirectRefused, ResponseTooLarge};

/// One attempt's failure.
#[derive(Debug)]
pub(crate) enum AttemptError {
    /// Worth another attempt: the status, or the transport error, and a message.
    Transient {
        status: Option<u16>,
        message: String,
        source: Option<reqwest::Error>,
    },
    /// Final: the cycle fails with this.
    Final(SourceError),
}

impl AttemptError {
    /// The failure of a `req` that got no (complete) response.
    pub(crate) fn transport(e: reqwest::Error, req: Request) -> AttemptError {
        if let Some(refused) = find_cause::<RedirectRefused>(&e) {
            // A redirect is the server's answer, not a transient failure: never retried.
            return AttemptError::Final(SourceError::Config(ConfigFailure::Setup {
                message: format!("REDCap {} request: {refused}", req.what()),
                source: Some(Box::new(e)),
            }));
        }
        if e.is_builder() {
            return AttemptError::Final(SourceError::Config(ConfigFailure::Setup {
                message: format!("cannot build the REDCap request: {}", error_chain(&e)),
                source: Some(Box::new(e)),
            }));
        }
        AttemptError::Transient {
            status: None,
            message: error_chain(&e),
            source: Some(e),
        }
    }

    /// The failure of a non-success status; `body` is the answer's text, `token` is
    /// removed from any message built of it.
    pub(crate) fn status(
        status: StatusCode,
        body: &str,
        req: Request,
        token: &str,
    ) -> AttemptError {
        let code = status.as_u16();
        if status.is_server_error() || matches!(code, 408 | 429) {
            return AttemptError::Transient {
                status: Some(code),
                message: format!("HTTP {status}"),
                source: None,
            };
        }
        let said = serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .map(|m| redact(&m, token))
            .map_or_else(String::new, |m| format!(": {m:?}"));
        let hint = match code {
            401 | 403 => {
                "check the API token (REDCAP_API_TOKEN or api_token_file) and the \
                          user's API export rights"
            }
            404 => "check the API URL (REDCAP_API_URL or api_url; it ends in /api/)",
            _ => {
                "check field_mapping, the templates and the visit fields against the \
                  project's data dictionary"
            }
        };
        AttemptError::Final(SourceError::Config(ConfigFailure::Refused {
            status: code,
            message: format!(
                "REDCap refused the {} request with HTTP {status}{said}; {hint}",
                req.what()
            ),
        }))
    }

    /// The failure of a body over the limit: final (another attempt would read as much
    /// again).
    pub(crate) fn too_large(e: ResponseTooLarge) -> AttemptError {
        AttemptError::Final(SourceError::Fetch(FetchFailure::InvalidResponse {
            message: e.to_string(),
            source: Some(Box::new(e)),
        }))
    }

    /// The failure of an answer that is not what was asked for.
    pub(crate) fn invalid(message: String, source: Option<serde_json::Error>) -> AttemptError {
        AttemptError::Final(SourceError::Fetch(FetchFailure::InvalidResponse {
            message,
            source: source.map(|e| Box::new(e) as _),
        }))
    }

    /// The failure once retries are spent.
    pub(crate) fn exhausted(self, req: Request, attempts: u32) -> SourceError {
        match self {
            AttemptError::Final(e) => e,
            AttemptError::Transient {
                status,
                message,
                source,
            } => {
                let message = format!(
                    "REDCap {} request failed after {attempts} attempt{}: {message}",
                    req.what(),
                    if attempts == 1 { "" } else { "s" }
                );
                SourceError::Fetch(match (status, source) {
                    (_, Some(e)) => FetchFailure::Transport {
                        message,
                        source: Box::new(e),
                    },
                    (Some(status), None) => FetchFailure::Status { status, message },
                    (None, None) => FetchFailure::Status { status: 0, message },
                })
            }
        }
    }
}

/// `message` with every occurrence of the token replaced.
pub(crate) fn redact(message: &str, token: &str) -> String {
    if token.is_empty() {
        message.to_string()
    } else {
        message.replace(token, "<redacted>")
    }
}

/// An error and its sources, joined by `: `.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified() {
        let body = r#"{"error":"You do not have permissions to use the API (token SECRET)"}"#;
        match AttemptError::status(StatusCode::FORBIDDEN, body, Request::Records, "SECRET") {
            AttemptError::Final(SourceError::Config(ConfigFailure::Refused {
                status,
                message,
            })) => {
                assert_eq!(status, 403);
                assert!(message.contains("You do not have permissions"), "{message}");
                assert!(!message.contains("SECRET"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            AttemptError::status(StatusCode::BAD_GATEWAY, "", Request::Metadata, "t"),
            AttemptError::Transient {
                status: Some(502),
                ..
            }
        ));
        let e = AttemptError::status(StatusCode::SERVICE_UNAVAILABLE, "", Request::Metadata, "t")
            .exhausted(Request::Metadata, 4);
        assert!(matches!(
            e,
            SourceError::Fetch(FetchFailure::Status { status: 503, .. })
        ));
        assert!(e.to_string().contains("after 4 attempts"), "{e}");
    }
}
