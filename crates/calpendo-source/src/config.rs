//! The Calpendo source's settings.
//!
//! The binary hands the source's settings over as a [`serde_json::Value`], whether the
//! administrator wrote them in TOML or in Pylantir's JSON. [`parse_config`] checks every
//! key and reports every problem at once, each with the dotted path of the key it is
//! about (for example `field_mapping.patient_id._extract.pattern`).
//!
//! # Keys
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `base_url` | env `CALPENDO_API_URL` | `http(s)://host[:port][/path]` of the Calpendo server |
//! | `api_path` | `/webdav` | `/webdav` (older servers) or `/api` |
//! | `resources` | required | resource-name **prefixes**; a booking is kept when its resource name starts with one |
//! | `status_filter` | none | a status or a list of exact statuses (`Approved`, ...) |
//! | `timezone` | `America/Edmonton` | the site's zone: DICOM dates and times are local to it |
//! | `source_timezone` | `timezone` | the zone of Calpendo's naive display times |
//! | `tzdir` | bundled | a zoneinfo directory to take zone rules from |
//! | `resource_modality_mapping` | none | resource-name prefix → Modality (CS) |
//! | `station_aet_mapping` | none | resource-name prefix → Scheduled Station AE Title |
//! | `field_mapping` | defaults below | entry field → booking JSON path, with optional regex extract |
//! | `window_mode` | `rolling` | `rolling` or `today` |
//! | `window_past_days` / `window_future_days` | 0 / 1 | rolling window: whole local days before / after today |
//! | `daily_window` | whole day | `today` mode: `{"start": "07:00", "end": "19:00"}` or Pylantir `[7, 0]` arrays |
//! | `lookback_multiplier` | none | Pylantir's; validated (a positive number) and otherwise ignored |
//! | `sync_interval` | 60 | seconds between syncs (the binary's scheduler uses it) |
//! | `sync_deadline` | 90 | seconds one whole sync cycle may take |
//! | `request_timeout` | 30 | seconds one HTTP request may take |
//! | `max_workers` | 5 | requests in flight at once (1 to 32) |
//! | `detail_refresh` | 600 | seconds a booking's fetched details are reused while its list item is unchanged (0 to 86400; 0: always fetch) |
//! | `on_cancel` | `discontinue` | `discontinue` or `delete` cancelled / vanished bookings |
//!
//! Credentials come only from the environment: `CALPENDO_USERNAME` and
//! `CALPENDO_PASSWORD`. The password never appears in a message or in `Debug` output.
//!
//! Every other key is a problem (typo protection). Pylantir's Calpendo settings carry no
//! key that we ignore: the keys Pylantir puts beside a source's settings (`name`, `type`,
//! `enabled`, `sync_interval`, `operation_interval`, ...) belong to the binary, which
//! strips them before handing the settings over (`sync_interval` is also accepted here).
//!
//! # `lookback_multiplier`
//!
//! Pylantir fetched from `now - sync_interval × lookback_multiplier` to `now + 24 h`. We
//! always fetch whole local days (the window of `window_mode`), which covers every lookback
//! Pylantir could ask for, so the value is checked and then has no effect (and no warning).
//!
//! # Field mapping
//!
//! `field_mapping` maps an entry field (our name or Pylantir's column name, see
//! [`Target`]) to a dot path into the booking details (`title`, `id`, `operator`,
//! `properties.project.formattedName`), or to
//! `{"source_field": path, "_extract": {"pattern": regex, "group": n}}`, or with
//! `"template": "$2^$1"` (regex replacement syntax, `${1}` where a name character follows)
//! instead of `group`. The pattern is matched at the start of the text, like Python's
//! `re.match` in Pylantir; without a match the value is the source text as is. A path
//! that is missing at the top level of a booking is also looked up under `properties`
//! (newer servers move `title` and `status` there). `operator` is the MRI scan operator.
//!
//! Defaults (see [`crate::mapping`]): the patient ID is the title's text before the first
//! `_` (the whole title when it has none); no patient name (a privacy-safe default);
//! study description from the project's name before its first `(`.
//!
//! A mapped `study_instance_uid` is used only when its value is a valid UID of at least
//! two components; mapped to `id` (as Pylantir's example does) it would be a bare booking
//! number, so that mapping is dropped with a warning and the derived, stable UID is kept.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};
use regex::Regex;
use serde_json::{Map, Value};
use worklist_store::validate::{ae_problem, cs_problem};
use worklist_store::{DEFAULT_TIMEZONE, OnCancel, SyncWindow, ZoneDb};

/// The default API path.
pub const DEFAULT_API_PATH: &str = "/webdav";
/// Environment variable holding the Calpendo user name.
pub const ENV_USERNAME: &str = "CALPENDO_USERNAME";
/// Environment variable holding the Calpendo password.
pub const ENV_PASSWORD: &str = "CALPENDO_PASSWORD";
/// Environment variable that may hold the base URL when the settings have none.
pub const ENV_API_URL: &str = "CALPENDO_API_URL";
/// The most requests in flight that `max_workers` allows.
pub const MAX_WORKERS_LIMIT: usize = 32;
/// The default `detail_refresh`: cached booking details are fetched again after 10 min.
pub const DEFAULT_DETAIL_REFRESH: Duration = Duration::from_secs(600);

/// Every key a Calpendo source's settings may have.
pub const KNOWN_KEYS: &[&str] = &[
    "base_url",
    "api_path",
    "resources",
    "status_filter",
    "timezone",
    "source_timezone",
    "tzdir",
    "resource_modality_mapping",
    "station_aet_mapping",
    "field_mapping",
    "window_mode",
    "window_past_days",
    "window_future_days",
    "daily_window",
    "lookback_multiplier",
    "sync_interval",
    "sync_deadline",
    "request_timeout",
    "max_workers",
    "detail_refresh",
    "on_cancel",
];

const MAX_SECONDS: f64 = 86_400.0;
const MAX_WINDOW_DAYS: i64 = 366;

/// One thing wrong with the settings: where (a dotted key path, or an environment
/// variable's name) and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigProblem {
    /// Dotted path of the key, like `field_mapping.patient_id._extract.pattern`, or the
    /// name of the environment variable.
    pub key: String,
    /// What is wrong, never with a credential in it.
    pub message: String,
}

