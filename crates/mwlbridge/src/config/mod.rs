//! The validated configuration, read from mwlbridge's TOML or from a Pylantir JSON file.
//!
//! Both formats become one [`Config`]. Every problem in a file is reported at once, each
//! with its key path; source-specific keys are checked by the source's own crate.
//!
//! - this file: the [`Config`] types, [`Config::load`], the TOML form and the checks both
//!   forms share (source names, unnamed sources);
//! - `sections`: mwlbridge's own sections (`server`, `store`, `site`, `admin`), read alike
//!   from a TOML table or a Pylantir JSON object;
//! - `pylantir`: Pylantir's JSON form, its keys mapped to the same [`Config`].

mod pylantir;
mod sections;
#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::civil::Time;
use mwl_scp::ResponseCharset;
use mwl_scp::mpps::MppsPolicy;
use serde_json::{Map, Value};

use crate::config_reader::{Problem, Report, Table};
use sections::{Sections, sections};
use worklist_store::validate::ae_problem;

/// Default DICOM port for `serve`.
pub const DEFAULT_PORT: u16 = 11112;
/// Default AE title.
pub const DEFAULT_AE_TITLE: &str = "MWLBRIDGE";
/// Default database file.
pub const DEFAULT_DB_PATH: &str = "/var/lib/mwlbridge/worklist.db";

/// Pylantir's database when its JSON sets no `db_path` (so a site that never set one
/// keeps its data).
pub const PYLANTIR_DEFAULT_DB_PATH: &str = "~/Desktop/worklist.db";

/// Days an entry is kept after its step ends (`store.retention_days`).
pub const DEFAULT_RETENTION_DAYS: u32 = 30;

/// The share of a source's entries one sync may remove (`store.max_discontinue_fraction`).
pub const DEFAULT_MAX_DISCONTINUE_FRACTION: f64 = 0.5;

/// The whole configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file it was read from.
    pub file: PathBuf,
    /// Which format the file was in.
    pub format: ConfigFormat,
    /// The DICOM server.
    pub server: ServerConfig,
    /// The SQLite store.
    pub store: StoreConfig,
    /// The site's time zone.
    pub site: SiteConfig,
    /// The admin HTTP interface.
    pub admin: AdminConfig,
    /// Data sources, in file order.
    pub sources: Vec<SourceConfig>,
    /// Keys accepted but not used (Pylantir keys with no meaning here).
    pub ignored_keys: Vec<String>,
    /// What the admin should know that does not stop the config from being used.
    pub warnings: Vec<Problem>,
}

/// The format of a config file, chosen by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigFormat {
    /// mwlbridge's own TOML (`.toml`).
    Toml,
    /// Pylantir's JSON (`.json`), accepted as is.
    PylantirJson,
}

/// DICOM server settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// Our AE title (called AE title consoles must use).
    pub ae_title: String,
    /// Address to listen on.
    pub bind: IpAddr,
    /// TCP port.
    pub port: u16,
    /// Accept any called AE title instead of only ours.
    pub accept_any_called_ae: bool,
    /// Calling AE titles allowed to connect; empty allows all.
    pub allowed_calling_aets: Vec<String>,
    /// Concurrent associations at most; more are rejected.
    pub max_associations: u32,
    /// Concurrent associations from one network address at most.
    pub max_associations_per_peer: u32,
    /// Concurrent associations under one calling AE title at most.
    pub max_associations_per_ae: u32,
    /// A silent peer is dropped after this long.
    pub idle_timeout: Duration,
    /// Largest PDU we accept.
    pub max_pdu_length: u32,
    /// Specific Character Set of responses (`ISO_IR 192` = UTF-8, `ISO_IR 100` = Latin-1).
    pub character_set: String,
    /// Largest query identifier accepted, in bytes; a larger one aborts its association.
    pub max_identifier_bytes: u32,
    /// At most this many items per query (0: no limit); more end with status FE00.
    pub max_responses: u32,
    /// A query without a Scheduled Station AE Title condition gets only the steps of the
    /// calling console's own AE title.
    pub station_filter_by_calling_ae: bool,
    /// A performed procedure step is stored in at most this many bytes.
    pub mpps_max_stored_bytes: u32,
    /// A performed procedure step takes at most this many N-SETs.
    pub mpps_max_sets: u32,
    /// Only the calling AE title that created a performed step may N-SET it.
    pub mpps_same_ae_only: bool,
    /// DICOM over TLS on the port, when configured.
    pub tls: Option<TlsFiles>,
}

