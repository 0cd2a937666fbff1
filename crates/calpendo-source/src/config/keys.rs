//! The keys of a Calpendo source's settings, each defined once: name, default, doc and
//! how it is read ([`KEYS`]). The list of known keys and the docs table
//! ([`docs_table`]) come from here; [`crate::config::parse_config`] combines what the
//! keys read.
//!
//! Reading only checks and stores values in a [`Draft`]; rules that involve several keys
//! (zones, the window, credentials) are applied when the draft is finished.

use std::path::PathBuf;
use std::time::Duration;

use config_reader::{Report, Table, kind};
use serde_json::Value;
use worklist_store::DEFAULT_PROTOCOL_CODING_SCHEME;
use worklist_store::OnCancel;
use worklist_store::source::Dialect;
use worklist_store::validate::{ae_problem, coding_scheme_problem, cs_problem};

use crate::config::FetchMode;
use crate::config::field_mapping::parse_field_mapping;
use crate::config::window::{WindowKeys, parse_daily_window};
use crate::fields::{FieldMapping, PrefixMap};

/// The default API path: the one Calpendo documents.
pub const DEFAULT_API_PATH: &str = "/webdav";
/// The default API path of a Pylantir JSON config (Pylantir's default).
pub const PYLANTIR_API_PATH: &str = "/api";
/// The `lookback_multiplier` of a Pylantir JSON config that gives none (Pylantir's).
pub const PYLANTIR_LOOKBACK_MULTIPLIER: f64 = 2.0;
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
/// The default `max_response_bytes`: 64 MiB. A booking list of a long window is some
/// hundred bytes a booking (a thousand bookings: well under 1 MiB), one booking's details
/// a few KiB: far above any real answer, far below what hurts a small server.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 64 * 1024 * 1024;
/// The smallest `max_response_bytes`: 64 KiB.
pub const MIN_MAX_RESPONSE_BYTES: u64 = 64 * 1024;
/// The largest `max_response_bytes`: 1 GiB.
pub const MAX_MAX_RESPONSE_BYTES: u64 = 1024 * 1024 * 1024;
/// The default `detail_cache_bytes`: 16 MiB, some thousands of bookings' details.
pub const DEFAULT_DETAIL_CACHE_BYTES: u64 = 16 * 1024 * 1024;
/// The largest `detail_cache_bytes`: 1 GiB.
pub const MAX_DETAIL_CACHE_BYTES: u64 = 1024 * 1024 * 1024;
/// The most one booking may take in the detail cache (its details response, list item and
/// operator): 1 MiB; a booking taking more is fetched again every cycle.
pub const DETAIL_CACHE_ITEM_MAX_BYTES: u64 = 1024 * 1024;

const MAX_SECONDS: f64 = 86_400.0;
const MAX_WINDOW_DAYS: i64 = 366;

/// One key of a Calpendo source's settings.
pub struct Key {
    /// The key's name.
    pub name: &'static str,
    /// Its default, as the docs show it.
    pub default: &'static str,
    /// What it means, for the docs table (Markdown, one line).
    pub doc: &'static str,
    /// Reads the key (absent or not) from the settings into the draft.
    read: fn(&mut Table<'_>, &'static str, &mut Draft, &mut Report),
}

/// What the keys read, before the rules that involve several keys are applied.
#[derive(Debug, Default)]
pub(crate) struct Draft {
    /// Whose defaults apply; set before any key is read.
    pub dialect: Dialect,
    pub base_url: Option<String>,
    pub base_url_given: bool,
    pub api_path: String,
    pub resources: Vec<String>,
    pub status_filter: Vec<String>,
    pub allowed_studies: Vec<String>,
    pub timezone: Option<String>,
    pub source_timezone: Option<String>,
    pub tzdir: Option<PathBuf>,
    pub resource_modality_mapping: PrefixMap,
    pub station_aet_mapping: PrefixMap,
    pub resource_protocol_mapping: PrefixMap,
    pub project_protocol_mapping: PrefixMap,
    pub field_mapping: FieldMapping,
    pub window: WindowKeys,
    pub lookback_multiplier: Option<f64>,
    pub sync_interval: Duration,
    pub sync_deadline: Duration,
    pub request_timeout: Duration,
    pub max_workers: usize,
    pub max_response_bytes: u64,
    pub detail_refresh: Duration,
    pub fetch_mode: FetchMode,
    pub detail_cache_bytes: u64,
    pub on_cancel: OnCancel,
    pub site: Option<String>,
    pub protocol: Option<ProtocolSetting>,
    pub protocol_coding_scheme: String,
}

