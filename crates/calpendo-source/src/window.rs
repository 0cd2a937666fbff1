//! The sync window: which bookings one cycle covers ([`WindowMode`], [`DailyWindow`]),
//! the window of a cycle starting at a given instant ([`sync_window`]), and Pylantir's
//! lookback, which may move its start back ([`widen_to_lookback`]).

use std::time::Duration;

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Span, Timestamp};
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
    /// Today only, optionally only part of the day (or, overnight, from this evening to
    /// tomorrow morning).
    Today {
        /// The part of the day, or the whole day when `None`.
        daily_window: Option<DailyWindow>,
    },
}

/// A part of a day, `start <= t < end`, in minutes after local midnight. An end that is
/// not after the start is on the next day (as in Pylantir): `18:00`–`06:00` runs from
/// today 18:00 to tomorrow 06:00, and `07:00`–`07:00` is 24 hours from today 07:00.
///
/// The window is always the one that starts today: at 02:00 an `18:00`–`06:00` window is
/// tonight's, not the night in progress (Pylantir computes it the same way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DailyWindow {
    /// First minute covered (0 to 1439).
    pub start_minute: u32,
    /// First minute no longer covered (0 to 1440; 1440 is the end of the day); at or
    /// before `start_minute`, on the next day.
    pub end_minute: u32,
}

impl DailyWindow {
    /// Whether the window ends on the next day (its end is not after its start).
    pub fn overnight(&self) -> bool {
        self.end_minute <= self.start_minute
    }
}

/// The window one sync cycle starting at `now` covers, in the site's local time `tz`:
/// whole local days for [`WindowMode::Rolling`] and a whole [`WindowMode::Today`], a
/// part of today with a [`DailyWindow`] (ending tomorrow when it is
/// [overnight](DailyWindow::overnight)).
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
            end: at_minute(
                if w.overnight() {
                    add_days(today, 1)
                } else {
                    today
                },
                w.end_minute,
            ),
        },
    }
}

/// The furthest a lookback reaches back: 366 days, like the longest rolling window.
pub const MAX_LOOKBACK: Duration = Duration::from_secs(366 * 86_400);

/// `window` with its start moved back to the start of the local day (00:00 in `tz`) of
/// `now - lookback` when that is earlier: Pylantir fetched from `now - sync_interval ×
/// lookback_multiplier`, so a window that starts later would miss bookings Pylantir
/// fetched. The lookback is cut to [`MAX_LOOKBACK`].
pub fn widen_to_lookback(
    window: SyncWindow,
    tz: &TimeZone,
    now: Timestamp,
    lookback: Duration,
) -> SyncWindow {
    let back = SignedDuration::try_from(lookback.min(MAX_LOOKBACK))
        .ok()
        .and_then(|d| now.checked_sub(d).ok())
        .unwrap_or(now);
    let day_start = tz.to_datetime(back).date().to_datetime(Time::midnight());
    SyncWindow {
        start: window.start.min(day_start),
        end: window.end,
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
