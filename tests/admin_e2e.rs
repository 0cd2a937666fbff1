//! The admin HTTP interface end to end: the real `mwlbridge serve` with `[admin]` enabled,
//! fed by the fake Calpendo, over real HTTP(S) on 127.0.0.1 with reqwest; tokens made with
//! `mwlbridge token create`; what the API changes checked with DCMTK `findscu`.
//!
//! Each test starts its own server (its own DICOM and admin ports), so they run in
//! parallel.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use calpendo_fake::{FakeBooking, FakeCalpendo, FakeConfig, Fault, FaultScope};
use common::config::SiteConfig;
use common::http::Answer;
use common::scp::{findscu, free_port, mwl_bookings, sps_item, text, write_server_config};
use common::serve::{Serve, ServeOpts};
use common::{booking, stderr, stdout, today};
use dicom_dictionary_std::tags;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use worklist_store::format_da;

const SPS: &str = "ScheduledProcedureStepSequence[0]";

fn sps(key: &str) -> String {
    format!("{SPS}.{key}")
}

fn today_da() -> String {
    format_da(today())
}

fn tomorrow_da() -> String {
    format_da(today().tomorrow().expect("tomorrow"))
}

/// Subject data of [`mwl_bookings`] that must never leave the API's authenticated side.
const SUBJECT_DATA: [&str; 20] = [
    "SUB101",
    "SUB102",
    "SUB103",
    "SUB104",
    "SUB105",
    "SUB106",
    "SUB107",
    "SUB108",
    "SUB109",
    "SUB110",
    "Tremblay",
    "Novak",
    "Leblanc",
    "Annemarie",
    "Hébert",
    "Müller",
    "Jürgen",
    "Smith^Cancelled",
    "Doe^Tomorrow",
    "Brown^Started",
];

/// How to start a server.
struct Options {
    /// `sync_interval` of the source, seconds.
    sync_interval: u32,
    /// `[admin] unready_after_intervals`.
    unready_after_intervals: u32,
    /// `[admin.tls]`: certificate and key.
    tls: Option<(PathBuf, PathBuf)>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            sync_interval: 3600,
            unready_after_intervals: 3,
            tls: None,
        }
    }
}

/// A fake Calpendo and `mwlbridge serve` with its admin interface. Fields drop in order:
/// the server first, then the fake, the directory and the runtime.
struct Admin {
    serve: Serve,
    /// DICOM port.
    dicom_port: u16,
    /// `http://127.0.0.1:PORT` or `https://...`.
    base: String,
    admin_port: u16,
    config: PathBuf,
    fake: FakeCalpendo,
    _dir: tempfile::TempDir,
    client: reqwest::Client,
    rt: tokio::runtime::Runtime,
}

fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .no_proxy()
}

impl Admin {
    fn start(bookings: Vec<FakeBooking>, opts: Options) -> Admin {
        let client = match &opts.tls {
            None => client_builder().build().expect("client"),
            Some((cert, _)) => {
                let pem = std::fs::read(cert).expect("read certificate");
                let cert = reqwest::Certificate::from_pem(&pem).expect("certificate");
                client_builder()
                    .tls_certs_only([cert])
                    .build()
                    .expect("https client")
            }
        };
        Admin::start_with(bookings, opts, client)
    }

    fn start_with(bookings: Vec<FakeBooking>, opts: Options, client: reqwest::Client) -> Admin {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
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
        let dir = tempfile::Builder::new()
            .prefix("mwlbridge-admin-e2e-")
            .tempdir()
            .expect("tempdir");
        let scheme = if opts.tls.is_some() { "https" } else { "http" };
        // A port found free may be taken by another test before the server binds it: the
        // server then exits, and it is tried again on other ports.
        for _attempt in 0..5 {
            let dicom_port = free_port();
            let admin_port = loop {
                let p = free_port();
                if p != dicom_port {
                    break p;
                }
            };
            let mut admin = format!(
                "[admin]\nenabled = true\nbind = \"127.0.0.1\"\nport = {admin_port}\n\
                 unready_after_intervals = {}\n",
                opts.unready_after_intervals
            );
            if let Some((cert, key)) = &opts.tls {
                admin.push_str(&format!(
                    "\n[admin.tls]\ncertificate = \"{}\"\nprivate_key = \"{}\"\n",
                    cert.display(),
                    key.display()
                ));
            }
            let db = dir.path().join("worklist.db");
            let base_url = fake.base_url();
            let source_keys = format!(
                "sync_interval = {}\nsync_deadline = 10\nrequest_timeout = 5",
                opts.sync_interval
            );
            let config = SiteConfig {
                server: Some(""),
                admin: Some(&admin),
                source_keys: &source_keys,
                ..SiteConfig::new(&base_url, &db)
            }
            .write(&dir.path().join("mwlbridge.toml"));
            let base = format!("{scheme}://127.0.0.1:{admin_port}");
            let healthy = |_: &Serve| {
                rt.block_on(async {
                    client
                        .get(format!("{base}/healthz"))
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success())
                })
            };
            let Some(serve) =
                Serve::start_on(dicom_port, &config, &db, &ServeOpts::synced(), &healthy)
            else {
                continue;
            };
            return Admin {
                serve,
                dicom_port,
                base,
                admin_port,
                config,
                fake,
                _dir: dir,
                client,
                rt,
            };
        }
        panic!("mwlbridge serve did not start on 5 port pairs");
    }

    fn config_str(&self) -> &str {
        self.config.to_str().expect("utf-8 path")
    }

    /// `mwlbridge token create` with this server's config; the token.
    fn token(&self, name: &str, role: &str) -> String {
        create_token(&self.config, name, role)
    }

    /// The server's log so far.
    fn log(&self) -> String {
        self.serve.log()
    }

    /// Sends a request: `auth` is the whole Authorization header value.
    fn send(
        &self,
        method: Method,
        path: &str,
        auth: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<(&str, String)>,
    ) -> Answer {
        let url = format!("{}{path}", self.base);
        let mut rb = self.client.request(method, url);
        if let Some(a) = auth {
            rb = rb.header("authorization", a);
        }
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        if let Some((content_type, body)) = body {
            rb = rb.header("content-type", content_type).body(body);
        }
        self.rt.block_on(async {
            let r = rb.send().await.expect("HTTP request");
            let status = r.status();
            let headers = r.headers().clone();
            let body = r.text().await.expect("body");
            Answer {
                status,
                headers,
                body,
            }
        })
    }

    /// GET without credentials.
    fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, None, &[], None)
    }

    /// An API call with a Bearer token and an optional JSON body.
    fn api(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> Answer {
        let auth = format!("Bearer {token}");
        self.send(
            method,
            path,
            Some(&auth),
            &[],
            body.map(|b| ("application/json", b.to_string())),
        )
    }

    /// A form POST (the status page), with a cookie.
    fn form(&self, path: &str, cookie: Option<&str>, fields: &[(&str, &str)]) -> Answer {
        let body = fields
            .iter()
            .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let cookie_header;
        let mut headers: Vec<(&str, &str)> = Vec::new();
        if let Some(c) = cookie {
            cookie_header = c.to_string();
            headers.push(("cookie", &cookie_header));
        }
        self.send(
            Method::POST,
            path,
            None,
            &headers,
            Some(("application/x-www-form-urlencoded", body)),
        )
    }

    /// The PatientIDs of `GET /api/v1/worklist?QUERY`, sorted.
    fn worklist_ids(&self, token: &str, query: &str) -> Vec<String> {
        let a = self.api(
            Method::GET,
            &format!("/api/v1/worklist?{query}"),
            token,
            None,
        );
        a.expect(StatusCode::OK);
        let mut ids: Vec<String> = a
            .json()
            .as_array()
            .expect("array")
            .iter()
            .map(|e| e["patient_id"].as_str().expect("patient_id").to_string())
            .collect();
        ids.sort();
        ids
    }

    /// The sync runs the API lists (newest first).
    fn sync_runs(&self, token: &str) -> Vec<Value> {
        let a = self.api(Method::GET, "/api/v1/sync-runs?limit=100", token, None);
        a.expect(StatusCode::OK);
        a.json().as_array().expect("array").clone()
    }
}

fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                (b as char).to_string()
            }
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `mwlbridge token create --config CONFIG --name NAME --role ROLE`; the token.
fn create_token(config: &Path, name: &str, role: &str) -> String {
    let config = config.to_str().expect("utf-8 path");
    let o = common::run(&[
        "token", "create", "--config", config, "--name", name, "--role", role,
    ]);
    assert!(o.status.success(), "token create: {}", stderr(&o));
    let token = stdout(&o).trim().to_string();
    assert!(token.starts_with("mwlb_"), "{token:?}");
    token
}

