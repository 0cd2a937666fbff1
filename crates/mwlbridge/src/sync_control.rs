//! "Sync now" for the admin interface: one channel per source into its worker loop. A
//! reload ([`WorkerControl::replace`]) swaps the sources and their channels.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use admin_http::{SourceInfo, SyncControl, SyncNow, SyncTriggerError};
use tokio::sync::{mpsc, oneshot};
use worklist_store::SyncRun;

use crate::sync_worker::{ScheduledSource, SyncRequest, SyncRequests};

/// The admin side: sends requests to the worker loops.
pub struct WorkerControl {
    current: RwLock<Channels>,
}

/// The sources of the running worker and a sender into each one's loop.
struct Channels {
    sources: Vec<SourceInfo>,
    senders: HashMap<String, mpsc::Sender<SyncRequest>>,
}

/// Requests queued per source at most. A request without a reply that finds the queue
/// full is dropped: the queued ones already run a cycle after it was made.
const QUEUE: usize = 16;

impl WorkerControl {
    /// Controls for `sources`, and the receivers their worker loops read.
    pub fn new(sources: &[ScheduledSource]) -> (WorkerControl, SyncRequests) {
        let (channels, receivers) = Channels::new(sources);
        let control = WorkerControl {
            current: RwLock::new(channels),
        };
        (control, receivers)
    }

    /// Controls for a new set of sources (a reload); the receivers are for the new worker
    /// loops. Requests to a source that is gone are refused as for an unknown one.
    pub fn replace(&self, sources: &[ScheduledSource]) -> SyncRequests {
        let (channels, receivers) = Channels::new(sources);
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = channels;
        receivers
    }

    fn sender(&self, source: &str) -> Option<mpsc::Sender<SyncRequest>> {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        current.senders.get(source).cloned()
    }
}

impl Channels {
    fn new(sources: &[ScheduledSource]) -> (Channels, SyncRequests) {
        let mut senders = HashMap::new();
        let mut receivers = HashMap::new();
        let mut infos = Vec::new();
        for s in sources {
            let name = s.source.name().to_string();
            let (tx, rx) = mpsc::channel(QUEUE);
            senders.insert(name.clone(), tx);
            receivers.insert(name.clone(), rx);
            infos.push(SourceInfo {
                name,
                interval: s.source.sync_interval(),
                stations: s.source.stations(),
            });
        }
        let channels = Channels {
            sources: infos,
            senders,
        };
        (channels, receivers)
    }
}

#[async_trait::async_trait]
impl SyncControl for WorkerControl {
    fn sources(&self) -> Vec<SourceInfo> {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        current.sources.clone()
    }

    async fn trigger(
        &self,
        source: &str,
        now: SyncNow,
    ) -> Result<Option<SyncRun>, SyncTriggerError> {
        let tx = self
            .sender(source)
            .ok_or_else(|| SyncTriggerError::UnknownSource(source.to_string()))?;
        if !now.wait {
            let request = SyncRequest {
                reply: None,
                accept_mass_change: now.accept_mass_change,
            };
            return match tx.try_send(request) {
                Ok(()) => Ok(None),
                // A full queue already holds a request that will run a cycle; an
                // acceptance must not be lost in it, so it waits for a place.
                Err(mpsc::error::TrySendError::Full(request)) if request.accept_mass_change => tx
                    .send(request)
                    .await
                    .map(|()| None)
                    .map_err(|_| SyncTriggerError::Stopping),
                Err(mpsc::error::TrySendError::Full(_)) => Ok(None),
                Err(mpsc::error::TrySendError::Closed(_)) => Err(SyncTriggerError::Stopping),
            };
        }
        let (reply, run) = oneshot::channel();
        let request = SyncRequest {
            reply: Some(reply),
            accept_mass_change: now.accept_mass_change,
        };
        tx.send(request)
            .await
            .map_err(|_| SyncTriggerError::Stopping)?;
        run.await.map(Some).map_err(|_| SyncTriggerError::Stopping)
    }
}
