//! The matching types of PS3.4 C.2.2.2 on decoded (Unicode) values: single value,
//! wildcard, list of values, UID list, and ranges on dates and times, including the
//! combined date-time range of a DA and TM pair.
//!
//! Universal matching is not represented here: a universal key builds no matcher at all.

use jiff::civil::{Date, DateTime, Time};

/// Why a key's value cannot be matched: the text goes to ErrorComment and the logs
/// (status A900).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum ValueError {
    /// A UI value with other characters than digits and dots, or longer than 64.
    #[error("{0:?} is not a UID (wildcards are not allowed on UI)")]
    Uid(String),
    /// A DS value that is not a finite decimal number.
    #[error("{0:?} is not a decimal number")]
    Number(String),
    /// A DA value that is neither a date nor a date range.
    #[error("{0:?} is not a date or date range")]
    Date(String),
    /// A TM value that is neither a time nor a time range.
    #[error("{0:?} is not a time or time range")]
    Time(String),
}

// ---------------------------------------------------------------------------------------
// Wildcards
// ---------------------------------------------------------------------------------------

/// Whether `text` matches `pattern`, where `*` stands for any run of characters (also
/// none) and `?` for exactly one character. Characters, not bytes: `?` matches `é`.
pub(crate) fn glob(pattern: &[char], text: &[char]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    // Where the last `*` was, and the text position it currently absorbs up to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// Whether a value uses wildcards.
fn has_wildcards(s: &str) -> bool {
    s.contains(['*', '?'])
}

// ---------------------------------------------------------------------------------------
// Text (AE, CS, LO, SH, ...): case-sensitive
// ---------------------------------------------------------------------------------------

/// One element of a text key's value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TextPattern {
    /// Single value matching: equal after removing padding spaces.
    Exact(String),
    /// Wildcard matching.
    Wild(Vec<char>),
}

impl TextPattern {
    fn new(value: &str) -> TextPattern {
        if has_wildcards(value) {
            TextPattern::Wild(value.chars().collect())
        } else {
            TextPattern::Exact(value.to_owned())
        }
    }

    fn matches(&self, value: &str) -> bool {
        match self {
            TextPattern::Exact(s) => s == value,
            TextPattern::Wild(p) => glob(p, &value.chars().collect::<Vec<_>>()),
        }
    }
}

/// A non-universal text key: a list of values (usually one), any of which may match.
/// Case-sensitive, as PS3.4 requires for every VR but PN; leading and trailing spaces are
/// padding on both sides.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TextMatcher {
    alts: Vec<TextPattern>,
}

impl TextMatcher {
    /// The matcher for the (already trimmed, non-empty) values of a key.
    pub(crate) fn new(values: &[String]) -> TextMatcher {
        TextMatcher {
            alts: values.iter().map(|v| TextPattern::new(v)).collect(),
        }
    }

    /// Whether an entry's value matches; an entry without a value never does.
    pub(crate) fn matches(&self, value: Option<&str>) -> bool {
        let Some(v) = value else { return false };
        let v = v.trim_matches(' ');
        self.alts.iter().any(|a| a.matches(v))
    }

