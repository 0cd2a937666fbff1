//! Character sets: the ones a response identifier can be written in, and how a query's
//! Specific Character Set (0008,0005) decides which one its responses prefer.
//!
//! A query that names a set we can write gets its responses in that set, each response
//! falling back to UTF-8 on its own when one of its values does not fit; a query that names
//! none gets the configured default. The single-byte ISO 8859 sets and TIS 620 are written
//! with dicom-rs's codecs (`dicom-encoding`, strict: an unmappable character is an error),
//! except ISO 8859-9 (`ISO_IR 148`), which dicom-rs lacks: `encoding_rs`'s windows-1254
//! writes it. windows-1254 and windows-874 (dicom-rs's codec for `ISO_IR 166`) agree with
//! ISO 8859-9 and TIS 620 on every byte outside 0x80–0x9F, so a character written to that
//! range (a C1 control in the ISO sets, a Windows extra such as `€`) counts as not fitting,
//! in every set.

use dicom_encoding::text::{SpecificCharacterSet, TextCodec};

/// The character set of a response identifier: its Specific Character Set (0008,0005).
///
/// A response whose values cannot all be represented in the preferred set is sent in UTF-8
/// instead (see [`MwlQuery::response`](super::MwlQuery::response)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ResponseCharset {
    /// Unicode in UTF-8, `ISO_IR 192`. The default.
    #[default]
    Utf8,
    /// ISO 8859-1 (Latin alphabet no. 1), `ISO_IR 100`.
    Latin1,
    /// ISO 8859-2 (Latin alphabet no. 2, Central European), `ISO_IR 101`.
    Latin2,
    /// ISO 8859-3 (Latin alphabet no. 3), `ISO_IR 109`.
    Latin3,
    /// ISO 8859-4 (Latin alphabet no. 4), `ISO_IR 110`.
    Latin4,
    /// ISO 8859-5 (Cyrillic), `ISO_IR 144`.
    Cyrillic,
    /// ISO 8859-9 (Latin alphabet no. 5, Turkish), `ISO_IR 148`.
    Latin5,
    /// ISO 8859-7 (Greek), `ISO_IR 126`.
    Greek,
    /// ISO 8859-6 (Arabic), `ISO_IR 127`.
    Arabic,
    /// ISO 8859-8 (Hebrew), `ISO_IR 138`.
    Hebrew,
    /// TIS 620-2533 (Thai), `ISO_IR 166`.
    Thai,
    /// The default repertoire (7-bit ASCII): `ISO_IR 6`, or no value.
    Ascii,
}

/// Every set we write.
pub(crate) const ALL: [ResponseCharset; 12] = [
    ResponseCharset::Utf8,
    ResponseCharset::Latin1,
    ResponseCharset::Latin2,
    ResponseCharset::Latin3,
    ResponseCharset::Latin4,
    ResponseCharset::Cyrillic,
    ResponseCharset::Latin5,
    ResponseCharset::Greek,
    ResponseCharset::Arabic,
    ResponseCharset::Hebrew,
    ResponseCharset::Thai,
    ResponseCharset::Ascii,
];

impl ResponseCharset {
    /// The character set named by a Specific Character Set defined term without code
    /// extensions (`ISO_IR 192`, `ISO_IR 100`, `ISO_IR 6`, ...; an empty value is the
    /// default repertoire). Surrounding spaces are ignored; the underscore spellings
    /// dicom-rs also accepts (`ISO_IR_192`) are taken too. Any other term gives `None`.
    pub fn from_term(s: &str) -> Option<Self> {
        let s = s.trim();
        if s.is_empty() {
            return Some(ResponseCharset::Ascii);
        }
        let number = s
            .strip_prefix("ISO_IR ")
            .or_else(|| s.strip_prefix("ISO_IR_"))?;
        Self::from_ir(number)
    }

