//! Invisible and direction-changing characters taken out of a fetched entry's text values.
//!
//! A booking title or a REDCap field can carry characters nobody sees: control characters,
//! zero-width spaces and joiners, the byte-order mark, soft hyphens, and the Unicode
//! bidirectional controls (the right-to-left override can make `SUB123` display as
//! `321BUS`). On a console they make two identical-looking IDs differ, or one ID look like
//! another. [`strip_invisible`] removes them from every text attribute of an entry
//! (in the ones of VR LT, ST and UT, tab, line feed and carriage return stay) and says
//! which attributes it changed, so the caller can warn naming the record and the field
//! (never the value).

use dicom_core::VR;

use crate::model::{TEXT_ATTRIBUTES, WorklistEntry};

/// Whether `c` is invisible or changes text direction (and is not kept in `vr`).
fn invisible(c: char, vr: VR) -> bool {
    if matches!(c, '\t' | '\n' | '\r') && matches!(vr, VR::LT | VR::ST | VR::UT) {
        return false;
    }
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{061C}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

/// One attribute [`strip_invisible`] changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stripped {
    /// The attribute's column ([`crate::model::TextAttribute::column`]).
    pub column: &'static str,
    /// How many characters were removed.
    pub removed: usize,
}

/// Removes invisible and direction-changing characters from every text value of `entry`;
/// the attributes it changed.
pub fn strip_invisible(entry: &mut WorklistEntry) -> Vec<Stripped> {
    let mut changed = Vec::new();
    for attribute in TEXT_ATTRIBUTES {
        let Some(value) = (attribute.get)(entry) else {
            continue;
        };
        let removed = value
            .chars()
            .filter(|&c| invisible(c, attribute.vr))
            .count();
        if removed == 0 {
            continue;
        }
        let kept: String = value
            .chars()
            .filter(|&c| !invisible(c, attribute.vr))
            .collect();
        (attribute.set)(entry, Some(kept));
        changed.push(Stripped {
            column: attribute.column,
            removed,
        });
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn invisible_and_bidi_characters_are_removed_and_named() {
        let mut e = WorklistEntry::new(
            "calpendo",
            "42",
            "SUB\u{200B}123\u{202E}",
            date(2026, 12, 5).at(9, 0, 0, 0),
        );
        e.patient_name = Some("Doe\u{0007}^Jane\u{FEFF}".into());
        e.modality = Some("MR".into());
        let changed = strip_invisible(&mut e);
        assert_eq!(e.patient_id, "SUB123");
        assert_eq!(e.patient_name.as_deref(), Some("Doe^Jane"));
        assert_eq!(e.modality.as_deref(), Some("MR"));
        let columns: Vec<_> = changed.iter().map(|s| (s.column, s.removed)).collect();
        assert!(columns.contains(&("patient_id", 2)), "{columns:?}");
        assert!(columns.contains(&("patient_name", 2)), "{columns:?}");
        assert_eq!(columns.len(), 2);
        assert!(strip_invisible(&mut e).is_empty(), "nothing left to strip");
    }
}