impl ConfigProblem {
    fn new(key: impl Into<String>, message: impl Into<String>) -> ConfigProblem {
        ConfigProblem {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// A credential: kept out of `Debug` output and messages.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The credential itself, for the HTTP `Authorization` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

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

/// Resource-name prefix → value (a modality or a station AE title).
///
/// [`PrefixMap::lookup`] prefers an exact match, then the longest matching prefix, so the
/// result does not depend on the order the keys were written in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrefixMap {
    entries: Vec<(String, String)>,
}

impl PrefixMap {
    /// A map from `(prefix, value)` pairs.
    pub fn new(entries: Vec<(String, String)>) -> PrefixMap {
        PrefixMap { entries }
    }

    /// The value for a resource name: exact match first, then the longest prefix.
    pub fn lookup(&self, name: &str) -> Option<&str> {
        if let Some((_, v)) = self.entries.iter().find(|(k, _)| k == name) {
            return Some(v);
        }
        self.entries
            .iter()
            .filter(|(k, _)| name.starts_with(k.as_str()))
            .max_by_key(|(k, _)| k.len())
            .map(|(_, v)| v.as_str())
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The pairs, as configured.
    pub fn entries(&self) -> &[(String, String)] {
        &self.entries
    }
}

/// An entry field that `field_mapping` can fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    /// `patient_id`.
    PatientId,
    /// `patient_name`.
    PatientName,
    /// `patient_birth_date` (`YYYY-MM-DD` or `YYYYMMDD`).
    PatientBirthDate,
    /// `patient_sex` (`M`/`F`/`O`, or `male`/`female`/`other`).
    PatientSex,
    /// `study_description`.
    StudyDescription,
    /// `accession_number`.
    AccessionNumber,
    /// `study_instance_uid` (used only when the value is a valid UID).
    StudyInstanceUid,
    /// `referring_physician_name`.
    ReferringPhysicianName,
    /// `requested_procedure_id`.
    RequestedProcedureId,
    /// `requested_procedure_description`.
    RequestedProcedureDescription,
    /// `sps_id` (Pylantir: `scheduled_procedure_step_id`).
    SpsId,
    /// `performing_physician_name` (Pylantir: `performing_physician`).
    PerformingPhysicianName,
    /// `modality`.
    Modality,
    /// `station_ae_title` (Pylantir: `scheduled_station_aetitle`).
    StationAeTitle,
    /// `station_name`.
    StationName,
    /// `sps_description` (Pylantir: `scheduled_procedure_step_description`).
    SpsDescription,
    /// `sps_location`.
    SpsLocation,
}

impl Target {
    /// Every target.
    pub const ALL: [Target; 17] = [
        Target::PatientId,
        Target::PatientName,
        Target::PatientBirthDate,
        Target::PatientSex,
        Target::StudyDescription,
        Target::AccessionNumber,
        Target::StudyInstanceUid,
        Target::ReferringPhysicianName,
        Target::RequestedProcedureId,
        Target::RequestedProcedureDescription,
        Target::SpsId,
        Target::PerformingPhysicianName,
        Target::Modality,
        Target::StationAeTitle,
        Target::StationName,
        Target::SpsDescription,
        Target::SpsLocation,
    ];

    /// Our name of the field.
    pub fn name(self) -> &'static str {
        match self {
            Target::PatientId => "patient_id",
            Target::PatientName => "patient_name",
            Target::PatientBirthDate => "patient_birth_date",
            Target::PatientSex => "patient_sex",
            Target::StudyDescription => "study_description",
            Target::AccessionNumber => "accession_number",
            Target::StudyInstanceUid => "study_instance_uid",
            Target::ReferringPhysicianName => "referring_physician_name",
            Target::RequestedProcedureId => "requested_procedure_id",
            Target::RequestedProcedureDescription => "requested_procedure_description",
            Target::SpsId => "sps_id",
            Target::PerformingPhysicianName => "performing_physician_name",
            Target::Modality => "modality",
            Target::StationAeTitle => "station_ae_title",
            Target::StationName => "station_name",
            Target::SpsDescription => "sps_description",
            Target::SpsLocation => "sps_location",
        }
    }

    /// The target of a field name: ours, or Pylantir's column name.
    pub fn from_name(name: &str) -> Option<Target> {
        let alias = match name {
            "scheduled_procedure_step_id" => Some(Target::SpsId),
            "performing_physician" => Some(Target::PerformingPhysicianName),
            "scheduled_station_aetitle" => Some(Target::StationAeTitle),
            "scheduled_procedure_step_description" => Some(Target::SpsDescription),
            _ => None,
        };
        alias.or_else(|| Target::ALL.into_iter().find(|t| t.name() == name))
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What an extract yields from a match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtractOutput {
    /// A capture group (0 is the whole match).
    Group(usize),
    /// A replacement template over the match's groups, e.g. `$2^$1`.
    Template(String),
}

/// A regex extract applied to a source field's text.
#[derive(Debug, Clone)]
pub struct Extract {
    /// The pattern, matched at the start of the text.
    pub pattern: Regex,
    /// What the value is made of.
    pub output: ExtractOutput,
}

impl Extract {
    /// The extracted value: the group or the expanded template when the pattern matches
    /// at the start of `text`; `text` itself when it does not (Pylantir compatible);
    /// `None` when the chosen group did not take part in the match.
    pub fn apply(&self, text: &str) -> Option<String> {
        let caps = match self.pattern.captures(text) {
            Some(c) if c.get(0).is_some_and(|m| m.start() == 0) => c,
            _ => return Some(text.to_string()),
        };
        match &self.output {
            ExtractOutput::Group(n) => caps.get(*n).map(|m| m.as_str().to_string()),
            ExtractOutput::Template(t) => {
                let mut out = String::new();
                caps.expand(t, &mut out);
                Some(out)
            }
        }
    }
}

/// How one entry field is filled from a booking.
#[derive(Debug, Clone)]
pub struct FieldRule {
    /// Dot path into the booking details.
    pub source_field: String,
    /// Optional regex extract.
    pub extract: Option<Extract>,
}

/// The configured field mapping: at most one rule per [`Target`].
#[derive(Debug, Clone, Default)]
pub struct FieldMapping {
    rules: BTreeMap<Target, FieldRule>,
}

impl FieldMapping {
    /// The rule for a target, if one is configured.
    pub fn get(&self, target: Target) -> Option<&FieldRule> {
        self.rules.get(&target)
    }

    /// Sets the rule for a target.
    pub fn insert(&mut self, target: Target, rule: FieldRule) {
        self.rules.insert(target, rule);
    }

    /// Every configured rule.
    pub fn iter(&self) -> impl Iterator<Item = (Target, &FieldRule)> {
        self.rules.iter().map(|(t, r)| (*t, r))
    }

    /// Whether no rule is configured.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// A Calpendo source's checked settings.
#[derive(Debug, Clone)]
pub struct CalpendoConfig {
    /// Base URL, without a trailing slash.
    pub base_url: String,
    /// API path (`/webdav` or `/api`), starting with `/` (or empty), no trailing slash.
    pub api_path: String,
    /// Resource-name prefixes to keep.
    pub resources: Vec<String>,
    /// Exact statuses to keep; empty keeps every status.
    pub status_filter: Vec<String>,
    /// The site's zone name (IANA).
    pub timezone: String,
    /// The site's zone.
    pub tz: TimeZone,
    /// The zone name (IANA) of Calpendo's naive display times.
    pub source_timezone: String,
    /// The zone of Calpendo's naive display times.
    pub source_tz: TimeZone,
    /// The zoneinfo directory the zones came from, when not the bundled copy.
    pub tzdir: Option<PathBuf>,
    /// Resource-name prefix → Modality.
    pub resource_modality_mapping: PrefixMap,
    /// Resource-name prefix → Scheduled Station AE Title.
    pub station_aet_mapping: PrefixMap,
    /// Entry field → booking field.
    pub field_mapping: FieldMapping,
    /// Which bookings a cycle covers.
    pub window_mode: WindowMode,
    /// Pylantir's lookback multiplier: validated, otherwise without effect.
    pub lookback_multiplier: Option<f64>,
    /// Time between sync cycles.
    pub sync_interval: Duration,
    /// Time one whole sync cycle may take.
    pub sync_deadline: Duration,
    /// Time one HTTP request may take.
    pub request_timeout: Duration,
    /// Requests in flight at once.
    pub max_workers: usize,
    /// How long a booking's fetched details (and MRI operator) are reused while its list
    /// item stays the same; zero disables the detail cache (see [`crate::source`]).
    pub detail_refresh: Duration,
    /// What a sync does with cancelled and vanished bookings.
    pub on_cancel: OnCancel,
    /// Calpendo user name.
    pub username: String,
    /// Calpendo password (redacted in `Debug`).
    pub password: Secret,
    /// Non-fatal notes about the settings, for `check-config` and the start-up log.
    pub warnings: Vec<String>,
}

impl CalpendoConfig {
    /// The site's zone name (IANA), e.g. `America/Edmonton`.
    pub fn timezone(&self) -> &str {
        &self.timezone
    }

    /// The window one sync cycle starting at `now` covers, in the site's local time.
    pub fn sync_window(&self, now: Timestamp) -> SyncWindow {
        let today = self.tz.to_datetime(now).date();
        let day_start = |d: Date| d.to_datetime(Time::midnight());
        let add_days = |d: Date, n: i64| d.checked_add(Span::new().days(n)).unwrap_or(d);
        match self.window_mode {
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

    /// Whether a resource name starts with one of the configured prefixes.
    pub fn resource_selected(&self, resource_name: &str) -> bool {
        self.resources
            .iter()
            .any(|p| resource_name.starts_with(p.as_str()))
    }

    /// Whether a booking status passes the status filter (always, without a filter).
    pub fn status_selected(&self, status: &str) -> bool {
        self.status_filter.is_empty() || self.status_filter.iter().any(|s| s == status)
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

/// Deserializes from the settings' JSON form, taking credentials from the process
/// environment; every problem is reported in one error message. Prefer [`parse_config`],
/// which returns the problems one by one and takes the environment as a function.
impl<'de> serde::Deserialize<'de> for CalpendoConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        parse_config(&value, &|k| std::env::var(k).ok()).map_err(|problems| {
            let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
            serde::de::Error::custom(text.join("; "))
        })
    }
}

#[derive(Default)]
struct Problems(Vec<ConfigProblem>);

impl Problems {
    fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigProblem::new(key, message));
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a table/object",
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

fn suggestion<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    known
        .into_iter()
        .map(|k| (edit_distance(word, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| format!(" (did you mean {k:?}?)"))
        .unwrap_or_default()
}

fn get_string(obj: &Map<String, Value>, key: &str, p: &mut Problems) -> Option<String> {
    match obj.get(key)? {
        Value::String(s) => Some(s.clone()),
        other => {
            p.push(key, format!("must be a string, not {}", type_name(other)));
            None
        }
    }
}

fn get_seconds(obj: &Map<String, Value>, key: &str, default: f64, p: &mut Problems) -> Duration {
    let Some(v) = obj.get(key) else {
        return Duration::from_secs_f64(default);
    };
    match v.as_f64() {
        Some(s) if s.is_finite() && s > 0.0 && s <= MAX_SECONDS => Duration::from_secs_f64(s),
        Some(_) => {
            p.push(
                key,
                format!("must be a number of seconds above 0 and at most {MAX_SECONDS}"),
            );
            Duration::from_secs_f64(default)
        }
        None => {
            p.push(
                key,
                format!("must be a number of seconds, not {}", type_name(v)),
            );
            Duration::from_secs_f64(default)
        }
    }
}

/// Like [`get_seconds`], but 0 is allowed (it turns the feature off).
fn get_seconds_or_zero(
    obj: &Map<String, Value>,
    key: &str,
    default: f64,
    p: &mut Problems,
) -> Duration {
    let Some(v) = obj.get(key) else {
        return Duration::from_secs_f64(default);
    };
    match v.as_f64() {
        Some(s) if s.is_finite() && (0.0..=MAX_SECONDS).contains(&s) => Duration::from_secs_f64(s),
        Some(_) => {
            p.push(
                key,
                format!("must be a number of seconds from 0 to {MAX_SECONDS}"),
            );
            Duration::from_secs_f64(default)
        }
        None => {
            p.push(
                key,
                format!("must be a number of seconds, not {}", type_name(v)),
            );
            Duration::from_secs_f64(default)
        }
    }
}

fn get_int(
    obj: &Map<String, Value>,
    key: &str,
    min: i64,
    max: i64,
    p: &mut Problems,
) -> Option<i64> {
    let v = obj.get(key)?;
    match v.as_i64() {
        Some(n) if (min..=max).contains(&n) => Some(n),
        _ => {
            p.push(
                key,
                format!("must be a whole number from {min} to {max}, not {v}"),
            );
            None
        }
    }
}

fn non_blank(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty())
}

/// Checks a Calpendo source's settings and reads the credentials through `env`
/// (`CALPENDO_USERNAME`, `CALPENDO_PASSWORD`, and `CALPENDO_API_URL` when the settings
/// have no `base_url`). Returns every problem found, not only the first.
pub fn parse_config(
    value: &Value,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<CalpendoConfig, Vec<ConfigProblem>> {
    let mut p = Problems::default();
    let mut warnings = Vec::new();
    let empty = Map::new();
    let obj = match value {
        Value::Object(o) => o,
        other => {
            p.push(
                "",
                format!(
                    "the Calpendo source's settings must be a table/object, not {}",
                    type_name(other)
                ),
            );
            &empty
        }
    };

    for key in obj.keys() {
        if !KNOWN_KEYS.contains(&key.as_str()) {
            p.push(
                key.clone(),
                format!(
                    "unknown key {key:?}{}",
                    suggestion(key, KNOWN_KEYS.iter().copied())
                ),
            );
        }
    }

    // base_url: the settings, else CALPENDO_API_URL.
    let base_url = match obj.get("base_url") {
        Some(Value::String(s)) if !s.trim().is_empty() => check_base_url(s, "base_url", "", &mut p),
        Some(Value::String(_)) => {
            p.push("base_url", "must not be empty");
            None
        }
        Some(other) => {
            p.push(
                "base_url",
                format!("must be a string, not {}", type_name(other)),
            );
            None
        }
        None => match non_blank(env(ENV_API_URL)) {
            Some(u) => check_base_url(&u, "base_url", " (from CALPENDO_API_URL)", &mut p),
            None => {
                p.push(
                    "base_url",
                    format!("required (the Calpendo server's URL); or set {ENV_API_URL}"),
                );
                None
            }
        },
    };

    let api_path = match get_string(obj, "api_path", &mut p) {
        None => DEFAULT_API_PATH.to_string(),
        Some(s) => {
            let t = s.trim().trim_matches('/');
            if t.chars().any(|c| c.is_whitespace() || c == '?' || c == '#') {
                p.push(
                    "api_path",
                    "must be a plain path such as \"/webdav\" or \"/api\"",
                );
            }
            if t.is_empty() {
                String::new()
            } else {
                format!("/{t}")
            }
        }
    };

    let resources = parse_resources(obj, &mut p);
    let status_filter = parse_status_filter(obj, &mut p);

    // Zones.
    let tzdir = get_string(obj, "tzdir", &mut p).map(PathBuf::from);
    let zones = match &tzdir {
        Some(dir) => match ZoneDb::from_dir(dir) {
            Ok(db) => Some(db),
            Err(e) => {
                p.push("tzdir", e.to_string());
                None
            }
        },
        None => Some(ZoneDb::bundled()),
    };
    let timezone_name = get_string(obj, "timezone", &mut p)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| DEFAULT_TIMEZONE.to_string());
    let timezone = zones.as_ref().and_then(|db| match db.get(&timezone_name) {
        Ok(tz) => Some(tz),
        Err(e) => {
            p.push("timezone", e.to_string());
            None
        }
    });
    let source_timezone_name = get_string(obj, "source_timezone", &mut p)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| timezone_name.clone());
    let source_timezone = if source_timezone_name == timezone_name {
        timezone.clone()
    } else {
        zones
            .as_ref()
            .and_then(|db| match db.get(&source_timezone_name) {
                Ok(tz) => Some(tz),
                Err(e) => {
                    p.push("source_timezone", e.to_string());
                    None
                }
            })
    };

    let resource_modality_mapping =
        parse_prefix_map(obj, "resource_modality_mapping", &mut p, |v| {
            let m = v.trim().to_ascii_uppercase();
            match cs_problem(&m) {
                None => Ok(m),
                Some(e) => Err(format!("not a DICOM modality code: {e}")),
            }
        });
    let station_aet_mapping = parse_prefix_map(obj, "station_aet_mapping", &mut p, |v| {
        let ae = v.trim().to_string();
        match ae_problem(&ae) {
            None => Ok(ae),
            Some(e) => Err(e),
        }
    });

    let field_mapping = match obj.get("field_mapping") {
        None => FieldMapping::default(),
        Some(v) => parse_field_mapping(v, &mut p, &mut warnings),
    };

    let window_mode = parse_window(obj, &mut p, &mut warnings);

    let lookback_multiplier = obj
        .get("lookback_multiplier")
        .and_then(|v| match v.as_f64() {
            Some(x) if x.is_finite() && x > 0.0 => Some(x),
            _ => {
                p.push("lookback_multiplier", "must be a positive number");
                None
            }
        });

    let sync_interval = get_seconds(obj, "sync_interval", 60.0, &mut p);
    let sync_deadline = get_seconds(obj, "sync_deadline", 90.0, &mut p);
    let request_timeout = get_seconds(obj, "request_timeout", 30.0, &mut p);
    let max_workers = get_int(obj, "max_workers", 1, MAX_WORKERS_LIMIT as i64, &mut p)
        .map(|n| n as usize)
        .unwrap_or(5);
    let detail_refresh = get_seconds_or_zero(
        obj,
        "detail_refresh",
        DEFAULT_DETAIL_REFRESH.as_secs_f64(),
        &mut p,
    );

    let on_cancel = match get_string(obj, "on_cancel", &mut p) {
        None => OnCancel::Discontinue,
        Some(s) => match s.trim().to_ascii_lowercase().as_str() {
            "discontinue" => OnCancel::Discontinue,
            "delete" => OnCancel::Delete,
            _ => {
                p.push(
                    "on_cancel",
                    format!("must be \"discontinue\" or \"delete\", not {s:?}"),
                );
                OnCancel::Discontinue
            }
        },
    };

    // Credentials, from the environment only; their values never go into a message.
    let username = non_blank(env(ENV_USERNAME));
    if username.is_none() {
        p.push(
            ENV_USERNAME,
            format!("environment variable {ENV_USERNAME} is not set (the Calpendo user name)"),
        );
    }
    if username.as_deref().is_some_and(|u| u.contains(':')) {
        p.push(
            ENV_USERNAME,
            "the user name must not contain ':' (HTTP basic auth cannot carry it)",
        );
    }
    let password = env(ENV_PASSWORD).filter(|s| !s.is_empty());
    if password.is_none() {
        p.push(
            ENV_PASSWORD,
            format!("environment variable {ENV_PASSWORD} is not set (the Calpendo password)"),
        );
    }

    match (base_url, timezone, source_timezone, username, password) {
        (Some(base_url), Some(timezone), Some(source_timezone), Some(username), Some(password))
            if p.0.is_empty() =>
        {
            Ok(CalpendoConfig {
                base_url,
                api_path,
                resources,
                status_filter,
                timezone: timezone_name,
                tz: timezone,
                source_timezone: source_timezone_name,
                source_tz: source_timezone,
                tzdir,
                resource_modality_mapping,
                station_aet_mapping,
                field_mapping,
                window_mode,
                lookback_multiplier,
                sync_interval,
                sync_deadline,
                request_timeout,
                max_workers,
                detail_refresh,
                on_cancel,
                username,
                password: Secret(password),
                warnings,
            })
        }
        _ => Err(p.0),
    }
}

fn check_base_url(raw: &str, key: &str, origin: &str, p: &mut Problems) -> Option<String> {
    let raw = raw.trim();
    let url = match reqwest::Url::parse(raw) {
        Ok(u) => u,
        Err(e) => {
            p.push(key, format!("not a URL{origin}: {e}"));
            return None;
        }
    };
    let mut ok = true;
    if !matches!(url.scheme(), "http" | "https") {
        p.push(key, format!("must be an http:// or https:// URL{origin}"));
        ok = false;
    }
    if url.host_str().is_none_or(str::is_empty) {
        p.push(key, format!("has no host{origin}"));
        ok = false;
    }
    if !url.username().is_empty() || url.password().is_some() {
        // Never echo the URL: it holds a credential.
        p.push(
            key,
            format!(
                "must not hold credentials{origin}; set {ENV_USERNAME} and {ENV_PASSWORD} instead"
            ),
        );
        ok = false;
    }
    if url.query().is_some() || url.fragment().is_some() {
        p.push(key, format!("must not have a query or fragment{origin}"));
        ok = false;
    }
    ok.then(|| raw.trim_end_matches('/').to_string())
}

fn parse_resources(obj: &Map<String, Value>, p: &mut Problems) -> Vec<String> {
    let mut out = Vec::new();
    match obj.get("resources") {
        None => p.push(
            "resources",
            "required: a list of resource-name prefixes, e.g. [\"3T\", \"EEG\"]",
        ),
        Some(Value::Array(items)) => {
            if items.is_empty() {
                p.push("resources", "must list at least one resource-name prefix");
            }
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(s) if !s.trim().is_empty() => out.push(s.clone()),
                    Value::String(_) => p.push(format!("resources.{i}"), "must not be empty"),
                    other => p.push(
                        format!("resources.{i}"),
                        format!("must be a string, not {}", type_name(other)),
                    ),
                }
            }
        }
        Some(other) => p.push(
            "resources",
            format!(
                "must be a list of resource-name prefixes, not {}",
                type_name(other)
            ),
        ),
    }
    out
}

fn parse_status_filter(obj: &Map<String, Value>, p: &mut Problems) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |s: &str| {
        let s = s.trim().to_string();
        if !s.is_empty() && !out.contains(&s) {
            out.push(s);
        }
    };
    match obj.get("status_filter") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => add(s),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(s) if !s.trim().is_empty() => add(s),
                    other => p.push(
                        format!("status_filter.{i}"),
                        format!("must be a non-empty string, not {other}"),
                    ),
                }
            }
        }
        Some(other) => p.push(
            "status_filter",
            format!(
                "must be a status or a list of statuses, not {}",
                type_name(other)
            ),
        ),
    }
    out
}