    /// The value when the key is one exact value (no list, no wildcards).
    pub(crate) fn exact_single(&self) -> Option<&str> {
        match self.alts.as_slice() {
            [TextPattern::Exact(s)] => Some(s),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Person names: case-insensitive, component-aware
// ---------------------------------------------------------------------------------------

// Case folding and normalization are the store's (`worklist_store::pn`), which also
// folds the patient-name search key the candidate filter reads: one definition for both.
use worklist_store::pn::fold_chars as fold;
pub(crate) use worklist_store::pn::normalize_pn;

/// At most this many patient-name prefixes go to the store (one index range each); a
/// query with more values is narrowed by its other keys only.
const MAX_NAME_PREFIXES: usize = 16;

/// One element of a PN key's value, normalized and case-folded.
#[derive(Debug, Clone, PartialEq)]
struct PnPattern {
    /// The whole value.
    whole: Vec<char>,
    /// Whether the value names component groups (`=`): then it is compared whole.
    grouped: bool,
    /// The components of a value with `^`; `None` for a value without.
    components: Option<Vec<Vec<char>>>,
}

impl PnPattern {
    fn new(normalized: &str) -> PnPattern {
        let grouped = normalized.contains('=');
        let components = (!grouped && normalized.contains('^'))
            .then(|| normalized.split('^').map(fold).collect());
        PnPattern {
            whole: fold(normalized),
            grouped,
            components,
        }
    }

    /// The folded literal start that every name this value matches has in its first
    /// component group (possibly empty): the characters before the first wildcard of the
    /// family component for a value with `^` (the component-wise rule needs the family
    /// component to match it, and the family component starts the group), of the whole
    /// value without `^` (the whole group and its family component both start with it),
    /// and before the first `=` too for a value with `=` (compared whole). `^JOHN` and
    /// `*son` have none.
    fn literal_prefix(&self) -> String {
        let source = match (&self.components, self.grouped) {
            (Some(comps), false) => comps.first().map(Vec::as_slice).unwrap_or(&[]),
            _ => self.whole.as_slice(),
        };
        source
            .iter()
            .take_while(|c| !matches!(c, '*' | '?' | '='))
            .collect()
    }

    /// Whether one (normalized) entry name matches.
    fn matches(&self, entry: &str) -> bool {
        if self.grouped {
            return glob(&self.whole, &fold(entry));
        }
        // A query without `=` is compared with each component group of the entry: the
        // alphabetic one, and also the ideographic and phonetic ones when present.
        entry
            .split('=')
            .filter(|g| !g.is_empty())
            .any(|group| self.matches_group(group))
    }

    fn matches_group(&self, group: &str) -> bool {
        let folded = fold(group);
        if glob(&self.whole, &folded) {
            return true;
        }
        let comps: Vec<Vec<char>> = group.split('^').map(fold).collect();
        match &self.components {
            // `DOE` (or `DO*`) alone: the family name component.
            None => comps
                .first()
                .is_some_and(|family| glob(&self.whole, family)),
            // `DOE^J*`: component by component; an empty query component matches anything,
            // and so does a component the query leaves out (`DOE^JOHN` finds
            // `DOE^JOHN^Q`).
            Some(qcomps) => qcomps.iter().enumerate().all(|(i, q)| {
                q.is_empty() || glob(q, comps.get(i).map(Vec::as_slice).unwrap_or(&[]))
            }),
        }
    }
}

/// A non-universal person-name key. See the module documentation of
/// [`query`](super) for the rules.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PnMatcher {
    alts: Vec<PnPattern>,
}

impl PnMatcher {
    /// The matcher for a key's values; `None` when every value is empty once normalized
    /// (`^`, `^^^^`), which is universal matching.
    pub(crate) fn new(values: &[String]) -> Option<PnMatcher> {
        let alts: Vec<PnPattern> = values
            .iter()
            .map(|v| normalize_pn(v))
            .filter(|v| !v.is_empty())
            .map(|v| PnPattern::new(&v))
            .collect();
        (!alts.is_empty()).then_some(PnMatcher { alts })
    }

    /// Whether an entry's name matches; an entry without a name never does.
    pub(crate) fn matches(&self, value: Option<&str>) -> bool {
        let Some(v) = value else { return false };
        let v = normalize_pn(v);
        self.alts.iter().any(|a| a.matches(&v))
    }

    /// Folded prefixes such that the first component group of every single-group name
    /// this key matches, folded, starts with one of them (see
    /// [`worklist_store::pn`]): each value's literal start, without those that another
    /// one's start already covers, in order. `None` when a value has no literal start
    /// (`*son`, `^JOHN`, `=山田`), or when there would be more than
    /// [`MAX_NAME_PREFIXES`].
    pub(crate) fn name_key_prefixes(&self) -> Option<Vec<String>> {
        let mut prefixes = self
            .alts
            .iter()
            .map(|a| Some(a.literal_prefix()).filter(|p| !p.is_empty()))
            .collect::<Option<Vec<String>>>()?;
        prefixes.sort();
        // Sorted, a prefix comes just before the values it covers.
        let mut kept: Vec<String> = Vec::with_capacity(prefixes.len());
        for p in prefixes {
            if !kept.last().is_some_and(|k| p.starts_with(k.as_str())) {
                kept.push(p);
            }
        }
        (kept.len() <= MAX_NAME_PREFIXES).then_some(kept)
    }
}

// ---------------------------------------------------------------------------------------
// UIDs and numbers
// ---------------------------------------------------------------------------------------

/// A list of UIDs, matched exactly (no wildcards on UI).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UidMatcher {
    uids: Vec<String>,
}

impl UidMatcher {
    /// The matcher for a UID key's values; an error names a value that is not a UID.
    pub(crate) fn new(values: &[String]) -> Result<UidMatcher, ValueError> {
        for v in values {
            if v.len() > 64 || !v.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                return Err(ValueError::Uid(v.clone()));
            }
        }
        Ok(UidMatcher {
            uids: values.to_vec(),
        })
    }

