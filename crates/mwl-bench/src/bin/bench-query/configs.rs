//! The configs the servers are loaded with: mwlbridge's TOML and Pylantir's JSON, one
//! Calpendo source per fake, and Pylantir's launcher.

use std::fmt::Write as _;
use std::path::Path;

use crate::args::{AE, BUSY_STATION};

/// Splits `n` bookings over ⌈n / per_source⌉ sources.
pub(crate) fn split(n: usize, per_source: usize) -> Vec<usize> {
    let groups = n.div_ceil(per_source.max(1)).max(1);
    (0..groups)
        .map(|g| n / groups + usize::from(g < n % groups))
        .collect()
}

pub(crate) fn mwlbridge_config(dir: &Path, urls: &[String], enabled: bool) -> String {
    let mut s = format!(
        r#"# Written by bench-query.
[server]
ae_title = "{AE}"
max_associations = 64
max_associations_per_peer = 64
max_associations_per_ae = 64

[admin]
enabled = false

[store]
path = "{db}"
retention_days = 30

[site]
timezone = "America/Edmonton"
"#,
        db = dir.join("worklist.db").display()
    );
    for (i, url) in urls.iter().enumerate() {
        let g = i + 1;
        let _ = write!(
            s,
            r#"
[[sources]]
name = "calpendo{g:02}"
type = "calpendo"
enabled = {enabled}
base_url = "{url}"
resources = ["3T", "EEG", "Mock"]
resource_modality_mapping = {{ "3T" = "MR", "EEG" = "EEG", "Mock" = "OT" }}
station_aet_mapping = {{ "3T Busy" = "{BUSY_STATION}", "3T Diagnostic" = "MRI_DIAG_{g:02}", "3T Research" = "MRI_RES_{g:02}", "EEG" = "EEG_{g:02}", "Mock" = "MOCK_{g:02}" }}
window_future_days = 366
max_workers = 32
sync_interval = 86400
sync_deadline = 3600

[sources.field_mapping]
patient_id = {{ source_field = "title", _extract = {{ pattern = "^([A-Za-z0-9]+)_", group = 1 }} }}
patient_name = {{ source_field = "title", _extract = {{ pattern = "^[A-Za-z0-9]+_([^_]+)_(.+)$", template = "$1^$2" }} }}
"#
        );
    }
    s
}

pub(crate) fn pylantir_config(dir: &Path, urls: &[String]) -> anyhow::Result<String> {
    let sources: Vec<serde_json::Value> = urls
        .iter()
        .enumerate()
        .map(|(i, url)| {
            serde_json::json!({
                "name": format!("calpendo{:02}", i + 1),
                "type": "calpendo",
                "enabled": true,
                "sync_interval": 86400,
                "config": {
                    "base_url": url,
                    "api_path": "/webdav",
                    "resources": ["3T Busy", "3T Diagnostic", "3T Research", "EEG Lab Room A", "Mock Scanner"],
                    "timezone": "America/Edmonton",
                    "resource_modality_mapping": {"3T": "MR", "EEG": "EEG", "Mock": "OT"}
                },
                "field_mapping": {
                    "patient_id": {"source_field": "title", "_extract": {"pattern": "^([A-Za-z0-9]+)_", "group": 1}},
                    "patient_name": {"source_field": "title", "_extract": {"pattern": "^[A-Za-z0-9]+_(.+)$", "group": 1}},
                    "study_description": {"source_field": "properties.project.formattedName", "_extract": {"pattern": "^([^(]+)", "group": 1}},
                    "accession_number": "id"
                }
            })
        })
        .collect();
    Ok(serde_json::to_string_pretty(&serde_json::json!({
        "db_path": dir.join("pylantir.db"),
        "db_echo": "False",
        "allowed_aet": [],
        "operation_interval": {"start_time": [0, 0], "end_time": [23, 59]},
        "data_sources": sources,
    }))?)
}

/// Starts Pylantir's `main()` with one change: the Calpendo fetch window (Pylantir's
/// rolling window ends 24 h after now, so it would never see the synthetic bookings of
/// the following months) spans from yesterday to ten years ahead.
pub(crate) const PYLANTIR_LAUNCHER: &str = r#"# Written by bench-query: `pylantir start` with a wider Calpendo fetch window.
import sys
from datetime import datetime, time, timedelta
from pylantir.data_sources import calpendo_plugin

def _window(self, now, interval):
    day = now.date()
    start = self._timezone.localize(datetime.combine(day - timedelta(days=1), time.min))
    end = self._timezone.localize(datetime.combine(day + timedelta(days=3660), time.min))
    return start, end

calpendo_plugin.CalendoPlugin._calculate_fetch_window = _window
from pylantir.cli.run import main
sys.argv[0] = "pylantir"
main()
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_sizes() {
        assert_eq!(split(1000, 10_000), vec![1000]);
        assert_eq!(split(10_000, 10_000), vec![10_000]);
        assert_eq!(split(100_000, 10_000), vec![10_000; 10]);
        assert_eq!(split(25_001, 10_000), vec![8334, 8334, 8333]);
    }

    #[test]
    fn mwlbridge_config_is_valid_toml_with_one_calpendo_source_per_fake() {
        let urls = [
            "http://127.0.0.1:1".to_string(),
            "http://127.0.0.1:2".to_string(),
        ];
        let text = mwlbridge_config(Path::new("/tmp/bench"), &urls, true);
        let value: toml::Table = toml::from_str(&text).unwrap();
        let sources = value["sources"].as_array().unwrap();
        assert_eq!(sources.len(), 2);
        for (source, url) in sources.iter().zip(&urls) {
            assert_eq!(source["type"].as_str(), Some("calpendo"));
            assert_eq!(source["base_url"].as_str(), Some(url.as_str()));
        }
    }
}
