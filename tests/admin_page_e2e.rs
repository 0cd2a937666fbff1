//! The admin status page in a real browser: the real `mwlbridge serve` fed by the fake
//! Calpendo, its `[admin]` interface on a free loopback port, a write token made with
//! `mwlbridge token create`, and headless Chromium driven through chromedriver
//! (WebDriver, `fantoccini`).
//!
//! Chromium and chromedriver are Debian's `chromium` and `chromium-driver` packages;
//! `scripts/test.sh` installs them. Without them this test fails (it does not skip).
//!
//! It leaves screenshots for people to look at: `target/admin-page.png` (desktop, right
//! after signing in) and `target/admin-page-phone.png` (390×844).

mod common;

use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use calpendo_fake::FakeBooking;
use common::scp::{Site, free_port};
use common::{booking, today};
use fantoccini::{Client, ClientBuilder, Locator};
use worklist_store::format_da;

/// How long any one browser step may take before the test gives up.
const STEP: Duration = Duration::from_secs(30);

/// The fake's bookings: four today on three stations, one tomorrow (not on the page).
///
/// | id | patient ID | resource | station |
/// |---|---|---|---|
/// | 201 | PG201 | 3T | MRI_3T |
/// | 202 | PG202 | EEG | EEG_LAB |
/// | 203 | PG203 | 7T | MRI_7T |
/// | 204 | PG204 | 3T | MRI_3T |
/// | 208 | PG208 | 3T, tomorrow | MRI_3T |
fn bookings() -> Vec<FakeBooking> {
    let mut tomorrow = booking(208, "PG208_Doe_Tomorrow", "3T Diagnostic", 9);
    tomorrow.start = today().tomorrow().expect("tomorrow").at(9, 0, 0, 0);
    tomorrow.end = tomorrow.start + jiff::Span::new().hours(1);
    vec![
        booking(201, "PG201_Tremblay_Marie", "3T Diagnostic", 8),
        booking(202, "PG202_Novak_Jan", "EEG Lab Room A", 9),
        booking(203, "PG203_Leblanc_Annemarie", "7T Research", 10),
        booking(204, "PG204_Hebert_Zoe", "3T Diagnostic", 13),
        tomorrow,
    ]
}

/// Where a program is on `PATH`.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// Chromium and chromedriver, or a failure that says how to get them.
fn browser_tools() -> (PathBuf, PathBuf) {
    let chromium = on_path("chromium").or_else(|| on_path("chromium-browser"));
    let driver = on_path("chromedriver");
    match (chromium, driver) {
        (Some(c), Some(d)) => (c, d),
        (c, d) => panic!(
            "this test drives headless Chromium and needs both `chromium` (found: {c:?}) and \
             `chromedriver` (found: {d:?}) on PATH. Install them with \
             `apt-get install chromium chromium-driver` (Debian), or run scripts/test.sh, \
             which installs them"
        ),
    }
}

