//! Headless Chromium for the status-page tests: chromedriver as a child process, a
//! WebDriver session (`fantoccini`) with a fresh profile, and the steps the tests take
//! (fill, submit, wait for a text, screenshot).
//!
//! Chromium and chromedriver are Debian's `chromium` and `chromium-driver` packages;
//! `scripts/test.sh` installs them. Without them the tests fail (they do not skip).

use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

use super::scp::free_port;

/// How long any one browser step may take before the test gives up.
pub const STEP: Duration = Duration::from_secs(30);

/// Where a program is on `PATH`.
pub fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// Chromium and chromedriver, or a failure that says how to get them.
pub fn browser_tools() -> (PathBuf, PathBuf) {
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
pub fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// chromedriver as a child process in its own process group; dropping it (also while a
/// failed assertion unwinds) ends chromedriver and the Chromium it started.
pub struct Driver {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Driver {
    pub fn start(program: &Path, dir: &Path) -> Driver {
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

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log_text(&self) -> String {
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
pub async fn browser(driver: &Driver, chromium: &Path, profile: &Path) -> Client {
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
pub async fn source(c: &Client) -> String {
    c.source()
        .await
        .unwrap_or_else(|e| format!("(no source: {e})"))
}

/// The text of the first element matching `css`, once it contains `needle` (polled until
/// [`STEP`] has passed: a form's answer may still be loading).
pub async fn wait_for_text(c: &Client, css: &str, needle: &str) -> String {
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
pub async fn texts(c: &Client, css: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in c.find_all(Locator::Css(css)).await.expect("find_all") {
        out.push(e.text().await.expect("text"));
    }
    out
}

/// Clears a form field and types `value` into it.
pub async fn fill(c: &Client, form: &str, name: &str, value: &str) {
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
pub async fn submit(c: &Client, form: &str) {
    c.find(Locator::Css(&format!("{form} button[type='submit']")))
        .await
        .unwrap_or_else(|e| panic!("no submit button in {form}: {e}"))
        .click()
        .await
        .expect("click");
}

/// Saves a screenshot of the current page.
pub async fn screenshot(c: &Client, path: &Path) {
    let png = c.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    std::fs::create_dir_all(path.parent().expect("parent")).expect("target dir");
    std::fs::write(path, png).expect("write screenshot");
}

/// Picks the option with `value` in the select `name` of the form matching `form`.
pub async fn pick(c: &Client, form: &str, name: &str, value: &str) {
    c.find(Locator::Css(&format!(
        "{form} select[name='{name}'] option[value='{value}']"
    )))
    .await
    .unwrap_or_else(|e| panic!("no option {value:?} in {name} of {form}: {e}"))
    .click()
    .await
    .expect("pick");
}

/// Clicks the first element matching `css`.
pub async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("nothing matches {css:?}: {e}"))
        .click()
        .await
        .expect("click");
}

/// The attribute `name` of the first element matching `css`.
pub async fn attr(c: &Client, css: &str, name: &str) -> Option<String> {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("nothing matches {css:?}: {e}"))
        .attr(name)
        .await
        .expect("attr")
}

/// Whether anything matches `css`.
pub async fn exists(c: &Client, css: &str) -> bool {
    !c.find_all(Locator::Css(css))
        .await
        .expect("find")
        .is_empty()
}

/// Signs in at `base` with `token` and waits for the scan day.
pub async fn sign_in(c: &Client, base: &str, token: &str) {
    c.goto(&format!("{base}/")).await.expect("open /");
    fill(c, "form[action='/login']", "token", token).await;
    submit(c, "form[action='/login']").await;
    wait_for_text(c, "div.who", "Signed in as").await;
}

/// At phone size: the document's and body's widths and the window's, and each `.scroll`
/// box's scroll and client widths.
pub async fn widths(c: &Client) -> serde_json::Value {
    c.execute(
        "return {inner: window.innerWidth, \
         body: document.body.scrollWidth, \
         doc: document.documentElement.scrollWidth, \
         scrollers: Array.from(document.querySelectorAll('.scroll'))\
           .map(e => [e.scrollWidth, e.clientWidth]), \
         wide: Array.from(document.querySelectorAll('body *'))\
           .filter(e => e.getBoundingClientRect().right > window.innerWidth \
                        && !e.closest('.scroll'))\
           .slice(0, 5).map(e => e.outerHTML.slice(0, 120))};",
        vec![],
    )
    .await
    .expect("measure")
}

/// Panics unless the page fits a phone's width (wide tables scroll in their own box).
pub async fn assert_fits_phone(c: &Client) {
    let sizes = widths(c).await;
    let inner = sizes["inner"].as_u64().expect("innerWidth");
    assert!(inner <= 400, "the window is phone-sized: {sizes}");
    assert!(
        sizes["body"].as_u64().expect("body") <= inner,
        "the body overflows sideways at phone size: {sizes:#}"
    );
    assert!(
        sizes["doc"].as_u64().expect("doc") <= inner,
        "the document overflows sideways at phone size: {sizes}"
    );
}