    /// The set named by a `[server] character_set` term: `ISO_IR 192`, `ISO_IR 100` or
    /// `ISO_IR 6` (the sets every writer of ours, dicom-rs's included, writes); `None` for
    /// any other term.
    pub fn from_config_term(s: &str) -> Option<Self> {
        Self::from_term(s).filter(|cs| {
            matches!(
                cs,
                ResponseCharset::Utf8 | ResponseCharset::Latin1 | ResponseCharset::Ascii
            )
        })
    }

    /// The set of an ISO-IR registration number (`"100"`), for the ones we write.
    fn from_ir(number: &str) -> Option<Self> {
        ALL.into_iter()
            .find(|cs| cs.term().strip_prefix("ISO_IR ") == Some(number))
    }

    /// The term sent in Specific Character Set (0008,0005): `ISO_IR 192`, `ISO_IR 100`,
    /// ..., or `ISO_IR 6` for the default repertoire (spelled out rather than left empty,
    /// since DCMTK, pydicom and dicom-rs all read it as ASCII).
    pub fn term(self) -> &'static str {
        match self {
            ResponseCharset::Utf8 => "ISO_IR 192",
            ResponseCharset::Latin1 => "ISO_IR 100",
            ResponseCharset::Latin2 => "ISO_IR 101",
            ResponseCharset::Latin3 => "ISO_IR 109",
            ResponseCharset::Latin4 => "ISO_IR 110",
            ResponseCharset::Cyrillic => "ISO_IR 144",
            ResponseCharset::Latin5 => "ISO_IR 148",
            ResponseCharset::Greek => "ISO_IR 126",
            ResponseCharset::Arabic => "ISO_IR 127",
            ResponseCharset::Hebrew => "ISO_IR 138",
            ResponseCharset::Thai => "ISO_IR 166",
            ResponseCharset::Ascii => "ISO_IR 6",
        }
    }

    /// Whether `s` can be written in this character set without loss.
    pub fn can_represent(self, s: &str) -> bool {
        let c1 = |c: char| ('\u{80}'..='\u{9f}').contains(&c);
        match self {
            _ if s.is_ascii() => true,
            ResponseCharset::Utf8 => true,
            ResponseCharset::Ascii => false,
            // The common case, without allocating.
            ResponseCharset::Latin1 => s.chars().all(|c| c <= '\u{ff}' && !c1(c)),
            _ => self.encode(s).is_some(),
        }
    }

    /// `s` in this character set, or `None` when some character has no code in it.
    pub fn encode(self, s: &str) -> Option<Vec<u8>> {
        if s.is_ascii() || self == ResponseCharset::Utf8 {
            return Some(s.as_bytes().to_vec());
        }
        let bytes = match self {
            ResponseCharset::Utf8 => return Some(s.as_bytes().to_vec()),
            ResponseCharset::Ascii => return None,
            ResponseCharset::Latin1 => s
                .chars()
                .map(|c| u8::try_from(u32::from(c)).ok())
                .collect::<Option<Vec<u8>>>()?,
            ResponseCharset::Latin5 => {
                let mut encoder = encoding_rs::WINDOWS_1254.new_encoder();
                let mut out = vec![0; s.len()];
                let (result, read, written) =
                    encoder.encode_from_utf8_without_replacement(s, &mut out, true);
                if result != encoding_rs::EncoderResult::InputEmpty || read != s.len() {
                    return None;
                }
                out.truncate(written);
                out
            }
            other => SpecificCharacterSet::from_code(other.term())?
                .encode(s)
                .ok()?,
        };
        (!bytes.iter().any(|b| (0x80..=0x9F).contains(b))).then_some(bytes)
    }
}

impl std::fmt::Display for ResponseCharset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.term())
    }
}