/// Pylantir's `protocol`, as read: one name, or a name per site id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ProtocolSetting {
    /// `"protocol": "BRAIN"`.
    Name(String),
    /// `"protocol": {"792": "BRAIN"}`: the entry of `site`.
    BySite(Vec<(String, String)>),
}

/// Seconds read with [`Table::seconds`], or `default`.
fn seconds(
    t: &mut Table<'_>,
    name: &'static str,
    zero_allowed: bool,
    default: f64,
    r: &mut Report,
) -> Duration {
    Duration::from_secs_f64(
        t.seconds(name, zero_allowed, MAX_SECONDS, r)
            .unwrap_or(default),
    )
}

/// A number of bytes within `min..=max`, or `default`.
fn byte_count(
    t: &mut Table<'_>,
    name: &'static str,
    min: u64,
    max: u64,
    default: u64,
    r: &mut Report,
) -> u64 {
    let (lo, hi) = (
        i64::try_from(min).unwrap_or(i64::MAX),
        i64::try_from(max).unwrap_or(i64::MAX),
    );
    t.integer(name, lo, hi, r)
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(default)
}

/// A zone name, trimmed.
fn zone_name(t: &mut Table<'_>, name: &'static str, r: &mut Report) -> Option<String> {
    t.string(name, r).map(|s| s.trim().to_string())
}

