//! Server limits and per-console station filtering, end to end with DCMTK findscu.

mod common;

use common::booking;
use common::scp::{Site, findscu};

fn bookings() -> Vec<calpendo_fake::FakeBooking> {
    let mut v = Vec::new();
    for (i, hour) in (8..14).enumerate() {
        v.push(booking(
            500 + i as i64,
            &format!("SUB5{i:02}_A_B"),
            "3T Diagnostic",
            hour,
        ));
        v.push(booking(
            600 + i as i64,
            &format!("SUB6{i:02}_C_D"),
            "EEG Lab Room A",
            hour,
        ));
    }
    v
}

#[test]
fn a_console_asking_for_everything_sees_its_own_station() {
    let site = Site::start(bookings(), "station_filter_by_calling_ae = true");
    let keys = [
        "PatientID",
        "ScheduledProcedureStepSequence[0].ScheduledStationAETitle",
    ];
    let eeg = findscu(site.port(), &keys, &["-aet", "EEG_LAB"]);
    eeg.assert_success();
    assert_eq!(eeg.patient_ids().len(), 6, "{:?}", eeg.patient_ids());
    assert!(eeg.patient_ids().iter().all(|p| p.starts_with("SUB6")));
    let mri = findscu(site.port(), &keys, &["-aet", "MRI_3T"]);
    assert!(mri.patient_ids().iter().all(|p| p.starts_with("SUB5")));
    assert_eq!(mri.patient_ids().len(), 6);
    // Naming a station is honoured as asked.
    let named = findscu(
        site.port(),
        &[
            "PatientID",
            "ScheduledProcedureStepSequence[0].ScheduledStationAETitle=EEG_LAB",
        ],
        &["-aet", "MRI_3T"],
    );
    assert_eq!(named.patient_ids().len(), 6);
    assert!(named.patient_ids().iter().all(|p| p.starts_with("SUB6")));
}

#[test]
fn max_responses_truncates_with_fe00() {
    let site = Site::start(bookings(), "max_responses = 5");
    let r = findscu(site.port(), &["PatientID"], &[]);
    assert_eq!(r.patient_ids().len(), 5);
    assert_eq!(r.final_status(), Some(0xFE00));
    assert!(
        site.server.log().contains("max_responses"),
        "{}",
        site.server.log()
    );
    // Under the limit: success.
    let r = findscu(site.port(), &["PatientID=SUB500"], &[]);
    assert_eq!(r.patient_ids(), ["SUB500"]);
    assert_eq!(r.final_status(), Some(0x0000));
}
