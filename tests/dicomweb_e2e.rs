//! The DICOMweb worklist search (PS3.18 chapter 14) end to end: the real `mwlbridge
//! serve` with `[admin]` (DICOMweb at its default base, `/dicomweb`), fed by the fake
//! Calpendo, searched over real HTTP with reqwest and a token from `mwlbridge token
//! create`; the same queries sent as C-FIND with DCMTK `findscu` must find the same
//! entries with the same values.
//!
//! One server serves every test (the tests only read).

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use calpendo_fake::{FakeCalpendo, FakeConfig};
use common::config::SiteConfig;
use common::dicomweb::{Flat, flat_json, flat_xml, multipart_parts, query_value};
use common::http::Answer;
use common::scp::{findscu, free_port, mwl_bookings};
use common::serve::{Serve, ServeOpts};
use common::{stderr, stdout, today};
use dicom_core::header::Header;
use dicom_core::value::Value as DicomValue;
use dicom_object::InMemDicomObject;
use reqwest::StatusCode;
use serde_json::Value;
use worklist_store::format_da;

/// The search's path.
const SEARCH: &str = "/dicomweb/modality-scheduled-procedure-steps";

/// The top-level return keys a search has without `includefield=all`.
const DEFAULT_TOP: [&str; 9] = [
    "AccessionNumber",
    "ReferringPhysicianName",
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "RequestedProcedureDescription",
    "RequestedProcedureID",
];

/// The step item's return keys without `includefield=all`.
const DEFAULT_STEP: [&str; 10] = [
    "Modality",
    "ScheduledStationAETitle",
    "ScheduledProcedureStepStartDate",
    "ScheduledProcedureStepStartTime",
    "ScheduledPerformingPhysicianName",
    "ScheduledProcedureStepDescription",
    "ScheduledStationName",
    "ScheduledProcedureStepLocation",
    "ScheduledProcedureStepID",
    "ScheduledProcedureStepStatus",
];

/// The fake Calpendo and `mwlbridge serve`, with a read token. Fields drop in order.
struct Web {
    _serve: Serve,
    dicom_port: u16,
    admin_port: u16,
    token: String,
    _fake: FakeCalpendo,
    _dir: tempfile::TempDir,
    client: reqwest::Client,
    rt: tokio::runtime::Runtime,
}

static WEB: OnceLock<Web> = OnceLock::new();

fn web() -> &'static Web {
    WEB.get_or_init(Web::start)
}

