//! `mwlbridge check-config`: loads a config as `serve` would (sources built, zone rules
//! read) and prints what it sets up, or every problem in it.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::Path;

use crate::config::ConfigFormat;
use crate::config_reader::{Location, Problem};
use crate::failure::Failure;
use crate::import_pylantir;
use crate::load::{DatabaseAccess, database_access, load};
use crate::sources;

/// Where the service reads its credentials (the unit's `EnvironmentFile`).
const CREDENTIALS_FILE: &str = "/etc/mwlbridge/credentials";

/// Checks the config at `path` and prints a summary of it.
///
/// An admin runs it in a shell, not as the service, whose unit loads the credentials
/// file: a data source's variable that is not set here (a user name, password, token or
/// API URL) is a warning that says where `serve` reads it, not a problem. When the config
/// has problems, they are reported with those variables among them, as `serve` would.
pub fn run(path: &Path) -> Result<(), Failure> {
    let unset = RefCell::new(BTreeSet::new());
    let stand_in = |name: &str| {
        sources::process_env(name).or_else(|| {
            unset.borrow_mut().insert(name.to_string());
            Some(stand_in_value(name))
        })
    };
    let loaded = match load(path, &stand_in) {
        Ok(loaded) => loaded,
        Err(failure) => return Err(load(path, &sources::process_env).err().unwrap_or(failure)),
    };
    let c = &loaded.config;
    let format = match c.format {
        ConfigFormat::Toml => "mwlbridge TOML",
        ConfigFormat::PylantirJson => "Pylantir JSON",
    };
    let mut warnings = loaded.warnings.clone();
    for name in unset.borrow().iter() {
        warnings.push(Problem::new(
            Location::Env(name.clone()),
            format!(
                "not set in this shell; `serve` and `sync` need it in their environment \
                 (the service reads it from {CREDENTIALS_FILE}, its unit's EnvironmentFile)"
            ),
        ));
    }
    let access = match database_access(&c.store.path) {
        DatabaseAccess::Writable => "exists, writable".to_string(),
        DatabaseAccess::WillCreate { missing_dir: None } => "created at first start".into(),
        DatabaseAccess::WillCreate {
            missing_dir: Some(dir),
        } => format!("created at first start, with {}", dir.display()),
        DatabaseAccess::Denied(why) => {
            warnings.push(Problem::new(
                store_key(c.format),
                format!("{why} (as this user; the service's user may differ)"),
            ));
            "not writable by this user".to_string()
        }
    };
    if let Some(text) = import_pylantir::pending_text(c, None) {
        warnings.push(Problem::new(store_key(c.format), text));
    }
    let n = warnings.len();
    match n {
        0 => println!("{}: OK ({format})", c.file.display()),
        _ => println!(
            "{}: usable, with {n} warning{} ({format})",
            c.file.display(),
            if n == 1 { "" } else { "s" }
        ),
    }
    for w in &warnings {
        println!("  warning: {w}");
    }
    println!(
        "  DICOM server: AE title {} on {}:{}{}",
        c.server.ae_title,
        c.server.bind,
        c.server.port,
        if c.server.allowed_calling_aets.is_empty() {
            String::new()
        } else {
            format!(
                ", calling AE titles allowed: {}",
                c.server.allowed_calling_aets.join(", ")
            )
        }
    );
    println!(
        "  database: {} ({access}; entries kept {} days after their step ends)",
        c.store.path.display(),
        c.store.retention_days
    );
    println!(
        "  site time zone: {} ({})",
        c.site.timezone,
        loaded.zones.describe()
    );
    if c.admin.enabled {
        let scheme = if c.admin.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let addr = std::net::SocketAddr::new(c.admin.bind, c.admin.port);
        println!("  admin interface: {scheme}://{addr}/ (tokens: mwlbridge token create)");
    } else {
        println!("  admin interface: off");
    }
    if c.sources.is_empty() {
        println!("  no data sources: the worklist holds only what is already stored");
    }
    for s in &c.sources {
        println!(
            "  source {:?}: {}, {}{}",
            s.name,
            s.kind.name(),
            if s.enabled { "enabled" } else { "disabled" },
            if s.written_as.is_empty() {
                ""
            } else {
                " (Pylantir's legacy redcap2wl form)"
            }
        );
    }
    if !c.ignored_keys.is_empty() {
        println!(
            "  ignored (Pylantir keys mwlbridge does not use): {}",
            c.ignored_keys.join(", ")
        );
    }
    Ok(())
}

/// The key that names the database file in a config of `format`.
fn store_key(format: ConfigFormat) -> &'static str {
    match format {
        ConfigFormat::Toml => "store.path",
        ConfigFormat::PylantirJson => "db_path",
    }
}

/// What an unset variable reads as while the config is checked: a URL for the API URL
/// variables (so the rest of the source's settings are checked), else a placeholder.
fn stand_in_value(name: &str) -> String {
    if name.ends_with("_URL") {
        "https://unset.invalid/".to_string()
    } else {
        "unset".to_string()
    }
}
