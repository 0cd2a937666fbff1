//! The keys of a REDCap source's settings, each defined once: name, default, doc and how
//! it is read ([`KEYS`]). The known keys and the docs table ([`docs_table`]) come from
//! here; [`crate::config::parse_settings`] combines what the keys read.
//!
//! Reading only checks and stores values in a `Draft`; rules that involve several keys
//! (site and protocol, zones, credentials) are applied when the draft is finished.

use std::path::PathBuf;
use std::time::Duration;

use config_reader::{Report, Table, kind};
use serde_json::Value;
use worklist_store::OnCancel;
use worklist_store::validate::{coding_scheme_problem, cs_problem};

use crate::config::field_mapping::{FieldMapping, is_field_name, parse_field_mapping};
use crate::template::{DEFAULT_PATIENT_ID, DEFAULT_PATIENT_NAME, Template};

const MAX_SECONDS: f64 = 86_400.0;
/// The most days ahead `mwl_days_ahead` allows.
pub const MAX_DAYS_AHEAD: i64 = 366;
/// The most retries `max_retries` allows.
pub const MAX_RETRIES_LIMIT: i64 = 10;
/// The default `max_response_bytes`: 64 MiB. A record export asks only for the fields
/// the source needs (some hundred bytes a visit); the data dictionary is the project's
/// fields: far below it.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 64 * 1024 * 1024;
/// The smallest `max_response_bytes`: 64 KiB.
pub const MIN_MAX_RESPONSE_BYTES: u64 = 64 * 1024;
/// The largest `max_response_bytes`: 1 GiB.
pub const MAX_MAX_RESPONSE_BYTES: u64 = 1024 * 1024 * 1024;

/// One key of a REDCap source's settings.
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
    pub site: Option<String>,
    pub site_id: Option<String>,
    pub protocol: Option<Value>,
    pub protocol_coding_scheme: Option<String>,
    pub mwl_days_ahead: u32,
    pub field_mapping: FieldMapping,
    pub modality: String,
    pub instrument: String,
    pub date_field: String,
    pub time_field: String,
    pub instance_field: String,
    pub patient_id_template: Option<Template>,
    pub patient_name_template: Option<Template>,
    pub api_url: Option<String>,
    pub api_token_file: Option<PathBuf>,
    pub timezone: Option<String>,
    pub tzdir: Option<PathBuf>,
    pub sync_interval: Duration,
    pub full_refresh: Duration,
    pub modified_margin: Duration,
    pub sync_deadline: Duration,
    pub request_timeout: Duration,
    pub max_retries: u32,
    pub max_response_bytes: u64,
    pub on_cancel: OnCancel,
}

/// A Coding Scheme Designator (SH), when given.
fn coding_scheme(t: &mut Table<'_>, name: &'static str, r: &mut Report) -> Option<String> {
    let s = t.string(name, r)?.trim().to_string();
    if let Some(e) = coding_scheme_problem(&s) {
        r.problem(name, e);
    }
    Some(s)
}

fn seconds(
    t: &mut Table<'_>,
    name: &'static str,
    zero: bool,
    default: f64,
    r: &mut Report,
) -> Duration {
    Duration::from_secs_f64(t.seconds(name, zero, MAX_SECONDS, r).unwrap_or(default))
}

/// A site: a string or a whole number (Pylantir's `"792"` or `792`).
fn site(t: &mut Table<'_>, name: &'static str, r: &mut Report) -> Option<String> {
    match t.raw(name)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) if n.is_u64() || n.is_i64() => Some(n.to_string()),
        other => {
            r.problem(
                name,
                format!("expected a site name or number, found {}", kind(other)),
            );
            None
        }
    }
}

/// A REDCap field or instrument name, or `default`.
fn field_name(t: &mut Table<'_>, name: &'static str, default: &str, r: &mut Report) -> String {
    match t.string(name, r) {
        None => default.to_string(),
        Some(s) if is_field_name(s.trim()) => s.trim().to_string(),
        Some(s) => {
            r.problem(
                name,
                format!("{s:?} is not a REDCap field name (lower-case letters, digits and _)"),
            );
            default.to_string()
        }
    }
}

fn template(t: &mut Table<'_>, name: &'static str, r: &mut Report) -> Option<Template> {
    let s = t.string(name, r)?;
    Template::parse(&s)
        .map_err(|e| r.problem(name, e.to_string()))
        .ok()
}