/// What a query's Specific Character Set (0008,0005) means for its responses and for
/// reading its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QueryCharset {
    /// The set the responses prefer; `None`: the query names none, so the configured
    /// default applies.
    pub(crate) response: Option<ResponseCharset>,
    /// Whether every term is one we know (a defined term, or one dicom-rs reads): when
    /// not, text keys may have been misread and the query is answered with FF01.
    pub(crate) understood: bool,
    /// How the text dicom-rs decoded must be read again (see [`QueryCharset::reread`]).
    reread: Reread,
}

/// The defined terms of Specific Character Set (PS3.3 C.12.1.1.2): none draws FF01, even
/// of a set whose text we cannot read exactly.
const DEFINED_TERMS: [&str; 33] = [
    "ISO_IR 6",
    "ISO_IR 100",
    "ISO_IR 101",
    "ISO_IR 109",
    "ISO_IR 110",
    "ISO_IR 144",
    "ISO_IR 127",
    "ISO_IR 126",
    "ISO_IR 138",
    "ISO_IR 148",
    "ISO_IR 203",
    "ISO_IR 13",
    "ISO_IR 166",
    "ISO_IR 192",
    "GB18030",
    "GBK",
    "ISO 2022 IR 6",
    "ISO 2022 IR 100",
    "ISO 2022 IR 101",
    "ISO 2022 IR 109",
    "ISO 2022 IR 110",
    "ISO 2022 IR 144",
    "ISO 2022 IR 127",
    "ISO 2022 IR 126",
    "ISO 2022 IR 138",
    "ISO 2022 IR 148",
    "ISO 2022 IR 203",
    "ISO 2022 IR 13",
    "ISO 2022 IR 166",
    "ISO 2022 IR 87",
    "ISO 2022 IR 159",
    "ISO 2022 IR 149",
    "ISO 2022 IR 58",
];

/// How dicom-rs's decoding of the query's text is corrected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reread {
    /// dicom-rs decoded with the right set: nothing to do.
    Nothing,
    /// dicom-rs decoded as ISO 8859-1 (its default, or `ISO_IR 100`), which keeps every
    /// byte as one character; the bytes are recovered, ISO 2022 escape sequences removed,
    /// and decoded with this set.
    SingleByte(ResponseCharset),
    /// dicom-rs decoded an ISO 2022 single-byte form with the right set (`ISO 2022 IR 144`
    /// alone) but kept its escape sequences: they are removed.
    StripEscapes,
    /// Japanese ISO 2022 (`ISO 2022 IR 87`, with `ISO 2022 IR 13` or not): dicom-rs read
    /// the text as ISO 8859-1 (first value empty or `ISO 2022 IR 6`) or as Shift JIS
    /// (first value `ISO 2022 IR 13`), both of which keep ASCII and the G1 katakana
    /// recoverable; the bytes are recovered and decoded by [`decode_japanese`].
    Japanese,
}

impl QueryCharset {
    /// No Specific Character Set: the configured default, text as dicom-rs read it.
    pub(crate) const NONE: QueryCharset = QueryCharset {
        response: None,
        understood: true,
        reread: Reread::Nothing,
    };

