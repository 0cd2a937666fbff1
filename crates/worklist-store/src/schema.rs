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
    // 5: the patient name's search key (crate::pn): its folded, normalized name when it
    // has one component group, and its number of groups (NULL: not computed yet, a row
    // written before this version; `Store::open` fills them in). Name queries with a
    // literal start read a range of this index. `store_settings` records which case
    // folding wrote the keys.
    r#"
    ALTER TABLE worklist_entries ADD COLUMN patient_name_key TEXT;
    ALTER TABLE worklist_entries ADD COLUMN patient_name_groups INTEGER;
    CREATE INDEX idx_entries_patient_name
        ON worklist_entries (patient_name_groups, patient_name_key);
    CREATE TABLE store_settings (
        name   TEXT PRIMARY KEY,
        value  TEXT NOT NULL
    );
    "#,
    // 6: the protocol code (Scheduled Protocol Code Sequence): code value, coding scheme
    // designator, code meaning. Rows written before read NULL: no protocol.
    r#"
    ALTER TABLE worklist_entries ADD COLUMN protocol_code_value TEXT;
    ALTER TABLE worklist_entries ADD COLUMN protocol_coding_scheme TEXT;
    ALTER TABLE worklist_entries ADD COLUMN protocol_code_meaning TEXT;
    "#,
    // 7: which rows of Pylantir's `worklist_items` were imported (crate::pylantir), and
    // what became of each: an entry (`imported`), an entry a sync had stored first
    // (`present`), or nothing (`skipped`).
    r#"
    CREATE TABLE pylantir_imports (
        pylantir_row_id   INTEGER PRIMARY KEY,
        outcome           TEXT NOT NULL CHECK (outcome IN ('imported', 'present', 'skipped')),
        source            TEXT,
        source_record_id  TEXT,
        imported_at       TEXT NOT NULL
    );
    "#,
    // 8: how many N-SETs each performed step has taken (crate::mpps), so the SCP can cap
    // them.
    r#"
    ALTER TABLE performed_steps ADD COLUMN set_count INTEGER NOT NULL DEFAULT 0;
    "#,
    // 9: a counter every change of worklist_entries bumps, in whichever process makes it,
    // so the read model (crate::read_model) knows when its copy is out of date.
    r#"
    CREATE TABLE worklist_generation (
        id  INTEGER PRIMARY KEY CHECK (id = 1),
        n   INTEGER NOT NULL
    );
    INSERT INTO worklist_generation (id, n) VALUES (1, 0);
    CREATE TRIGGER worklist_generation_insert AFTER INSERT ON worklist_entries
    BEGIN
        UPDATE worklist_generation SET n = n + 1 WHERE id = 1;
    END;
    CREATE TRIGGER worklist_generation_update AFTER UPDATE ON worklist_entries
    BEGIN
        UPDATE worklist_generation SET n = n + 1 WHERE id = 1;
    END;
    CREATE TRIGGER worklist_generation_delete AFTER DELETE ON worklist_entries
    BEGIN
        UPDATE worklist_generation SET n = n + 1 WHERE id = 1;
    END;
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
    // A file already at the target needs no write lock: opening the store while another
    // process writes (serve's sync while `mwlbridge token` runs) must not stall it.
    if version(conn)? == target {
        return Ok(());
    }
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
                "pylantir_imports",
                "store_settings",
                "sync_runs",
                "worklist_entries",
                "worklist_generation"
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
        assert_eq!(e.entry.protocol_code_value, None);
        assert_eq!(e.entry.protocol_coding_scheme, None);
        assert!(store.recent_sync_runs(None, 1).expect("runs").is_empty());
        // Opening again is a no-op.
        drop(store);
        Store::open(&path).expect("reopen");
    }

    /// The name search keys (schema version 5) of each row, by record id.
    fn name_keys(path: &Path) -> Vec<(String, Option<String>, Option<i64>)> {
        let conn = Connection::open(path).expect("open");
        let mut stmt = conn
            .prepare(
                "SELECT source_record_id, patient_name_key, patient_name_groups
                   FROM worklist_entries ORDER BY source_record_id",
            )
            .expect("prepare");
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    }

    fn insert_v4(conn: &Connection, id: &str, name: Option<&str>) {
        conn.execute(
            "INSERT INTO worklist_entries (source, source_record_id, patient_name, patient_id,
                study_instance_uid, accession_number, requested_procedure_id, sps_id,
                sps_start_date, sps_start_time, status, status_set_by, first_seen,
                last_updated, status_changed_at)
             VALUES ('calpendo', ?1, ?2, 'SUB', '2.25.7', ?1, ?1, ?1, '20261126', '090000',
                'SCHEDULED', 'sync', '2026-11-26T15:00:00Z', '2026-11-26T15:00:00Z',
                '2026-11-26T15:00:00Z')",
            rusqlite::params![id, name],
        )
        .expect("insert");
    }

    fn listed(store: &Store, prefixes: &[&str]) -> Vec<String> {
        let filter = crate::EntryFilter {
            patient_name_prefixes: prefixes.iter().map(|p| p.to_string()).collect(),
            ..Default::default()
        };
        let mut ids: Vec<String> = store
            .list(&filter)
            .expect("list")
            .into_iter()
            .map(|s| s.entry.source_record_id)
            .collect();
        ids.sort();
        ids
    }

    #[test]
    fn version_4_migrates_to_5_and_backfills_name_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("w.db");
        {
            let mut conn = Connection::open(&path).expect("open");
            migrate_to(&mut conn, &path, 4).expect("version 4");
            insert_v4(&conn, "1", Some("Simpson^Homer^^"));
            insert_v4(&conn, "2", Some(" SIMMONS ^ Élise"));
            insert_v4(&conn, "3", Some("Yamada^Tarou=山田^太郎"));
            insert_v4(&conn, "4", None);
            insert_v4(&conn, "5", Some("Élise^Anne"));
            insert_v4(&conn, "6", Some("^^"));
        }
        let store = Store::open(&path).expect("migrates");
        assert_eq!(store.count().expect("count"), 6);
        assert_eq!(
            store
                .get("calpendo", "2")
                .expect("get")
                .expect("kept")
                .entry
                .patient_name
                .as_deref(),
            Some(" SIMMONS ^ Élise")
        );
        assert_eq!(
            name_keys(&path),
            [
                ("1".into(), Some("simpson^homer".into()), Some(1)),
                ("2".into(), Some("simmons^élise".into()), Some(1)),
                ("3".into(), None, Some(2)),
                ("4".into(), None, Some(0)),
                ("5".into(), Some("élise^anne".into()), Some(1)),
                ("6".into(), None, Some(0)),
            ]
        );
        // The keys serve listings: a prefix range, plus the multi-group name.
        assert_eq!(listed(&store, &["sim"]), ["1", "2", "3"]);
        assert_eq!(listed(&store, &["simp"]), ["1", "3"]);
        assert_eq!(listed(&store, &["é"]), ["3", "5"]);
        assert_eq!(listed(&store, &["x", "simm"]), ["2", "3"]);
        assert_eq!(listed(&store, &[]).len(), 6);
        drop(store);
        // Reopening changes nothing.
        Store::open(&path).expect("reopen");
        assert_eq!(name_keys(&path)[0].1.as_deref(), Some("simpson^homer"));
    }

    #[test]
    fn rows_without_keys_stay_candidates_and_keys_of_another_folding_are_redone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("w.db");
        let store = Store::open(&path).expect("open");
        {
            let conn = Connection::open(&path).expect("open");
            // A row written by an older mwlbridge still running: no key yet.
            insert_v4(&conn, "1", Some("Simpson^Homer"));
            assert_eq!(name_keys(&path), [("1".into(), None, None)]);
        }
        assert_eq!(listed(&store, &["sim"]), ["1"]);
        assert_eq!(listed(&store, &["doe"]), ["1"]);
        drop(store);
        let store = Store::open(&path).expect("reopen");
        assert_eq!(
            name_keys(&path),
            [("1".into(), Some("simpson^homer".into()), Some(1))]
        );
        assert_eq!(listed(&store, &["doe"]), Vec::<String>::new());
        drop(store);
        // Keys written with another Unicode version's folding are all recomputed.
        {
            let conn = Connection::open(&path).expect("open");
            conn.execute_batch(
                "UPDATE store_settings SET value = 'unicode-0.0.0';
                 UPDATE worklist_entries SET patient_name_key = 'stale';",
            )
            .expect("update");
        }
        Store::open(&path).expect("reopen");
        assert_eq!(
            name_keys(&path),
            [("1".into(), Some("simpson^homer".into()), Some(1))]
        );
        let conn = Connection::open(&path).expect("open");
        let folding: String = conn
            .query_row("SELECT value FROM store_settings", [], |r| r.get(0))
            .expect("folding");
        assert_eq!(folding, crate::pn::fold_version());
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
