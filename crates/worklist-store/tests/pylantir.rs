//! Pylantir's `worklist_items` rows: read as Pylantir wrote them, imported once, and a
//! provisional import taken over by its source's first sync (no twin, status kept).

use jiff::Timestamp;
use jiff::civil::date;
use worklist_store::pylantir::{PROVISIONAL_PREFIX, read_rows};
use worklist_store::{
    ImportCounts, ImportItem, OnCancel, StatusSetBy, StepStatus, Store, SyncWindow, WorklistEntry,
};

/// Pylantir 0.4.6's table, as SQLAlchemy creates it.
const PYLANTIR_SCHEMA: &str = "
    CREATE TABLE worklist_items (
        id INTEGER NOT NULL, study_instance_uid VARCHAR(100), patient_name VARCHAR(100),
        patient_id VARCHAR(50), patient_birth_date VARCHAR(8), patient_sex VARCHAR(1),
        patient_weight_lb VARCHAR(10), accession_number VARCHAR(50),
        referring_physician_name VARCHAR(100), modality VARCHAR(10),
        study_description VARCHAR(100), scheduled_station_aetitle VARCHAR(100),
        scheduled_start_date VARCHAR(8), scheduled_start_time VARCHAR(6),
        performing_physician VARCHAR(100), procedure_description VARCHAR(200),
        protocol_name VARCHAR(100), station_name VARCHAR(100),
        hisris_coding_designator VARCHAR(100), performed_procedure_step_status VARCHAR,
        data_source VARCHAR(255), source_record_id VARCHAR(255),
        PRIMARY KEY (id),
        CONSTRAINT uq_worklist_source_record UNIQUE (data_source, source_record_id)
    );";

fn now() -> Timestamp {
    Timestamp::from_second(1_795_000_000).expect("timestamp")
}

fn pylantir_file(dir: &std::path::Path, schema: &str, rows: &str) -> std::path::PathBuf {
    let path = dir.join("worklist.db");
    let conn = rusqlite::Connection::open(&path).expect("open");
    conn.execute_batch(schema).expect("schema");
    conn.execute_batch(rows).expect("rows");
    path
}

#[test]
fn rows_read_as_pylantir_wrote_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = pylantir_file(
        dir.path(),
        PYLANTIR_SCHEMA,
        "INSERT INTO worklist_items (id, patient_id, patient_weight_lb, scheduled_start_date,
             scheduled_start_time, data_source, source_record_id, patient_name)
         VALUES (7, 'SUB001', 100, '2026-12-05', '09:30', 'calpendo_main', '412', '  ');",
    );
    let rows = read_rows(&path).expect("read").expect("table");
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(r.id, 7);
    assert_eq!(r.patient_id.as_deref(), Some("SUB001"));
    assert_eq!(
        r.patient_weight_lb.as_deref(),
        Some("100"),
        "a number reads as text"
    );
    assert_eq!(r.scheduled_start_time.as_deref(), Some("09:30"));
    assert_eq!(r.source_record_id.as_deref(), Some("412"));
    assert_eq!(r.patient_name, None, "blank reads as absent");
}

#[test]
fn an_older_table_without_the_source_columns_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = pylantir_file(
        dir.path(),
        "CREATE TABLE worklist_items (id INTEGER PRIMARY KEY, patient_id VARCHAR(50),
             scheduled_start_date VARCHAR(8), scheduled_start_time VARCHAR(6));",
        "INSERT INTO worklist_items VALUES (1, 'SUB9', '20261205', '0930');",
    );
    let rows = read_rows(&path).expect("read").expect("table");
    assert_eq!(rows[0].scheduled_start_date.as_deref(), Some("20261205"));
    assert_eq!(rows[0].data_source, None);
    assert_eq!(rows[0].hisris_coding_designator, None);
}

#[test]
fn a_file_without_pylantir_table_has_no_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("worklist.db");
    let store = Store::open(&path).expect("open");
    assert_eq!(read_rows(&path).expect("read"), None);
    assert_eq!(store.pylantir_pending().expect("pending"), 0);
}

fn entry(source: &str, record: &str, patient: &str) -> WorklistEntry {
    WorklistEntry::new(source, record, patient, date(2026, 12, 5).at(9, 30, 0, 0))
}

