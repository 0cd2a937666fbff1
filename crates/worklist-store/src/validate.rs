//! DICOM value checks for the values an entry carries (PS3.5 6.2).

use crate::model::WorklistEntry;

/// DICOM AE (Application Entity title) limit.
pub const AE_MAX: usize = 16;
/// DICOM SH (Short String) limit.
pub const SH_MAX: usize = 16;
/// DICOM LO (Long String) limit.
pub const LO_MAX: usize = 64;
/// DICOM UI (Unique Identifier) limit.
pub const UI_MAX: usize = 64;
/// DICOM PN limit, per component group.
pub const PN_GROUP_MAX: usize = 64;
/// DICOM CS (Code String) limit.
pub const CS_MAX: usize = 16;

fn has_control(s: &str) -> bool {
    s.chars().any(|c| c.is_control())
}

/// Leading and trailing spaces are padding in DICOM text: stored values carry none, so
/// exact lookups by indexed columns see the same value matching sees.
fn padded(s: &str) -> bool {
    s.trim() != s
}

/// Problem with an AE title value, if any.
pub fn ae_problem(v: &str) -> Option<String> {
    if v.trim().is_empty() {
        Some("AE title is blank".into())
    } else if padded(v) {
        Some("AE title has leading or trailing spaces".into())
    } else if v.len() > AE_MAX {
        Some(format!(
            "AE title is {} characters; DICOM allows at most {AE_MAX}",
            v.len()
        ))
    } else if v.contains('\\') || !v.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        Some("AE title must be printable ASCII without backslash".into())
    } else {
        None
    }
}

/// Problem with a string of at most `max` characters (SH, LO), if any.
pub fn text_problem(v: &str, max: usize, vr: &str) -> Option<String> {
    if v.chars().count() > max {
        Some(format!(
            "{vr} value is {} characters; DICOM allows at most {max}",
            v.chars().count()
        ))
    } else if padded(v) {
        Some(format!("{vr} value has leading or trailing spaces"))
    } else if v.contains('\\') {
        Some(format!("{vr} value must not contain a backslash"))
    } else if has_control(v) {
        Some(format!("{vr} value must not contain control characters"))
    } else {
        None
    }
}

/// Problem with a UID, if any (PS3.5 9.1).
pub fn uid_problem(v: &str) -> Option<String> {
    if v.is_empty() || v.len() > UI_MAX {
        return Some(format!("UID must be 1 to {UI_MAX} characters"));
    }
    for comp in v.split('.') {
        if comp.is_empty() || !comp.bytes().all(|b| b.is_ascii_digit()) {
            return Some("UID must be dot-separated numbers".into());
        }
        if comp.len() > 1 && comp.starts_with('0') {
            return Some("UID components must not have leading zeros".into());
        }
    }
    None
}

/// Problem with a person name, if any (PS3.5 6.2, PN).
pub fn pn_problem(v: &str) -> Option<String> {
    if v.contains('\\') || has_control(v) {
        return Some("person name must not contain a backslash or control characters".into());
    }
    if v.split('=').count() > 3 {
        return Some("person name has more than three component groups".into());
    }
    for group in v.split('=') {
        if group.chars().count() > PN_GROUP_MAX {
            return Some(format!(
                "person name component group is longer than {PN_GROUP_MAX} characters"
            ));
        }
        if group.split('^').count() > 5 {
            return Some("person name has more than five components".into());
        }
    }
    None
}

/// Problem with a code string (CS), if any.
pub fn cs_problem(v: &str) -> Option<String> {
    if v.is_empty() || v.len() > CS_MAX {
        return Some(format!("code string must be 1 to {CS_MAX} characters"));
    }
    if padded(v) {
        return Some("code string has leading or trailing spaces".into());
    }
    if !v
        .bytes()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b' ' || b == b'_')
    {
        return Some("code string allows only A-Z, 0-9, space and underscore".into());
    }
    None
}

pub(crate) fn entry_problems(e: &WorklistEntry) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let mut check = |field: &'static str, p: Option<String>| {
        if let Some(p) = p {
            out.push((field, p));
        }
    };
    if e.patient_id.trim().is_empty() {
        check("patient_id", Some("patient ID is blank".into()));
    }
    check("patient_id", text_problem(&e.patient_id, LO_MAX, "LO"));
    if let Some(v) = &e.patient_name {
        check("patient_name", pn_problem(v));
    }
    if let Some(v) = &e.patient_sex
        && !matches!(v.as_str(), "M" | "F" | "O")
    {
        check("patient_sex", Some("patient sex must be M, F or O".into()));
    }
    if let Some(w) = e.patient_weight_kg
        && !(w.is_finite() && w > 0.0 && w < 1000.0)
    {
        check(
            "patient_weight_kg",
            Some("weight must be a positive number of kg".into()),
        );
    }
    check("study_instance_uid", uid_problem(&e.study_instance_uid));
    check(
        "accession_number",
        text_problem(&e.accession_number, SH_MAX, "SH"),
    );
    check(
        "requested_procedure_id",
        text_problem(&e.requested_procedure_id, SH_MAX, "SH"),
    );
    check("sps_id", text_problem(&e.sps_id, SH_MAX, "SH"));
    for (field, id) in [
        ("accession_number", &e.accession_number),
        ("requested_procedure_id", &e.requested_procedure_id),
        ("sps_id", &e.sps_id),
    ] {
        if id.trim().is_empty() {
            check(field, Some("identifier is blank".into()));
        }
    }
    if let Some(v) = &e.station_ae_title {
        check("station_ae_title", ae_problem(v));
    }
    if let Some(v) = &e.station_name {
        check("station_name", text_problem(v, SH_MAX, "SH"));
    }
    if let Some(v) = &e.modality {
        check("modality", cs_problem(v));
    }
    for (field, v) in [
        ("study_description", &e.study_description),
        (
            "requested_procedure_description",
            &e.requested_procedure_description,
        ),
        ("sps_description", &e.sps_description),
        ("sps_location", &e.sps_location),
    ] {
        if let Some(v) = v {
            check(field, text_problem(v, LO_MAX, "LO"));
        }
    }
    for (field, v) in [
        ("referring_physician_name", &e.referring_physician_name),
        ("performing_physician_name", &e.performing_physician_name),
    ] {
        if let Some(v) = v {
            check(field, pn_problem(v));
        }
    }
    if let Some(end) = e.end
        && end < e.start
    {
        check("end", Some("step ends before it starts".into()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn good_entry_has_no_problems() {
        let mut e =
            WorklistEntry::new("calpendo", "1", "SUB001", date(2026, 11, 26).at(9, 0, 0, 0));
        e.patient_name = Some("Doe^John".into());
        e.station_ae_title = Some("MRI_3T".into());
        e.modality = Some("MR".into());
        assert!(e.problems().is_empty(), "{:?}", e.problems());
    }

    #[test]
    fn bad_values_are_named() {
        let mut e = WorklistEntry::new("calpendo", "1", " ", date(2026, 11, 26).at(9, 0, 0, 0));
        e.station_ae_title = Some("A_VERY_LONG_AE_TITLE".into());
        e.modality = Some("mr".into());
        e.accession_number = " 12".into();
        e.study_instance_uid = "1.02.3".into();
        e.end = Some(date(2026, 11, 26).at(8, 0, 0, 0));
        let fields: Vec<_> = e.problems().into_iter().map(|(f, _)| f).collect();
        for f in [
            "patient_id",
            "station_ae_title",
            "modality",
            "study_instance_uid",
            "end",
        ] {
            assert!(fields.contains(&f), "{f} missing from {fields:?}");
        }
    }
}
