//! Stable DICOM identifiers derived from an entry's identity `(source, record id)`.

use sha2::{Digest, Sha256};

pub use crate::validate::SH_MAX;

fn identity_hash(source: &str, record_id: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"mwlbridge/identity/v1\0");
    h.update(source.as_bytes());
    h.update([0u8]);
    h.update(record_id.as_bytes());
    h.finalize().into()
}

/// The StudyInstanceUID of `(source, record_id)`: `2.25.` followed by the decimal form of a
/// 128-bit hash of the identity (PS3.5 B.2). It never changes when the record is re-synced.
pub fn study_instance_uid(source: &str, record_id: &str) -> String {
    let hash = identity_hash(source, record_id);
    let mut first = [0u8; 16];
    first.copy_from_slice(&hash[..16]);
    // A 2.25 UID's integer must not start with a zero digit; u128's decimal form never does
    // (a zero hash would give "0", which is also valid).
    format!("2.25.{}", u128::from_be_bytes(first))
}

/// An identifier that fits DICOM SH: the record id itself when it is at most 16
/// characters of printable ASCII without backslash, otherwise a stable 16-character
/// hash-derived form (`H` + 15 base-36 digits).
pub fn short_id(source: &str, record_id: &str) -> String {
    let plain = record_id.len() <= SH_MAX
        && !record_id.is_empty()
        && record_id
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'\\');
    if plain {
        return record_id.to_string();
    }
    let hash = identity_hash(source, record_id);
    let mut n = u128::from_be_bytes(hash[16..32].try_into().unwrap_or([0; 16]));
    const DIGITS: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut out = vec![b'H'];
    for _ in 0..15 {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
    }
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_is_stable_and_distinct() {
        let a = study_instance_uid("calpendo", "12345");
        assert_eq!(a, study_instance_uid("calpendo", "12345"));
        assert_ne!(a, study_instance_uid("calpendo", "12346"));
        assert_ne!(a, study_instance_uid("other", "12345"));
        // Pinned: a change of derivation would change every console's study.
        assert_eq!(a, "2.25.294354620944864382274044837273422119240");
    }

    #[test]
    fn uid_is_valid() {
        for id in ["1", "12345", "a very long booking id with spaces", ""] {
            let uid = study_instance_uid("calpendo", id);
            assert!(uid.len() <= 64, "{uid}");
            assert!(uid.starts_with("2.25."));
            let tail = &uid[5..];
            assert!(tail.bytes().all(|b| b.is_ascii_digit()));
            assert!(!tail.starts_with('0') || tail == "0");
        }
    }

    #[test]
    fn short_id_keeps_short_ids_and_hashes_long_ones() {
        assert_eq!(short_id("s", "12345"), "12345");
        let long = short_id("s", "12345678901234567");
        assert_eq!(long.len(), 16);
        assert!(long.starts_with('H'));
        assert_eq!(long, short_id("s", "12345678901234567"));
        assert_ne!(long, short_id("s", "12345678901234568"));
        assert_eq!(short_id("s", "a\\b").len(), 16);
        assert_eq!(short_id("s", "").len(), 16);
    }
}
