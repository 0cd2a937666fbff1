//! The store's error type.

use std::path::PathBuf;

/// What can go wrong in the worklist store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened or created.
    #[error("cannot open worklist database {path}: {source}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// SQLite's reason.
        #[source]
        source: rusqlite::Error,
    },
    /// SQLite's quick check found damage in the file.
    #[error(
        "the worklist database {path} is damaged ({detail}); restore it from a backup, or \
         move it away to start an empty one"
    )]
    Damaged {
        /// The database file.
        path: PathBuf,
        /// What the check found.
        detail: String,
    },
    /// The start-up write probe failed: the file, its directory or its file system
    /// cannot be written.
    #[error(
        "the worklist database {path} cannot be written ({source}); check the file's and \
         its directory's owner and mode, and that the disk is not full or read-only"
    )]
    Unwritable {
        /// The database file.
        path: PathBuf,
        /// SQLite's reason.
        #[source]
        source: rusqlite::Error,
    },
    /// The database was written by a newer mwlbridge.
    #[error(
        "worklist database {path} has schema version {found}, newer than this mwlbridge \
         understands ({supported}); upgrade mwlbridge or point it at another file"
    )]
    NewerSchema {
        /// The database file.
        path: PathBuf,
        /// `PRAGMA user_version` of the file.
        found: i64,
        /// The newest schema this build knows.
        supported: i64,
    },
    /// A migration failed; the database is left at its previous version.
    #[error("migrating the worklist database to schema version {version} failed: {source}")]
    Migration {
        /// The version being applied.
        version: i64,
        /// SQLite's reason.
        #[source]
        source: rusqlite::Error,
    },
    /// A query or statement failed.
    #[error("worklist database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored value could not be read back (the file was edited by hand or is damaged).
    #[error("worklist database holds an unreadable value in {column} of row {row_id}: {reason}")]
    Corrupt {
        /// Row id of the entry.
        row_id: i64,
        /// The column.
        column: &'static str,
        /// Why it cannot be read.
        reason: String,
    },
    /// A complete fetch would discontinue or delete too many of a source's entries at once
    /// ([`MassChangeGuard`](crate::reconcile::MassChangeGuard)); nothing was changed.
    #[error(
        "mass change refused: the fetch of {name} would discontinue or delete {removing} of \
         its {active} active entries in the window (more than {:.0}% at once): not applied, \
         nothing changed",
        max_fraction * 100.0
    )]
    MassChange {
        /// The source's name.
        name: String,
        /// Entries the fetch would discontinue or delete.
        removing: u64,
        /// The source's entries in the window a sync may change that were not
        /// discontinued before the fetch.
        active: u64,
        /// The largest share allowed.
        max_fraction: f64,
    },
    /// An entry handed to reconcile belongs to another source.
    #[error("entry {record_id} belongs to source {found:?}, not {expected:?}")]
    SourceMismatch {
        /// The source being reconciled.
        expected: String,
        /// The entry's source.
        found: String,
        /// The entry's record id.
        record_id: String,
    },
    /// A background database task panicked or was cancelled.
    #[error("worklist database task failed: {0}")]
    Task(String),
}
