//! The contract between data sources (Calpendo, ...) and the store.

use std::fmt;

use jiff::civil::DateTime;
use serde::{Deserialize, Serialize};

use crate::model::WorklistEntry;

/// Why a data source could not deliver entries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The source is misconfigured (bad key, missing credential, rejected by the server
    /// as a bad request or bad credentials). Retrying will not help.
    #[error("configuration error: {0}")]
    Config(String),
    /// The fetch failed (network, server error, invalid response). The next cycle may work.
    #[error("fetch failed: {0}")]
    Fetch(String),
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

/// A system that holds bookings and can list them as worklist entries.
#[async_trait::async_trait]
pub trait DataSource: Send + Sync {
    /// The source's configured name; entries carry it as their `source`.
    fn name(&self) -> &str;

    /// Checks the configuration (and the environment it needs) without touching the
    /// network; every problem is reported.
    fn validate_config(&self) -> Result<(), Vec<SourceError>>;

    /// The window one sync cycle starting at `now` fetches, in the site's local time.
    fn sync_window(&self, now: jiff::Timestamp) -> SyncWindow;

    /// How long to wait between sync cycles.
    fn sync_interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs(60)
    }

    /// What a sync does with cancelled and vanished bookings.
    fn on_cancel(&self) -> OnCancel {
        OnCancel::Discontinue
    }

    /// Fetches every entry whose step starts inside `window`, complete: a booking the
    /// result lacks is taken as gone from the source. On error nothing is changed.
    async fn fetch_entries(&self, window: &SyncWindow) -> Result<Vec<WorklistEntry>, SourceError>;
}
