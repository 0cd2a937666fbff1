//! SQLite connections: how one is opened (WAL, busy timeout, foreign keys) and the pool a
//! [`Store`](crate::Store) keeps of them: one writer, and idle readers reused by reads.
//!
//! All connections are on one file in WAL mode, so reads never wait for a sync's write.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use crate::error::StoreError;
use crate::health::Watch;
use crate::read_model::ReadModel;

/// How many idle reader connections are kept.
const READER_POOL: usize = 8;
/// SQLite page cache of each reader connection, KiB (SQLite's default: 2000). Each
/// connection keeps its cache for life, so this multiplies by the readers in use; reads
/// that miss it are served from the OS page cache. Measured at 100,000 items: 1 MiB keeps
/// the indexed lookups' p99 of the 2 MiB default (256 KiB doubled it) and saves ~1 MB
/// resident per reader.
const READER_CACHE_KIB: i64 = 1024;
/// How long a statement waits for a lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether [`open`] may create the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Create {
    /// The writer, at `Store::open`: a missing file is created.
    Yes,
    /// Readers: the file must exist (a reader never creates an empty file where the
    /// database was deleted).
    No,
}

/// Opens a connection on the database file, in WAL mode.
pub(crate) fn open(path: &Path, create: Create) -> Result<Connection, StoreError> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create == Create::Yes {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let open = || -> Result<Connection, rusqlite::Error> {
        let conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        Ok(conn)
    };
    // Switching a file to WAL (and the WAL recovery of another connection's first open)
    // can answer SQLITE_BUSY without consulting the busy handler, so a process opening
    // the file while another one does gets a short retry loop of its own.
    let deadline = Instant::now() + BUSY_TIMEOUT;
    loop {
        match open() {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => {
                return other.map_err(|source| StoreError::Open {
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
    }
}

/// The connections of one database file: the writer (one write at a time) and a pool of
/// idle readers.
pub(crate) struct Connections {
    path: PathBuf,
    watch: Watch,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    /// The entries in memory, when enabled ([`Connections::read_model`]).
    read_model: ReadModel,
    read_model_enabled: std::sync::atomic::AtomicBool,
}

impl Connections {
    /// The pool of the file at `path`, whose writer connection is already open.
    pub(crate) fn new(path: PathBuf, writer: Connection) -> Connections {
        Connections {
            watch: Watch::new(&path),
            path,
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
            read_model: ReadModel::default(),
            read_model_enabled: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The read model of this file (used by scans once enabled).
    pub(crate) fn read_model(&self) -> &ReadModel {
        &self.read_model
    }

    /// Whether scans use the read model.
    pub(crate) fn read_model_enabled(&self) -> bool {
        self.read_model_enabled
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Makes scans use the read model from now on.
    pub(crate) fn enable_read_model(&self) {
        self.read_model_enabled
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// The database file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The file's health ([`Watch`]).
    pub(crate) fn watch(&self) -> &Watch {
        &self.watch
    }

    /// The writer connection (one writer at a time), unless the file at the path is no
    /// longer the one opened ([`Watch::before_write`]).
    pub(crate) fn writer(&self) -> Result<MutexGuard<'_, Connection>, rusqlite::Error> {
        self.watch.before_write()?;
        // A panic while holding the lock leaves the connection usable: SQLite rolls back
        // an unfinished transaction when it is dropped.
        Ok(self
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// Runs `f` on a reader connection from the pool (opened when none is idle).
    pub(crate) fn with_reader<R, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&Connection) -> Result<R, E>,
    ) -> Result<R, E> {
        let pooled = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match pooled {
            Some(c) => c,
            None => {
                let conn = open(&self.path, Create::No)?;
                // Negative: a size in KiB.
                conn.pragma_update(None, "cache_size", -READER_CACHE_KIB)
                    .map_err(StoreError::from)?;
                conn
            }
        };
        let result = f(&conn);
        let mut pool = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < READER_POOL {
            pool.push(conn);
        }
        result
    }
}
