//! [`Client`]: POSTs REDCap API forms and reads their JSON answers, with retries of
//! transient failures and request counters.
//!
//! REDCap's API takes `application/x-www-form-urlencoded` POSTs; arrays are PHP-style
//! (`fields[0]=study_id&fields[1]=...`). The token travels in the body only, so it is in
//! no URL and no transport error's text.
//!
//! A transient failure (see [`crate::error`]) is retried `max_retries` times after 1 s,
//! 2 s, 4 s, ... (the base is settable for tests). The retry and back-off loop is the
//! same as `calpendo-source`'s `get_json`: a candidate for a shared helper.

use std::sync::OnceLock;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use reqwest::header;
use serde_json::Value;
use worklist_store::source::ConfigFailure;
use worklist_store::source::Secret;
use worklist_store::{SourceError, SourceMetrics};

use crate::error::{AttemptError, Request, error_chain};

/// The default back-off before the first retry (then doubled).
pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_secs(1);

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
    pub(crate) backoff_base: Duration,
    counters: OnceLock<[[Counter; OUTCOMES.len()]; Request::ALL.len()]>,
}

impl Client {
    /// A client POSTing to `url` with `token`.
    pub(crate) fn new(
        source: &str,
        url: &str,
        token: Secret,
        timeout: Duration,
        max_retries: u32,
    ) -> Result<Client, SourceError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("mwlbridge/", env!("CARGO_PKG_VERSION")))
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| {
                SourceError::Config(ConfigFailure::Setup {
                    message: format!("cannot build the HTTP client: {}", error_chain(&e)),
                    source: Some(Box::new(e)),
                })
            })?;
        Ok(Client {
            source: source.to_string(),
            http,
            url: url.to_string(),
            token,
            max_retries,
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
                return Err(AttemptError::transport(e));
            }
        };
        let status = response.status();
        let text = response.text().await;
        let outcome = match (&text, status.as_u16()) {
            (Err(_), _) => OUTCOME_ERROR,
            (Ok(_), code) => usize::from((code / 100).clamp(2, 5) - 2),
        };
        self.count(req, outcome);
        let text = text.map_err(AttemptError::transport)?;
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
