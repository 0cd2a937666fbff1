//! `mwlbridge`: the command-line entry point.
//!
//! Exit codes: 0 success, 1 runtime failure (a sync failed, the database is unusable),
//! 2 usage or configuration error.

mod cli;
mod commands;
mod config;
mod config_reader;
mod export;
mod logging;
mod metrics;
mod serve;
mod sources;
mod sync_control;
mod sync_worker;
mod token_cmd;
mod worklist_view;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;

/// mimalloc returns freed memory to the system promptly, which keeps the server's resident
/// memory close to what it uses (built without transparent huge pages: see
/// docs/benchmarks.md, Memory). SQLite allocates through glibc's malloc, not mimalloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How a command failed, which decides the exit code.
#[derive(Debug)]
pub enum Failure {
    /// Bad usage or configuration: exit 2.
    Usage(anyhow::Error),
    /// Something failed while running: exit 1.
    Runtime(anyhow::Error),
}

impl Failure {
    fn code(&self) -> u8 {
        match self {
            Failure::Usage(_) => 2,
            Failure::Runtime(_) => 1,
        }
    }
}

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
    match runtime.block_on(commands::run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            let (Failure::Usage(e) | Failure::Runtime(e)) = &failure;
            eprintln!("error: {e:#}");
            ExitCode::from(failure.code())
        }
    }
}