fn ids(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// Polls `f` until it returns `Some`, for at most `secs` seconds.
fn poll<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The field names of an error body's `fields`.
fn fields_of(a: &Answer) -> Vec<String> {
    a.json()["fields"]
        .as_array()
        .map(|f| {
            f.iter()
                .map(|p| p["field"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// 1. Authentication and roles

#[test]
fn tokens_are_required_checked_revocable_and_never_logged() {
    let site = Admin::start(mwl_bookings(), Options::default());
    let reader = site.token("reader", "read");
    let writer = site.token("writer", "write");
    let doomed = site.token("doomed", "write");
    let list = "/api/v1/worklist";

    // No token.
    let a = site.get(list);
    a.expect(StatusCode::UNAUTHORIZED);
    assert!(
        a.header("www-authenticate").starts_with("Bearer"),
        "{:?}",
        a.headers
    );
    assert!(a.json()["error"].is_string(), "{}", a.body);
    // Malformed: not a Bearer header, not of our form.
    for auth in [
        "Basic bXdsYnJpZGdlOnNlY3JldA==".to_string(),
        "Bearer nonsense".to_string(),
        format!("Bearer {}", &reader[..reader.len() - 1]),
        reader.clone(),
    ] {
        let a = site.send(Method::GET, list, Some(&auth), &[], None);
        a.expect(StatusCode::UNAUTHORIZED);
        assert!(a.headers.contains_key("www-authenticate"));
    }
    // Well formed, unknown.
    let unknown = format!("mwlb_{}_{}", "0".repeat(12), "a".repeat(64));
    site.api(Method::GET, list, &unknown, None)
        .expect(StatusCode::UNAUTHORIZED);
    // A known public id with a wrong secret.
    let mut wrong = reader.clone();
    let last = wrong.pop().expect("char");
    wrong.push(if last == '0' { '1' } else { '0' });
    site.api(Method::GET, list, &wrong, None)
        .expect(StatusCode::UNAUTHORIZED);

    // Good tokens read.
    site.api(Method::GET, list, &reader, None)
        .expect(StatusCode::OK);
    // The scheme is case-insensitive.
    site.send(
        Method::GET,
        list,
        Some(&format!("bearer {reader}")),
        &[],
        None,
    )
    .expect(StatusCode::OK);
    site.api(Method::GET, list, &doomed, None)
        .expect(StatusCode::OK);
    // Revoked: refused at once (even though its verification was remembered).
    let o = common::run(&["token", "revoke", "--config", site.config_str(), "doomed"]);
    assert!(o.status.success(), "revoke: {}", stderr(&o));
    site.api(Method::GET, list, &doomed, None)
        .expect(StatusCode::UNAUTHORIZED);

    // A read token on every write endpoint: 403; the writer passes the role check.
    let manual = json!({
        "record_id": "ro-1", "patient_id": "RO1",
        "start_date": today_da(), "start_time": "0930"
    });
    let status = json!({ "status": "DISCONTINUED" });
    let writes: [(Method, &str, Option<Value>); 5] = [
        (Method::POST, "/api/v1/manual-entries", Some(manual.clone())),
        (
            Method::PUT,
            "/api/v1/manual-entries/ro-1",
            Some(manual.clone()),
        ),
        (Method::DELETE, "/api/v1/manual-entries/ro-1", None),
        (
            Method::PUT,
            "/api/v1/entries/calpendo/101/status",
            Some(status.clone()),
        ),
        (Method::POST, "/api/v1/sources/calpendo/sync", None),
    ];
    for (method, path, body) in &writes {
        let a = site.api(method.clone(), path, &reader, body.clone());
        assert_eq!(
            a.status,
            StatusCode::FORBIDDEN,
            "{method} {path}: {}",
            a.body
        );
        assert!(a.body.contains("write token"), "{}", a.body);
        let a = site.api(method.clone(), path, &doomed, body.clone());
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{method} {path}");
    }
    // Nothing was written by the refused requests.
    site.api(Method::GET, "/api/v1/entries/manual/ro-1", &reader, None)
        .expect(StatusCode::NOT_FOUND);
    let e = site.api(Method::GET, "/api/v1/entries/calpendo/101", &reader, None);
    assert_eq!(e.expect(StatusCode::OK).json()["status"], "SCHEDULED");
    // The writer may.
    site.api(
        Method::POST,
        "/api/v1/manual-entries",
        &writer,
        Some(manual),
    )
    .expect(StatusCode::CREATED);

    // The log names refusals, never a token.
    let log = poll(10, "the refusals in the log", || {
        let log = site.log();
        (log.contains("refused an API token")
            && log.contains("read-only token used on a write endpoint")
            && log.contains("wrong secret"))
        .then_some(log)
    });
    for t in [&reader, &writer, &doomed, &wrong, &unknown] {
        let secret = t.rsplit('_').next().expect("secret");
        assert!(
            !log.contains(secret),
            "a token secret is in the log:\n{log}"
        );
    }
    assert!(!log.contains("mwlb_"), "a token is in the log:\n{log}");
    assert!(log.contains("token_name=reader"), "{log}");
}

// ---------------------------------------------------------------------------------------
// 2. Unauthenticated endpoints

#[test]
fn health_readiness_metrics_and_the_login_page_hold_no_subject_data() {
    let site = Admin::start(mwl_bookings(), Options::default());
    let h = site.get("/healthz");
    h.expect(StatusCode::OK);
    assert_eq!(h.body.trim(), "ok");
    assert_eq!(h.header("cache-control"), "no-store");

    let r = site.get("/readyz");
    r.expect(StatusCode::OK);
    let ready = r.json();
    assert_eq!(ready["ready"], true, "{ready}");
    assert_eq!(ready["store"], "ok", "{ready}");
    let sources = ready["sources"].as_array().expect("sources");
    assert_eq!(sources.len(), 1, "{ready}");
    assert_eq!(sources[0]["name"], "calpendo");
    assert_eq!(sources[0]["last_outcome"], "success");
    assert_eq!(sources[0]["ready"], true);
    assert_eq!(sources[0]["interval_seconds"], 3600);

    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/",
        "/api/v1/openapi.json",
    ] {
        let a = site.get(path);
        a.expect(StatusCode::OK);
        for s in SUBJECT_DATA {
            assert!(!a.body.contains(s), "{path} shows {s}:\n{}", a.body);
        }
    }
    let doc = site.get("/api/v1/openapi.json").json();
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with('3')));
    for p in [
        "/api/v1/worklist",
        "/api/v1/manual-entries",
        "/api/v1/entries/{source}/{record_id}/status",
        "/api/v1/sources/{name}/sync",
    ] {
        assert!(doc["paths"][p].is_object(), "{p} not documented");
    }
}

#[test]
fn readyz_answers_503_once_the_source_fails_for_its_intervals() {
    let site = Admin::start(
        vec![booking(201, "SUB201_Ready_Check", "3T Diagnostic", 9)],
        Options {
            sync_interval: 1,
            unready_after_intervals: 1,
            tls: None,
        },
    );
    site.fake.set_fault(Fault::Status(503), FaultScope::All);
    let body = poll(20, "/readyz to answer 503 with a failed run", || {
        let r = site.get("/readyz");
        let v = r.json();
        (r.status == StatusCode::SERVICE_UNAVAILABLE && v["sources"][0]["last_outcome"] == "failed")
            .then_some(v)
    });
    assert_eq!(body["ready"], false, "{body}");
    assert_eq!(body["store"], "ok", "{body}");
    assert_eq!(body["sources"][0]["name"], "calpendo", "{body}");
    assert_eq!(body["sources"][0]["ready"], false, "{body}");
    assert!(body["sources"][0]["last_success_at"].is_string(), "{body}");
    assert!(!body.to_string().contains("SUB201"), "{body}");
    // Healthy again once the source answers.
    site.fake.clear_fault();
    poll(20, "/readyz to answer 200 again", || {
        (site.get("/readyz").status == StatusCode::OK).then_some(())
    });
    // Liveness never depended on it.
    site.get("/healthz").expect(StatusCode::OK);
}

// ---------------------------------------------------------------------------------------
// 3. Worklist filters

#[test]
fn worklist_filters_select_the_right_entries_and_bad_ones_are_named() {
    let site = Admin::start(mwl_bookings(), Options::default());
    let t = site.token("reader", "read");
    let all = ids(&[
        "SUB101", "SUB102", "SUB103", "SUB104", "SUB105", "SUB106", "SUB107", "SUB108", "SUB109",
        "SUB110",
    ]);
    let today_ids = ids(&[
        "SUB101", "SUB102", "SUB103", "SUB104", "SUB105", "SUB106", "SUB107", "SUB109", "SUB110",
    ]);
    let (td, tm) = (today_da(), tomorrow_da());
    let cases: Vec<(String, Vec<String>)> = vec![
        (String::new(), all.clone()),
        ("date=today".into(), today_ids.clone()),
        ("date=tomorrow".into(), ids(&["SUB108"])),
        (format!("date={tm}"), ids(&["SUB108"])),
        (format!("date={td}"), today_ids.clone()),
        (format!("from={td}&to={tm}"), all.clone()),
        (format!("from={tm}"), ids(&["SUB108"])),
        (format!("to={td}"), today_ids.clone()),
        ("date=19990101".into(), vec![]),
        (
            "station=MRI_7T".into(),
            ids(&["SUB103", "SUB109", "SUB110"]),
        ),
        (
            "station=MRI_3T&date=today".into(),
            ids(&["SUB101", "SUB105", "SUB107"]),
        ),
        ("modality=EEG".into(), ids(&["SUB102", "SUB106"])),
        ("modality=OT".into(), ids(&["SUB104"])),
        ("modality=MR&date=tomorrow".into(), ids(&["SUB108"])),
        (
            "status=SCHEDULED".into(),
            ids(&[
                "SUB101", "SUB102", "SUB103", "SUB104", "SUB105", "SUB106", "SUB108",
            ]),
        ),
        ("status=DISCONTINUED".into(), ids(&["SUB107"])),
        (
            "status=COMPLETED,started".into(),
            ids(&["SUB109", "SUB110"]),
        ),
        (
            "status=COMPLETED,DISCONTINUED&station=MRI_3T".into(),
            ids(&["SUB107"]),
        ),
        ("source=calpendo".into(), all.clone()),
        ("source=manual".into(), vec![]),
    ];
    for (query, expected) in &cases {
        assert_eq!(&site.worklist_ids(&t, query), expected, "?{query}");
    }
    // Entries carry their station, modality and DICOM date and time.
    let a = site.api(Method::GET, "/api/v1/worklist?date=tomorrow", &t, None);
    let e = &a.expect(StatusCode::OK).json()[0];
    assert_eq!(e["source"], "calpendo");
    assert_eq!(e["record_id"], "108");
    assert_eq!(e["station_ae_title"], "MRI_3T");
    assert_eq!(e["modality"], "MR");
    assert_eq!(e["start_date"], tm.as_str());
    assert_eq!(e["start_time"], "090000");
    assert_eq!(e["patient_name"], "Doe^Tomorrow");
    assert_eq!(e["status_set_by"], "sync");

    // Bad values: 400 naming the field.
    for (query, field) in [
        ("date=2026-11-26", "date"),
        ("date=yesterday", "date"),
        ("from=1234", "from"),
        ("to=20261399", "to"),
        ("status=DONE", "status"),
        ("status=SCHEDULED,,", "status"),
    ] {
        let a = site.api(Method::GET, &format!("/api/v1/worklist?{query}"), &t, None);
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "?{query}: {}", a.body);
        assert_eq!(fields_of(&a), [field], "?{query}: {}", a.body);
    }
    // An unknown filter is refused (not ignored), naming it.
    let a = site.api(Method::GET, "/api/v1/worklist?patient=SUB101", &t, None);
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    assert_eq!(fields_of(&a), ["patient"], "{}", a.body);
    // The sync runs' filters too.
    let a = site.api(Method::GET, "/api/v1/sync-runs?limit=x", &t, None);
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    assert!(a.json()["error"].is_string(), "{}", a.body);
}

// ---------------------------------------------------------------------------------------
// 4. Manual entries, as consoles see them

fn find_manual(site: &Admin, patient_id: &str) -> common::scp::FindResult {
    let r = findscu(
        site.dicom_port,
        &[
            &format!("PatientID={patient_id}"),
            "PatientName",
            &sps("ScheduledStationAETitle"),
            &sps("ScheduledProcedureStepStartDate"),
            &sps("ScheduledProcedureStepStartTime"),
            &sps("Modality"),
        ],
        &[],
    );
    r.assert_success();
    r
}

#[test]
fn manual_entries_are_created_updated_and_deleted_as_findscu_sees() {
    let site = Admin::start(mwl_bookings(), Options::default());
    let w = site.token("writer", "write");
    let td = today_da();
    let entry = json!({
        "record_id": "walkin-1",
        "patient_id": "WALKIN1",
        "patient_name": "Walker^Ann",
        "station_ae_title": "MRI_3T",
        "modality": "MR",
        "start_date": td,
        "start_time": "1430",
        "sps_description": "Phantom QA"
    });
    assert!(find_manual(&site, "WALKIN1").responses.is_empty());
    let a = site.api(
        Method::POST,
        "/api/v1/manual-entries",
        &w,
        Some(entry.clone()),
    );
    a.expect(StatusCode::CREATED);
    assert_eq!(a.header("location"), "/api/v1/entries/manual/walkin-1");
    let created = a.json();
    assert_eq!(created["source"], "manual");
    assert_eq!(created["status"], "SCHEDULED");
    assert_eq!(created["status_set_by"], "admin");
    assert_eq!(created["start_time"], "143000");
    let got = site.api(Method::GET, &a.header("location"), &w, None);
    assert_eq!(
        got.expect(StatusCode::OK).json()["patient_name"],
        "Walker^Ann"
    );

    let r = find_manual(&site, "WALKIN1");
    assert_eq!(r.responses.len(), 1, "{}", r.output);
    let item = &r.responses[0];
    assert_eq!(text(item, tags::PATIENT_NAME), "Walker^Ann");
    let step = sps_item(item);
    assert_eq!(text(step, tags::SCHEDULED_STATION_AE_TITLE), "MRI_3T");
    assert_eq!(text(step, tags::SCHEDULED_PROCEDURE_STEP_START_DATE), td);
    assert_eq!(
        text(step, tags::SCHEDULED_PROCEDURE_STEP_START_TIME),
        "143000"
    );
    assert_eq!(text(step, tags::MODALITY), "MR");

    // The same record id again: 409, and the first one is untouched.
    let dup = json!({ "record_id": "walkin-1", "patient_id": "OTHER", "start_date": td, "start_time": "0800" });
    let a = site.api(Method::POST, "/api/v1/manual-entries", &w, Some(dup));
    a.expect(StatusCode::CONFLICT);
    assert!(
        a.json()["error"]
            .as_str()
            .is_some_and(|e| e.contains("walkin-1"))
    );
    assert!(find_manual(&site, "OTHER").responses.is_empty());

    // Update: findscu sees the new values.
    let mut changed = entry.clone();
    changed["patient_name"] = json!("Walker^Anne");
    changed["station_ae_title"] = json!("MRI_7T");
    changed["start_time"] = json!("154500");
    let a = site.api(
        Method::PUT,
        "/api/v1/manual-entries/walkin-1",
        &w,
        Some(changed),
    );
    assert_eq!(a.expect(StatusCode::OK).json()["start_time"], "154500");
    let r = find_manual(&site, "WALKIN1");
    assert_eq!(r.responses.len(), 1, "{}", r.output);
    assert_eq!(text(&r.responses[0], tags::PATIENT_NAME), "Walker^Anne");
    let step = sps_item(&r.responses[0]);
    assert_eq!(text(step, tags::SCHEDULED_STATION_AE_TITLE), "MRI_7T");
    assert_eq!(
        text(step, tags::SCHEDULED_PROCEDURE_STEP_START_TIME),
        "154500"
    );
    // A mismatching record_id in the body and updating a missing entry are refused.
    let mut other = entry.clone();
    other["record_id"] = json!("walkin-2");
    let a = site.api(
        Method::PUT,
        "/api/v1/manual-entries/walkin-1",
        &w,
        Some(other),
    );
    a.expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields_of(&a), ["record_id"]);
    let mut missing = entry.clone();
    missing["record_id"] = json!("nope");
    site.api(
        Method::PUT,
        "/api/v1/manual-entries/nope",
        &w,
        Some(missing),
    )
    .expect(StatusCode::NOT_FOUND);
    // Synced entries are not manual entries.
    site.api(Method::DELETE, "/api/v1/manual-entries/101", &w, None)
        .expect(StatusCode::NOT_FOUND);

    // Delete: gone for consoles too.
    let a = site.api(Method::DELETE, "/api/v1/manual-entries/walkin-1", &w, None);
    a.expect(StatusCode::NO_CONTENT);
    assert!(a.body.is_empty());
    assert!(find_manual(&site, "WALKIN1").responses.is_empty());
    site.api(Method::DELETE, "/api/v1/manual-entries/walkin-1", &w, None)
        .expect(StatusCode::NOT_FOUND);
    site.api(Method::GET, "/api/v1/entries/manual/walkin-1", &w, None)
        .expect(StatusCode::NOT_FOUND);

    // Invalid values: 422 naming each field, nothing stored.
    let base = json!({ "patient_id": "BAD1", "start_date": td, "start_time": "0900" });
    for (field, value) in [
        ("start_date", json!("2026-11-26")),
        ("start_date", json!("20261332")),
        ("start_time", json!("25:00")),
        ("start_time", json!("2460")),
        ("station_ae_title", json!("A_STATION_TITLE_TOO_LONG")),
        ("study_instance_uid", json!("1.2.abc")),
        ("patient_name", json!("a^b^c^d^e^f")),
        ("patient_birth_date", json!("19991301")),
        ("status", json!("DONE")),
        ("record_id", json!("has space")),
    ] {
        let mut body = base.clone();
        body[field] = value.clone();
        let a = site.api(Method::POST, "/api/v1/manual-entries", &w, Some(body));
        assert_eq!(
            a.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}={value}: {}",
            a.body
        );
        assert_eq!(fields_of(&a), [field], "{field}={value}: {}", a.body);
    }
    // Every problem at once.
    let mut body = base.clone();
    body["start_date"] = json!("x");
    body["station_ae_title"] = json!("A_STATION_TITLE_TOO_LONG");
    let a = site.api(Method::POST, "/api/v1/manual-entries", &w, Some(body));
    a.expect(StatusCode::UNPROCESSABLE_ENTITY);
    let f: BTreeSet<String> = fields_of(&a).into_iter().collect();
    assert!(f.contains("start_date"), "{}", a.body);
    // An unknown JSON field: refused, named (axum's JSON rejection, plain text).
    let mut body = base.clone();
    body["colour"] = json!("red");
    let a = site.api(Method::POST, "/api/v1/manual-entries", &w, Some(body));
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    assert_eq!(fields_of(&a), ["colour"], "{}", a.body);
    // A required field missing, and a body that is not JSON.
    let a = site.api(
        Method::POST,
        "/api/v1/manual-entries",
        &w,
        Some(json!({ "patient_id": "BAD1", "start_date": td })),
    );
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    assert_eq!(fields_of(&a), ["start_time"], "{}", a.body);
    let a = site.send(
        Method::POST,
        "/api/v1/manual-entries",
        Some(&format!("Bearer {w}")),
        &[],
        Some(("application/json", "{not json".into())),
    );
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
    assert!(a.json()["error"].is_string(), "{}", a.body);
    // A body without a JSON content type.
    let a = site.send(
        Method::POST,
        "/api/v1/manual-entries",
        Some(&format!("Bearer {w}")),
        &[],
        Some(("text/plain", base.to_string())),
    );
    assert_eq!(a.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", a.body);
    assert!(a.json()["error"].is_string(), "{}", a.body);
    assert!(find_manual(&site, "BAD1").responses.is_empty());
    assert!(site.worklist_ids(&w, "source=manual").is_empty());
}

// ---------------------------------------------------------------------------------------
// 5. Status overrides survive syncs

#[test]
fn a_status_override_survives_a_sync_that_updates_other_bookings() {
    let site = Admin::start(mwl_bookings(), Options::default());
    let w = site.token("writer", "write");
    let path = "/api/v1/entries/calpendo/101/status";
    let a = site.api(
        Method::PUT,
        path,
        &w,
        Some(json!({ "status": "DISCONTINUED" })),
    );
    let e = a.expect(StatusCode::OK).json();
    assert_eq!(e["status"], "DISCONTINUED");
    assert_eq!(e["status_set_by"], "admin");
    // Bad overrides.
    let a = site.api(Method::PUT, path, &w, Some(json!({ "status": "FINISHED" })));
    a.expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields_of(&a), ["status"]);
    site.api(
        Method::PUT,
        "/api/v1/entries/calpendo/999/status",
        &w,
        Some(json!({ "status": "COMPLETED" })),
    )
    .expect(StatusCode::NOT_FOUND);

    // Meanwhile in Calpendo: 103 moves to 11:00, 101 itself is renamed.
    let mut moved = booking(103, "SUB103_Leblanc_Annemarie", "7T Research", 11);
    moved.end = moved.start + jiff::Span::new().hours(1);
    site.fake.upsert_booking(moved);
    site.fake
        .upsert_booking(booking(101, "SUB101_Tremblay_Maria", "3T Diagnostic", 8));

    let before = site.sync_runs(&w).len();
    let a = site.api(
        Method::POST,
        "/api/v1/sources/calpendo/sync?wait=true",
        &w,
        None,
    );
    let run = a.expect(StatusCode::OK).json();
    assert_eq!(run["source"], "calpendo", "{run}");
    assert_eq!(run["outcome"], "success", "{run}");
    assert!(run["updated"].as_u64().is_some_and(|n| n >= 2), "{run}");
    assert_eq!(site.sync_runs(&w).len(), before + 1);

    let e = site
        .api(Method::GET, "/api/v1/entries/calpendo/101", &w, None)
        .expect(StatusCode::OK)
        .json();
    assert_eq!(e["status"], "DISCONTINUED", "{e}");
    assert_eq!(e["status_set_by"], "admin", "{e}");
    assert_eq!(
        e["patient_name"], "Tremblay^Maria",
        "the values did sync: {e}"
    );
    let e = site
        .api(Method::GET, "/api/v1/entries/calpendo/103", &w, None)
        .expect(StatusCode::OK)
        .json();
    assert_eq!(e["start_time"], "110000", "{e}");

    // Consoles: no longer offered without a status key; 103 at its new time.
    let r = findscu(
        site.dicom_port,
        &["PatientID", &sps("ScheduledProcedureStepStartTime")],
        &[],
    );
    r.assert_success();
    let offered = r.patient_ids();
    assert!(!offered.contains(&"SUB101".to_string()), "{offered:?}");
    assert!(offered.contains(&"SUB105".to_string()), "{offered:?}");
    assert_eq!(
        text(
            sps_item(r.by_patient_id("SUB103")),
            tags::SCHEDULED_PROCEDURE_STEP_START_TIME
        ),
        "110000"
    );
    // Still there when asked for.
    let r = findscu(
        site.dicom_port,
        &[
            "PatientID=SUB101",
            &sps("ScheduledProcedureStepStatus=DISCONTINUED"),
        ],
        &[],
    );
    r.assert_success();
    assert_eq!(r.patient_ids(), ["SUB101"]);

    // Syncing without waiting: 202; an unknown source: 404.
    let a = site.api(Method::POST, "/api/v1/sources/calpendo/sync", &w, None);
    a.expect(StatusCode::ACCEPTED);
    site.api(Method::POST, "/api/v1/sources/redcap/sync", &w, None)
        .expect(StatusCode::NOT_FOUND);
    poll(20, "the queued sync run", || {
        (site.sync_runs(&w).len() > before + 1).then_some(())
    });
    let e = site
        .api(Method::GET, "/api/v1/entries/calpendo/101", &w, None)
        .expect(StatusCode::OK)
        .json();
    assert_eq!(
        (e["status"].as_str(), e["status_set_by"].as_str()),
        (Some("DISCONTINUED"), Some("admin"))
    );
}

