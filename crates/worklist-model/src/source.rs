//! The contract between data sources (Calpendo, ...) and the store.

use std::fmt;
use std::path::PathBuf;

use jiff::civil::DateTime;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};

use crate::model::WorklistEntry;

/// The error a cause is kept as, whatever the source's own error types.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a data source could not deliver entries.
///
/// Shown as `configuration error: …` or `fetch failed: …` (logs and the `sync_runs`
/// table keep that text); the variant inside says which cause it was.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The source is misconfigured (bad key, missing credential, rejected by the server
    /// as a bad request or bad credentials). Retrying will not help.
    #[error("configuration error: {0}")]
    Config(#[source] ConfigFailure),
    /// The fetch failed (network, server error, invalid response). The next cycle may work.
    #[error("fetch failed: {0}")]
    Fetch(#[source] FetchFailure),
}

/// Why a source's configuration does not work; the message says what to check.
///
/// Problems in the settings themselves never get here: they are found when the settings
/// are read, before a source exists, and reported as the config reader's problem list.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigFailure {
    /// The server refused a request as the settings make it: bad request (400), bad
    /// credentials (401), no permission (403), nothing at the configured path (404).
    #[error("{message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// What was refused and what to check.
        message: String,
    },
    /// The source could not set up a request: the HTTP client, a URL, a TLS handshake
    /// that cannot succeed (a refused certificate, plain HTTP on an https URL).
    #[error("{message}")]
    Setup {
        /// What could not be set up and what to check.
        message: String,
        /// The underlying error, when there is one.
        #[source]
        source: Option<BoxError>,
    },
}

/// Why a fetch failed; the next cycle may work.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchFailure {
    /// The server kept answering with an error status (after any retries).
    #[error("{message}")]
    Status {
        /// The last HTTP status.
        status: u16,
        /// Which request, how often it was tried, and the status.
        message: String,
    },
    /// No response came (connection refused, timeout, TLS, body cut off), after any
    /// retries.
    #[error("{message}")]
    Transport {
        /// Which request, how often it was tried, and what happened.
        message: String,
        /// The last attempt's error.
        #[source]
        source: BoxError,
    },
    /// A response came but could not be read (invalid JSON, an unexpected shape).
    #[error("{message}")]
    InvalidResponse {
        /// Which response and what is wrong with it.
        message: String,
        /// The parser's error, when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// The whole cycle did not finish within its deadline.
    #[error("{message}")]
    Deadline {
        /// The deadline and the last transient failure, if any.
        message: String,
    },
    /// The source is shutting down.
    #[error("{message}")]
    Stopped {
        /// What was stopped.
        message: String,
    },
}

/// The span of scheduled start times one fetch covers, in the site's local civil time,
/// half-open: `start <= step start < end`.
///
/// An entry of the source whose step starts inside the window and that the fetch did not
/// return has vanished from the source; entries outside are left alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncWindow {
    /// First local start time covered.
    pub start: DateTime,
    /// First local start time no longer covered.
    pub end: DateTime,
}

impl SyncWindow {
    /// Whether a local start time lies in the window.
    pub fn contains(&self, t: DateTime) -> bool {
        self.start <= t && t < self.end
    }
}

impl fmt::Display for SyncWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} to {}",
            self.start.strftime("%Y-%m-%d %H:%M"),
            self.end.strftime("%Y-%m-%d %H:%M")
        )
    }
}

/// What a sync does with a booking that was cancelled or vanished from the source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnCancel {
    /// Keep the entry with status DISCONTINUED (not offered to consoles by default).
    #[default]
    Discontinue,
    /// Remove the entry from the store.
    Delete,
}

impl fmt::Display for OnCancel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OnCancel::Discontinue => "discontinue",
            OnCancel::Delete => "delete",
        })
    }
}

/// The labels of one series of [`SourceMetrics`]: which source, which kind of request,
/// how it ended. Only the source's configured name and fixed words: nothing from a
/// booking.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The source's configured name.
    pub source: String,
    /// The kind of request (for Calpendo: `list`, `detail`, `operator`).
    pub kind: &'static str,
    /// The HTTP status class (`2xx`, `3xx`, `4xx`, `5xx`), or `error` when no response
    /// came (connection refused, timeout, TLS failure, body cut off).
    pub outcome: &'static str,
}

/// Counts of the requests data sources make to the systems they read, as one metric
/// family (`mwlbridge_source_requests_total{source, kind, outcome}`) shared by every
/// source, so that two sources never register the same metric twice. Clones share the
/// same counters.
#[derive(Debug, Clone, Default)]
pub struct SourceMetrics {
    requests: Family<RequestLabels, Counter>,
}

impl SourceMetrics {
    /// Fresh counters, not exported until [`SourceMetrics::register`].
    pub fn new() -> SourceMetrics {
        SourceMetrics::default()
    }

