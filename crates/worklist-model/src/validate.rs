//! DICOM value checks, one per value representation (PS3.5 6.2): each says what is wrong
//! with a value, or nothing. The entry's attribute table
//! ([`TEXT_ATTRIBUTES`](crate::model::TEXT_ATTRIBUTES)) names the VR of each value.

use dicom_core::VR;

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

/// Problem with a Coding Scheme Designator (SH, not blank), if any: what a source's
/// `protocol_coding_scheme` key and a mapped designator are checked with.
pub fn coding_scheme_problem(v: &str) -> Option<String> {
    if v.trim().is_empty() {
        return Some("a coding scheme designator must not be blank".into());
    }
    text_problem(v, SH_MAX, "SH")
}

/// Problem with a value of `vr` of at most `max_chars` characters, if any: the check of
/// that VR above (AE, CS, PN, UI), else [`text_problem`] (SH, LO, ...).
pub fn vr_problem(vr: VR, max_chars: usize, v: &str) -> Option<String> {
    match vr {
        VR::AE => ae_problem(v),
        VR::CS => cs_problem(v),
        VR::PN => pn_problem(v),
        VR::UI => uid_problem(v),
        other => text_problem(v, max_chars, other.to_string()),
    }
}
