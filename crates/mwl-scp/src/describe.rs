//! Names for logs and error comments: a tag's dictionary keyword, a PDU's name, an error
//! with its causes on one line, and a peer's text made safe to log ([`printable`]).

use dicom_core::Tag;
use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_dictionary_std::StandardDataDictionary;
use dicom_ul::pdu::Pdu;

/// `PatientName` for (0010,0010); the tag itself for unknown ones.
pub fn tag_name(tag: Tag) -> String {
    StandardDataDictionary
        .by_tag(tag)
        .map(|e| e.alias().to_string())
        .unwrap_or_else(|| format!("({:04X},{:04X})", tag.group(), tag.element()))
}

/// The PS3.8 name of a PDU's type (`A-ASSOCIATE-RQ`, `P-DATA`, ...).
pub(crate) fn pdu_name(pdu: &Pdu) -> &'static str {
    match pdu {
        Pdu::AssociationRQ(_) => "A-ASSOCIATE-RQ",
        Pdu::AssociationAC(_) => "A-ASSOCIATE-AC",
        Pdu::AssociationRJ(_) => "A-ASSOCIATE-RJ",
        Pdu::PData { .. } => "P-DATA",
        Pdu::ReleaseRQ => "A-RELEASE-RQ",
        Pdu::ReleaseRP => "A-RELEASE-RP",
        Pdu::AbortRQ { .. } => "A-ABORT",
        _ => "unknown PDU",
    }
}

/// Text a peer sent (an AE title), as it is safe to log: control characters (newlines,
/// terminal escapes) and invisible or direction-changing ones (zero-width space,
/// right-to-left override) are written as `\n`, `\u{1b}`, `\u{202e}`, so a log line
/// stays one line and reads as what was sent.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\'' | '"' => c.to_string(),
            c => c.escape_debug().to_string(),
        })
        .collect()
}

/// An error with its causes, on one line.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn control_and_bidi_characters_are_escaped() {
        assert_eq!(printable("MRI_3T"), "MRI_3T");
        assert_eq!(printable("A\nB\u{1b}[31m"), "A\\nB\\u{1b}[31m");
        assert_eq!(printable("X\u{202e}Y\u{200b}"), "X\\u{202e}Y\\u{200b}");
        assert_eq!(printable("O'Brien \"x\""), "O'Brien \"x\"");
    }
}
