//! A REDCap source's settings: [`parse_settings`] checks them and returns a
//! [`RedcapConfig`] or every problem at once.
//!
//! The binary hands over Pylantir's `config` object merged with the entry-level
//! `field_mapping`, `sync_interval` and `on_cancel` (in TOML the same keys, flat).
//!
//! - [`keys`]: one definition per key (name, default, doc, read): the known keys and the
//!   docs table come from it.
//! - [`field_mapping`]: `{redcap_field: worklist_column}` and its [`Target`]s.
//! - this module: the rules that involve several keys (site and protocol, zone, URL and
//!   token) and the result.
//!
//! Credentials: the API URL from `api_url` when set, else `REDCAP_API_URL`; the token
//! from the file `api_token_file` when set, else `REDCAP_API_TOKEN` (`..._CONCUSSION` for
//! [`RedcapKind::Concussion`]). The token never appears in a message or `Debug` output.

pub mod field_mapping;
pub mod keys;

use std::path::PathBuf;
use std::time::Duration;

use config_reader::{Location, Report, Table, kind};
use jiff::tz::TimeZone;
use serde_json::{Map, Value};
use worklist_store::validate::coding_scheme_problem;
use worklist_store::{DEFAULT_PROTOCOL_CODING_SCHEME, DEFAULT_TIMEZONE, OnCancel, ZoneDb};

pub use config_reader::Problem;
pub use field_mapping::{FieldMapping, Target};
pub use keys::{
    DEFAULT_MAX_RESPONSE_BYTES, KEYS, Key, MAX_MAX_RESPONSE_BYTES, MIN_MAX_RESPONSE_BYTES,
    docs_table, known_keys,
};
pub use worklist_store::source::{Secret, SiteContext};

use crate::template::Template;
use keys::{Draft, default_templates, read_keys};

/// Which REDCap project a source reads: Pylantir's `redcap` or `redcap_concussion` type;
/// they differ only in the environment variables of their credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedcapKind {
    /// Type `redcap`: `REDCAP_API_URL`, `REDCAP_API_TOKEN`.
    Redcap,
    /// Type `redcap_concussion`: `REDCAP_API_URL_CONCUSSION`, `REDCAP_API_TOKEN_CONCUSSION`.
    Concussion,
}

impl RedcapKind {
    /// The environment variable of the API URL.
    pub fn url_env(self) -> &'static str {
        match self {
            RedcapKind::Redcap => "REDCAP_API_URL",
            RedcapKind::Concussion => "REDCAP_API_URL_CONCUSSION",
        }
    }

    /// The environment variable of the API token.
    pub fn token_env(self) -> &'static str {
        match self {
            RedcapKind::Redcap => "REDCAP_API_TOKEN",
            RedcapKind::Concussion => "REDCAP_API_TOKEN_CONCUSSION",
        }
    }
}

/// A REDCap source's checked settings.
#[derive(Debug, Clone)]
pub struct RedcapConfig {
    /// Which project kind (credential variables).
    pub kind: RedcapKind,
    /// The site, as written into patient IDs.
    pub site: String,
    /// The protocol name of the site, when configured.
    pub protocol: Option<String>,
    /// The protocol code's Coding Scheme Designator when the visit maps none.
    pub protocol_coding_scheme: String,
    /// Whole days after today that a cycle covers.
    pub mwl_days_ahead: u32,
    /// REDCap field → worklist column.
    pub field_mapping: FieldMapping,
    /// The default Modality.
    pub modality: String,
    /// The repeating instrument of the visits.
    pub instrument: String,
    /// The visit date field.
    pub date_field: String,
    /// The visit time field.
    pub time_field: String,
    /// The visit instance (session) field.
    pub instance_field: String,
    /// The Patient ID template.
    pub patient_id_template: Template,
    /// The Patient's Name template.
    pub patient_name_template: Template,
    /// The API URL requests are POSTed to.
    pub api_url: String,
    /// The API token (redacted in `Debug`).
    pub token: Secret,
    /// The site's (and REDCap server's) zone name.
    pub timezone: String,
    /// That zone.
    pub tz: TimeZone,
    /// The zoneinfo directory, when not the bundled rules.
    pub tzdir: Option<PathBuf>,
    /// Time between sync cycles.
    pub sync_interval: Duration,
    /// Time between complete exports.
    pub full_refresh: Duration,
    /// How far an incremental export reaches back before the last committed cycle.
    pub modified_margin: Duration,
    /// Time one whole cycle may take.
    pub sync_deadline: Duration,
    /// Time one HTTP request may take.
    pub request_timeout: Duration,
    /// Retries of a transiently failed request.
    pub max_retries: u32,
    /// The most bytes one answer's body may have.
    pub max_response_bytes: u64,
    /// What a sync does with cancelled and vanished visits.
    pub on_cancel: OnCancel,
    /// Non-fatal notes, for `check-config` and the start-up log.
    pub warnings: Vec<Problem>,
}

