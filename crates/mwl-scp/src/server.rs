//! The DICOM server ([`MwlServer`]): accepts TCP connections until shutdown and hands each
//! to `admission`; at shutdown, gives the open associations a grace period to finish.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use worklist_store::Store;

use crate::accept_errors::{AcceptErrors, Report};
use crate::admission::Admission;
use crate::context::Context;
use crate::metrics::ScpMetrics;

pub use crate::config::ScpConfig;
pub use crate::describe::tag_name;
pub use crate::dimse::sop_class::{MWL_FIND, VERIFICATION};

/// How long in-flight associations get to finish at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A Modality Worklist SCP over a worklist store. Clones share their association slots.
#[derive(Clone)]
pub struct MwlServer {
    admission: Arc<Admission>,
}

impl MwlServer {
    /// A server answering from `store`.
    pub fn new(config: ScpConfig, store: Store) -> MwlServer {
        MwlServer::with_context(Context {
            config: Arc::new(config),
            store,
            metrics: ScpMetrics::default(),
        })
    }

    fn with_context(cx: Context) -> MwlServer {
        MwlServer {
            admission: Arc::new(Admission::new(cx)),
        }
    }

    /// Records into `metrics` (which the caller registers for export) instead of the
    /// server's own unexported ones.
    pub fn with_metrics(self, metrics: ScpMetrics) -> MwlServer {
        let cx = Context {
            metrics,
            ..self.admission.context().clone()
        };
        MwlServer::with_context(cx)
    }

    /// Accepts associations on `listener` until `shutdown` turns true, then lets the open
    /// ones finish (up to a grace period) and returns.
    pub async fn serve(&self, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
        let mut tasks = JoinSet::new();
        let mut accept_errors = AcceptErrors::default();
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((socket, peer)) => {
                        if let Some((failed, lasted)) = accept_errors.succeeded(Instant::now()) {
                            tracing::info!(
                                failed,
                                lasted = ?lasted,
                                "accepting connections works again"
                            );
                        }
                        let admission = self.admission.clone();
                        tasks.spawn(async move { admission.connection(socket, peer).await });
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: back off, keep serving,
                        // and say so once per burst rather than once per failure.
                        let (report, wait) = accept_errors.failed(Instant::now());
                        match report {
                            Report::First => tracing::warn!(
                                error = %e,
                                "accepting a connection failed (further failures are \
                                 summarized once a minute; raise LimitNOFILE if this is \
                                 'Too many open files')"
                            ),
                            Report::Summary { failed } => tracing::warn!(
                                error = %e,
                                failed,
                                "accepting connections still fails"
                            ),
                            Report::Quiet => {}
                        }
                        tokio::time::sleep(wait).await;
                    }
                },
                _ = stopped(&mut shutdown) => break,
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        drop(listener);
        if !tasks.is_empty() {
            tracing::info!(
                open = tasks.len(),
                "waiting for open associations to finish"
            );
            let drain = async { while tasks.join_next().await.is_some() {} };
            if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
                tracing::warn!("associations still open after {SHUTDOWN_GRACE:?}; closing them");
                tasks.abort_all();
            }
        }
    }
}

/// Resolves when `shutdown` turns true (or its sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