// ---------------------------------------------------------------------------------------
// 6. Metrics

/// One sample of an exposition: name, labels, value.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the OpenMetrics text format strictly enough to catch a broken exposition:
/// `# TYPE` / `# HELP` / `# UNIT` comments, `# EOF` last, every sample `name{labels} value`
/// of a family declared by a `# TYPE` before it.
fn parse_openmetrics(text: &str) -> Vec<Sample> {
    let mut families: BTreeMap<String, String> = BTreeMap::new();
    let mut samples = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.last(), Some(&"# EOF"), "no # EOF at the end");
    let valid_name = |n: &str| {
        !n.is_empty()
            && n.chars().enumerate().all(|(i, c)| {
                c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
            })
    };
    for line in &lines[..lines.len() - 1] {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kind, name, value) = (
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
            );
            assert!(valid_name(name), "bad family name in {line:?}");
            match kind {
                "TYPE" => {
                    assert!(
                        [
                            "counter",
                            "gauge",
                            "histogram",
                            "summary",
                            "info",
                            "stateset",
                            "gaugehistogram",
                            "unknown"
                        ]
                        .contains(&value),
                        "{line:?}"
                    );
                    assert!(
                        families
                            .insert(name.to_string(), value.to_string())
                            .is_none(),
                        "family {name} declared twice"
                    );
                }
                "HELP" | "UNIT" => {}
                _ => panic!("unknown comment {line:?}"),
            }
            continue;
        }
        assert!(!line.starts_with('#'), "bad comment {line:?}");
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value in {line:?}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series, BTreeMap::new()),
            Some((name, rest)) => {
                let inner = rest
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("unclosed labels in {line:?}"));
                (name, parse_labels(inner, line))
            }
        };
        assert!(valid_name(name), "bad metric name in {line:?}");
        let family = families
            .keys()
            .filter(|f| {
                name == f.as_str()
                    || name.strip_prefix(f.as_str()).is_some_and(|s| {
                        ["_total", "_created", "_bucket", "_count", "_sum", "_info"].contains(&s)
                    })
            })
            .max_by_key(|f| f.len())
            .unwrap_or_else(|| panic!("sample {name} has no # TYPE before it"));
        if families[family] == "histogram" && name.ends_with("_bucket") {
            assert!(labels.contains_key("le"), "bucket without le: {line:?}");
        }
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    assert!(!samples.is_empty());
    samples
}