/// Checks a REDCap source's settings and reads its credentials through `env`; the zone
/// defaults to the `site`'s. Returns every problem found; key paths are relative to the
/// settings.
pub fn parse_settings(
    settings: &Value,
    kind: RedcapKind,
    env: &dyn Fn(&str) -> Option<String>,
    site: &SiteContext,
) -> Result<RedcapConfig, Vec<Problem>> {
    let mut r = Report::new();
    let empty = Map::new();
    let obj = match settings {
        Value::Object(o) => o,
        other => {
            r.problem(
                "",
                format!(
                    "the REDCap source's settings must be a table/object, not {}",
                    self::kind(other)
                ),
            );
            &empty
        }
    };
    let mut t = Table::new(obj, "");
    let draft = read_keys(&mut t, &mut r);
    let config = finish(draft, kind, env, site, &mut r);
    let (mut config, warnings) = r.finish(config)?;
    config.warnings = warnings;
    Ok(config)
}

/// The site: `site`, else `site_id`; both given must agree.
fn resolve_site(d: &Draft, r: &mut Report) -> Option<String> {
    match (&d.site, &d.site_id) {
        (Some(a), Some(b)) if a != b => {
            r.problem(
                "site_id",
                format!("{b:?} differs from site {a:?}; give one of them"),
            );
            None
        }
        (Some(s), _) | (None, Some(s)) => Some(s.clone()),
        (None, None) => {
            r.problem("site", "required: the site name or number (e.g. \"792\")");
            None
        }
    }
}

/// The key of a `protocol` table that is no site but the coding scheme designator
/// (Pylantir's `"mapping": "GEHC"`, its "HIS/RIS mapping").
const PROTOCOL_MAPPING_KEY: &str = "mapping";

/// The protocol code's Coding Scheme Designator: `protocol_coding_scheme`, else the
/// `protocol` table's `mapping` (a warning and the default when it is no designator),
/// else [`DEFAULT_PROTOCOL_CODING_SCHEME`].
fn resolve_coding_scheme(d: &Draft, r: &mut Report) -> String {
    if let Some(s) = &d.protocol_coding_scheme {
        return s.clone();
    }
    let mapping = d
        .protocol
        .as_ref()
        .and_then(|p| p.get(PROTOCOL_MAPPING_KEY))
        .and_then(Value::as_str)
        .map(str::trim);
    match mapping {
        Some(m) => match coding_scheme_problem(m) {
            None => m.to_string(),
            Some(e) => {
                r.warn(
                    format!("protocol.{PROTOCOL_MAPPING_KEY}"),
                    format!("not used as the protocol's coding scheme: {e}"),
                );
                DEFAULT_PROTOCOL_CODING_SCHEME.to_string()
            }
        },
        None => DEFAULT_PROTOCOL_CODING_SCHEME.to_string(),
    }
}

