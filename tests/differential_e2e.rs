//! Differential tests: the same worklist served by `mwlbridge serve` and, from our
//! `mwlbridge export` files, by DCMTK's `wlmscpfs`; both queried with `findscu`.
//!
//! Both servers must match the same PatientIDs / AccessionNumbers, except where
//! `mwl-reference.md` says wlmscpfs 3.6.7 departs from the rules on purpose (PN case and
//! family name alone, wildcards on PatientID / Modality / station AE, Modality lists,
//! status filtering, StudyInstanceUID lists, `?` on a multi-byte letter) and where a key
//! is outside wlmscpfs's fixed list of matching keys (its table row "fixed list; unknown
//! keys dropped": ScheduledStationName, SPS ID / Description / Location / End Date,
//! RequestedProcedureDescription, StudyDescription are ignored by it): there each side's
//! result is asserted explicitly. Every test prints a table of query → (ours, theirs)
//! counts and pending statuses (`cargo test ... -- --nocapture` shows it).

mod common;

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::OnceLock;

use common::scp::{
    Guarded, OFFERED, Site, dump2dcm, findscu, findscu_raw, mwl_bookings, text, wlmscpfs_for,
};
use common::today;
use dicom_dictionary_std::tags;
use worklist_store::format_da;

const SPS: &str = "ScheduledProcedureStepSequence[0]";
const EXAMPLES: &str = "/usr/share/doc/dcmtk/examples/wlistqry";

/// mwlbridge and wlmscpfs over the same items.
struct Pair {
    site: Site,
    wlmscpfs_port: u16,
    _wlmscpfs: Guarded,
}

static PAIR: OnceLock<Pair> = OnceLock::new();

fn pair() -> &'static Pair {
    PAIR.get_or_init(|| {
        let site = Site::start(mwl_bookings(), "");
        let (wl, port) = wlmscpfs_for(&site);
        Pair {
            site,
            wlmscpfs_port: port,
            _wlmscpfs: wl,
        }
    })
}

/// What one server answered to one query.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    /// Success, with these `PatientID/AccessionNumber` pairs (sorted).
    Matches(Vec<String>),
    /// Refused with this status.
    Refused(u16),
}

impl Answer {
    fn count(&self) -> String {
        match self {
            Answer::Matches(m) => m.len().to_string(),
            Answer::Refused(s) => format!("{s:04X}"),
        }
    }
}

/// The expected answers of mwlbridge and wlmscpfs, for a documented departure.
type Departure = (Answer, Answer);

/// One query sent to both servers.
struct Query {
    label: String,
    keys: Vec<OsString>,
    file: Option<PathBuf>,
    /// `None`: both must agree.
    departure: Option<Departure>,
}

impl Query {
    fn same(label: &str, keys: &[&str]) -> Query {
        Query {
            label: label.to_string(),
            keys: keys.iter().map(OsString::from).collect(),
            file: None,
            departure: None,
        }
    }

    fn departs(label: &str, keys: &[&str], ours: Answer, theirs: Answer) -> Query {
        Query {
            departure: Some((ours, theirs)),
            ..Query::same(label, keys)
        }
    }
}

/// Matches on PatientIDs: `SUB105` → `SUB105/105`.
fn m(patient_ids: &[&str]) -> Answer {
    let mut v: Vec<String> = patient_ids
        .iter()
        .map(|id| format!("{id}/{}", id.trim_start_matches("SUB")))
        .collect();
    v.sort();
    Answer::Matches(v)
}

/// The pending statuses seen (`FF00`, `FF01`, both, or `-`), for the table.
fn pending(statuses: &[u16]) -> String {
    let set: std::collections::BTreeSet<String> = statuses
        .iter()
        .filter(|s| matches!(s, 0xFF00 | 0xFF01))
        .map(|s| format!("{s:04X}"))
        .collect();
    if set.is_empty() {
        "-".into()
    } else {
        set.into_iter().collect::<Vec<_>>().join("+")
    }
}

fn ask(port: u16, q: &Query) -> (Answer, String) {
    let mut keys = q.keys.clone();
    for k in ["PatientID", "AccessionNumber"] {
        if !keys.iter().any(|x| x.to_string_lossy().starts_with(k)) {
            keys.push(k.into());
        }
    }
    let r = findscu_raw(port, &keys, &[], q.file.as_deref());
    let status = r
        .final_status()
        .unwrap_or_else(|| panic!("{}: no final status:\n{}", q.label, r.output));
    if status != 0x0000 {
        return (Answer::Refused(status), "-".into());
    }
    let mut v: Vec<String> = r
        .responses
        .iter()
        .map(|o| {
            format!(
                "{}/{}",
                text(o, tags::PATIENT_ID),
                text(o, tags::ACCESSION_NUMBER)
            )
        })
        .collect();
    v.sort();
    (Answer::Matches(v), pending(&r.statuses))
}

