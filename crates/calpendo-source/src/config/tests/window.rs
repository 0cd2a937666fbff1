//! Tests of the sync window's keys: the modes, `daily_window` (overnight too) and
//! `lookback_multiplier`.

use jiff::Timestamp;
use jiff::civil::date;
use serde_json::{Value, json};

use super::{env_ok, keys};
use crate::config::*;

fn tz_now(c: &CalpendoConfig, y: i16, m: i8, d: i8, h: i8) -> Timestamp {
    c.tz.to_ambiguous_timestamp(date(y, m, d).at(h, 30, 0, 0))
        .compatible()
        .unwrap()
}

#[test]
fn windows() {
    let base = json!({"base_url": "https://x", "resources": ["3T"], "station_aet_mapping": {"3T": "MR3T"}});
    let c = parse_config(&base, &env_ok).unwrap();
    let w = c.sync_window(tz_now(&c, 2026, 11, 26, 23));
    assert_eq!(w.start, date(2026, 11, 26).at(0, 0, 0, 0));
    assert_eq!(w.end, date(2026, 11, 28).at(0, 0, 0, 0));

    let mut v = base.clone();
    v["window_past_days"] = json!(2);
    v["window_future_days"] = json!(0);
    let c = parse_config(&v, &env_ok).unwrap();
    let w = c.sync_window(tz_now(&c, 2026, 3, 1, 1));
    assert_eq!(w.start, date(2026, 2, 27).at(0, 0, 0, 0));
    assert_eq!(w.end, date(2026, 3, 2).at(0, 0, 0, 0));

    let mut v = base.clone();
    v["window_mode"] = json!("today");
    let c = parse_config(&v, &env_ok).unwrap();
    let w = c.sync_window(tz_now(&c, 2026, 11, 26, 8));
    assert_eq!(w.start, date(2026, 11, 26).at(0, 0, 0, 0));
    assert_eq!(w.end, date(2026, 11, 27).at(0, 0, 0, 0));

    let mut v = base.clone();
    v["window_mode"] = json!("today");
    v["daily_window"] = json!({"start": "07:00", "end": "19:00"});
    let c = parse_config(&v, &env_ok).unwrap();
    let w = c.sync_window(tz_now(&c, 2026, 11, 26, 8));
    assert_eq!(w.start, date(2026, 11, 26).at(7, 0, 0, 0));
    assert_eq!(w.end, date(2026, 11, 26).at(19, 0, 0, 0));

    // Pylantir arrays, and daily_window alone implies "today" with a warning.
    let mut v = base.clone();
    v["daily_window"] = json!({"start_time": [7, 0], "end_time": [23, 59]});
    let c = parse_config(&v, &env_ok).unwrap();
    assert!(matches!(
        c.window_mode,
        WindowMode::Today {
            daily_window: Some(_)
        }
    ));
    assert_eq!(c.warnings.len(), 1);
    let w = c.sync_window(tz_now(&c, 2026, 11, 26, 8));
    assert_eq!(w.end, date(2026, 11, 26).at(23, 59, 0, 0));

    let mut v = base;
    v["window_mode"] = json!("rolling");
    v["daily_window"] = json!({"start": [25, 0], "end": "7"});
    let problems = parse_config(&v, &env_ok).unwrap_err();
    let k = keys(&problems);
    assert!(k.contains(&"daily_window.start"), "{k:?}");
    assert!(k.contains(&"daily_window.end"), "{k:?}");
    assert!(k.contains(&"daily_window"), "{k:?}");
}

#[test]
fn overnight_daily_window_ends_tomorrow() {
    let today = |daily: Value| {
        json!({"base_url": "https://x", "resources": ["3T"], "window_mode": "today",
            "daily_window": daily})
    };
    let c = parse_config(&today(json!({"start": "19:00", "end": "07:00"})), &env_ok).unwrap();
    let w = c.sync_window(tz_now(&c, 2026, 11, 26, 20));
    assert_eq!(w.start, date(2026, 11, 26).at(19, 0, 0, 0));
    assert_eq!(w.end, date(2026, 11, 27).at(7, 0, 0, 0));
    // After midnight the window is still the one starting today (Pylantir's meaning).
    let w = c.sync_window(tz_now(&c, 2026, 11, 27, 2));
    assert_eq!(w.start, date(2026, 11, 27).at(19, 0, 0, 0));
    assert_eq!(w.end, date(2026, 11, 28).at(7, 0, 0, 0));
    // Pylantir's arrays; an end equal to the start is 24 hours; midnight ends tomorrow.
    for (end, end_day, end_hour) in [([18, 0], 27, 18), ([0, 0], 27, 0), ([6, 0], 27, 6)] {
        let v = today(json!({"start_time": [18, 0], "end_time": end}));
        let c = parse_config(&v, &env_ok).unwrap();
        let w = c.sync_window(tz_now(&c, 2026, 11, 26, 8));
        assert_eq!(w.start, date(2026, 11, 26).at(18, 0, 0, 0));
        assert_eq!(
            w.end,
            date(2026, 11, end_day).at(end_hour, 0, 0, 0),
            "{end:?}"
        );
    }
}

