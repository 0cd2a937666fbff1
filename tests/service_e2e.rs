//! `mwlbridge serve` as a service meets it: signals other than the stop signals.

mod common;

use std::time::Duration;

use common::booking;
use common::harness::{runtime, start_fake, write_config};
use common::scp::echoscu;
use common::serve::{Serve, ServeOpts};

/// SIGHUP (a closed terminal, `systemctl reload`, `kill -HUP`) used to end the process
/// silently; it is now logged and the server keeps answering.
#[test]
fn sighup_is_logged_and_the_server_keeps_serving() {
    let rt = runtime();
    let fake = start_fake(
        &rt,
        "secret",
        vec![booking(1, "SUB001_Doe", "3T Diagnostic", 9)],
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("worklist.db");
    let config = write_config(&dir.path().join("c.toml"), &fake.base_url(), &db, "");
    let mut serve = Serve::start(&config, &db, &ServeOpts::synced());
    let pid = serve.pid().expect("running");
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !serve.log().contains("SIGHUP received and ignored") {
        assert!(std::time::Instant::now() < deadline, "{}", serve.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        echoscu(serve.port, "CONSOLE", "MWLBRIDGE").success(),
        "{}",
        serve.log()
    );
    assert_eq!(serve.stop(), Some(0), "SIGTERM still stops it cleanly");
}
