//! Reading REDCap's free-text values: dates, times, weights and sex codes. Pure.
//!
//! The forms are Pylantir's (`redcap_plugin.py`, `_normalize_legacy_date` and
//! `_normalize_legacy_time`): dates `YYYY-MM-DD`, `YYYY/MM/DD`, `YYYY.MM.DD` or
//! `YYYYMMDD`; times `HH:MM`, `HH:MM:SS`, `HHMM`, `HHMMSS` or `HH`. Unlike Pylantir, which
//! passes a value it cannot read through as text, a value none of these forms reads is an
//! error here (the caller skips the row), and seconds are kept rather than dropped.

use jiff::civil::{Date, Time};

/// Pounds to kilograms (the international avoirdupois pound).
pub const KG_PER_LB: f64 = 0.453_592_37;

/// A date in one of the accepted forms.
pub fn parse_date(value: &str) -> Option<Date> {
    let v = value.trim();
    let (y, m, d) = if v.len() == 8 && v.bytes().all(|b| b.is_ascii_digit()) {
        (v.get(0..4)?, v.get(4..6)?, v.get(6..8)?)
    } else {
        let sep = v.chars().find(|c| matches!(c, '-' | '/' | '.'))?;
        let mut parts = v.split(sep);
        let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
            return None;
        }
        (y, m, d)
    };
    Date::new(number(y)?, number(m)?, number(d)?).ok()
}

/// A time of day in one of the accepted forms.
pub fn parse_time(value: &str) -> Option<Time> {
    let v = value.trim();
    let (h, m, s) = if v.contains(':') {
        let mut parts = v.split(':');
        let (h, m, s) = (parts.next()?, parts.next()?, parts.next());
        if parts.next().is_some() || h.len() != 2 || m.len() != 2 {
            return None;
        }
        match s {
            Some(s) if s.len() != 2 => return None,
            _ => (h, m, s.unwrap_or("00")),
        }
    } else if v.bytes().all(|b| b.is_ascii_digit()) {
        match v.len() {
            2 => (v, "00", "00"),
            4 => (v.get(0..2)?, v.get(2..4)?, "00"),
            6 => (v.get(0..2)?, v.get(2..4)?, v.get(4..6)?),
            _ => return None,
        }
    } else {
        return None;
    };
    Time::new(number(h)?, number(m)?, number(s)?, 0).ok()
}

fn number<T: std::str::FromStr>(digits: &str) -> Option<T> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A weight in pounds as kilograms, rounded to 10 g; `None` unless a positive number.
pub fn pounds_to_kg(value: &str) -> Option<f64> {
    kilograms(value).map(|lb| (lb * KG_PER_LB * 100.0).round() / 100.0)
}

/// A positive, finite number (a weight).
pub fn kilograms(value: &str) -> Option<f64> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|w| w.is_finite() && *w > 0.0)
}

/// DICOM Patient's Sex (`M`, `F`, `O`) of a REDCap sex value: `label` is the choice's
/// label from the data dictionary (`1, Male | 2, Female`) when the field has choices,
/// else the value itself. `None` for a blank or unrecognized value.
pub fn dicom_sex(label: &str) -> Option<&'static str> {
    match label.trim().to_ascii_lowercase().as_str() {
        "m" | "male" | "man" | "boy" => Some("M"),
        "f" | "female" | "woman" | "girl" => Some("F"),
        "o" | "other" | "intersex" => Some("O"),
        _ => None,
    }
}

/// The label of `code` in a REDCap choices string (`1, Male | 2, Female`).
pub fn choice_label<'a>(choices: &'a str, code: &str) -> Option<&'a str> {
    choices.split('|').find_map(|choice| {
        let (c, label) = choice.split_once(',')?;
        (c.trim() == code.trim()).then_some(label.trim())
    })
}

/// A year alone (`2014`) as 1 January of that year, as Pylantir's older
/// `redcap_to_db.py` wrote `youth_dob_y` + `0101`; any other value as a date.
pub fn birth_date(value: &str) -> Option<Date> {
    let v = value.trim();
    if v.len() == 4 {
        return Date::new(number(v)?, 1, 1).ok();
    }
    parse_date(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::{date, time};

    #[test]
    fn dates_in_every_accepted_form() {
        for v in [
            "2026-12-05",
            "2026/12/05",
            "2026.12.05",
            "20261205",
            " 2026-12-05 ",
        ] {
            assert_eq!(parse_date(v), Some(date(2026, 12, 5)), "{v}");
        }
        for v in [
            "",
            "2026-12-5",
            "05/12/2026",
            "2026-13-01",
            "2026-02-30",
            "2026-12-05x",
            "2026-12",
            "202612051",
            "2026-12/05",
        ] {
            assert_eq!(parse_date(v), None, "{v}");
        }
    }

    #[test]
    fn times_in_every_accepted_form() {
        assert_eq!(parse_time("08:00"), Some(time(8, 0, 0, 0)));
        assert_eq!(parse_time("14:30:15"), Some(time(14, 30, 15, 0)));
        assert_eq!(parse_time("1430"), Some(time(14, 30, 0, 0)));
        assert_eq!(parse_time("143015"), Some(time(14, 30, 15, 0)));
        assert_eq!(parse_time("09"), Some(time(9, 0, 0, 0)));
        for v in [
            "",
            "8:00",
            "25:00",
            "12:60",
            "12:00:1",
            "123",
            "noon",
            "12:00:00:00",
        ] {
            assert_eq!(parse_time(v), None, "{v}");
        }
    }

    #[test]
    fn weights() {
        assert_eq!(pounds_to_kg("92.4"), Some(41.91));
        assert_eq!(pounds_to_kg("100"), Some(45.36));
        assert_eq!(pounds_to_kg("0"), None);
        assert_eq!(pounds_to_kg("heavy"), None);
        assert_eq!(kilograms(" 70.5 "), Some(70.5));
    }

    #[test]
    fn sex_codes_and_birth_years() {
        let choices = "1, Male | 2, Female | 3, Other";
        assert_eq!(choice_label(choices, "2"), Some("Female"));
        assert_eq!(choice_label(choices, "9"), None);
        assert_eq!(dicom_sex("Female"), Some("F"));
        assert_eq!(dicom_sex("male"), Some("M"));
        assert_eq!(dicom_sex("Other"), Some("O"));
        assert_eq!(dicom_sex("Prefer not to say"), None);
        assert_eq!(birth_date("2014"), Some(date(2014, 1, 1)));
        assert_eq!(birth_date("2014-05-02"), Some(date(2014, 5, 2)));
        assert_eq!(birth_date("14"), None);
    }
}
