//! `mwlbridge serve` as a service meets it: signals other than the stop signals.

mod common;

use std::time::Duration;

use common::booking;
use common::harness::{find_all, runtime, start_fake, write_config};
use common::scp::echoscu;
use common::serve::{Serve, ServeOpts};

/// Sends SIGHUP to `serve` and waits until its log holds `needle` `count` times.
fn hang_up(serve: &Serve, needle: &str, count: usize) {
    let pid = serve.pid().expect("running");
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while serve.log().matches(needle).count() < count {
        assert!(std::time::Instant::now() < deadline, "{}", serve.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The patient IDs offered to a console, sorted.
fn subjects(port: u16) -> Vec<String> {
    find_all(port).into_iter().map(|item| item.1).collect()
}

/// SIGHUP (`systemctl reload`, `kill -HUP`) used to end the process silently: it now
/// reloads the configuration. A source pointed at another server syncs from it at once;
/// a listener change is named as waiting for a restart; a broken file is refused with its
/// problems and the running configuration stays. The server answers throughout.
#[test]
fn sighup_reloads_the_sources_and_the_server_keeps_serving() {
    let rt = runtime();
    let first = start_fake(
        &rt,
        "secret",
        vec![booking(1, "SUB001_Doe", "3T Diagnostic", 9)],
    );
    let second = start_fake(
        &rt,
        "secret",
        vec![booking(7, "SUB777_Roe", "3T Diagnostic", 10)],
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("worklist.db");
    let path = dir.path().join("c.toml");
    let config = write_config(&path, &first.base_url(), &db, "");
    let mut serve = Serve::start(&config, &db, &ServeOpts::synced());
    assert_eq!(subjects(serve.port), ["SUB001"]);

    // The source now reads the second server; a [server] limit changes too.
    let text = std::fs::read_to_string(&config).expect("config");
    let moved = text.replace(&first.base_url(), &second.base_url());
    assert_ne!(moved, text);
    let moved = format!("{moved}\n").replacen("[server]\n", "[server]\nmax_associations = 7\n", 1);
    std::fs::write(&config, &moved).expect("write");
    hang_up(&serve, "configuration reloaded", 1);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while subjects(serve.port) != ["SUB777"] {
        assert!(std::time::Instant::now() < deadline, "{}", serve.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = serve.log();
    assert!(
        log.contains("apply only after a restart") && log.contains("[server]"),
        "{log}"
    );
    assert!(
        echoscu(serve.port, "CONSOLE", "MWLBRIDGE").success(),
        "the port stays"
    );

    // A broken file: every problem logged, nothing changes.
    std::fs::write(&config, "[server\nport = \"x\"\n").expect("write");
    hang_up(&serve, "configuration not reloaded", 1);
    assert_eq!(subjects(serve.port), ["SUB777"]);
    assert!(serve.log().contains("c.toml"), "{}", serve.log());

    // Fixed again: reloaded again.
    std::fs::write(&config, &moved).expect("write");
    hang_up(&serve, "configuration reloaded", 2);
    assert!(
        echoscu(serve.port, "CONSOLE", "MWLBRIDGE").success(),
        "{}",
        serve.log()
    );
    assert_eq!(serve.stop(), Some(0), "SIGTERM still stops it cleanly");
}
