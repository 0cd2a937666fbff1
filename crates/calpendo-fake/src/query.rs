//! Calpendo's query path language (Exprodo's "Query API"), parsed and matched against
//! bookings.
//!
//! `EXPR := BOOLOP/EXPR/.../EXPR/CLOSE | PATH/RELATION/VALUE`, `BOOLOP := AND | OR | NAND
//! | NOR`; trailing `CLOSE`s may be left out. Keywords and relations are case-insensitive
//! (Pylantir sends `eq`), values are not. Relations: `EQ NE LT LE GT GE` on times and
//! numbers, `EQ NE CONTAINS DOES_NOT_CONTAIN STARTS_WITH DOES_NOT_START_WITH ENDS_WITH
//! DOES_NOT_END_WITH` on texts and references (compared by display name), `EQ NE` on
//! flags; `__NULL__` stands for no value (`EQ`/`NE` only). Times are `YYYYMMDD-HHMM` or
//! `YYYYMMDDTHHMM` in Calpendo's zone; `updated` is when the booking was last set on the
//! fake. The properties known are those of [`crate::property`]; a term on another path,
//! or a relation the fake does not implement, is refused (400).
//!
//! One leniency kept for clients written against earlier fakes (Pylantir among them): a
//! nested group that is never closed ends at the first term on another path, or at the
//! next group, so
//!
//! ```text
//! AND/dateRange.start/GE/20261126-0000/dateRange.start/LT/20261128-0000
//!    /OR/resource.name/EQ/3T%20Diagnostic/resource.name/EQ/EEG%20Lab/status/EQ/Approved
//! ```
//!
//! means `start >= .. AND start < .. AND (resource = 3T Diagnostic OR resource = EEG
//! Lab) AND status = Approved`. (Read by the documented grammar alone, the status term
//! would belong to the `OR` group.) A group closed by `CLOSE` follows the grammar.

use jiff::civil::DateTime;

use crate::FakeBooking;
use crate::property::{self, Kind, Prop};

/// Why a query path was rejected (answered 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct QueryError(pub(crate) String);

fn err<T>(msg: impl Into<String>) -> Result<T, QueryError> {
    Err(QueryError(msg.into()))
}

/// `AND`, `OR`, `NAND` or `NOR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Combinator {
    And,
    Or,
    Nand,
    Nor,
}

impl Combinator {
    fn parse(token: &str) -> Option<Combinator> {
        match token.to_ascii_uppercase().as_str() {
            "AND" => Some(Combinator::And),
            "OR" => Some(Combinator::Or),
            "NAND" => Some(Combinator::Nand),
            "NOR" => Some(Combinator::Nor),
            _ => None,
        }
    }

    fn combine(self, mut results: impl Iterator<Item = bool>) -> bool {
        match self {
            Combinator::And => results.all(|r| r),
            Combinator::Or => results.any(|r| r),
            Combinator::Nand => !results.all(|r| r),
            Combinator::Nor => !results.any(|r| r),
        }
    }
}

fn is_close(token: &str) -> bool {
    token.eq_ignore_ascii_case("CLOSE")
}

/// A relation of a term.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
    DoesNotContain,
    StartsWith,
    DoesNotStartWith,
    EndsWith,
    DoesNotEndWith,
}

impl Op {
    fn parse(token: &str) -> Result<Op, QueryError> {
        Ok(match token.to_ascii_uppercase().as_str() {
            "EQ" => Op::Eq,
            "NE" => Op::Ne,
            "LT" => Op::Lt,
            "LE" => Op::Le,
            "GT" => Op::Gt,
            "GE" => Op::Ge,
            "CONTAINS" => Op::Contains,
            "DOES_NOT_CONTAIN" => Op::DoesNotContain,
            "STARTS_WITH" => Op::StartsWith,
            "DOES_NOT_START_WITH" => Op::DoesNotStartWith,
            "ENDS_WITH" => Op::EndsWith,
            "DOES_NOT_END_WITH" => Op::DoesNotEndWith,
            _ => {
                return err(format!(
                    "unsupported relation {token:?} (supported: EQ, NE, LT, LE, GT, GE, \
                     CONTAINS, DOES_NOT_CONTAIN, STARTS_WITH, DOES_NOT_START_WITH, \
                     ENDS_WITH, DOES_NOT_END_WITH)"
                ));
            }
        })
    }

    fn ordering(self) -> bool {
        matches!(self, Op::Lt | Op::Le | Op::Gt | Op::Ge)
    }

