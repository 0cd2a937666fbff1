//! Paging of the API's lists. Every list takes `limit` (a default per list, at most
//! [`MAX_LIMIT`]; anything else is a `400` naming the parameter) and `cursor` (opaque:
//! copied from a `next` link, never built by clients). While more items follow, the
//! answer carries `Link: <...>; rel="next"` (RFC 8288) with the same filters, the same
//! limit and the next cursor; the body stays the plain JSON array it always was, so
//! clients that ignore the header keep working (they get the first page).
//!
//! The worklist's cursor is the sort key of the page's last entry (scheduled start date,
//! time, row id): the next page starts after it, so entries added or removed meanwhile
//! neither repeat nor skip others, and a deep page costs no more than the first (the
//! store starts reading at that day). Sync runs and sources have an offset cursor.

use axum::http::{HeaderValue, StatusCode};
use worklist_store::{StoredEntry, format_da, format_tm, parse_da};

use crate::api::ApiError;
use crate::api_types::{ErrorBody, FieldProblem};

/// The largest page of any list.
pub(crate) const MAX_LIMIT: usize = 5000;
/// The worklist's default page.
pub(crate) const WORKLIST_DEFAULT: usize = 500;
/// The sync runs' default page (as before paging).
pub(crate) const SYNC_RUNS_DEFAULT: usize = 20;
/// The sources' default page.
pub(crate) const SOURCES_DEFAULT: usize = 500;
/// How far back sync runs can be paged (the store lists them newest first from the top,
/// so a page this deep reads this many rows).
pub(crate) const MAX_OFFSET: usize = 50_000;

fn bad(field: &str, problem: String) -> ApiError {
    ApiError(
        StatusCode::BAD_REQUEST,
        ErrorBody {
            error: format!("bad paging parameter: {problem}"),
            fields: vec![FieldProblem {
                field: field.into(),
                problem,
            }],
        },
    )
}

/// The page size: `given`, or `default`; `400` when out of 1..=[`MAX_LIMIT`].
pub(crate) fn limit(given: Option<usize>, default: usize) -> Result<usize, ApiError> {
    match given {
        None => Ok(default),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(n) => Err(bad(
            "limit",
            format!("limit {n} is out of range: use 1 to {MAX_LIMIT} and follow the next link"),
        )),
    }
}

/// An offset cursor (sync runs, sources): `None` is the start.
pub(crate) fn offset(cursor: Option<&str>) -> Result<usize, ApiError> {
    let Some(c) = cursor else { return Ok(0) };
    let n: usize = c
        .parse()
        .ok()
        .filter(|_| c.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| bad("cursor", format!("{c:?} is not a cursor of this list")))?;
    if n > MAX_OFFSET {
        return Err(bad(
            "cursor",
            format!("paging reaches back {MAX_OFFSET} items at most"),
        ));
    }
    Ok(n)
}

/// Where the worklist's next page starts: after the entry with this sort key, in the
/// store's order (start date, start time, row id).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct EntryKey {
    date: String,
    time: String,
    row_id: i64,
}

impl EntryKey {
    /// The key of a stored entry.
    pub(crate) fn of(e: &StoredEntry) -> EntryKey {
        EntryKey {
            date: format_da(e.entry.start.date()),
            time: format_tm(e.entry.start.time()),
            row_id: e.meta.row_id,
        }
    }

    /// The day the next page starts on.
    pub(crate) fn date(&self) -> jiff::civil::Date {
        parse_da(&self.date).unwrap_or_default()
    }

    /// The cursor's text (`YYYYMMDD.HHMMSS.ROWID`).
    pub(crate) fn cursor(&self) -> String {
        format!("{}.{}.{}", self.date, self.time, self.row_id)
    }

    /// Reads a cursor; `400` naming `cursor` when it is not one.
    pub(crate) fn parse(c: &str) -> Result<EntryKey, ApiError> {
        let refuse = || bad("cursor", format!("{c:?} is not a cursor of this list"));
        let mut parts = c.split('.');
        let (Some(date), Some(time), Some(id), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(refuse());
        };
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(date, 8) || parse_da(date).is_none() || !digits(time, 6) {
            return Err(refuse());
        }
        let row_id: i64 = id
            .parse()
            .ok()
            .filter(|n| *n >= 0 && id.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(refuse)?;
        Ok(EntryKey {
            date: date.into(),
            time: time.into(),
            row_id,
        })
    }
}

/// Percent-encodes a query value (everything but RFC 3986's unreserved characters).
fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The `Link` header of the next page: `path` with the given query parameters (those
/// that are `Some`).
pub(crate) fn next_link(path: &str, params: &[(&str, Option<String>)]) -> HeaderValue {
    let query: Vec<String> = params
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", encode(v))))
        .collect();
    let link = format!("<{path}?{}>; rel=\"next\"", query.join("&"));
    // Only ASCII: the values are percent-encoded.
    HeaderValue::from_str(&link).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_bounded_and_named() {
        assert_eq!(limit(None, 500).ok(), Some(500));
        assert_eq!(limit(Some(5000), 500).ok(), Some(5000));
        assert_eq!(limit(Some(1), 500).ok(), Some(1));
        for n in [0, 5001, usize::MAX] {
            let Err(ApiError(status, body)) = limit(Some(n), 500) else {
                panic!("{n} accepted");
            };
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert_eq!(body.fields[0].field, "limit");
            assert!(body.error.contains("5000"), "{}", body.error);
        }
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let k = EntryKey::parse("20261126.083000.42").expect("cursor");
        assert_eq!(k.cursor(), "20261126.083000.42");
        assert_eq!(k.date(), jiff::civil::date(2026, 11, 26));
        let later = EntryKey::parse("20261126.083000.43").expect("cursor");
        assert!(k < later);
        assert!(EntryKey::parse("20261126.090000.1").expect("cursor") > later);
        for bad in [
            "",
            "garbage",
            "20261126.083000",
            "20261326.083000.1",
            "20261126.0830.1",
            "20261126.083000.-1",
            "20261126.083000.1.2",
            "20261126.083000.+1",
        ] {
            assert!(EntryKey::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(offset(None).ok(), Some(0));
        assert_eq!(offset(Some("40")).ok(), Some(40));
        for bad in ["-1", "+1", "x", "", "50001"] {
            assert!(offset(Some(bad)).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn next_links_keep_the_filters_encoded() {
        let l = next_link(
            "/api/v1/worklist",
            &[
                ("station", Some("MRI 3T&x=1".into())),
                ("date", None),
                ("limit", Some("2".into())),
                ("cursor", Some("20261126.083000.42".into())),
            ],
        );
        assert_eq!(
            l.to_str().expect("ascii"),
            "</api/v1/worklist?station=MRI%203T%26x%3D1&limit=2&cursor=20261126.083000.42>; rel=\"next\""
        );
    }
}