/// The workspace's `target` directory.
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// chromedriver as a child process in its own process group; dropping it (also while a
/// failed assertion unwinds) ends chromedriver and the Chromium it started.
struct Driver {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Driver {
    fn start(program: &Path, dir: &Path) -> Driver {
        use std::os::unix::process::CommandExt as _;
        for _attempt in 0..5 {
            let port = free_port();
            let log = dir.join(format!("chromedriver-{port}.log"));
            let out = std::fs::File::create(&log).expect("chromedriver log");
            let err = out.try_clone().expect("clone log");
            let child = Command::new(program)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::from(out))
                .stderr(Stdio::from(err))
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
            let mut driver = Driver { child, port, log };
            let deadline = Instant::now() + STEP;
            loop {
                if let Ok(Some(_)) = driver.child.try_wait() {
                    // Most likely the port was taken meanwhile: another one.
                    break;
                }
                if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
                    return driver;
                }
                assert!(
                    Instant::now() < deadline,
                    "chromedriver does not listen on {port}:\n{}",
                    driver.log_text()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("chromedriver did not start on 5 ports");
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends `signal` to chromedriver's process group (itself and the browser it runs).
    fn signal_group(&self, signal: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg("--")
            .arg(format!("-{}", self.child.id()))
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.signal_group("TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Browser processes may outlive chromedriver itself: the whole group goes.
        self.signal_group("KILL");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A WebDriver session on headless Chromium with a fresh profile in `profile`.
async fn browser(driver: &Driver, chromium: &Path, profile: &Path) -> Client {
    let caps = serde_json::json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--window-size=1200,900",
                format!("--user-data-dir={}", profile.display()),
            ],
        },
    });
    let serde_json::Value::Object(caps) = caps else {
        unreachable!("an object")
    };
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&driver.url())
        .await
        .unwrap_or_else(|e| {
            panic!(
                "no WebDriver session: {e}\nchromedriver log:\n{}",
                driver.log_text()
            )
        })
}

/// The page's HTML, for failure messages.
async fn source(c: &Client) -> String {
    c.source()
        .await
        .unwrap_or_else(|e| format!("(no source: {e})"))
}

/// The text of the first element matching `css`, once it contains `needle` (polled until
/// [`STEP`] has passed: a form's answer may still be loading).
async fn wait_for_text(c: &Client, css: &str, needle: &str) -> String {
    let deadline = Instant::now() + STEP;
    let mut last = String::new();
    loop {
        if let Ok(e) = c.find(Locator::Css(css)).await {
            last = e.text().await.unwrap_or_default();
            if last.contains(needle) {
                return last;
            }
        }
        if Instant::now() >= deadline {
            panic!(
                "{css:?} never showed {needle:?} (last text {last:?}); page:\n{}",
                source(c).await
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every text of the elements matching `css`.
async fn texts(c: &Client, css: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in c.find_all(Locator::Css(css)).await.expect("find_all") {
        out.push(e.text().await.expect("text"));
    }
    out
}

/// The patient IDs listed under one station's heading.
async fn station_ids(c: &Client, station: &str) -> Vec<String> {
    let mut ids = texts(
        c,
        &format!("section.station[data-station='{station}'] tr.entry td:nth-child(2)"),
    )
    .await;
    ids.sort();
    ids
}

/// Clears a form field and types `value` into it.
async fn fill(c: &Client, form: &str, name: &str, value: &str) {
    let field = c
        .find(Locator::Css(&format!("{form} input[name='{name}']")))
        .await
        .unwrap_or_else(|e| panic!("no field {name} in {form}: {e}"));
    field.clear().await.expect("clear");
    if !value.is_empty() {
        field.send_keys(value).await.expect("type");
    }
}

/// Clicks the submit button of the form matching `form`.
async fn submit(c: &Client, form: &str) {
    c.find(Locator::Css(&format!("{form} button[type='submit']")))
        .await
        .unwrap_or_else(|e| panic!("no submit button in {form}: {e}"))
        .click()
        .await
        .expect("click");
}

/// The cells of the calpendo source's row in the sources table.
async fn source_row(c: &Client) -> Vec<String> {
    texts(c, "#sources tr.source[data-source='calpendo'] td").await
}

/// When the calpendo source's newest sync run finished (RFC 3339, from the sources
/// table's `<time datetime>`).
async fn last_sync(c: &Client) -> String {
    c.find(Locator::Css(
        "#sources tr.source[data-source='calpendo'] time",
    ))
    .await
    .expect("the last sync's time")
    .attr("datetime")
    .await
    .expect("attr")
    .expect("a datetime attribute")
}

/// Saves a screenshot of the current page.
async fn screenshot(c: &Client, path: &Path) {
    let png = c.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    std::fs::create_dir_all(path.parent().expect("parent")).expect("target dir");
    std::fs::write(path, png).expect("write screenshot");
}

#[test]
fn the_status_page_works_in_a_real_browser() {
    let (chromium, chromedriver) = browser_tools();
    let admin_port = free_port();
    let site = Site::start(
        bookings(),
        &format!("[admin]\nenabled = true\nbind = \"127.0.0.1\"\nport = {admin_port}\n"),
    );
    let base = format!("http://127.0.0.1:{admin_port}");

    let created = common::run(&[
        "token",
        "create",
        "--config",
        site.config().to_str().expect("utf-8 path"),
        "--name",
        "browser-e2e",
        "--role",
        "write",
    ]);
    assert!(
        created.status.success(),
        "token create: {}",
        common::stderr(&created)
    );
    let token = common::stdout(&created).trim().to_string();
    assert!(token.starts_with("mwlb_"), "token {token:?}");

    let profile = tempfile::Builder::new()
        .prefix("mwlbridge-chromium-")
        .tempdir()
        .expect("profile dir");
    let driver = Driver::start(&chromedriver, &site.dir);
    let today_da = format_da(today());

    site.block_on(async {
        let c = browser(&driver, &chromium, profile.path()).await;

        // Signed out: the login form, and nothing about any subject.
        c.goto(&format!("{base}/")).await.expect("open /");
        c.find(Locator::Css("form[action='/login'] input[name='token']"))
            .await
            .expect("the login form");
        let html = source(&c).await;
        for secret in ["PG20", "Tremblay", "Novak", "MRI_3T", "EEG_LAB"] {
            assert!(
                !html.contains(secret),
                "{secret:?} on the login page:\n{html}"
            );
        }
        assert!(
            c.find_all(Locator::Css("tr.entry"))
                .await
                .expect("find")
                .is_empty()
        );
        assert!(
            c.find_all(Locator::Css("script"))
                .await
                .expect("find")
                .is_empty(),
            "the page works without JavaScript and has none"
        );

        // A wrong token is refused.
        fill(
            &c,
            "form[action='/login']",
            "token",
            "mwlb_000000000000_nope",
        )
        .await;
        submit(&c, "form[action='/login']").await;
        wait_for_text(&c, "p.errors", "not valid").await;
        assert!(c.get_named_cookie("mwlbridge_session").await.is_err());

        // Sign in with the write token.
        fill(&c, "form[action='/login']", "token", &token).await;
        submit(&c, "form[action='/login']").await;
        wait_for_text(
            &c,
            "h2",
            &format!("Today's worklist, {today_da} (4 entries)"),
        )
        .await;
        let cookie = c
            .get_named_cookie("mwlbridge_session")
            .await
            .expect("session cookie");
        assert_eq!(cookie.http_only(), Some(true), "{cookie:?}");
        assert_eq!(
            format!("{:?}", cookie.same_site()),
            "Some(Strict)",
            "{cookie:?}"
        );
        assert!(
            !source(&c).await.contains(&token),
            "the token is never echoed into the page"
        );
        wait_for_text(&c, "p.note", "browser-e2e").await;

        // Today's entries grouped by station, in order; tomorrow's is not there.
        let headings = texts(&c, "section.station h3").await;
        assert_eq!(
            headings,
            ["EEG_LAB (1)", "MRI_3T (2)", "MRI_7T (1)"],
            "{}",
            source(&c).await
        );
        assert_eq!(station_ids(&c, "EEG_LAB").await, ["PG202"]);
        assert_eq!(station_ids(&c, "MRI_3T").await, ["PG201", "PG204"]);
        assert_eq!(station_ids(&c, "MRI_7T").await, ["PG203"]);
        let names = texts(&c, "tr.entry td:nth-child(3)").await;
        assert!(names.contains(&"Tremblay^Marie".to_string()), "{names:?}");
        assert!(
            !source(&c).await.contains("PG208"),
            "tomorrow's entry shown"
        );

        // The sources table: the first sync, successful, with what it fetched.
        let row = source_row(&c).await;
        assert_eq!(row.first().map(String::as_str), Some("calpendo"), "{row:?}");
        assert_eq!(row.get(2).map(String::as_str), Some("success"), "{row:?}");
        assert_eq!(
            row.get(4).map(String::as_str),
            Some("5"),
            "inserted: {row:?}"
        );
        let first_sync = last_sync(&c).await;
        assert!(
            first_sync.ends_with('Z'),
            "RFC 3339 UTC instant: {first_sync}"
        );

        screenshot(&c, &target_dir().join("admin-page.png")).await;

        // A manual entry with a bad date: the error names the field; nothing is added.
        let form = "form[action='/manual']";
        fill(&c, form, "patient_id", "WALKBAD").await;
        fill(&c, form, "patient_name", "Bad^Date").await;
        fill(&c, form, "start_date", "2026-13-45").await;
        fill(&c, form, "start_time", "1130").await;
        fill(&c, form, "station_ae_title", "MRI_3T").await;
        submit(&c, form).await;
        let errors = wait_for_text(&c, "div.errors", "start_date").await;
        assert!(errors.contains("YYYYMMDD"), "{errors}");
        assert!(
            !errors.contains("start_time"),
            "only the date is wrong: {errors}"
        );
        assert!(
            !texts(&c, "tr.entry td:nth-child(2)")
                .await
                .contains(&"WALKBAD".to_string())
        );
        // The form keeps what was typed.
        let kept = c
            .find(Locator::Css(&format!("{form} input[name='patient_id']")))
            .await
            .expect("field")
            .prop("value")
            .await
            .expect("value");
        assert_eq!(kept.as_deref(), Some("WALKBAD"));

        // A good one: it is on the page, under its station, from the manual source.
        fill(&c, form, "patient_id", "WALKIN7").await;
        fill(&c, form, "patient_name", "Walker^Ina").await;
        fill(&c, form, "start_date", &today_da).await;
        fill(&c, form, "start_time", "1130").await;
        fill(&c, form, "station_ae_title", "MRI_3T").await;
        fill(&c, form, "modality", "MR").await;
        fill(&c, form, "sps_description", "Phantom QA").await;
        submit(&c, form).await;
        wait_for_text(&c, "p.flash", "Manual entry added").await;
        assert_eq!(
            station_ids(&c, "MRI_3T").await,
            ["PG201", "PG204", "WALKIN7"]
        );
        let row = texts(
            &c,
            "section.station[data-station='MRI_3T'] tr.entry:nth-child(2) td",
        )
        .await;
        assert_eq!(
            row,
            [
                "11:30",
                "WALKIN7",
                "Walker^Ina",
                "MR",
                "Phantom QA",
                "SCHEDULED",
                "admin",
                "manual"
            ],
            "entries by start time: {}",
            source(&c).await
        );
        assert!(
            c.find_all(Locator::Css("div.errors"))
                .await
                .expect("find")
                .is_empty()
        );

        // Sync now, after a booking was added in Calpendo: a flash, then a new run that
        // inserted it.
        let mut more = bookings();
        more.push(booking(205, "PG205_Walker_Sync", "7T Research", 15));
        site.fake.set_bookings(more);
        submit(
            &c,
            "#sources tr.source[data-source='calpendo'] form[action='/sync']",
        )
        .await;
        wait_for_text(&c, "p.flash", "Sync requested").await;
        let deadline = Instant::now() + STEP;
        loop {
            c.goto(&format!("{base}/")).await.expect("reload");
            let row = source_row(&c).await;
            if last_sync(&c).await != first_sync {
                assert_eq!(row.get(2).map(String::as_str), Some("success"), "{row:?}");
                assert_eq!(
                    row.get(4).map(String::as_str),
                    Some("1"),
                    "inserted: {row:?}"
                );
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no new sync run after 'Sync now': {row:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(station_ids(&c, "MRI_7T").await, ["PG203", "PG205"]);

        // Phone size: the page itself never scrolls sideways; wide tables scroll inside
        // their own container.
        c.set_window_size(390, 844).await.expect("resize");
        c.goto(&format!("{base}/")).await.expect("reload");
        let sizes = c
            .execute(
                "return {inner: window.innerWidth, \
                 body: document.body.scrollWidth, \
                 doc: document.documentElement.scrollWidth, \
                 scrollers: Array.from(document.querySelectorAll('.scroll'))\
                   .map(e => [e.scrollWidth, e.clientWidth])};",
                vec![],
            )
            .await
            .expect("measure");
        let inner = sizes["inner"].as_u64().expect("innerWidth");
        assert!(inner <= 400, "the window is phone-sized: {sizes}");
        assert!(
            sizes["body"].as_u64().expect("body") <= inner,
            "the body overflows sideways at phone size: {sizes}"
        );
        assert!(
            sizes["doc"].as_u64().expect("doc") <= inner,
            "the document overflows sideways at phone size: {sizes}"
        );
        let scrollers = sizes["scrollers"].as_array().expect("array");
        assert!(
            scrollers.iter().any(|s| s[0].as_u64() > s[1].as_u64()),
            "the tables are wider than a phone and scroll in their container: {sizes}"
        );
        screenshot(&c, &target_dir().join("admin-page-phone.png")).await;

        // Signing out ends the session.
        c.set_window_size(1200, 900).await.expect("resize");
        submit(&c, "form[action='/logout']").await;
        let deadline = Instant::now() + STEP;
        while c
            .find_all(Locator::Css("form[action='/login']"))
            .await
            .expect("find")
            .is_empty()
        {
            assert!(Instant::now() < deadline, "still signed in");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(!source(&c).await.contains("PG201"));

        c.close().await.expect("close the browser");
    });

    // The server logged the token's name, never the token.
    let log = site.server.log();
    assert!(log.contains("browser-e2e"), "{log}");
    assert!(!log.contains(&token), "the token is in the log");
    drop(driver);
}