fn parse_labels(inner: &str, line: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut chars = inner.chars().peekable();
    while chars.peek().is_some() {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        assert!(
            !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad label name in {line:?}"
        );
        assert_eq!(chars.next(), Some('"'), "unquoted label value in {line:?}");
        let mut value = String::new();
        loop {
            match chars.next() {
                Some('\\') => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(c @ ('\\' | '"')) => value.push(c),
                    other => panic!("bad escape {other:?} in {line:?}"),
                },
                Some('"') => break,
                Some(c) => value.push(c),
                None => panic!("unterminated label value in {line:?}"),
            }
        }
        assert!(
            labels.insert(key.clone(), value).is_none(),
            "label {key} twice in {line:?}"
        );
        match chars.next() {
            None => break,
            Some(',') => {}
            Some(c) => panic!("unexpected {c:?} in {line:?}"),
        }
    }
    labels
}

/// The value of the sample `name` with exactly `labels`.
fn sample(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let want: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    samples
        .iter()
        .find(|s| s.name == name && s.labels == want)
        .unwrap_or_else(|| panic!("no sample {name}{labels:?}"))
        .value
}

#[test]
fn metrics_parse_and_move_with_queries_and_syncs() {
    let site = Admin::start(mwl_bookings(), Options::default());
    let w = site.token("writer", "write");
    let scrape = || {
        let a = site.get("/metrics");
        a.expect(StatusCode::OK);
        assert!(
            a.header("content-type")
                .starts_with("application/openmetrics-text"),
            "{:?}",
            a.headers
        );
        parse_openmetrics(&a.body)
    };
    let before = scrape();
    let finds = ("mwlbridge_find_requests_total", [("status", "success")]);
    let find_count = "mwlbridge_find_duration_seconds_count";
    let runs = (
        "mwlbridge_sync_runs_total",
        [("source", "calpendo"), ("outcome", "success")],
    );
    assert_eq!(sample(&before, runs.0, &runs.1), 1.0, "the first sync");
    let build: Vec<_> = before
        .iter()
        .filter(|s| s.name == "mwlbridge_build_info")
        .collect();
    assert_eq!(build.len(), 1, "{build:?}");
    assert_eq!(build[0].value, 1.0);

    // A C-FIND moves the request counter and the duration histogram by one.
    let r = findscu(site.dicom_port, &["PatientID"], &[]);
    r.assert_success();
    let after = poll(10, "the C-FIND in the metrics", || {
        let m = scrape();
        (sample(&m, finds.0, &finds.1) > sample(&before, finds.0, &finds.1)).then_some(m)
    });
    assert_eq!(
        sample(&after, finds.0, &finds.1),
        sample(&before, finds.0, &finds.1) + 1.0
    );
    assert_eq!(
        sample(&after, find_count, &[]),
        sample(&before, find_count, &[]) + 1.0
    );
    let returned = "mwlbridge_find_items_returned_total";
    assert_eq!(
        sample(&after, returned, &[]) - sample(&before, returned, &[]),
        r.responses.len() as f64
    );

    // A sync now moves the runs counter.
    let run = site
        .api(
            Method::POST,
            "/api/v1/sources/calpendo/sync?wait=true",
            &w,
            None,
        )
        .expect(StatusCode::OK)
        .json();
    assert_eq!(run["outcome"], "success");
    let m = scrape();
    assert_eq!(sample(&m, runs.0, &runs.1), 2.0);
    assert_eq!(
        sample(
            &m,
            "mwlbridge_sync_runs_total",
            &[("source", "calpendo"), ("outcome", "failed")]
        ),
        0.0
    );
    assert_eq!(
        sample(
            &m,
            "mwlbridge_sync_duration_seconds_count",
            &[("source", "calpendo")]
        ),
        2.0
    );

    // The entries gauge is the store's count by status.
    for status in ["SCHEDULED", "STARTED", "COMPLETED", "DISCONTINUED"] {
        let n = site.worklist_ids(&w, &format!("status={status}")).len();
        assert_eq!(
            sample(&m, "mwlbridge_worklist_entries", &[("status", status)]),
            n as f64,
            "{status}"
        );
    }
    assert_eq!(
        sample(&m, "mwlbridge_worklist_entries", &[("status", "SCHEDULED")]),
        7.0
    );
    // A new manual entry shows at the next scrape.
    site.api(
        Method::POST,
        "/api/v1/manual-entries",
        &w,
        Some(json!({ "patient_id": "M1", "start_date": today_da(), "start_time": "0700" })),
    )
    .expect(StatusCode::CREATED);
    assert_eq!(
        sample(
            &scrape(),
            "mwlbridge_worklist_entries",
            &[("status", "SCHEDULED")]
        ),
        8.0
    );
}

