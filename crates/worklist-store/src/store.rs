//! [`Store`]: the handle on the worklist database, and every operation on it in one place.
//!
//! Each method takes a connection from the pool (`connections`: the writer, or a
//! reader), opens the transaction its operation needs, and calls the module that holds
//! that operation's SQL (`entries`, `reconcile`, `manual`, `mpps`, `pylantir`, `sync_runs`,
//! `api_tokens`, `stream`). Every method is blocking; async callers use [`Store::run`],
//! which moves the work to tokio's blocking pool.

use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use jiff::civil::DateTime;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use worklist_model::{
    Fetched, OnCancel, PerformedStatus, StatusSetBy, StepStatus, StoredEntry, SyncWindow,
    WorklistEntry,
};

use crate::api_tokens::{self, TokenRecord, TokenRole, TokenStoreError};
use crate::connections::{self, Connections, Create};
use crate::derived::Derived;
use crate::entries;
use crate::error::StoreError;
use crate::health::{self, StoreProblem};
use crate::lent::Lent;
use crate::manual::{self, MANUAL_SOURCE, ManualEntryError};
use crate::mpps::{
    self, CreatedLinks, LinkedSteps, MppsChange, MppsError, PerformedStep, ScheduledStepRef,
};
use crate::name_keys;
use crate::pylantir::{self, ImportCounts, ImportItem};
use crate::read_model::Wait;
use crate::reconcile::{self, Fetch, MassChangeGuard, Preview, ReconcileCounts};
use crate::schema;
use crate::stream::{self, ScanEnd, Snapshot};
use crate::sync_runs::{self, SyncOutcome, SyncRun};

// Old paths (`store::EntryFilter`, `store::format_da`, ...) of items that moved.
pub use crate::filter::EntryFilter;
pub use worklist_model::datetime::{format_da, format_tm, parse_da, parse_tm};

/// A handle on the worklist database. Cheap to clone; clones share connections.
#[derive(Clone)]
pub struct Store {
    connections: Arc<Connections>,
    /// Sync runs whose record failed (a full disk), written with the next one.
    unrecorded: Arc<Mutex<VecDeque<SyncRun>>>,
}

/// How many unrecorded sync runs are kept for a later write (the oldest dropped first).
const UNRECORDED_RUNS: usize = 100;

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.connections.path())
            .finish()
    }
}

