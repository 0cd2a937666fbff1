//! The Scheduled Protocol Code Sequence end to end: a Calpendo source whose config names
//! a `protocol`, `mwlbridge serve`, and DCMTK `findscu` asking for (and matching on) the
//! protocol code inside the Scheduled Procedure Step item.

mod common;

use common::scp::{OFFERED, Site, mwl_bookings, sps_item, text};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

const CODE: &str = "ScheduledProcedureStepSequence[0].ScheduledProtocolCodeSequence[0]";

fn key(attribute: &str) -> String {
    format!("{CODE}.{attribute}")
}

/// The protocol code items of a response's step item: (value, scheme, meaning) each.
fn protocol_items(rsp: &InMemDicomObject) -> Vec<(String, String, String)> {
    sps_item(rsp)
        .get(tags::SCHEDULED_PROTOCOL_CODE_SEQUENCE)
        .and_then(|e| e.items())
        .expect("the Scheduled Protocol Code Sequence is returned")
        .iter()
        .map(|i| {
            (
                text(i, tags::CODE_VALUE),
                text(i, tags::CODING_SCHEME_DESIGNATOR),
                text(i, tags::CODE_MEANING),
            )
        })
        .collect()
}

#[test]
fn findscu_gets_and_matches_the_protocol_code() {
    let site = Site::start_with(mwl_bookings(), "", "protocol = \"BRAIN_ROUTINE\"");
    let port = site.port();
    let ask = [
        "PatientID".to_string(),
        key("CodeValue"),
        key("CodingSchemeDesignator"),
        key("CodeMeaning"),
    ];
    let ask: Vec<&str> = ask.iter().map(String::as_str).collect();
    let r = common::scp::findscu(port, &ask, &[]);
    r.assert_success();
    assert_eq!(r.patient_ids(), OFFERED, "{}", r.output);
    for rsp in &r.responses {
        assert_eq!(
            protocol_items(rsp),
            [(
                "BRAIN_ROUTINE".to_string(),
                "99MWLBRIDGE".to_string(),
                "BRAIN_ROUTINE".to_string()
            )],
            "{}",
            r.output
        );
    }

    // Matching on the code value: the protocol every booking has, and another one.
    let same = format!("{}=BRAIN_ROUTINE", key("CodeValue"));
    let r = common::scp::findscu(port, &["PatientID", &same], &[]);
    r.assert_success();
    assert_eq!(r.patient_ids(), OFFERED, "{}", r.output);
    let wildcard = format!("{}=BRAIN*", key("CodeValue"));
    let r = common::scp::findscu(port, &["PatientID", &wildcard], &[]);
    r.assert_success();
    assert_eq!(r.patient_ids(), OFFERED, "{}", r.output);
    let other = format!("{}=SPINE_ROUTINE", key("CodeValue"));
    let r = common::scp::findscu(port, &["PatientID", &other], &[]);
    r.assert_success();
    assert!(r.responses.is_empty(), "{}", r.output);
}
