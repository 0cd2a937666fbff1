//! What every service handler is given: the server's settings, store and metrics
//! ([`Context`]), and the tally of its association for the association's log line
//! ([`AssocStats`]).

use std::collections::BTreeSet;
use std::sync::Arc;

use dicom_core::Tag;
use worklist_store::Store;

use crate::config::ScpConfig;
use crate::metrics::ScpMetrics;

/// The server's settings, store and metrics, shared by every association.
#[derive(Clone)]
pub(crate) struct Context {
    /// The settings.
    pub(crate) config: Arc<ScpConfig>,
    /// The worklist (and MPPS) store.
    pub(crate) store: Store,
    /// Where every handler records what it did.
    pub(crate) metrics: ScpMetrics,
}

/// What one association did, for its log line. Each handler counts its own service.
#[derive(Debug, Default)]
pub(crate) struct AssocStats {
    /// C-ECHO requests answered.
    pub(crate) echoes: u32,
    /// MPPS requests answered.
    pub(crate) mpps: u32,
    /// C-FIND requests answered.
    pub(crate) finds: u32,
    /// C-FIND pending responses sent.
    pub(crate) matched: u64,
    /// C-FINDs stopped by the peer's C-CANCEL.
    pub(crate) cancelled: u32,
    /// C-FINDs stopped at `max_responses`.
    pub(crate) truncated: u32,
    /// Requests answered with a failure status.
    pub(crate) failed: u32,
    /// Every key the C-FINDs asked for.
    pub(crate) keys: BTreeSet<Tag>,
}