    /// Reads the values of a Specific Character Set (each trimmed).
    ///
    /// - no value, or one empty value: none named (the configured default);
    /// - one term without code extensions that we write (`ISO_IR 100`): that set;
    /// - ISO 2022 terms (`ISO 2022 IR 6\ISO 2022 IR 100`, `ISO 2022 IR 100`, an empty first
    ///   value meaning `ISO 2022 IR 6`) that name at most one set besides ASCII, a set we
    ///   write: that set;
    /// - anything else (`\ISO 2022 IR 87`, `ISO 2022 IR 13\ISO 2022 IR 87`, `ISO_IR 13`,
    ///   `GB18030`, several sets): `ISO_IR 192`.
    ///
    /// Text is read again where dicom-rs read it with another set (see [`Reread`]).
    pub(crate) fn from_terms(terms: &[String]) -> QueryCharset {
        let terms: Vec<&str> = terms.iter().map(|t| t.trim()).collect();
        let understood = terms.iter().all(|t| {
            t.is_empty()
                || DEFINED_TERMS.contains(t)
                || ResponseCharset::from_term(t).is_some()
                || SpecificCharacterSet::from_code(t).is_some()
        });
        // dicom-rs switches to the first value's set (ignoring the rest); a term it does
        // not know leaves its default, ISO 8859-1.
        let latin1_read = terms.first().is_none_or(|first| {
            matches!(
                SpecificCharacterSet::from_code(first),
                None | Some(SpecificCharacterSet::ISO_IR_6)
                    | Some(SpecificCharacterSet::ISO_IR_100)
            )
        });
        let (response, reread) = match terms.as_slice() {
            [] | [""] => (None, Reread::Nothing),
            [one] if !one.starts_with("ISO 2022") => match ResponseCharset::from_term(one) {
                // dicom-rs lacks ISO 8859-9: its text was read as ISO 8859-1.
                Some(ResponseCharset::Latin5) => (
                    Some(ResponseCharset::Latin5),
                    Reread::SingleByte(ResponseCharset::Latin5),
                ),
                Some(cs) => (Some(cs), Reread::Nothing),
                None => (Some(ResponseCharset::Utf8), Reread::Nothing),
            },
            _ => iso_2022(&terms),
        };
        let reread = match reread {
            Reread::SingleByte(_) if !latin1_read => Reread::StripEscapes,
            other => other,
        };
        QueryCharset {
            response,
            understood,
            reread,
        }
    }

    /// The response set to prefer, given the configured default.
    pub(crate) fn preferred(&self, configured: ResponseCharset) -> ResponseCharset {
        self.response.unwrap_or(configured)
    }

    /// A text value of the query as the console meant it (see [`Reread`]). A value that
    /// cannot be read again is kept as dicom-rs read it.
    pub(crate) fn reread(&self, s: String) -> String {
        if s.is_ascii() && !s.contains('\x1b') {
            return s;
        }
        let decoded = match self.reread {
            Reread::Nothing => None,
            Reread::StripEscapes => Some(strip_escape_chars(&s)),
            Reread::SingleByte(cs) => {
                latin1_bytes(&s).and_then(|bytes| decode_single_byte(&strip_escapes(&bytes), cs))
            }
            Reread::Japanese => japanese_bytes(&s).and_then(|bytes| decode_japanese(&bytes)),
        };
        decoded.unwrap_or(s)
    }
}

/// The reading of several (or ISO 2022) terms.
fn iso_2022(terms: &[&str]) -> (Option<ResponseCharset>, Reread) {
    let utf8 = (Some(ResponseCharset::Utf8), Reread::Nothing);
    let mut sets = Vec::new();
    for t in terms {
        if t.is_empty() || *t == "ISO 2022 IR 6" {
            continue;
        }
        match t.strip_prefix("ISO 2022 IR ") {
            Some(number) => sets.push(number),
            None => return utf8,
        }
    }
    match sets.as_slice() {
        [] => (
            Some(ResponseCharset::Ascii),
            Reread::SingleByte(ResponseCharset::Latin1),
        ),
        [one] if ResponseCharset::from_ir(one).is_some() => {
            let cs = ResponseCharset::from_ir(one);
            (cs, cs.map_or(Reread::Nothing, Reread::SingleByte))
        }
        japanese if japanese.iter().all(|n| matches!(*n, "13" | "87")) => {
            (Some(ResponseCharset::Utf8), Reread::Japanese)
        }
        _ => utf8,
    }
}

/// The bytes of text an ISO 8859-1 decoder read (one character per byte).
fn latin1_bytes(s: &str) -> Option<Vec<u8>> {
    s.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect()
}

