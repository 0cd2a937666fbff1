//! The Calpendo query path language, as far as mwlbridge uses it.
//!
//! A query is a `/`-separated path: a combinator (`AND` or `OR`) followed by terms
//! `field/OP/value`. A nested combinator groups the consecutive terms that follow it
//! and share the field of its first term; the group then counts as one item of the
//! outer combinator. Example:
//!
//! ```text
//! AND/dateRange.start/GE/20261126-0000/dateRange.start/LT/20261128-0000
//!    /OR/resource.name/EQ/3T%20Diagnostic/resource.name/EQ/EEG%20Lab/status/EQ/Approved
//! ```
//!
//! means `start >= .. AND start < .. AND (resource = 3T Diagnostic OR resource = EEG
//! Lab) AND status = Approved`.

use jiff::civil::DateTime;

use crate::FakeBooking;

/// Why a query path was rejected (answered 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct QueryError(pub(crate) String);

fn err<T>(msg: impl Into<String>) -> Result<T, QueryError> {
    Err(QueryError(msg.into()))
}

/// `AND` or `OR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Combinator {
    And,
    Or,
}

impl Combinator {
    fn parse(token: &str) -> Option<Combinator> {
        if token.eq_ignore_ascii_case("AND") {
            Some(Combinator::And)
        } else if token.eq_ignore_ascii_case("OR") {
            Some(Combinator::Or)
        } else {
            None
        }
    }

    fn combine(self, mut results: impl Iterator<Item = bool>) -> bool {
        match self {
            Combinator::And => results.all(|r| r),
            Combinator::Or => results.any(|r| r),
        }
    }
}

/// A supported booking field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    /// `dateRange.start`, compared as Calpendo local time.
    Start,
    /// `resource.name`, exact.
    Resource,
    /// `status`, exact.
    Status,
    /// `biskitType`, exact.
    BiskitType,
}

impl Field {
    fn parse(token: &str) -> Result<Field, QueryError> {
        match token {
            "dateRange.start" => Ok(Field::Start),
            "resource.name" => Ok(Field::Resource),
            "status" => Ok(Field::Status),
            "biskitType" => Ok(Field::BiskitType),
            other => err(format!(
                "unsupported field {other:?} (supported: dateRange.start, resource.name, status, biskitType)"
            )),
        }
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ge,
    Gt,
    Le,
    Lt,
}

impl Op {
    fn parse(token: &str) -> Result<Op, QueryError> {
        match token.to_ascii_uppercase().as_str() {
            "EQ" => Ok(Op::Eq),
            "GE" => Ok(Op::Ge),
            "GT" => Ok(Op::Gt),
            "LE" => Ok(Op::Le),
            "LT" => Ok(Op::Lt),
            _ => err(format!(
                "unsupported operator {token:?} (supported: EQ, GE, GT, LE, LT)"
            )),
        }
    }

    fn holds<T: Ord>(self, left: &T, right: &T) -> bool {
        match self {
            Op::Eq => left == right,
            Op::Ge => left >= right,
            Op::Gt => left > right,
            Op::Le => left <= right,
            Op::Lt => left < right,
        }
    }
}

/// A term's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    DateTime(DateTime),
    Text(String),
}

/// `field/OP/value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Term {
    pub(crate) field: Field,
    pub(crate) op: Op,
    pub(crate) value: Value,
}

impl Term {
    fn matches(&self, booking: &FakeBooking) -> bool {
        match (&self.value, self.field) {
            (Value::DateTime(dt), Field::Start) => self.op.holds(&booking.start, dt),
            (Value::Text(text), Field::Resource) => self.op.holds(&booking.resource, text),
            (Value::Text(text), Field::Status) => self.op.holds(&booking.status, text),
            (Value::Text(text), Field::BiskitType) => self.op.holds(&booking.biskit_type, text),
            // The parser never builds other combinations.
            _ => false,
        }
    }
}

/// An item of the top-level combinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Item {
    Term(Term),
    Group(Combinator, Vec<Term>),
}

/// A parsed query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Query {
    pub(crate) combinator: Combinator,
    pub(crate) items: Vec<Item>,
}