/// `[server.tls]`: the files of DICOM over TLS.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsFiles {
    /// The server's certificate chain (PEM, leaf first).
    pub certificate: PathBuf,
    /// Its private key (PEM).
    pub private_key: PathBuf,
    /// When set, consoles must present a certificate issued by one of these (PEM).
    pub client_ca: Option<PathBuf>,
}

/// Default port of the admin HTTP interface.
pub const DEFAULT_ADMIN_PORT: u16 = 8080;

/// `[admin]`: the admin HTTP interface (status page, REST API, health and metrics).
#[derive(Debug, Clone, PartialEq)]
pub struct AdminConfig {
    /// Whether `serve` runs it.
    pub enabled: bool,
    /// Address to listen on; loopback by default, so it is not exposed until the admin
    /// chooses.
    pub bind: IpAddr,
    /// TCP port.
    pub port: u16,
    /// HTTPS, when configured (certificate and private key, PEM).
    pub tls: Option<TlsFiles>,
    /// `/readyz` answers 503 once a source has had no successful sync for this many of
    /// its intervals.
    pub unready_after_intervals: u32,
    /// How long a status-page login lasts.
    pub session_lifetime: Duration,
    /// `[admin.dicomweb]`: the DICOMweb worklist search.
    pub dicomweb: DicomwebConfig,
    /// Whether the config has an `[admin]` section. Only then does a port that cannot be
    /// bound stop `serve`: an admin interface nobody asked for never takes the DICOM
    /// service down.
    pub explicit: bool,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            enabled: true,
            bind: IpAddr::from([127, 0, 0, 1]),
            port: DEFAULT_ADMIN_PORT,
            tls: None,
            unready_after_intervals: 3,
            session_lifetime: Duration::from_secs(12 * 3600),
            dicomweb: DicomwebConfig::default(),
            explicit: false,
        }
    }
}

/// `[admin.dicomweb]`: DICOMweb on the admin interface (the worklist search of PS3.18
/// chapter 14), behind the admin interface's tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DicomwebConfig {
    /// Whether it is served.
    pub enabled: bool,
    /// The path it is served under: `/` and path segments of RFC 3986 unreserved
    /// characters, no trailing `/` (`/dicomweb`).
    pub base: String,
}

impl Default for DicomwebConfig {
    fn default() -> Self {
        DicomwebConfig {
            enabled: true,
            base: "/dicomweb".into(),
        }
    }
}

/// Store settings.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreConfig {
    /// The SQLite file.
    pub path: PathBuf,
    /// Entries whose step ended more than this many days ago are purged.
    pub retention_days: u32,
    /// The largest share of a source's active entries in its window one sync may
    /// discontinue or delete (`1`: no limit); a sync that would remove more is refused.
    pub max_discontinue_fraction: f64,
}

impl StoreConfig {
    /// The defaults: [`DEFAULT_DB_PATH`], [`DEFAULT_RETENTION_DAYS`],
    /// [`DEFAULT_MAX_DISCONTINUE_FRACTION`].
    fn default_at_default_path() -> StoreConfig {
        StoreConfig {
            path: PathBuf::from(DEFAULT_DB_PATH),
            retention_days: DEFAULT_RETENTION_DAYS,
            max_discontinue_fraction: DEFAULT_MAX_DISCONTINUE_FRACTION,
        }
    }

    /// The guard every sync's reconcile runs with.
    pub fn mass_change_guard(&self) -> worklist_store::MassChangeGuard {
        if self.max_discontinue_fraction >= 1.0 {
            worklist_store::MassChangeGuard::Off
        } else {
            worklist_store::MassChangeGuard::MaxFraction(self.max_discontinue_fraction)
        }
    }
}

/// Site-wide time settings.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteConfig {
    /// IANA zone of DICOM dates and times (the scanners' wall clock).
    pub timezone: String,
    /// A zoneinfo directory to use instead of the bundled tzdata.
    pub tzdir: Option<PathBuf>,
}

impl Default for SiteConfig {
    fn default() -> Self {
        SiteConfig {
            timezone: worklist_store::DEFAULT_TIMEZONE.into(),
            tzdir: None,
        }
    }
}

/// One data source, with the settings only its own crate understands.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceConfig {
    /// Unique name; entries carry it. An unnamed source is called after its type, with
    /// `-2`, `-3`, ... when that is taken (`calpendo`, `calpendo-2`).
    pub name: String,
    /// Whether the config named it (a named source's name is never changed).
    pub named: bool,
    /// What kind of system it is.
    pub kind: SourceKind,
    /// Disabled sources are validated but never synced.
    pub enabled: bool,
    /// Where the source is in the file, e.g. `sources[0]`, for messages.
    pub key: String,
    /// Local hours during which it syncs (Pylantir's `operation_interval`); `None`: always.
    pub operation_interval: Option<(Time, Time)>,
    /// The source's own settings, for its crate to validate.
    pub settings: Map<String, Value>,
    /// Settings that the file holds under another key (Pylantir's legacy form):
    /// `(setting, key in the file)`, so problems name the key the admin wrote.
    pub written_as: &'static [(&'static str, &'static str)],
}

