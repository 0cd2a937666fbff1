//! The one harness that starts `mwlbridge serve`: a child under the watchdog of
//! [`Guarded`], on a free port of 127.0.0.1, waited for until it listens (and, when asked,
//! until its first sync is recorded and successful).

use std::ffi::OsString;
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use worklist_store::{Store, SyncOutcome, SyncRun};

use super::scp::{Guarded, free_port};

/// The Calpendo user name of these tests.
pub const USER: &str = "mwlbridge";

/// What `serve` is waited for before a test may use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// It listens on its DICOM port.
    Listening,
    /// It listens and its first sync is recorded (and must have succeeded).
    Synced,
}

/// How `mwlbridge serve` is started.
#[derive(Debug, Clone)]
pub struct ServeOpts {
    /// CALPENDO_PASSWORD (the user is [`USER`]).
    pub password: String,
    /// `--log-level`.
    pub log_level: String,
    /// `--log-format json` (else text).
    pub json: bool,
    /// What to wait for.
    pub until: Until,
    /// Which command starts it.
    pub launch: Launch,
    /// More environment variables (e.g. a REDCap source's credentials).
    pub env: Vec<(String, String)>,
}

/// The command line that starts the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launch {
    /// `serve --config C --port P --bind 127.0.0.1`.
    Serve,
    /// Pylantir's `start --pylantir_config C --port P --ip 127.0.0.1 --AEtitle AE`.
    PylantirStart {
        /// `--AEtitle`.
        ae_title: String,
    },
}

impl ServeOpts {
    /// JSON logs at `level`, with `password`; waits only until it listens.
    pub fn json(password: &str, level: &str) -> ServeOpts {
        ServeOpts {
            password: password.to_string(),
            log_level: level.to_string(),
            json: true,
            until: Until::Listening,
            launch: Launch::Serve,
            env: Vec::new(),
        }
    }

    /// Text logs at info, the fake's default password; waits for the first sync.
    pub fn synced() -> ServeOpts {
        ServeOpts {
            password: "secret".to_string(),
            log_level: "info".to_string(),
            json: false,
            until: Until::Synced,
            launch: Launch::Serve,
            env: Vec::new(),
        }
    }
}

/// A running `mwlbridge serve` (stopped when dropped).
pub struct Serve {
    /// Its DICOM port on 127.0.0.1.
    pub port: u16,
    /// Its config file.
    pub config: PathBuf,
    /// Its database.
    pub db: PathBuf,
    proc: Guarded,
}

impl Serve {
    /// Starts `mwlbridge [--log-format json] --log-level L serve --config CONFIG --port P
    /// --bind 127.0.0.1` on a free port and waits as `opts.until` says.
    pub fn start(config: &Path, db: &Path, opts: &ServeOpts) -> Serve {
        // A port found free may be taken by another test process before the server
        // binds it: then the server exits, and it is tried again on another port.
        for _attempt in 0..5 {
            if let Some(serve) = Serve::start_on(free_port(), config, db, opts, &|_| true) {
                return serve;
            }
        }
        panic!("mwlbridge serve did not start on 5 ports");
    }

    /// Starts it on `port` and waits as `opts.until` says and until `ready` holds too;
    /// `None` when it exited because it could not listen (the port was taken meanwhile).
    pub fn start_on(
        port: u16,
        config: &Path,
        db: &Path,
        opts: &ServeOpts,
        ready: &dyn Fn(&Serve) -> bool,
    ) -> Option<Serve> {
        let mut args: Vec<OsString> = vec!["--log-level".into(), opts.log_level.clone().into()];
        if opts.json {
            args.push("--log-format".into());
            args.push("json".into());
        }
        match &opts.launch {
            Launch::Serve => args.extend([
                "serve".into(),
                "--config".into(),
                config.into(),
                "--port".into(),
                port.to_string().into(),
                "--bind".into(),
                "127.0.0.1".into(),
            ]),
            Launch::PylantirStart { ae_title } => args.extend([
                "start".into(),
                "--pylantir_config".into(),
                config.into(),
                "--port".into(),
                port.to_string().into(),
                "--ip".into(),
                "127.0.0.1".into(),
                "--AEtitle".into(),
                ae_title.into(),
            ]),
        }
        let log = config.with_file_name(format!(
            "{}-serve-{port}.log",
            config
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        ));
        let proc = Guarded::spawn(
            &super::bin(),
            &args,
            &[
                ("CALPENDO_USERNAME", USER),
                ("CALPENDO_PASSWORD", opts.password.as_str()),
                ("MWLBRIDGE_CONFIG", ""),
                ("NO_COLOR", "1"),
            ]
            .into_iter()
            .chain(opts.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .collect::<Vec<_>>(),
            &log,
            None,
        );
        let mut serve = Serve {
            port,
            config: config.to_path_buf(),
            db: db.to_path_buf(),
            proc,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if serve.proc.exited() {
                let text = serve.log();
                assert!(
                    text.contains("cannot listen"),
                    "mwlbridge serve exited:\n{text}"
                );
                return None;
            }
            if serve.is_up(opts.until) && ready(&serve) {
                // Still ours (not another process's server on a port we lost).
                std::thread::sleep(Duration::from_millis(30));
                if serve.proc.exited() {
                    continue;
                }
                return Some(serve);
            }
            assert!(
                Instant::now() < deadline,
                "mwlbridge serve did not start:\n{}",
                serve.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether it listens and, for [`Until::Synced`], its first sync is recorded (which
    /// must be a success).
    fn is_up(&self, until: Until) -> bool {
        if TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_err() {
            return false;
        }
        if until == Until::Listening {
            return true;
        }
        let runs = Store::open(&self.db)
            .ok()
            .and_then(|s| s.recent_sync_runs(None, 10).ok())
            .unwrap_or_default();
        let Some(run) = runs.first() else {
            return false;
        };
        assert_eq!(
            run.outcome,
            SyncOutcome::Success,
            "first sync failed: {:?}\n{}",
            run.error,
            self.log()
        );
        true
    }

    /// The log so far (stdout and stderr together).
    pub fn log(&self) -> String {
        self.proc.log_text()
    }

    /// Stops it with SIGTERM (SIGKILL after 5 s); its exit code.
    pub fn stop(&mut self) -> Option<i32> {
        self.proc.stop()
    }

    /// The server process's id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.proc.child_pid()
    }

    /// The server process's peak resident memory (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let pid = self.proc.child_pid()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    }

    /// The sync run that started first at or after `since` (waits for it up to
    /// `timeout`; panics with the log when none comes).
    pub fn next_run(&self, since: Timestamp, timeout: Duration) -> SyncRun {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(run) = runs(&self.db)
                .into_iter()
                .rev()
                .find(|r| r.started_at >= since)
            {
                return run;
            }
            assert!(
                Instant::now() < deadline,
                "no sync run started after {since} within {timeout:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Every recorded sync run, newest first (none when the database is not there yet).
pub fn runs(db: &Path) -> Vec<SyncRun> {
    if !db.exists() {
        return Vec::new();
    }
    Store::open(db)
        .ok()
        .and_then(|s| s.recent_sync_runs(None, 100_000).ok())
        .unwrap_or_default()
}
