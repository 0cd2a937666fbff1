//! The SQLite schema and its migrations, tracked with `PRAGMA user_version`.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use crate::error::StoreError;

/// Each migration moves the schema from version `index` to `index + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: worklist entries, one row per scheduled procedure step.
    r#"
    CREATE TABLE worklist_entries (
        id                              INTEGER PRIMARY KEY,
        source                          TEXT NOT NULL,
        source_record_id                TEXT NOT NULL,
        patient_name                    TEXT,
        patient_id                      TEXT NOT NULL,
        patient_birth_date              TEXT,
        patient_sex                     TEXT,
        patient_weight_kg               REAL,
        study_instance_uid              TEXT NOT NULL,
        accession_number                TEXT NOT NULL,
        study_description               TEXT,
        referring_physician_name        TEXT,
        requested_procedure_id          TEXT NOT NULL,
        requested_procedure_description TEXT,
        sps_id                          TEXT NOT NULL,
        station_ae_title                TEXT,
        station_name                    TEXT,
        sps_start_date                  TEXT NOT NULL,
        sps_start_time                  TEXT NOT NULL,
        sps_end_date                    TEXT,
        sps_end_time                    TEXT,
        modality                        TEXT,
        performing_physician_name       TEXT,
        sps_description                 TEXT,
        sps_location                    TEXT,
        status                          TEXT NOT NULL
            CHECK (status IN ('SCHEDULED', 'STARTED', 'COMPLETED', 'DISCONTINUED')),
        status_set_by                   TEXT NOT NULL
            CHECK (status_set_by IN ('sync', 'mpps', 'admin')),
        first_seen                      TEXT NOT NULL,
        last_updated                    TEXT NOT NULL,
        status_changed_at               TEXT NOT NULL,
        UNIQUE (source, source_record_id)
    );
    CREATE INDEX idx_entries_start    ON worklist_entries (sps_start_date, sps_start_time);
    CREATE INDEX idx_entries_station  ON worklist_entries (station_ae_title, sps_start_date);
    CREATE INDEX idx_entries_modality ON worklist_entries (modality, sps_start_date);
    CREATE INDEX idx_entries_patient  ON worklist_entries (patient_id);
    CREATE INDEX idx_entries_access   ON worklist_entries (accession_number);
    CREATE INDEX idx_entries_study    ON worklist_entries (study_instance_uid);
    CREATE INDEX idx_entries_status   ON worklist_entries (status, sps_start_date);
    "#,
    // 2: one row per sync cycle, for admins and health checks.
    r#"
    CREATE TABLE sync_runs (
        id            INTEGER PRIMARY KEY,
        source        TEXT NOT NULL,
        started_at    TEXT NOT NULL,
        finished_at   TEXT NOT NULL,
        outcome       TEXT NOT NULL CHECK (outcome IN ('success', 'failed')),
        window_start  TEXT,
        window_end    TEXT,
        fetched       INTEGER NOT NULL DEFAULT 0,
        inserted      INTEGER NOT NULL DEFAULT 0,
        updated       INTEGER NOT NULL DEFAULT 0,
        unchanged     INTEGER NOT NULL DEFAULT 0,
        discontinued  INTEGER NOT NULL DEFAULT 0,
        deleted       INTEGER NOT NULL DEFAULT 0,
        rejected      INTEGER NOT NULL DEFAULT 0,
        error         TEXT
    );
    CREATE INDEX idx_sync_runs_source ON sync_runs (source, started_at);
    "#,
    // 3: performed procedure steps reported by consoles (MPPS), and the worklist entries
    // each one performs.
    r#"
    CREATE TABLE performed_steps (
        id                INTEGER PRIMARY KEY,
        sop_instance_uid  TEXT NOT NULL UNIQUE,
        status            TEXT NOT NULL
            CHECK (status IN ('IN PROGRESS', 'COMPLETED', 'DISCONTINUED')),
        calling_ae        TEXT NOT NULL,
        attributes        BLOB NOT NULL,
        created_at        TEXT NOT NULL,
        updated_at        TEXT NOT NULL
    );
    CREATE TABLE performed_step_links (
        performed_step_id INTEGER NOT NULL REFERENCES performed_steps (id) ON DELETE CASCADE,
        entry_id          INTEGER NOT NULL REFERENCES worklist_entries (id) ON DELETE CASCADE,
        PRIMARY KEY (performed_step_id, entry_id)
    );
    CREATE INDEX idx_performed_links_entry ON performed_step_links (entry_id);
    "#,
    // 4: API tokens of the admin interface (only a hash of each secret is kept).
    r#"
    CREATE TABLE api_tokens (
        id            INTEGER PRIMARY KEY,
        name          TEXT NOT NULL,
        public_id     TEXT NOT NULL UNIQUE,
        role          TEXT NOT NULL CHECK (role IN ('read', 'write')),
        secret_hash   TEXT NOT NULL,
        created_at    TEXT NOT NULL,
        last_used_at  TEXT,
        revoked_at    TEXT
    );
    CREATE UNIQUE INDEX idx_api_tokens_active_name ON api_tokens (name)
        WHERE revoked_at IS NULL;
    "#,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The file's current schema version (0 for a new, empty file).
