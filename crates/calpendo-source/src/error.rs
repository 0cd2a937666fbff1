//! How a Calpendo request fails: which request it was ([`Request`]), whether an attempt is
//! worth retrying ([`AttemptError`], [`status_error`]), and the typed
//! [`worklist_store::SourceError`] a failed request ends the cycle with.
//!
//! HTTP 400, 401 and 403 are configuration errors (never retried); 5xx, 408, 429,
//! timeouts and connection failures are retried; a refused TLS certificate or plain HTTP
//! on an https URL is a configuration error; an invalid JSON body fails the cycle. A body
//! over `max_response_bytes` ([`ResponseTooLarge`]) fails the cycle as an invalid
//! response, not retried; a redirect that is not followed ([`RedirectRefused`]) is a
//! configuration error, not retried.

use reqwest::StatusCode;
use worklist_store::SourceError;
use worklist_store::source::{ConfigFailure, FetchFailure};

/// Which request failed, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Request {
    /// The booking list of a window.
    List,
    /// One booking's details.
    Detail,
    /// One MRI scan's operator.
    Operator,
}

impl Request {
    /// Every kind, in the order of their index.
    pub(crate) const ALL: [Request; 3] = [Request::List, Request::Detail, Request::Operator];

    /// The `kind` label value.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Request::List => "list",
            Request::Detail => "detail",
            Request::Operator => "operator",
        }
    }

    pub(crate) fn what(self) -> &'static str {
        match self {
            Request::List => "booking list",
            Request::Detail => "booking details",
            Request::Operator => "MRI operator",
        }
    }
}

pub(crate) use bounded_http::find_cause;
pub use bounded_http::{RedirectRefusal, RedirectRefused, ResponseTooLarge};

/// How a request failed, after any retries.
#[derive(Debug)]
pub(crate) enum Failure {
    /// HTTP 404.
    NotFound,
    /// Not worth retrying, and not the network's fault.
    Config(ConfigFailure),
    /// The network or the server failed (after retries), or sent something unreadable.
    Fetch(FetchFailure),
}

impl Failure {
    /// The error of the cycle this failure ends.
    pub(crate) fn into_source_error(self, req: Request) -> SourceError {
        match self {
            Failure::NotFound => SourceError::Config(ConfigFailure::Refused {
                status: 404,
                message: format!(
                    "Calpendo answered 404 Not Found for the {}: check base_url and api_path",
                    req.what()
                ),
            }),
            Failure::Config(c) => SourceError::Config(c),
            Failure::Fetch(f) => SourceError::Fetch(f),
        }
    }

    /// What failed, for a log line.
    pub(crate) fn message(&self) -> String {
        match self {
            Failure::NotFound => "HTTP 404 Not Found".into(),
            Failure::Config(c) => c.to_string(),
            Failure::Fetch(f) => f.to_string(),
        }
    }
}

/// A failure worth retrying: what it was, said for a log line.
#[derive(Debug)]
pub(crate) struct Transient {
    /// `HTTP 503 Service Unavailable`, or the transport error's chain.
    pub message: String,
    /// The cause.
    pub cause: TransientCause,
}

/// The cause of a [`Transient`] failure.
#[derive(Debug)]
pub(crate) enum TransientCause {
    /// An error status (5xx, 408, 429).
    Status(u16),
    /// No (complete) response.
    Transport(reqwest::Error),
}

impl Transient {
    /// The failure once retries are spent: `message` names the request and the attempts.
    pub(crate) fn into_failure(self, message: String) -> Failure {
        Failure::Fetch(match self.cause {
            TransientCause::Status(status) => FetchFailure::Status { status, message },
            TransientCause::Transport(e) => FetchFailure::Transport {
                message,
                source: Box::new(e),
            },
        })
    }
}

/// One attempt's failure.
#[derive(Debug)]
pub(crate) enum AttemptError {
    /// Worth another attempt.
    Transient(Transient),
    /// Final: no retry.
    Final(Failure),
}

impl AttemptError {
    /// The failure of a request that could not be sent.
    pub(crate) fn from_send(e: reqwest::Error, req: Request) -> AttemptError {
        if let Some(refused) = find_cause::<RedirectRefused>(&e) {
            // A redirect is the server's answer, not a transient failure: never retried.
            return AttemptError::Final(Failure::Config(ConfigFailure::Setup {
                message: format!("{} request: {refused}", req.what()),
                source: Some(Box::new(e)),
            }));
        }
        if e.is_builder() {
            AttemptError::Final(Failure::Config(ConfigFailure::Setup {
                message: format!(
                    "cannot build the {} request: {}",
                    req.what(),
                    error_chain(&e)
                ),
                source: Some(Box::new(e)),
            }))
        } else if let Some(tls) = tls_failure(&e) {
            // Retrying cannot fix a certificate or a scheme: a configuration error.
            AttemptError::Final(Failure::Config(ConfigFailure::Setup {
                message: tls,
                source: Some(Box::new(e)),
            }))
        } else if e.is_connect() {
            // The host and port only: the path may hold a booking id, never credentials.
            let target = e
                .url()
                .map(|u| {
                    let host = u.host_str().unwrap_or("?");
                    match u.port_or_known_default() {
                        Some(port) => format!("{host}:{port}"),
                        None => host.to_string(),
                    }
                })
                .unwrap_or_else(|| "the server".into());
            AttemptError::Transient(Transient {
                message: format!(
                    "cannot connect to {target} ({}); check base_url and that Calpendo is \
                     reachable from this machine",
                    error_chain(&e)
                ),
                cause: TransientCause::Transport(e),
            })
        } else {
            AttemptError::Transient(Transient {
                message: error_chain(&e),
                cause: TransientCause::Transport(e),
            })
        }
    }

