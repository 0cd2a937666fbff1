//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Version line: crate version and the time zone rules compiled in.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (bundled tzdata ",
    env!("MWLBRIDGE_TZDATA_VERSION"),
    ")"
);

/// mwlbridge: a DICOM Modality Worklist server fed from Calpendo bookings.
///
/// Scanner consoles query it for their worklist (MWL C-FIND); it answers from the
/// bookings it copies from Calpendo into a local SQLite database.
#[derive(Debug, Parser)]
#[command(name = "mwlbridge", version = LONG_VERSION, propagate_version = true)]
pub struct Cli {
    /// Least important log messages shown: error, warn, info, debug or trace
    /// (or a tracing filter such as "info,calpendo_source=debug").
    #[arg(long, global = true, default_value = "info", env = "MWLBRIDGE_LOG")]
    pub log_level: String,

    /// Log line format: text for people, json for log collectors.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The config file argument shared by most commands.
#[derive(Debug, Args)]
pub struct ConfigArg {
    /// Configuration file: mwlbridge TOML (.toml) or a Pylantir JSON config (.json).
    #[arg(
        long,
        short,
        env = "MWLBRIDGE_CONFIG",
        default_value = "/etc/mwlbridge/mwlbridge.toml"
    )]
    pub config: PathBuf,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the DICOM worklist server with its sync worker (the service's command).
    ///
    /// Answers C-ECHO and Modality Worklist C-FIND, and syncs every enabled source at
    /// start and every sync_interval. Stops cleanly on Ctrl-C or SIGTERM: responses in
    /// flight and the current sync finish first.
    Serve {
        /// The configuration.
        #[command(flatten)]
        config: ConfigArg,
        /// TCP port (overrides server.port).
        #[arg(long)]
        port: Option<u16>,
        /// Address to listen on (overrides server.bind).
        #[arg(long)]
        bind: Option<std::net::IpAddr>,
        /// Our AE title (overrides server.ae_title).
        #[arg(long)]
        ae_title: Option<String>,
    },

    /// Pylantir's `start`, for service units written for Pylantir: runs `serve` with
    /// Pylantir's flags and defaults.
    ///
    /// Listens on --ip (default 0.0.0.0) and --port (default 4242, Pylantir's), whatever
    /// the config's server.bind and server.port say; --AEtitle overrides server.ae_title.
    #[command(name = "start")]
    Start(PylantirStart),

    /// Try mwlbridge: a fake Calpendo with a day of sample bookings, a database in a
    /// temporary directory, the sync worker and the DICOM server on 127.0.0.1.
    Demo {
        /// TCP port of the DICOM server.
        #[arg(long, default_value_t = 11112)]
        port: u16,
        /// TCP port of the admin interface (status page and REST API); 0 turns it off.
        #[arg(long, default_value_t = 8080)]
        admin_port: u16,
    },

    /// Write the worklist as DICOM worklist files (.wl) that DCMTK wlmscpfs or Orthanc's
    /// worklist plugin serve as they are: one file per scheduled step offered to consoles
    /// (SCHEDULED and STARTED), plus wlmscpfs's lockfile.
    Export {
        /// The configuration.
        #[command(flatten)]
        config: ConfigArg,
        /// Directory to write into (created if missing). Files of earlier exports are
        /// replaced; other files are left alone.
        #[arg(long)]
        dir: std::path::PathBuf,
    },

    /// Check a configuration file and report every problem in it, with where it is.
    CheckConfig(ConfigArg),

    /// Fetch bookings from every enabled data source into the worklist database.
    ///
    /// With --once: one cycle per source, one summary line each; exits 1 if any failed.
    /// Without: keeps syncing every sync_interval until stopped (Ctrl-C or SIGTERM).
    Sync {
        /// The configuration.
        #[command(flatten)]
        config: ConfigArg,
        /// Run one cycle of each source and exit.
        #[arg(long)]
        once: bool,
        /// Apply this one cycle even when it discontinues or deletes more than
        /// store.max_discontinue_fraction of a source's entries (after checking that the
        /// source really changed that much). Only with --once.
        #[arg(long, requires = "once", conflicts_with = "dry_run")]
        accept_mass_change: bool,
        /// Fetch and map every enabled source once and print what a sync would insert,
        /// update, discontinue, delete or reject, with subject IDs and names (on this
        /// terminal only, never in the log); write nothing. Implies --once.
        #[arg(long)]
        dry_run: bool,
        /// With --dry-run: print JSON instead of a table.
        #[arg(long, requires = "dry_run")]
        json: bool,
    },

    /// Manage the API tokens of the admin HTTP interface (status page and REST API).
    ///
    /// A token is printed once, when it is created; only a hash of it is stored.
    Token {
        /// What to do.
        #[command(subcommand)]
        action: TokenAction,
    },

    /// Show the worklist as consoles would see it (all statuses, with who set them).
    Worklist {
        /// The configuration.
        #[command(flatten)]
        config: ConfigArg,
        /// Day to show: "today", "tomorrow", "all" or YYYYMMDD (site time).
        #[arg(long, default_value = "today")]
        date: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },

    /// Import the worklist rows of a Pylantir database (its table worklist_items).
    ///
    /// A row of a configured source becomes that source's entry, so its next sync updates
    /// it instead of adding a twin; any other row (added through Pylantir's API) becomes a
    /// manual entry. Statuses Pylantir's MPPS set are kept. Each row is imported once:
    /// running it again changes nothing.
    #[command(name = "import-pylantir")]
    ImportPylantir {
        /// The configuration.
        #[command(flatten)]
        config: ConfigArg,
        /// The Pylantir database (default: the configured database, which is Pylantir's
        /// when the config is Pylantir's).
        #[arg(long)]
        from: Option<PathBuf>,
    },
}

/// The flags of Pylantir's `pylantir start`, spelled as Pylantir spells them.
#[derive(Debug, Args)]
pub struct PylantirStart {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    pub ip: std::net::IpAddr,
    /// TCP port.
    #[arg(long, default_value_t = PYLANTIR_PORT)]
    pub port: u16,
    /// Our AE title (default: server.ae_title of the config).
    #[arg(long = "AEtitle")]
    pub ae_title: Option<String>,
    /// The configuration: a Pylantir JSON config (or mwlbridge TOML).
    #[arg(
        long = "pylantir_config",
        env = "MWLBRIDGE_CONFIG",
        default_value = "/etc/mwlbridge/mwlbridge.toml"
    )]
    pub config: PathBuf,
}

/// The DICOM port `pylantir start` listens on by default.
pub const PYLANTIR_PORT: u16 = 4242;

/// What the `token` command does.
#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Create a token and print it (once; it cannot be shown again).
    Create {
        /// The configuration (for the database's path).
        #[command(flatten)]
        config: ConfigArg,
        /// A name for it, e.g. who or what uses it (letters, digits, '-', '_', '.').
        #[arg(long)]
        name: String,
        /// `read`: worklist, sync runs, status page; `write`: also manual entries, status
        /// overrides and "sync now".
        #[arg(long, value_enum)]
        role: RoleArg,
    },
    /// Revoke the token with this name; it stops working at once.
    Revoke {
        /// The configuration (for the database's path).
        #[command(flatten)]
        config: ConfigArg,
        /// The token's name.
        name: String,
    },
    /// List the tokens (names, roles, dates; never the secrets).
    List {
        /// The configuration (for the database's path).
        #[command(flatten)]
        config: ConfigArg,
    },
}

/// A token's role on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    /// Read only.
    Read,
    /// Read and change.
    Write,
}
