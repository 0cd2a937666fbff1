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