/// Sends every query to both servers, prints the table, and fails on every disagreement
/// (or departure not as documented) at once.
fn compare(title: &str, queries: &[Query]) {
    let p = pair();
    let mut table = format!(
        "\n{title}\n{:<52} {:>5} {:>9} {:>8} {:>9}  verdict\n",
        "query", "ours", "(pending)", "wlmscpfs", "(pending)"
    );
    let mut failures = Vec::new();
    for q in queries {
        let (ours, ours_pending) = ask(p.site.port(), q);
        let (theirs, theirs_pending) = ask(p.wlmscpfs_port, q);
        let verdict = match &q.departure {
            None if ours == theirs => "same".to_string(),
            None => {
                failures.push(format!("{}: ours {ours:?}, wlmscpfs {theirs:?}", q.label));
                "DIFFERENT".to_string()
            }
            Some((want_ours, want_theirs)) => {
                if &ours != want_ours {
                    failures.push(format!(
                        "{}: ours {ours:?}, expected {want_ours:?}",
                        q.label
                    ));
                }
                if &theirs != want_theirs {
                    failures.push(format!(
                        "{}: wlmscpfs {theirs:?}, expected {want_theirs:?}",
                        q.label
                    ));
                }
                if &ours == want_ours && &theirs == want_theirs {
                    "expected departure".to_string()
                } else {
                    "UNEXPECTED".to_string()
                }
            }
        };
        table.push_str(&format!(
            "{:<52} {:>5} {:>9} {:>8} {:>9}  {verdict}\n",
            q.label,
            ours.count(),
            ours_pending,
            theirs.count(),
            theirs_pending
        ));
    }
    println!("{table}");
    assert!(failures.is_empty(), "{table}\n{}", failures.join("\n"));
}

fn sps(key: &str, value: &str) -> String {
    format!("{SPS}.{key}={value}")
}

#[test]
fn dcmtk_example_queries_agree() {
    let p = pair();
    let mut dumps: Vec<PathBuf> = std::fs::read_dir(EXAMPLES)
        .expect("DCMTK's example queries (apt-get install dcmtk)")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "dump"))
        .collect();
    dumps.sort();
    assert!(dumps.len() >= 10, "{dumps:?}");
    let dir = p.site.dir.join("queries");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let mut queries = Vec::new();
    for dump in &dumps {
        let name = dump
            .file_stem()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        // As shipped: their values (AA2, A2, DD, ...) are DCMTK's example database's.
        let file = dir.join(format!("{name}.dcm"));
        dump2dcm(dump, &file);
        queries.push(Query {
            label: name.clone(),
            keys: Vec::new(),
            file: Some(file),
            departure: None,
        });
        // Adapted to our worklist, as the examples' README suggests.
        let text = std::fs::read_to_string(dump).expect("read dump");
        let adapted = text
            .replace("[AA2]", "[MRI_3T]")
            .replace("[AA4]", "[EEG_LAB]")
            .replace("[A2]", "[3T Diagnostic]")
            .replace("[DD]", "[MR]");
        if adapted != text {
            let dump_file = dir.join(format!("{name}-adapted.dump"));
            std::fs::write(&dump_file, adapted).expect("write");
            let file = dir.join(format!("{name}-adapted.dcm"));
            dump2dcm(&dump_file, &file);
            // wlistqry12 asks station EEG_LAB at station name "3T Diagnostic": no step
            // is both. wlmscpfs does not match on ScheduledStationName (not in its fixed
            // list of matching keys) and returns the EEG_LAB steps.
            let departure = (name == "wlistqry12").then(|| (m(&[]), m(&["SUB102", "SUB106"])));
            queries.push(Query {
                label: format!("{name} adapted"),
                keys: Vec::new(),
                file: Some(file),
                departure,
            });
        }
    }
    compare("DCMTK example queries (wlistqry*.dump)", &queries);
}

