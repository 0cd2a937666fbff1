//! The Calpendo source's settings: [`parse_config`] checks them and returns a
//! [`CalpendoConfig`] or every problem at once.
//!
//! The binary hands the source's settings over as a [`serde_json::Value`], whether the
//! administrator wrote them in TOML or in Pylantir's JSON, and the site's zone as a
//! [`SiteContext`]. Each problem names the key path it is about (for example
//! `field_mapping.patient_id._extract.pattern`) or the environment variable.
//!
//! - [`keys`]: one definition per key (name, default, doc, read): the known keys and the
//!   docs table (`docs/configuration.md`) come from it.
//! - `field_mapping`, `window`: reading `field_mapping` and the window keys.
//! - this module: the rules that involve several keys (zones, `base_url` from the
//!   environment, credentials) and the result.
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

mod field_mapping;
pub mod keys;
mod window;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use config_reader::{Location, Report, Table, kind};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::{Map, Value};
use worklist_store::{DEFAULT_TIMEZONE, OnCancel, SyncWindow, ZoneDb};

pub use crate::fields::{Extract, ExtractOutput, FieldMapping, FieldRule, PrefixMap, Target};
pub use crate::window::{DailyWindow, WindowMode};
pub use config_reader::Problem;
pub use keys::{
    DEFAULT_API_PATH, DEFAULT_DETAIL_REFRESH, ENV_API_URL, ENV_PASSWORD, ENV_USERNAME, KEYS,
    KNOWN_KEYS, Key, MAX_WORKERS_LIMIT, docs_table, known_keys,
};

use keys::{Draft, check_base_url, read_keys};

/// One thing wrong with the settings (the config reader's [`Problem`]; the old name).
pub type ConfigProblem = Problem;

/// What a source takes from the site's settings rather than its own: its zone and where
/// zone rules come from. Its own `timezone` and `tzdir` keys, when given, win.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteContext {
    /// The site's zone (IANA), when it is a valid one; `None`: `America/Edmonton`.
    pub timezone: Option<String>,
    /// The site's zoneinfo directory; `None`: the bundled tzdata.
    pub tzdir: Option<PathBuf>,
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
    pub warnings: Vec<Problem>,
}

impl CalpendoConfig {
    /// The site's zone name (IANA), e.g. `America/Edmonton`.
    pub fn timezone(&self) -> &str {
        &self.timezone
    }

