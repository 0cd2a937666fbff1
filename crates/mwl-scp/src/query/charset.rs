//! The character sets a response identifier can be sent in.

/// The character set of a response identifier: its Specific Character Set (0008,0005).
///
/// The configured set is a preference: a response whose values cannot all be represented
/// in it is sent in UTF-8 instead (see [`MwlQuery::response`](super::MwlQuery::response)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ResponseCharset {
    /// Unicode in UTF-8, `ISO_IR 192`. The default.
    #[default]
    Utf8,
    /// ISO 8859-1 (Latin alphabet no. 1), `ISO_IR 100`, for older consoles.
    Latin1,
    /// The default repertoire (7-bit ASCII): `ISO_IR 6`, or no value.
    Ascii,
}

impl ResponseCharset {
    /// The character set named by a Specific Character Set defined term (`ISO_IR 192`,
    /// `ISO_IR 100`, `ISO_IR 6`; an empty value is the default repertoire). Surrounding
    /// spaces are ignored; the underscore spellings dicom-rs also accepts (`ISO_IR_192`) are
    /// taken too. Any other term gives `None`.
    pub fn from_term(s: &str) -> Option<Self> {
        match s.trim() {
            "ISO_IR 192" | "ISO_IR_192" => Some(ResponseCharset::Utf8),
            "ISO_IR 100" | "ISO_IR_100" => Some(ResponseCharset::Latin1),
            "" | "ISO_IR 6" | "ISO_IR_6" => Some(ResponseCharset::Ascii),
            _ => None,
        }
    }

    /// The term sent in Specific Character Set (0008,0005): `ISO_IR 192`, `ISO_IR 100`,
    /// or `ISO_IR 6` for the default repertoire (spelled out rather than left empty,
    /// since DCMTK, pydicom and dicom-rs all read it as ASCII).
    pub fn term(self) -> &'static str {
        match self {
            ResponseCharset::Utf8 => "ISO_IR 192",
            ResponseCharset::Latin1 => "ISO_IR 100",
            ResponseCharset::Ascii => "ISO_IR 6",
        }
    }

    /// Whether `s` can be written in this character set without loss.
    pub fn can_represent(self, s: &str) -> bool {
        match self {
            ResponseCharset::Utf8 => true,
            ResponseCharset::Latin1 => s.chars().all(|c| u32::from(c) <= 0xFF),
            ResponseCharset::Ascii => s.is_ascii(),
        }
    }
}

impl std::fmt::Display for ResponseCharset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.term())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_round_trip() {
        for cs in [
            ResponseCharset::Utf8,
            ResponseCharset::Latin1,
            ResponseCharset::Ascii,
        ] {
            assert_eq!(ResponseCharset::from_term(cs.term()), Some(cs));
        }
        assert_eq!(ResponseCharset::from_term(""), Some(ResponseCharset::Ascii));
        assert_eq!(
            ResponseCharset::from_term(" ISO_IR 100 "),
            Some(ResponseCharset::Latin1)
        );
        assert_eq!(ResponseCharset::from_term("ISO 2022 IR 87"), None);
        assert_eq!(ResponseCharset::from_term("GB18030"), None);
    }

    #[test]
    fn representability() {
        assert!(ResponseCharset::Ascii.can_represent("DOE^JOHN"));
        assert!(!ResponseCharset::Ascii.can_represent("HÉBERT^ANNE"));
        assert!(ResponseCharset::Latin1.can_represent("HÉBERT^ANNE"));
        assert!(!ResponseCharset::Latin1.can_represent("ŁUKASZ^ANNA"));
        assert!(!ResponseCharset::Latin1.can_represent("山田^太郎"));
        assert!(ResponseCharset::Utf8.can_represent("山田^太郎"));
    }
}
