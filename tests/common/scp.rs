//! Child processes under a watchdog ([`Guarded`]), a site of the DICOM end-to-end tests
//! (a fake Calpendo and `mwlbridge serve`, [`Site`]), and DCMTK's `findscu` / `echoscu`
//! as clients.
//!
//! Children are started through a small `sh` watchdog that kills them when its stdin
//! closes: when a [`Guarded`] is dropped, or when the test process exits, even when the
//! guard lives in a `static` (which is never dropped).

use std::ffi::{OsStr, OsString};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use super::config::SiteConfig;
use super::serve::{Serve, ServeOpts};
use super::{booking, today};
use calpendo_fake::{FakeBooking, FakeCalpendo, FakeConfig};
use dicom_core::Tag;
use dicom_core::header::Header as _;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

/// Our AE title in these tests.
pub const AE: &str = "MWLBRIDGE";

/// A free TCP port on 127.0.0.1 (bound, read, released).
pub fn free_port() -> u16 {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

/// A child process killed when this guard is dropped or the test process ends.
pub struct Guarded {
    child: Child,
    stdin: Option<ChildStdin>,
    /// The program's file name.
    program: String,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
}

/// The watchdog: runs "$@" in the background and exits when it does (removing
/// `$WATCHDOG_CLEANUP` if set); when its own stdin closes, it stops the child (SIGTERM,
/// then SIGKILL after 5 s).
const WATCHDOG: &str = r#"
exec 3<&0
"$@" </dev/null &
c=$!
{
  while read -r _; do :; done
  kill -TERM "$c" 2>/dev/null
  i=0
  while kill -0 "$c" 2>/dev/null && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i+1)); done
  kill -KILL "$c" 2>/dev/null
} <&3 &
r=$!
exec 3<&-
wait "$c"
s=$?
kill "$r" 2>/dev/null
if [ -n "$WATCHDOG_CLEANUP" ]; then rm -rf -- "$WATCHDOG_CLEANUP"; fi
echo "watchdog: $1 exited with status $s"
exit "$s"
"#;

