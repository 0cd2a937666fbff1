//! The sync window: which bookings one cycle covers ([`WindowMode`], [`DailyWindow`]),
//! and the window of a cycle starting at a given instant ([`sync_window`]).

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};
use worklist_store::SyncWindow;

/// Which bookings one sync cycle covers, by scheduled start in the site's zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowMode {
    /// From the start of today minus `past_days` to the end of today plus `future_days`
    /// (whole local days). The default is today and tomorrow.
    Rolling {
        /// Whole days before today.
        past_days: u32,
        /// Whole days after today.
        future_days: u32,
    },
    /// Today only, optionally only part of the day.
    Today {
        /// The part of the day, or the whole day when `None`.
        daily_window: Option<DailyWindow>,
    },
}

/// A part of a day, `start <= t < end`, in minutes after local midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DailyWindow {
    /// First minute covered (0 to 1439).
    pub start_minute: u32,
    /// First minute no longer covered (1 to 1440; 1440 is the end of the day).
    pub end_minute: u32,
}

/// The window one sync cycle starting at `now` covers, in the site's local time `tz`:
/// whole local days for [`WindowMode::Rolling`] and a whole [`WindowMode::Today`], a
/// part of today with a [`DailyWindow`].
pub fn sync_window(mode: WindowMode, tz: &TimeZone, now: Timestamp) -> SyncWindow {
    let today = tz.to_datetime(now).date();
    let day_start = |d: Date| d.to_datetime(Time::midnight());
    let add_days = |d: Date, n: i64| d.checked_add(Span::new().days(n)).unwrap_or(d);
    match mode {
        WindowMode::Rolling {
            past_days,
            future_days,
        } => SyncWindow {
            start: day_start(add_days(today, -i64::from(past_days))),
            end: day_start(add_days(today, 1 + i64::from(future_days))),
        },
        WindowMode::Today { daily_window: None } => SyncWindow {
            start: day_start(today),
            end: day_start(add_days(today, 1)),
        },
        WindowMode::Today {
            daily_window: Some(w),
        } => SyncWindow {
            start: at_minute(today, w.start_minute),
            end: at_minute(today, w.end_minute),
        },
    }
}

fn at_minute(day: Date, minute: u32) -> DateTime {
    if minute >= 1440 {
        let next = day.tomorrow().unwrap_or(day);
        return next.to_datetime(Time::midnight());
    }
    let h = (minute / 60) as i8;
    let m = (minute % 60) as i8;
    day.to_datetime(Time::new(h, m, 0, 0).unwrap_or(Time::midnight()))
}
