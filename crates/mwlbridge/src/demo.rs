//! `mwlbridge demo`: a fake Calpendo with a day of sample bookings, a config and database
//! in a temporary directory, and [`serve::run`](crate::serve::run) on 127.0.0.1, with a
//! banner saying how to query it. The only user of the fake Calpendo in the binary.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::{Context, anyhow};
use calpendo_fake::{FakeCalpendo, FakeConfig, SAMPLE_FIXTURE, load_fixture};
use jiff::Timestamp;

use crate::failure::Failure;
use crate::load::load;
use crate::serve::{self, SHUTTING_DOWN};
use crate::shutdown::{OnHangup, stop_on_signal};

/// The demo: a fake Calpendo with a day of sample bookings, a temporary database, and
/// the server on 127.0.0.1:`port` (and the admin interface on `admin_port`; 0: off).
pub async fn run(port: u16, admin_port: u16) -> Result<(), Failure> {
    let runtime = |e: anyhow::Error| Failure::Runtime(e);
    let zone = worklist_store::ZoneDb::bundled()
        .get(worklist_store::DEFAULT_TIMEZONE)
        .map_err(|e| runtime(e.into()))?;
    let today = Timestamp::now().to_zoned_datetime(zone).date();
    let bookings = load_fixture(SAMPLE_FIXTURE, today)
        .context("the built-in sample bookings")
        .map_err(runtime)?;
    let fake_config = FakeConfig::default();
    let (user, password) = (fake_config.username.clone(), fake_config.password.clone());
    let fake = FakeCalpendo::start(fake_config)
        .await
        .context("starting the fake Calpendo")
        .map_err(runtime)?;
    fake.set_bookings(bookings);
    let dir = tempfile::Builder::new()
        .prefix("mwlbridge-demo-")
        .tempdir()
        .context("creating a temporary directory")
        .map_err(runtime)?;
    let config_path = dir.path().join("mwlbridge.toml");
    let admin_port = demo_admin_port(admin_port);
    std::fs::write(
        &config_path,
        demo_config(&fake.base_url(), dir.path(), port, admin_port),
    )
    .context("writing the demo config")
    .map_err(runtime)?;
    // A write token for the status page, made before the server starts.
    let token = if admin_port == 0 {
        None
    } else {
        let store = worklist_store::Store::open(dir.path().join("worklist.db"))
            .map_err(|e| runtime(e.into()))?;
        let created = admin_http::tokens::create_token(
            &store,
            "demo",
            worklist_store::TokenRole::Write,
            Timestamp::now(),
        )
        .map_err(|e| runtime(e.into()))?;
        Some(created.token)
    };
    // The fake's credentials go straight to the source, not into the environment.
    let env = move |name: &str| match name {
        "CALPENDO_USERNAME" => Some(user.clone()),
        "CALPENDO_PASSWORD" => Some(password.clone()),
        _ => None,
    };
    let loaded = load(&config_path, &env)?;
    let stop = stop_on_signal(SHUTTING_DOWN, OnHangup::Ignore);
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let server = tokio::spawn(serve::run(loaded, stop, Some(ready_tx), None));
    if let Ok((addr, admin)) = ready_rx.await {
        println!("{}", demo_banner(addr, &fake.base_url(), dir.path(), today));
        if let (Some(admin), Some(token)) = (admin, token) {
            let date = worklist_store::format_da(today);
            println!(
                "\nAdmin interface: http://{admin}/  (sign in with the demo's write token)\n  {token}\n\
                 REST API: curl -H \"Authorization: Bearer {token}\" http://{admin}/api/v1/worklist?date=today\n\
                 DICOMweb worklist search (PS3.18): curl -H \"Authorization: Bearer {token}\" \
                 \"http://{admin}/dicomweb/modality-scheduled-procedure-steps?00400100.00400002={date}&limit=20\""
            );
        }
    }
    let result = server
        .await
        .map_err(|e| Failure::Runtime(anyhow!("the demo server failed: {e}")))?;
    fake.shutdown().await;
    result
}

/// The demo's admin port: the one asked for, or a free one when it is taken (8080 often
/// is on a developer's machine); 0 stays 0 (off).
fn demo_admin_port(asked: u16) -> u16 {
    if asked == 0 || std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, asked)).is_ok() {
        return asked;
    }
    match std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|l| l.local_addr()) {
        Ok(free) => {
            eprintln!(
                "port {asked} is taken; the admin interface uses {} instead",
                free.port()
            );
            free.port()
        }
        Err(_) => asked,
    }
}

fn demo_config(base_url: &str, dir: &std::path::Path, port: u16, admin_port: u16) -> String {
    format!(
        r#"# Written by `mwlbridge demo`.
[server]
ae_title = "MWLBRIDGE"
bind = "127.0.0.1"
port = {port}

[admin]
enabled = {admin_enabled}
bind = "127.0.0.1"
port = {admin_port_or_default}

[store]
path = "{db}"

[site]
timezone = "America/Edmonton"

[[sources]]
name = "calpendo"
type = "calpendo"
base_url = "{base_url}"
resources = ["3T", "EEG", "Mock"]
resource_modality_mapping = {{ "3T" = "MR", "EEG" = "EEG", "Mock" = "OT" }}
station_aet_mapping = {{ "3T Diagnostic" = "MRI_3T_DIAG", "3T Research" = "MRI_3T_RES", "EEG" = "EEG_LAB", "Mock" = "MOCK" }}
sync_interval = 30

[sources.field_mapping]
patient_name = {{ source_field = "title", _extract = {{ pattern = "^[A-Za-z0-9]+_([^_]+)_(.+)$", template = "$1^$2" }} }}
"#,
        db = dir.join("worklist.db").display(),
        admin_enabled = admin_port != 0,
        admin_port_or_default = if admin_port == 0 { 8080 } else { admin_port },
    )
}

fn demo_banner(
    addr: SocketAddr,
    fake_url: &str,
    dir: &std::path::Path,
    today: jiff::civil::Date,
) -> String {
    let ip = if addr.ip() == IpAddr::V4(Ipv4Addr::UNSPECIFIED) {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        addr.ip()
    };
    let day = worklist_store::format_da(today);
    format!(
        r#"
mwlbridge demo is running: DICOM worklist server MWLBRIDGE on {ip}:{port}
  fake Calpendo with a day of sample bookings: {fake_url}
  database and config: {dir}

Today's worklist, as a console sees it (DCMTK: apt-get install dcmtk):

  findscu -v -W -aet CONSOLE -aec MWLBRIDGE \
    -k PatientName -k PatientID -k AccessionNumber -k StudyInstanceUID \
    -k "ScheduledProcedureStepSequence[0].ScheduledStationAETitle" \
    -k "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate={day}" \
    -k "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartTime" \
    -k "ScheduledProcedureStepSequence[0].Modality" \
    -k "ScheduledProcedureStepSequence[0].ScheduledProcedureStepDescription" \
    {ip} {port}

Only one scanner's list: add -k "ScheduledProcedureStepSequence[0].ScheduledStationAETitle=MRI_3T_DIAG"
The stored worklist: mwlbridge worklist --config {dir}/mwlbridge.toml
Stop with Ctrl-C."#,
        port = addr.port(),
        dir = dir.display(),
    )
}