/// The protocol of `site`: a name, or the site's entry of a table (a warning when the
/// table has none: visits then have no protocol).
fn resolve_protocol(
    protocol: Option<&Value>,
    site: Option<&str>,
    r: &mut Report,
) -> Option<String> {
    match protocol? {
        Value::String(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
        Value::Object(table) => {
            for (k, v) in table {
                if !v.is_string() {
                    r.problem(
                        format!("protocol.{k}"),
                        format!("expected a protocol name, found {}", kind(v)),
                    );
                }
            }
            let site = site.filter(|s| *s != PROTOCOL_MAPPING_KEY)?;
            match table.get(site) {
                Some(Value::String(s)) => Some(s.trim().to_string()),
                Some(_) => None,
                None => {
                    r.warn(
                        "protocol",
                        format!("has no entry for site {site:?}: visits get no protocol"),
                    );
                    None
                }
            }
        }
        _ => None,
    }
}

/// The API URL: `api_url`, else the environment; a plain http(s) URL without credentials.
fn api_url(
    d: &Draft,
    kind: RedcapKind,
    env: &dyn Fn(&str) -> Option<String>,
    r: &mut Report,
) -> Option<String> {
    let (raw, at) = match &d.api_url {
        Some(u) => (u.clone(), Location::Key("api_url".into())),
        None => match env(kind.url_env())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
        {
            Some(u) => (u, Location::Env(kind.url_env().into())),
            None => {
                r.problem(
                    Location::Env(kind.url_env().into()),
                    "not set (the REDCap API URL, e.g. https://redcap.example.org/api/); or set api_url",
                );
                return None;
            }
        },
    };
    let url = match reqwest::Url::parse(&raw) {
        Ok(u) => u,
        Err(e) => {
            r.problem(at, format!("not a URL: {e}"));
            return None;
        }
    };
    let problem = if !matches!(url.scheme(), "http" | "https") {
        Some("must be an http:// or https:// URL")
    } else if url.host_str().is_none_or(str::is_empty) {
        Some("has no host")
    } else if !url.username().is_empty() || url.password().is_some() {
        Some("must not hold credentials")
    } else if url.query().is_some() || url.fragment().is_some() {
        Some("must not have a query or fragment")
    } else {
        None
    };
    match problem {
        Some(p) => {
            r.problem(at, p);
            None
        }
        None => Some(raw),
    }
}

/// The token: the file `api_token_file`, else the environment. Never echoed.
fn token(
    d: &Draft,
    kind: RedcapKind,
    env: &dyn Fn(&str) -> Option<String>,
    r: &mut Report,
) -> Option<Secret> {
    let token = match &d.api_token_file {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(s) => {
                let s = s.trim().to_string();
                if s.is_empty() {
                    r.problem("api_token_file", format!("{} is empty", path.display()));
                }
                s
            }
            Err(e) => {
                r.problem(
                    "api_token_file",
                    format!("cannot read {}: {e}", path.display()),
                );
                return None;
            }
        },
        None => match env(kind.token_env())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
        {
            Some(t) => t,
            None => {
                r.problem(
                    Location::Env(kind.token_env().into()),
                    "not set (the REDCap API token); or set api_token_file",
                );
                return None;
            }
        },
    };
    (!token.is_empty()).then(|| Secret::new(token))
}

/// The zone rules and the zone, each problem at its key.
fn zone(
    d: &Draft,
    site: &SiteContext,
    r: &mut Report,
) -> Option<(String, TimeZone, Option<PathBuf>)> {
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
    let name = d
        .timezone
        .clone()
        .or_else(|| site.timezone.clone())
        .unwrap_or_else(|| DEFAULT_TIMEZONE.to_string());
    if let (Some(own), Some(site_zone)) = (&d.timezone, &site.timezone)
        && own != site_zone
    {
        r.problem(
            "timezone",
            format!("{own:?} differs from the site's zone {site_zone:?}"),
        );
    }
    let tz = db
        .get(&name)
        .map_err(|e| r.problem("timezone", e.to_string()))
        .ok()?;
    Some((name, tz, tzdir))
}

/// Applies the rules that involve several keys and builds the settings.
fn finish(
    d: Draft,
    kind: RedcapKind,
    env: &dyn Fn(&str) -> Option<String>,
    site_ctx: &SiteContext,
    r: &mut Report,
) -> Option<RedcapConfig> {
    let site = resolve_site(&d, r);
    let protocol = resolve_protocol(d.protocol.as_ref(), site.as_deref(), r);
    let protocol_coding_scheme = resolve_coding_scheme(&d, r);
    let api_url = api_url(&d, kind, env, r);
    let token = token(&d, kind, env, r);
    let zone = zone(&d, site_ctx, r);
    let (default_id, default_name) = default_templates();
    let patient_id_template = d.patient_id_template.unwrap_or(default_id);
    if patient_id_template.fields().next().is_none() {
        r.problem(
            "patient_id_template",
            "must name at least one REDCap field, e.g. {study_id}",
        );
    }
    let (timezone, tz, tzdir) = zone?;
    Some(RedcapConfig {
        kind,
        site: site?,
        protocol,
        protocol_coding_scheme,
        mwl_days_ahead: d.mwl_days_ahead,
        field_mapping: d.field_mapping,
        modality: d.modality,
        instrument: d.instrument,
        date_field: d.date_field,
        time_field: d.time_field,
        instance_field: d.instance_field,
        patient_id_template,
        patient_name_template: d.patient_name_template.unwrap_or(default_name),
        api_url: api_url?,
        token: token?,
        timezone,
        tz,
        tzdir,
        sync_interval: d.sync_interval,
        full_refresh: d.full_refresh,
        modified_margin: d.modified_margin,
        sync_deadline: d.sync_deadline,
        request_timeout: d.request_timeout,
        max_retries: d.max_retries,
        max_response_bytes: d.max_response_bytes,
        on_cancel: d.on_cancel,
        warnings: Vec::new(),
    })
}

#[cfg(test)]
mod tests;