/// Kinds of data source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// Calpendo booking system.
    Calpendo,
    /// A REDCap project (Pylantir's `redcap`).
    Redcap,
    /// A REDCap project read with the `_CONCUSSION` credentials (Pylantir's
    /// `redcap_concussion`).
    RedcapConcussion,
}

impl SourceKind {
    /// Every kind, as its `type` is written.
    pub const ALL: [SourceKind; 3] = [
        SourceKind::Calpendo,
        SourceKind::Redcap,
        SourceKind::RedcapConcussion,
    ];

    /// The `type` that names it in a config.
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Calpendo => "calpendo",
            SourceKind::Redcap => "redcap",
            SourceKind::RedcapConcussion => "redcap_concussion",
        }
    }
}

/// A config file that cannot be used, with everything wrong in it.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    /// The file.
    pub file: PathBuf,
    /// Every problem found.
    pub problems: Vec<Problem>,
    /// What could be read despite the problems, so that later checks (the sources' own
    /// settings) still run and their problems are reported in the same run.
    pub partial: Option<Box<Config>>,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "{} has {n} problem{}:",
            self.file.display(),
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(f, "\n  {}: {p}", self.file.display())?;
        }
        Ok(())
    }
}

impl ConfigError {
    /// A problem with the file as a whole (unreadable, not TOML/JSON).
    pub fn whole_file(file: &Path, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: file.to_path_buf(),
            problems: vec![Problem::new("", message)],
            partial: None,
        }
    }
}

impl Config {
    /// Reads and validates a config file; the format follows the extension (`.json` is
    /// Pylantir's format, anything else TOML).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let fail = |message: String| ConfigError::whole_file(path, message);
        let text = std::fs::read_to_string(path)
            .map_err(|e| fail(format!("cannot read the file: {e}")))?;
        let is_json = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        if is_json {
            Config::from_pylantir_json(&text, path)
        } else {
            Config::from_toml(&text, path)
        }
    }

    /// Parses mwlbridge's TOML format.
    pub fn from_toml(text: &str, file: &Path) -> Result<Config, ConfigError> {
        let doc: Value = toml::from_str::<toml::Table>(text)
            .map_err(|e| {
                ConfigError::whole_file(file, format!("not valid TOML: {}", e.to_string().trim()))
            })
            .and_then(|t| {
                serde_json::to_value(t)
                    .map_err(|e| ConfigError::whole_file(file, format!("unsupported value: {e}")))
            })?;
        let mut problems = Report::new();
        let empty = Map::new();
        let mut root = Table::new(doc.as_object().unwrap_or(&empty), "");

        let Sections {
            server,
            store,
            site,
            admin,
        } = sections(&mut root, &mut problems);
        let store = store.unwrap_or_else(StoreConfig::default_at_default_path);
        let site = site.unwrap_or_default();
        let mut sources = Vec::new();
        if let Some(v) = root.raw("sources") {
            match v {
                Value::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let key = format!("sources[{i}]");
                        match item {
                            Value::Object(map) => {
                                if let Some(s) = source_from_toml(map, key, &mut problems) {
                                    sources.push(s);
                                }
                            }
                            _ => problems.problem(key, "expected a table ([[sources]])"),
                        }
                    }
                }
                _ => problems.problem("sources", "expected a list of tables ([[sources]])"),
            }
        }
        root.reject_unknown(&mut problems);
        finish(
            Config {
                file: file.to_path_buf(),
                format: ConfigFormat::Toml,
                server,
                store,
                site,
                admin,
                sources,
                ignored_keys: Vec::new(),
                warnings: Vec::new(),
            },
            problems,
        )
    }
}

fn finish_err(file: &Path, problems: Report) -> Result<Config, ConfigError> {
    Err(ConfigError {
        file: file.to_path_buf(),
        problems: problems.into_parts().0,
        partial: None,
    })
}

/// Gives each unnamed source a name no other source has: its type's name, then `-2`,
/// `-3`, ... (named sources keep theirs; two of them with one name stay a problem).
fn name_unnamed(sources: &mut [SourceConfig]) {
    let mut taken: Vec<String> = sources
        .iter()
        .filter(|s| s.named)
        .map(|s| s.name.clone())
        .collect();
    for s in sources.iter_mut().filter(|s| !s.named) {
        let base = s.name.clone();
        let mut n = 1;
        while taken.contains(&s.name) {
            n += 1;
            s.name = format!("{base}-{n}");
        }
        taken.push(s.name.clone());
    }
}

