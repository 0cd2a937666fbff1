//! Builds the configured data sources from their settings.

use std::sync::Arc;

use serde_json::Value;
use worklist_store::DataSource;

use crate::config::{Config, SourceConfig, SourceKind};
use crate::config_reader::Problem;

/// A configured source and the source built from it.
pub type BuiltSource = (SourceConfig, Arc<dyn DataSource>);

/// Builds one source; its problems carry the source's key path.
pub fn build(
    source: &SourceConfig,
    config: &Config,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Arc<dyn DataSource>, Vec<Problem>> {
    let mut settings = source.settings.clone();
    // The source's local times must be the site's: default its zone to the site's (when
    // that is a zone at all; a bad one is reported once, as site.timezone).
    let site_zone_valid = worklist_store::ZoneDb::bundled()
        .get(&config.site.timezone)
        .is_ok()
        || config.site.tzdir.is_some();
    if site_zone_valid {
        settings
            .entry("timezone".to_string())
            .or_insert_with(|| Value::from(config.site.timezone.clone()));
    }
    if let Some(dir) = &config.site.tzdir {
        settings
            .entry("tzdir".to_string())
            .or_insert_with(|| Value::from(dir.display().to_string()));
    }
    let at = |key: &str| {
        if key.is_empty() {
            source.key.clone()
        } else if key.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
            // An environment variable the source needs, not a key of the file.
            format!("{} (environment {key})", source.key)
        } else {
            format!("{}.{key}", source.key)
        }
    };
    match source.kind {
        SourceKind::Calpendo => {
            let parsed = calpendo_source::parse_config(&Value::Object(settings), env).map_err(
                |problems| {
                    problems
                        .into_iter()
                        .map(|p| Problem {
                            key: at(&p.key),
                            message: p.message,
                        })
                        .collect::<Vec<_>>()
                },
            )?;
            if site_zone_valid
                && parsed.timezone() != config.site.timezone
                && config.format == crate::config::ConfigFormat::Toml
            {
                return Err(vec![Problem {
                    key: at("timezone"),
                    message: format!(
                        "differs from site.timezone ({}); DICOM times are in the site's zone \
                         (set source_timezone for the zone of Calpendo's own times)",
                        config.site.timezone
                    ),
                }]);
            }
            let built =
                calpendo_source::CalpendoSource::new(&source.name, parsed).map_err(|e| {
                    vec![Problem {
                        key: source.key.clone(),
                        message: e.to_string(),
                    }]
                })?;
            Ok(Arc::new(built))
        }
    }
}

/// Builds every source of the config (enabled or not, so `check-config` checks them all);
/// returns the enabled ones, or every problem found.
pub fn build_all(
    config: &Config,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<BuiltSource>, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut built = Vec::new();
    for s in &config.sources {
        match build(s, config, env) {
            Ok(src) if s.enabled => built.push((s.clone(), src)),
            Ok(_) => {}
            Err(mut p) => problems.append(&mut p),
        }
    }
    if problems.is_empty() {
        Ok(built)
    } else {
        Err(problems)
    }
}

/// Reads the process environment.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}