// ---------------------------------------------------------------------------------------
// 7. The token commands

#[test]
fn token_commands_refuse_duplicates_and_bad_names_and_never_list_secrets() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The token commands need no data source running.
    let config = write_server_config(dir.path(), "http://127.0.0.1:9", "");
    let c = config.to_str().expect("utf-8");
    let first = create_token(&config, "ci-bot", "write");
    let reader = create_token(&config, "dash.board", "read");
    assert_ne!(first, reader);
    let parts: Vec<&str> = first.split('_').collect();
    assert_eq!(parts.len(), 3, "{first}");
    assert_eq!((parts[1].len(), parts[2].len()), (12, 64), "{first}");

    let o = common::run(&[
        "token", "create", "--config", c, "--name", "ci-bot", "--role", "read",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stdout(&o).trim().is_empty(), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(err.contains("ci-bot"), "{err}");
    assert!(
        err.contains("exists") || err.contains("taken") || err.contains("already"),
        "{err}"
    );
    for bad in ["has space", "ünï", "", &"x".repeat(65)] {
        let o = common::run(&[
            "token", "create", "--config", c, "--name", bad, "--role", "read",
        ]);
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", stderr(&o));
        assert!(stdout(&o).trim().is_empty());
        assert!(stderr(&o).contains("not usable"), "{bad:?}: {}", stderr(&o));
    }
    let o = common::run(&[
        "token", "create", "--config", c, "--name", "x", "--role", "admin",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));

    let o = common::run(&["token", "list", "--config", c]);
    assert!(o.status.success(), "{}", stderr(&o));
    let list = stdout(&o);
    let line = |name: &str| {
        list.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} not listed:\n{list}"))
            .to_string()
    };
    assert_eq!(line("ci-bot").split_whitespace().nth(1), Some("write"));
    assert_eq!(line("dash.board").split_whitespace().nth(1), Some("read"));
    assert!(line("ci-bot").contains("active"), "{list}");
    for t in [&first, &reader] {
        for part in t.split('_').skip(1) {
            assert!(!list.contains(part), "a token part is listed:\n{list}");
        }
    }
    assert!(!list.contains("argon2"), "{list}");

    let o = common::run(&["token", "revoke", "--config", c, "ci-bot"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let list = stdout(&common::run(&["token", "list", "--config", c]));
    assert!(
        list.lines()
            .any(|l| l.starts_with("ci-bot") && l.contains("revoked")),
        "{list}"
    );
    let o = common::run(&["token", "revoke", "--config", c, "ci-bot"]);
    assert_eq!(o.status.code(), Some(2), "revoking twice: {}", stderr(&o));
    let o = common::run(&["token", "revoke", "--config", c, "nobody"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("nobody"), "{}", stderr(&o));
}

// ---------------------------------------------------------------------------------------
// 8. HTTPS

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed server certificate for 127.0.0.1 / localhost: (certificate, key).
fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "admin.key",
            "-out",
            "admin.pem",
            "-subj",
            "/CN=localhost",
            "-days",
            "2",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-addext",
            "extendedKeyUsage=serverAuth",
        ],
    );
    (dir.join("admin.pem"), dir.join("admin.key"))
}

#[test]
fn https_serves_the_api_and_secure_cookies_and_refuses_plain_http() {
    let certs = tempfile::tempdir().expect("tempdir");
    let (cert, key) = self_signed(certs.path());
    let site = Admin::start(
        mwl_bookings(),
        Options {
            tls: Some((cert, key)),
            ..Options::default()
        },
    );
    assert!(site.base.starts_with("https://"));
    let t = site.token("reader", "read");
    let ids = site.worklist_ids(&t, "date=tomorrow");
    assert_eq!(ids, ["SUB108"]);
    site.get("/healthz").expect(StatusCode::OK);
    site.get("/api/v1/worklist")
        .expect(StatusCode::UNAUTHORIZED);

    // The sign-in form's pre-session cookie is host-only and Secure (`__Host-`).
    let page = site.get("/");
    let login_cookie = page.header("set-cookie");
    assert!(
        login_cookie.starts_with("__Host-mwlbridge_login="),
        "{login_cookie}"
    );
    let a = sign_in(&site, &site.client, &t);
    a.expect(StatusCode::SEE_OTHER);
    for cookie in [a.header("set-cookie"), login_cookie] {
        for attr in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
            assert!(
                cookie.split(';').any(|p| p.trim() == attr),
                "{attr} missing: {cookie}"
            );
        }
    }

    // Plain HTTP to the HTTPS port gets no HTTP answer.
    let plain = client_builder().build().expect("client");
    let url = format!("http://127.0.0.1:{}/healthz", site.admin_port);
    let result = site.rt.block_on(async { plain.get(url).send().await });
    assert!(result.is_err(), "plain HTTP answered: {result:?}");
    // A client that does not trust the certificate is refused too.
    let untrusting = client_builder().build().expect("client");
    let url = format!("{}/healthz", site.base);
    let result = site.rt.block_on(async { untrusting.get(url).send().await });
    assert!(
        result.is_err(),
        "untrusted certificate accepted: {result:?}"
    );
    // And the server still serves.
    site.get("/healthz").expect(StatusCode::OK);
}

// ---------------------------------------------------------------------------------------
// 9. The status page, without a browser

/// The `value` of the page's hidden `csrf` input.
fn scrape_csrf(page: &str) -> String {
    let at = page
        .find("name=\"csrf\"")
        .unwrap_or_else(|| panic!("no csrf input:\n{page}"));
    let rest = &page[at..];
    let v = rest
        .split("value=\"")
        .nth(1)
        .and_then(|v| v.split('"').next())
        .expect("csrf value");
    assert_eq!(v.len(), 64, "{v}");
    v.to_string()
}

