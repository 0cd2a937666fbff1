//! `mwlbridge`: the command-line entry point.
//!
//! Exit codes: 0 success, 1 runtime failure (a sync failed, the database is unusable),
//! 2 usage or configuration error.
//!
//! # Modules
//!
//! Each command has its module; they share the modules below them and never each other
//! (only `demo` runs `serve`'s [`serve::run`]):
//!
//! - [`cli`]: the command line (clap).
//! - commands: [`serve`] (DICOM server + sync worker + admin interface; also Pylantir's
//!   `start`), [`demo`],
//!   [`sync_cmd`] (`sync`), [`check_config`], [`worklist_view`] (`worklist`), [`export`]
//!   (`.wl` files), [`token_cmd`] (`token`), [`import_pylantir`] (`import-pylantir`: a
//!   Pylantir database's rows, and the warning while some are not imported).
//! - [`load`]: from a config file to what a command runs on: config, zone rules, built
//!   sources, the site's zone, the store, the response character set.
//! - [`config`] and [`config_reader`]: the config file (TOML or Pylantir JSON) and its
//!   problems; [`sources`]: the data sources built from it.
//! - [`sync_worker`]: the sync cycles and their schedule; [`sync_control`]: "sync now"
//!   from the admin interface into the worker.
//! - [`metrics`]: the Prometheus registry; [`logging`]: log output; [`shutdown`]: the stop
//!   flag that signals turn true; [`failure`]: usage or runtime failure → exit code.
//!
//! # Life of `mwlbridge serve`
//!
//! [`main`] parses the command line, sets up [`logging`] and dispatches to
//! [`serve::serve`]. That [`load`]s the config (reporting every problem at once, exit 2),
//! applies `--port`/`--bind`/`--ae-title`, and arms [`shutdown::stop_on_signal`]. Then
//! [`serve::run`] opens the store, binds the DICOM port, builds the [`metrics`], hands
//! [`sync_control::WorkerControl`] and the store to the admin interface (`admin-http`,
//! when `[admin]` enables it), spawns the `mwl-scp` server, and runs
//! [`sync_worker::run_forever`]: each source's first cycle at once, then one per
//! `sync_interval` or per "sync now". When the stop flag turns true, the server finishes
//! the responses in flight, the worker its reconcile, and `serve` returns.

mod check_config;
mod cli;
mod config;
mod config_reader;
mod demo;
mod dry_run;
mod export;
mod failure;
mod import_pylantir;
mod load;
mod logging;
mod metrics;
mod reload;
mod serve;
mod shutdown;
mod sources;
mod sync_cmd;
mod sync_control;
mod sync_worker;
mod tidy;
mod token_cmd;
mod worklist_view;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::failure::Failure;

/// mimalloc returns freed memory to the system promptly, which keeps the server's resident
/// memory close to what it uses (built without transparent huge pages: see
/// docs/benchmarks.md, Memory). SQLite allocates through glibc's malloc, not mimalloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = logging::init(&cli.log_level, cli.log_format) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(dispatch(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {:#}", failure.error());
            ExitCode::from(failure.code())
        }
    }
}

/// Runs one subcommand.
async fn dispatch(command: Command) -> Result<(), Failure> {
    match command {
        Command::CheckConfig(c) => check_config::run(&c.config),
        Command::Serve {
            config,
            port,
            bind,
            ae_title,
        } => {
            let overrides = serve::Overrides {
                port,
                bind,
                ae_title,
            };
            serve::serve(&config.config, overrides).await
        }
        Command::Start(start) => {
            let overrides = serve::Overrides {
                port: Some(start.port),
                bind: Some(start.ip),
                ae_title: start.ae_title,
            };
            serve::serve(&start.config, overrides).await
        }
        Command::Demo { port, admin_port } => demo::run(port, admin_port).await,
        Command::Export { config, dir } => export::run(&config.config, &dir).await,
        Command::Sync {
            config,
            dry_run: true,
            json,
            ..
        } => dry_run::run(&config.config, json).await,
        Command::Sync {
            config,
            once,
            accept_mass_change,
            ..
        } => sync_cmd::run(&config.config, once, accept_mass_change).await,
        Command::Worklist { config, date, json } => {
            worklist_view::run(&config.config, &date, json).await
        }
        Command::Token { action } => token_cmd::run(action).await,
        Command::ImportPylantir { config, from } => {
            import_pylantir::run(&config.config, from.as_deref()).await
        }
    }
}
