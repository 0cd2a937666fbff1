//! Calpendo's times to the site's local civil time.
//!
//! Calpendo shows a booking's range as naive local times (`formattedName`,
//! `[YYYY-MM-DD HH:MM:SS.f, YYYY-MM-DD HH:MM:SS.f]`) in its own zone (`source_timezone`);
//! newer servers also give ISO 8601 instants with `Z` or an offset
//! (`properties.dateRange.start`). Both become civil date-times in the site's zone
//! (`timezone`), where DICOM dates and times live. A naive time that falls into a gap or a
//! fold of the source zone is resolved with jiff's "compatible" rule (as RFC 5545 and
//! Temporal do: a gap moves forward by its length, a fold takes the earlier instant).

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use serde_json::Value;

/// A time as Calpendo gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceTime {
    /// A naive civil time in Calpendo's zone.
    Naive(DateTime),
    /// An exact instant (ISO 8601 with `Z` or an offset, or epoch milliseconds).
    Exact(Timestamp),
}

impl SourceTime {
    /// The site-local civil time of this time.
    pub fn to_local(self, source_tz: &TimeZone, site_tz: &TimeZone) -> DateTime {
        match self {
            SourceTime::Naive(dt) => naive_to_local(dt, source_tz, site_tz),
            SourceTime::Exact(ts) => site_tz.to_datetime(ts),
        }
    }
}

/// A naive civil time in `from` as a civil time in `to` (the same when the zones are the
/// same; a gap or fold in `from` is resolved the "compatible" way).
pub fn naive_to_local(dt: DateTime, from: &TimeZone, to: &TimeZone) -> DateTime {
    if from == to {
        return dt;
    }
    match from.to_ambiguous_timestamp(dt).compatible() {
        Ok(ts) => to.to_datetime(ts),
        Err(_) => dt,
    }
}

/// A site-local civil time as a civil time in Calpendo's zone (for the list query).
pub fn local_to_source(dt: DateTime, site_tz: &TimeZone, source_tz: &TimeZone) -> DateTime {
    naive_to_local(dt, site_tz, source_tz)
}