/// Every key, in the order of the docs table.
pub const KEYS: &[Key] = &[
    Key {
        name: "base_url",
        default: "env `CALPENDO_API_URL`",
        doc: "`https://host[:port]` of the Calpendo server, without the API path; a URL \
              holding a user or password is refused",
        read: |t, name, d, r| {
            d.base_url_given = t.has(name);
            d.base_url = match t.raw(name) {
                None => None,
                Some(Value::String(s)) if s.trim().is_empty() => {
                    r.problem(name, "must not be empty");
                    None
                }
                Some(Value::String(s)) => check_base_url(s, name, "", r),
                Some(other) => {
                    r.problem(name, format!("expected a string, found {}", kind(other)));
                    None
                }
            };
        },
    },
    Key {
        name: "api_path",
        default: "`/webdav`; `/api` in a Pylantir JSON config (Pylantir's default)",
        doc: "`/webdav` on older servers, `/api` on newer ones",
        read: |t, name, d, r| {
            d.api_path = match t.string(name, r) {
                None => default_api_path(d.dialect).to_string(),
                Some(s) => {
                    let p = s.trim().trim_matches('/');
                    if p.chars().any(|c| c.is_whitespace() || c == '?' || c == '#') {
                        r.problem(name, "must be a plain path such as \"/webdav\" or \"/api\"");
                    }
                    if p.is_empty() {
                        String::new()
                    } else {
                        format!("/{p}")
                    }
                }
            };
        },
    },
    Key {
        name: "resources",
        default: "required",
        doc: "resource-name **prefixes**: `\"3T\"` takes `3T Diagnostic` and `3T Research`",
        read: |t, name, d, r| d.resources = parse_resources(t.raw(name), r),
    },
    Key {
        name: "status_filter",
        default: "all",
        doc: "a status or a list of exact statuses (`\"Approved\"`, \
              `[\"Approved\", \"Pending\"]`)",
        read: |t, name, d, r| d.status_filter = parse_status_filter(t.raw(name), r),
    },
    Key {
        name: "allowed_studies",
        default: "all",
        doc: "Pylantir's: a list of study descriptions; only bookings whose study \
              description (mapped, else the default), blanks trimmed, is exactly one of them \
              are kept. The others are skipped like an unselected resource: a booking whose \
              study leaves the list vanishes from the window, so the sync discontinues it \
              (or deletes it, see `on_cancel`)",
        read: |t, name, d, r| d.allowed_studies = parse_allowed_studies(t.raw(name), name, r),
    },
    Key {
        name: "timezone",
        default: "`[site] timezone`",
        doc: "must equal the site's zone when both are given (TOML)",
        read: |t, name, d, r| d.timezone = zone_name(t, name, r),
    },
    Key {
        name: "source_timezone",
        default: "`timezone`",
        doc: "zone of Calpendo's own displayed (naive) times, when the server runs elsewhere",
        read: |t, name, d, r| d.source_timezone = zone_name(t, name, r),
    },
    Key {
        name: "tzdir",
        default: "`[site] tzdir`",
        doc: "a zoneinfo directory to take zone rules from (set it in `[site]`)",
        read: |t, name, d, r| d.tzdir = t.string(name, r).map(PathBuf::from),
    },
    Key {
        name: "resource_modality_mapping",
        default: "none",
        doc: "resource-name prefix → DICOM Modality (`{ \"3T\" = \"MR\", \"EEG\" = \"EEG\" }`); \
              the longest matching prefix wins",
        read: |t, name, d, r| {
            d.resource_modality_mapping = parse_prefix_map(t.raw(name), name, r, |v| {
                let m = v.trim().to_ascii_uppercase();
                let problem = cs_problem(&m).map(|e| format!("not a DICOM modality code: {e}"));
                (m, problem)
            });
        },
    },
    Key {
        name: "station_aet_mapping",
        default: "none",
        doc: "resource-name prefix → Scheduled Station AE Title. **Most consoles ask for \
              their own AE title as the station: without this mapping they see nothing.**",
        read: |t, name, d, r| {
            d.station_aet_mapping = parse_prefix_map(t.raw(name), name, r, |v| {
                let ae = v.trim().to_string();
                let problem = ae_problem(&ae);
                (ae, problem)
            });
        },
    },
    Key {
        name: "field_mapping",
        default: "see below",
        doc: "how booking fields become worklist fields",
        read: |t, name, d, r| {
            if let Some(v) = t.raw(name) {
                d.field_mapping = parse_field_mapping(v, r);
            }
        },
    },
    Key {
        name: "window_mode",
        default: "`rolling`",
        doc: "`rolling`: from the start of today minus `window_past_days` to the end of \
              today plus `window_future_days`; `today`: today only, optionally within \
              `daily_window`",
        read: |t, name, d, r| {
            d.window.mode = t.string(name, r).map(|s| s.trim().to_ascii_lowercase());
        },
    },
    Key {
        name: "window_past_days",
        default: "`0`",
        doc: "rolling window: whole local days before today (0 to 366)",
        read: |t, name, d, r| {
            d.window.days_given[0] = t.has(name);
            d.window.past_days = t.integer(name, 0, MAX_WINDOW_DAYS, r);
        },
    },
    Key {
        name: "window_future_days",
        default: "`1`",
        doc: "rolling window: whole local days after today (0 to 366)",
        read: |t, name, d, r| {
            d.window.days_given[1] = t.has(name);
            d.window.future_days = t.integer(name, 0, MAX_WINDOW_DAYS, r);
        },
    },
    Key {
        name: "daily_window",
        default: "whole day",
        doc: "`today` mode: `{ start = \"07:00\", end = \"19:00\" }` (or Pylantir's \
              `start_time`/`end_time` `[hour, minute]`); an end at or before the start is \
              on the next day: `18:00` to `06:00` runs overnight, from today's evening",
        read: |t, name, d, r| {
            d.window.daily_given = t.has(name);
            d.window.daily_window = t.raw(name).and_then(|v| parse_daily_window(v, r));
        },
    },
    Key {
        name: "lookback_multiplier",
        default: "none; `2` in a Pylantir JSON config (Pylantir's default)",
        doc: "a positive number. `rolling` mode: the window starts no later than the local \
              day (00:00) of now − `sync_interval` × `lookback_multiplier` (at most 366 \
              days back), so it covers what Pylantir fetched; no effect in `today` mode \
              (as in Pylantir)",
        read: |t, name, d, r| {
            d.lookback_multiplier = match t.raw(name) {
                None | Some(Value::Null) => match d.dialect {
                    Dialect::Pylantir => Some(PYLANTIR_LOOKBACK_MULTIPLIER),
                    Dialect::Mwlbridge => None,
                },
                Some(v) => match v.as_f64() {
                    Some(x) if x.is_finite() && x > 0.0 => Some(x),
                    _ => {
                        r.problem(name, "must be a positive number");
                        None
                    }
                },
            };
        },
    },
    Key {
        name: "sync_interval",
        default: "`60`",
        doc: "seconds between sync cycles (a cycle also runs at start)",
        read: |t, name, d, r| d.sync_interval = seconds(t, name, false, 60.0, r),
    },
    Key {
        name: "sync_deadline",
        default: "`90`",
        doc: "seconds a whole cycle may take before it is abandoned (nothing changes)",
        read: |t, name, d, r| d.sync_deadline = seconds(t, name, false, 90.0, r),
    },
    Key {
        name: "request_timeout",
        default: "`30`",
        doc: "seconds one HTTP request may take",
        read: |t, name, d, r| d.request_timeout = seconds(t, name, false, 30.0, r),
    },
    Key {
        name: "max_response_bytes",
        default: "`67108864` (64 MiB)",
        doc: "the most bytes one response body may have (65536 to 1073741824). A larger \
              answer, announced (`Content-Length`) or sent (read chunk by chunk, an endless \
              body included), fails that request at the limit, is not retried, and fails \
              the cycle (nothing changes; the next cycle tries again)",
        read: |t, name, d, r| {
            d.max_response_bytes = byte_count(
                t,
                name,
                MIN_MAX_RESPONSE_BYTES,
                MAX_MAX_RESPONSE_BYTES,
                DEFAULT_MAX_RESPONSE_BYTES,
                r,
            );
        },
    },
    Key {
        name: "max_workers",
        default: "`5`",
        doc: "Calpendo requests in flight at once (1 to 32)",
        read: |t, name, d, r| {
            d.max_workers = t
                .integer(name, 1, MAX_WORKERS_LIMIT as i64, r)
                .map_or(5, |n| n as usize);
        },
    },
    Key {
        name: "detail_refresh",
        default: "`600`",
        doc: "seconds a booking's fetched details (and MRI operator) are reused while its \
              list entry (time, title, status, type) is unchanged; `0` fetches every \
              booking's details every cycle (0 to 86400). Changes the list shows appear in \
              the next cycle; changes only the details carry (project, resource, operator, \
              description) appear within this time. The cache is in memory: it helps \
              `serve` and looping `sync`, not `sync --once` (one cycle per process).",
        read: |t, name, d, r| {
            let default = DEFAULT_DETAIL_REFRESH.as_secs_f64();
            d.detail_refresh = seconds(t, name, true, default, r);
        },
    },
    Key {
        name: "fetch_mode",
        default: "`auto`",
        doc: "how a cycle reads the bookings: `bulk` asks the list query for every field \
              the mapping needs (`?paths=`, resource prefixes and statuses filtered on the \
              server) and the window's MRI operators in one more query: 1 or 2 requests a \
              cycle, whatever the window holds; `details` lists the bookings, then reads each one's details \
              and operator (`max_workers`, `detail_refresh`), as before; `auto` tries \
              `bulk` and falls back to `details` (one WARN) when the server answers \
              without the asked paths. A server that refuses `STARTS_WITH` (HTTP 400) gets \
              the resource prefixes filtered on our side instead.",
        read: |t, name, d, r| {
            d.fetch_mode = match t.string(name, r) {
                None => FetchMode::Auto,
                Some(s) => s.trim().parse().unwrap_or_else(|()| {
                    r.problem(
                        name,
                        format!("must be \"auto\", \"bulk\" or \"details\", not {s:?}"),
                    );
                    FetchMode::Auto
                }),
            };
        },
    },
    Key {
        name: "detail_cache_bytes",
        default: "`16777216` (16 MiB)",
        doc: "the most bytes the detail cache (see `detail_refresh`) keeps, counted as the \
              details responses, list items and operators as received (0 to 1073741824; \
              `0` keeps nothing). Over it, the details fetched longest ago are dropped (and \
              fetched again next cycle); a booking taking more than 1 MiB (or more than \
              this budget) is never kept",
        read: |t, name, d, r| {
            d.detail_cache_bytes = byte_count(
                t,
                name,
                0,
                MAX_DETAIL_CACHE_BYTES,
                DEFAULT_DETAIL_CACHE_BYTES,
                r,
            );
        },
    },
    Key {
        name: "on_cancel",
        default: "`discontinue`",
        doc: "cancelled or vanished bookings: `discontinue` (kept as DISCONTINUED, hidden \
              from consoles) or `delete`",
        read: |t, name, d, r| {
            d.on_cancel = match t.string(name, r) {
                None => OnCancel::Discontinue,
                Some(s) => match s.trim().to_ascii_lowercase().as_str() {
                    "discontinue" => OnCancel::Discontinue,
                    "delete" => OnCancel::Delete,
                    _ => {
                        r.problem(
                            name,
                            format!("must be \"discontinue\" or \"delete\", not {s:?}"),
                        );
                        OnCancel::Discontinue
                    }
                },
            };
        },
    },
    Key {
        name: "site",
        default: "none",
        doc: "Pylantir's site id (a string or a number); it picks the entry of a \
              `protocol` table and has no other effect",
        read: |t, name, d, r| d.site = parse_site(t.raw(name), name, r),
    },
    Key {
        name: "site_id",
        default: "none",
        doc: "Pylantir's other name of `site`; `site` wins when both are given",
        read: |t, name, d, r| {
            let site_id = parse_site(t.raw(name), name, r);
            d.site = d.site.take().or(site_id);
        },
    },
    Key {
        name: "protocol",
        default: "none",
        doc: "Pylantir's protocol: a name, or `{ \"site id\" = name }` (the entry of \
              `site`; none matching is a warning). As in Pylantir (its sync, not its \
              Calpendo plugin), it is the Scheduled Procedure Step Description unless \
              `field_mapping` maps `sps_description` or `protocol_name`. It (or a mapped \
              `protocol_name`) is also sent as the Scheduled Protocol Code Sequence: code \
              value and meaning",
        read: |t, name, d, r| d.protocol = parse_protocol(t.raw(name), name, r),
    },
    Key {
        name: "project_protocol_mapping",
        default: "none",
        doc: "project-name prefix → protocol name (`{ \"BRISKP\" = \"BRAIN_MRI_3T\" }`): a \
              booking of that project gets it (the longest matching prefix wins), before \
              `resource_protocol_mapping` and `protocol`; a mapped `protocol_name` wins over \
              all three",
        read: |t, name, d, r| {
            d.project_protocol_mapping = parse_prefix_map(t.raw(name), name, r, protocol_name);
        },
    },
    Key {
        name: "resource_protocol_mapping",
        default: "none",
        doc: "resource-name prefix → protocol name (`{ \"3T\" = \"BRAIN_MRI_3T\" }`): a booking \
              of that resource whose project maps none gets it, before `protocol`",
        read: |t, name, d, r| {
            d.resource_protocol_mapping = parse_prefix_map(t.raw(name), name, r, protocol_name);
        },
    },
    Key {
        name: "protocol_coding_scheme",
        default: "`99MWLBRIDGE`",
        doc: "the Coding Scheme Designator of the protocol code when no \
              `hisris_coding_designator` is mapped or the booking's is blank or not a valid \
              designator; `99…` designators are local (PS3.16 8.2)",
        read: |t, name, d, r| {
            d.protocol_coding_scheme = match t.string(name, r) {
                None => DEFAULT_PROTOCOL_CODING_SCHEME.to_string(),
                Some(s) => {
                    let s = s.trim().to_string();
                    if let Some(e) = coding_scheme_problem(&s) {
                        r.problem(name, e);
                    }
                    s
                }
            };
        },
    },
];

