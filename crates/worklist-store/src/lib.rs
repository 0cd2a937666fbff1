//! mwlbridge's SQLite worklist store: keeps the worklist entries, reconciles each sync
//! against them, records MPPS status changes and answers the SCP's queries. The domain
//! model it stores ([`WorklistEntry`], [`StepStatus`], the [`DataSource`] contract, ...)
//! lives in `worklist-model`; it is re-exported here at its old paths.
//!
//! # Modules
//!
//! - [`store`]: [`Store`], the handle, and every operation on the database in one place:
//!   each method takes a connection, opens the transaction it needs and calls the module
//!   holding its SQL.
//! - `connections`: opening SQLite connections (WAL, busy timeout) and the pool: one
//!   writer, idle readers.
//! - [`schema`]: the tables and their migrations (`PRAGMA user_version`).
//! - `row`: the row codec of `worklist_entries`: selected columns, row → entry, entry →
//!   bound values; driven by the model's attribute table ([`TEXT_ATTRIBUTES`]).
//! - `name_keys`: the patient name's search-key columns, written with each entry and
//!   recomputed at open.
//! - `filter`: [`EntryFilter`], which entries a listing returns, and its SQL condition.
//! - `entries`: the SQL of `worklist_entries` (get, list, insert, update, status,
//!   delete, purge).
//! - [`stream`]: [`Snapshot`], one read transaction scanned row by row (the C-FIND path).
//! - [`read_model`]: the entries held in memory for [`Store::scan_entries`] (C-FIND's
//!   and the DICOMweb search's listings), kept fresh through `worklist_generation`.
//! - [`derived`]: bytes derived from entries (encoded C-FIND responses) kept with the read
//!   model's image, per shape, within a byte budget ([`Store::scan_entries_derived`]);
//!   `lent`: an entry such a scan lends ([`Lent`]), copied out of the image only when
//!   asked.
//! - [`reconcile`]: one fetch of a source applied to the stored entries; [`ReconcileCounts`].
//! - [`manual`]: manual entries of the administrator ([`MANUAL_SOURCE`]).
//! - [`mpps`]: performed procedure steps and the entries they link to.
//! - [`pylantir`]: Pylantir's `worklist_items` rows, read for an import, and the record
//!   of which were imported.
//! - [`sync_runs`]: the record of sync cycles.
//! - [`api_tokens`]: the admin interface's API tokens (hashes only).
//! - [`error`]: the error type, [`StoreError`] (one variant per cause).
//!
//! # Life of a sync cycle
//!
//! The binary's sync worker fetches a source's entries for a window and calls
//! [`Store::reconcile`] (in [`store`]), which takes the writer connection from
//! `connections`, opens one transaction and hands it to [`reconcile`]. There each
//! fetched entry is checked ([`WorklistEntry::problems`], driven by the model's attribute
//! table), looked up by its identity and inserted or updated through `entries`, whose
//! statements bind the values `row` lists (the name-key columns of `name_keys`
//! included); the source's stored entries in the window that the fetch lacks are then
//! discontinued or deleted. The transaction commits, and the query planner's statistics
//! are refreshed. The binary records the cycle with [`Store::record_sync_run`]
//! ([`sync_runs`]).
//!
//! # Who may change a status
//!
//! A status carries who set it ([`StatusSetBy`], stored in `status_set_by`). A sync sets
//! `sync`; [`mpps`] sets `mpps` on the entries a performed step links to (N-CREATE makes
//! them STARTED, N-SET COMPLETED or DISCONTINUED, mapped by
//! [`PerformedStatus::step_status`]); an administrator's [`Store::set_status`] or
//! [`manual`] entry sets `admin`. MPPS status protection lives in [`reconcile`]: before
//! changing, discontinuing or deleting a stored entry it asks
//! [`StatusSetBy::sync_may_change`], and keeps any status not set by a sync (the entry's
//! other values still follow the source).

pub mod api_tokens;
mod connections;
pub mod derived;
mod entries;
pub mod error;
mod filter;
pub mod health;
mod lent;
pub mod lock;
pub mod manual;
pub mod mpps;
mod name_keys;
pub mod pylantir;
pub mod read_model;
pub mod reconcile;
mod row;
pub mod schema;
pub mod store;
pub mod stream;
pub mod sync_runs;

// The model's modules, at their old paths (`worklist_store::validate::ae_problem`, ...).
pub use worklist_model::{
    datetime, fit, identifiers, model, pn, source, status, tidy, validate, zones,
};

pub use api_tokens::{TokenRecord, TokenRole, TokenStoreError};
pub use derived::Derived;
pub use error::StoreError;
pub use filter::EntryFilter;
pub use health::StoreProblem;
pub use lent::Lent;
pub use lock::{LockError, ServeLock};
pub use manual::{MANUAL_SOURCE, ManualEntryError};
pub use mpps::{CreatedLinks, LinkedSteps, MppsChange, MppsError, PerformedStep, ScheduledStepRef};
pub use pylantir::{ImportCounts, ImportItem, PylantirRow};
pub use reconcile::{Change, ChangeKind, MassChangeGuard, Preview, ReconcileCounts};
pub use store::Store;
pub use stream::{ScanEnd, Snapshot};
pub use sync_runs::{MASS_CHANGE_REFUSED, SyncOutcome, SyncRun};
pub use worklist_model::{
    DEFAULT_PROTOCOL_CODING_SCHEME, DEFAULT_TIMEZONE, DataSource, EntryMeta, Fetched, KnownStation,
    OnCancel, PerformedStatus, RequestLabels, SourceError, SourceMetrics, StatusSetBy, StepStatus,
    StoredEntry, SyncWindow, TEXT_ATTRIBUTES, TextAttribute, WorklistEntry, ZoneDb, ZoneError,
    format_da, format_tm, parse_da, parse_tm,
};
