//! One serving process per database: [`ServeLock`], an advisory lock on a file beside the
//! database (`<database>.lock`, holding the holder's process id).
//!
//! Two `mwlbridge serve` on one database would both sync, both answer MPPS and race
//! each other's writes without an error. The lock is `flock(2)` on its own file (not on
//! the database: SQLite's own locks are `fcntl(2)` locks on it); the kernel releases it
//! when the process ends, however it ends, so a stale lock file is harmless. One-shot
//! commands (`sync --once`, `token`, ...) do not take it: SQLite serializes their writes.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it.
    #[error(
        "another mwlbridge serve (process {}) is already using the database {database}: \
         stop it first, or give this one another store.path",
        holder.map_or_else(|| "id unknown".to_string(), |p| p.to_string())
    )]
    Held {
        /// The database.
        database: PathBuf,
        /// The holder's process id, as it wrote it.
        holder: Option<u32>,
    },
    /// The lock file could not be created, read or written.
    #[error("cannot use the lock file {path}: {source}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The lock, held until dropped (or the process ends).
#[derive(Debug)]
pub struct ServeLock {
    _file: File,
    path: PathBuf,
}

impl ServeLock {
    /// Takes the lock of the database at `database`, or says who holds it.
    pub fn acquire(database: &Path) -> Result<ServeLock, LockError> {
        let mut name = database.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o640)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(LockError::Held {
                    database: database.to_path_buf(),
                    holder: text.trim().parse().ok(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        Ok(ServeLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("w.db");
        let first = ServeLock::acquire(&db).expect("first");
        assert!(first.path().ends_with("w.db.lock"));
        let err = ServeLock::acquire(&db).expect_err("second");
        match &err {
            LockError::Held { holder, .. } => assert_eq!(*holder, Some(std::process::id())),
            other => panic!("{other}"),
        }
        assert!(err.to_string().contains(&std::process::id().to_string()));
        drop(first);
        ServeLock::acquire(&db).expect("free again once dropped");
    }
}