/// The patient ids of the page's rows, by each row's station (`data-station`).
fn stations_of(page: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for chunk in page.split("<tr class=\"entry\"").skip(1) {
        let chunk = chunk.split("</tr>").next().unwrap_or_default();
        let station = chunk
            .split("data-station=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .expect("data-station")
            .to_string();
        let id = chunk
            .split("data-label=\"Patient ID\">")
            .nth(1)
            .and_then(|c| c.split("</td>").next())
            .expect("a patient ID cell")
            .to_string();
        out.entry(station).or_default().insert(id);
    }
    out
}

#[test]
fn the_status_page_logs_in_groups_by_station_and_checks_csrf() {
    let site = Admin::start(mwl_bookings(), Options::default());
    let w = site.token("writer", "write");
    let r = site.token("reader", "read");

    // Without a session: the login form only.
    let a = site.get("/");
    a.expect(StatusCode::OK);
    assert!(a.body.contains("action=\"/login\""), "{}", a.body);
    assert!(a.body.contains("name=\"token\""), "{}", a.body);
    for s in SUBJECT_DATA {
        assert!(!a.body.contains(s), "{s} on the login page");
    }
    assert!(
        a.header("content-security-policy")
            .contains("frame-ancestors 'none'")
    );
    // A forged cookie is no session.
    let a = site.send(
        Method::GET,
        "/",
        None,
        &[("cookie", &format!("mwlbridge_session={}", "ab".repeat(32)))],
        None,
    );
    assert!(a.body.contains("action=\"/login\"") && !a.body.contains("SUB101"));

    // A bad token: 401 page, no session cookie.
    let a = sign_in(&site, &site.client, "mwlb_nope");
    a.expect(StatusCode::UNAUTHORIZED);
    assert!(a.body.contains("not valid"), "{}", a.body);
    assert!(!a.header("set-cookie").contains("mwlbridge_session"));
    assert!(!a.body.contains("SUB101"));

    // A good token: 303 to / with the session cookie.
    let a = sign_in(&site, &site.client, &w);
    a.expect(StatusCode::SEE_OTHER);
    assert_eq!(a.header("location"), "/");
    let set_cookie = a.header("set-cookie");
    let attrs: Vec<&str> = set_cookie.split(';').map(str::trim).collect();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(attrs.contains(&attr), "{attr} missing: {set_cookie}");
    }
    assert!(
        !attrs.contains(&"Secure"),
        "Secure over plain HTTP: {set_cookie}"
    );
    let cookie = attrs[0].to_string();
    assert!(cookie.starts_with("mwlbridge_session="), "{cookie}");
    assert!(!set_cookie.contains(&w));

    // Today's entries by station; tomorrow's are not shown.
    let page = site.send(Method::GET, "/", None, &[("cookie", &cookie)], None);
    page.expect(StatusCode::OK);
    let stations = stations_of(&page.body);
    let set = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    let expected: BTreeMap<String, BTreeSet<String>> = [
        ("EEG_LAB", set(&["SUB102", "SUB106"])),
        ("MOCK", set(&["SUB104"])),
        ("MRI_3T", set(&["SUB101", "SUB105", "SUB107"])),
        ("MRI_7T", set(&["SUB103", "SUB109", "SUB110"])),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(stations, expected, "{}", page.body);
    assert!(page.body.contains("Tremblay^Marie"));
    assert!(!page.body.contains("SUB108"));
    assert!(page.body.contains("Signed in as"));
    let csrf = scrape_csrf(&page.body);

    // A wrong or missing CSRF token: 403, nothing added.
    let today = today_da();
    let manual = |csrf: &str| {
        vec![
            ("csrf", csrf.to_string()),
            ("patient_id", "PAGE1".to_string()),
            ("patient_name", "Page^Walkin".to_string()),
            ("start_date", today.clone()),
            ("start_time", "1600".to_string()),
            ("station_ae_title", "MRI_3T".to_string()),
            // Not taken: a known station's modality comes from its mapping.
            ("modality", "CT".to_string()),
        ]
    };
    let fields = manual(&"0".repeat(64));
    let refs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let a = site.form("/manual", Some(&cookie), &refs);
    a.expect(StatusCode::FORBIDDEN);
    assert!(site.worklist_ids(&w, "source=manual").is_empty());
    // Without a session, a form redirects to the login.
    let a = site.form("/sync", None, &[("csrf", &csrf), ("source", "calpendo")]);
    a.expect(StatusCode::SEE_OTHER);
    // With the page's token it is added.
    let fields = manual(&csrf);
    let refs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let a = site.form("/manual", Some(&cookie), &refs);
    a.expect(StatusCode::SEE_OTHER);
    assert_eq!(site.worklist_ids(&w, "source=manual"), ["PAGE1"]);
    // It took its station's modality, whatever the form said.
    let a = site.api(Method::GET, "/api/v1/worklist?source=manual", &w, None);
    assert_eq!(a.json()[0]["modality"], "MR", "{}", a.body);
    // A station the mapping does not name is refused, on the form, with what was typed.
    let mut fields = manual(&csrf);
    fields[1].1 = "PAGE2".to_string();
    fields[5].1 = "NOT_A_SCANNER".to_string();
    let refs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let a = site.form("/manual", Some(&cookie), &refs);
    a.expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(a.body.contains("is not a known station"), "{}", a.body);
    assert!(a.body.contains("value=\"PAGE2\""), "{}", a.body);
    assert_eq!(site.worklist_ids(&w, "source=manual"), ["PAGE1"]);

    // A row's status button: refused without the page's CSRF token or for an entry that
    // is not there (the page again, saying so); done with both, as set by admin.
    let status = |csrf: &str, record: &str| {
        vec![
            ("csrf", csrf.to_string()),
            ("source", "calpendo".to_string()),
            ("record_id", record.to_string()),
            ("status", "COMPLETED".to_string()),
        ]
    };
    let fields = status("wrong", "101");
    let refs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    site.form("/entries/status", Some(&cookie), &refs)
        .expect(StatusCode::FORBIDDEN);
    let fields = status(&csrf, "no-such-booking");
    let refs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let a = site.form("/entries/status", Some(&cookie), &refs);
    a.expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(a.body.contains("no longer in the worklist"), "{}", a.body);
    assert!(
        site.worklist_ids(&w, "status=COMPLETED")
            .contains(&"SUB109".to_string())
    );
    assert!(
        !site
            .worklist_ids(&w, "status=COMPLETED")
            .contains(&"SUB101".to_string())
    );
    let fields = status(&csrf, "101");
    let refs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let a = site.form("/entries/status", Some(&cookie), &refs);
    a.expect(StatusCode::SEE_OTHER);
    assert_eq!(a.header("location"), "/?flash=status");
    let a = site.api(Method::GET, "/api/v1/entries/calpendo/101", &w, None);
    assert_eq!(a.json()["status"], "COMPLETED", "{}", a.body);
    assert_eq!(a.json()["status_set_by"], "admin", "{}", a.body);

    // Sync now with the right token: 303 and a new run.
    let runs_before = site.sync_runs(&w).len();
    assert_eq!(runs_before, 1);
    let a = site.form(
        "/sync",
        Some(&cookie),
        &[("csrf", "wrong"), ("source", "calpendo")],
    );
    a.expect(StatusCode::FORBIDDEN);
    let a = site.form(
        "/sync",
        Some(&cookie),
        &[("csrf", &csrf), ("source", "calpendo")],
    );
    a.expect(StatusCode::SEE_OTHER);
    assert_eq!(a.header("location"), "/?flash=sync");
    poll(20, "the page's sync run", || {
        (site.sync_runs(&w).len() > runs_before).then_some(())
    });
    let page = site.send(Method::GET, "/", None, &[("cookie", &cookie)], None);
    let stations = stations_of(&page.expect(StatusCode::OK).body);
    assert!(stations["MRI_3T"].contains("PAGE1"), "{stations:?}");

    // A read-only login sees the page but may not sync.
    let a = sign_in(&site, &site.client, &r);
    let read_cookie = a.expect(StatusCode::SEE_OTHER).header("set-cookie");
    let read_cookie = read_cookie.split(';').next().expect("cookie").to_string();
    let page = site.send(Method::GET, "/", None, &[("cookie", &read_cookie)], None);
    page.expect(StatusCode::OK);
    assert!(!page.body.contains("action=\"/sync\""));
    let read_csrf = scrape_csrf(&page.body);
    let a = site.form(
        "/sync",
        Some(&read_cookie),
        &[("csrf", &read_csrf), ("source", "calpendo")],
    );
    a.expect(StatusCode::FORBIDDEN);
    assert!(!page.body.contains("action=\"/entries/status\""));
    let a = site.form(
        "/entries/status",
        Some(&read_cookie),
        &[
            ("csrf", &read_csrf),
            ("source", "calpendo"),
            ("record_id", "102"),
            ("status", "DISCONTINUED"),
        ],
    );
    a.expect(StatusCode::FORBIDDEN);
    let a = site.api(Method::GET, "/api/v1/entries/calpendo/102", &w, None);
    assert_eq!(a.json()["status"], "SCHEDULED", "{}", a.body);

    // Sign out ends the session.
    let a = site.form("/logout", Some(&cookie), &[("csrf", &csrf)]);
    a.expect(StatusCode::SEE_OTHER);
    let page = site.send(Method::GET, "/", None, &[("cookie", &cookie)], None);
    assert!(page.body.contains("action=\"/login\"") && !page.body.contains("SUB101"));
}

/// A taken admin port stops `serve` at start with exit 1 and a message that names the
/// address and the keys to change, instead of running without its admin interface.
#[test]
fn serve_names_a_taken_admin_port_and_exits_1() {
    let taken = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_server_config(
        dir.path(),
        "http://127.0.0.1:9",
        &format!("[admin]\nenabled = true\nbind = \"127.0.0.1\"\nport = {port}\n"),
    );
    let mut child = common::command(&[
        "serve",
        "--config",
        config.to_str().expect("utf-8"),
        "--port",
        &free_port().to_string(),
    ])
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve kept running with its admin port taken");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err)
        .expect("read stderr");
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "cannot listen on 127.0.0.1:{port} for the admin interface"
        )) && err.contains("admin.port"),
        "{err}"
    );
    drop(taken);
}

// ---------------------------------------------------------------------------------------
// 10. Bounds (issue 17 point 8): paging, refusal logging, token timing and guessing,
//     sessions and the sign-in form, slow and idle clients

/// The target of a `Link: <...>; rel="next"` header, if the answer has one.
fn next_link(a: &Answer) -> Option<String> {
    a.headers
        .get_all("link")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find(|l| l.contains("rel=\"next\""))
        .and_then(|l| l.split('<').nth(1))
        .and_then(|l| l.split('>').next())
        .map(str::to_string)
}

