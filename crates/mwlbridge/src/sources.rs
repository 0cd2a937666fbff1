//! Builds the configured data sources from their settings.

use std::sync::Arc;

use calpendo_source::{Dialect, SiteContext};
use serde_json::Value;
use worklist_store::DataSource;

use crate::config::{Config, SourceConfig, SourceKind};
use crate::config_reader::{Location, Problem};

/// A configured source and the source built from it.
pub type BuiltSource = (SourceConfig, Arc<dyn DataSource>);

/// One source built from its settings, with the warnings they drew (problems that do
/// not stop it).
pub type WithWarnings = (Arc<dyn DataSource>, Vec<Problem>);

/// The sources a config runs, and the warnings their settings drew.
pub struct Built {
    /// The enabled sources.
    pub sources: Vec<BuiltSource>,
    /// Each source's warnings, at the source's key path.
    pub warnings: Vec<Problem>,
}

/// What a source takes from the site: its zone (when valid; a bad one is reported once,
/// as `site.timezone`), its zone rules, and whose defaults apply (Pylantir's for a
/// Pylantir JSON config).
fn site_context(config: &Config) -> SiteContext {
    let zone_valid = worklist_store::ZoneDb::bundled()
        .get(&config.site.timezone)
        .is_ok()
        || config.site.tzdir.is_some();
    let dialect = if config.format == crate::config::ConfigFormat::PylantirJson {
        Dialect::Pylantir
    } else {
        Dialect::Mwlbridge
    };
    SiteContext {
        timezone: zone_valid.then(|| config.site.timezone.clone()),
        tzdir: config.site.tzdir.clone(),
        dialect,
    }
}

/// Builds one source, with its warnings; its problems and warnings carry the source's key
/// path.
pub fn build(
    source: &SourceConfig,
    config: &Config,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<WithWarnings, Vec<Problem>> {
    let site = site_context(config);
    let within = |problems: Vec<Problem>| {
        problems
            .into_iter()
            .map(|p| written_as(p, source.written_as).within(&source.key))
            .collect::<Vec<_>>()
    };
    match source.kind {
        SourceKind::Calpendo => {
            let settings = Value::Object(source.settings.clone());
            let mut parsed =
                calpendo_source::parse_settings(&settings, env, &site).map_err(within)?;
            let warnings = within(std::mem::take(&mut parsed.warnings));
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
            Ok((Arc::new(built), warnings))
        }
        SourceKind::Redcap | SourceKind::RedcapConcussion => {
            let kind = match source.kind {
                SourceKind::RedcapConcussion => redcap_source::RedcapKind::Concussion,
                _ => redcap_source::RedcapKind::Redcap,
            };
            let settings = Value::Object(source.settings.clone());
            let mut parsed =
                redcap_source::parse_settings(&settings, kind, env, &site).map_err(within)?;
            let warnings = within(std::mem::take(&mut parsed.warnings));
            let built = redcap_source::RedcapSource::new(&source.name, parsed)
                .map_err(|e| within(vec![Problem::new("", e.to_string())]))?;
            Ok((Arc::new(built), warnings))
        }
    }
}

/// `p` at the key the file holds its setting under (see `SourceConfig::written_as`).
fn written_as(p: Problem, renames: &[(&str, &str)]) -> Problem {
    let Location::Key(key) = &p.key else {
        return p;
    };
    for (setting, in_file) in renames {
        if let Some(rest) = key.strip_prefix(setting)
            && (rest.is_empty() || rest.starts_with(['.', '[']))
        {
            return Problem::new(format!("{in_file}{rest}").as_str(), p.message);
        }
    }
    p
}

/// Builds every source of the config (enabled or not, so `check-config` checks them all);
/// returns the enabled ones with every source's warnings, or every problem found.
pub fn build_all(
    config: &Config,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Built, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut built = Built {
        sources: Vec::new(),
        warnings: Vec::new(),
    };
    for s in &config.sources {
        match build(s, config, env) {
            Ok((src, mut warnings)) => {
                built.warnings.append(&mut warnings);
                if s.enabled {
                    built.sources.push((s.clone(), src));
                }
            }
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn a_pylantir_json_config_gets_pylantir_defaults() {
        let text = include_str!("../../../config/pylantir-example.json");
        let c = Config::from_pylantir_json(text, Path::new("p.json")).expect("valid");
        assert_eq!(site_context(&c).dialect, Dialect::Pylantir);
        let toml =
            "[[sources]]\ntype = \"calpendo\"\nbase_url = \"https://x\"\nresources = [\"3T\"]\n";
        let c = Config::from_toml(toml, Path::new("c.toml")).expect("valid");
        assert_eq!(site_context(&c).dialect, Dialect::Mwlbridge);
    }
}