/// The bytes of text read as ISO 8859-1 or as Shift JIS, for Japanese ISO 2022: ASCII,
/// bytes A1–DF (read by Shift JIS as half-width katakana U+FF61–U+FF9F), and the other
/// bytes ISO 8859-1 kept.
fn japanese_bytes(s: &str) -> Option<Vec<u8>> {
    s.chars()
        .map(|c| match u32::from(c) {
            k @ 0xFF61..=0xFF9F => u8::try_from(k - 0xFF61 + 0xA1).ok(),
            b => u8::try_from(b).ok(),
        })
        .collect()
}

/// Japanese ISO 2022 text (PS3.5 6.1.2.5.3, Japanese in H.3): G0 is ASCII (or JIS X 0201
/// romaji, `ESC ( B` / `ESC ( J`) or JIS X 0208 (`ESC $ B`, `ESC $ @`), two bytes per
/// character, decoded with dicom-rs's ISO-2022-JP codec; bytes A1–DF are G1 JIS X 0201
/// katakana (`ISO 2022 IR 13`). `None` for anything else (JIS X 0212 `ESC $ ( D`, other
/// bytes above 7F, a JIS X 0208 run of odd length).
fn decode_japanese(bytes: &[u8]) -> Option<String> {
    let codec = SpecificCharacterSet::from_code("ISO 2022 IR 87")?;
    let mut out = String::with_capacity(bytes.len());
    let mut run: Vec<u8> = Vec::new();
    let flush = |run: &mut Vec<u8>, out: &mut String| -> Option<()> {
        if run.is_empty() {
            return Some(());
        }
        if run.len() % 2 == 1 {
            return None;
        }
        let mut coded = b"\x1b$B".to_vec();
        coded.append(run);
        coded.extend_from_slice(b"\x1b(B");
        out.push_str(&codec.decode(&coded).ok()?);
        Some(())
    };
    let mut kanji = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == 0x1b {
            flush(&mut run, &mut out)?;
            let start = i + 1;
            i = start;
            while i < bytes.len() && (0x20..=0x2F).contains(&bytes[i]) {
                i += 1;
            }
            let seq = bytes.get(start..=i)?;
            kanji = match seq {
                b"$B" | b"$@" => true,
                b"(B" | b"(J" | b")I" => false,
                _ => return None,
            };
            i += 1;
        } else if kanji && (0x21..=0x7E).contains(&b) {
            run.push(b);
            i += 1;
        } else {
            flush(&mut run, &mut out)?;
            match b {
                0x00..=0x7F => out.push(char::from(b)),
                0xA1..=0xDF => out.push(char::from_u32(0xFF61 + u32::from(b - 0xA1))?),
                _ => return None,
            }
            i += 1;
        }
    }
    flush(&mut run, &mut out)?;
    Some(out)
}

/// Decoded text without ISO 2022 escape sequences (all ASCII, so they survive any
/// single-byte decoder as characters).
fn strip_escape_chars(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            out.push(c);
            continue;
        }
        while chars.next_if(|c| ('\x20'..='\x2f').contains(c)).is_some() {}
        chars.next();
    }
    out
}

