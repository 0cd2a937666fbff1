//! The validated configuration, read from mwlbridge's TOML or from a Pylantir JSON file.
//!
//! Both formats become one [`Config`]. Every problem in a file is reported at once, each
//! with its key path; source-specific keys are checked by the source's own crate.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::civil::Time;
use serde_json::{Map, Value};

use crate::config_reader::{Problem, Report, Table};
use worklist_store::validate::ae_problem;

/// Default DICOM port for `serve`.
pub const DEFAULT_PORT: u16 = 11112;
/// Default AE title.
pub const DEFAULT_AE_TITLE: &str = "MWLBRIDGE";
/// Default database file.
pub const DEFAULT_DB_PATH: &str = "/var/lib/mwlbridge/worklist.db";

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
}

/// Site-wide time settings.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteConfig {
    /// IANA zone of DICOM dates and times (the scanners' wall clock).
    pub timezone: String,
    /// A zoneinfo directory to use instead of the bundled tzdata.
    pub tzdir: Option<PathBuf>,
}

/// One data source, with the settings only its own crate understands.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceConfig {
    /// Unique name; entries carry it.
    pub name: String,
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
}

/// Kinds of data source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// Calpendo booking system.
    Calpendo,
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

        let server = match root.table("server", &mut problems) {
            Some(mut t) => {
                let s = server_from(&mut t, &mut problems);
                t.reject_unknown(&mut problems);
                s
            }
            None => server_from(&mut Table::new(&empty, "server"), &mut problems),
        };
        let store = match root.table("store", &mut problems) {
            Some(mut t) => {
                let path = t.string("path", &mut problems).map(PathBuf::from);
                let retention = t.integer("retention_days", 1, 36_500, &mut problems);
                t.reject_unknown(&mut problems);
                StoreConfig {
                    path: path
                        .map(|p| expand_home(&p))
                        .unwrap_or_else(|| PathBuf::from(DEFAULT_DB_PATH)),
                    retention_days: retention.unwrap_or(30) as u32,
                }
            }
            None => StoreConfig {
                path: PathBuf::from(DEFAULT_DB_PATH),
                retention_days: 30,
            },
        };
        let site = match root.table("site", &mut problems) {
            Some(mut t) => {
                let s = site_from(&mut t, &mut problems);
                t.reject_unknown(&mut problems);
                s
            }
            None => SiteConfig {
                timezone: worklist_store::DEFAULT_TIMEZONE.into(),
                tzdir: None,
            },
        };
        let admin = match root.table("admin", &mut problems) {
            Some(mut t) => {
                let a = admin_from(&mut t, &mut problems);
                t.reject_unknown(&mut problems);
                a
            }
            None => AdminConfig::default(),
        };
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
            },
            problems,
        )
    }

    /// Parses a Pylantir JSON config as is (`db_path`, `allowed_aet`, `data_sources`, ...).
    /// Pylantir keys that mean nothing here are listed in `ignored_keys`.
    pub fn from_pylantir_json(text: &str, file: &Path) -> Result<Config, ConfigError> {
        let doc: Value = serde_json::from_str(text)
            .map_err(|e| ConfigError::whole_file(file, format!("not valid JSON: {e}")))?;
        let mut problems = Report::new();
        let empty = Map::new();
        let Some(obj) = doc.as_object() else {
            return Err(ConfigError::whole_file(
                file,
                "expected a JSON object at the top",
            ));
        };
        let mut root = Table::new(obj, "");
        let db_path = root.string("db_path", &mut problems);
        let interval = root
            .integer("db_update_interval", 1, 86_400, &mut problems)
            .map(|n| n as u64);
        let allowed = root
            .strings("allowed_aet", &mut problems)
            .unwrap_or_default();
        for (i, ae) in allowed.iter().enumerate() {
            if let Some(p) = ae_problem(ae) {
                problems.problem(format!("allowed_aet[{i}]"), p);
            }
        }
        let global_interval = operation_interval(&mut root, &mut problems);
        let mut server = server_from(&mut Table::new(&empty, "server"), &mut problems);
        server.allowed_calling_aets = allowed;
        let mut sources = Vec::new();
        let mut ignored = Vec::new();
        if let Some(list) = root.raw("data_sources") {
            let Value::Array(items) = list else {
                problems.problem("data_sources", "expected a list");
                return finish_err(file, problems);
            };
            for (i, item) in items.iter().enumerate() {
                let key = format!("data_sources[{i}]");
                let Value::Object(map) = item else {
                    problems.problem(key, "expected an object");
                    continue;
                };
                if let Some(s) = source_from_pylantir(
                    map,
                    key,
                    interval,
                    global_interval,
                    &mut ignored,
                    &mut problems,
                ) {
                    sources.push(s);
                }
            }
        }
        ignored.extend(root.unread());
        ignored.sort();
        // Pylantir has no site section: the Calpendo source's zone is the site's.
        let timezone = sources
            .iter()
            .find_map(|s| s.settings.get("timezone").and_then(Value::as_str))
            .unwrap_or(worklist_store::DEFAULT_TIMEZONE)
            .to_string();
        finish(
            Config {
                file: file.to_path_buf(),
                format: ConfigFormat::PylantirJson,
                server,
                store: StoreConfig {
                    path: db_path
                        .map(|p| expand_home(Path::new(&p)))
                        .unwrap_or_else(|| PathBuf::from(DEFAULT_DB_PATH)),
                    retention_days: 30,
                },
                site: SiteConfig {
                    timezone,
                    tzdir: None,
                },
                admin: AdminConfig::default(),
                sources,
                ignored_keys: ignored,
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

fn finish(config: Config, mut problems: Report) -> Result<Config, ConfigError> {
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
    if problems.is_ok() {
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

/// An IP address at `key`, or a problem naming it.
fn ip_address(t: &mut Table<'_>, key: &'static str, problems: &mut Report) -> Option<IpAddr> {
    let text = t.string(key, problems)?;
    match text.parse::<IpAddr>() {
        Ok(ip) => Some(ip),
        Err(_) => {
            problems.problem(
                t.key(key),
                format!("{text:?} is not an IP address (e.g. 0.0.0.0 or 127.0.0.1)"),
            );
            None
        }
    }
}

/// The `tls` table of `t` (named `name` in messages), its files checked by loading them;
/// `client_ca` only where `with_client_ca`.
fn tls_files(
    t: &mut Table<'_>,
    name: &str,
    with_client_ca: bool,
    problems: &mut Report,
) -> Option<TlsFiles> {
    let mut tt = t.table("tls", problems)?;
    let certificate = tt.string("certificate", problems).map(PathBuf::from);
    let private_key = tt.string("private_key", problems).map(PathBuf::from);
    let client_ca = if with_client_ca {
        tt.string("client_ca", problems).map(PathBuf::from)
    } else {
        None
    };
    tt.reject_unknown(problems);
    let (Some(certificate), Some(private_key)) = (certificate, private_key) else {
        problems.problem(
            tt.key("certificate"),
            format!("{name} needs both certificate and private_key"),
        );
        return None;
    };
    if let Err(e) = mwl_scp::tls::server_config(&certificate, &private_key, client_ca.as_deref()) {
        problems.problem(t.key("tls"), e.to_string());
    }
    Some(TlsFiles {
        certificate,
        private_key,
        client_ca,
    })
}

fn server_from(t: &mut Table<'_>, problems: &mut Report) -> ServerConfig {
    let ae_title = t.string("ae_title", problems);
    if let Some(ae) = &ae_title
        && let Some(p) = ae_problem(ae)
    {
        problems.problem(t.key("ae_title"), p);
    }
    let bind = ip_address(t, "bind", problems);
    let port = t.integer("port", 1, 65_535, problems);
    let accept_any = t.boolean("accept_any_called_ae", problems);
    let allowed = t
        .strings("allowed_calling_aets", problems)
        .unwrap_or_default();
    for (i, ae) in allowed.iter().enumerate() {
        if let Some(p) = ae_problem(ae) {
            problems.problem(format!("{}[{i}]", t.key("allowed_calling_aets")), p);
        }
    }
    let max_assoc = t.integer("max_associations", 1, 10_000, problems);
    let idle = t.integer("idle_timeout", 1, 86_400, problems);
    let max_pdu = t.integer("max_pdu_length", 4_096, 16_777_216, problems);
    let max_identifier = t.integer("max_identifier_bytes", 1_024, 64 << 20, problems);
    let max_responses = t.integer("max_responses", 0, 10_000_000, problems);
    let station_filter = t.boolean("station_filter_by_calling_ae", problems);
    let tls = tls_files(t, "[server.tls]", true, problems);
    let charset = t.string("character_set", problems);
    if let Some(cs) = &charset
        && !matches!(cs.as_str(), "ISO_IR 192" | "ISO_IR 100" | "ISO_IR 6")
    {
        problems.problem(
            t.key("character_set"),
            format!(
                "{cs:?} is not supported; use \"ISO_IR 192\" (UTF-8), \"ISO_IR 100\" (Latin-1) \
                 or \"ISO_IR 6\" (ASCII)"
            ),
        );
    }
    ServerConfig {
        ae_title: ae_title.unwrap_or_else(|| DEFAULT_AE_TITLE.into()),
        bind: bind.unwrap_or(IpAddr::from([0, 0, 0, 0])),
        port: port.unwrap_or(DEFAULT_PORT as i64) as u16,
        accept_any_called_ae: accept_any.unwrap_or(false),
        allowed_calling_aets: allowed,
        max_associations: max_assoc.unwrap_or(32) as u32,
        idle_timeout: Duration::from_secs(idle.unwrap_or(60) as u64),
        max_pdu_length: max_pdu.unwrap_or(65_536) as u32,
        character_set: charset.unwrap_or_else(|| "ISO_IR 192".into()),
        max_identifier_bytes: max_identifier.unwrap_or(1 << 20) as u32,
        max_responses: max_responses.unwrap_or(0) as u32,
        station_filter_by_calling_ae: station_filter.unwrap_or(false),
        tls,
    }
}

fn admin_from(t: &mut Table<'_>, problems: &mut Report) -> AdminConfig {
    let defaults = AdminConfig::default();
    let enabled = t.boolean("enabled", problems);
    let bind = ip_address(t, "bind", problems);
    let port = t.integer("port", 1, 65_535, problems);
    let unready = t.integer("unready_after_intervals", 1, 10_000, problems);
    let session_hours = t.integer("session_hours", 1, 24 * 30, problems);
    let tls = tls_files(t, "[admin.tls]", false, problems);
    AdminConfig {
        enabled: enabled.unwrap_or(defaults.enabled),
        bind: bind.unwrap_or(defaults.bind),
        port: port.map_or(defaults.port, |p| p as u16),
        tls,
        unready_after_intervals: unready.map_or(defaults.unready_after_intervals, |n| n as u32),
        session_lifetime: session_hours.map_or(defaults.session_lifetime, |h| {
            Duration::from_secs(h as u64 * 3600)
        }),
    }
}

fn site_from(t: &mut Table<'_>, problems: &mut Report) -> SiteConfig {
    let tzdir = t.string("tzdir", problems).map(PathBuf::from);
    let zones = match &tzdir {
        Some(dir) => match worklist_store::ZoneDb::from_dir(dir) {
            Ok(z) => Some(z),
            Err(e) => {
                problems.problem(t.key("tzdir"), e.to_string());
                None
            }
        },
        None => Some(worklist_store::ZoneDb::bundled()),
    };
    let timezone = t.string("timezone", problems);
    if let (Some(tz), Some(zones)) = (&timezone, &zones)
        && let Err(e) = zones.get(tz)
    {
        problems.problem(t.key("timezone"), e.to_string());
    }
    SiteConfig {
        timezone: timezone.unwrap_or_else(|| worklist_store::DEFAULT_TIMEZONE.into()),
        tzdir,
    }
}

fn kind_from(t: &mut Table<'_>, problems: &mut Report) -> Option<SourceKind> {
    let kind = t.string("type", problems);
    match kind.as_deref() {
        Some("calpendo") => Some(SourceKind::Calpendo),
        Some(other) => {
            problems.problem(
                t.key("type"),
                format!("source type {other:?} is not supported (supported: \"calpendo\")"),
            );
            None
        }
        None => {
            problems.problem(t.key("type"), "missing; set type = \"calpendo\"");
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
        name: name.unwrap_or_else(|| "calpendo".into()),
        kind,
        enabled,
        key,
        operation_interval: op,
        settings,
    })
}

/// Keys of a Pylantir data source that hold source settings at the source level.
const PYLANTIR_SOURCE_LEVEL_SETTINGS: &[&str] = &[
    "field_mapping",
    "sync_interval",
    "window_mode",
    "daily_window",
    "lookback_multiplier",
    "on_cancel",
    "max_workers",
    "station_aet_mapping",
    "source_timezone",
];

fn source_from_pylantir(
    map: &Map<String, Value>,
    key: String,
    db_update_interval: Option<u64>,
    global_interval: Option<(Time, Time)>,
    ignored: &mut Vec<String>,
    problems: &mut Report,
) -> Option<SourceConfig> {
    let mut t = Table::new(map, key.clone());
    let enabled = t.boolean("enabled", problems).unwrap_or(true);
    let type_name = map.get("type").and_then(Value::as_str).unwrap_or_default();
    if !enabled && type_name != "calpendo" {
        // A disabled REDCap source in a Pylantir file: nothing to do, nothing to check.
        ignored.push(key);
        return None;
    }
    let name = t.string("name", problems);
    let kind = kind_from(&mut t, problems);
    let op = operation_interval(&mut t, problems).or(global_interval);
    let mut settings = match t.table("config", problems) {
        Some(c) => {
            let mut m = Map::new();
            for k in c.unread() {
                if let Some(v) = map.get("config").and_then(|c| c.get(&k)) {
                    m.insert(k, v.clone());
                }
            }
            m
        }
        None => Map::new(),
    };
    for k in PYLANTIR_SOURCE_LEVEL_SETTINGS {
        if let Some(v) = t.raw(k) {
            settings.entry(k.to_string()).or_insert_with(|| v.clone());
        }
    }
    if let Some(n) = db_update_interval {
        settings
            .entry("sync_interval".to_string())
            .or_insert_with(|| Value::from(n));
    }
    t.reject_unknown(problems);
    Some(SourceConfig {
        name: name.unwrap_or_else(|| type_name.to_string()),
        kind: kind?,
        enabled,
        key: format!("{key}.config"),
        operation_interval: op,
        settings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toml(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(text, Path::new("test.toml"))
    }

    fn keys(err: &ConfigError) -> Vec<&str> {
        err.problems.iter().map(|p| p.key.name()).collect()
    }

    #[test]
    fn empty_toml_gives_defaults() {
        let c = toml("").expect("valid");
        assert_eq!(c.server.ae_title, DEFAULT_AE_TITLE);
        assert_eq!(c.server.port, DEFAULT_PORT);
        assert_eq!(c.server.character_set, "ISO_IR 192");
        assert_eq!(c.store.retention_days, 30);
        assert_eq!(c.site.timezone, "America/Edmonton");
        assert!(c.sources.is_empty());
    }

    #[test]
    fn shipped_example_parses() {
        let text = include_str!("../../../config/mwlbridge.toml");
        let c = toml(text).expect("the shipped example is valid");
        assert_eq!(c.sources.len(), 1);
        let s = &c.sources[0];
        assert_eq!(
            (s.name.as_str(), s.kind, s.enabled),
            ("calpendo", SourceKind::Calpendo, true)
        );
        // Source-specific keys are handed over whole, generic ones are not.
        assert!(s.settings.contains_key("base_url"));
        assert!(s.settings.contains_key("field_mapping"));
        assert!(!s.settings.contains_key("name"));
        assert!(!s.settings.contains_key("type"));
    }

    #[test]
    fn admin_defaults_to_loopback_8080() {
        let c = toml("").expect("valid");
        assert_eq!(c.admin, AdminConfig::default());
        assert!(c.admin.enabled);
        assert_eq!(c.admin.bind, IpAddr::from([127, 0, 0, 1]));
        assert_eq!(c.admin.port, 8080);
        let c = toml(
            "[admin]\nenabled = false\nbind = \"0.0.0.0\"\nport = 9443\nunready_after_intervals = 5\nsession_hours = 2\n",
        )
        .expect("valid");
        assert!(!c.admin.enabled);
        assert_eq!(c.admin.port, 9443);
        assert_eq!(c.admin.unready_after_intervals, 5);
        assert_eq!(c.admin.session_lifetime, Duration::from_secs(7200));
    }

    #[test]
    fn admin_problems_and_the_reserved_source_name_are_reported() {
        let err = toml(
            r#"
            [admin]
            bind = "localhost:80"
            port = 0
            tls = { certificate = "/nonexistent/cert.pem" }
            colour = "blue"
            [[sources]]
            name = "manual"
            type = "calpendo"
            "#,
        )
        .expect_err("invalid");
        let keys = keys(&err);
        for key in [
            "admin.bind",
            "admin.port",
            "admin.tls.certificate",
            "admin.colour",
            "sources[0].name",
        ] {
            assert!(keys.contains(&key), "{key} missing from {keys:?}");
        }
        assert!(err.to_string().contains("reserved"), "{err}");
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let err = toml(
            r#"
            [server]
            port = 70000
            ae_title = "THIS_AE_TITLE_IS_TOO_LONG"
            colour = "blue"
            [store]
            retention_days = "thirty"
            [site]
            timezone = "America/Edmonten"
            [[sources]]
            type = "redcap"
            "#,
        )
        .expect_err("invalid");
        assert_eq!(
            keys(&err),
            [
                "server.ae_title",
                "server.port",
                "server.colour",
                "store.retention_days",
                "site.timezone",
                "sources[0].type",
            ]
        );
        let text = err.to_string();
        assert!(text.starts_with("test.toml has 6 problems:"), "{text}");
        assert!(
            text.contains("test.toml: server.port: 70000 is out of range"),
            "{text}"
        );
    }

    #[test]
    fn toml_syntax_error_is_one_problem_with_position() {
        let err = toml("[server\nport = 1").expect_err("invalid");
        assert_eq!(err.problems.len(), 1);
        assert!(err.problems[0].message.contains("not valid TOML"), "{err}");
        assert!(err.problems[0].message.contains("line 1"), "{err}");
    }

    #[test]
    fn duplicate_source_names_are_reported() {
        let err = toml(
            r#"
            [[sources]]
            type = "calpendo"
            [[sources]]
            type = "calpendo"
            "#,
        )
        .expect_err("duplicate");
        assert_eq!(keys(&err), ["sources[1].name"]);
        assert!(
            err.partial.is_some(),
            "the rest is still there for the source checks"
        );
    }

    #[test]
    fn pylantir_json_is_accepted_as_is() {
        let text = include_str!("../../../config/pylantir-example.json");
        let c = Config::from_pylantir_json(text, Path::new("p.json")).expect("valid");
        assert_eq!(c.format, ConfigFormat::PylantirJson);
        assert_eq!(
            c.store.path,
            PathBuf::from("/var/lib/mwlbridge/worklist.db")
        );
        assert_eq!(c.server.allowed_calling_aets, ["MRI_SCANNER", "CT_SCANNER"]);
        assert_eq!(c.site.timezone, "America/Edmonton");
        assert_eq!(c.ignored_keys, ["db_echo"]);
        let s = &c.sources[0];
        assert_eq!((s.name.as_str(), s.enabled), ("calpendo", true));
        assert_eq!(s.operation_interval, None, "[0,0]-[23,59] means always");
        assert_eq!(
            s.settings["sync_interval"], 60,
            "db_update_interval is the default"
        );
        assert_eq!(s.settings["resources"][0], "3T Diagnostic");
        assert!(s.settings.contains_key("field_mapping"));
    }

    #[test]
    fn pylantir_source_level_keys_and_home_paths() {
        let text = r#"{
            "db_path": "~/Desktop/worklist.db",
            "api": {"cors_allowed_origins": []},
            "data_sources": [
                {"name": "main_redcap", "type": "redcap", "enabled": false, "config": {}},
                {"name": "scanners", "type": "calpendo", "enabled": true, "sync_interval": 120,
                 "operation_interval": {"start_time": [7, 0], "end_time": [19, 30]},
                 "config": {"base_url": "https://c.example.org", "resources": ["3T"]},
                 "field_mapping": {"patient_id": "title"}}
            ]
        }"#;
        let c = Config::from_pylantir_json(text, Path::new("p.json")).expect("valid");
        let home = std::env::var("HOME").unwrap_or_default();
        assert_eq!(
            c.store.path,
            PathBuf::from(format!("{home}/Desktop/worklist.db"))
        );
        assert_eq!(c.ignored_keys, ["api", "data_sources[0]"]);
        let s = &c.sources[0];
        assert_eq!(s.name, "scanners");
        assert_eq!(s.settings["sync_interval"], 120);
        assert_eq!(s.settings["field_mapping"]["patient_id"], "title");
        let t = |h, m| Time::new(h, m, 0, 0).expect("time");
        assert_eq!(s.operation_interval, Some((t(7, 0), t(19, 30))));
    }

    #[test]
    fn pylantir_problems_are_all_reported() {
        let text = r#"{
            "db_update_interval": -5,
            "allowed_aet": ["OK", 7],
            "data_sources": [{"type": "calpendo", "enabled": "maybe", "sync": 1}]
        }"#;
        let err = Config::from_pylantir_json(text, Path::new("p.json")).expect_err("invalid");
        assert_eq!(
            keys(&err),
            [
                "db_update_interval",
                "allowed_aet[1]",
                "data_sources[0].enabled",
                "data_sources[0].sync",
            ]
        );
    }

    #[test]
    fn invalid_json_is_one_problem() {
        let err =
            Config::from_pylantir_json("{\"db_path\": ", Path::new("p.json")).expect_err("invalid");
        assert!(err.to_string().contains("not valid JSON"), "{err}");
    }
}
