//! From a config file to what a command runs on: the validated config, its zone rules
//! and built sources ([`load`]), the site's zone, the store, and the character set of
//! DICOM answers. Each rule here is the one every command uses.

use std::path::Path;

use anyhow::anyhow;
use jiff::tz::TimeZone;
use mwl_scp::ResponseCharset;
use worklist_store::{Store, ZoneDb};

use crate::config::{Config, ConfigError};
use crate::config_reader::Problem;
use crate::failure::Failure;
use crate::sources;
use crate::sync_worker::ScheduledSource;

/// A config with its sources built.
pub struct Loaded {
    /// The validated configuration.
    pub config: Config,
    /// Zone rules.
    pub zones: ZoneDb,
    /// The enabled sources, built.
    pub sources: Vec<ScheduledSource>,
    /// The config's and its sources' warnings.
    pub warnings: Vec<Problem>,
}

impl Loaded {
    /// Logs every warning once, at WARN (`serve` and `sync` at start; `check-config`
    /// prints them instead). Keys and rule texts only: no value from the config.
    pub fn log_warnings(&self) {
        for w in &self.warnings {
            tracing::warn!(file = %self.config.file.display(), "config: {w}");
        }
        if !self.config.ignored_keys.is_empty() {
            tracing::warn!(
                keys = ?self.config.ignored_keys,
                "Pylantir config keys that mwlbridge does not use were ignored"
            );
        }
    }
}

/// Every problem of `err` and `extra`, as one usage failure.
pub fn report(err: &ConfigError, extra: Vec<Problem>) -> Failure {
    let mut all = err.problems.clone();
    all.extend(extra);
    Failure::Usage(anyhow!(
        "{}",
        ConfigError {
            file: err.file.clone(),
            problems: all,
            partial: None,
        }
    ))
}

/// The config file alone, without building its sources (for the commands that only need
/// the store: a source whose credentials are not in this shell's environment must not
/// stop them).
pub fn config_only(path: &Path) -> Result<Config, Failure> {
    Config::load(path).map_err(|e| report(&e, Vec::new()))
}

/// The zone rules of `site.tzdir`, or the bundled ones.
pub fn zones_of(config: &Config) -> Result<ZoneDb, Problem> {
    match &config.site.tzdir {
        Some(dir) => ZoneDb::from_dir(dir).map_err(|e| Problem {
            key: "site.tzdir".into(),
            message: e.to_string(),
        }),
        None => Ok(ZoneDb::bundled()),
    }
}

/// Loads a config file and builds its sources, or reports every problem in it.
pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Loaded, Failure> {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(err) => {
            // Check the sources of what could be read, to report everything in one run.
            let extra = match &err.partial {
                Some(partial) => sources::build_all(partial, env).err().unwrap_or_default(),
                None => Vec::new(),
            };
            return Err(report(&err, extra));
        }
    };
    let fail = |problems: Vec<Problem>| {
        report(
            &ConfigError {
                file: config.file.clone(),
                problems: Vec::new(),
                partial: None,
            },
            problems,
        )
    };
    let zones = zones_of(&config).map_err(|p| fail(vec![p]))?;
    let built = sources::build_all(&config, env).map_err(fail)?;
    let mut warnings = config.warnings.clone();
    warnings.extend(built.warnings);
    let sources = built
        .sources
        .into_iter()
        .map(|(cfg, source)| ScheduledSource {
            source,
            operation_interval: cfg.operation_interval,
        })
        .collect();
    Ok(Loaded {
        config,
        zones,
        sources,
        warnings,
    })
}

/// The site's zone, looked up in `zones`.
pub fn site_zone(config: &Config, zones: &ZoneDb) -> Result<TimeZone, Failure> {
    zones
        .get(&config.site.timezone)
        .map_err(|e| Failure::Usage(anyhow!("site.timezone: {e}")))
}