    /// Adds the family to `registry` under its full name (give it the root registry).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "mwlbridge_source_requests",
            "Requests data sources made to the systems they read, by source, kind and outcome",
            self.requests.clone(),
        );
    }

    /// The counter of one series, created (at zero) if new. Keep it: incrementing it
    /// is one atomic add, while this look-up takes a lock and allocates.
    pub fn requests(&self, source: &str, kind: &'static str, outcome: &'static str) -> Counter {
        self.requests.get_or_create_owned(&RequestLabels {
            source: source.to_string(),
            kind,
            outcome,
        })
    }
}

/// What a source takes from the site's settings rather than its own: its zone, where
/// zone rules come from, and which defaults apply. Its own `timezone` and `tzdir` keys,
/// when given, win.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteContext {
    /// The site's zone (IANA), when it is a valid one; `None`: `America/Edmonton`.
    pub timezone: Option<String>,
    /// The site's zoneinfo directory; `None`: the bundled tzdata.
    pub tzdir: Option<PathBuf>,
    /// Which defaults a source's keys take: mwlbridge's own, or Pylantir's.
    pub dialect: Dialect,
}

/// Which defaults apply to keys a config leaves out: mwlbridge's own, or Pylantir's for a
/// Pylantir JSON config (so a Pylantir site switches without editing its file).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Dialect {
    /// mwlbridge's own defaults (a TOML config).
    #[default]
    Mwlbridge,
    /// Pylantir's defaults (a Pylantir JSON config).
    Pylantir,
}

/// A credential: kept out of `Debug` output and messages.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The credential itself, for the HTTP `Authorization` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// What one fetch returned, and how much of the source it speaks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Fetched {
    /// Every entry whose step starts inside the cycle's window: a stored entry of the
    /// source in the window that is missing here is gone from the source.
    Complete(Vec<WorklistEntry>),
    /// Only entries that changed since the last committed cycle, wherever they start:
    /// nothing missing here is taken as gone.
    Changed(Vec<WorklistEntry>),
}

impl Fetched {
    /// The window the entries are complete for (`window` for [`Fetched::Complete`], none
    /// for changes only), and the entries.
    pub fn into_parts(self, window: &SyncWindow) -> (Option<&SyncWindow>, Vec<WorklistEntry>) {
        match self {
            Fetched::Complete(entries) => (Some(window), entries),
            Fetched::Changed(entries) => (None, entries),
        }
    }

    /// `complete` or `changed`, for logs.
    pub fn mode(&self) -> &'static str {
        match self {
            Fetched::Complete(_) => "complete",
            Fetched::Changed(_) => "changed",
        }
    }
}

/// A scanner a source books for, as its station mapping names it: the Scheduled Station
/// AE Title its entries carry and the Modality they carry with it (when the mapping gives
/// one). The status page offers these for manual entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownStation {
    /// Scheduled Station AE Title.
    pub ae_title: String,
    /// Modality of the station's entries, when the source's mapping gives one.
    pub modality: Option<String>,
}

/// A system that holds bookings and can list them as worklist entries.
#[async_trait::async_trait]
pub trait DataSource: Send + Sync {
    /// The source's configured name; entries carry it as their `source`.
    fn name(&self) -> &str;

    /// The window one sync cycle starting at `now` fetches, in the site's local time.
    fn sync_window(&self, now: jiff::Timestamp) -> SyncWindow;

    /// How long to wait between sync cycles.
    fn sync_interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs(60)
    }

    /// The stations the source's mapping names, each once, in configuration order (none
    /// when the source has no station mapping).
    fn stations(&self) -> Vec<KnownStation> {
        Vec::new()
    }

    /// What a sync does with cancelled and vanished bookings.
    fn on_cancel(&self) -> OnCancel {
        OnCancel::Discontinue
    }

    /// Fetches every entry whose step starts inside `window`, complete: a booking the
    /// result lacks is taken as gone from the source. On error nothing is changed.
    async fn fetch_entries(&self, window: &SyncWindow) -> Result<Vec<WorklistEntry>, SourceError>;

    /// What one sync cycle fetches: by default the complete window
    /// ([`DataSource::fetch_entries`]). A source that can ask for what changed since its
    /// last committed cycle overrides this and answers [`Fetched::Changed`] between
    /// complete fetches. On error nothing is changed.
    async fn fetch(&self, window: &SyncWindow) -> Result<Fetched, SourceError> {
        self.fetch_entries(window).await.map(Fetched::Complete)
    }

    /// Told after a cycle's fetch is in the store: `started_at` is when that cycle began,
    /// so a source that fetches changes knows what the store already holds. Not called
    /// for a failed cycle.
    fn cycle_committed(&self, started_at: jiff::Timestamp) {
        let _ = started_at;
    }

    /// Counts this source's requests in `metrics` from now on (labelled with its name).
    /// Called once, before syncing; sources that make no requests ignore it.
    fn attach_metrics(&self, metrics: &SourceMetrics) {
        let _ = metrics;
    }
}