fn parse_prefix_map(
    obj: &Map<String, Value>,
    key: &str,
    p: &mut Problems,
    check: impl Fn(&str) -> Result<String, String>,
) -> PrefixMap {
    let mut entries = Vec::new();
    match obj.get(key) {
        None => {}
        Some(Value::Object(m)) => {
            for (prefix, v) in m {
                let path = format!("{key}.{prefix}");
                match v {
                    Value::String(s) => match check(s) {
                        Ok(value) => entries.push((prefix.clone(), value)),
                        Err(e) => p.push(path, e),
                    },
                    other => p.push(path, format!("must be a string, not {}", type_name(other))),
                }
            }
        }
        Some(other) => p.push(
            key,
            format!(
                "must be a table/object of resource-name prefix = value, not {}",
                type_name(other)
            ),
        ),
    }
    PrefixMap::new(entries)
}

fn check_path(path: &str, key: &str, p: &mut Problems) -> bool {
    if path.trim().is_empty() {
        p.push(key, "the source field path must not be empty");
        false
    } else if path.split('.').any(|seg| seg.trim().is_empty()) {
        p.push(
            key,
            format!("{path:?} is not a dot path like \"properties.project.formattedName\""),
        );
        false
    } else {
        true
    }
}

fn parse_field_mapping(v: &Value, p: &mut Problems, warnings: &mut Vec<String>) -> FieldMapping {
    let mut mapping = FieldMapping::default();
    let Value::Object(m) = v else {
        p.push(
            "field_mapping",
            format!(
                "must be a table/object of entry field = source field, not {}",
                type_name(v)
            ),
        );
        return mapping;
    };
    let mut seen: BTreeMap<Target, String> = BTreeMap::new();
    for (name, rule) in m {
        let key = format!("field_mapping.{name}");
        let Some(target) = Target::from_name(name) else {
            let known: BTreeSet<&str> = Target::ALL.iter().map(|t| t.name()).collect();
            p.push(
                key,
                format!(
                    "unknown entry field {name:?}{}; known fields: {}",
                    suggestion(name, known.iter().copied()),
                    known.into_iter().collect::<Vec<_>>().join(", ")
                ),
            );
            continue;
        };
        if let Some(other) = seen.get(&target) {
            p.push(
                key,
                format!("maps the same field as field_mapping.{other} (an alias of {target})"),
            );
            continue;
        }
        seen.insert(target, name.clone());
        let Some(rule) = parse_rule(rule, &key, p) else {
            continue;
        };
        if target == Target::StudyInstanceUid
            && matches!(rule.source_field.as_str(), "id" | "properties.id")
        {
            warnings.push(format!(
                "{key}: a booking id is not a globally unique DICOM UID; the mapping is \
                 ignored and the stable derived UID (2.25.…) is used"
            ));
            continue;
        }
        mapping.insert(target, rule);
    }
    mapping
}