    /// Whether the entry's UID is one of the list.
    pub(crate) fn matches(&self, value: &str) -> bool {
        let v = value.trim_end_matches(['\0', ' ']);
        self.uids.iter().any(|u| u == v)
    }
}

/// A list of decimal numbers (DS), matched by value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NumberMatcher {
    values: Vec<f64>,
}

impl NumberMatcher {
    /// The matcher for a DS key's values; an error names a value that is not a number.
    pub(crate) fn new(values: &[String]) -> Result<NumberMatcher, ValueError> {
        let values = values
            .iter()
            .map(|v| {
                v.parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| ValueError::Number(v.clone()))
            })
            .collect::<Result<_, _>>()?;
        Ok(NumberMatcher { values })
    }

    /// Whether the entry's number equals one of the list.
    pub(crate) fn matches(&self, value: Option<f64>) -> bool {
        let Some(v) = value else { return false };
        self.values
            .iter()
            .any(|q| (q - v).abs() <= 1e-9 * q.abs().max(1.0))
    }
}

// ---------------------------------------------------------------------------------------
// Dates and times
// ---------------------------------------------------------------------------------------

/// A DA key: one date (`lo == hi`) or a range with optional ends, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DateRange {
    pub(crate) lo: Option<Date>,
    pub(crate) hi: Option<Date>,
}

impl DateRange {
    /// Parses `YYYYMMDD`, `a-b`, `-b` or `a-` (also the legacy `YYYY.MM.DD`).
    pub(crate) fn parse(s: &str) -> Result<DateRange, ValueError> {
        let s = s.trim();
        let bad = || ValueError::Date(s.to_owned());
        let date = |p: &str| parse_date(p.trim()).ok_or_else(bad);
        match s.split_once('-') {
            None => {
                let d = date(s)?;
                Ok(DateRange {
                    lo: Some(d),
                    hi: Some(d),
                })
            }
            Some((a, b)) => {
                let (a, b) = (a.trim(), b.trim());
                if a.is_empty() && b.is_empty() {
                    return Err(bad());
                }
                Ok(DateRange {
                    lo: (!a.is_empty()).then(|| date(a)).transpose()?,
                    hi: (!b.is_empty()).then(|| date(b)).transpose()?,
                })
            }
        }
    }

    /// Whether a date lies in the range; a missing date never does.
    pub(crate) fn matches(&self, d: Option<Date>) -> bool {
        let Some(d) = d else { return false };
        self.lo.is_none_or(|lo| lo <= d) && self.hi.is_none_or(|hi| d <= hi)
    }
}

/// Parses a DA value: `YYYYMMDD`, or the ACR-NEMA form `YYYY.MM.DD`.
fn parse_date(s: &str) -> Option<Date> {
    if s.len() == 10 && s.as_bytes().get(4) == Some(&b'.') && s.as_bytes().get(7) == Some(&b'.') {
        return worklist_store::parse_da(&s.replace('.', ""));
    }
    worklist_store::parse_da(s)
}

/// A TM key: the span named by one time (`1000` is 10:00:00 through 10:00:59.999…), or a
/// range whose lower end is the start of its first span and whose upper end is the end of
/// its last span (`-1159` includes 11:59:59).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeRange {
    pub(crate) lo: Option<Time>,
    pub(crate) hi: Option<Time>,
}

impl TimeRange {
    /// Parses `HH`, `HHMM`, `HHMMSS`, `HHMMSS.FFFFFF` (and the legacy `HH:MM[:SS]`), or a
    /// range of them: `a-b`, `-b`, `a-`.
    pub(crate) fn parse(s: &str) -> Result<TimeRange, ValueError> {
        let s = s.trim();
        let bad = || ValueError::Time(s.to_owned());
        let span = |p: &str| parse_time_span(p.trim()).ok_or_else(bad);
        match s.split_once('-') {
            None => {
                let (lo, hi) = span(s)?;
                Ok(TimeRange {
                    lo: Some(lo),
                    hi: Some(hi),
                })
            }
            Some((a, b)) => {
                let (a, b) = (a.trim(), b.trim());
                if a.is_empty() && b.is_empty() {
                    return Err(bad());
                }
                Ok(TimeRange {
                    lo: (!a.is_empty()).then(|| span(a).map(|x| x.0)).transpose()?,
                    hi: (!b.is_empty()).then(|| span(b).map(|x| x.1)).transpose()?,
                })
            }
        }
    }