    fn textual(self) -> bool {
        !self.ordering() && !matches!(self, Op::Eq | Op::Ne)
    }

    fn holds<T: Ord>(self, left: &T, right: &T) -> bool {
        match self {
            Op::Eq => left == right,
            Op::Ne => left != right,
            Op::Ge => left >= right,
            Op::Gt => left > right,
            Op::Le => left <= right,
            Op::Lt => left < right,
            _ => false,
        }
    }

    fn holds_text(self, left: &str, right: &str) -> bool {
        match self {
            Op::Contains => left.contains(right),
            Op::DoesNotContain => !left.contains(right),
            Op::StartsWith => left.starts_with(right),
            Op::DoesNotStartWith => !left.starts_with(right),
            Op::EndsWith => left.ends_with(right),
            Op::DoesNotEndWith => !left.ends_with(right),
            other => other.holds(&left, &right),
        }
    }

    /// Whether the relation holds for a property that has no value.
    fn holds_on_null(self) -> bool {
        matches!(
            self,
            Op::Ne | Op::DoesNotContain | Op::DoesNotStartWith | Op::DoesNotEndWith
        )
    }
}

/// A term's value, read by the kind of its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Null,
    DateTime(DateTime),
    Text(String),
    Number(i64),
    Bool(bool),
}

/// `path/RELATION/value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Term {
    pub(crate) path: String,
    pub(crate) op: Op,
    pub(crate) value: Value,
}

impl Term {
    fn matches(&self, booking: &FakeBooking, updated: DateTime) -> bool {
        let Some(prop) = property::value(booking, &self.path, updated) else {
            return false;
        };
        match (&self.value, &prop) {
            (Value::Null, Prop::Null) => self.op == Op::Eq,
            (Value::Null, _) => self.op == Op::Ne,
            (_, Prop::Null) => self.op.holds_on_null(),
            (Value::DateTime(v), Prop::Time(p)) => self.op.holds(p, v),
            (Value::Number(v), Prop::Number(p)) => self.op.holds(p, v),
            (Value::Bool(v), Prop::Bool(p)) => self.op.holds(p, v),
            (Value::Text(v), p) => p.text().is_some_and(|t| self.op.holds_text(&t, v)),
            // The parser reads a value by its path's kind: other pairs do not occur.
            _ => false,
        }
    }
}

/// An expression: a term or a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Item {
    Term(Term),
    Group(Combinator, Vec<Item>),
}

impl Item {
    fn matches(&self, booking: &FakeBooking, updated: DateTime) -> bool {
        match self {
            Item::Term(t) => t.matches(booking, updated),
            Item::Group(c, items) => c.combine(items.iter().map(|i| i.matches(booking, updated))),
        }
    }

    fn terms(&self) -> Box<dyn Iterator<Item = &Term> + '_> {
        match self {
            Item::Term(t) => Box::new(std::iter::once(t)),
            Item::Group(_, items) => Box::new(items.iter().flat_map(Item::terms)),
        }
    }
}

/// A parsed query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Query {
    pub(crate) root: Item,
}

impl Query {
    /// Whether a booking last set at `updated` satisfies the query.
    pub(crate) fn matches(&self, booking: &FakeBooking, updated: DateTime) -> bool {
        self.root.matches(booking, updated)
    }

    /// Whether any term uses `op`.
    pub(crate) fn uses(&self, op: Op) -> bool {
        self.root.terms().any(|t| t.op == op)
    }

    /// The value of a top-level `id/EQ/n` query, Pylantir's operator look-up.
    pub(crate) fn single_id(&self) -> Option<i64> {
        match &self.root {
            Item::Term(Term {
                path,
                op: Op::Eq,
                value: Value::Number(id),
            }) if path == "id" => Some(*id),
            _ => None,
        }
    }
}

/// Parses a raw (still percent-encoded) query path such as `AND/status/EQ/Approved`.
pub(crate) fn parse_query(raw: &str) -> Result<Query, QueryError> {
    let mut tokens = raw
        .split('/')
        .map(percent_decode)
        .collect::<Result<Vec<_>, _>>()?;
    // Tolerate one trailing slash.
    if tokens.len() > 1 && tokens.last().is_some_and(String::is_empty) {
        tokens.pop();
    }
    if tokens.first().is_none_or(String::is_empty) {
        return err("empty query");
    }
    let mut i = 0;
    let root = match Combinator::parse(&tokens[0]) {
        Some(c) => {
            i = 1;
            parse_group(c, &tokens, &mut i, true)?
        }
        None => Item::Term(parse_term(&tokens, &mut i)?),
    };
    if let Some(rest) = tokens.get(i..).filter(|r| !r.is_empty()) {
        return err(format!("unexpected {:?} after the query", rest.join("/")));
    }
    Ok(Query { root })
}