/// Every key, in the order of the docs table.
pub const KEYS: &[Key] = &[
    Key {
        name: "site",
        default: "required",
        doc: "the site (a name or number), written into the patient ID (`..._site_792`) and \
              choosing the protocol; Pylantir's `site_id` is accepted too",
        read: |t, name, d, r| d.site = site(t, name, r),
    },
    Key {
        name: "site_id",
        default: "none",
        doc: "Pylantir's older name of `site`; when both are given they must agree",
        read: |t, name, d, r| d.site_id = site(t, name, r),
    },
    Key {
        name: "protocol",
        default: "none",
        doc: "the protocol name, or a table site → name (`{ \"792\" = \"BRAIN_MRI_3T\" }`) of \
              which the one of `site` is taken; shown as the Scheduled Procedure Step \
              Description. A table's `mapping` entry (Pylantir's \"HIS/RIS mapping\", e.g. \
              `\"GEHC\"`) is no site: it is the protocol code's Coding Scheme Designator \
              unless `protocol_coding_scheme` is set",
        read: |t, name, d, r| {
            d.protocol = match t.raw(name) {
                None => None,
                Some(v @ (Value::String(_) | Value::Object(_))) => Some(v.clone()),
                Some(other) => {
                    r.problem(
                        name,
                        format!(
                            "expected a name or a table site = name, found {}",
                            kind(other)
                        ),
                    );
                    None
                }
            };
        },
    },
    Key {
        name: "protocol_coding_scheme",
        default: "`99MWLBRIDGE`",
        doc: "the Coding Scheme Designator of the protocol code (Scheduled Protocol Code \
              Sequence) when no `hisris_coding_designator` field is mapped or it is blank; \
              default: the `protocol` table's `mapping`, else `99MWLBRIDGE`; `99…` \
              designators are local (PS3.16 8.2)",
        read: |t, name, d, r| d.protocol_coding_scheme = coding_scheme(t, name, r),
    },
    Key {
        name: "mwl_days_ahead",
        default: "`0`",
        doc: "whole days after today that are offered (0: today only; 0 to 366)",
        read: |t, name, d, r| {
            d.mwl_days_ahead = t
                .integer(name, 0, MAX_DAYS_AHEAD, r)
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0);
        },
    },
    Key {
        name: "field_mapping",
        default: "none",
        doc: "REDCap field → worklist column (Pylantir's direction and column names, e.g. \
              `{ mri_wt_lbs = \"patient_weight_lb\" }`); a field mapped to its own name, or to \
              a name that is no column (a warning; Pylantir drops those too), is only asked \
              for",
        read: |t, name, d, r| {
            if let Some(v) = t.raw(name) {
                d.field_mapping = parse_field_mapping(v, name, r);
            }
        },
    },
    Key {
        name: "modality",
        default: "`MR`",
        doc: "the Modality of every visit (a mapped `modality` field wins)",
        read: |t, name, d, r| {
            d.modality = match t.string(name, r) {
                None => "MR".to_string(),
                Some(s) => {
                    let m = s.trim().to_ascii_uppercase();
                    if let Some(e) = cs_problem(&m) {
                        r.problem(name, format!("not a DICOM modality code: {e}"));
                    }
                    m
                }
            };
        },
    },
    Key {
        name: "instrument",
        default: "`mri`",
        doc: "the repeating instrument whose instances are the visits",
        read: |t, name, d, r| d.instrument = field_name(t, name, "mri", r),
    },
    Key {
        name: "date_field",
        default: "`mri_date`",
        doc: "the visit's date field (a row without it is skipped)",
        read: |t, name, d, r| d.date_field = field_name(t, name, "mri_date", r),
    },
    Key {
        name: "time_field",
        default: "`mri_time`",
        doc: "the visit's time field (a row without it is skipped)",
        read: |t, name, d, r| d.time_field = field_name(t, name, "mri_time", r),
    },
    Key {
        name: "instance_field",
        default: "`mri_instance`",
        doc: "the visit's session number field, `{instance}` in the templates (a row \
              without it is skipped)",
        read: |t, name, d, r| d.instance_field = field_name(t, name, "mri_instance", r),
    },
    Key {
        name: "patient_id_template",
        default: "`sub_{study_id}_ses_{instance}_fam_{family_id}_site_{site}`",
        doc: "the Patient ID: `{field}` is a REDCap field (`study_id` and `family_id` keep \
              the part after their last `-`, `study_id` gets `ng_` for neurology patients), \
              `{site}`, `{instance}`; a row without the first field named is skipped",
        read: |t, name, d, r| d.patient_id_template = template(t, name, r),
    },
    Key {
        name: "patient_name_template",
        default: "`cpip-id-{study_id}^fa-{family_id}`",
        doc: "the Patient's Name, as `patient_id_template`",
        read: |t, name, d, r| d.patient_name_template = template(t, name, r),
    },
    Key {
        name: "api_url",
        default: "env `REDCAP_API_URL`",
        doc: "the REDCap API URL (`https://redcap.example.org/api/`); when set it wins over \
              the environment (`REDCAP_API_URL_CONCUSSION` for `redcap_concussion`)",
        read: |t, name, d, r| d.api_url = t.string(name, r).map(|s| s.trim().to_string()),
    },
    Key {
        name: "api_token_file",
        default: "env `REDCAP_API_TOKEN`",
        doc: "a file holding the API token (surrounding white space ignored); when set it \
              wins over the environment (`REDCAP_API_TOKEN_CONCUSSION` for \
              `redcap_concussion`)",
        read: |t, name, d, r| d.api_token_file = t.string(name, r).map(PathBuf::from),
    },
    Key {
        name: "timezone",
        default: "`[site] timezone`",
        doc: "the REDCap server's zone, which its dates, times and modification times are \
              in; must be the site's zone",
        read: |t, name, d, r| d.timezone = t.string(name, r).map(|s| s.trim().to_string()),
    },
    Key {
        name: "tzdir",
        default: "`[site] tzdir`",
        doc: "a zoneinfo directory to take zone rules from (set it in `[site]`)",
        read: |t, name, d, r| d.tzdir = t.string(name, r).map(PathBuf::from),
    },
    Key {
        name: "sync_interval",
        default: "`60`",
        doc: "seconds between sync cycles (a cycle also runs at start)",
        read: |t, name, d, r| d.sync_interval = seconds(t, name, false, 60.0, r),
    },
    Key {
        name: "full_refresh",
        default: "`3600`",
        doc: "seconds between complete exports; the cycles between ask only for records \
              modified since the last committed cycle. Deletions in REDCap reach the \
              worklist at the next complete export; `0` makes every cycle complete",
        read: |t, name, d, r| d.full_refresh = seconds(t, name, true, 3600.0, r),
    },
    Key {
        name: "modified_margin",
        default: "`300`",
        doc: "seconds an incremental export reaches back before the last committed cycle's \
              start (clock skew, saves in flight)",
        read: |t, name, d, r| d.modified_margin = seconds(t, name, true, 300.0, r),
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
        name: "max_retries",
        default: "`3`",
        doc: "retries of a request that failed transiently (5xx, timeout, connection), \
              after 1 s, 2 s, 4 s, ... (0 to 10)",
        read: |t, name, d, r| {
            d.max_retries = t
                .integer(name, 0, MAX_RETRIES_LIMIT, r)
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(3);
        },
    },
    Key {
        name: "max_response_bytes",
        default: "`67108864` (64 MiB)",
        doc: "the most bytes one answer's body may have (65536 to 1073741824). A larger \
              answer, announced (`Content-Length`) or sent (read chunk by chunk, an endless \
              body included), fails that request at the limit, is not retried, and fails \
              the cycle (nothing changes; the next cycle tries again)",
        read: |t, name, d, r| {
            d.max_response_bytes = t
                .integer(
                    name,
                    MIN_MAX_RESPONSE_BYTES as i64,
                    MAX_MAX_RESPONSE_BYTES as i64,
                    r,
                )
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or(DEFAULT_MAX_RESPONSE_BYTES);
        },
    },
    Key {
        name: "on_cancel",
        default: "`discontinue`",
        doc: "cancelled or vanished visits: `discontinue` (kept as DISCONTINUED, hidden from \
              consoles) or `delete`",
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
];

/// The defaults of the templates, parsed.
pub(crate) fn default_templates() -> (Template, Template) {
    // Constants of this crate, not outside data: a unit test parses both.
    let parse = |s: &str| Template::parse(s).expect("the default templates parse");
    (parse(DEFAULT_PATIENT_ID), parse(DEFAULT_PATIENT_NAME))
}

/// The names of every key, in the order of [`KEYS`].
pub fn known_keys() -> impl Iterator<Item = &'static str> {
    KEYS.iter().map(|k| k.name)
}

/// Reads every key of `t` into a draft; a key no [`Key`] reads is reported as unknown.
pub(crate) fn read_keys(t: &mut Table<'_>, r: &mut Report) -> Draft {
    let mut d = Draft::default();
    for key in KEYS {
        (key.read)(t, key.name, &mut d, r);
    }
    t.reject_unknown(r);
    d
}

/// The Markdown table of the keys (for docs/configuration.md).
pub fn docs_table() -> String {
    let mut out = String::from("| key | default | meaning |\n|---|---|---|\n");
    for k in KEYS {
        let doc = k.doc.split_whitespace().collect::<Vec<_>>().join(" ");
        out.push_str(&format!("| `{}` | {} | {doc} |\n", k.name, k.default));
    }
    out
}