fn num(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses a naive `YYYY-MM-DD HH:MM[:SS[.f]]` (also with `T`); fractions of a second
/// are dropped.
pub fn parse_naive(s: &str) -> Option<DateTime> {
    let s = s.trim();
    let (d, t) = s.split_once([' ', 'T'])?;
    let mut dp = d.split('-');
    let (y, mo, da) = (num(dp.next()?)?, num(dp.next()?)?, num(dp.next()?)?);
    if dp.next().is_some() {
        return None;
    }
    let t = t.trim();
    let t = t.split_once('.').map_or(t, |(whole, frac)| {
        if frac.bytes().all(|b| b.is_ascii_digit()) {
            whole
        } else {
            t
        }
    });
    let mut tp = t.split(':');
    let h = num(tp.next()?)?;
    let mi = num(tp.next()?)?;
    let se = match tp.next() {
        Some(x) => num(x)?,
        None => 0,
    };
    if tp.next().is_some() {
        return None;
    }
    let d = jiff::civil::Date::new(
        i16::try_from(y).ok()?,
        i8::try_from(mo).ok()?,
        i8::try_from(da).ok()?,
    )
    .ok()?;
    let t = jiff::civil::Time::new(
        i8::try_from(h).ok()?,
        i8::try_from(mi).ok()?,
        i8::try_from(se).ok()?,
        0,
    )
    .ok()?;
    Some(d.to_datetime(t))
}

/// Parses Calpendo's display range `[start, end]`.
pub fn parse_display_range(s: &str) -> Option<(DateTime, DateTime)> {
    let inner = s.trim().strip_prefix('[')?.strip_suffix(']')?;
    let (a, b) = inner.split_once(',')?;
    Some((parse_naive(a)?, parse_naive(b)?))
}

/// Reads a time value: an ISO 8601 string with `Z` or an offset (an exact instant), a
/// string without (a naive Calpendo time), or a number (epoch milliseconds).
pub fn parse_source_time(v: &Value) -> Option<SourceTime> {
    match v {
        Value::String(s) => {
            let s = s.trim();
            if let Ok(ts) = s.parse::<Timestamp>() {
                return Some(SourceTime::Exact(ts));
            }
            parse_naive(s).map(SourceTime::Naive)
        }
        Value::Number(n) => n
            .as_i64()
            .and_then(|ms| Timestamp::from_millisecond(ms).ok())
            .map(SourceTime::Exact),
        Value::Object(o) => o
            .get("formattedName")
            .or_else(|| o.get("value"))
            .and_then(parse_source_time),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;
    use serde_json::json;
    use worklist_store::ZoneDb;

    fn tz(name: &str) -> TimeZone {
        ZoneDb::bundled().get(name).unwrap()
    }

    fn offset_hours(zone: &TimeZone, dt: DateTime) -> i32 {
        let ts = zone.to_ambiguous_timestamp(dt).compatible().unwrap();
        zone.to_offset(ts).seconds() / 3600
    }

    #[test]
    fn edmonton_offsets_from_the_bundled_tzdata() {
        let ed = tz("America/Edmonton");
        assert_eq!(offset_hours(&ed, date(2026, 7, 1).at(12, 0, 0, 0)), -6);
        assert_eq!(offset_hours(&ed, date(2026, 11, 26).at(12, 0, 0, 0)), -6);
        assert_eq!(offset_hours(&ed, date(2027, 1, 15).at(12, 0, 0, 0)), -6);
    }

    #[test]
    fn iso_utc_to_edmonton() {
        let ed = tz("America/Edmonton");
        let t = parse_source_time(&json!("2026-11-26T15:00:00Z")).unwrap();
        assert_eq!(t.to_local(&ed, &ed), date(2026, 11, 26).at(9, 0, 0, 0));
        let t = parse_source_time(&json!("2026-11-26T10:00:00-05:00")).unwrap();
        assert_eq!(t.to_local(&ed, &ed), date(2026, 11, 26).at(9, 0, 0, 0));
        let t = parse_source_time(&json!("2025-02-03T20:18Z")).unwrap();
        assert_eq!(t.to_local(&ed, &ed), date(2025, 2, 3).at(13, 18, 0, 0));
        let t = parse_source_time(&json!(1_795_705_200_000i64)).unwrap();
        assert_eq!(t.to_local(&ed, &ed), date(2026, 11, 26).at(9, 0, 0, 0));
    }

    #[test]
    fn display_range() {
        let (a, b) = parse_display_range("[2026-01-27 14:00:00.0, 2026-01-27 15:30:00.0]").unwrap();
        assert_eq!(a, date(2026, 1, 27).at(14, 0, 0, 0));
        assert_eq!(b, date(2026, 1, 27).at(15, 30, 0, 0));
        assert!(parse_display_range("[2026-02-30 14:00:00.0, 2026-01-27 15:30:00.0]").is_none());
        assert!(parse_display_range("2026-01-27 14:00").is_none());
        assert_eq!(
            parse_naive("2026-01-27T14:05"),
            Some(date(2026, 1, 27).at(14, 5, 0, 0))
        );
    }

    #[test]
    fn naive_same_zone_is_identity() {
        let ed = tz("America/Edmonton");
        let dt = date(2026, 11, 26).at(9, 0, 0, 0);
        assert_eq!(naive_to_local(dt, &ed, &ed), dt);
    }

    #[test]
    fn toronto_to_edmonton_across_dst() {
        let to = tz("America/Toronto");
        let ed = tz("America/Edmonton");
        // Before 2026-11-01 both observe DST: Toronto -4, Edmonton -6 → 2 h apart.
        assert_eq!(
            naive_to_local(date(2026, 10, 30).at(11, 0, 0, 0), &to, &ed),
            date(2026, 10, 30).at(9, 0, 0, 0)
        );
        // Toronto falls back on 2026-11-01, Edmonton stays at -6 → 1 h apart.
        assert_eq!(
            naive_to_local(date(2026, 11, 2).at(10, 0, 0, 0), &to, &ed),
            date(2026, 11, 2).at(9, 0, 0, 0)
        );
        // Toronto's fold 01:30 happens twice: compatible takes the earlier (EDT, -4).
        assert_eq!(
            naive_to_local(date(2026, 11, 1).at(1, 30, 0, 0), &to, &ed),
            date(2026, 10, 31).at(23, 30, 0, 0)
        );
        // Toronto's gap (2027-03-14 02:30 does not exist): moved forward by the gap's hour
        // (03:30 EDT = 07:30Z); Edmonton no longer changes: 01:30 -06.
        assert_eq!(
            naive_to_local(date(2027, 3, 14).at(2, 30, 0, 0), &to, &ed),
            date(2027, 3, 14).at(1, 30, 0, 0)
        );
        // The ISO form of the same instants gives the same local times.
        let iso = parse_source_time(&json!("2026-11-01T05:30:00Z")).unwrap();
        assert_eq!(iso.to_local(&to, &ed), date(2026, 10, 31).at(23, 30, 0, 0));
        let iso = parse_source_time(&json!("2027-03-14T03:30:00-04:00")).unwrap();
        assert_eq!(iso.to_local(&to, &ed), date(2027, 3, 14).at(1, 30, 0, 0));
    }

    #[test]
    fn london_transitions_2026() {
        let lon = tz("Europe/London");
        let ed = tz("America/Edmonton");
        // Spring forward 2026-03-29 01:00 GMT → 02:00 BST; 01:30 does not exist.
        assert_eq!(
            naive_to_local(date(2026, 3, 29).at(1, 30, 0, 0), &lon, &lon),
            date(2026, 3, 29).at(1, 30, 0, 0)
        );
        // To Edmonton (MDT -6 since 2026-03-08): 01:30 gap → 02:30 BST = 01:30Z = 19:30 -6.
        assert_eq!(
            naive_to_local(date(2026, 3, 29).at(1, 30, 0, 0), &lon, &ed),
            date(2026, 3, 28).at(19, 30, 0, 0)
        );
        let iso = parse_source_time(&json!("2026-03-29T02:30:00+01:00")).unwrap();
        assert_eq!(iso.to_local(&lon, &ed), date(2026, 3, 28).at(19, 30, 0, 0));
        // Fall back 2026-10-25 02:00 BST → 01:00 GMT; 01:30 twice: the earlier is BST.
        assert_eq!(
            naive_to_local(date(2026, 10, 25).at(1, 30, 0, 0), &lon, &ed),
            date(2026, 10, 24).at(18, 30, 0, 0)
        );
        let iso = parse_source_time(&json!("2026-10-25T01:30:00Z")).unwrap();
        assert_eq!(iso.to_local(&lon, &ed), date(2026, 10, 24).at(19, 30, 0, 0));
        // Site in London, ISO instants around the change.
        let iso = parse_source_time(&json!("2026-10-25T00:30:00Z")).unwrap();
        assert_eq!(iso.to_local(&lon, &lon), date(2026, 10, 25).at(1, 30, 0, 0));
    }

    #[test]
    fn local_to_source_for_queries() {
        let to = tz("America/Toronto");
        let ed = tz("America/Edmonton");
        assert_eq!(
            local_to_source(date(2026, 11, 26).at(0, 0, 0, 0), &ed, &to),
            date(2026, 11, 26).at(1, 0, 0, 0)
        );
    }
}