    /// Whether a time of day lies in the range, on any date. A range whose lower end is
    /// after its upper end (`2200-0200`) wraps around midnight.
    fn matches_time_of_day(&self, t: Time) -> bool {
        match (self.lo, self.hi) {
            (Some(lo), Some(hi)) if lo > hi => t >= lo || t <= hi,
            (lo, hi) => lo.is_none_or(|lo| lo <= t) && hi.is_none_or(|hi| t <= hi),
        }
    }
}

/// The first and last instants of the span a TM value names.
fn parse_time_span(s: &str) -> Option<(Time, Time)> {
    let (whole, frac) = match s.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (s, None),
    };
    let whole: String = if whole.contains(':') {
        // ACR-NEMA `HH:MM` / `HH:MM:SS`.
        let parts: Vec<&str> = whole.split(':').collect();
        if parts.len() > 3 || parts.iter().any(|p| p.len() != 2) {
            return None;
        }
        parts.concat()
    } else {
        whole.to_owned()
    };
    if !whole.bytes().all(|b| b.is_ascii_digit()) || !matches!(whole.len(), 2 | 4 | 6) {
        return None;
    }
    let frac = frac.filter(|f| !f.is_empty());
    if let Some(f) = frac
        && (whole.len() != 6 || f.len() > 6 || !f.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let num = |i: usize| -> Option<i8> { whole.get(i..i + 2)?.parse().ok() };
    let h = num(0)?;
    let m = if whole.len() >= 4 { num(2)? } else { 0 };
    // A leap second (60) is the last second of its minute.
    let sec = if whole.len() >= 6 { num(4)?.min(59) } else { 0 };
    let (nanos, unit) = match frac {
        Some(f) => {
            let digits = u32::try_from(f.len()).ok()?;
            let scale = 10i32.pow(9 - digits);
            (f.parse::<i32>().ok()? * scale, scale)
        }
        None => (0, 1_000_000_000),
    };
    let lo = Time::new(h, m, sec, nanos).ok()?;
    let hi = match whole.len() {
        2 => Time::new(h, 59, 59, 999_999_999),
        4 => Time::new(h, m, 59, 999_999_999),
        _ => Time::new(h, m, sec, nanos + unit - 1),
    }
    .ok()?;
    Some((lo, hi))
}

/// A DA key and its TM companion (SPS Start Date and Time, End Date and Time), matched
/// together against one date-time as PS3.4 C.2.2.2.5 combined date-time matching:
///
/// - with a date: one range from the first date at the time's lower end (00:00 when the
///   time has none) to the last date at the time's upper end (end of day when none).
///   `20261126-20261127` + `0800-1200` runs from 26 Nov 08:00 to 27 Nov 12:00; a single
///   date with `2200-0200` is empty; an open date end leaves that end open;
/// - with a time only: that time of day on any date (wrapping midnight when reversed);
/// - with a date only: whole days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct DateTimeMatcher {
    pub(crate) date: Option<DateRange>,
    pub(crate) time: Option<TimeRange>,
}

impl DateTimeMatcher {
    /// Whether neither key restricts anything.
    pub(crate) fn is_universal(&self) -> bool {
        self.date.is_none() && self.time.is_none()
    }

    /// Whether an entry's date-time matches; an entry without one matches only a
    /// universal pair.
    pub(crate) fn matches(&self, dt: Option<DateTime>) -> bool {
        if self.is_universal() {
            return true;
        }
        let Some(dt) = dt else { return false };
        match (self.date, self.time) {
            (Some(d), time) => {
                let t_lo = time.and_then(|t| t.lo).unwrap_or(Time::MIN);
                let t_hi = time.and_then(|t| t.hi).unwrap_or(Time::MAX);
                d.lo.is_none_or(|lo| lo.to_datetime(t_lo) <= dt)
                    && d.hi.is_none_or(|hi| dt <= hi.to_datetime(t_hi))
            }
            (None, Some(t)) => t.matches_time_of_day(dt.time()),
            (None, None) => true,
        }
    }

