//! Invisible and direction-changing characters from a source never reach a console
//! (issue 17 point 8): the real `mwlbridge serve`, the fake Calpendo, DCMTK findscu.

mod common;

use common::booking;
use common::scp::{Site, findscu};

#[test]
fn invisible_and_bidi_characters_are_removed_with_a_warning_naming_the_booking() {
    let site = Site::start(
        vec![
            booking(301, "SUB\u{200B}301_Doe\u{202E}_Jane", "3T Diagnostic", 9),
            booking(302, "SUB302_Roe_Rick", "3T Diagnostic", 10),
        ],
        "",
    );
    let r = findscu(site.port(), &["PatientID", "PatientName"], &[]);
    r.assert_success();
    let mut ids = r.patient_ids();
    ids.sort();
    assert_eq!(ids, ["SUB301", "SUB302"], "{}", r.output);
    let log = site.server.log();
    let line = log
        .lines()
        .find(|l| l.contains("invisible or direction-changing characters removed"))
        .unwrap_or_else(|| panic!("no warning:\n{log}"));
    assert!(
        line.contains("WARN") && line.contains("301") && line.contains("patient_id"),
        "{line}"
    );
    assert!(
        !line.contains("Doe") && !line.contains("SUB"),
        "no subject data: {line}"
    );
    assert!(
        !log.lines()
            .any(|l| l.contains("302") && l.contains("invisible")),
        "a clean booking draws no warning"
    );
}

/// Titles and names that consoles reject or misread (issue 16 point 4) reach findscu
/// fitted: no `=` starting an ideographic group, a title in the prefix component, a
/// given name that survives a very long family name, a station name cut at a word; each
/// change is said at WARN with the booking id and the field, never the value.
#[test]
fn awkward_titles_and_names_are_fitted_with_a_warning_naming_the_booking() {
    use common::scp::{sps_item, text};
    use dicom_dictionary_std::tags;
    let long_family = "Wolfeschlegelsteinhausenbergerdorff Wolfeschlegelsteinhausen";
    let mut titled = booking(903, "SUB903_Okafor_Ada", "3T Diagnostic Scanner Room", 11);
    titled.operator = Some("Dr. Alice Example".into());
    // The harness maps the patient name from the title (`SUB_Family_Given`).
    let site = Site::start(
        vec![
            booking(901, "SUB901_Doe=X_Jane", "3T Diagnostic", 9),
            booking(
                902,
                &format!("SUB902_{long_family}_Hubert"),
                "3T Diagnostic",
                10,
            ),
            titled,
        ],
        "",
    );
    let r = findscu(
        site.port(),
        &[
            "PatientID",
            "PatientName",
            "ScheduledProcedureStepSequence[0].ScheduledPerformingPhysicianName",
            "ScheduledProcedureStepSequence[0].ScheduledStationName",
        ],
        &[],
    );
    r.assert_success();
    let by_id = |id: &str| {
        r.responses
            .iter()
            .find(|o| text(o, tags::PATIENT_ID) == id)
            .unwrap_or_else(|| panic!("no {id} in {}", r.output))
    };
    assert_eq!(text(by_id("SUB901"), tags::PATIENT_NAME), "Doe X^Jane");
    let long = text(by_id("SUB902"), tags::PATIENT_NAME);
    assert!(
        long.chars().count() <= 64 && long.ends_with("^Hubert"),
        "{long}"
    );
    let sps = sps_item(by_id("SUB903"));
    assert_eq!(
        text(sps, tags::SCHEDULED_PERFORMING_PHYSICIAN_NAME),
        "Example^Alice^^Dr."
    );
    assert_eq!(text(sps, tags::SCHEDULED_STATION_NAME), "3T Diagnostic");

    let log = site.server.log();
    let warned: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("changed to fit what consoles accept"))
        .collect();
    for (id, field) in [
        ("901", "patient_name"),
        ("902", "patient_name"),
        ("903", "performing_physician_name"),
        ("903", "station_name"),
    ] {
        assert!(
            warned
                .iter()
                .any(|l| l.contains(&format!("record_id={id}")) && l.contains(field)),
            "no warning for {id} {field}:\n{log}"
        );
    }
    for line in &warned {
        for private in ["Doe", "Wolfe", "Hubert", "Alice", "SUB9"] {
            assert!(!line.contains(private), "{private} in {line}");
        }
    }
}