/// Whether the group whose items start at `tokens[from]` is closed by a `CLOSE`.
fn closed_explicitly(tokens: &[String], from: usize) -> bool {
    let mut depth = 0usize;
    for t in tokens.iter().skip(from) {
        if Combinator::parse(t).is_some() {
            depth += 1;
        } else if is_close(t) {
            if depth == 0 {
                return true;
            }
            depth -= 1;
        }
    }
    false
}

/// The items of a group opened by `combinator` at `tokens[*i..]`, up to its `CLOSE` (or
/// the end); `*i` ends past them.
fn parse_group(
    combinator: Combinator,
    tokens: &[String],
    i: &mut usize,
    top: bool,
) -> Result<Item, QueryError> {
    let lenient = !top && !closed_explicitly(tokens, *i);
    let mut items: Vec<Item> = Vec::new();
    let mut first_path: Option<String> = None;
    while let Some(token) = tokens.get(*i) {
        if is_close(token) {
            *i += 1;
            break;
        }
        let group = Combinator::parse(token);
        if lenient
            && !items.is_empty()
            && (group.is_some() || first_path.as_deref() != Some(token.as_str()))
        {
            break;
        }
        let item = match group {
            Some(c) => {
                *i += 1;
                parse_group(c, tokens, i, false)?
            }
            None => {
                let t = parse_term(tokens, i)?;
                first_path.get_or_insert_with(|| t.path.clone());
                Item::Term(t)
            }
        };
        items.push(item);
    }
    if items.is_empty() {
        return err(format!("{combinator:?} group without terms"));
    }
    Ok(Item::Group(combinator, items))
}

/// Parses `path/RELATION/value` at `tokens[*i..]` and advances `*i` past it.
fn parse_term(tokens: &[String], i: &mut usize) -> Result<Term, QueryError> {
    let [path, op, value] = match tokens.get(*i..*i + 3) {
        Some([f, o, v]) => [f, o, v],
        _ => {
            return err(format!(
                "incomplete term at {:?}: expected path/RELATION/value",
                tokens.get(*i..).unwrap_or_default().join("/")
            ));
        }
    };
    let Some(kind) = property::kind(path) else {
        return err(format!("unsupported path {path:?}"));
    };
    let op = Op::parse(op)?;
    let value = if value == "__NULL__" {
        if !matches!(op, Op::Eq | Op::Ne) {
            return err(format!("__NULL__ needs EQ or NE, not {op:?}"));
        }
        Value::Null
    } else {
        match kind {
            Kind::Time if !op.textual() => Value::DateTime(parse_calpendo_datetime(value)?),
            Kind::Number if !op.textual() => Value::Number(
                value
                    .parse()
                    .map_err(|_| QueryError(format!("invalid number {value:?} for {path}")))?,
            ),
            Kind::Bool if matches!(op, Op::Eq | Op::Ne) => Value::Bool(match value.as_str() {
                "true" => true,
                "false" => false,
                _ => return err(format!("invalid flag {value:?} for {path}")),
            }),
            Kind::Text if !op.ordering() => Value::Text(value.clone()),
            _ => return err(format!("relation {op:?} is not supported on {path}")),
        }
    };
    *i += 3;
    Ok(Term {
        path: path.clone(),
        op,
        value,
    })
}

/// Parses `YYYYMMDD-HHMM` (Pylantir) or `YYYYMMDDTHHMM` (Calpendo's documentation).
pub(crate) fn parse_calpendo_datetime(s: &str) -> Result<DateTime, QueryError> {
    let bad = || {
        QueryError(format!(
            "invalid date-time {s:?}: expected YYYYMMDD-HHMM or YYYYMMDDTHHMM"
        ))
    };
    let b = s.as_bytes();
    if b.len() != 13 || !matches!(b[8], b'-' | b'T') {
        return Err(bad());
    }
    let digits = |range: std::ops::Range<usize>| -> Result<i64, QueryError> {
        let part = &s[range];
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse::<i64>().map_err(|_| bad())
        } else {
            Err(bad())
        }
    };
    let year = i16::try_from(digits(0..4)?).map_err(|_| bad())?;
    let month = i8::try_from(digits(4..6)?).map_err(|_| bad())?;
    let day = i8::try_from(digits(6..8)?).map_err(|_| bad())?;
    let hour = i8::try_from(digits(9..11)?).map_err(|_| bad())?;
    let minute = i8::try_from(digits(11..13)?).map_err(|_| bad())?;
    DateTime::new(year, month, day, hour, minute, 0, 0)
        .map_err(|e| QueryError(format!("invalid date-time {s:?}: {e}")))
}