/// The API path used when the settings give none: Calpendo's documented `/webdav`, or
/// Pylantir's `/api` for a Pylantir JSON config.
pub fn default_api_path(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Mwlbridge => DEFAULT_API_PATH,
        Dialect::Pylantir => PYLANTIR_API_PATH,
    }
}

/// `site`: a string or a number, as text; `None` when absent, null or blank.
fn parse_site(v: Option<&Value>, key: &str, p: &mut Report) -> Option<String> {
    match v {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(other) => {
            p.problem(
                key,
                format!(
                    "must be a site id (a string or a number), not {}",
                    kind(other)
                ),
            );
            None
        }
    }
}

/// `protocol`: a name, or a table of site id → name; `None` when absent, null or empty.
fn parse_protocol(v: Option<&Value>, key: &str, p: &mut Report) -> Option<ProtocolSetting> {
    let non_blank = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    match v {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => non_blank(s).map(ProtocolSetting::Name),
        Some(Value::Object(m)) => {
            let mut by_site = Vec::new();
            for (site, name) in m {
                match name.as_str().and_then(non_blank) {
                    Some(name) => by_site.push((site.trim().to_string(), name)),
                    None => p.problem(
                        format!("{key}.{site}"),
                        format!("must be a protocol name, not {}", kind(name)),
                    ),
                }
            }
            (!by_site.is_empty()).then_some(ProtocolSetting::BySite(by_site))
        }
        Some(other) => {
            p.problem(
                key,
                format!(
                    "must be a protocol name or a table of site id = protocol name, not {}",
                    kind(other)
                ),
            );
            None
        }
    }
}