fn parse_rule(v: &Value, key: &str, p: &mut Problems) -> Option<FieldRule> {
    match v {
        Value::String(path) => check_path(path, key, p).then(|| FieldRule {
            source_field: path.trim().to_string(),
            extract: None,
        }),
        Value::Object(m) => {
            let mut ok = true;
            for k in m.keys() {
                if !matches!(k.as_str(), "source_field" | "_extract") {
                    p.push(
                        format!("{key}.{k}"),
                        format!(
                            "unknown key {k:?}{} (expected source_field and _extract)",
                            suggestion(k, ["source_field", "_extract"])
                        ),
                    );
                    ok = false;
                }
            }
            let source_field = match m.get("source_field") {
                Some(Value::String(s)) => {
                    ok &= check_path(s, &format!("{key}.source_field"), p);
                    Some(s.trim().to_string())
                }
                Some(other) => {
                    p.push(
                        format!("{key}.source_field"),
                        format!("must be a string, not {}", type_name(other)),
                    );
                    None
                }
                None => {
                    p.push(
                        format!("{key}.source_field"),
                        "required: the booking field to read, e.g. \"title\"",
                    );
                    None
                }
            };
            let extract = match m.get("_extract") {
                None => None,
                Some(x) => {
                    let e = parse_extract(x, &format!("{key}._extract"), p);
                    ok &= e.is_some();
                    e
                }
            };
            match source_field {
                Some(source_field) if ok => Some(FieldRule {
                    source_field,
                    extract,
                }),
                _ => None,
            }
        }
        other => {
            p.push(
                key,
                format!(
                    "must be a source field path or {{source_field, _extract}}, not {}",
                    type_name(other)
                ),
            );
            None
        }
    }
}

