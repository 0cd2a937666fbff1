//! Builds the configured data sources from their settings.

use std::sync::Arc;

use calpendo_source::SiteContext;
use serde_json::Value;
use worklist_store::DataSource;

use crate::config::{Config, SourceConfig, SourceKind};
use crate::config_reader::Problem;

/// A configured source and the source built from it.
pub type BuiltSource = (SourceConfig, Arc<dyn DataSource>);

/// What a source takes from the site: its zone (when valid; a bad one is reported once,
/// as `site.timezone`) and its zone rules.
fn site_context(config: &Config) -> SiteContext {
    let zone_valid = worklist_store::ZoneDb::bundled()
        .get(&config.site.timezone)
        .is_ok()
        || config.site.tzdir.is_some();
    SiteContext {
        timezone: zone_valid.then(|| config.site.timezone.clone()),
        tzdir: config.site.tzdir.clone(),
    }
}

/// Builds one source; its problems carry the source's key path.
pub fn build(
    source: &SourceConfig,
    config: &Config,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Arc<dyn DataSource>, Vec<Problem>> {
    let site = site_context(config);
    let within = |problems: Vec<Problem>| {
        problems
            .into_iter()
            .map(|p| p.within(&source.key))
            .collect::<Vec<_>>()
    };
    match source.kind {
        SourceKind::Calpendo => {
            let settings = Value::Object(source.settings.clone());
            let parsed = calpendo_source::parse_settings(&settings, env, &site).map_err(within)?;
            if let Some(site_zone) = &site.timezone
                && parsed.timezone() != site_zone
                && config.format == crate::config::ConfigFormat::Toml
            {
                return Err(within(vec![Problem::new(
                    "timezone",
                    format!(
                        "differs from site.timezone ({site_zone}); DICOM times are in the \
                         site's zone (set source_timezone for the zone of Calpendo's own times)"
                    ),
                )]));
            }
            let built = calpendo_source::CalpendoSource::new(&source.name, parsed)
                .map_err(|e| within(vec![Problem::new("", e.to_string())]))?;
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