#[test]
fn own_queries_agree() {
    let (t, t1) = (
        format_da(today()),
        format_da(today().tomorrow().expect("tomorrow")),
    );
    let date = |v: &str| sps("ScheduledProcedureStepStartDate", v);
    let time = |v: &str| sps("ScheduledProcedureStepStartTime", v);
    let queries = vec![
        Query::same("universal", &["PatientName"]),
        Query::same("universal, empty step item", &[SPS]),
        Query::same("PatientID=SUB102", &["PatientID=SUB102"]),
        Query::same(
            "PatientName=Tremblay^Marie",
            &["PatientName=Tremblay^Marie"],
        ),
        Query::same("PatientName=Trem*", &["PatientName=Trem*"]),
        Query::same("PatientName=*^Marie", &["PatientName=*^Marie"]),
        Query::same("PatientName=Tre?blay^Paul", &["PatientName=Tre?blay^Paul"]),
        Query::same(
            "PatientName=Müller^Jürgen (UTF-8)",
            &[
                "SpecificCharacterSet=ISO_IR 192",
                "PatientName=Müller^Jürgen",
            ],
        ),
        Query::same("AccessionNumber=103", &["AccessionNumber=103"]),
        Query::same("RequestedProcedureID=104", &["RequestedProcedureID=104"]),
        Query::same("date today", &[&date(&t)]),
        Query::same("date tomorrow", &[&date(&t1)]),
        Query::same("date today-tomorrow", &[&date(&format!("{t}-{t1}"))]),
        Query::same("date tomorrow- (open end)", &[&date(&format!("{t1}-"))]),
        Query::same("date -today (open start)", &[&date(&format!("-{t}"))]),
        Query::same("today + time 0900-1100", &[&date(&t), &time("0900-1100")]),
        Query::same(
            "today + time 090000-100000",
            &[&date(&t), &time("090000-100000")],
        ),
        Query::same(
            "today-tomorrow + 1600-1000 (across midnight)",
            &[&date(&format!("{t}-{t1}")), &time("1600-1000")],
        ),
        Query::same(
            "today + time 1300- (open end)",
            &[&date(&t), &time("1300-")],
        ),
        Query::same("time alone 120000-140000", &[&time("120000-140000")]),
        Query::same(
            "station MRI_3T",
            &[&sps("ScheduledStationAETitle", "MRI_3T")],
        ),
        Query::same(
            "station list MRI_7T\\MOCK",
            &[&sps("ScheduledStationAETitle", "MRI_7T\\MOCK")],
        ),
        Query::same("modality MR", &[&sps("Modality", "MR")]),
        Query::same("modality OT", &[&sps("Modality", "OT")]),
        Query::same(
            "physician Mart*",
            &[&sps("ScheduledPerformingPhysicianName", "Mart*")],
        ),
        Query::same(
            "physician Smith^Jane",
            &[&sps("ScheduledPerformingPhysicianName", "Smith^Jane")],
        ),
        Query::same(
            "MedicalAlerts=XX (a value on a key neither stores)",
            &["MedicalAlerts=XX"],
        ),
        Query::same(
            "CommentsOnTheScheduledProcedureStep=*",
            &[&sps("CommentsOnTheScheduledProcedureStep", "*")],
        ),
        Query::same("PatientSex=F (no item has a sex)", &["PatientSex=F"]),
        Query::same(
            "ReferringPhysicianName=XX (no item has one)",
            &["ReferringPhysicianName=XX"],
        ),
        Query::same(
            "station MRI_3T + today",
            &[&sps("ScheduledStationAETitle", "MRI_3T"), &date(&t)],
        ),
    ];
    compare("own queries", &queries);
}