impl Web {
    fn start() -> Web {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .no_proxy()
            .build()
            .expect("client");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let fake = rt.block_on(async {
            let fake = FakeCalpendo::start(FakeConfig::default())
                .await
                .expect("fake Calpendo starts");
            fake.set_bookings(mwl_bookings());
            fake
        });
        let dir = tempfile::Builder::new()
            .prefix("mwlbridge-dicomweb-e2e-")
            .tempdir()
            .expect("tempdir");
        for _attempt in 0..5 {
            let dicom_port = free_port();
            let admin_port = loop {
                let p = free_port();
                if p != dicom_port {
                    break p;
                }
            };
            let admin =
                format!("[admin]\nenabled = true\nbind = \"127.0.0.1\"\nport = {admin_port}\n");
            let db = dir.path().join("worklist.db");
            let base_url = fake.base_url();
            let config: PathBuf = SiteConfig {
                server: Some(""),
                admin: Some(&admin),
                source_keys: "sync_interval = 3600\nsync_deadline = 10\nrequest_timeout = 5",
                ..SiteConfig::new(&base_url, &db)
            }
            .write(&dir.path().join("mwlbridge.toml"));
            let healthy = |_: &Serve| {
                rt.block_on(async {
                    client
                        .get(format!("http://127.0.0.1:{admin_port}/healthz"))
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
            let c = config.to_str().expect("utf-8 path");
            let o = common::run(&[
                "token", "create", "--config", c, "--name", "web", "--role", "read",
            ]);
            assert!(o.status.success(), "token create: {}", stderr(&o));
            let token = stdout(&o).trim().to_string();
            return Web {
                _serve: serve,
                dicom_port,
                admin_port,
                token,
                _fake: fake,
                _dir: dir,
                client,
                rt,
            };
        }
        panic!("mwlbridge serve did not start on 5 port pairs");
    }

    /// `GET {SEARCH}?{query}` with `Authorization` (when given) and extra headers.
    fn get(&self, query: &str, auth: Option<&str>, headers: &[(&str, &str)]) -> Answer {
        let url = format!("http://127.0.0.1:{}{SEARCH}?{query}", self.admin_port);
        let mut rb = self.client.get(url);
        if let Some(a) = auth {
            rb = rb.header("authorization", a);
        }
        for (k, v) in headers {
            rb = rb.header(*k, *v);
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

    /// A search with the read token.
    fn search(&self, query: &str) -> Answer {
        self.get(query, Some(&format!("Bearer {}", self.token)), &[])
    }
}

fn today_da() -> String {
    format_da(today())
}

fn hex(tag: dicom_core::Tag) -> String {
    format!("{:04X}{:04X}", tag.group(), tag.element())
}

/// A C-FIND response, flattened (without Specific Character Set).
fn flat_dicom(obj: &InMemDicomObject, prefix: &str, out: &mut Flat) {
    for e in obj {
        let key = format!("{prefix}{}", hex(e.tag()));
        if e.tag() == dicom_dictionary_std::tags::SPECIFIC_CHARACTER_SET {
            continue;
        }
        match e.value() {
            DicomValue::Sequence(seq) => {
                out.insert(key.clone(), format!("{} items", seq.items().len()));
                for item in seq.items() {
                    flat_dicom(item, &format!("{key}."), out);
                }
            }
            _ => {
                let text = e
                    .to_multi_str()
                    .map(|v| {
                        v.iter()
                            .map(|s| s.trim_matches([' ', '\0']).to_string())
                            .collect::<Vec<_>>()
                            .join("\\")
                    })
                    .unwrap_or_default();
                out.insert(key, text);
            }
        }
    }
}

/// The findscu keys of a query: the default return keys, with `matches` (`(keyword or
/// step keyword, value)`) given their values.
fn findscu_keys(top: &[(&str, &str)], step: &[(&str, &str)]) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for k in DEFAULT_TOP {
        let v = top.iter().find(|(n, _)| *n == k).map_or("", |(_, v)| v);
        keys.push(format!("{k}={v}"));
    }
    for k in DEFAULT_STEP {
        let v = step.iter().find(|(n, _)| *n == k).map_or("", |(_, v)| v);
        keys.push(format!("ScheduledProcedureStepSequence[0].{k}={v}"));
    }
    keys
}

/// Sends one query both ways; returns the flattened responses, by PatientID, of each.
fn both_ways(
    top: &[(&str, &str)],
    step: &[(&str, &str)],
    web_query: &str,
) -> (BTreeMap<String, Flat>, BTreeMap<String, Flat>) {
    let keys = findscu_keys(top, step);
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let r = findscu(web().dicom_port, &keys, &[]);
    r.assert_success();
    let mut dimse = BTreeMap::new();
    for obj in &r.responses {
        let mut f = Flat::new();
        flat_dicom(obj, "", &mut f);
        dimse.insert(f.get("00100020").cloned().unwrap_or_default(), f);
    }
    let mut web_items = BTreeMap::new();
    for item in web().search(web_query).items() {
        let mut f = Flat::new();
        flat_json(&item, "", &mut f);
        web_items.insert(f.get("00100020").cloned().unwrap_or_default(), f);
    }
    (dimse, web_items)
}

/// A differential case: what, top-level matches, step matches, the web query, how many
/// entries C-FIND finds.
type Case<'a> = (
    &'a str,
    Vec<(&'a str, &'a str)>,
    Vec<(&'a str, &'a str)>,
    String,
    usize,
);

#[test]
fn searches_match_what_the_same_c_find_matches_with_the_same_values() {
    let today = today_da();
    let range = format!("{today}-{today}");
    let cases: Vec<Case> = vec![
        ("universal", vec![], vec![], String::new(), 8),
        (
            "PatientID",
            vec![("PatientID", "SUB103")],
            vec![],
            "PatientID=SUB103".into(),
            1,
        ),
        (
            "today's steps",
            vec![],
            vec![("ScheduledProcedureStepStartDate", &range)],
            format!("ScheduledProcedureStepSequence.ScheduledProcedureStepStartDate={range}"),
            7,
        ),
        (
            "station and modality by tag path",
            vec![],
            vec![("ScheduledStationAETitle", "MRI_3T"), ("Modality", "MR")],
            "00400100.00400001=MRI_3T&00400100.00080060=MR".into(),
            3,
        ),
        (
            "PatientName wildcard, any case",
            vec![("PatientName", "trem*")],
            vec![],
            "PatientName=trem*".into(),
            2,
        ),
    ];
    for (what, top, step, query, expected) in cases {
        let (dimse, web_items) = both_ways(&top, &step, &query);
        assert_eq!(
            dimse.len(),
            expected,
            "{what}: C-FIND found {:?}",
            dimse.keys()
        );
        assert_eq!(
            dimse.keys().collect::<Vec<_>>(),
            web_items.keys().collect::<Vec<_>>(),
            "{what}: the same entries"
        );
        for (id, values) in &dimse {
            assert_eq!(values, &web_items[id], "{what}: the values of {id}");
        }
    }
}

#[test]
fn the_b36_example_shape() {
    let q = format!(
        "00400100.00400001=MRI_3T&00400100.00400002={}&00400100.00080060=MR\
         &limit=20&offset=0&includefield=all",
        today_da()
    );
    let a = web().search(&q);
    assert_eq!(a.header("content-type"), "application/dicom+json");
    let items = a.items();
    assert_eq!(items.len(), 2, "{}", a.body);
    for item in &items {
        let step = &item["00400100"];
        assert_eq!(step["vr"], "SQ");
        let step = &step["Value"][0];
        assert_eq!(step["00400001"]["Value"][0], "MRI_3T");
        assert_eq!(step["00080060"]["Value"][0], "MR");
        assert_eq!(step["00400002"]["Value"][0], today_da());
        // includefield=all: every step attribute beside the three matched.
        for tag in ["00400003", "00400005", "00400008", "00400009", "00400020"] {
            assert!(step.get(tag).is_some(), "{tag} in {step}");
        }
        assert_eq!(item["00100010"]["vr"], "PN");
        assert!(
            item["00100010"]["Value"][0]["Alphabetic"].is_string(),
            "{item}"
        );
        // includefield=all: PatientWeight is there (empty: no Value) as every key we hold.
        assert_eq!(item["00101030"]["vr"], "DS");
        // No attribute carries an empty Value array: empty ones have none (F.2.5).
        let text = item.to_string();
        assert!(!text.contains("\"Value\":[]"), "{text}");
    }
    assert!(items.iter().any(|i| i["00101030"].get("Value").is_none()));
}

#[test]
fn limit_and_offset_page_with_a_warning_while_more_follow() {
    let all: Vec<Value> = web().search("").items();
    assert_eq!(all.len(), 8);
    let warning = format!(
        "299 127.0.0.1:{}: There are additional results that can be requested",
        web().admin_port
    );
    let mut paged = Vec::new();
    for offset in [0, 3, 6] {
        let a = web().search(&format!("limit=3&offset={offset}"));
        let items = a.items();
        if offset < 6 {
            assert_eq!(items.len(), 3);
            assert_eq!(a.header("warning"), warning, "offset {offset}");
        } else {
            assert_eq!(items.len(), 2);
            assert_eq!(a.header("warning"), "", "the last page has no warning");
        }
        paged.extend(items);
    }
    assert_eq!(paged, all, "the pages are the whole answer in order");
    assert_eq!(web().search("limit=8").header("warning"), "");
    assert!(web().search("offset=8").items().is_empty());
}

#[test]
fn includefield_adds_attributes() {
    let plain = web().search("PatientID=SUB101").items();
    assert!(plain[0].get("00101030").is_none(), "{}", plain[0]);
    assert!(plain[0].get("00081030").is_none(), "{}", plain[0]);
    let listed = web()
        .search("PatientID=SUB101&includefield=PatientWeight,00081030")
        .items();
    assert_eq!(listed[0]["00101030"]["vr"], "DS");
    assert_eq!(listed[0]["00081030"]["vr"], "LO");
    let step = web()
        .search("PatientID=SUB101&includefield=ScheduledProcedureStepSequence.00400008")
        .items();
    assert_eq!(step[0]["00400100"]["Value"][0]["00400008"]["vr"], "SQ");
    let all = web().search("PatientID=SUB101&includefield=all").items();
    for tag in ["00101030", "00081030", "00100020", "00401001"] {
        assert!(all[0].get(tag).is_some(), "{tag} in {}", all[0]);
    }
    assert!(all[0]["00400100"]["Value"][0].get("00400008").is_some());
    // The step sequence named whole: every step attribute.
    let whole = web()
        .search("PatientID=SUB101&includefield=ScheduledProcedureStepSequence")
        .items();
    assert!(whole[0]["00400100"]["Value"][0].get("00400005").is_some());
}

const MULTIPART_XML: &str = "multipart/related; type=\"application/dicom+xml\"";
const MULTIPART_JSON: &str = "multipart/related; type=\"application/dicom+json\"";

/// The search's results as DICOM JSON, flattened, in order.
fn json_results(query: &str) -> Vec<Flat> {
    web()
        .search(query)
        .items()
        .iter()
        .map(|item| {
            let mut f = Flat::new();
            flat_json(item, "", &mut f);
            f
        })
        .collect()
}

/// A search with the read token and `Accept: {accept}`: 200, `multipart/related` of
/// `part_type`; its parts' `Content-Type`s and contents.
fn multipart_results(query: &str, accept: &str, part_type: &str) -> Vec<(String, String)> {
    let auth = format!("Bearer {}", web().token);
    let a = web().get(query, Some(&auth), &[("accept", accept)]);
    a.expect(StatusCode::OK);
    let ct = a.header("content-type");
    assert!(
        ct.starts_with(&format!(
            "multipart/related; type=\"{part_type}\"; boundary="
        )),
        "{ct}"
    );
    multipart_parts(&ct, &a.body)
}

#[test]
fn every_media_type_holds_the_same_entries_and_values() {
    let today = today_da();
    for query in [
        "includefield=all".to_string(),
        "PatientID=SUB101".into(),
        "PatientName=trem*&includefield=all".into(),
        format!("00400100.00400002={today}&00400100.00080060=MR&limit=2&offset=1"),
        "PatientID=NOBODY".into(),
    ] {
        let json = json_results(&query);
        let xml = multipart_results(&query, MULTIPART_XML, "application/dicom+xml");
        assert_eq!(xml.len(), json.len(), "{query}: one part per result");
        for (i, ((ct, doc), expected)) in xml.iter().zip(&json).enumerate() {
            assert_eq!(ct, "application/dicom+xml; charset=utf-8", "{query}");
            assert!(
                doc.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"),
                "{doc}"
            );
            assert_eq!(&flat_xml(doc), expected, "{query}: result {i} in XML");
        }
        let parts = multipart_results(&query, MULTIPART_JSON, "application/dicom+json");
        assert_eq!(parts.len(), json.len(), "{query}: one part per result");
        for (i, ((ct, text), expected)) in parts.iter().zip(&json).enumerate() {
            assert_eq!(ct, "application/dicom+json", "{query}");
            let value: Value = serde_json::from_str(text).expect("a JSON part");
            let array = value.as_array().expect("each part is an array");
            assert_eq!(array.len(), 1, "{query}: one data set per part");
            let mut f = Flat::new();
            flat_json(&array[0], "", &mut f);
            assert_eq!(&f, expected, "{query}: result {i} in a JSON part");
        }
    }
    // The comparison compared something: names, and a sequence with its item.
    let all = json_results("includefield=all");
    assert_eq!(all.len(), 8);
    assert!(all[0].get("00100010").is_some_and(|n| n.contains('^')));
    assert_eq!(all[0].get("00400100").map(String::as_str), Some("1 items"));
}

#[test]
fn multipart_pages_warn_and_boundaries_differ() {
    let auth = format!("Bearer {}", web().token);
    let a = web().get("limit=3", Some(&auth), &[("accept", MULTIPART_XML)]);
    a.expect(StatusCode::OK);
    assert!(a.header("warning").starts_with("299 "), "{:?}", a.headers);
    let b = web().get("limit=3", Some(&auth), &[("accept", MULTIPART_XML)]);
    assert_ne!(
        a.header("content-type"),
        b.header("content-type"),
        "a boundary per response"
    );
    let parts = |x: &Answer| multipart_parts(&x.header("content-type"), &x.body);
    assert_eq!(parts(&a), parts(&b), "the same parts");
    assert_eq!(parts(&a).len(), 3);
}

#[test]
fn the_accept_query_parameter_chooses_too() {
    let auth = format!("Bearer {}", web().token);
    let q = format!("PatientID=SUB101&accept={}", query_value(MULTIPART_XML));
    let a = web().get(&q, Some(&auth), &[]);
    a.expect(StatusCode::OK);
    let parts = multipart_parts(&a.header("content-type"), &a.body);
    assert_eq!(parts.len(), 1);
    assert_eq!(
        vec![flat_xml(&parts[0].1)],
        json_results("PatientID=SUB101")
    );
    // Wildcards, or DICOM and non-DICOM types together, are malformed there: 400.
    for bad in ["*/*", "application/dicom+json,text/html"] {
        let a = web().get(&format!("accept={}", query_value(bad)), Some(&auth), &[]);
        a.expect(StatusCode::BAD_REQUEST);
        assert_eq!(a.json()["fields"][0]["field"], "accept", "{}", a.body);
    }
}

#[test]
fn unacceptable_media_types_and_charsets_are_406() {
    let auth = format!("Bearer {}", web().token);
    for refused in [
        "application/dicom+xml",
        "text/html",
        "application/dicom+json;q=0",
        "multipart/related; type=\"application/dicom\"",
        "application/dicom+json; charset=iso-8859-1",
    ] {
        let a = web().get("", Some(&auth), &[("accept", refused)]);
        a.expect(StatusCode::NOT_ACCEPTABLE);
        let error = a.json()["error"].as_str().unwrap_or_default().to_string();
        for offered in ["application/dicom+json", MULTIPART_XML, MULTIPART_JSON] {
            assert!(error.contains(offered), "{refused}: {error}");
        }
        assert!(!a.body.contains("SUB1"), "{}", a.body);
    }
    // Bare XML holds one data set; the 406 says so.
    let a = web().get("", Some(&auth), &[("accept", "application/dicom+xml")]);
    assert!(a.body.contains("one data set"), "{}", a.body);
    for accepted in [
        "application/dicom+json",
        "*/*",
        "application/json",
        "application/dicom+xml, application/json;q=0.5",
    ] {
        let a = web().get("limit=1", Some(&auth), &[("accept", accepted)]);
        a.expect(StatusCode::OK);
        assert_eq!(a.header("content-type"), "application/dicom+json");
    }
    for (charset, status) in [
        ("iso-8859-1", StatusCode::NOT_ACCEPTABLE),
        ("utf-8;q=0, *", StatusCode::NOT_ACCEPTABLE),
        ("utf-8", StatusCode::OK),
        ("iso-8859-1, *;q=0.1", StatusCode::OK),
    ] {
        let a = web().get("limit=1", Some(&auth), &[("accept-charset", charset)]);
        a.expect(status);
    }
    let a = web().get("limit=1&charset=iso-8859-1", Some(&auth), &[]);
    a.expect(StatusCode::NOT_ACCEPTABLE);
    assert!(a.body.contains("UTF-8"), "{}", a.body);
}

#[test]
fn a_valid_token_is_required() {
    let a = web().get("", None, &[]);
    a.expect(StatusCode::UNAUTHORIZED);
    assert!(a.header("www-authenticate").starts_with("Bearer"));
    assert!(!a.body.contains("SUB1"), "{}", a.body);
    web()
        .get("", Some("Bearer mwlb_not_a_token"), &[])
        .expect(StatusCode::UNAUTHORIZED);
}

#[test]
fn bad_parameters_are_400_naming_the_parameter() {
    for (query, named) in [
        ("limit=0", "limit"),
        ("limit=5001", "limit"),
        ("offset=x", "offset"),
        ("NoSuchAttribute=1", "NoSuchAttribute"),
        ("fuzzymatching=maybe", "fuzzymatching"),
        // Refused by the C-FIND query parser (A900 over DIMSE).
        ("00400100.00400002=not-a-date", "00400100.00400002"),
    ] {
        let a = web().search(query);
        a.expect(StatusCode::BAD_REQUEST);
        assert_eq!(a.json()["fields"][0]["field"], named, "{query}: {}", a.body);
    }
    // fuzzymatching is accepted (and not applied).
    assert_eq!(
        web()
            .search("fuzzymatching=true&PatientID=SUB101")
            .items()
            .len(),
        1
    );
}
