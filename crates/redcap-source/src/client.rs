//! [`Client`]: POSTs REDCap API forms and reads their JSON answers, with retries of
//! transient failures and request counters.
//!
//! REDCap's API takes `application/x-www-form-urlencoded` POSTs; arrays are PHP-style
//! (`fields[0]=study_id&fields[1]=...`). The token travels in the body only, so it is in
//! no URL and no transport error's text.
//!
//! A transient failure (see [`crate::error`]) is retried `max_retries` times after 1 s,
//! 2 s, 4 s, ... (the base is settable for tests). The retry and back-off loop is the
//! same as `calpendo-source`'s `get_json`: a candidate for a shared helper (as are the
//! bounded body reading and the redirect policy below).
//!
//! Answers are bounded: a body is read chunk by chunk, at most `max_response_bytes`
//! (a `Content-Length` over it is refused before reading, an endless body is cut at the
//! limit: [`ResponseTooLarge`], not retried); an error answer's body is read only up to
//! [`ERROR_BODY_MAX`] for REDCap's message. A redirect is followed only when it keeps
//! the POST (307, 308) and goes to the API URL's own scheme, host and port, at most
//! [`MAX_REDIRECTS`](bounded_http::redirect::MAX_REDIRECTS) in a row; any other fails the request before anything is sent to its
//! target ([`RedirectRefused`](bounded_http::RedirectRefused)). reqwest resends the form, token included, on a 307 or
//! 308: so the token only ever goes to the configured server.

use std::sync::OnceLock;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use reqwest::header;
use serde_json::Value;
use worklist_store::source::ConfigFailure;
use worklist_store::source::Secret;
use worklist_store::{SourceError, SourceMetrics};

use bounded_http::{BodyError, Follow, Redirects, read_body};

use crate::error::{AttemptError, Request, ResponseTooLarge, error_chain};

/// The default back-off before the first retry (then doubled).
pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_secs(1);
/// The most bytes of an error answer read for REDCap's message (`{"error": "..."}`); a
/// longer one is answered without it.
pub const ERROR_BODY_MAX: u64 = 64 * 1024;

/// The redirect policy: follow a 307 or 308 to the first URL's origin (scheme, host,
/// port), at most [`bounded_http::redirect::MAX_REDIRECTS`] times; else fail with
/// [`bounded_http::RedirectRefused`] before anything is sent to the target.
fn redirect_policy() -> reqwest::redirect::Policy {
    Redirects {
        system: "REDCap",
        setting: "the API URL (REDCAP_API_URL or api_url)",
        follow: Follow::KeepingMethod,
    }
    .policy()
}

/// The `outcome` label values of the request counters, by index.
const OUTCOMES: [&str; 5] = ["2xx", "3xx", "4xx", "5xx", "error"];
const OUTCOME_ERROR: usize = 4;

/// The REDCap API client of one source.
#[derive(Debug)]
pub(crate) struct Client {
    source: String,
    http: reqwest::Client,
    url: String,
    token: Secret,
    max_retries: u32,
    max_response_bytes: u64,
    pub(crate) backoff_base: Duration,
    counters: OnceLock<[[Counter; OUTCOMES.len()]; Request::ALL.len()]>,
}