    /// The failure of a response whose body could not be read.
    pub(crate) fn from_body(e: reqwest::Error) -> AttemptError {
        AttemptError::Transient(Transient {
            message: format!("reading the body: {}", error_chain(&e)),
            cause: TransientCause::Transport(e),
        })
    }

    /// The failure of a body over the limit: final (another attempt would read as much
    /// again).
    pub(crate) fn too_large(e: ResponseTooLarge) -> AttemptError {
        AttemptError::Final(Failure::Fetch(FetchFailure::InvalidResponse {
            message: e.to_string(),
            source: Some(Box::new(e)),
        }))
    }

    /// The failure of a body that is not JSON.
    pub(crate) fn from_json(e: serde_json::Error, req: Request) -> AttemptError {
        AttemptError::Final(Failure::Fetch(FetchFailure::InvalidResponse {
            message: format!("invalid JSON in the {} response: {e}", req.what()),
            source: Some(Box::new(e)),
        }))
    }
}

/// The TLS failure in an error chain, if it is one, said for a site admin.
fn tls_failure(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let tls = err.downcast_ref::<rustls::Error>().or_else(|| {
            err.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(t) = tls {
            return Some(match t {
                rustls::Error::InvalidCertificate(c) => format!(
                    "the Calpendo server's TLS certificate was refused ({c:?}); \
                     check base_url and the server's certificate chain"
                ),
                rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
                    "the TLS handshake failed: the server does not speak https at this \
                     address (check base_url's scheme and port)"
                        .to_string()
                }
                other => format!("the TLS handshake with the Calpendo server failed: {other}"),
            });
        }
        cur = err.source();
    }
    // The HTTP stack does not always hand the rustls error over as a source: its words.
    let text = error_chain(e);
    if text.contains("invalid peer certificate") {
        Some(format!(
            "the Calpendo server's TLS certificate was refused ({text}); check base_url and \
             the server's certificate chain"
        ))
    } else if text.contains("corrupt message") || text.contains("InvalidContentType") {
        Some(
            "the TLS handshake failed: the server does not speak https at this address \
             (check base_url's scheme and port)"
                .to_string(),
        )
    } else {
        None
    }
}

/// An error and its sources, each once, joined by `: `.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        let t = inner.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = inner.source();
    }
    s
}

/// How an error status is handled: a configuration error, a 404, worth a retry, or a
/// failure.
pub(crate) fn status_error(status: StatusCode, req: Request) -> AttemptError {
    let what = req.what();
    match status.as_u16() {
        400 => refused(
            400,
            format!(
                "Calpendo rejected the {what} request as malformed (HTTP 400): check \
                 api_path and status_filter"
            ),
        ),
        401 => refused(
            401,
            format!(
                "Calpendo refused the credentials for the {what} request (HTTP 401 \
                 Unauthorized): check CALPENDO_USERNAME and CALPENDO_PASSWORD"
            ),
        ),
        403 => refused(
            403,
            format!(
                "Calpendo denied the {what} request (HTTP 403 Forbidden): the account lacks \
                 permission"
            ),
        ),
        404 => AttemptError::Final(Failure::NotFound),
        s @ (408 | 429 | 500..) => AttemptError::Transient(Transient {
            message: format!("HTTP {status}"),
            cause: TransientCause::Status(s),
        }),
        s => AttemptError::Final(Failure::Fetch(FetchFailure::Status {
            status: s,
            message: format!("unexpected HTTP {status} for the {what} request"),
        })),
    }
}

fn refused(status: u16, message: String) -> AttemptError {
    AttemptError::Final(Failure::Config(ConfigFailure::Refused { status, message }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_errors_are_classified() {
        let is_config = |s: u16| {
            matches!(
                status_error(StatusCode::from_u16(s).unwrap(), Request::List),
                AttemptError::Final(Failure::Config(_))
            )
        };
        let is_transient = |s: u16| {
            matches!(
                status_error(StatusCode::from_u16(s).unwrap(), Request::List),
                AttemptError::Transient(_)
            )
        };
        assert!(is_config(400) && is_config(401) && is_config(403));
        assert!(is_transient(500) && is_transient(502) && is_transient(503) && is_transient(429));
        assert!(matches!(
            status_error(StatusCode::NOT_FOUND, Request::Detail),
            AttemptError::Final(Failure::NotFound)
        ));
        assert!(matches!(
            status_error(StatusCode::from_u16(418).unwrap(), Request::Detail),
            AttemptError::Final(Failure::Fetch(_))
        ));
    }
}