    /// The window one sync cycle starting at `now` covers, in the site's local time.
    pub fn sync_window(&self, now: Timestamp) -> SyncWindow {
        crate::window::sync_window(self.window_mode, &self.tz, now)
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

fn non_blank(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty())
}

/// Checks a Calpendo source's settings on their own (the default zone, bundled zone
/// rules) and reads the credentials through `env`; see [`parse_settings`].
pub fn parse_config(
    value: &Value,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<CalpendoConfig, Vec<Problem>> {
    parse_settings(value, env, &SiteContext::default())
}

/// Checks a Calpendo source's settings and reads the credentials through `env`
/// (`CALPENDO_USERNAME`, `CALPENDO_PASSWORD`, and `CALPENDO_API_URL` when the settings
/// have no `base_url`); the zone and zone rules default to the `site`'s. Returns every
/// problem found, not only the first; key paths are relative to the settings.
pub fn parse_settings(
    value: &Value,
    env: &dyn Fn(&str) -> Option<String>,
    site: &SiteContext,
) -> Result<CalpendoConfig, Vec<Problem>> {
    let mut r = Report::new();
    let empty = Map::new();
    let obj = match value {
        Value::Object(o) => o,
        other => {
            r.problem(
                "",
                format!(
                    "the Calpendo source's settings must be a table/object, not {}",
                    kind(other)
                ),
            );
            &empty
        }
    };
    let mut t = Table::new(obj, "");
    let draft = read_keys(&mut t, &mut r);
    let config = finish(draft, env, site, &mut r);
    let (mut config, warnings) = r.finish(config)?;
    config.warnings = warnings;
    Ok(config)
}

/// The zone rules and the two zones, each problem at its key.
fn zones(d: &Draft, site: &SiteContext, r: &mut Report) -> Option<Zones> {
    let tzdir = d.tzdir.clone().or_else(|| site.tzdir.clone());
    let db = match &tzdir {
        Some(dir) => match ZoneDb::from_dir(dir) {
            Ok(db) => db,
            Err(e) => {
                r.problem("tzdir", e.to_string());
                return None;
            }
        },
        None => ZoneDb::bundled(),
    };
    let timezone = d
        .timezone
        .clone()
        .or_else(|| site.timezone.clone())
        .unwrap_or_else(|| DEFAULT_TIMEZONE.to_string());
    let tz = db
        .get(&timezone)
        .map_err(|e| r.problem("timezone", e.to_string()))
        .ok();
    let source_timezone = d
        .source_timezone
        .clone()
        .unwrap_or_else(|| timezone.clone());
    let source_tz = if source_timezone == timezone {
        tz.clone()
    } else {
        db.get(&source_timezone)
            .map_err(|e| r.problem("source_timezone", e.to_string()))
            .ok()
    };
    Some(Zones {
        tzdir,
        tz: tz?,
        timezone,
        source_tz: source_tz?,
        source_timezone,
    })
}

struct Zones {
    tzdir: Option<PathBuf>,
    timezone: String,
    tz: TimeZone,
    source_timezone: String,
    source_tz: TimeZone,
}

/// The credentials, from the environment only; their values never go into a message.
fn credentials(env: &dyn Fn(&str) -> Option<String>, r: &mut Report) -> Option<(String, Secret)> {
    let username = non_blank(env(ENV_USERNAME));
    if username.is_none() {
        r.problem(
            Location::Env(ENV_USERNAME.into()),
            "not set (the Calpendo user name)",
        );
    }
    if username.as_deref().is_some_and(|u| u.contains(':')) {
        r.problem(
            Location::Env(ENV_USERNAME.into()),
            "the user name must not contain ':' (HTTP basic auth cannot carry it)",
        );
    }
    let password = env(ENV_PASSWORD).filter(|s| !s.is_empty());
    if password.is_none() {
        r.problem(
            Location::Env(ENV_PASSWORD.into()),
            "not set (the Calpendo password)",
        );
    }
    Some((username?, Secret(password?)))
}

/// Applies the rules that involve several keys and builds the settings.
fn finish(
    d: Draft,
    env: &dyn Fn(&str) -> Option<String>,
    site: &SiteContext,
    r: &mut Report,
) -> Option<CalpendoConfig> {
    let base_url = if d.base_url_given {
        d.base_url.clone()
    } else {
        match non_blank(env(ENV_API_URL)) {
            Some(u) => check_base_url(&u, "base_url", " (from CALPENDO_API_URL)", r),
            None => {
                r.problem(
                    "base_url",
                    format!("required (the Calpendo server's URL); or set {ENV_API_URL}"),
                );
                None
            }
        }
    };
    let zones = zones(&d, site, r);
    let window_mode = window::combine_window(&d.window, r);
    let credentials = credentials(env, r);
    let zones = zones?;
    let (username, password) = credentials?;
    Some(CalpendoConfig {
        base_url: base_url?,
        api_path: d.api_path,
        resources: d.resources,
        status_filter: d.status_filter,
        timezone: zones.timezone,
        tz: zones.tz,
        source_timezone: zones.source_timezone,
        source_tz: zones.source_tz,
        tzdir: zones.tzdir,
        resource_modality_mapping: d.resource_modality_mapping,
        station_aet_mapping: d.station_aet_mapping,
        field_mapping: d.field_mapping,
        window_mode,
        lookback_multiplier: d.lookback_multiplier,
        sync_interval: d.sync_interval,
        sync_deadline: d.sync_deadline,
        request_timeout: d.request_timeout,
        max_workers: d.max_workers,
        detail_refresh: d.detail_refresh,
        on_cancel: d.on_cancel,
        username,
        password,
        warnings: Vec::new(),
    })
}

#[cfg(test)]
mod tests;