impl Query {
    /// Whether a booking satisfies the query.
    pub(crate) fn matches(&self, booking: &FakeBooking) -> bool {
        self.combinator
            .combine(self.items.iter().map(|item| match item {
                Item::Term(term) => term.matches(booking),
                Item::Group(combinator, terms) => {
                    combinator.combine(terms.iter().map(|t| t.matches(booking)))
                }
            }))
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
    let Some(first) = tokens.first() else {
        return err("empty query");
    };
    let Some(combinator) = Combinator::parse(first) else {
        return err(format!("query must start with AND or OR, not {first:?}"));
    };
    let mut items = Vec::new();
    let mut i = 1;
    while i < tokens.len() {
        if let Some(group_combinator) = Combinator::parse(&tokens[i]) {
            i += 1;
            if i >= tokens.len() || Combinator::parse(&tokens[i]).is_some() {
                return err(format!("{} group without terms", tokens[i - 1]));
            }
            let first_term = parse_term(&tokens, &mut i)?;
            let field = first_term.field;
            let mut terms = vec![first_term];
            while i < tokens.len()
                && Combinator::parse(&tokens[i]).is_none()
                && Field::parse(&tokens[i]).is_ok_and(|f| f == field)
            {
                terms.push(parse_term(&tokens, &mut i)?);
            }
            items.push(Item::Group(group_combinator, terms));
        } else {
            items.push(Item::Term(parse_term(&tokens, &mut i)?));
        }
    }
    if items.is_empty() {
        return err("query has no terms");
    }
    Ok(Query { combinator, items })
}

/// Parses `field/OP/value` at `tokens[*i..]` and advances `*i` past it.
fn parse_term(tokens: &[String], i: &mut usize) -> Result<Term, QueryError> {
    let [field, op, value] = match tokens.get(*i..*i + 3) {
        Some([f, o, v]) => [f, o, v],
        _ => {
            return err(format!(
                "incomplete term at {:?}: expected field/OP/value",
                tokens[*i..].join("/")
            ));
        }
    };
    let field = Field::parse(field)?;
    let op = Op::parse(op)?;
    let value = match field {
        Field::Start => Value::DateTime(parse_calpendo_datetime(value)?),
        Field::Resource | Field::Status | Field::BiskitType => {
            if op != Op::Eq {
                return err(format!("operator {op:?} is not supported on a text field"));
            }
            Value::Text(value.clone())
        }
    };
    *i += 3;
    Ok(Term { field, op, value })
}

/// Parses `YYYYMMDD-HHMM`.
pub(crate) fn parse_calpendo_datetime(s: &str) -> Result<DateTime, QueryError> {
    let bad = || QueryError(format!("invalid date-time {s:?}: expected YYYYMMDD-HHMM"));
    let b = s.as_bytes();
    if b.len() != 13 || b[8] != b'-' {
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

    #[test]
    fn parses_the_documented_example() {
        let q = parse_query(
            "AND/dateRange.start/GE/20261126-0000/dateRange.start/LT/20261128-0000/OR/resource.name/EQ/3T%20Diagnostic/resource.name/EQ/EEG%20Lab/status/EQ/Approved",
        )
        .unwrap();
        assert_eq!(q.combinator, Combinator::And);
        assert_eq!(q.items.len(), 4);
        assert_eq!(
            q.items[0],
            Item::Term(Term {
                field: Field::Start,
                op: Op::Ge,
                value: Value::DateTime(date(2026, 11, 26).at(0, 0, 0, 0)),
            })
        );
        match &q.items[2] {
            Item::Group(Combinator::Or, terms) => {
                let names: Vec<_> = terms.iter().map(|t| t.value.clone()).collect();
                assert_eq!(
                    names,
                    vec![
                        Value::Text("3T Diagnostic".into()),
                        Value::Text("EEG Lab".into())
                    ]
                );
            }
            other => panic!("expected an OR group, got {other:?}"),
        }
        assert_eq!(
            q.items[3],
            Item::Term(Term {
                field: Field::Status,
                op: Op::Eq,
                value: Value::Text("Approved".into()),
            })
        );
    }

    #[test]
    fn evaluates_groups_and_ranges() {
        let q = parse_query(
            "AND/dateRange.start/GE/20261126-0700/dateRange.start/LT/20261126-1900/OR/resource.name/EQ/3T%20Diagnostic/resource.name/EQ/EEG%20Lab/status/EQ/Approved",
        )
        .unwrap();
        let d = date(2026, 11, 26);
        assert!(q.matches(&booking(
            1,
            d.at(7, 0, 0, 0),
            "3T Diagnostic",
            "Approved",
            "MRIScan"
        )));
        assert!(q.matches(&booking(
            2,
            d.at(18, 59, 0, 0),
            "EEG Lab",
            "Approved",
            "EEGScan"
        )));
        // Boundary: LT is exclusive, GE inclusive.
        assert!(!q.matches(&booking(
            3,
            d.at(19, 0, 0, 0),
            "EEG Lab",
            "Approved",
            "EEGScan"
        )));
        assert!(!q.matches(&booking(
            4,
            d.at(6, 59, 0, 0),
            "EEG Lab",
            "Approved",
            "EEGScan"
        )));
        // Exact resource match: no prefix matching.
        assert!(!q.matches(&booking(5, d.at(9, 0, 0, 0), "3T", "Approved", "MRIScan")));
        assert!(!q.matches(&booking(
            6,
            d.at(9, 0, 0, 0),
            "3T Diagnostic X",
            "Approved",
            "MRIScan"
        )));
        assert!(!q.matches(&booking(
            7,
            d.at(9, 0, 0, 0),
            "3T Diagnostic",
            "Pending",
            "MRIScan"
        )));
    }

    #[test]
    fn top_level_or_and_case_insensitive_keywords() {
        let q = parse_query("or/status/eq/Pending/biskitType/Eq/EEGScan").unwrap();
        let d = date(2026, 1, 2).at(9, 0, 0, 0);
        assert!(q.matches(&booking(1, d, "R", "Pending", "MRIScan")));
        assert!(q.matches(&booking(2, d, "R", "Approved", "EEGScan")));
        assert!(!q.matches(&booking(3, d, "R", "Approved", "MRIScan")));
        // Values stay case-sensitive.
        let q = parse_query("AND/status/EQ/approved").unwrap();
        assert!(!q.matches(&booking(4, d, "R", "Approved", "MRIScan")));
    }

    #[test]
    fn nested_group_ends_at_a_different_field() {
        let q =
            parse_query("AND/OR/status/EQ/Approved/status/EQ/Pending/resource.name/EQ/A").unwrap();
        assert_eq!(q.items.len(), 2);
        let d = date(2026, 1, 2).at(9, 0, 0, 0);
        assert!(q.matches(&booking(1, d, "A", "Pending", "MRIScan")));
        assert!(!q.matches(&booking(2, d, "B", "Pending", "MRIScan")));
        assert!(!q.matches(&booking(3, d, "A", "Cancelled", "MRIScan")));
    }

    #[test]
    fn gt_and_le_and_trailing_slash() {
        let q =
            parse_query("AND/dateRange.start/GT/20260102-0900/dateRange.start/LE/20260102-1000/")
                .unwrap();
        let d = date(2026, 1, 2);
        assert!(!q.matches(&booking(1, d.at(9, 0, 0, 0), "R", "Approved", "MRIScan")));
        assert!(q.matches(&booking(2, d.at(9, 1, 0, 0), "R", "Approved", "MRIScan")));
        assert!(q.matches(&booking(3, d.at(10, 0, 0, 0), "R", "Approved", "MRIScan")));
        assert!(!q.matches(&booking(4, d.at(10, 1, 0, 0), "R", "Approved", "MRIScan")));
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
        assert!(q.matches(&booking(1, d, "A/B", "Approved", "MRIScan")));
    }

    #[test]
    fn malformed_queries_are_rejected() {
        for bad in [
            "",
            "/",
            "status/EQ/Approved",
            "XOR/status/EQ/Approved",
            "AND",
            "AND/",
            "AND/status",
            "AND/status/EQ",
            "AND/status/EQ/Approved/status",
            "AND/colour/EQ/red",
            "AND/status/LIKE/Appr",
            "AND/status/GE/Approved",
            "AND/dateRange.start/GE/2026-11-26",
            "AND/dateRange.start/GE/20261126-2500",
            "AND/dateRange.start/GE/20261326-0000",
            "AND/dateRange.start/GE/2026112a-0000",
            "AND/dateRange.start/GE/20261126 0000",
            "AND/OR",
            "AND/OR/AND/status/EQ/Approved",
            "AND/status/EQ/Approved/OR",
            "AND/resource.name/EQ/bad%2",
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
        assert!(parse_calpendo_datetime("20260230-0000").is_err());
        assert!(parse_calpendo_datetime("+2026112-0000").is_err());
    }
}