#[test]
fn documented_departures_hold() {
    let p = pair();
    // StudyInstanceUIDs, from a universal query to mwlbridge.
    let all = findscu(p.site.port(), &["PatientID", "StudyInstanceUID"], &[]);
    all.assert_success();
    let uid = |id: &str| text(all.by_patient_id(id), tags::STUDY_INSTANCE_UID);
    let uid_list = format!("StudyInstanceUID={}\\{}", uid("SUB101"), uid("SUB104"));
    let mr = ["SUB101", "SUB103", "SUB105", "SUB108", "SUB110"];
    let queries = vec![
        Query::departs(
            "PN case: tremblay^marie",
            &["PatientName=tremblay^marie"],
            m(&["SUB101"]),
            m(&[]),
        ),
        Query::departs(
            "PN family name alone: Tremblay",
            &["PatientName=Tremblay"],
            m(&["SUB101", "SUB104"]),
            m(&[]),
        ),
        Query::departs(
            "PN case in a wildcard: *marie",
            &["PatientName=*marie"],
            m(&["SUB101", "SUB103"]),
            m(&["SUB103"]),
        ),
        Query::departs(
            "wildcard on PatientID: SUB10*",
            &["PatientID=SUB10*"],
            m(&[
                "SUB101", "SUB102", "SUB103", "SUB104", "SUB105", "SUB106", "SUB108",
            ]),
            m(&[]),
        ),
        Query::departs(
            "wildcard on Modality: M*",
            &[&sps("Modality", "M*")],
            m(&mr),
            m(&[]),
        ),
        Query::departs(
            "wildcard on station AE: MRI_*",
            &[&sps("ScheduledStationAETitle", "MRI_*")],
            m(&mr),
            m(&[]),
        ),
        Query::departs(
            "modality list MR\\EEG",
            &[&sps("Modality", "MR\\EEG")],
            m(&[
                "SUB101", "SUB102", "SUB103", "SUB105", "SUB106", "SUB108", "SUB110",
            ]),
            Answer::Refused(0xA900),
        ),
        Query::departs(
            "status SCHEDULED",
            &[&sps("ScheduledProcedureStepStatus", "SCHEDULED")],
            m(&[
                "SUB101", "SUB102", "SUB103", "SUB104", "SUB105", "SUB106", "SUB108",
            ]),
            m(&OFFERED),
        ),
        Query::departs(
            "status DISCONTINUED",
            &[&sps("ScheduledProcedureStepStatus", "DISCONTINUED")],
            m(&["SUB107"]),
            m(&OFFERED),
        ),
        Query::departs(
            "StudyInstanceUID list (2 UIDs)",
            &[&uid_list],
            m(&["SUB101", "SUB104"]),
            m(&OFFERED),
        ),
        // wlmscpfs matches on a fixed list of keys (reference table: "fixed list;
        // unknown keys dropped"); these keys of ours are outside it, so it ignores them
        // and returns every item, mostly still with FF00.
        Query::departs(
            "key list: ScheduledStationName=3T Diagnostic",
            &[&sps("ScheduledStationName", "3T Diagnostic")],
            m(&["SUB101", "SUB105", "SUB108"]),
            m(&OFFERED),
        ),
        Query::departs(
            "key list: ScheduledProcedureStepID=103",
            &[&sps("ScheduledProcedureStepID", "103")],
            m(&["SUB103"]),
            m(&OFFERED),
        ),
        Query::departs(
            "key list: ScheduledProcedureStepDescription=XX",
            &[&sps("ScheduledProcedureStepDescription", "XX")],
            m(&[]),
            m(&OFFERED),
        ),
        Query::departs(
            "key list: ScheduledProcedureStepLocation=XX",
            &[&sps("ScheduledProcedureStepLocation", "XX")],
            m(&[]),
            m(&OFFERED),
        ),
        Query::departs(
            "key list: ScheduledProcedureStepEndDate=19990101",
            &[&sps("ScheduledProcedureStepEndDate", "19990101")],
            m(&[]),
            m(&OFFERED),
        ),
        Query::departs(
            "key list: RequestedProcedureDescription=XX",
            &["RequestedProcedureDescription=XX"],
            m(&[]),
            m(&OFFERED),
        ),
        Query::departs(
            "key list: StudyDescription=XX",
            &["StudyDescription=XX"],
            m(&[]),
            m(&OFFERED),
        ),
        Query::departs(
            "? on a multi-byte letter: H?bert^Zo?",
            &["SpecificCharacterSet=ISO_IR 192", "PatientName=H?bert^Zo?"],
            m(&["SUB105"]),
            m(&[]),
        ),
    ];
    compare("documented departures of wlmscpfs 3.6.7", &queries);
}

/// The exported files carry every attribute wlmscpfs expects of a worklist file: it adds
/// nothing and warns about nothing when it reads them (it used to add the empty type 2
/// ReferencedStudySequence and ReferencedPatientSequence to each file, with a warning).
#[test]
fn wlmscpfs_reads_the_exported_files_without_warnings() {
    let p = pair();
    let all = findscu(
        p.wlmscpfs_port,
        &["PatientID", "ReferencedStudySequence"],
        &[],
    );
    assert!(!all.responses.is_empty(), "wlmscpfs answered nothing");
    let log = p._wlmscpfs.log_text();
    // Other tests of this file query the same wlmscpfs: only warnings about the files.
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("W:") && l.contains("missing"))
        .collect();
    assert!(
        warnings.is_empty(),
        "wlmscpfs warned:\n{}",
        warnings.join("\n")
    );
}