/// Opening, and running work off the async threads.
impl Store {
    /// Opens (creating if needed) the database at `path` and migrates it to the current
    /// schema. The parent directory must exist.
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        let path = path.as_ref().to_path_buf();
        let mut writer = connections::open(&path, Create::Yes)?;
        schema::migrate(&mut writer, &path)?;
        name_keys::refresh(&mut writer)?;
        Ok(Store {
            connections: Arc::new(Connections::new(path, writer)),
            unrecorded: Arc::default(),
        })
    }

    /// Opens a private copy of the database at `original`, written to `copy` (a new file
    /// in a directory only this user can read: it holds health data), for work that must
    /// leave the original as it is (`mwlbridge sync --dry-run`). The copy is one
    /// consistent snapshot (SQLite's `VACUUM INTO`, which only reads the original and
    /// takes no write lock); a missing original gives an empty, new store.
    pub fn open_copy_of(original: &Path, copy: &Path) -> Result<Store, StoreError> {
        if original.exists() {
            let read = |source| StoreError::Open {
                path: original.to_path_buf(),
                source,
            };
            let conn = copy_reader(original).map_err(read)?;
            let target = copy.to_string_lossy();
            conn.execute("VACUUM INTO ?1", [target.as_ref()])
                .map_err(read)?;
        }
        Store::open(copy)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        self.connections.path()
    }

    /// Checks the file as a long-running command should at start: SQLite's quick check
    /// and a real write ([`health::verify`]). A damaged file is
    /// [`StoreError::Damaged`], one that cannot be written [`StoreError::Unwritable`].
    pub fn verify(&self) -> Result<(), StoreError> {
        let mut conn = self.connections.writer()?;
        health::verify(&mut conn, self.path())
    }

    /// What is wrong with the database now, if anything: the file deleted or replaced
    /// since it was opened, or the newest write failed ([`StoreProblem`]).
    pub fn problem(&self) -> Option<StoreProblem> {
        self.connections.watch().problem()
    }

    /// Notes how a write ended, for [`Store::problem`].
    fn observed<R>(&self, result: Result<R, StoreError>) -> Result<R, StoreError> {
        match &result {
            Ok(_) => self.connections.watch().succeeded(),
            Err(StoreError::Sqlite(e)) => self.connections.watch().failed(e),
            Err(_) => {}
        }
        result
    }

    /// Like [`Store::observed`], for a write's own SQLite result.
    fn watched<R>(&self, result: Result<R, rusqlite::Error>) -> Result<R, rusqlite::Error> {
        match &result {
            Ok(_) => self.connections.watch().succeeded(),
            Err(e) => self.connections.watch().failed(e),
        }
        result
    }

    /// Runs blocking store work on tokio's blocking pool, so the async runtime is never
    /// held up by SQLite.
    pub async fn run<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Store) -> Result<R, StoreError> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Runs `f` in a transaction on the writer connection and commits it when `f`
    /// succeeds; on error the transaction is rolled back and nothing changes.
    ///
    /// The transaction is IMMEDIATE: it takes the write lock before its first read. A
    /// deferred one that has read and then needs the lock while another process holds
    /// it (`mwlbridge sync`, `token`, a second `Store::open`) fails at once with
    /// "database is locked": SQLite calls the busy handler only for a transaction that
    /// has not read yet.
    fn write<R, E: From<rusqlite::Error>>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<R, E>,
    ) -> Result<R, E> {
        let mut conn = self.connections.writer()?;
        let tx = self.watched(conn.transaction_with_behavior(TransactionBehavior::Immediate))?;
        let result = f(&tx)?;
        self.watched(tx.commit())?;
        Ok(result)
    }
}

/// The connection [`Store::open_copy_of`] reads `path` with (it runs nothing but `VACUUM
/// INTO`). It is opened for reading and writing when this user may, so that, like the
/// service's own, it removes the WAL and shared-memory files it had to create when it
/// closes: a read-only connection leaves them behind, owned by whoever ran the command
/// (root's would lock the service out).
fn copy_reader(path: &Path) -> Result<Connection, rusqlite::Error> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).or_else(|_| {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        Connection::open_with_flags(path, flags)
    })?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    Ok(conn)
}

/// Worklist entries: reads (`entries`, [`stream`]) and status changes.
impl Store {
    /// The entry of `(source, record id)`, if stored.
    pub fn get(&self, source: &str, record_id: &str) -> Result<Option<StoredEntry>, StoreError> {
        self.connections
            .with_reader(|conn| entries::get(conn, source, record_id))
    }

    /// The entry with that row id, if stored.
    pub fn get_by_row_id(&self, row_id: i64) -> Result<Option<StoredEntry>, StoreError> {
        self.connections
            .with_reader(|conn| entries::get_by_row_id(conn, row_id))
    }

    /// Entries matching `filter`, ordered by scheduled start (all of them at once; see
    /// [`Store::scan_entries`] for one at a time).
    pub fn list(&self, filter: &EntryFilter) -> Result<Vec<StoredEntry>, StoreError> {
        self.connections
            .with_reader(|conn| entries::list(conn, filter))
    }