/// Every key a Calpendo source's settings may have, in the order of [`KEYS`].
pub const KNOWN_KEYS: [&str; KEYS.len()] = {
    let mut names = [""; KEYS.len()];
    let mut i = 0;
    while i < KEYS.len() {
        names[i] = KEYS[i].name;
        i += 1;
    }
    names
};

/// The names of every key, in the order of [`KEYS`].
pub fn known_keys() -> impl Iterator<Item = &'static str> {
    KEYS.iter().map(|k| k.name)
}

/// Reads every key of `t` into a draft; a key no [`Key`] reads is reported as unknown.
pub(crate) fn read_keys(t: &mut Table<'_>, dialect: Dialect, r: &mut Report) -> Draft {
    let mut d = Draft {
        dialect,
        ..Draft::default()
    };
    for key in KEYS {
        (key.read)(t, key.name, &mut d, r);
    }
    t.reject_unknown(r);
    d
}

/// The Markdown table of the keys (as docs/configuration.md holds it).
pub fn docs_table() -> String {
    let mut out = String::from("| key | default | meaning |\n|---|---|---|\n");
    for k in KEYS {
        let doc = k.doc.split_whitespace().collect::<Vec<_>>().join(" ");
        out.push_str(&format!("| `{}` | {} | {doc} |\n", k.name, k.default));
    }
    out
}