pub fn version(conn: &Connection) -> Result<i64, rusqlite::Error> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Brings the database up to [`SCHEMA_VERSION`], one transaction per migration.
pub fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    migrate_to(conn, path, SCHEMA_VERSION)
}

/// Brings the database up to `target` (tests use it to build older files).
pub(crate) fn migrate_to(
    conn: &mut Connection,
    path: &Path,
    target: i64,
) -> Result<(), StoreError> {
    // Each step reads the version inside an IMMEDIATE transaction (it takes the write
    // lock first), so two processes opening a new file at once cannot both apply the
    // same migration: the second waits on the lock (busy timeout), then sees the
    // version the first one wrote.
    loop {
        let step = |conn: &mut Connection| -> Result<Option<i64>, StoreError> {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let current = version(&tx)?;
            if current > SCHEMA_VERSION {
                return Err(StoreError::NewerSchema {
                    path: path.to_path_buf(),
                    found: current,
                    supported: SCHEMA_VERSION,
                });
            }
            if current >= target {
                return Ok(None);
            }
            let next = current + 1;
            let apply = || -> Result<(), rusqlite::Error> {
                tx.execute_batch(MIGRATIONS[current as usize])?;
                tx.pragma_update(None, "user_version", next)
            };
            apply().map_err(|source| StoreError::Migration {
                version: next,
                source,
            })?;
            tx.commit().map_err(|source| StoreError::Migration {
                version: next,
                source,
            })?;
            Ok(Some(next))
        };
        match step(conn)? {
            Some(version) => tracing::info!(version, "worklist database migrated"),
            None => break,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn tables(conn: &Connection) -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .expect("prepare");
        stmt.query_map([], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    }

    #[test]
    fn empty_file_migrates_to_current() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("w.db");
        let store = Store::open(&path).expect("open");
        drop(store);
        let conn = Connection::open(&path).expect("open");
        assert_eq!(version(&conn).expect("version"), SCHEMA_VERSION);
        assert_eq!(
            tables(&conn),
            [
                "api_tokens",
                "performed_step_links",
                "performed_steps",
                "sync_runs",
                "worklist_entries"
            ]
        );
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .expect("mode");
        assert_eq!(mode, "wal");
    }

    /// Two processes (here: threads with their own connections) opening a new file at
    /// once must not both apply migration 1 ("table already exists" was seen in CI when
    /// a test opened the file while `mwlbridge sync` did).
    #[test]
    fn concurrent_first_opens_migrate_once() {
        for round in 0..20 {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join(format!("w{round}.db"));
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let path = path.clone();
                    let barrier = barrier.clone();
                    std::thread::spawn(move || {
                        barrier.wait();
                        Store::open(&path).map(drop)
                    })
                })
                .collect();
            for h in handles {
                h.join()
                    .expect("thread")
                    .expect("every concurrent open succeeds");
            }
            let conn = Connection::open(&path).expect("open");
            assert_eq!(version(&conn).expect("version"), SCHEMA_VERSION);
        }
    }

    #[test]
    fn previous_version_migrates_and_keeps_its_rows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("w.db");
        {
            let mut conn = Connection::open(&path).expect("open");
            migrate_to(&mut conn, &path, SCHEMA_VERSION - 1).expect("old schema");
            assert_eq!(version(&conn).expect("version"), SCHEMA_VERSION - 1);
            conn.execute(
                "INSERT INTO worklist_entries (source, source_record_id, patient_id,
                    study_instance_uid, accession_number, requested_procedure_id, sps_id,
                    sps_start_date, sps_start_time, status, status_set_by, first_seen,
                    last_updated, status_changed_at)
                 VALUES ('calpendo', '7', 'SUB7', '2.25.7', '7', '7', '7', '20261126', '090000',
                    'STARTED', 'mpps', '2026-11-26T15:00:00Z', '2026-11-26T15:00:00Z',
                    '2026-11-26T15:00:00Z')",
                [],
            )
            .expect("insert");
        }
        let store = Store::open(&path).expect("migrates");
        let e = store.get("calpendo", "7").expect("get").expect("kept");
        assert_eq!(e.entry.status, crate::StepStatus::Started);
        assert_eq!(e.meta.status_set_by, crate::StatusSetBy::Mpps);
        assert!(store.recent_sync_runs(None, 1).expect("runs").is_empty());
        // Opening again is a no-op.
        drop(store);
        Store::open(&path).expect("reopen");
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("w.db");
        {
            let conn = Connection::open(&path).expect("open");
            conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
                .expect("pragma");
        }
        let err = Store::open(&path).expect_err("newer");
        assert!(matches!(err, StoreError::NewerSchema { .. }), "{err}");
        assert!(err.to_string().contains("newer than this mwlbridge"));
    }

    #[test]
    fn unopenable_path_names_the_file() {
        let err = Store::open("/nonexistent-dir/sub/w.db").expect_err("no dir");
        assert!(
            err.to_string().contains("/nonexistent-dir/sub/w.db"),
            "{err}"
        );
    }
}