    /// Runs `f` inside one read transaction on a pooled reader connection and returns its
    /// result. The transaction ends when `f` returns (or panics); nothing `f` reads
    /// through the [`Snapshot`] sees a write committed after the snapshot's first read
    /// (see [`stream`]).
    ///
    /// Blocking, like every store method: async callers run it on the blocking pool.
    pub fn read_snapshot<R>(
        &self,
        f: impl FnOnce(&Snapshot<'_>) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        self.connections.with_reader(|conn| stream::read(conn, f))
    }

    /// Calls `f` with each entry matching `filter`, in listing order, from one committed
    /// state of the database: [`Snapshot::scan_entries`] in a snapshot of its own, or,
    /// once [`Store::enable_read_model`] was called and the model holds the database as
    /// it is now, the same entries from memory (see [`read_model`](crate::read_model)).
    /// The entry lent to `f` may be reused for the next one.
    pub fn scan_entries(
        &self,
        filter: &EntryFilter,
        mut f: impl FnMut(&StoredEntry) -> ControlFlow<()>,
    ) -> Result<ScanEnd, StoreError> {
        if self.connections.read_model_enabled()
            && let Some(image) = self
                .connections
                .read_model()
                .current(&self.connections, Wait::Yes)
        {
            return Ok(image.scan(filter, f));
        }
        self.read_snapshot(|snapshot| snapshot.scan_entries(filter, |e| f(&e)))
    }

    /// [`Store::scan_entries`], lending each entry ([`Lent`]: made into a [`StoredEntry`]
    /// only when asked) with its bytes derived in `shape`, a description of how the caller
    /// makes bytes from an entry (see [`derived`](crate::derived)): those kept from an
    /// earlier scan of the same entry in the same committed state, or a place to keep
    /// them. Entries read from SQLite have none ([`Derived::none`]).
    pub fn scan_entries_derived(
        &self,
        filter: &EntryFilter,
        shape: &[u8],
        mut f: impl FnMut(Lent<'_>) -> ControlFlow<()>,
    ) -> Result<ScanEnd, StoreError> {
        if self.connections.read_model_enabled()
            && let Some(image) = self
                .connections
                .read_model()
                .current(&self.connections, Wait::Yes)
        {
            return Ok(image.scan_derived(filter, Some(shape), f));
        }
        self.read_snapshot(|snapshot| {
            snapshot.scan_entries(filter, |e| f(Lent::entry_of(&e, Derived::none())))
        })
    }

    /// [`Store::scan_entries_derived`] from memory only, for a caller that must not wait
    /// (an async task): `None`, with nothing scanned, unless the read model holds the
    /// database as it is now and `filter` leaves at most `max_candidates` of its entries
    /// to look at (by its indexed column and dates). Never reads SQLite but for the
    /// freshness check (`PRAGMA data_version`, no table read), and never waits for one
    /// under way elsewhere: then it is `None` too.
    pub fn scan_resident_derived(
        &self,
        filter: &EntryFilter,
        shape: &[u8],
        max_candidates: usize,
        f: impl FnMut(Lent<'_>) -> ControlFlow<()>,
    ) -> Option<ScanEnd> {
        if !self.connections.read_model_enabled() {
            return None;
        }
        // Never waits on the async task: a check under way elsewhere (or the first one,
        // which opens its connection) leaves the query to a reader thread.
        let image = self
            .connections
            .read_model()
            .current(&self.connections, Wait::No)?;
        image.scan_candidates(filter, Some(shape), max_candidates, f)
    }

    /// Whether scans read the worklist from memory now: the read model is enabled and
    /// holds the database as it is (when it does not, a rebuild starts).
    pub fn read_model_is_current(&self) -> bool {
        self.connections.read_model_enabled()
            && self
                .connections
                .read_model()
                .current(&self.connections, Wait::Yes)
                .is_some()
    }

    /// Keeps the worklist in memory for [`Store::scan_entries`] from now on (`serve`),
    /// building it now. Every clone of this store shares it. Returns how many entries it
    /// holds (`None`: none, the store is too large or could not be read; scans then read
    /// the database, and the model is tried again after the next write).
    pub fn enable_read_model(&self) -> Option<usize> {
        let held = self.connections.read_model().build_now(&self.connections);
        self.connections.enable_read_model();
        held
    }

    /// How many entries the store holds.
    pub fn count(&self) -> Result<u64, StoreError> {
        self.connections.with_reader(entries::count)
    }

    /// How many entries the store holds in each status (statuses with none are absent).
    pub fn count_by_status(&self) -> Result<Vec<(StepStatus, u64)>, StoreError> {
        self.connections.with_reader(entries::count_by_status)
    }

    /// Sets an entry's status on behalf of `by` (MPPS or an administrator). A status set
    /// this way is never changed by a sync. Returns false when no such row exists.
    pub fn set_status(
        &self,
        row_id: i64,
        status: StepStatus,
        by: StatusSetBy,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let conn = self.connections.writer()?;
        self.observed(entries::set_status(
            &conn,
            row_id,
            status,
            by,
            &now.to_string(),
        ))
    }

    /// Removes entries whose step ended (or, without an end, started) before `cutoff`,
    /// local time. Returns how many were removed.
    pub fn purge_ended_before(&self, cutoff: DateTime) -> Result<usize, StoreError> {
        self.observed(entries::purge_ended_before(
            &*self.connections.writer()?,
            cutoff,
        ))
    }
}

/// Syncs ([`reconcile`]) and their record ([`sync_runs`]).
impl Store {
    /// Applies a complete fetch of `source` covering `window`:
    ///
    /// - new entries are inserted; stored ones are updated only when a value changed; a
    ///   new entry first takes over an entry imported from Pylantir for the same source,
    ///   Patient ID and start date whose record was not known ([`pylantir`]);
    /// - an entry the source reports DISCONTINUED (a cancelled booking), and a stored entry
    ///   of this source that starts inside `window` but is missing from `entries`, becomes
    ///   DISCONTINUED, or is deleted when `on_cancel` is [`OnCancel::Delete`];
    /// - a status set by MPPS or an administrator is never changed (nor is such an entry
    ///   deleted); the entry's other values still follow the source;
    /// - entries outside `window` are left alone.
    ///
    /// All of it happens in one transaction: on error nothing changes.
    pub fn reconcile(
        &self,
        source: &str,
        window: &SyncWindow,
        entries: Vec<WorklistEntry>,
        on_cancel: OnCancel,
        now: Timestamp,
    ) -> Result<ReconcileCounts, StoreError> {
        self.reconcile_in(
            source,
            Some(window),
            entries,
            on_cancel,
            now,
            MassChangeGuard::Off,
        )
    }

    /// Applies a fetch of only the entries of `source` that changed, by the rules of
    /// [`Store::reconcile`], except that nothing is taken as gone: an entry missing from
    /// `entries` is left as it is, wherever it starts. A changed entry the source reports
    /// DISCONTINUED is still discontinued (or deleted, with [`OnCancel::Delete`]).
    pub fn reconcile_changed(
        &self,
        source: &str,
        entries: Vec<WorklistEntry>,
        on_cancel: OnCancel,
        now: Timestamp,
    ) -> Result<ReconcileCounts, StoreError> {
        self.reconcile_in(source, None, entries, on_cancel, now, MassChangeGuard::Off)
    }

    /// One reconcile transaction: complete for `window`, or changes only (`None`).
    fn reconcile_in(
        &self,
        source: &str,
        window: Option<&SyncWindow>,
        entries: Vec<WorklistEntry>,
        on_cancel: OnCancel,
        now: Timestamp,
        guard: MassChangeGuard,
    ) -> Result<ReconcileCounts, StoreError> {
        let mut conn = self.connections.writer()?;
        // IMMEDIATE, as in `write` (which says why).
        let tx = self.watched(conn.transaction_with_behavior(TransactionBehavior::Immediate))?;
        let fetch = Fetch {
            source,
            window,
            on_cancel,
            now,
        };
        let counts = self.observed(reconcile::apply(&tx, &fetch, entries, guard))?;
        self.watched(tx.commit())?;
        if counts.changed_rows() {
            reconcile::refresh_statistics(&conn)?;
        }
        Ok(counts)
    }

    /// Applies what a source's fetch returned: [`Store::reconcile`] for a complete window
    /// (refused by `guard` when it would remove too much at once), or
    /// [`Store::reconcile_changed`] for changes only.
    pub fn apply_fetched(
        &self,
        source: &str,
        window: &SyncWindow,
        fetched: Fetched,
        on_cancel: OnCancel,
        now: Timestamp,
        guard: MassChangeGuard,
    ) -> Result<ReconcileCounts, StoreError> {
        let (window, entries) = fetched.into_parts(window);
        self.reconcile_in(source, window, entries, on_cancel, now, guard)
    }

    /// What [`Store::apply_fetched`] would change, each change listed, without changing
    /// anything: the reconcile runs in a transaction that is rolled back. A fetch that
    /// `guard` would refuse is still listed, with the refusal in [`Preview::refused`].
    /// Meant for a private copy ([`Store::open_copy_of`]): it holds the write lock while
    /// it runs.
    pub fn preview_fetched(
        &self,
        source: &str,
        window: &SyncWindow,
        fetched: Fetched,
        on_cancel: OnCancel,
        now: Timestamp,
        guard: MassChangeGuard,
    ) -> Result<Preview, StoreError> {
        let (window, entries) = fetched.into_parts(window);
        let fetch = Fetch {
            source,
            window,
            on_cancel,
            now,
        };
        let mut conn = self.connections.writer()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let preview = reconcile::preview(&tx, &fetch, entries, guard)?;
        tx.rollback()?;
        Ok(preview)
    }

    /// Records a finished sync cycle. When the write fails (a full disk, the file
    /// deleted), the run is kept in memory (the newest 100) and written, in order, with
    /// the next one that can be; the failure itself shows in [`Store::problem`].
    pub fn record_sync_run(&self, run: &SyncRun) -> Result<(), StoreError> {
        let mut queue = self.unrecorded.lock().unwrap_or_else(|p| p.into_inner());
        queue.push_back(run.clone());
        while queue.len() > UNRECORDED_RUNS {
            queue.pop_front();
        }
        let conn = self.connections.writer()?;
        while let Some(oldest) = queue.front() {
            self.observed(sync_runs::record(&conn, oldest))?;
            queue.pop_front();
        }
        Ok(())
    }

    /// The most recent sync runs, newest first, optionally of one source.
    pub fn recent_sync_runs(
        &self,
        source: Option<&str>,
        limit: usize,
    ) -> Result<Vec<SyncRun>, StoreError> {
        self.connections
            .with_reader(|conn| sync_runs::newest(conn, source, None, limit))
    }

    /// The newest successful sync run of `source`, if it ever had one.
    pub fn last_successful_sync(&self, source: &str) -> Result<Option<SyncRun>, StoreError> {
        let success = Some(SyncOutcome::Success);
        let mut runs = self
            .connections
            .with_reader(|conn| sync_runs::newest(conn, Some(source), success, 1))?;
        Ok(runs.pop())
    }
}

/// Manual entries of the administrator ([`manual`]).
impl Store {
    /// Stores a new manual entry (its status recorded as set by the administrator).
    pub fn create_manual(
        &self,
        entry: &WorklistEntry,
        now: Timestamp,
    ) -> Result<StoredEntry, ManualEntryError> {
        self.write(|tx| manual::create(tx, entry, now))
    }

    /// Replaces the values of an existing manual entry. A status change is recorded as
    /// set by the administrator.
    pub fn update_manual(
        &self,
        entry: &WorklistEntry,
        now: Timestamp,
    ) -> Result<StoredEntry, ManualEntryError> {
        self.write(|tx| manual::update(tx, entry, now))
    }

    /// Removes a manual entry; false when there was none with this id.
    pub fn delete_manual(&self, record_id: &str) -> Result<bool, StoreError> {
        self.observed(entries::delete_record(
            &*self.connections.writer()?,
            MANUAL_SOURCE,
            record_id,
        ))
    }
}

/// Pylantir's rows ([`pylantir`]).
impl Store {
    /// Stores the entries of a Pylantir import and records every row handled; a row an
    /// earlier import handled is left alone, so importing twice changes nothing.
    pub fn import_pylantir(
        &self,
        items: Vec<ImportItem>,
        now: Timestamp,
    ) -> Result<ImportCounts, StoreError> {
        let now = now.to_string();
        self.write(|tx| pylantir::import(tx, items, &now))
    }

    /// How many rows of Pylantir's `worklist_items` in this database no import handled.
    pub fn pylantir_pending(&self) -> Result<u64, StoreError> {
        self.connections.with_reader(pylantir::pending)
    }
}

/// Performed procedure steps reported by consoles ([`mpps`]).
impl Store {
    /// Stores a new performed step (N-CREATE) and links it to the worklist entries its
    /// references designate; they become STARTED, set by MPPS. With `station`, only
    /// entries scheduled on that station AE title are linked. An empty
    /// [`CreatedLinks::linked`] is an unscheduled scan, stored all the same.
    #[allow(clippy::too_many_arguments)]
    pub fn mpps_create(
        &self,
        sop_instance_uid: &str,
        calling_ae: &str,
        status: PerformedStatus,
        attributes: &[u8],
        refs: &[ScheduledStepRef],
        station: Option<&str>,
        now: Timestamp,
    ) -> Result<CreatedLinks, MppsError> {
        self.write(|tx| {
            mpps::create(
                tx,
                sop_instance_uid,
                calling_ae,
                status,
                attributes,
                refs,
                station,
                now,
            )
        })
    }

    /// Updates a performed step (N-SET): `decide` sees the step as stored and returns its
    /// new status and attributes (merged) and what its linked entries do: follow the
    /// status ([`LinkedSteps::FollowStatus`]) or, for a step discontinued because the
    /// wrong entry was selected, go back to SCHEDULED ([`LinkedSteps::Reschedule`]); or it
    /// refuses. Read, decision and write are one IMMEDIATE transaction, so concurrent
    /// N-SETs of one step never lose an update. Refused, with nothing changed, when the
    /// step is unknown or already final ([`MppsError`], converted into `E`) or when
    /// `decide` refuses. Returns the linked entries' row ids.
    pub fn mpps_modify<E: From<MppsError>>(
        &self,
        sop_instance_uid: &str,
        now: Timestamp,
        decide: impl FnOnce(&PerformedStep) -> Result<MppsChange, E>,
    ) -> Result<Vec<i64>, E> {
        let db = |e: rusqlite::Error| E::from(MppsError::from(e));
        let mut conn = self.connections.writer().map_err(db)?;
        let tx = self
            .watched(conn.transaction_with_behavior(TransactionBehavior::Immediate))
            .map_err(db)?;
        let linked = mpps::modify(&tx, sop_instance_uid, now, decide)?;
        self.watched(tx.commit()).map_err(db)?;
        Ok(linked)
    }

    /// [`Store::mpps_modify`] with a change decided beforehand.
    pub fn mpps_update(
        &self,
        sop_instance_uid: &str,
        status: PerformedStatus,
        attributes: &[u8],
        linked: LinkedSteps,
        now: Timestamp,
    ) -> Result<Vec<i64>, MppsError> {
        self.mpps_modify(sop_instance_uid, now, |_| {
            Ok::<_, MppsError>(MppsChange {
                status,
                attributes: attributes.to_vec(),
                linked,
            })
        })
    }

    /// The performed step with that SOP Instance UID.
    pub fn mpps_get(&self, sop_instance_uid: &str) -> Result<Option<PerformedStep>, StoreError> {
        self.connections
            .with_reader(|conn| mpps::get(conn, sop_instance_uid))
    }

    /// Removes performed steps not changed since before `cutoff`. Returns how many.
    pub fn purge_performed_before(&self, cutoff: Timestamp) -> Result<usize, StoreError> {
        self.observed(mpps::purge_before(&*self.connections.writer()?, cutoff))
    }
}

/// API tokens of the admin interface ([`api_tokens`]).
impl Store {
    /// Stores a new token.
    pub fn insert_token(
        &self,
        name: &str,
        public_id: &str,
        role: TokenRole,
        secret_hash: &str,
        now: Timestamp,
    ) -> Result<TokenRecord, TokenStoreError> {
        let conn = self.connections.writer().map_err(StoreError::from)?;
        api_tokens::insert(&conn, name, public_id, role, secret_hash, now)
    }

    /// The token with this public id, unless it was revoked.
    pub fn active_token(&self, public_id: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.connections
            .with_reader(|conn| api_tokens::active(conn, public_id))
    }

    /// Every token (revoked ones too), oldest first.
    pub fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        self.connections.with_reader(api_tokens::list)
    }

    /// Revokes the active token called `name`; false when there is none.
    pub fn revoke_token(&self, name: &str, now: Timestamp) -> Result<bool, StoreError> {
        api_tokens::revoke(&*self.connections.writer()?, name, now)
    }

    /// Records that a token was accepted.
    pub fn touch_token(&self, id: i64, now: Timestamp) -> Result<(), StoreError> {
        api_tokens::touch(&*self.connections.writer()?, id, now)
    }
}