    /// The first and last dates a matching date-time can fall on (open ends `None`).
    pub(crate) fn date_bounds(&self) -> (Option<Date>, Option<Date>) {
        match self.date {
            Some(d) => (d.lo, d.hi),
            None => (None, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::{date, time};

    fn g(p: &str, t: &str) -> bool {
        glob(
            &p.chars().collect::<Vec<_>>(),
            &t.chars().collect::<Vec<_>>(),
        )
    }

    #[test]
    fn glob_basics() {
        assert!(g("*", ""));
        assert!(g("*", "ABC"));
        assert!(g("A*", "ABC"));
        assert!(g("*C", "ABC"));
        assert!(g("A*C", "AC"));
        assert!(g("A?C", "ABC"));
        assert!(!g("A?C", "AC"));
        assert!(!g("A?C", "ABBC"));
        assert!(g("*B*B*", "ABBA"));
        assert!(!g("*B*B*B*", "ABBA"));
        assert!(g("H?bert", "Hébert"));
        assert!(!g("H?bert", "Hbert"));
        assert!(g("a*b*c", "aXbYbZc"));
        assert!(!g("ABC", "ABCD"));
        assert!(!g("", "A"));
        assert!(g("", ""));
    }

    #[test]
    fn text_is_case_sensitive_and_padding_insensitive() {
        let m = TextMatcher::new(&["MR".into()]);
        assert!(m.matches(Some("MR")));
        assert!(m.matches(Some(" MR ")));
        assert!(!m.matches(Some("mr")));
        assert!(!m.matches(Some("MRI")));
        assert!(!m.matches(None));
        assert_eq!(m.exact_single(), Some("MR"));
        assert_eq!(TextMatcher::new(&["M*".into()]).exact_single(), None);
        assert_eq!(
            TextMatcher::new(&["MR".into(), "CT".into()]).exact_single(),
            None
        );
    }

    #[test]
    fn pn_normalization() {
        assert_eq!(normalize_pn("DOE^JOHN^^^"), "DOE^JOHN");
        assert_eq!(normalize_pn(" DOE ^ JOHN "), "DOE^JOHN");
        assert_eq!(normalize_pn("^^^^"), "");
        assert_eq!(normalize_pn("DOE^JOHN=="), "DOE^JOHN");
        assert_eq!(
            normalize_pn("Yamada^Tarou=山田^太郎="),
            "Yamada^Tarou=山田^太郎"
        );
    }

    fn pn(q: &str, e: &str) -> bool {
        PnMatcher::new(&[q.to_owned()]).is_some_and(|m| m.matches(Some(e)))
    }

    #[test]
    fn pn_rules() {
        // Case-insensitive, Unicode-aware.
        assert!(pn("doe^john", "DOE^JOHN"));
        assert!(pn("hébert^anne", "HÉBERT^ANNE"));
        // Family name alone.
        assert!(pn("DOE", "DOE^JOHN"));
        assert!(pn("doe", "Doe^John"));
        assert!(!pn("JOHN", "DOE^JOHN"));
        assert!(!pn("DO", "DOE^JOHN"));
        // Family name with wildcards, or a whole-name wildcard.
        assert!(pn("D?E", "DOE^JOHN"));
        assert!(pn("DO*", "DOE^JOHN"));
        assert!(pn("*JOHN", "DOE^JOHN"));
        assert!(!pn("*JANE", "DOE^JOHN"));
        // Component-wise with `^`.
        assert!(pn("DOE^J*", "DOE^JOHN^Q"));
        assert!(pn("^JOHN", "DOE^JOHN"));
        assert!(pn("DOE^JOHN", "DOE^JOHN^Q"));
        assert!(!pn("DOE^JANE", "DOE^JOHN"));
        assert!(!pn("SMITH^J*", "DOE^JOHN"));
        // `?` is one character.
        assert!(pn("H?BERT", "Hébert^Anne"));
        // Other component groups.
        assert!(pn("山田", "Yamada^Tarou=山田^太郎"));
        assert!(pn("yamada^tarou=山田^太郎", "Yamada^Tarou=山田^太郎"));
        // Universal when nothing is left.
        assert!(PnMatcher::new(&["^^".into()]).is_none());
        assert!(!PnMatcher::new(&["DOE".into()]).is_some_and(|m| m.matches(None)));
    }

    #[test]
    fn uid_list() {
        let m = UidMatcher::new(&["1.2.3".into(), "1.2.4".into()]).unwrap();
        assert!(m.matches("1.2.3"));
        assert!(m.matches("1.2.4\0"));
        assert!(!m.matches("1.2.5"));
        assert!(!m.matches("1.2.34"));
        assert!(UidMatcher::new(&["1.2.*".into()]).is_err());
    }

    #[test]
    fn numbers() {
        let m = NumberMatcher::new(&["72.5".into(), "80".into()]).unwrap();
        assert!(m.matches(Some(72.5)));
        assert!(m.matches(Some(80.0)));
        assert!(!m.matches(Some(72.0)));
        assert!(!m.matches(None));
        assert!(NumberMatcher::new(&["7*".into()]).is_err());
    }

    #[test]
    fn date_ranges() {
        let r = DateRange::parse("20261126-20261127").unwrap();
        assert!(!r.matches(Some(date(2026, 11, 25))));
        assert!(r.matches(Some(date(2026, 11, 26))));
        assert!(r.matches(Some(date(2026, 11, 27))));
        assert!(!r.matches(Some(date(2026, 11, 28))));
        assert!(!r.matches(None));
        let open_hi = DateRange::parse("20261126-").unwrap();
        assert!(open_hi.matches(Some(date(2099, 1, 1))));
        assert!(!open_hi.matches(Some(date(2026, 11, 25))));
        let open_lo = DateRange::parse("-20261126").unwrap();
        assert!(open_lo.matches(Some(date(1900, 1, 1))));
        assert!(!open_lo.matches(Some(date(2026, 11, 27))));
        assert_eq!(
            DateRange::parse("2026.11.26").unwrap(),
            DateRange::parse("20261126").unwrap()
        );
        for bad in [
            "-",
            "2026112",
            "20261326",
            "2026-11-26",
            "x",
            "20261126-2026112",
        ] {
            assert!(DateRange::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn time_spans() {
        let span = |s| parse_time_span(s).unwrap();
        assert_eq!(
            span("10"),
            (time(10, 0, 0, 0), time(10, 59, 59, 999_999_999))
        );
        assert_eq!(
            span("1000"),
            (time(10, 0, 0, 0), time(10, 0, 59, 999_999_999))
        );
        assert_eq!(
            span("100000"),
            (time(10, 0, 0, 0), time(10, 0, 0, 999_999_999))
        );
        assert_eq!(
            span("100000.5"),
            (time(10, 0, 0, 500_000_000), time(10, 0, 0, 599_999_999))
        );
        assert_eq!(span("10:30"), span("1030"));
        assert_eq!(span("235960").0, time(23, 59, 59, 0));
        for bad in [
            "1",
            "100",
            "2400",
            "1060",
            "10000a",
            "1000.5",
            "100000.1234567",
            "",
        ] {
            assert!(parse_time_span(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn time_ranges_by_precision() {
        let tm = |q: &str, t: Time| {
            DateTimeMatcher {
                date: None,
                time: Some(TimeRange::parse(q).unwrap()),
            }
            .matches(Some(date(2026, 11, 26).to_datetime(t)))
        };
        assert!(tm("1000", time(10, 0, 0, 0)));
        assert!(tm("1000", time(10, 0, 59, 0)));
        assert!(!tm("1000", time(10, 1, 0, 0)));
        assert!(tm("-1159", time(11, 59, 59, 0)));
        assert!(!tm("-1159", time(12, 0, 0, 0)));
        assert!(tm("1000-", time(10, 0, 0, 0)));
        assert!(!tm("1000-", time(9, 59, 59, 0)));
        assert!(tm("08-12", time(12, 59, 59, 0)));
        assert!(!tm("080000-120000", time(12, 0, 1, 0)));
        // Reversed: wraps around midnight.
        assert!(tm("2200-0200", time(23, 0, 0, 0)));
        assert!(tm("2200-0200", time(1, 0, 0, 0)));
        assert!(!tm("2200-0200", time(12, 0, 0, 0)));
        for bad in ["-", "10-11-12", "ab-cd"] {
            assert!(TimeRange::parse(bad).is_err(), "{bad}");
        }
    }
}