/// Decodes `%XX` escapes of one path segment (`+` stays `+`); a `%` not followed by two
/// hex digits, or bytes that are not UTF-8, are an error.
pub(crate) fn percent_decode(segment: &str) -> Result<String, QueryError> {
    let bytes = segment.as_bytes();
    let well_formed = bytes.iter().enumerate().all(|(i, &b)| {
        b != b'%'
            || bytes
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
    });
    if !well_formed {
        return err(format!("bad percent-encoding in {segment:?}"));
    }
    percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .map(|s| s.into_owned())
        .or_else(|_| err(format!("segment {segment:?} is not UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BookingShape;
    use jiff::civil::date;

    fn booking(id: i64, start: DateTime, resource: &str, status: &str, kind: &str) -> FakeBooking {
        FakeBooking {
            id,
            start,
            end: start
                .checked_add(jiff::SignedDuration::from_hours(1))
                .unwrap(),
            title: format!("SUB{id:03}_Doe_Jane"),
            status: status.to_owned(),
            biskit_type: kind.to_owned(),
            resource: resource.to_owned(),
            project: None,
            booker: None,
            owner: None,
            operator: None,
            description: None,
            shape: BookingShape::Classic,
        }
    }

    const SET: DateTime = date(2026, 11, 20).at(12, 0, 0, 0);

    fn m(q: &Query, b: &FakeBooking) -> bool {
        q.matches(b, SET)
    }

    fn term(path: &str, op: Op, value: Value) -> Item {
        Item::Term(Term {
            path: path.into(),
            op,
            value,
        })
    }

    #[test]
    fn parses_the_documented_example() {
        let q = parse_query(
            "AND/dateRange.start/GE/20261126-0000/dateRange.start/LT/20261128-0000/OR/resource.name/EQ/3T%20Diagnostic/resource.name/EQ/EEG%20Lab/status/EQ/Approved",
        )
        .unwrap();
        let Item::Group(Combinator::And, items) = &q.root else {
            panic!("{q:?}")
        };
        assert_eq!(items.len(), 4);
        assert_eq!(
            items[0],
            term(
                "dateRange.start",
                Op::Ge,
                Value::DateTime(date(2026, 11, 26).at(0, 0, 0, 0))
            )
        );
        assert_eq!(
            items[2],
            Item::Group(
                Combinator::Or,
                vec![
                    term("resource.name", Op::Eq, Value::Text("3T Diagnostic".into())),
                    term("resource.name", Op::Eq, Value::Text("EEG Lab".into())),
                ]
            )
        );
        assert_eq!(
            items[3],
            term("status", Op::Eq, Value::Text("Approved".into()))
        );
    }

    #[test]
    fn evaluates_groups_and_ranges() {
        let q = parse_query(
            "AND/dateRange.start/GE/20261126-0700/dateRange.start/LT/20261126-1900/OR/resource.name/EQ/3T%20Diagnostic/resource.name/EQ/EEG%20Lab/status/EQ/Approved",
        )
        .unwrap();
        let d = date(2026, 11, 26);
        let b = |id, h, r: &str, s: &str| booking(id, d.at(h, 0, 0, 0), r, s, "MRIScan");
        assert!(m(&q, &b(1, 7, "3T Diagnostic", "Approved")));
        assert!(m(
            &q,
            &booking(2, d.at(18, 59, 0, 0), "EEG Lab", "Approved", "EEGScan")
        ));
        // Boundary: LT is exclusive, GE inclusive.
        assert!(!m(&q, &b(3, 19, "EEG Lab", "Approved")));
        assert!(!m(
            &q,
            &booking(4, d.at(6, 59, 0, 0), "EEG Lab", "Approved", "EEGScan")
        ));
        // Exact resource match: no prefix matching.
        assert!(!m(&q, &b(5, 9, "3T", "Approved")));
        assert!(!m(&q, &b(6, 9, "3T Diagnostic X", "Approved")));
        assert!(!m(&q, &b(7, 9, "3T Diagnostic", "Pending")));
    }

    #[test]
    fn top_level_or_and_case_insensitive_keywords() {
        let q = parse_query("or/status/eq/Pending/biskitType/Eq/EEGScan").unwrap();
        let d = date(2026, 1, 2).at(9, 0, 0, 0);
        assert!(m(&q, &booking(1, d, "R", "Pending", "MRIScan")));
        assert!(m(&q, &booking(2, d, "R", "Approved", "EEGScan")));
        assert!(!m(&q, &booking(3, d, "R", "Approved", "MRIScan")));
        // Values stay case-sensitive.
        let q = parse_query("AND/status/EQ/approved").unwrap();
        assert!(!m(&q, &booking(4, d, "R", "Approved", "MRIScan")));
    }

    #[test]
    fn an_unclosed_nested_group_ends_at_a_different_path() {
        let q =
            parse_query("AND/OR/status/EQ/Approved/status/EQ/Pending/resource.name/EQ/A").unwrap();
        let Item::Group(_, items) = &q.root else {
            panic!()
        };
        assert_eq!(items.len(), 2);
        let d = date(2026, 1, 2).at(9, 0, 0, 0);
        assert!(m(&q, &booking(1, d, "A", "Pending", "MRIScan")));
        assert!(!m(&q, &booking(2, d, "B", "Pending", "MRIScan")));
        assert!(!m(&q, &booking(3, d, "A", "Cancelled", "MRIScan")));
    }

    #[test]
    fn close_ends_a_group_and_trailing_closes_are_optional() {
        let d = date(2026, 1, 2).at(9, 0, 0, 0);
        // A closed group may mix paths.
        let q =
            parse_query("AND/OR/status/EQ/Pending/resource.name/EQ/A/CLOSE/biskitType/EQ/MRIScan")
                .unwrap();
        assert!(m(&q, &booking(1, d, "B", "Pending", "MRIScan")));
        assert!(m(&q, &booking(2, d, "A", "Approved", "MRIScan")));
        assert!(!m(&q, &booking(3, d, "B", "Approved", "MRIScan")));
        assert!(!m(&q, &booking(4, d, "A", "Approved", "EEGScan")));
        let closed = parse_query(
            "AND/resource.name/EQ/A/OR/status/EQ/Pending/status/EQ/Approved/CLOSE/CLOSE",
        )
        .unwrap();
        let open =
            parse_query("AND/resource.name/EQ/A/OR/status/EQ/Pending/status/EQ/Approved/CLOSE")
                .unwrap();
        assert_eq!(closed, open);
        assert!(parse_query("AND/status/EQ/A/CLOSE/CLOSE").is_err());
    }

    #[test]
    fn nand_nor_and_text_relations() {
        let d = date(2026, 1, 2).at(9, 0, 0, 0);
        let b = |id, r: &str, s: &str| booking(id, d, r, s, "MRIScan");
        let q = parse_query("OR/resource.name/STARTS_WITH/3T/resource.name/STARTS_WITH/EEG/CLOSE")
            .unwrap();
        assert!(m(&q, &b(1, "3T Diagnostic", "Approved")));
        assert!(m(&q, &b(2, "EEG Lab", "Approved")));
        assert!(!m(&q, &b(3, "Mock 3T", "Approved")));
        let q = parse_query("NOR/status/EQ/Cancelled/status/EQ/Pending").unwrap();
        assert!(m(&q, &b(4, "R", "Approved")));
        assert!(!m(&q, &b(5, "R", "Pending")));
        let q = parse_query("NAND/resource.name/CONTAINS/Diag/status/NE/Approved").unwrap();
        assert!(!m(&q, &b(6, "3T Diagnostic", "Pending")));
        assert!(m(&q, &b(7, "3T Diagnostic", "Approved")));
        for (query, yes, no) in [
            (
                "AND/resource.name/DOES_NOT_CONTAIN/Mock",
                "3T",
                "Mock Scanner",
            ),
            ("AND/resource.name/ENDS_WITH/Lab", "EEG Lab", "Lab 2"),
            ("AND/resource.name/DOES_NOT_START_WITH/3T", "EEG", "3T X"),
            ("AND/resource.name/DOES_NOT_END_WITH/X", "EEG", "3T X"),
        ] {
            let q = parse_query(query).unwrap();
            assert!(m(&q, &b(8, yes, "Approved")), "{query}");
            assert!(!m(&q, &b(9, no, "Approved")), "{query}");
        }
    }

    #[test]
    fn null_updated_and_single_terms() {
        let d = date(2026, 1, 2).at(9, 0, 0, 0);
        let mut with = booking(1, d, "R", "Approved", "MRIScan");
        with.operator = Some("Jo".into());
        let without = booking(2, d, "R", "Approved", "MRIScan");
        let q = parse_query("AND/Operator.name/EQ/__NULL__").unwrap();
        assert!(!m(&q, &with) && m(&q, &without));
        let q = parse_query("AND/Operator.name/NE/__NULL__").unwrap();
        assert!(m(&q, &with) && !m(&q, &without));
        assert!(parse_query("AND/Operator.name/CONTAINS/__NULL__").is_err());
        // `updated`, in both documented time forms.
        let q = parse_query("updated/GT/20261120T1159").unwrap();
        assert!(m(&q, &with));
        let q = parse_query("updated/GT/20261120-1200").unwrap();
        assert!(!m(&q, &with));
        // A single term, as Pylantir's operator look-up sends it.
        let q = parse_query("id/eq/2").unwrap();
        assert_eq!(q.single_id(), Some(2));
        assert!(m(&q, &without) && !m(&q, &with));
        assert!(parse_query("id/eq/2/status").is_err());
        assert!(
            parse_query("AND/resource.name/STARTS_WITH/3T")
                .unwrap()
                .uses(Op::StartsWith)
        );
    }

    #[test]
    fn gt_and_le_and_trailing_slash() {
        let q =
            parse_query("AND/dateRange.start/GT/20260102-0900/dateRange.start/LE/20260102-1000/")
                .unwrap();
        let d = date(2026, 1, 2);
        let b = |id, h, mi| booking(id, d.at(h, mi, 0, 0), "R", "Approved", "MRIScan");
        assert!(!m(&q, &b(1, 9, 0)));
        assert!(m(&q, &b(2, 9, 1)));
        assert!(m(&q, &b(3, 10, 0)));
        assert!(!m(&q, &b(4, 10, 1)));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("3T%20Diagnostic").unwrap(), "3T Diagnostic");
        assert_eq!(percent_decode("a%2Fb").unwrap(), "a/b");
        assert_eq!(percent_decode("M%C3%BCller").unwrap(), "Müller");
        assert_eq!(percent_decode("a+b").unwrap(), "a+b");
        assert!(percent_decode("bad%2").is_err());
        assert!(percent_decode("bad%zz").is_err());
        assert!(percent_decode("%FF").is_err());
        // An encoded slash stays inside its value.
        let q = parse_query("AND/resource.name/EQ/A%2FB").unwrap();
        let d = date(2026, 1, 2).at(9, 0, 0, 0);
        assert!(m(&q, &booking(1, d, "A/B", "Approved", "MRIScan")));
    }

    #[test]
    fn malformed_queries_are_rejected() {
        for bad in [
            "",
            "/",
            "status/EQ",
            "XOR/status/EQ/Approved",
            "AND",
            "AND/",
            "AND/status",
            "AND/status/EQ",
            "AND/status/EQ/Approved/status",
            "AND/colour/EQ/red",
            "AND/status/LIKE/Appr",
            "AND/status/GE/Approved",
            "AND/status/INCLUDES_ALL/Approved",
            "AND/dateRange.start/GE/2026-11-26",
            "AND/dateRange.start/GE/20261126-2500",
            "AND/dateRange.start/GE/20261326-0000",
            "AND/dateRange.start/GE/2026112a-0000",
            "AND/dateRange.start/GE/20261126 0000",
            "AND/id/EQ/x",
            "AND/cancelled/EQ/yes",
            "AND/OR",
            "AND/status/EQ/Approved/OR",
            "AND/resource.name/EQ/bad%2",
            "CLOSE",
        ] {
            assert!(parse_query(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn calpendo_datetime() {
        assert_eq!(
            parse_calpendo_datetime("20261126-0930").unwrap(),
            date(2026, 11, 26).at(9, 30, 0, 0)
        );
        assert_eq!(
            parse_calpendo_datetime("20140526T1200").unwrap(),
            date(2014, 5, 26).at(12, 0, 0, 0)
        );
        assert!(parse_calpendo_datetime("20260230-0000").is_err());
        assert!(parse_calpendo_datetime("+2026112-0000").is_err());
    }
}
