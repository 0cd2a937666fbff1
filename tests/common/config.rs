//! The one config template of the end-to-end tests: a site with one Calpendo source on a
//! fake, the `title` → PatientName template, and the settings each test chooses.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A resource prefix, its Modality and its ScheduledStationAETitle.
pub type Resource = (&'static str, &'static str, &'static str);

/// Two MR scanners, an EEG lab and a mock scanner.
///
/// | resource prefix | Modality | ScheduledStationAETitle |
/// |---|---|---|
/// | `3T` | MR | MRI_3T |
/// | `7T` | MR | MRI_7T |
/// | `EEG` | EEG | EEG_LAB |
/// | `Mock` | OT | MOCK |
pub const FOUR_RESOURCES: [Resource; 4] = [
    ("3T", "MR", "MRI_3T"),
    ("7T", "MR", "MRI_7T"),
    ("EEG", "EEG", "EEG_LAB"),
    ("Mock", "OT", "MOCK"),
];

/// One MR scanner and the EEG lab (the mock scanner is not configured).
pub const TWO_RESOURCES: [Resource; 2] = [("3T", "MR", "MRI_3T"), ("EEG", "EEG", "EEG_LAB")];

/// A config to render: each field is one choice of a test.
#[derive(Debug, Clone)]
pub struct SiteConfig<'a> {
    /// The fake Calpendo's URL.
    pub base_url: &'a str,
    /// The database.
    pub db: &'a Path,
    /// The `[server]` table's lines; `None`: no `[server]` table (every default).
    pub server: Option<&'a str>,
    /// The `[admin]` table (and its subtables), whole (`Some("")`: none, so the defaults);
    /// `None`: the admin interface off (its default port, 8080, would collide between
    /// parallel tests).
    pub admin: Option<&'a str>,
    /// The source's resources.
    pub resources: &'a [Resource],
    /// Lines added to the source's table (sync_interval, request_timeout, ...).
    pub source_keys: &'a str,
}

impl<'a> SiteConfig<'a> {
    /// Four resources, `[server]` and `[admin]` at their defaults (admin off), no extra
    /// source keys.
    pub fn new(base_url: &'a str, db: &'a Path) -> SiteConfig<'a> {
        SiteConfig {
            base_url,
            db,
            server: None,
            admin: None,
            resources: &FOUR_RESOURCES,
            source_keys: "",
        }
    }

    /// The TOML text.
    pub fn render(&self) -> String {
        let mut s = String::new();
        if let Some(server) = self.server {
            let _ = writeln!(s, "[server]\n{server}\n");
        }
        match self.admin {
            Some(admin) => {
                let _ = writeln!(s, "{admin}");
            }
            None => s.push_str("[admin]\nenabled = false\n\n"),
        }
        let names: Vec<String> = self
            .resources
            .iter()
            .map(|(r, _, _)| format!("{r:?}"))
            .collect();
        let modalities: Vec<String> = self
            .resources
            .iter()
            .map(|(r, m, _)| format!("{r:?} = {m:?}"))
            .collect();
        let stations: Vec<String> = self
            .resources
            .iter()
            .map(|(r, _, ae)| format!("{r:?} = {ae:?}"))
            .collect();
        let _ = write!(
            s,
            r#"[store]
path = "{db}"

[site]
timezone = "America/Edmonton"

[[sources]]
name = "calpendo"
type = "calpendo"
base_url = "{base_url}"
resources = [{names}]
resource_modality_mapping = {{ {modalities} }}
station_aet_mapping = {{ {stations} }}
{source_keys}

[sources.field_mapping]
patient_name = {{ source_field = "title", _extract = {{ pattern = "^[A-Za-z0-9]+_([^_]+)_(.+)$", template = "$1^$2" }} }}
"#,
            db = self.db.display(),
            base_url = self.base_url,
            names = names.join(", "),
            modalities = modalities.join(", "),
            stations = stations.join(", "),
            source_keys = self.source_keys,
        );
        s
    }

    /// Writes it to `path`; returns `path`.
    pub fn write(&self, path: &Path) -> PathBuf {
        std::fs::write(path, self.render()).expect("write config");
        path.to_path_buf()
    }
}