impl Client {
    /// A client POSTing to `url` with `token`, reading answers of at most
    /// `max_response_bytes`.
    pub(crate) fn new(
        source: &str,
        url: &str,
        token: Secret,
        timeout: Duration,
        max_retries: u32,
        max_response_bytes: u64,
    ) -> Result<Client, SourceError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("mwlbridge/", env!("CARGO_PKG_VERSION")))
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .redirect(redirect_policy())
            .build()
            .map_err(|e| {
                SourceError::Config(ConfigFailure::Setup {
                    message: format!(
                        "cannot build the HTTP client: {} (on a new machine: are the CA \
                         certificates installed? Debian: ca-certificates)",
                        error_chain(&e)
                    ),
                    source: Some(Box::new(e)),
                })
            })?;
        Ok(Client {
            source: source.to_string(),
            http,
            url: url.to_string(),
            token,
            max_retries,
            max_response_bytes,
            backoff_base: DEFAULT_BACKOFF_BASE,
            counters: OnceLock::new(),
        })
    }

    /// Counts requests in `metrics` from now on; a second call keeps the first counters.
    pub(crate) fn attach_metrics(&self, metrics: &SourceMetrics) {
        let counters = Request::ALL.map(|kind| {
            OUTCOMES.map(|outcome| metrics.requests(&self.source, kind.label(), outcome))
        });
        let _ = self.counters.set(counters);
    }

    fn count(&self, req: Request, outcome: usize) {
        if let Some(c) = self
            .counters
            .get()
            .and_then(|rows| rows.get(req as usize))
            .and_then(|row| row.get(outcome))
        {
            c.inc();
        }
    }

    /// The form body: the token first, then `params`.
    fn body(&self, params: &[(String, String)]) -> String {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("token", self.token.expose());
        for (k, v) in params {
            form.append_pair(k, v);
        }
        form.finish()
    }

    /// One attempt.
    async fn attempt(&self, body: &str, req: Request) -> Result<Value, AttemptError> {
        let sent = self
            .http
            .post(&self.url)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json")
            .body(body.to_string())
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                self.count(req, OUTCOME_ERROR);
                return Err(AttemptError::transport(e, req));
            }
        };
        let status = response.status();
        let limit = if status.is_success() {
            self.max_response_bytes
        } else {
            ERROR_BODY_MAX.min(self.max_response_bytes)
        };
        let body = read_body(response, limit).await;
        let by_status = usize::from((status.as_u16() / 100).clamp(2, 5) - 2);
        let body = match body {
            Ok(body) => {
                self.count(req, by_status);
                body
            }
            // An error answer too long for a message: answered without it.
            Err(BodyError::TooLarge { .. }) if !status.is_success() => {
                self.count(req, by_status);
                Vec::new()
            }
            Err(BodyError::TooLarge { announced, read }) => {
                self.count(req, OUTCOME_ERROR);
                return Err(AttemptError::too_large(ResponseTooLarge {
                    system: "REDCap",
                    request: req.what(),
                    limit,
                    key: "max_response_bytes",
                    announced,
                    read,
                }));
            }
            Err(BodyError::Transport(e)) => {
                self.count(req, OUTCOME_ERROR);
                return Err(AttemptError::transport(e, req));
            }
        };
        // As reqwest's `text()` read it: UTF-8, an invalid sequence replaced.
        let text = String::from_utf8_lossy(&body);
        if !status.is_success() {
            return Err(AttemptError::status(
                status,
                &text,
                req,
                self.token.expose(),
            ));
        }
        serde_json::from_str(&text).map_err(|e| {
            AttemptError::invalid(
                format!("the REDCap {} answer is not JSON: {e}", req.what()),
                Some(e),
            )
        })
    }

    /// POSTs `params` (the token is added), retrying transient failures.
    pub(crate) async fn post(
        &self,
        params: &[(String, String)],
        req: Request,
    ) -> Result<Value, SourceError> {
        let body = self.body(params);
        let mut retry = 0;
        loop {
            match self.attempt(&body, req).await {
                Ok(v) => return Ok(v),
                Err(e @ AttemptError::Final(_)) => return Err(e.exhausted(req, retry + 1)),
                Err(AttemptError::Transient { message, .. }) if retry < self.max_retries => {
                    let wait = self.backoff_base * 2u32.saturating_pow(retry);
                    tracing::debug!(
                        source = %self.source,
                        request = req.label(),
                        error = %message,
                        retry = retry + 1,
                        wait_ms = wait.as_millis() as u64,
                        "REDCap request failed; retrying"
                    );
                    tokio::time::sleep(wait).await;
                    retry += 1;
                }
                Err(e) => return Err(e.exhausted(req, retry + 1)),
            }
        }
    }
}