/// Follows `next` links from `first`; every page's items (each page at most `limit`),
/// and how many pages there were.
fn all_pages(site: &Admin, token: &str, first: &str, limit: usize) -> (Vec<Value>, usize) {
    let mut items = Vec::new();
    let mut url = first.to_string();
    for pages in 1..=1000 {
        let a = site.api(Method::GET, &url, token, None);
        a.expect(StatusCode::OK);
        let page = a.json().as_array().expect("a JSON array").clone();
        assert!(page.len() <= limit, "{url}: {} items", page.len());
        items.extend(page.iter().cloned());
        match next_link(&a) {
            Some(next) => {
                assert_eq!(page.len(), limit, "{url}: a short page with a next link");
                assert!(next.starts_with("/api/v1/"), "{next}");
                url = next;
            }
            None => return (items, pages),
        }
    }
    panic!("more than 1000 pages from {first}");
}

fn record_ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|e| e["record_id"].as_str().expect("record_id").to_string())
        .collect()
}

#[test]
fn every_list_endpoint_pages_with_a_bounded_limit_and_a_next_link() {
    let site = Admin::start(mwl_bookings(), Options::default());
    let w = site.token("writer", "write");

    // Small pages walk the whole worklist in its order, once each.
    let whole = site.api(Method::GET, "/api/v1/worklist", &w, None);
    let whole = record_ids(
        whole
            .expect(StatusCode::OK)
            .json()
            .as_array()
            .expect("array"),
    );
    assert_eq!(whole.len(), 10);
    let (items, pages) = all_pages(&site, &w, "/api/v1/worklist?limit=3", 3);
    assert_eq!(record_ids(&items), whole);
    assert_eq!(pages, 4);
    // The filters are kept in the next link.
    let (items, _) = all_pages(&site, &w, "/api/v1/worklist?date=today&limit=2", 2);
    let mut got: Vec<String> = items
        .iter()
        .map(|e| e["patient_id"].as_str().expect("id").to_string())
        .collect();
    got.sort();
    assert_eq!(got, site.worklist_ids(&w, "date=today"));
    // A page that ends exactly at the end has no next link.
    let a = site.api(Method::GET, "/api/v1/worklist?limit=10", &w, None);
    assert_eq!(
        a.expect(StatusCode::OK).json().as_array().map(Vec::len),
        Some(10)
    );
    assert_eq!(next_link(&a), None);

    // Limits out of range, and a cursor that is not one, are refused by name.
    for (query, field) in [
        ("limit=5001", "limit"),
        ("limit=0", "limit"),
        ("cursor=garbage", "cursor"),
    ] {
        for list in ["worklist", "sync-runs", "sources"] {
            let a = site.api(Method::GET, &format!("/api/v1/{list}?{query}"), &w, None);
            assert_eq!(
                a.status,
                StatusCode::BAD_REQUEST,
                "{list}?{query}: {}",
                a.body
            );
            assert_eq!(fields_of(&a), [field], "{list}?{query}: {}", a.body);
        }
    }
    let a = site.api(Method::GET, "/api/v1/worklist?limit=5001", &w, None);
    assert!(a.body.contains("5000"), "{}", a.body);
    site.api(Method::GET, "/api/v1/worklist?limit=5000", &w, None)
        .expect(StatusCode::OK);

    // The default page is 500 entries.
    let today = today_da();
    site.rt.block_on(async {
        for chunk in (0..501).collect::<Vec<_>>().chunks(25) {
            let sends = chunk.iter().map(|i| {
                let body = json!({
                    "record_id": format!("bulk-{i:04}"), "patient_id": format!("BULK{i:04}"),
                    "start_date": today, "start_time": "2300"
                });
                site.client
                    .post(format!("{}/api/v1/manual-entries", site.base))
                    .bearer_auth(&w)
                    .json(&body)
                    .send()
            });
            for r in futures_join(sends).await {
                assert_eq!(r.expect("POST").status(), StatusCode::CREATED);
            }
        }
    });
    let first = site.api(Method::GET, "/api/v1/worklist", &w, None);
    let page = first.expect(StatusCode::OK).json();
    assert_eq!(page.as_array().map(Vec::len), Some(500));
    assert!(next_link(&first).is_some(), "{:?}", first.headers);
    let (items, pages) = all_pages(&site, &w, "/api/v1/worklist", 500);
    assert_eq!((items.len(), pages), (511, 2));
    let unique: BTreeSet<String> = record_ids(&items).into_iter().collect();
    assert_eq!(unique.len(), 511);

    // Sync runs: newest first, paged the same way.
    for _ in 0..3 {
        site.api(
            Method::POST,
            "/api/v1/sources/calpendo/sync?wait=true",
            &w,
            None,
        )
        .expect(StatusCode::OK);
    }
    let every = site.sync_runs(&w);
    assert_eq!(every.len(), 4);
    let (runs, pages) = all_pages(&site, &w, "/api/v1/sync-runs?limit=3", 3);
    assert_eq!((runs.len(), pages), (4, 2));
    let started = |l: &[Value]| -> Vec<String> {
        l.iter()
            .map(|r| r["started_at"].as_str().expect("started_at").to_string())
            .collect()
    };
    assert_eq!(started(&runs), started(&every));
    // Sources too (one here).
    let (sources, pages) = all_pages(&site, &w, "/api/v1/sources?limit=1", 1);
    assert_eq!((sources.len(), pages), (1, 1));

    // The OpenAPI document describes the paging.
    let doc = site.get("/api/v1/openapi.json").json();
    let params = doc["paths"]["/api/v1/worklist"]["get"]["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .map(|p| p["name"].as_str().unwrap_or_default().to_string())
        .collect::<Vec<_>>();
    assert!(
        params.contains(&"limit".to_string()) && params.contains(&"cursor".to_string()),
        "{params:?}"
    );
    let headers = &doc["paths"]["/api/v1/worklist"]["get"]["responses"]["200"]["headers"];
    assert!(headers.get("Link").is_some(), "{headers}");
}

/// Runs the futures concurrently and returns their outputs in order.
async fn futures_join<F>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

/// The log lines that report refused tokens.
fn refusal_lines(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains("refused an API token") || l.contains("refused API tokens"))
        .map(str::to_string)
        .collect()
}

#[test]
fn refused_tokens_are_counted_and_logged_once_per_interval() {
    let site = Admin::start(mwl_bookings(), Options::default());
    let list = "/api/v1/worklist";
    for _ in 0..300 {
        site.send(Method::GET, list, Some("Bearer mwlb_nope"), &[], None)
            .expect(StatusCode::UNAUTHORIZED);
    }
    std::thread::sleep(Duration::from_millis(500));
    let lines = refusal_lines(&site.log());
    // The first refusal is logged at once, the rest counted.
    assert!(
        !lines.is_empty() && lines.len() <= 2,
        "{} lines for 300 refusals:\n{}",
        lines.len(),
        lines.iter().take(5).cloned().collect::<Vec<_>>().join("\n")
    );
    // Within the interval, one line with the count and the client.
    let log = poll(90, "the refusals' summary", || {
        let log = site.log();
        log.lines()
            .any(|l| l.contains("refused API tokens") && l.contains("count=299"))
            .then_some(log)
    });
    let summary = refusal_lines(&log).pop().expect("summary");
    assert!(summary.contains("127.0.0.1"), "{summary}");
    assert!(summary.contains("malformed"), "{summary}");
    assert!(!log.contains("mwlb_nope"), "a token is in the log");
    assert!(refusal_lines(&log).len() <= 3, "{log}");
}

/// Flips the last character of a token: its public id stays, its secret is wrong.
fn wrong_secret(token: &str) -> String {
    let mut wrong = token.to_string();
    let last = wrong.pop().expect("char");
    wrong.push(if last == '0' { '1' } else { '0' });
    wrong
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[test]
fn an_unknown_token_id_takes_as_long_to_refuse_as_a_wrong_secret() {
    let site = Admin::start(mwl_bookings(), Options::default());
    let reader = site.token("reader", "read");
    let wrong = wrong_secret(&reader);
    let unknown = format!("mwlb_{}_{}", "0".repeat(12), "a".repeat(64));
    let list = "/api/v1/worklist";
    let time = |t: &str| {
        let start = Instant::now();
        site.api(Method::GET, list, t, None)
            .expect(StatusCode::UNAUTHORIZED);
        start.elapsed()
    };
    time(&wrong);
    time(&unknown);
    let (mut w, mut u) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        w.push(time(&wrong));
        u.push(time(&unknown));
    }
    let (w, u) = (median(w), median(u));
    assert!(
        u * 2 >= w,
        "an unknown id is refused in {u:?}, a wrong secret in {w:?}: the timing tells them apart"
    );
}

/// Signs in on the status page as a browser does: the sign-in page first (its form and
/// any cookie it sets), then the form. The answer of `POST /login`.
fn sign_in(site: &Admin, client: &reqwest::Client, token: &str) -> Answer {
    site.rt.block_on(async {
        let page = client
            .get(format!("{}/", site.base))
            .send()
            .await
            .expect("GET /");
        let cookies: Vec<String> = page
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .map(str::to_string)
            .collect();
        let body = page.text().await.expect("body");
        let csrf = body.find("name=\"csrf\"").map(|_| scrape_csrf(&body));
        let mut form = format!("token={}", form_encode(token));
        if let Some(c) = &csrf {
            form.push_str(&format!("&csrf={c}"));
        }
        let mut rb = client
            .post(format!("{}/login", site.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form);
        if !cookies.is_empty() {
            rb = rb.header("cookie", cookies.join("; "));
        }
        let r = rb.send().await.expect("POST /login");
        Answer {
            status: r.status(),
            headers: r.headers().clone(),
            body: r.text().await.expect("body"),
        }
    })
}

/// The session cookie (`name=value`) a sign-in set.
fn session_of(a: &Answer) -> String {
    a.expect(StatusCode::SEE_OTHER);
    a.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|c| c.starts_with("mwlbridge_session=") && c.len() > "mwlbridge_session=".len())
        .unwrap_or_else(|| panic!("no session cookie: {:?}", a.headers))
        .to_string()
}

