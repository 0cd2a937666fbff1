//! The database file's health: checked once at start ([`verify`]: SQLite's quick check
//! and a real write) and watched while serving ([`Watch`]).
//!
//! While serving, two things go wrong without SQLite saying so at once:
//! - the file is deleted or replaced under the running process (a restore copied over it,
//!   a cleanup job): SQLite keeps writing the unlinked file, and new connections would
//!   create or open a different one. [`Watch`] remembers the file's identity (device and
//!   inode) at open and compares it before every write; a write to a file that is no
//!   longer the one at the path is refused (`SQLITE_READONLY_DBMOVED`, SQLite's own code
//!   for it) and the problem is reported until the process is restarted;
//! - a write fails (disk full, I/O error, a read-only remount): [`Watch::failed`] keeps
//!   the last such failure until a later write succeeds.
//!
//! [`Store::problem`](crate::Store::problem) says what is wrong, for `/readyz`.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use jiff::Timestamp;
use rusqlite::{Connection, ErrorCode, TransactionBehavior};

use crate::error::StoreError;

/// What is wrong with the database while serving.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreProblem {
    /// The file at the path is gone.
    #[error(
        "the database file {0} was deleted while in use: writes are stopped; restore it \
         (or restart to start a new one)"
    )]
    Deleted(PathBuf),
    /// Another file is at the path now.
    #[error(
        "the database file {0} was replaced by another file while in use: writes are \
         stopped; restart mwlbridge to use the new file"
    )]
    Replaced(PathBuf),
    /// The newest write failed (and none succeeded since).
    #[error("the last write to the database failed at {at}: {reason}")]
    WriteFailed {
        /// When.
        at: Timestamp,
        /// SQLite's reason.
        reason: String,
    },
}

/// A file's identity: the same path may later name another file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity {
    device: u64,
    inode: u64,
}

impl Identity {
    fn of(path: &Path) -> std::io::Result<Identity> {
        let meta = std::fs::metadata(path)?;
        Ok(Identity {
            device: meta.dev(),
            inode: meta.ino(),
        })
    }
}

/// The database file's identity at open and the last failed write.
#[derive(Debug)]
pub(crate) struct Watch {
    path: PathBuf,
    identity: Option<Identity>,
    failed_write: Mutex<Option<(Timestamp, String)>>,
}

impl Watch {
    /// Watches the file at `path` as it is now.
    pub(crate) fn new(path: &Path) -> Watch {
        Watch {
            path: path.to_path_buf(),
            identity: Identity::of(path).ok(),
            failed_write: Mutex::new(None),
        }
    }

    /// Whether the file at the path is still the one opened.
    pub(crate) fn file_problem(&self) -> Option<StoreProblem> {
        let opened = self.identity?;
        match Identity::of(&self.path) {
            Ok(now) if now == opened => None,
            Ok(_) => Some(StoreProblem::Replaced(self.path.clone())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Some(StoreProblem::Deleted(self.path.clone()))
            }
            // Unreadable metadata (a permission change on the directory): the write
            // itself will say what is wrong.
            Err(_) => None,
        }
    }

    /// What is wrong now, if anything: the file first, then the last failed write.
    pub(crate) fn problem(&self) -> Option<StoreProblem> {
        self.file_problem().or_else(|| {
            self.failed_write
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                .map(|(at, reason)| StoreProblem::WriteFailed {
                    at: *at,
                    reason: reason.clone(),
                })
        })
    }

    /// Refuses a write when the file is no longer the one opened.
    pub(crate) fn before_write(&self) -> Result<(), rusqlite::Error> {
        match self.file_problem() {
            None => Ok(()),
            Some(problem) => Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_READONLY_DBMOVED),
                Some(problem.to_string()),
            )),
        }
    }

    /// Notes a failed write: a failure of the file or the disk is kept (until a later
    /// write succeeds); a refusal of the statement itself (a constraint, a lock held by
    /// another process) says nothing about the store's health.
    pub(crate) fn failed(&self, e: &rusqlite::Error) {
        if is_store_failure(e) {
            *self.failed_write.lock().unwrap_or_else(|p| p.into_inner()) =
                Some((Timestamp::now(), e.to_string()));
        }
    }

    /// Notes a write that succeeded.
    pub(crate) fn succeeded(&self) {
        *self.failed_write.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// Whether `e` means the file or the disk failed (not the statement).
fn is_store_failure(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(
            ErrorCode::DiskFull
                | ErrorCode::SystemIoFailure
                | ErrorCode::ReadOnly
                | ErrorCode::DatabaseCorrupt
                | ErrorCode::NotADatabase
                | ErrorCode::CannotOpen
        )
    )
}