#[test]
fn lookback_multiplier_widens_a_rolling_window() {
    let rolling = |extra: Value| {
        let mut v = json!({"base_url": "https://x", "resources": ["3T"], "sync_interval": 3600});
        if let (Value::Object(o), Value::Object(x)) = (&mut v, extra) {
            o.extend(x);
        }
        v
    };
    // 30 × 1 h before 2026-11-26 08:30 is 2026-11-25 02:30: the window starts that day.
    let c = parse_config(&rolling(json!({"lookback_multiplier": 30})), &env_ok).unwrap();
    let w = c.sync_window(tz_now(&c, 2026, 11, 26, 8));
    assert_eq!(w.start, date(2026, 11, 25).at(0, 0, 0, 0));
    assert_eq!(w.end, date(2026, 11, 28).at(0, 0, 0, 0));
    // A lookback within today changes nothing.
    let c = parse_config(&rolling(json!({"lookback_multiplier": 2})), &env_ok).unwrap();
    let w = c.sync_window(tz_now(&c, 2026, 11, 26, 8));
    assert_eq!(w.start, date(2026, 11, 26).at(0, 0, 0, 0));
    // Nor does one that ends inside window_past_days.
    let v = rolling(json!({"lookback_multiplier": 30, "window_past_days": 3}));
    let c = parse_config(&v, &env_ok).unwrap();
    let w = c.sync_window(tz_now(&c, 2026, 11, 26, 8));
    assert_eq!(w.start, date(2026, 11, 23).at(0, 0, 0, 0));
    // A huge multiplier reaches back at most 366 days.
    let c = parse_config(&rolling(json!({"lookback_multiplier": 1e300})), &env_ok).unwrap();
    let w = c.sync_window(tz_now(&c, 2026, 11, 26, 8));
    assert_eq!(w.start, date(2025, 11, 25).at(0, 0, 0, 0));
    // `today` mode ignores it, as Pylantir does.
    let v = rolling(json!({"lookback_multiplier": 30, "window_mode": "today"}));
    let c = parse_config(&v, &env_ok).unwrap();
    let w = c.sync_window(tz_now(&c, 2026, 11, 26, 8));
    assert_eq!(w.start, date(2026, 11, 26).at(0, 0, 0, 0));
}

#[test]
fn lookback_multiplier_default_follows_the_dialect() {
    let v = json!({"base_url": "https://x", "resources": ["3T"], "sync_interval": 3600});
    let site = |dialect| SiteContext {
        dialect,
        ..Default::default()
    };
    // 00:30: Pylantir's default 2 × 1 h reaches into yesterday.
    let c = parse_settings(&v, &env_ok, &site(Dialect::Pylantir)).unwrap();
    assert_eq!(c.lookback_multiplier, Some(PYLANTIR_LOOKBACK_MULTIPLIER));
    let w = c.sync_window(tz_now(&c, 2026, 11, 26, 0));
    assert_eq!(w.start, date(2026, 11, 25).at(0, 0, 0, 0));
    let c = parse_settings(&v, &env_ok, &site(Dialect::Mwlbridge)).unwrap();
    assert_eq!(c.lookback_multiplier, None);
    let w = c.sync_window(tz_now(&c, 2026, 11, 26, 0));
    assert_eq!(w.start, date(2026, 11, 26).at(0, 0, 0, 0));
    let problems = parse_config(
        &json!({"base_url": "https://x", "resources": ["3T"],
        "lookback_multiplier": true}),
        &env_ok,
    )
    .unwrap_err();
    assert_eq!(keys(&problems), vec!["lookback_multiplier"]);
}