#[test]
fn wrong_guesses_from_one_address_do_not_delay_a_sign_in_from_another() {
    let site = Admin::start(mwl_bookings(), Options::default());
    let victim = site.token("victim", "write");
    let spare = site.token("spare", "read");
    let target = site.token("target", "read");
    let guess = wrong_secret(&target);
    // One sign-in's own time (a first use: one Argon2 check).
    let start = Instant::now();
    session_of(&sign_in(&site, &site.client, &spare));
    let alone = start.elapsed();

    // 100 guesses at once from another address (127.0.0.2 is loopback too).
    let patient = || client_builder().timeout(Duration::from_secs(180));
    let attacker = patient()
        .local_address(std::net::IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))
        .build()
        .expect("client");
    let url = format!("{}/api/v1/worklist", site.base);
    let guesses: Vec<_> = (0..100)
        .map(|_| {
            let (attacker, url, guess) = (attacker.clone(), url.clone(), guess.clone());
            site.rt.spawn(async move {
                let r = attacker.get(&url).bearer_auth(&guess).send().await;
                r.map(|r| (r.status(), r.headers().get("retry-after").cloned()))
                    .map_err(|e| e.to_string())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    let a = sign_in(&site, &patient().build().expect("client"), &victim);
    let delayed = start.elapsed();
    session_of(&a);
    assert!(
        delayed < alone * 4 + Duration::from_millis(500),
        "a sign-in took {delayed:?} behind 100 guesses from another address (alone: {alone:?})"
    );
    let answers: Vec<_> = site.rt.block_on(async {
        let mut out = Vec::new();
        for g in guesses {
            out.push(g.await.expect("task").expect("a guess answered"));
        }
        out
    });
    let busy = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(busy >= 50, "{answers:?}");
    for (status, retry) in &answers {
        assert!(
            matches!(
                *status,
                StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS
            ),
            "{status}"
        );
        if *status == StatusCode::TOO_MANY_REQUESTS {
            let secs: u64 = retry
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .expect("Retry-After in seconds");
            assert!((1..=60).contains(&secs), "{secs}");
        }
    }
}

#[test]
fn sessions_are_capped_per_token_so_one_token_cannot_sign_others_out() {
    let site = Admin::start(mwl_bookings(), Options::default());
    let w = site.token("writer", "write");
    let r = site.token("reader", "read");
    let admin = session_of(&sign_in(&site, &site.client, &w));
    let first_reader = session_of(&sign_in(&site, &site.client, &r));
    for _ in 0..260 {
        session_of(&sign_in(&site, &site.client, &r));
    }
    let signed_in = |cookie: &str| {
        let page = site.send(Method::GET, "/", None, &[("cookie", cookie)], None);
        page.expect(StatusCode::OK);
        page.body.contains("Signed in as")
    };
    assert!(
        signed_in(&admin),
        "260 sign-ins with a read token signed the admin out"
    );
    assert!(
        !signed_in(&first_reader),
        "the reader's oldest session outlived its cap"
    );
}

#[test]
fn the_sign_in_form_needs_its_own_csrf_token() {
    let site = Admin::start(mwl_bookings(), Options::default());
    let w = site.token("writer", "write");
    // A forged cross-site form has neither the sign-in page's cookie nor its field.
    let a = site.form("/login", None, &[("token", &w)]);
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    assert!(!a.header("set-cookie").contains("mwlbridge_session"));
    // The page's field without its cookie, or with another cookie: refused too.
    let page = site.get("/");
    let field = scrape_csrf(&page.body);
    let cookie = page
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|c| c.starts_with("mwlbridge_login="))
        .expect("the sign-in form's CSRF cookie")
        .to_string();
    let (name, value) = cookie.split_once('=').expect("name=value");
    assert_eq!(value, field);
    let other = format!("{name}={}", "ab".repeat(32));
    for jar in [None, Some(other.as_str())] {
        let a = site.form("/login", jar, &[("token", &w), ("csrf", &field)]);
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{jar:?}: {}", a.body);
    }
    // A cross-site request (Fetch Metadata) is refused even with both.
    let a = site.send(
        Method::POST,
        "/login",
        None,
        &[("cookie", &cookie), ("sec-fetch-site", "cross-site")],
        Some((
            "application/x-www-form-urlencoded",
            format!("token={}&csrf={field}", form_encode(&w)),
        )),
    );
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    // The page's own form signs in.
    let a = site.form("/login", Some(&cookie), &[("token", &w), ("csrf", &field)]);
    session_of(&a);
}

/// Whether the server closed `s` within `within` (EOF or reset; anything it sent first is
/// read and ignored).
fn closed_within(s: &std::net::TcpStream, within: Duration) -> bool {
    use std::io::Read;
    let mut reader = s;
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        s.set_read_timeout(Some(left)).expect("timeout");
        match reader.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}

/// A thread that writes `bytes` to `s` one every `every`, until they are sent or the
/// connection fails.
fn trickle(mut s: std::net::TcpStream, bytes: Vec<u8>, every: Duration) {
    std::thread::spawn(move || {
        use std::io::Write;
        for b in bytes {
            if s.write_all(&[b]).is_err() {
                return;
            }
            std::thread::sleep(every);
        }
    });
}

#[test]
fn slow_idle_and_flooding_admin_clients_neither_block_healthz_nor_delay_shutdown() {
    use std::io::Write;
    use std::net::TcpStream;
    let mut site = Admin::start(mwl_bookings(), Options::default());
    let addr = (Ipv4Addr::LOCALHOST, site.admin_port);
    // A probe of its own each time, as a service monitor sends: the flood below makes the
    // server close its oldest idle connections, and a client reusing a pooled connection
    // at that moment would see the close rather than the answer.
    let healthz_quickly = || {
        use std::io::Read;
        let start = Instant::now();
        let mut probe = TcpStream::connect(addr).expect("connect");
        probe
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        probe
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .expect("request");
        let mut answer = Vec::new();
        probe.read_to_end(&mut answer).expect("answer");
        assert!(
            answer.starts_with(b"HTTP/1.1 200"),
            "{:?}",
            String::from_utf8_lossy(&answer)
        );
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
    };
    let opened = Instant::now();
    // Idle: connected, nothing sent.
    let mut held: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(addr).expect("connect"))
        .collect();
    // Slow-loris: a request head sent a byte a second, never finished.
    for _ in 0..20 {
        let s = TcpStream::connect(addr).expect("connect");
        let mut head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n".to_vec();
        head.extend(std::iter::repeat_n(b'X', 120));
        trickle(s.try_clone().expect("clone"), head, Duration::from_secs(1));
        held.push(s);
    }
    // Kept alive after one answered request.
    for _ in 0..10 {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("request");
        let mut buf = [0u8; 512];
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let n = std::io::Read::read(&mut s, &mut buf).expect("answer");
        assert!(
            buf[..n].starts_with(b"HTTP/1.1 200"),
            "{:?}",
            String::from_utf8_lossy(&buf[..n])
        );
        held.push(s);
    }
    healthz_quickly();
    // Every one of them is closed by the server within its timeouts.
    for (i, s) in held.iter().enumerate() {
        let left = Duration::from_secs(40).saturating_sub(opened.elapsed());
        assert!(
            closed_within(s, left),
            "connection {i} still open after {:?}",
            opened.elapsed()
        );
    }
    healthz_quickly();

    // A flood past the connection cap: the oldest idle ones make room, /healthz answers.
    let flood: Vec<TcpStream> = (0..300)
        .map(|_| TcpStream::connect(addr).expect("connect"))
        .collect();
    healthz_quickly();
    let closed = flood
        .iter()
        .take(60)
        .filter(|s| closed_within(s, Duration::from_millis(200)))
        .count();
    assert!(
        closed >= 40,
        "only {closed} of the flood's oldest connections were closed"
    );
    drop(flood);

    // Shutdown is bounded although a client is still sending a request body.
    let mut slow = TcpStream::connect(addr).expect("connect");
    slow.write_all(
        b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
          Content-Length: 100000\r\n\r\ntoken=",
    )
    .expect("head");
    trickle(
        slow.try_clone().expect("clone"),
        vec![b'a'; 1000],
        Duration::from_millis(200),
    );
    std::thread::sleep(Duration::from_secs(1));
    let pid = site.serve.pid().expect("pid");
    let stopping = Instant::now();
    let o = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .output()
        .expect("kill");
    assert!(o.status.success());
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    while proc_dir.exists() && stopping.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let took = stopping.elapsed();
    assert!(
        !proc_dir.exists() && took < Duration::from_secs(10),
        "serve took {took:?} to stop with a slow admin client:\n{}",
        site.log()
    );
    assert!(site.log().contains("mwlbridge stopped"), "{}", site.log());
    drop(slow);
    let _ = site.serve.stop();
}
