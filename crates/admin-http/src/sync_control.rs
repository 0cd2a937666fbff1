//! What the admin interface needs from the sync worker: the configured sources and a way
//! to run a source's sync now. The binary implements it over its worker.

use std::time::Duration;

use worklist_store::{KnownStation, SyncRun};

/// An enabled data source, as the admin interface shows it (disabled sources are not
/// built, so the interface never sees them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceInfo {
    /// The source's name.
    pub name: String,
    /// Its sync interval.
    pub interval: Duration,
    /// The stations its mapping names (the manual-entry form offers them).
    pub stations: Vec<KnownStation>,
}

/// Why a sync could not be triggered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SyncTriggerError {
    /// No enabled source has that name.
    #[error("no enabled source is called {0:?}")]
    UnknownSource(String),
    /// The worker is shutting down.
    #[error("the sync worker is stopping")]
    Stopping,
}

/// A "sync now" request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncNow {
    /// Wait for the run and return it.
    pub wait: bool,
    /// Run this one cycle without the mass-change guard: an admin checked the source
    /// after a refused cycle and accepts its changes.
    pub accept_mass_change: bool,
}

/// The sync worker, as the admin interface drives it.
#[async_trait::async_trait]
pub trait SyncControl: Send + Sync {
    /// Every enabled source.
    fn sources(&self) -> Vec<SourceInfo>;

    /// Asks for a sync of `source` now. With [`SyncNow::wait`], returns the run once it is
    /// recorded; without, returns at once (`Ok(None)`). A request made while a cycle of
    /// that source runs is served by the next cycle, which starts right after it.
    async fn trigger(
        &self,
        source: &str,
        now: SyncNow,
    ) -> Result<Option<SyncRun>, SyncTriggerError>;
}