/// The start-up check of the file behind `conn`: SQLite's `quick_check` must say `ok`,
/// and a real write (the schema version written again, committed) must succeed, so a
/// damaged, read-only or unwritable database is an error at start rather than a failure
/// of the first sync or MPPS message.
pub(crate) fn verify(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let damaged = |detail: String| StoreError::Damaged {
        path: path.to_path_buf(),
        detail,
    };
    let mut stmt = conn
        .prepare("PRAGMA quick_check(5)")
        .map_err(|e| damaged(e.to_string()))?;
    let findings: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect())
        .map_err(|e| damaged(e.to_string()))?;
    drop(stmt);
    if findings != ["ok"] {
        return Err(damaged(findings.join("; ")));
    }
    let unwritable = |source: rusqlite::Error| StoreError::Unwritable {
        path: path.to_path_buf(),
        source,
    };
    if conn
        .is_readonly(rusqlite::MAIN_DB)
        .map_err(|e| damaged(e.to_string()))?
    {
        return Err(unwritable(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_READONLY),
            Some("the file or its file system is read-only".into()),
        )));
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(unwritable)?;
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(unwritable)?;
    tx.pragma_update(None, "user_version", version)
        .map_err(unwritable)?;
    tx.commit().map_err(unwritable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    #[test]
    fn a_deleted_or_replaced_file_is_reported_and_stops_writes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("w.db");
        let store = Store::open(&path).expect("open");
        assert_eq!(store.problem(), None);
        std::fs::rename(&path, dir.path().join("moved.db")).expect("move it away");
        assert_eq!(store.problem(), Some(StoreProblem::Deleted(path.clone())));
        let refused = store.purge_ended_before(jiff::civil::date(2026, 1, 1).at(0, 0, 0, 0));
        let text = refused.expect_err("a write to a moved file").to_string();
        assert!(text.contains("was deleted while in use"), "{text}");
        assert!(!path.exists(), "nothing created at the path");
        std::fs::write(&path, b"").expect("another file at the path");
        assert_eq!(store.problem(), Some(StoreProblem::Replaced(path.clone())));
        // Readers never create a file: with the path gone, a read fails.
        std::fs::remove_file(&path).expect("remove");
        assert!(store.count().is_err(), "a read of a missing file fails");
        assert!(!path.exists(), "and creates nothing");
    }

    #[test]
    fn a_failed_write_is_kept_until_one_succeeds() {
        let dir = tempfile::tempdir().expect("tempdir");
        let watch = Watch::new(&dir.path().join("none.db"));
        let full = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        );
        watch.failed(&full);
        assert!(
            matches!(watch.problem(), Some(StoreProblem::WriteFailed { .. })),
            "{:?}",
            watch.problem()
        );
        let constraint = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT),
            None,
        );
        watch.failed(&constraint);
        assert!(
            watch.problem().is_some(),
            "a refused statement changes nothing"
        );
        watch.succeeded();
        assert_eq!(watch.problem(), None);
    }

    #[test]
    fn verify_refuses_a_damaged_or_read_only_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("w.db");
        drop(Store::open(&path).expect("create"));
        let mut conn = Connection::open(&path).expect("open");
        verify(&mut conn, &path).expect("a healthy file passes");
        drop(conn);
        let mut conn =
            Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .expect("open read-only");
        let err = verify(&mut conn, &path).expect_err("read-only");
        assert!(matches!(err, StoreError::Unwritable { .. }), "{err}");
        drop(conn);
        // Damage a page in the middle of the file.
        let mut bytes = std::fs::read(&path).expect("read");
        let page = 4096;
        assert!(bytes.len() > 3 * page, "{} bytes", bytes.len());
        for b in &mut bytes[2 * page..2 * page + 200] {
            *b = 0xA5;
        }
        std::fs::write(&path, &bytes).expect("write");
        let _ = std::fs::remove_file(dir.path().join("w.db-wal"));
        let _ = std::fs::remove_file(dir.path().join("w.db-shm"));
        let err = match Connection::open(&path) {
            Ok(mut conn) => verify(&mut conn, &path).expect_err("damaged"),
            Err(e) => panic!("open: {e}"),
        };
        assert!(matches!(err, StoreError::Damaged { .. }), "{err}");
    }
}
