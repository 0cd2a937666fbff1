//! DICOM DA (`YYYYMMDD`) and TM (`HHMMSS`) values of the site's local civil dates and
//! times: how the store keeps them and the SCP sends them.

use jiff::civil::{Date, Time};

/// DICOM DA form of a date: `YYYYMMDD`.
pub fn format_da(d: Date) -> String {
    format!("{:04}{:02}{:02}", d.year(), d.month(), d.day())
}

/// DICOM TM form of a time, to the second: `HHMMSS`.
pub fn format_tm(t: Time) -> String {
    format!("{:02}{:02}{:02}", t.hour(), t.minute(), t.second())
}

/// Parses DICOM DA `YYYYMMDD`.
pub fn parse_da(s: &str) -> Option<Date> {
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let y: i16 = s[0..4].parse().ok()?;
    let m: i8 = s[4..6].parse().ok()?;
    let d: i8 = s[6..8].parse().ok()?;
    Date::new(y, m, d).ok()
}

/// Parses DICOM TM `HHMMSS` (also `HHMM` and `HH`; a fraction is ignored).
pub fn parse_tm(s: &str) -> Option<Time> {
    let whole = s.split('.').next().unwrap_or("");
    if !whole.bytes().all(|b| b.is_ascii_digit()) || !matches!(whole.len(), 2 | 4 | 6) {
        return None;
    }
    let part = |i: usize| -> Option<i8> {
        if whole.len() > i {
            whole[i..i + 2].parse().ok()
        } else {
            Some(0)
        }
    };
    Time::new(part(0)?, part(2)?, part(4)?, 0).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::{date, time};

    #[test]
    fn round_trips() {
        let d = date(2026, 11, 26);
        assert_eq!(format_da(d), "20261126");
        assert_eq!(parse_da("20261126"), Some(d));
        let t = time(9, 5, 7, 0);
        assert_eq!(format_tm(t), "090507");
        assert_eq!(parse_tm("090507"), Some(t));
    }

    #[test]
    fn short_and_fractional_times() {
        assert_eq!(parse_tm("0905"), Some(time(9, 5, 0, 0)));
        assert_eq!(parse_tm("09"), Some(time(9, 0, 0, 0)));
        assert_eq!(parse_tm("090507.123"), Some(time(9, 5, 7, 0)));
        assert_eq!(parse_tm("09050"), None);
        assert_eq!(parse_tm("250000"), None);
    }

    #[test]
    fn bad_dates() {
        assert_eq!(parse_da("2026112"), None);
        assert_eq!(parse_da("20261332"), None);
        assert_eq!(parse_da("2026-11-"), None);
    }
}
