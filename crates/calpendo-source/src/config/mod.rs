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
//! Pylantir's rolling mode fetched from `now - sync_interval × lookback_multiplier` to
//! `now + 24 h`. We fetch whole local days (the window of `window_mode`), which covers
//! Pylantir's lookback only while it stays within today's window: so in `rolling` mode the
//! window's start moves back to the local day (00:00) of `now - sync_interval ×
//! lookback_multiplier` whenever that is earlier (see [`crate::window::widen_to_lookback`]).
//! A Pylantir JSON config without the key has Pylantir's `2`; a TOML config without it has
//! no lookback. `today` mode ignores it, as Pylantir does.
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

use std::path::PathBuf;
use std::time::Duration;

use config_reader::{Location, Report, Table, kind};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::{Map, Value};
use worklist_store::{DEFAULT_TIMEZONE, OnCancel, SyncWindow, ZoneDb};

/// Defined beside the source contract, shared by every source.
pub use worklist_store::source::{Dialect, Secret, SiteContext};

pub use crate::fields::{Extract, ExtractOutput, FieldMapping, FieldRule, PrefixMap, Target};
pub use crate::window::{DailyWindow, WindowMode};
pub use config_reader::Problem;
pub use keys::{
    DEFAULT_API_PATH, DEFAULT_DETAIL_CACHE_BYTES, DEFAULT_DETAIL_REFRESH,
    DEFAULT_MAX_RESPONSE_BYTES, DETAIL_CACHE_ITEM_MAX_BYTES, ENV_API_URL, ENV_PASSWORD,
    ENV_USERNAME, KEYS, KNOWN_KEYS, Key, MAX_DETAIL_CACHE_BYTES, MAX_MAX_RESPONSE_BYTES,
    MAX_WORKERS_LIMIT, MIN_MAX_RESPONSE_BYTES, PYLANTIR_API_PATH, PYLANTIR_LOOKBACK_MULTIPLIER,
    default_api_path, docs_table, known_keys,
};

use keys::{Draft, ProtocolSetting, check_base_url, read_keys};

/// How a sync cycle reads the bookings (`fetch_mode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FetchMode {
    /// [`FetchMode::Bulk`], falling back to [`FetchMode::Details`] when the server answers
    /// the list without the asked paths.
    #[default]
    Auto,
    /// One list query carrying every field the mapping needs (`?paths=`), and one query
    /// for the window's MRI operators.
    Bulk,
    /// The list, then each booking's details and MRI operator.
    Details,
}

impl FetchMode {
    /// The setting's value.
    pub fn as_str(self) -> &'static str {
        match self {
            FetchMode::Auto => "auto",
            FetchMode::Bulk => "bulk",
            FetchMode::Details => "details",
        }
    }
}

impl std::str::FromStr for FetchMode {
    type Err = ();

    /// `auto`, `bulk` or `details`, in any case.
    fn from_str(s: &str) -> Result<FetchMode, ()> {
        [FetchMode::Auto, FetchMode::Bulk, FetchMode::Details]
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s))
            .ok_or(())
    }
}

/// One thing wrong with the settings (the config reader's [`Problem`]; the old name).
pub type ConfigProblem = Problem;

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
    /// Study descriptions to keep (trimmed); empty keeps every study.
    pub allowed_studies: Vec<String>,
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
    /// Resource-name prefix → protocol name.
    pub resource_protocol_mapping: PrefixMap,
    /// Project-name prefix → protocol name.
    pub project_protocol_mapping: PrefixMap,
    /// Entry field → booking field.
    pub field_mapping: FieldMapping,
    /// Which bookings a cycle covers.
    pub window_mode: WindowMode,
    /// Pylantir's lookback multiplier: in `rolling` mode the window starts no later than
    /// the local day of `now - sync_interval × lookback_multiplier`.
    pub lookback_multiplier: Option<f64>,
    /// Time between sync cycles.
    pub sync_interval: Duration,
    /// Time one whole sync cycle may take.
    pub sync_deadline: Duration,
    /// Time one HTTP request may take.
    pub request_timeout: Duration,
    /// Requests in flight at once.
    pub max_workers: usize,
    /// The most bytes one response body may have.
    pub max_response_bytes: u64,
    /// How long a booking's fetched details (and MRI operator) are reused while its list
    /// item stays the same; zero disables the detail cache (see [`crate::source`]).
    pub detail_refresh: Duration,
    /// How a cycle reads the bookings: one query with `paths`, per-booking details, or
    /// the first with the second as its fallback (see [`crate::source`]).
    pub fetch_mode: FetchMode,
    /// The most bytes the detail cache keeps (see [`crate::source`]).
    pub detail_cache_bytes: u64,
    /// What a sync does with cancelled and vanished bookings.
    pub on_cancel: OnCancel,
    /// Pylantir's site id, when given.
    pub site: Option<String>,
    /// The protocol name `protocol` gives for `site`: the Scheduled Procedure Step
    /// Description unless one is mapped (see [`crate::mapping`]).
    pub protocol: Option<String>,
    /// The protocol code's Coding Scheme Designator when the booking maps no valid one.
    pub protocol_coding_scheme: String,
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

    /// The window one sync cycle starting at `now` covers, in the site's local time: the
    /// window of `window_mode`, in `rolling` mode widened to the [lookback](Self::lookback).
    pub fn sync_window(&self, now: Timestamp) -> SyncWindow {
        let window = crate::window::sync_window(self.window_mode, &self.tz, now);
        match (self.window_mode, self.lookback()) {
            (WindowMode::Rolling { .. }, Some(lookback)) => {
                crate::window::widen_to_lookback(window, &self.tz, now, lookback)
            }
            _ => window,
        }
    }

    /// Pylantir's lookback, `sync_interval × lookback_multiplier`, when a multiplier is set
    /// (cut to [`crate::window::MAX_LOOKBACK`]).
    pub fn lookback(&self) -> Option<Duration> {
        let m = self.lookback_multiplier?;
        let max = crate::window::MAX_LOOKBACK;
        Some(
            Duration::try_from_secs_f64(self.sync_interval.as_secs_f64() * m)
                .map_or(max, |d| d.min(max)),
        )
    }

    /// Whether a resource name starts with one of the configured prefixes.
    pub fn resource_selected(&self, resource_name: &str) -> bool {
        self.resources
            .iter()
            .any(|p| resource_name.starts_with(p.as_str()))
    }

    /// Whether a booking's study description passes `allowed_studies`: always without the
    /// key; else only a description that, blanks trimmed, equals one listed exactly
    /// (Pylantir's comparison). A booking without a description passes no list.
    pub fn study_allowed(&self, description: Option<&str>) -> bool {
        self.allowed_studies.is_empty()
            || description.is_some_and(|d| self.allowed_studies.iter().any(|a| a == d.trim()))
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
/// have no `base_url`); the zone and zone rules default to the `site`'s, and keys left
/// out take the defaults of the `site`'s [`Dialect`]. Returns every
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
    let draft = read_keys(&mut t, site.dialect, &mut r);
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
    Some((username?, Secret::new(password?)))
}