fn parse_extract(v: &Value, key: &str, p: &mut Problems) -> Option<Extract> {
    let Value::Object(m) = v else {
        p.push(
            key,
            format!(
                "must be a table/object with pattern and group or template, not {}",
                type_name(v)
            ),
        );
        return None;
    };
    let mut ok = true;
    for k in m.keys() {
        if !matches!(k.as_str(), "pattern" | "group" | "template") {
            p.push(
                format!("{key}.{k}"),
                format!(
                    "unknown key {k:?}{} (expected pattern, group or template)",
                    suggestion(k, ["pattern", "group", "template"])
                ),
            );
            ok = false;
        }
    }
    let pattern = match m.get("pattern") {
        Some(Value::String(s)) => match Regex::new(s) {
            Ok(r) => Some(r),
            Err(e) => {
                p.push(
                    format!("{key}.pattern"),
                    format!("invalid regular expression: {e}"),
                );
                None
            }
        },
        Some(other) => {
            p.push(
                format!("{key}.pattern"),
                format!("must be a string, not {}", type_name(other)),
            );
            None
        }
        None => {
            p.push(format!("{key}.pattern"), "required: the regular expression");
            None
        }
    };
    let group = match m.get("group") {
        None => None,
        Some(g) => match g.as_u64() {
            Some(n) => Some(n as usize),
            None => {
                p.push(
                    format!("{key}.group"),
                    format!("must be a whole number (0 is the whole match), not {g}"),
                );
                ok = false;
                None
            }
        },
    };
    let template = match m.get("template") {
        None => None,
        Some(Value::String(t)) => Some(t.clone()),
        Some(other) => {
            p.push(
                format!("{key}.template"),
                format!("must be a string, not {}", type_name(other)),
            );
            ok = false;
            None
        }
    };
    if group.is_some() && template.is_some() {
        p.push(key, "give either group or template, not both");
        ok = false;
    }
    let pattern = pattern?;
    if let Some(n) = group
        && n >= pattern.captures_len()
    {
        p.push(
            format!("{key}.group"),
            format!(
                "the pattern has {} capture group(s); group {n} does not exist",
                pattern.captures_len() - 1
            ),
        );
        ok = false;
    }
    if let Some(t) = &template {
        for name in template_refs(t) {
            let exists = match name.parse::<usize>() {
                Ok(n) => n < pattern.captures_len(),
                Err(_) => pattern.capture_names().flatten().any(|c| c == name),
            };
            if !exists {
                p.push(
                    format!("{key}.template"),
                    format!(
                        "refers to group {name:?}, which the pattern lacks (write ${{1}} \
                         when a letter, digit or _ follows a group number)"
                    ),
                );
                ok = false;
            }
        }
    }
    if !ok {
        return None;
    }
    let output = match template {
        Some(t) => ExtractOutput::Template(t),
        None => ExtractOutput::Group(group.unwrap_or(0)),
    };
    Some(Extract { pattern, output })
}