fn finish(mut config: Config, mut problems: Report) -> Result<Config, ConfigError> {
    name_unnamed(&mut config.sources);
    let mut names: Vec<(&str, &str)> = Vec::new();
    for s in &config.sources {
        if let Some((_, first)) = names.iter().find(|(n, _)| *n == s.name) {
            problems.problem(
                format!("{}.name", s.key),
                format!("source name {:?} is already used by {first}", s.name),
            );
        } else {
            names.push((&s.name, &s.key));
        }
        if s.name == worklist_store::MANUAL_SOURCE {
            problems.problem(
                format!("{}.name", s.key),
                format!(
                    "{:?} is reserved for the entries admins add by hand; choose another name",
                    s.name
                ),
            );
        }
    }
    if !config.sources.iter().any(|s| s.enabled) {
        problems.warn(
            if config.format == ConfigFormat::Toml {
                "sources"
            } else {
                "data_sources"
            },
            "no enabled data source: nothing will be synced, and consoles see only the \
             entries already stored or added by hand",
        );
    }
    if problems.is_ok() {
        let mut config = config;
        config.warnings = problems.into_parts().1;
        Ok(config)
    } else {
        Err(ConfigError {
            file: config.file.clone(),
            problems: problems.into_parts().0,
            partial: Some(Box::new(config)),
        })
    }
}

/// `~/x` → `$HOME/x` (Pylantir configs use it).
fn expand_home(p: &Path) -> PathBuf {
    match (p.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => p.to_path_buf(),
    }
}

fn kind_from(t: &mut Table<'_>, problems: &mut Report) -> Option<SourceKind> {
    let supported = SourceKind::ALL
        .map(|k| format!("{:?}", k.name()))
        .join(", ");
    let kind = t.string("type", problems);
    match kind.as_deref() {
        Some(name) => {
            let found = SourceKind::ALL.into_iter().find(|k| k.name() == name);
            if found.is_none() {
                problems.problem(
                    t.key("type"),
                    format!("source type {name:?} is not supported (supported: {supported})"),
                );
            }
            found
        }
        None => {
            problems.problem(t.key("type"), format!("missing; one of {supported}"));
            None
        }
    }
}

fn parse_hhmm(v: &Value) -> Option<Time> {
    match v {
        // Pylantir: [hour, minute]
        Value::Array(a) if a.len() == 2 => {
            let h = i8::try_from(a[0].as_i64()?).ok()?;
            let m = i8::try_from(a[1].as_i64()?).ok()?;
            Time::new(h, m, 0, 0).ok()
        }
        Value::String(s) => {
            let (h, m) = s.split_once(':')?;
            Time::new(h.parse().ok()?, m.parse().ok()?, 0, 0).ok()
        }
        _ => None,
    }
}

fn operation_interval(t: &mut Table<'_>, problems: &mut Report) -> Option<(Time, Time)> {
    let mut it = t.table("operation_interval", problems)?;
    let mut bound = |key: &'static str, problems: &mut Report| match it.raw(key) {
        None => None,
        Some(v) => {
            let parsed = parse_hhmm(v);
            if parsed.is_none() {
                problems.problem(it.key(key), "expected [hour, minute] or \"HH:MM\"");
            }
            parsed
        }
    };
    let start = bound("start_time", problems);
    let end = bound("end_time", problems);
    it.reject_unknown(problems);
    let (start, end) = (start?, end?);
    // Pylantir's default [0,0]-[23,59] means "always".
    if start == Time::midnight() && end >= Time::new(23, 59, 0, 0).unwrap_or(Time::MAX) {
        return None;
    }
    Some((start, end))
}

fn source_from_toml(
    map: &Map<String, Value>,
    key: String,
    problems: &mut Report,
) -> Option<SourceConfig> {
    let mut t = Table::new(map, key.clone());
    let name = t.string("name", problems);
    let kind = kind_from(&mut t, problems);
    let enabled = t.boolean("enabled", problems).unwrap_or(true);
    let op = operation_interval(&mut t, problems);
    let mut settings = Map::new();
    for k in t.unread() {
        if let Some(v) = map.get(&k) {
            settings.insert(k, v.clone());
        }
    }
    let kind = kind?;
    Some(SourceConfig {
        named: name.is_some(),
        name: name.unwrap_or_else(|| kind.name().into()),
        kind,
        enabled,
        key,
        operation_interval: op,
        settings,
        written_as: &[],
    })
}