#[test]
fn an_import_runs_once_per_row_and_leaves_nothing_pending() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = pylantir_file(
        dir.path(),
        PYLANTIR_SCHEMA,
        "INSERT INTO worklist_items (id, patient_id) VALUES (1, 'A'), (2, 'B'), (3, 'C');",
    );
    let store = Store::open(&path).expect("open");
    assert_eq!(store.pylantir_pending().expect("pending"), 3);
    // Row 2's booking was synced before the import: the synced entry wins.
    let window = SyncWindow {
        start: date(2026, 12, 5).at(0, 0, 0, 0),
        end: date(2026, 12, 6).at(0, 0, 0, 0),
    };
    let mut synced = entry("calpendo", "412", "B");
    synced.study_description = Some("from the sync".into());
    store
        .reconcile(
            "calpendo",
            &window,
            vec![synced],
            OnCancel::Discontinue,
            now(),
        )
        .expect("sync");

    let items = || {
        vec![
            ImportItem::Entry {
                row_id: 1,
                entry: Box::new(entry("manual", "pylantir-1", "A")),
                set_by: StatusSetBy::Admin,
            },
            ImportItem::Entry {
                row_id: 2,
                entry: Box::new(entry("calpendo", "412", "B")),
                set_by: StatusSetBy::Sync,
            },
            ImportItem::Skipped { row_id: 3 },
        ]
    };
    let first = store.import_pylantir(items(), now()).expect("import");
    assert_eq!(
        first,
        ImportCounts {
            imported: 1,
            present: 1,
            skipped: 1,
            already_imported: 0
        }
    );
    assert_eq!(store.pylantir_pending().expect("pending"), 0);
    let kept = store.get("calpendo", "412").expect("get").expect("entry");
    assert_eq!(
        kept.entry.study_description.as_deref(),
        Some("from the sync")
    );

    let again = store.import_pylantir(items(), now()).expect("import again");
    assert_eq!(again.already_imported, 3);
    assert_eq!(again.imported + again.present + again.skipped, 0);
    assert_eq!(store.count().expect("count"), 2);
}

#[test]
fn a_provisional_import_is_taken_over_by_its_record_without_a_twin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path().join("worklist.db")).expect("open");
    let provisional = format!("{PROVISIONAL_PREFIX}5");
    let mut imported = entry("redcap", &provisional, "sub_1001_ses_1_fam_20_site_792");
    imported.status = StepStatus::Completed;
    let mut other_day = entry("redcap", &format!("{PROVISIONAL_PREFIX}6"), "sub_1002");
    other_day.start = date(2026, 12, 4).at(9, 0, 0, 0);
    store
        .import_pylantir(
            vec![
                ImportItem::Entry {
                    row_id: 5,
                    entry: Box::new(imported),
                    set_by: StatusSetBy::Mpps,
                },
                ImportItem::Entry {
                    row_id: 6,
                    entry: Box::new(other_day),
                    set_by: StatusSetBy::Sync,
                },
            ],
            now(),
        )
        .expect("import");

    let window = SyncWindow {
        start: date(2026, 12, 5).at(0, 0, 0, 0),
        end: date(2026, 12, 6).at(0, 0, 0, 0),
    };
    let mut fetched = entry("redcap", "1001:1", "sub_1001_ses_1_fam_20_site_792");
    fetched.study_description = Some("CPIP".into());
    let counts = store
        .reconcile(
            "redcap",
            &window,
            vec![fetched],
            OnCancel::Discontinue,
            now(),
        )
        .expect("sync");
    assert_eq!(counts.inserted, 0, "{counts}");
    assert_eq!(counts.updated, 1, "{counts}");
    assert_eq!(store.count().expect("count"), 2, "no twin");
    let taken = store.get("redcap", "1001:1").expect("get").expect("entry");
    assert_eq!(
        taken.entry.status,
        StepStatus::Completed,
        "MPPS status kept"
    );
    assert_eq!(taken.entry.study_description.as_deref(), Some("CPIP"));
    assert!(store.get("redcap", &provisional).expect("get").is_none());
    // Another day's provisional entry is not taken over by this subject's visit.
    let kept = store
        .get("redcap", &format!("{PROVISIONAL_PREFIX}6"))
        .expect("get");
    assert!(kept.is_some());
}