/// The group names a replacement template refers to (`$1`, `$name`, `${name}`), as the
/// regex crate reads them.
fn template_refs(t: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b = t.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' {
            i += 1;
            continue;
        }
        if b.get(i + 1) == Some(&b'$') {
            i += 2;
            continue;
        }
        if b.get(i + 1) == Some(&b'{') {
            if let Some(end) = t[i + 2..].find('}') {
                out.push(t[i + 2..i + 2 + end].to_string());
                i += end + 3;
            } else {
                i += 1;
            }
            continue;
        }
        let start = i + 1;
        let mut j = start;
        while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
            j += 1;
        }
        if j > start {
            out.push(t[start..j].to_string());
        }
        i = j.max(i + 1);
    }
    out
}

fn parse_clock(v: &Value, key: &str, allow_24: bool, p: &mut Problems) -> Option<u32> {
    let (h, m) = match v {
        Value::String(s) => {
            let mut parts = s.trim().split(':');
            let h = parts.next().and_then(|x| x.parse::<u32>().ok());
            let m = parts.next().and_then(|x| x.parse::<u32>().ok());
            let sec_ok = parts.next().is_none_or(|x| x == "00");
            match (h, m, sec_ok, parts.next()) {
                (Some(h), Some(m), true, None) => (h, m),
                _ => {
                    p.push(key, format!("must be a time like \"07:00\", not {s:?}"));
                    return None;
                }
            }
        }
        Value::Array(a) if a.len() == 2 => match (a[0].as_u64(), a[1].as_u64()) {
            (Some(h), Some(m)) => (h.min(99) as u32, m.min(99) as u32),
            _ => {
                p.push(key, "must be [hour, minute] whole numbers, e.g. [7, 0]");
                return None;
            }
        },
        other => {
            p.push(
                key,
                format!(
                    "must be \"HH:MM\" or [hour, minute], not {}",
                    type_name(other)
                ),
            );
            return None;
        }
    };
    let minute = h * 60 + m;
    if m > 59 || h > 24 || (minute > 1440) || (minute == 1440 && !allow_24) || (h == 24 && m != 0) {
        p.push(key, format!("{h:02}:{m:02} is not a time of day"));
        return None;
    }
    Some(minute)
}

