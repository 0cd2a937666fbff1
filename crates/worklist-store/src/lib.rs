//! mwlbridge's worklist store: the source-neutral domain model ([`WorklistEntry`],
//! [`StepStatus`]), the [`DataSource`] contract, and the SQLite store that keeps the
//! entries, reconciles each sync against them and answers the SCP's queries.

pub mod api_tokens;
pub mod error;
pub mod identifiers;
pub mod manual;
pub mod model;
pub mod mpps;
pub mod pn;
pub mod reconcile;
pub mod schema;
pub mod source;
pub mod store;
pub mod stream;
pub mod sync_runs;
pub mod validate;
pub mod zones;

pub use api_tokens::{TokenRecord, TokenRole, TokenStoreError};
pub use error::StoreError;
pub use manual::{MANUAL_SOURCE, ManualEntryError};
pub use model::{EntryMeta, StatusSetBy, StepStatus, StoredEntry, WorklistEntry};
pub use mpps::{MppsError, PerformedStatus, PerformedStep, ScheduledStepRef};
pub use reconcile::ReconcileCounts;
pub use source::{DataSource, OnCancel, RequestLabels, SourceError, SourceMetrics, SyncWindow};
pub use store::{EntryFilter, Store, format_da, format_tm, parse_da, parse_tm};
pub use stream::{ScanEnd, Snapshot};
pub use sync_runs::{SyncOutcome, SyncRun};
pub use zones::{DEFAULT_TIMEZONE, ZoneDb, ZoneError};