/// The protocol name for the site: the one name, or the `site`'s entry of the table (a
/// warning when there is none: Pylantir would send `DEFAULT_PROTOCOL` there).
fn resolve_protocol(
    protocol: Option<&ProtocolSetting>,
    site: Option<&str>,
    r: &mut Report,
) -> Option<String> {
    match protocol? {
        ProtocolSetting::Name(name) => Some(name.clone()),
        ProtocolSetting::BySite(by_site) => {
            let found = site.and_then(|s| by_site.iter().find(|(k, _)| k == s));
            if found.is_none() {
                let which = match site {
                    Some(s) => format!("has no entry for site {s:?}"),
                    None => "is a table of site ids, but no site is given".to_string(),
                };
                r.warn(
                    "protocol",
                    format!("{which}: the step description keeps its default"),
                );
            }
            found.map(|(_, name)| name.clone())
        }
    }
}

/// Warns about `resources` prefixes that no `station_aet_mapping` entry covers (unless a
/// booking field is mapped to the station AE title): their steps carry no Scheduled
/// Station AE Title, so a console that queries with its own AE title as the station sees
/// none of them.
fn warn_uncovered_stations(d: &Draft, r: &mut Report) {
    if d.field_mapping.get(Target::StationAeTitle).is_some() {
        return;
    }
    let keys = d.station_aet_mapping.entries();
    let uncovered: Vec<String> = d
        .resources
        .iter()
        .filter(|p| {
            !keys
                .iter()
                .any(|(k, _)| k.starts_with(p.as_str()) || p.starts_with(k.as_str()))
        })
        .map(|p| format!("{p:?}"))
        .collect();
    if uncovered.is_empty() {
        return;
    }
    r.warn(
        "station_aet_mapping",
        format!(
            "no entry for the resources {}: their steps carry no Scheduled Station AE \
             Title, so a console that asks for its own AE title as the station sees none \
             of them",
            uncovered.join(", ")
        ),
    );
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
    warn_uncovered_stations(&d, r);
    let zones = zones(&d, site, r);
    let window_mode = window::combine_window(&d.window, r);
    let protocol = resolve_protocol(d.protocol.as_ref(), d.site.as_deref(), r);
    let credentials = credentials(env, r);
    let zones = zones?;
    let (username, password) = credentials?;
    Some(CalpendoConfig {
        base_url: base_url?,
        api_path: d.api_path,
        resources: d.resources,
        status_filter: d.status_filter,
        allowed_studies: d.allowed_studies,
        timezone: zones.timezone,
        tz: zones.tz,
        source_timezone: zones.source_timezone,
        source_tz: zones.source_tz,
        tzdir: zones.tzdir,
        resource_modality_mapping: d.resource_modality_mapping,
        resource_protocol_mapping: d.resource_protocol_mapping,
        project_protocol_mapping: d.project_protocol_mapping,
        station_aet_mapping: d.station_aet_mapping,
        field_mapping: d.field_mapping,
        window_mode,
        lookback_multiplier: d.lookback_multiplier,
        sync_interval: d.sync_interval,
        sync_deadline: d.sync_deadline,
        request_timeout: d.request_timeout,
        max_workers: d.max_workers,
        max_response_bytes: d.max_response_bytes,
        detail_refresh: d.detail_refresh,
        fetch_mode: d.fetch_mode,
        detail_cache_bytes: d.detail_cache_bytes,
        on_cancel: d.on_cancel,
        site: d.site,
        protocol,
        protocol_coding_scheme: d.protocol_coding_scheme,
        username,
        password,
        warnings: Vec::new(),
    })
}

#[cfg(test)]
mod tests;