/// The base URL without its trailing `/`, when it is a plain http(s) URL; `origin` names
/// where it came from in messages. Never echoes the URL (it may hold a credential).
pub(crate) fn check_base_url(raw: &str, key: &str, origin: &str, p: &mut Report) -> Option<String> {
    let raw = raw.trim();
    let url = match reqwest::Url::parse(raw) {
        Ok(u) => u,
        Err(e) => {
            p.problem(key, format!("not a URL{origin}: {e}"));
            return None;
        }
    };
    let mut ok = true;
    if !matches!(url.scheme(), "http" | "https") {
        p.problem(key, format!("must be an http:// or https:// URL{origin}"));
        ok = false;
    }
    if url.host_str().is_none_or(str::is_empty) {
        p.problem(key, format!("has no host{origin}"));
        ok = false;
    }
    if !url.username().is_empty() || url.password().is_some() {
        // Never echo the URL: it holds a credential.
        p.problem(
            key,
            format!(
                "must not hold credentials{origin}; set {ENV_USERNAME} and {ENV_PASSWORD} instead"
            ),
        );
        ok = false;
    }
    if url.query().is_some() || url.fragment().is_some() {
        p.problem(key, format!("must not have a query or fragment{origin}"));
        ok = false;
    }
    ok.then(|| raw.trim_end_matches('/').to_string())
}