/// Opens the configured store. A missing directory is created (mode 0750, as Pylantir's
/// `~/Desktop/worklist.db` may need); the database file is made unreadable to others
/// (it holds subject names and IDs; SQLite gives its WAL and shared-memory files the
/// same mode).
pub fn open_store(config: &Config) -> Result<Store, Failure> {
    let path = &config.store.path;
    let keys = || format!("store.path / db_path in {}", config.file.display());
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
        && !parent.is_dir()
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o750)
            .create(parent)
            .map_err(|e| {
                Failure::Runtime(anyhow!(
                    "cannot create the database directory {} ({}): {e}",
                    parent.display(),
                    keys()
                ))
            })?;
        tracing::info!(directory = %parent.display(), "created the database directory");
    }
    if let DatabaseAccess::Denied(why) = database_access(path) {
        use std::os::unix::fs::MetadataExt;
        let owner = std::fs::metadata(path)
            .map(|m| format!("; the file belongs to uid {}", m.uid()))
            .unwrap_or_default();
        return Err(Failure::Runtime(anyhow!(
            "{why}{owner} ({}): this process cannot write the database; give it to the \
             user the service runs as (chown), and run commands that open it as that user",
            keys()
        )));
    }
    let store = Store::open(path).map_err(|e| {
        Failure::Runtime(anyhow::Error::new(e).context(format!(
            "cannot open the database {} ({})",
            path.display(),
            keys()
        )))
    })?;
    private_to_owner_and_group(path)?;
    Ok(store)
}

/// Takes every permission away from others on the database file.
fn private_to_owner_and_group(path: &Path) -> Result<(), Failure> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| {
        Failure::Runtime(anyhow!("cannot read {}'s permissions: {e}", path.display()))
    })?;
    let mode = meta.permissions().mode();
    if mode & 0o007 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & !0o007)).map_err(
            |e| {
                Failure::Runtime(anyhow!(
                    "{} is readable by every user and cannot be made private: {e}",
                    path.display()
                ))
            },
        )?;
    }
    Ok(())
}

/// Whether the database can be opened for writing by the user running the command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseAccess {
    /// The file exists and this user may write it.
    Writable,
    /// The file does not exist; this user may create it (and its directory, named when
    /// missing).
    WillCreate {
        /// The directory that `serve` will create first.
        missing_dir: Option<std::path::PathBuf>,
    },
    /// This user cannot write or create it; why.
    Denied(String),
}

/// Checks, without changing anything, whether this user may write or create `path`
/// (for `check-config`: the service's user may differ).
pub fn database_access(path: &Path) -> DatabaseAccess {
    if path.exists() {
        return match std::fs::OpenOptions::new().append(true).open(path) {
            Ok(_) => DatabaseAccess::Writable,
            Err(e) => DatabaseAccess::Denied(format!("cannot write {}: {e}", path.display())),
        };
    }
    let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return DatabaseAccess::WillCreate { missing_dir: None };
    };
    let existing = dir.ancestors().find(|d| d.is_dir());
    let missing_dir = (!dir.is_dir()).then(|| dir.to_path_buf());
    match existing.map(|d| (d, directory_writable(d))) {
        Some((_, Ok(()))) | None => DatabaseAccess::WillCreate { missing_dir },
        Some((d, Err(e))) => {
            DatabaseAccess::Denied(format!("cannot create files in {}: {e}", d.display()))
        }
    }
}

/// Whether a file can be created in `dir` (tried with a file that is removed at once).
fn directory_writable(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".mwlbridge-check-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)?;
    std::fs::remove_file(&probe)
}

/// The character set of DICOM answers (`server.character_set`), for `serve` and
/// `export` alike: one the server cannot write is refused, never replaced.
pub fn response_charset(config: &Config) -> Result<ResponseCharset, Failure> {
    let term = &config.server.character_set;
    ResponseCharset::from_config_term(term)
        .ok_or_else(|| Failure::Usage(anyhow!("server.character_set {term:?} is not supported")))
}