/// `bytes` without ISO 2022 escape sequences (ESC, intermediate bytes 0x20–0x2F, a final
/// byte).
fn strip_escapes(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == 0x1b {
            i += 1;
            while i < bytes.len() && (0x20..=0x2F).contains(&bytes[i]) {
                i += 1;
            }
            i += 1;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// `bytes` decoded with a single-byte set.
fn decode_single_byte(bytes: &[u8], cs: ResponseCharset) -> Option<String> {
    match cs {
        ResponseCharset::Latin1 | ResponseCharset::Ascii => {
            Some(bytes.iter().map(|&b| char::from(b)).collect())
        }
        ResponseCharset::Latin5 => {
            let (text, malformed) = encoding_rs::WINDOWS_1254.decode_without_bom_handling(bytes);
            (!malformed).then(|| text.into_owned())
        }
        ResponseCharset::Utf8 => String::from_utf8(bytes.to_vec()).ok(),
        other => SpecificCharacterSet::from_code(other.term())?
            .decode(bytes)
            .ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn terms_round_trip() {
        for cs in ALL {
            assert_eq!(ResponseCharset::from_term(cs.term()), Some(cs));
        }
        assert_eq!(ResponseCharset::from_term(""), Some(ResponseCharset::Ascii));
        assert_eq!(
            ResponseCharset::from_term(" ISO_IR 100 "),
            Some(ResponseCharset::Latin1)
        );
        assert_eq!(
            ResponseCharset::from_term("ISO_IR_148"),
            Some(ResponseCharset::Latin5)
        );
        assert_eq!(ResponseCharset::from_term("ISO 2022 IR 87"), None);
        assert_eq!(ResponseCharset::from_term("ISO_IR 13"), None);
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
        assert!(ResponseCharset::Latin2.can_represent("Łukasz^Żółć"));
        assert!(!ResponseCharset::Latin2.can_represent("Ørsted"));
        assert!(ResponseCharset::Cyrillic.can_represent("Иванов^Пётр"));
        assert!(ResponseCharset::Greek.can_represent("Παπαδόπουλος"));
        assert!(ResponseCharset::Hebrew.can_represent("כהן"));
        assert!(ResponseCharset::Arabic.can_represent("محمد"));
        assert!(ResponseCharset::Thai.can_represent("สมชาย"));
        assert!(ResponseCharset::Latin5.can_represent("Yılmaz^Şükrü"));
        assert!(!ResponseCharset::Latin1.can_represent("Yılmaz"));
        // windows-1254 and windows-874 extras are not in the ISO sets.
        assert!(!ResponseCharset::Latin5.can_represent("5 €"));
        assert!(!ResponseCharset::Thai.can_represent("5 €"));
        // A C1 control is not text.
        assert!(!ResponseCharset::Latin1.can_represent("a\u{85}b"));
    }

    #[test]
    fn encodings_are_the_iso_bytes() {
        let e = |cs: ResponseCharset, s: &str| cs.encode(s).unwrap_or_default();
        assert_eq!(e(ResponseCharset::Latin1, "Bélanger"), b"B\xe9langer");
        assert_eq!(e(ResponseCharset::Latin2, "Ł"), b"\xa3");
        assert_eq!(e(ResponseCharset::Latin5, "Ş"), b"\xde");
        assert_eq!(e(ResponseCharset::Cyrillic, "Я"), b"\xcf");
        assert_eq!(e(ResponseCharset::Utf8, "é"), "é".as_bytes());
        for cs in ALL {
            assert_eq!(e(cs, "DOE^JOHN"), b"DOE^JOHN");
        }
    }

    #[test]
    fn a_query_charset_names_the_responses_set() {
        let pick = |v: &[&str]| QueryCharset::from_terms(&terms(v)).response;
        assert_eq!(pick(&[]), None);
        assert_eq!(pick(&[""]), None);
        assert_eq!(pick(&["ISO_IR 100"]), Some(ResponseCharset::Latin1));
        assert_eq!(pick(&["ISO_IR 6"]), Some(ResponseCharset::Ascii));
        assert_eq!(pick(&["ISO_IR 144"]), Some(ResponseCharset::Cyrillic));
        assert_eq!(pick(&["ISO_IR 148"]), Some(ResponseCharset::Latin5));
        assert_eq!(pick(&["ISO_IR 192"]), Some(ResponseCharset::Utf8));
        assert_eq!(pick(&["ISO 2022 IR 100"]), Some(ResponseCharset::Latin1));
        assert_eq!(
            pick(&["ISO 2022 IR 6", "ISO 2022 IR 100"]),
            Some(ResponseCharset::Latin1)
        );
        assert_eq!(
            pick(&["", "ISO 2022 IR 101"]),
            Some(ResponseCharset::Latin2)
        );
        assert_eq!(pick(&["ISO 2022 IR 6"]), Some(ResponseCharset::Ascii));
        // Sets we cannot write: UTF-8.
        assert_eq!(pick(&["", "ISO 2022 IR 87"]), Some(ResponseCharset::Utf8));
        assert_eq!(
            pick(&["ISO 2022 IR 13", "ISO 2022 IR 87"]),
            Some(ResponseCharset::Utf8)
        );
        assert_eq!(pick(&["ISO_IR 13"]), Some(ResponseCharset::Utf8));
        assert_eq!(pick(&["GB18030"]), Some(ResponseCharset::Utf8));
        assert_eq!(
            pick(&["ISO 2022 IR 100", "ISO 2022 IR 144"]),
            Some(ResponseCharset::Utf8)
        );
        assert_eq!(pick(&["ISO_IR 999"]), Some(ResponseCharset::Utf8));
    }

    #[test]
    fn only_unknown_terms_are_not_understood() {
        let understood = |v: &[&str]| QueryCharset::from_terms(&terms(v)).understood;
        assert!(understood(&["", "ISO 2022 IR 87"]));
        assert!(understood(&["ISO 2022 IR 6", "ISO 2022 IR 100"]));
        assert!(understood(&["ISO_IR 148"]));
        assert!(understood(&["GB18030"]));
        assert!(understood(&["", "ISO 2022 IR 87", "ISO 2022 IR 159"]));
        assert!(understood(&["ISO_IR 203"]));
        assert!(!understood(&["ISO_IR 999"]));
        assert!(!understood(&["", "ISO 2022 IR 87", "KLINGON"]));
    }

    #[test]
    fn text_dicom_rs_read_as_latin1_is_read_again() {
        let cs = |v: &[&str]| QueryCharset::from_terms(&terms(v));
        // ISO 8859-9 bytes DE (Ş) and FD (ı), which dicom-rs read as Þ and ý.
        assert_eq!(
            cs(&["ISO_IR 148"]).reread("Þahin^Ayýe".into()),
            "Şahin^Ayıe"
        );
        // ISO 2022: ESC - A designates ISO 8859-1 as G1.
        assert_eq!(
            cs(&["ISO 2022 IR 6", "ISO 2022 IR 100"]).reread("\u{1b}-AB\u{e9}langer".into()),
            "Bélanger"
        );
        assert_eq!(
            cs(&["", "ISO 2022 IR 144"]).reread("\u{1b}-L\u{bf}".into()),
            "П"
        );
        // JIS X 0208: ESC $ B, 山田 = 3B 33 45 44, ESC ( B back to ASCII.
        assert_eq!(
            cs(&["", "ISO 2022 IR 87"]).reread("Yamada^Taro=\u{1b}$B;3ED\u{1b}(B".into()),
            "Yamada^Taro=山田"
        );
        // With katakana (ISO 2022 IR 13 first: dicom-rs read Shift JIS, so the byte B1 is
        // already ｱ): ｱ, then 山田 in JIS X 0208.
        assert_eq!(
            cs(&["ISO 2022 IR 13", "ISO 2022 IR 87"])
                .reread("\u{ff71}^\u{1b}$B;3ED\u{1b}(J".into()),
            "ｱ^山田"
        );
        // JIS X 0212 is not read: kept as it came.
        let jis0212 = "\u{1b}$(D+!\u{1b}(B".to_string();
        assert_eq!(
            cs(&["", "ISO 2022 IR 87", "ISO 2022 IR 159"]).reread(jis0212.clone()),
            jis0212
        );
        // dicom-rs decoded ISO 2022 IR 144 alone itself, escapes kept: they go.
        assert_eq!(cs(&["ISO 2022 IR 144"]).reread("\u{1b}-LП".into()), "П");
        // dicom-rs decoded ISO_IR 100 and ISO_IR 192 itself.
        assert_eq!(cs(&["ISO_IR 100"]).reread("Bé".into()), "Bé");
        assert_eq!(cs(&["ISO_IR 192"]).reread("山".into()), "山");
    }
}
