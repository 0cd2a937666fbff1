//! Who mwlbridge says it is in the DICOM files it writes: its implementation class UID
//! and version name (PS3.7 D.3.3.2, PS3.10 7.1), in the file meta information of the
//! exported worklist files.
//!
//! Association replies still carry dicom-ul's own identity: dicom-ul 0.10 writes its
//! constants into the A-ASSOCIATE-AC and offers no option to change them
//! (`docs/conformance-statement.md`, Implementation identification).

/// mwlbridge's implementation class UID: a UUID-derived UID under `2.25` (PS3.5 B.2),
/// made once for mwlbridge and never changed; the conformance statement names it.
pub const IMPLEMENTATION_CLASS_UID: &str = "2.25.334732025013351261267767958350300486179";

/// The version name: `MWLBRIDGE_` and the crate version, cut to the 16 characters an SH
/// value holds.
pub fn implementation_version_name() -> String {
    format!("MWLBRIDGE_{}", env!("CARGO_PKG_VERSION"))
        .chars()
        .take(16)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_identity_is_valid_dicom() {
        assert!(implementation_version_name().starts_with("MWLBRIDGE_"));
        assert!(implementation_version_name().len() <= 16);
        assert!(IMPLEMENTATION_CLASS_UID.len() <= 64);
        assert!(
            IMPLEMENTATION_CLASS_UID
                .split('.')
                .all(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit()))
        );
    }
}