fn parse_resources(v: Option<&Value>, p: &mut Report) -> Vec<String> {
    let mut out = Vec::new();
    match v {
        None => p.problem(
            "resources",
            "required: a list of resource-name prefixes, e.g. [\"3T\", \"EEG\"]",
        ),
        Some(Value::Array(items)) => {
            if items.is_empty() {
                p.problem("resources", "must list at least one resource-name prefix");
            }
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(s) if !s.trim().is_empty() => out.push(s.clone()),
                    Value::String(_) => p.problem(format!("resources[{i}]"), "must not be empty"),
                    other => p.problem(
                        format!("resources[{i}]"),
                        format!("must be a string, not {}", kind(other)),
                    ),
                }
            }
        }
        Some(other) => p.problem(
            "resources",
            format!(
                "must be a list of resource-name prefixes, not {}",
                kind(other)
            ),
        ),
    }
    out
}

fn parse_status_filter(v: Option<&Value>, p: &mut Report) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |s: &str| {
        let s = s.trim().to_string();
        if !s.is_empty() && !out.contains(&s) {
            out.push(s);
        }
    };
    match v {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => add(s),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(s) if !s.trim().is_empty() => add(s),
                    other => p.problem(
                        format!("status_filter[{i}]"),
                        format!("must be a non-empty string, not {other}"),
                    ),
                }
            }
        }
        Some(other) => p.problem(
            "status_filter",
            format!(
                "must be a status or a list of statuses, not {}",
                kind(other)
            ),
        ),
    }
    out
}

/// `allowed_studies`: absent (or null) allows every study; else a non-empty list of
/// non-blank strings, kept trimmed (as Pylantir keeps them).
fn parse_allowed_studies(v: Option<&Value>, key: &str, p: &mut Report) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    match v {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            if items.is_empty() {
                p.problem(key, "must list at least one study description");
            }
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(s) if !s.trim().is_empty() => {
                        let s = s.trim().to_string();
                        if !out.contains(&s) {
                            out.push(s);
                        }
                    }
                    Value::String(_) => p.problem(format!("{key}[{i}]"), "must not be blank"),
                    other => p.problem(
                        format!("{key}[{i}]"),
                        format!("must be a string, not {}", kind(other)),
                    ),
                }
            }
        }
        Some(other) => p.problem(
            key,
            format!("must be a list of study descriptions, not {}", kind(other)),
        ),
    }
    out
}

/// A protocol name of a prefix map: a non-blank LO (64 characters at most).
fn protocol_name(v: &str) -> (String, Option<String>) {
    let name = v.trim().to_string();
    let problem = if name.is_empty() {
        Some("must be a protocol name, not blank".to_string())
    } else if name.chars().count() > 64 {
        Some("a protocol name has at most 64 characters (LO)".to_string())
    } else {
        None
    };
    (name, problem)
}

fn parse_prefix_map(
    v: Option<&Value>,
    key: &str,
    p: &mut Report,
    check: fn(&str) -> (String, Option<String>),
) -> PrefixMap {
    let mut entries = Vec::new();
    match v {
        None => {}
        Some(Value::Object(m)) => {
            for (prefix, v) in m {
                let path = format!("{key}.{prefix}");
                match v {
                    Value::String(s) => match check(s) {
                        (value, None) => entries.push((prefix.clone(), value)),
                        (_, Some(e)) => p.problem(path, e),
                    },
                    other => p.problem(path, format!("must be a string, not {}", kind(other))),
                }
            }
        }
        Some(other) => p.problem(
            key,
            format!(
                "must be a table/object of name prefix = value, not {}",
                kind(other)
            ),
        ),
    }
    PrefixMap::new(entries)
}
