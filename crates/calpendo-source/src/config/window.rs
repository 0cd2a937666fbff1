//! Reading the sync window's keys: `window_mode` with `window_past_days` and
//! `window_future_days`, or `daily_window`, and how they combine.

use config_reader::{Report, kind};
use serde_json::{Map, Value};

use crate::window::{DailyWindow, WindowMode};

fn parse_clock(v: &Value, key: &str, allow_24: bool, p: &mut Report) -> Option<u32> {
    let (h, m) = match v {
        Value::String(s) => {
            let mut parts = s.trim().split(':');
            let h = parts.next().and_then(|x| x.parse::<u32>().ok());
            let m = parts.next().and_then(|x| x.parse::<u32>().ok());
            let sec_ok = parts.next().is_none_or(|x| x == "00");
            match (h, m, sec_ok, parts.next()) {
                (Some(h), Some(m), true, None) => (h, m),
                _ => {
                    p.problem(key, format!("must be a time like \"07:00\", not {s:?}"));
                    return None;
                }
            }
        }
        Value::Array(a) if a.len() == 2 => match (a[0].as_u64(), a[1].as_u64()) {
            (Some(h), Some(m)) => (h.min(99) as u32, m.min(99) as u32),
            _ => {
                p.problem(key, "must be [hour, minute] whole numbers, e.g. [7, 0]");
                return None;
            }
        },
        other => {
            p.problem(
                key,
                format!("must be \"HH:MM\" or [hour, minute], not {}", kind(other)),
            );
            return None;
        }
    };
    let minute = h * 60 + m;
    if m > 59 || h > 24 || (minute > 1440) || (minute == 1440 && !allow_24) || (h == 24 && m != 0) {
        p.problem(key, format!("{h:02}:{m:02} is not a time of day"));
        return None;
    }
    Some(minute)
}

/// Reads `daily_window`: `{start, end}` as `"HH:MM"` strings or Pylantir's
/// `start_time`/`end_time` `[hour, minute]` arrays. An end at or before the start is on
/// the next day (an overnight window, see [`DailyWindow`]).
pub(crate) fn parse_daily_window(v: &Value, p: &mut Report) -> Option<DailyWindow> {
    let key = "daily_window";
    let Value::Object(m) = v else {
        p.problem(
            key,
            format!(
                "must be {{start = \"07:00\", end = \"19:00\"}}, not {}",
                kind(v)
            ),
        );
        return None;
    };
    for k in m.keys() {
        if !matches!(k.as_str(), "start" | "end" | "start_time" | "end_time") {
            p.problem(
                format!("{key}.{k}"),
                format!("unknown key {k:?} (expected start and end)"),
            );
        }
    }
    fn pick<'m>(
        m: &'m Map<String, Value>,
        a: &'static str,
        b: &'static str,
    ) -> Option<(&'static str, &'m Value)> {
        m.get(a)
            .map(|v| (a, v))
            .or_else(|| m.get(b).map(|v| (b, v)))
    }
    let start = match pick(m, "start", "start_time") {
        Some((k, v)) => parse_clock(v, &format!("{key}.{k}"), false, p),
        None => {
            p.problem(format!("{key}.start"), "required, e.g. \"07:00\"");
            None
        }
    };
    let end = match pick(m, "end", "end_time") {
        Some((k, v)) => parse_clock(v, &format!("{key}.{k}"), true, p),
        None => {
            p.problem(format!("{key}.end"), "required, e.g. \"19:00\"");
            None
        }
    };
    let (start, end) = (start?, end?);
    Some(DailyWindow {
        start_minute: start,
        end_minute: end,
    })
}

/// The window keys as read, before they are combined.
#[derive(Debug, Default)]
pub(crate) struct WindowKeys {
    /// `window_mode`, trimmed and lower-cased.
    pub mode: Option<String>,
    /// `window_past_days`, when given and valid.
    pub past_days: Option<i64>,
    /// `window_future_days`, when given and valid.
    pub future_days: Option<i64>,
    /// Whether `window_past_days` / `window_future_days` were given at all.
    pub days_given: [bool; 2],
    /// `daily_window`, when valid.
    pub daily_window: Option<DailyWindow>,
    /// Whether `daily_window` was given at all.
    pub daily_given: bool,
}

/// Combines the window keys: `daily_window` implies `today` (with a warning) when no mode
/// is given and is a problem with `rolling`; the day counts have no effect with `today`.
pub(crate) fn combine_window(w: &WindowKeys, p: &mut Report) -> WindowMode {
    let today = match w.mode.as_deref() {
        None => {
            if w.daily_given {
                p.warn(
                    "daily_window",
                    "given without window_mode: using window_mode \"today\"",
                );
            }
            w.daily_given
        }
        Some("rolling") => {
            if w.daily_given {
                p.problem(
                    "daily_window",
                    "applies only to window_mode \"today\" (window_mode is \"rolling\")",
                );
            }
            false
        }
        Some("today") => true,
        Some(other) => {
            p.problem(
                "window_mode",
                format!("must be \"rolling\" or \"today\", not {other:?}"),
            );
            false
        }
    };
    if today {
        for (k, given) in ["window_past_days", "window_future_days"]
            .into_iter()
            .zip(w.days_given)
        {
            if given {
                p.warn(k, "has no effect with window_mode \"today\"");
            }
        }
        WindowMode::Today {
            daily_window: w.daily_window,
        }
    } else {
        WindowMode::Rolling {
            past_days: w.past_days.unwrap_or(0) as u32,
            future_days: w.future_days.unwrap_or(1) as u32,
        }
    }
}
