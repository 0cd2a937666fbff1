//! Shared helpers of the end-to-end tests: the real `mwlbridge` binary, the fake Calpendo
//! over real HTTP, and DCMTK's tools.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use calpendo_fake::{BookingShape, FakeBooking, FakeCalpendo, FakeConfig};
use jiff::civil::{Date, DateTime};
use worklist_store::ZoneDb;

/// The binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mwlbridge"))
}

/// Today in Edmonton (the site zone of these tests), from the bundled tzdata.
pub fn today() -> Date {
    let tz = ZoneDb::bundled().get("America/Edmonton").expect("zone");
    jiff::Timestamp::now().to_zoned_datetime(tz).date()
}

/// A booking of the fake, today at `hour`, one hour long.
pub fn booking(id: i64, title: &str, resource: &str, hour: i8) -> FakeBooking {
    let start: DateTime = today().at(hour, 0, 0, 0);
    FakeBooking {
        id,
        start,
        end: start + jiff::Span::new().hours(1),
        title: title.to_string(),
        status: "Approved".to_string(),
        biskit_type: "MRIScan".to_string(),
        resource: resource.to_string(),
        project: Some("BRISKP (Brain network models)".to_string()),
        booker: Some("Dr Alice Example".to_string()),
        owner: None,
        operator: Some("Jane Smith".to_string()),
        description: None,
        shape: BookingShape::Classic,
    }
}

/// A fake Calpendo holding `bookings`.
pub async fn fake(bookings: Vec<FakeBooking>) -> FakeCalpendo {
    let fake = FakeCalpendo::start(FakeConfig::default())
        .await
        .expect("fake Calpendo starts");
    fake.set_bookings(bookings);
    fake
}

/// A TOML config for one Calpendo source at `base_url` with the [`config::TWO_RESOURCES`]
/// (the mock scanner is not configured), `[server]` and `[admin]` at their defaults, its
/// database in `dir`.
pub fn write_config(dir: &Path, base_url: &str, extra_source_keys: &str) -> PathBuf {
    let db = dir.join("worklist.db");
    // `MWLBRIDGE_TEST_FETCH_MODE=details` runs a suite's Calpendo cases through the
    // per-booking details path (issue 14); without it they run in the default `auto`.
    let mode = match std::env::var("MWLBRIDGE_TEST_FETCH_MODE") {
        Ok(m) if !extra_source_keys.contains("fetch_mode") => format!("fetch_mode = \"{m}\"\n"),
        _ => String::new(),
    };
    let source_keys = format!("sync_deadline = 10\nrequest_timeout = 5\n{mode}{extra_source_keys}");
    config::SiteConfig {
        admin: Some(""),
        resources: &config::TWO_RESOURCES,
        source_keys: &source_keys,
        ..config::SiteConfig::new(base_url, &db)
    }
    .write(&dir.join("mwlbridge.toml"))
}

/// Runs the binary with the fake's credentials in its environment.
pub fn run(args: &[&str]) -> Output {
    command(args).output().expect("mwlbridge runs")
}

/// The binary as a command, with credentials and a quiet log.
pub fn command(args: &[&str]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .env("CALPENDO_USERNAME", "mwlbridge")
        .env("CALPENDO_PASSWORD", "secret")
        .env_remove("CALPENDO_API_URL")
        .env_remove("MWLBRIDGE_CONFIG")
        .env("MWLBRIDGE_LOG", "warn");
    cmd
}

/// Runs the binary off the async runtime (it talks to the fake served by this process).
pub async fn run_async(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&refs)
    })
    .await
    .expect("join")
}

/// Stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub mod browser;
pub mod config;
pub mod dicom_client;
pub mod dicomweb;
pub mod harness;
pub mod http;
pub mod raw_pdu;
pub mod scp;
pub mod serve;