impl Guarded {
    /// Starts `program args` under the watchdog, its output appended to `log`.
    pub fn spawn(
        program: &Path,
        args: &[OsString],
        envs: &[(&str, &str)],
        log: &Path,
        cleanup: Option<&Path>,
    ) -> Guarded {
        let out = std::fs::File::create(log).expect("create log");
        let err = out.try_clone().expect("clone log");
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(WATCHDOG)
            .arg("watchdog")
            .arg(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        for (k, v) in envs {
            cmd.env(k, v);
        }
        if let Some(dir) = cleanup {
            cmd.env("WATCHDOG_CLEANUP", dir);
        }
        let mut child = cmd.spawn().expect("spawn the watchdog");
        let stdin = child.stdin.take();
        Guarded {
            child,
            stdin,
            program: program
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            log: log.to_path_buf(),
        }
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// The pid of the program (the watchdog's child of that name).
    pub fn child_pid(&self) -> Option<u32> {
        // Process names are cut to 15 bytes.
        let name: String = self.program.chars().take(15).collect();
        let out = Command::new("pgrep")
            .arg("-P")
            .arg(self.child.id().to_string())
            .arg("-x")
            .arg(name)
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    /// Stops the program as a service manager would (SIGTERM, SIGKILL after 5 s) and
    /// waits for it; its exit code.
    pub fn stop(&mut self) -> Option<i32> {
        drop(self.stdin.take());
        self.child.wait().ok()?.code()
    }

    /// Whether the child (hence the watchdog) has exited.
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        // EOF on the watchdog's stdin stops the child.
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port` and `proc` is still
/// running a little later; false when `proc` exited (e.g. the port was taken meanwhile).
pub fn wait_for_port(port: u16, proc: &mut Guarded, what: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if proc.exited() {
            return false;
        }
        if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
            std::thread::sleep(Duration::from_millis(200));
            return !proc.exited();
        }
        assert!(
            Instant::now() < deadline,
            "{what} does not listen on {port}:\n{}",
            proc.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A config for one Calpendo source at `base_url` with four resources (two MR scanners,
/// an EEG lab and a mock scanner), the `title` → PatientName template, and `server_keys`
/// as the `[server]` table (which may end with an `[admin]` table; without one the admin
/// interface is off). The database is `dir/worklist.db`.
///
/// The resources are [`FOUR_RESOURCES`](super::config::FOUR_RESOURCES).
pub fn write_server_config(dir: &Path, base_url: &str, server_keys: &str) -> PathBuf {
    write_server_config_with(dir, base_url, server_keys, "")
}

/// [`write_server_config`] with `extra_source_keys` added to the source's table (e.g.
/// `protocol = "BRAIN_ROUTINE"`; a `sync_interval` there replaces the default hour).
pub fn write_server_config_with(
    dir: &Path,
    base_url: &str,
    server_keys: &str,
    extra_source_keys: &str,
) -> PathBuf {
    let db = dir.join("worklist.db");
    // The deadline leaves room for the 3,000-booking sites on a loaded machine (a first
    // sync that misses it fails the test); the harness waits 60 s for it.
    // An hour between syncs unless the test sets its own `sync_interval`.
    let interval = if extra_source_keys.contains("sync_interval") {
        ""
    } else {
        "sync_interval = 3600\n"
    };
    let source_keys =
        format!("{interval}sync_deadline = 45\nrequest_timeout = 5\n{extra_source_keys}");
    SiteConfig {
        server: Some(server_keys),
        // The admin interface stays off unless `server_keys` brings its own `[admin]`.
        admin: server_keys.contains("[admin]").then_some(""),
        source_keys: &source_keys,
        ..SiteConfig::new(base_url, &db)
    }
    .write(&dir.join("mwlbridge.toml"))
}

/// A fake Calpendo with bookings, a config and a running `mwlbridge serve` on it. Dropping
/// it stops the server, then the fake, then removes the directory.
pub struct Site {
    /// The server (dropped first).
    pub server: Serve,
    /// Removes `dir` once dropped (after the server is stopped).
    _janitor: Guarded,
    /// The fake Calpendo.
    pub fake: FakeCalpendo,
    /// The working directory (config, database, logs).
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    rt: tokio::runtime::Runtime,
}

impl Site {
    /// Starts a fake Calpendo holding `bookings` and `mwlbridge serve` with
    /// [`write_server_config`]`(.., server_keys)`. Call it outside any async runtime.
    pub fn start(bookings: Vec<FakeBooking>, server_keys: &str) -> Site {
        Site::start_with(bookings, server_keys, "")
    }

    /// [`Site::start`] with `extra_source_keys` added to the Calpendo source's table
    /// ([`write_server_config_with`]).
    pub fn start_with(
        bookings: Vec<FakeBooking>,
        server_keys: &str,
        extra_source_keys: &str,
    ) -> Site {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let fake = rt.block_on(async {
            let fake = FakeCalpendo::start(FakeConfig::default())
                .await
                .expect("fake Calpendo starts");
            fake.set_bookings(bookings);
            fake
        });
        let tmp = tempfile::Builder::new()
            .prefix("mwlbridge-scp-e2e-")
            .tempdir()
            .expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let config =
            write_server_config_with(&dir, &fake.base_url(), server_keys, extra_source_keys);
        let server = Serve::start(&config, &dir.join("worklist.db"), &ServeOpts::synced());
        // Removes the directory when the site is dropped or the test process ends, also
        // for a site kept in a `static` (never dropped).
        let janitor = Guarded::spawn(
            Path::new("sleep"),
            &["infinity".into()],
            &[],
            Path::new("/dev/null"),
            Some(&dir),
        );
        Site {
            server,
            _janitor: janitor,
            fake,
            dir,
            _tmp: Some(tmp),
            rt,
        }
    }

    /// The server's DICOM port.
    pub fn port(&self) -> u16 {
        self.server.port
    }

    /// The config file.
    pub fn config(&self) -> &Path {
        &self.server.config
    }

    /// Runs a future on the site's runtime (e.g. to change the fake's bookings).
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }
}

/// DCMTK's `wlmscpfs` serving the same worklist as `site`: `mwlbridge export` writes the
/// site's items as worklist files into `<site dir>/wlmscpfs/<AE>/` (wlmscpfs serves
/// `<data files path>/<called AE title>/*.wl`), and wlmscpfs answers with the files'
/// Specific Character Set (ISO_IR 192). Its guard and port.
pub fn wlmscpfs_for(site: &Site) -> (Guarded, u16) {
    let dfp = site.dir.join("wlmscpfs");
    let config = site.config().to_str().expect("utf-8").to_string();
    let out = super::run(&[
        "export",
        "--config",
        &config,
        "--dir",
        dfp.join(AE).to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", super::stderr(&out));
    // Retried on another port when the one found free was taken meanwhile.
    (0..5)
        .find_map(|_| {
            let port = free_port();
            let args: Vec<OsString> = vec![
                "--single-process".into(),
                "--data-files-path".into(),
                dfp.clone().into(),
                // Return the Specific Character Set of the files (ISO_IR 192).
                "--keep-char-set".into(),
                "-v".into(),
                port.to_string().into(),
            ];
            let mut wl = Guarded::spawn(
                Path::new("wlmscpfs"),
                &args,
                &[],
                &site.dir.join(format!("wlmscpfs-{port}.log")),
                None,
            );
            wait_for_port(port, &mut wl, "wlmscpfs").then_some((wl, port))
        })
        .expect("wlmscpfs listens")
}

/// What `findscu` printed and received.
#[derive(Debug)]
pub struct FindResult {
    /// Its whole output (debug level).
    pub output: String,
    /// Every DIMSE status it received, in order (pending ones and the final one).
    pub statuses: Vec<u16>,
    /// The identifiers of the pending responses, in order.
    pub responses: Vec<InMemDicomObject>,
}

impl FindResult {
    /// The final status.
    pub fn final_status(&self) -> Option<u16> {
        self.statuses.last().copied()
    }

    /// The top-level values of `tag` over all responses, sorted (missing or empty: "").
    pub fn values(&self, tag: Tag) -> Vec<String> {
        let mut v: Vec<String> = self.responses.iter().map(|r| text(r, tag)).collect();
        v.sort();
        v
    }

    /// The PatientIDs of the responses, sorted.
    pub fn patient_ids(&self) -> Vec<String> {
        self.values(dicom_dictionary_std::tags::PATIENT_ID)
    }

    /// The response with this PatientID.
    pub fn by_patient_id(&self, id: &str) -> &InMemDicomObject {
        self.responses
            .iter()
            .find(|r| text(r, dicom_dictionary_std::tags::PATIENT_ID) == id)
            .unwrap_or_else(|| panic!("no response for {id}:\n{}", self.output))
    }

    /// Panics with the output unless the query ended with Success and every pending
    /// status is FF00.
    pub fn assert_success(&self) -> &Self {
        assert_eq!(
            self.final_status(),
            Some(0x0000),
            "final status:\n{}",
            self.output
        );
        assert!(
            self.statuses[..self.statuses.len() - 1]
                .iter()
                .all(|s| *s == 0xFF00),
            "pending statuses {:04X?}:\n{}",
            self.statuses,
            self.output
        );
        assert_eq!(self.responses.len(), self.statuses.len() - 1);
        self
    }
}

/// A top-level (or item-level) text value, trimmed; "" when missing or empty.
pub fn text(obj: &InMemDicomObject, tag: Tag) -> String {
    obj.get(tag)
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
        .unwrap_or_default()
}

/// The (first) Scheduled Procedure Step item of a response.
pub fn sps_item(obj: &InMemDicomObject) -> &InMemDicomObject {
    obj.get(dicom_dictionary_std::tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE)
        .and_then(|e| e.items())
        .and_then(|items| items.first())
        .expect("a Scheduled Procedure Step item")
}

/// The tags an object holds, in order.
pub fn tags_of(obj: &InMemDicomObject) -> Vec<Tag> {
    obj.iter().map(|e| e.tag()).collect()
}

/// Runs `program args` (killed, and the test failed, after 60 s); returns its stdout and
/// stderr together.
fn run_with_timeout(
    program: &str,
    args: &[OsString],
    envs: &[(&str, &str)],
    out_file: &Path,
) -> String {
    let out = std::fs::File::create(out_file).expect("create output file");
    let err = out.try_clone().expect("clone");
    let mut child = Command::new(program)
        .args(args)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{program} hung:\n{}",
                String::from_utf8_lossy(&std::fs::read(out_file).unwrap_or_default())
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    String::from_utf8_lossy(&std::fs::read(out_file).unwrap_or_default()).into_owned()
}

/// `findscu -d -W -aet CONSOLE -aec MWLBRIDGE -X --output-directory DIR EXTRA -k KEY...
/// 127.0.0.1 PORT [QUERY_FILE]`: statuses from its debug output, identifiers from the
/// files it wrote. Keys are raw arguments (they may hold Latin-1 bytes). A later `-aet`
/// or `-aec` in `extra` overrides the defaults.
pub fn findscu_raw(
    port: u16,
    keys: &[OsString],
    extra: &[&str],
    query_file: Option<&Path>,
) -> FindResult {
    findscu_env(port, keys, extra, query_file, &[])
}

/// [`findscu_raw`] with environment variables (DCMTK reads e.g. `TCP_BUFFER_LENGTH`, the
/// socket buffer sizes it asks for).
pub fn findscu_env(
    port: u16,
    keys: &[OsString],
    extra: &[&str],
    query_file: Option<&Path>,
    envs: &[(&str, &str)],
) -> FindResult {
    let dir = tempfile::Builder::new()
        .prefix("findscu-")
        .tempdir()
        .expect("tempdir");
    let rsp = dir.path().join("rsp");
    std::fs::create_dir(&rsp).expect("mkdir");
    let mut args: Vec<OsString> = ["-d", "-W", "-aet", "CONSOLE", "-aec", AE, "-X"]
        .iter()
        .map(OsString::from)
        .collect();
    args.push("--output-directory".into());
    args.push(rsp.clone().into());
    args.extend(extra.iter().map(OsString::from));
    for k in keys {
        args.push("-k".into());
        args.push(k.clone());
    }
    args.push("127.0.0.1".into());
    args.push(port.to_string().into());
    if let Some(q) = query_file {
        args.push(q.into());
    }
    let output = run_with_timeout("findscu", &args, envs, &dir.path().join("out.txt"));
    let statuses = output
        .lines()
        .filter(|l| l.contains("DIMSE Status"))
        .filter_map(|l| {
            let hex = l.split("0x").nth(1)?;
            u16::from_str_radix(hex.get(..4)?, 16).ok()
        })
        .collect();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&rsp)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    let responses = files
        .iter()
        .map(|f| {
            dicom_object::open_file(f)
                .unwrap_or_else(|e| panic!("{} is readable: {e}\n{output}", f.display()))
                .into_inner()
        })
        .collect();
    FindResult {
        output,
        statuses,
        responses,
    }
}

/// [`findscu_raw`] with text keys (`PatientName=DOE*`,
/// `ScheduledProcedureStepSequence[0].Modality=MR`).
pub fn findscu(port: u16, keys: &[&str], extra: &[&str]) -> FindResult {
    let keys: Vec<OsString> = keys.iter().map(OsString::from).collect();
    findscu_raw(port, &keys, extra, None)
}

/// What `echoscu -v` printed.
#[derive(Debug)]
pub struct EchoResult {
    /// Its output.
    pub output: String,
}

impl EchoResult {
    /// Whether the association was accepted and the echo answered Success.
    pub fn success(&self) -> bool {
        self.output.contains("Received Echo Response (Success)")
    }
}

/// `echoscu -v -aet CALLING -aec CALLED 127.0.0.1 PORT`.
pub fn echoscu(port: u16, calling: &str, called: &str) -> EchoResult {
    let dir = tempfile::Builder::new()
        .prefix("echoscu-")
        .tempdir()
        .expect("tempdir");
    let args: Vec<OsString> = [
        "-v",
        "-aet",
        calling,
        "-aec",
        called,
        "-to",
        "10",
        "-ta",
        "10",
        "127.0.0.1",
        &port.to_string(),
    ]
    .iter()
    .map(OsString::from)
    .collect();
    EchoResult {
        output: run_with_timeout("echoscu", &args, &[], &dir.path().join("out.txt")),
    }
}

/// Polls C-ECHO (echoscu) until it succeeds or `limit` passes; how long it took.
pub fn echo_within(port: u16, limit: Duration) -> Result<Duration, String> {
    let started = Instant::now();
    loop {
        let e = echoscu(port, "CONSOLE", AE);
        if e.success() {
            return Ok(started.elapsed());
        }
        if started.elapsed() > limit {
            return Err(e.output);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// `dump2dcm DUMP OUT`: a DICOM file from a DCMTK dump.
pub fn dump2dcm(dump: &Path, out: &Path) {
    let o = Command::new("dump2dcm")
        .arg(dump)
        .arg(out)
        .output()
        .expect("dump2dcm runs");
    assert!(
        o.status.success() && out.exists(),
        "dump2dcm {}: {}",
        dump.display(),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `dcmdump FILE` output.
pub fn dcmdump(file: &Path) -> String {
    let o = Command::new("dcmdump")
        .arg(file)
        .output()
        .expect("dcmdump runs");
    assert!(
        o.status.success(),
        "dcmdump {}: {}",
        file.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// An argument from raw bytes (a key with Latin-1 text).
pub fn raw_arg(bytes: &[u8]) -> OsString {
    use std::os::unix::ffi::OsStrExt;
    OsStr::from_bytes(bytes).to_os_string()
}

/// A booking with another Calpendo status.
pub fn with_status(mut b: FakeBooking, status: &str) -> FakeBooking {
    b.status = status.to_string();
    b
}

/// The bookings of the MWL tests' shared servers. Resources map as in `write_server_config`:
/// 3T → MR/MRI_3T, 7T → MR/MRI_7T, EEG → EEG/EEG_LAB, Mock → OT/MOCK.
///
/// | id | subject, name | resource | start | status |
/// |---|---|---|---|---|
/// | 101 | SUB101 Tremblay^Marie | 3T | today 08:00 | scheduled |
/// | 102 | SUB102 Novak^Jan (operator Bob Martin) | EEG | today 09:00 | scheduled |
/// | 103 | SUB103 Leblanc^Annemarie | 7T | today 10:00 | scheduled |
/// | 104 | SUB104 Tremblay^Paul | Mock | today 12:00 | scheduled |
/// | 105 | SUB105 Hébert^Zoë | 3T | today 13:00 | scheduled |
/// | 106 | SUB106 Müller^Jürgen | EEG | today 14:00 | scheduled |
/// | 107 | SUB107 Smith^Cancelled | 3T | today 15:00 | Cancelled → DISCONTINUED |
/// | 108 | SUB108 Doe^Tomorrow | 3T | tomorrow 09:00 | scheduled |
/// | 109 | SUB109 Jones^Completed | 7T | today 16:00 | Completed → COMPLETED |
/// | 110 | SUB110 Brown^Started | 7T | today 17:00 | In Progress → STARTED |
pub fn mwl_bookings() -> Vec<FakeBooking> {
    let mut novak = booking(102, "SUB102_Novak_Jan", "EEG Lab Room A", 9);
    novak.operator = Some("Bob Martin".into());
    let mut tomorrow = booking(108, "SUB108_Doe_Tomorrow", "3T Diagnostic", 9);
    tomorrow.start = today().tomorrow().expect("tomorrow").at(9, 0, 0, 0);
    tomorrow.end = tomorrow.start + jiff::Span::new().hours(1);
    vec![
        booking(101, "SUB101_Tremblay_Marie", "3T Diagnostic", 8),
        novak,
        booking(103, "SUB103_Leblanc_Annemarie", "7T Research", 10),
        booking(104, "SUB104_Tremblay_Paul", "Mock Scanner", 12),
        booking(105, "SUB105_Hébert_Zoë", "3T Diagnostic", 13),
        booking(106, "SUB106_Müller_Jürgen", "EEG Lab Room A", 14),
        with_status(
            booking(107, "SUB107_Smith_Cancelled", "3T Diagnostic", 15),
            "Cancelled",
        ),
        tomorrow,
        with_status(
            booking(109, "SUB109_Jones_Completed", "7T Research", 16),
            "Completed",
        ),
        with_status(
            booking(110, "SUB110_Brown_Started", "7T Research", 17),
            "In Progress",
        ),
    ]
}

/// Every step offered by default (SCHEDULED and STARTED), today and tomorrow.
pub const OFFERED: [&str; 8] = [
    "SUB101", "SUB102", "SUB103", "SUB104", "SUB105", "SUB106", "SUB108", "SUB110",
];

/// The identifiers a console copies from a worklist item into its MPPS.
pub struct Scheduled {
    pub study_uid: String,
    pub accession: String,
    pub sps_id: String,
}

/// The [`Scheduled`] identifiers of `patient_id`'s worklist item, as `findscu` gets them.
pub fn scheduled(site: &Site, patient_id: &str) -> Scheduled {
    let r = findscu(
        site.port(),
        &[
            &format!("PatientID={patient_id}"),
            "StudyInstanceUID",
            "AccessionNumber",
            "ScheduledProcedureStepSequence[0].ScheduledProcedureStepID",
        ],
        &[],
    );
    let item = r.by_patient_id(patient_id);
    Scheduled {
        study_uid: text(item, tags::STUDY_INSTANCE_UID),
        accession: text(item, tags::ACCESSION_NUMBER),
        sps_id: text(sps_item(item), tags::SCHEDULED_PROCEDURE_STEP_ID),
    }
}

/// The step status the worklist sends for `patient_id`, asked explicitly.
pub fn status_of(site: &Site, patient_id: &str) -> String {
    let r = findscu(
        site.port(),
        &[
            &format!("PatientID={patient_id}"),
            "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStatus=SCHEDULED\\STARTED\\COMPLETED\\DISCONTINUED",
        ],
        &[],
    );
    text(
        sps_item(r.by_patient_id(patient_id)),
        tags::SCHEDULED_PROCEDURE_STEP_STATUS,
    )
}

/// Whether a default query (no status key) offers `patient_id`.
pub fn offered(site: &Site, patient_id: &str) -> bool {
    findscu(
        site.port(),
        &["PatientID", "ScheduledProcedureStepSequence[0].Modality"],
        &[],
    )
    .patient_ids()
    .iter()
    .any(|p| p == patient_id)
}