fn parse_daily_window(v: &Value, p: &mut Problems) -> Option<DailyWindow> {
    let key = "daily_window";
    let Value::Object(m) = v else {
        p.push(
            key,
            format!(
                "must be {{start = \"07:00\", end = \"19:00\"}}, not {}",
                type_name(v)
            ),
        );
        return None;
    };
    for k in m.keys() {
        if !matches!(k.as_str(), "start" | "end" | "start_time" | "end_time") {
            p.push(
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
            p.push(format!("{key}.start"), "required, e.g. \"07:00\"");
            None
        }
    };
    let end = match pick(m, "end", "end_time") {
        Some((k, v)) => parse_clock(v, &format!("{key}.{k}"), true, p),
        None => {
            p.push(format!("{key}.end"), "required, e.g. \"19:00\"");
            None
        }
    };
    let (start, end) = (start?, end?);
    if end <= start {
        p.push(key, "end must be later than start");
        return None;
    }
    Some(DailyWindow {
        start_minute: start,
        end_minute: end,
    })
}

fn parse_window(
    obj: &Map<String, Value>,
    p: &mut Problems,
    warnings: &mut Vec<String>,
) -> WindowMode {
    let mode = get_string(obj, "window_mode", p).map(|s| s.trim().to_ascii_lowercase());
    let past = get_int(obj, "window_past_days", 0, MAX_WINDOW_DAYS, p);
    let future = get_int(obj, "window_future_days", 0, MAX_WINDOW_DAYS, p);
    let daily = obj
        .get("daily_window")
        .and_then(|v| parse_daily_window(v, p));
    let today = match mode.as_deref() {
        None => {
            if obj.contains_key("daily_window") {
                warnings.push(
                    "daily_window is given without window_mode: using window_mode \"today\"".into(),
                );
                true
            } else {
                false
            }
        }
        Some("rolling") => {
            if obj.contains_key("daily_window") {
                p.push(
                    "daily_window",
                    "applies only to window_mode \"today\" (window_mode is \"rolling\")",
                );
            }
            false
        }
        Some("today") => true,
        Some(other) => {
            p.push(
                "window_mode",
                format!("must be \"rolling\" or \"today\", not {other:?}"),
            );
            false
        }
    };
    if today {
        for k in ["window_past_days", "window_future_days"] {
            if obj.contains_key(k) {
                warnings.push(format!("{k} has no effect with window_mode \"today\""));
            }
        }
        WindowMode::Today {
            daily_window: daily,
        }
    } else {
        WindowMode::Rolling {
            past_days: past.unwrap_or(0) as u32,
            future_days: future.unwrap_or(1) as u32,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use jiff::civil::date;
    use serde_json::json;

    pub(crate) fn env_ok(k: &str) -> Option<String> {
        match k {
            "CALPENDO_USERNAME" => Some("mwlbridge".into()),
            "CALPENDO_PASSWORD" => Some("s3cr3t-pw".into()),
            _ => None,
        }
    }

    fn keys(problems: &[ConfigProblem]) -> Vec<&str> {
        problems.iter().map(|p| p.key.as_str()).collect()
    }

    const PYLANTIR: &str = r#"{"base_url":"https://x.calpendo.com","resources":["3T Diagnostic","EEG Lab"],"status_filter":"Approved","lookback_multiplier":2,"timezone":"America/Edmonton","resource_modality_mapping":{"3T":"MR","EEG":"EEG","Mock":"OT"},"field_mapping":{"patient_id":{"source_field":"title","_extract":{"pattern":"^([A-Z0-9]+)_.*","group":1}},"patient_name":{"source_field":"title","_extract":{"pattern":"^[A-Z0-9]+_(.+)$","group":1}},"study_description":{"source_field":"properties.project.formattedName","_extract":{"pattern":"^([^(]+)","group":1}},"accession_number":"id","study_instance_uid":"id"}}"#;

    #[test]
    fn pylantir_example_parses() {
        let v: Value = serde_json::from_str(PYLANTIR).unwrap();
        let c = parse_config(&v, &env_ok).unwrap();
        assert_eq!(c.base_url, "https://x.calpendo.com");
        assert_eq!(c.api_path, "/webdav");
        assert_eq!(c.resources, vec!["3T Diagnostic", "EEG Lab"]);
        assert_eq!(c.status_filter, vec!["Approved"]);
        assert_eq!(c.lookback_multiplier, Some(2.0));
        assert_eq!(c.timezone, "America/Edmonton");
        assert_eq!(c.source_timezone, "America/Edmonton");
        assert_eq!(
            c.resource_modality_mapping.lookup("3T Diagnostic"),
            Some("MR")
        );
        assert_eq!(c.resource_modality_mapping.lookup("EEG Lab"), Some("EEG"));
        assert_eq!(c.resource_modality_mapping.lookup("7T"), None);
        assert!(c.field_mapping.get(Target::PatientId).is_some());
        assert!(c.field_mapping.get(Target::PatientName).is_some());
        assert!(c.field_mapping.get(Target::AccessionNumber).is_some());
        // study_instance_uid → id is dropped, with a note.
        assert!(c.field_mapping.get(Target::StudyInstanceUid).is_none());
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(c.warnings[0].contains("study_instance_uid"));
        assert_eq!(
            c.window_mode,
            WindowMode::Rolling {
                past_days: 0,
                future_days: 1
            }
        );
        assert_eq!(c.max_workers, 5);
        assert_eq!(c.sync_interval, Duration::from_secs(60));
        assert_eq!(c.sync_deadline, Duration::from_secs(90));
        assert_eq!(c.request_timeout, Duration::from_secs(30));
        assert_eq!(c.detail_refresh, Duration::from_secs(600));
        assert_eq!(c.on_cancel, OnCancel::Discontinue);
        assert_eq!(c.username, "mwlbridge");
        assert_eq!(c.password.expose(), "s3cr3t-pw");
    }

    #[test]
    fn serde_deserialize_uses_parse_config() {
        // Missing credentials in the process env are reported, all in one message.
        let r: Result<CalpendoConfig, _> = serde_json::from_value(json!({"resources": 3}));
        let e = r.unwrap_err().to_string();
        assert!(e.contains("resources"), "{e}");
    }

    #[test]
    fn debug_redacts_the_password() {
        let v: Value = serde_json::from_str(PYLANTIR).unwrap();
        let c = parse_config(&v, &env_ok).unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("s3cr3t-pw"));
        assert!(dbg.contains("redacted"));
    }

    #[test]
    fn every_problem_is_reported() {
        let v = json!({
            "base_url": "ftp://x",
            "resources": [],
            "timezone": "America/Edmonten",
            "max_workers": 64,
            "on_cancel": "remove",
            "window_mode": "weekly",
            "sync_deadline": -1,
            "station_aet_mapping": {"3T": "A_VERY_LONG_AE_TITLE_X"},
            "resource_modality_mapping": {"3T": "M-R"},
            "field_mapping": {
                "patient_idd": "title",
                "patient_name": {"source_field": "title", "_extract": {"pattern": "([a-z"}},
                "study_description": {"_extract": {"pattern": "x", "group": 3}},
            },
            "resourcez": ["3T"],
        });
        let problems = parse_config(&v, &|_| None).unwrap_err();
        let k = keys(&problems);
        for expected in [
            "base_url",
            "resources",
            "timezone",
            "max_workers",
            "on_cancel",
            "window_mode",
            "sync_deadline",
            "station_aet_mapping.3T",
            "resource_modality_mapping.3T",
            "field_mapping.patient_idd",
            "field_mapping.patient_name._extract.pattern",
            "field_mapping.study_description.source_field",
            "field_mapping.study_description._extract.group",
            "resourcez",
            "CALPENDO_USERNAME",
            "CALPENDO_PASSWORD",
        ] {
            assert!(k.contains(&expected), "{expected} missing from {k:?}");
        }
        let typo = problems.iter().find(|p| p.key == "resourcez").unwrap();
        assert!(typo.message.contains("resourcez"), "{}", typo.message);
        assert!(
            typo.message.contains("did you mean \"resources\""),
            "{}",
            typo.message
        );
        let unknown = problems
            .iter()
            .find(|p| p.key == "field_mapping.patient_idd")
            .unwrap();
        assert!(
            unknown.message.contains("patient_id"),
            "{}",
            unknown.message
        );
    }

    #[test]
    fn missing_env_vars_are_named_and_password_never_shown() {
        let v = json!({"base_url": "https://x", "resources": ["3T"]});
        let only_user = |k: &str| (k == "CALPENDO_USERNAME").then(|| "u".to_string());
        let problems = parse_config(&v, &only_user).unwrap_err();
        assert_eq!(keys(&problems), vec!["CALPENDO_PASSWORD"]);
        assert!(problems[0].message.contains("CALPENDO_PASSWORD"));

        let only_pw = |k: &str| (k == "CALPENDO_PASSWORD").then(|| "hunter2".to_string());
        let problems = parse_config(&v, &only_pw).unwrap_err();
        assert_eq!(keys(&problems), vec!["CALPENDO_USERNAME"]);
        for p in &problems {
            assert!(!p.to_string().contains("hunter2"));
        }
    }

    #[test]
    fn base_url_from_env_only_when_config_has_none() {
        let env = |k: &str| match k {
            "CALPENDO_API_URL" => Some("https://env.example/".to_string()),
            _ => env_ok(k),
        };
        let c = parse_config(&json!({"resources": ["3T"]}), &env).unwrap();
        assert_eq!(c.base_url, "https://env.example");
        let c = parse_config(
            &json!({"base_url": "http://cfg.example:8080", "resources": ["3T"]}),
            &env,
        )
        .unwrap();
        assert_eq!(c.base_url, "http://cfg.example:8080");
        let problems = parse_config(&json!({"resources": ["3T"]}), &env_ok).unwrap_err();
        assert_eq!(keys(&problems), vec!["base_url"]);
        assert!(problems[0].message.contains("CALPENDO_API_URL"));
    }

    #[test]
    fn base_url_with_credentials_is_rejected_without_echo() {
        let v = json!({"base_url": "https://user:topsecret@x.example", "resources": ["3T"]});
        let problems = parse_config(&v, &env_ok).unwrap_err();
        assert_eq!(keys(&problems), vec!["base_url"]);
        assert!(!problems[0].message.contains("topsecret"));
    }

    #[test]
    fn bad_regex_is_a_problem_at_its_path() {
        let v = json!({"base_url": "https://x", "resources": ["3T"], "field_mapping": {
            "patient_id": {"source_field": "title", "_extract": {"pattern": "^(unclosed", "group": 1}}
        }});
        let problems = parse_config(&v, &env_ok).unwrap_err();
        assert_eq!(
            keys(&problems),
            vec!["field_mapping.patient_id._extract.pattern"]
        );
        assert!(problems[0].message.contains("invalid regular expression"));
    }

    #[test]
    fn template_extract() {
        let v = json!({"base_url": "https://x", "resources": ["3T"], "field_mapping": {
            "patient_name": {"source_field": "title",
                "_extract": {"pattern": "^([^_]+)_([^_]+)_(.+)$", "template": "$2^$3"}}
        }});
        let c = parse_config(&v, &env_ok).unwrap();
        let rule = c.field_mapping.get(Target::PatientName).unwrap();
        let e = rule.extract.as_ref().unwrap();
        assert_eq!(e.apply("SUB001_Doe_John").as_deref(), Some("Doe^John"));
        // No match: the text as is.
        assert_eq!(e.apply("SUB001").as_deref(), Some("SUB001"));
    }

    #[test]
    fn template_refs_to_missing_groups_are_problems() {
        let v = json!({"base_url": "https://x", "resources": ["3T"], "field_mapping": {
            "patient_name": {"source_field": "title",
                "_extract": {"pattern": "^([^_]+)_(.+)$", "template": "$1_$2"}},
            "patient_id": {"source_field": "title",
                "_extract": {"pattern": "^(x)", "group": 1, "template": "$1"}},
        }});
        let problems = parse_config(&v, &env_ok).unwrap_err();
        let k = keys(&problems);
        assert!(
            k.contains(&"field_mapping.patient_name._extract.template"),
            "{k:?}"
        );
        assert!(k.contains(&"field_mapping.patient_id._extract"), "{k:?}");
        // ${1}_${2} is fine.
        let v = json!({"base_url": "https://x", "resources": ["3T"], "field_mapping": {
            "patient_name": {"source_field": "title",
                "_extract": {"pattern": "^(?P<a>[^_]+)_(.+)$", "template": "${1}_$2 $a $$"}},
        }});
        assert!(parse_config(&v, &env_ok).is_ok());
    }

    #[test]
    fn extract_matches_at_start_only() {
        let e = Extract {
            pattern: Regex::new("([0-9]+)").unwrap(),
            output: ExtractOutput::Group(1),
        };
        assert_eq!(e.apply("123abc").as_deref(), Some("123"));
        // Python's re.match would not match here: the text is kept.
        assert_eq!(e.apply("abc123").as_deref(), Some("abc123"));
    }

    #[test]
    fn aliases_map_to_the_same_targets() {
        assert_eq!(Target::from_name("sps_id"), Some(Target::SpsId));
        assert_eq!(
            Target::from_name("scheduled_procedure_step_id"),
            Some(Target::SpsId)
        );
        assert_eq!(
            Target::from_name("performing_physician"),
            Some(Target::PerformingPhysicianName)
        );
        assert_eq!(
            Target::from_name("scheduled_station_aetitle"),
            Some(Target::StationAeTitle)
        );
        assert_eq!(
            Target::from_name("scheduled_procedure_step_description"),
            Some(Target::SpsDescription)
        );
        for t in Target::ALL {
            assert_eq!(Target::from_name(t.name()), Some(t));
        }
        let v = json!({"base_url": "https://x", "resources": ["3T"], "field_mapping": {
            "sps_id": "id", "scheduled_procedure_step_id": "id"
        }});
        let problems = parse_config(&v, &env_ok).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
    }

    #[test]
    fn status_filter_forms() {
        let base =
            |sf: Value| json!({"base_url": "https://x", "resources": ["3T"], "status_filter": sf});
        let c = parse_config(
            &base(json!(["Approved", "In Progress", "Approved"])),
            &env_ok,
        )
        .unwrap();
        assert_eq!(c.status_filter, vec!["Approved", "In Progress"]);
        assert!(c.status_selected("In Progress"));
        assert!(!c.status_selected("Cancelled"));
        let c = parse_config(&base(json!("")), &env_ok).unwrap();
        assert!(c.status_filter.is_empty());
        assert!(c.status_selected("Cancelled"));
        assert!(parse_config(&base(json!(5)), &env_ok).is_err());
    }

    #[test]
    fn prefix_map_prefers_exact_then_longest() {
        let m = PrefixMap::new(vec![
            ("3T".into(), "MR".into()),
            ("3T Research".into(), "OT".into()),
            ("EEG".into(), "EEG".into()),
        ]);
        assert_eq!(m.lookup("3T Diagnostic"), Some("MR"));
        assert_eq!(m.lookup("3T Research Scanner"), Some("OT"));
        assert_eq!(m.lookup("Mock Scanner"), None);
    }

    #[test]
    fn windows() {
        let tz_now = |c: &CalpendoConfig, y, m, d, h| {
            c.tz.to_ambiguous_timestamp(date(y, m, d).at(h, 30, 0, 0))
                .compatible()
                .unwrap()
        };
        let base = json!({"base_url": "https://x", "resources": ["3T"]});
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

        let mut v = base.clone();
        v["window_mode"] = json!("today");
        v["daily_window"] = json!({"start": "19:00", "end": "07:00"});
        let problems = parse_config(&v, &env_ok).unwrap_err();
        assert_eq!(keys(&problems), vec!["daily_window"]);

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
    fn numbers_and_limits() {
        let v = json!({"base_url": "https://x/", "api_path": "api/", "resources": ["3T"],
            "sync_deadline": 0.5, "request_timeout": 2, "max_workers": 32, "on_cancel": "delete",
            "lookback_multiplier": 0.5, "source_timezone": "America/Toronto"});
        let c = parse_config(&v, &env_ok).unwrap();
        assert_eq!(c.base_url, "https://x");
        assert_eq!(c.api_path, "/api");
        assert_eq!(c.sync_deadline, Duration::from_millis(500));
        assert_eq!(c.request_timeout, Duration::from_secs(2));
        assert_eq!(c.max_workers, 32);
        assert_eq!(c.on_cancel, OnCancel::Delete);
        assert_eq!(c.source_timezone, "America/Toronto");
        let v = json!({"base_url": "https://x", "resources": ["3T"], "max_workers": 0,
            "lookback_multiplier": 0, "source_timezone": "Mars/Olympus"});
        let problems = parse_config(&v, &env_ok).unwrap_err();
        let mut k = keys(&problems);
        k.sort();
        assert_eq!(
            k,
            vec!["lookback_multiplier", "max_workers", "source_timezone"]
        );
    }

    #[test]
    fn detail_refresh_range() {
        let with =
            |v: Value| json!({"base_url": "https://x", "resources": ["3T"], "detail_refresh": v});
        let c = parse_config(&with(json!(0)), &env_ok).unwrap();
        assert_eq!(c.detail_refresh, Duration::ZERO);
        let c = parse_config(&with(json!(86_400)), &env_ok).unwrap();
        assert_eq!(c.detail_refresh, Duration::from_secs(86_400));
        let c = parse_config(&with(json!(1.5)), &env_ok).unwrap();
        assert_eq!(c.detail_refresh, Duration::from_millis(1500));
        for bad in [json!(-1), json!(86_401), json!("600"), json!(true)] {
            let problems = parse_config(&with(bad.clone()), &env_ok).unwrap_err();
            assert_eq!(keys(&problems), vec!["detail_refresh"], "{bad}");
        }
    }

    #[test]
    fn bad_tzdir_is_a_problem() {
        let v =
            json!({"base_url": "https://x", "resources": ["3T"], "tzdir": "/nonexistent/zoneinfo"});
        let problems = parse_config(&v, &env_ok).unwrap_err();
        assert_eq!(keys(&problems), vec!["tzdir"]);
    }

    #[test]
    fn not_an_object() {
        let problems = parse_config(&json!([1]), &env_ok).unwrap_err();
        assert!(problems.iter().any(|p| p.key.is_empty()));
    }
}
