//! The site's words for what DICOM stores in codes: dates and times as a person reads
//! them (`Fri 4 Dec 2026`, `08:00`: 24 h, the site's zone), person names as
//! `Family, Given`, and step statuses as badges. Pure functions, no I/O.

use jiff::Timestamp;
use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use maud::{Markup, html};
use worklist_store::{StepStatus, format_da, format_tm};

/// A day: `Fri 4 Dec 2026`.
pub(crate) fn day(d: Date) -> String {
    d.strftime("%a %-d %b %Y").to_string()
}

/// A time of day, 24 h: `08:00`.
pub(crate) fn clock(t: Time) -> String {
    t.strftime("%H:%M").to_string()
}

/// A local date and time as DICOM stores it (`20261204 080000`), for a `title` hover.
pub(crate) fn dicom_when(dt: DateTime) -> String {
    format!("{} {}", format_da(dt.date()), format_tm(dt.time()))
}

/// An instant in the site's zone, to the second: `Fri 4 Dec 2026, 08:00:12`.
pub(crate) fn instant(t: Timestamp, zone: &TimeZone) -> String {
    let local = t.to_zoned_datetime(zone.clone()).datetime();
    format!(
        "{}, {}",
        day(local.date()),
        local.time().strftime("%H:%M:%S")
    )
}

/// A length of time in words, to the minute: `45 s`, `5 min`, `2 h 5 min`, `3 d 4 h`.
pub(crate) fn span(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => match (s % 3600) / 60 {
            0 => format!("{} h", s / 3600),
            m => format!("{} h {m} min", s / 3600),
        },
        _ => match (s % 86_400) / 3600 {
            0 => format!("{} d", s / 86_400),
            h => format!("{} d {h} h", s / 86_400),
        },
    }
}

/// A DICOM person name (`Family^Given^Middle^Prefix^Suffix`, alphabetic group) as
/// `Family, Prefix Given Middle, Suffix`; empty components are left out, and so is every
/// component group after the first (`=`).
pub(crate) fn person(pn: &str) -> String {
    let alphabetic = pn.split('=').next().unwrap_or_default();
    let parts: Vec<&str> = alphabetic.split('^').map(str::trim).collect();
    let part = |i: usize| parts.get(i).copied().unwrap_or_default();
    let given: Vec<&str> = [part(3), part(1), part(2)]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect();
    let mut out = part(0).to_string();
    if !given.is_empty() {
        if !out.is_empty() {
            out.push_str(", ");
        }
        out.push_str(&given.join(" "));
    }
    if !part(4).is_empty() {
        out.push_str(", ");
        out.push_str(part(4));
    }
    out
}

/// What a status is called on the page.
pub(crate) fn status_words(s: StepStatus) -> &'static str {
    match s {
        StepStatus::Scheduled => "Scheduled",
        StepStatus::Started => "In progress",
        StepStatus::Completed => "Completed",
        StepStatus::Discontinued => "Discontinued",
    }
}

/// A status badge: its words, the DICOM term on hover.
pub(crate) fn badge(s: StepStatus) -> Markup {
    html! {
        span class={ "badge " (s.as_dicom().to_ascii_lowercase()) } title=(s.as_dicom()) {
            (status_words(s))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times_read_as_the_site_writes_them() {
        let dt = jiff::civil::date(2026, 12, 4).at(8, 0, 0, 0);
        assert_eq!(
            format!("{}, {}", day(dt.date()), clock(dt.time())),
            "Fri 4 Dec 2026, 08:00"
        );
        assert_eq!(dicom_when(dt), "20261204 080000");
        assert_eq!(
            clock(jiff::civil::time(17, 5, 59, 0)),
            "17:05",
            "24 h, minutes"
        );
        let zone = worklist_store::ZoneDb::bundled()
            .get("America/Edmonton")
            .expect("zone");
        let t: Timestamp = "2026-12-04T15:00:12Z".parse().expect("instant");
        assert_eq!(instant(t, &zone), "Fri 4 Dec 2026, 09:00:12");
    }

    #[test]
    fn spans_read_in_words() {
        assert_eq!(span(-3), "0 s");
        assert_eq!(span(45), "45 s");
        assert_eq!(span(300), "5 min");
        assert_eq!(span(7200), "2 h");
        assert_eq!(span(7500), "2 h 5 min");
        assert_eq!(span(3 * 86_400 + 4 * 3600 + 60), "3 d 4 h");
    }

    #[test]
    fn names_read_family_comma_given() {
        assert_eq!(person("Fraser^Emma"), "Fraser, Emma");
        assert_eq!(
            person("Fraser^Emma^Jane^Dr^PhD"),
            "Fraser, Dr Emma Jane, PhD"
        );
        assert_eq!(person("Fraser"), "Fraser");
        assert_eq!(person("^Emma"), "Emma");
        assert_eq!(person("Yamada^Tarou=山田^太郎"), "Yamada, Tarou");
        assert_eq!(person(""), "");
    }

    #[test]
    fn badges_name_the_status_and_keep_the_dicom_term() {
        let b = badge(StepStatus::Started).into_string();
        assert!(b.contains("In progress"), "{b}");
        assert!(b.contains("title=\"STARTED\""), "{b}");
        assert!(b.contains("badge started"), "{b}");
    }
}
