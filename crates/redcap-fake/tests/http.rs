//! The fake REDCap over real HTTP on 127.0.0.1.

use std::time::{Duration, Instant};

use jiff::SignedDuration;
use jiff::civil::{Date, DateTime, date};
use redcap_fake::{
    DEFAULT_TOKEN, FakeConfig, FakeRecord, FakeRedcap, Fault, FaultScope, Field, Project,
    RepeatInstance, SAMPLE_FIXTURE, load_fixture, synthetic_records,
};
use serde_json::Value;

const TODAY: Date = Date::constant(2026, 11, 26);

/// Loading time of the sample records in the tests that set the clock.
const LOADED: DateTime = DateTime::constant(2026, 11, 26, 7, 0, 0, 0);

/// Pylantir's field list, as it sends it (`fields[n]`).
const PYLANTIR_FIELDS: [&str; 10] = [
    "record_id",
    "study_id",
    "redcap_repeat_instrument",
    "mri_instance",
    "mri_date",
    "mri_time",
    "family_id",
    "youth_dob_y",
    "demo_sex",
    "neuro_pcp",
];

/// A server holding the sample day ("today" 2026-11-26), loaded at [`LOADED`].
async fn sample_server() -> FakeRedcap {
    let server = FakeRedcap::start(FakeConfig::default())
        .await
        .expect("the fake starts");
    server.set_now(LOADED);
    server.set_records(load_fixture(SAMPLE_FIXTURE, TODAY).expect("the sample loads"));
    server
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a client")
}

fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// POSTs a form to the API URL; the status and the body as text.
async fn post_with(
    client: &reqwest::Client,
    server: &FakeRedcap,
    pairs: &[(&str, &str)],
) -> (u16, String) {
    let resp = client
        .post(server.api_url())
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form(pairs))
        .send()
        .await
        .expect("an answer");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("a whole body"))
}

/// POSTs with the right token; the status and the JSON body.
async fn api(server: &FakeRedcap, pairs: &[(&str, &str)]) -> (u16, Value) {
    let mut all = vec![("token", DEFAULT_TOKEN)];
    all.extend_from_slice(pairs);
    let (status, text) = post_with(&client(), server, &all).await;
    (status, serde_json::from_str(&text).expect("JSON"))
}

/// Exports records with these extra params (`format=json`, `type=flat` added).
async fn export(server: &FakeRedcap, extra: &[(&str, &str)]) -> Vec<Value> {
    let mut pairs = vec![
        ("content", "record"),
        ("action", "export"),
        ("format", "json"),
        ("type", "flat"),
        ("returnFormat", "json"),
    ];
    pairs.extend_from_slice(extra);
    let (status, body) = api(server, &pairs).await;
    assert_eq!(status, 200, "{body}");
    body.as_array().expect("a list of rows").clone()
}

/// `fields[0]=a&fields[1]=b...` pairs.
fn indexed(name: &str, values: &[&str]) -> Vec<(String, String)> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("{name}[{i}]"), (*v).to_owned()))
        .collect()
}

fn borrowed(pairs: &[(String, String)]) -> Vec<(&str, &str)> {
    pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// `(record_id, repeat instrument, repeat instance)` of each row.
fn keys(rows: &[Value]) -> Vec<(String, String, String)> {
    rows.iter()
        .map(|r| {
            (
                cell(r, "record_id"),
                cell(r, "redcap_repeat_instrument"),
                cell(r, "redcap_repeat_instance"),
            )
        })
        .collect()
}

fn record_ids(rows: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = rows.iter().map(|r| cell(r, "record_id")).collect();
    ids.dedup();
    ids
}

fn error_of(body: &Value) -> &str {
    body["error"].as_str().expect("an error message")
}

/// A row's value in `column`: always a string.
fn cell(row: &Value, column: &str) -> String {
    row[column].as_str().expect("a string value").to_owned()
}

fn key(id: &str, instrument: &str, instance: &str) -> (String, String, String) {
    (id.into(), instrument.into(), instance.into())
}

#[tokio::test(flavor = "multi_thread")]
async fn metadata_is_the_cpip_data_dictionary() {
    let server = sample_server().await;
    let (status, body) = api(&server, &[("content", "metadata"), ("format", "json")]).await;
    assert_eq!(status, 200);
    let rows = body.as_array().unwrap();
    let names: Vec<&str> = rows
        .iter()
        .map(|f| f["field_name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "record_id",
            "study_id",
            "family_id",
            "youth_dob_y",
            "demo_sex",
            "neuro_pcp",
            "mri_instance",
            "mri_date",
            "mri_time",
            "mri_wt_lbs",
            "scheduled_date",
            "scheduled_time",
            "referring_physician",
            "performing_physician",
            "station_name",
            "status"
        ]
    );
    let mri_date = &rows[7];
    assert_eq!(mri_date["form_name"], "mri");
    assert_eq!(mri_date["field_type"], "text");
    assert_eq!(mri_date["field_label"], "MRI date");
    assert_eq!(
        mri_date["text_validation_type_or_show_slider_number"],
        "date_ymd"
    );
    assert_eq!(
        rows[8]["text_validation_type_or_show_slider_number"],
        "time"
    );
    assert_eq!(rows[1]["form_name"], "baseline");
    assert_eq!(rows[1]["text_validation_type_or_show_slider_number"], "");
    assert!(
        rows.iter()
            .all(|r| r.as_object().unwrap().values().all(Value::is_string))
    );

    // Some fields only; an unknown one is a 400.
    let (_, some) = api(
        &server,
        &[
            ("content", "metadata"),
            ("format", "json"),
            ("fields[0]", "mri_time"),
            ("fields[1]", "study_id"),
        ],
    )
    .await;
    let names: Vec<&str> = some
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["study_id", "mri_time"]);
    let (status, body) = api(
        &server,
        &[
            ("content", "metadata"),
            ("format", "json"),
            ("fields", "t1_date"),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        error_of(&body),
        "The following values in the parameter \"fields\" are not valid: 't1_date'"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn records_are_flat_with_one_row_per_repeat_instance() {
    let server = sample_server().await;
    let rows = export(&server, &[]).await;
    // 11 records, 11 mri instances (103 has two, 110 none).
    assert_eq!(rows.len(), 22);
    assert_eq!(
        record_ids(&rows),
        [
            "101", "102", "103", "104", "105", "106", "107", "108", "109", "110", "111"
        ]
    );
    let of_103: Vec<_> = rows
        .iter()
        .filter(|r| r["record_id"] == "103")
        .cloned()
        .collect();
    assert_eq!(
        keys(&of_103),
        [
            key("103", "", ""),
            key("103", "mri", "1"),
            key("103", "mri", "2")
        ]
    );
    let (base, second) = (&of_103[0], &of_103[2]);
    assert_eq!(base["study_id"], "CPIP-FAKE103");
    assert_eq!(base["mri_date"], "");
    assert_eq!(base["baseline_complete"], "2");
    assert_eq!(second["study_id"], "");
    assert_eq!(second["mri_date"], "2026-11-26");
    assert_eq!(second["mri_time"], "11:00");
    assert_eq!(second["mri_instance"], "2");
    assert_eq!(second["station_name"], "FAKE_MR2");
    // Every row has every column, every value a string; record_id comes first.
    let columns: Vec<&String> = rows[0].as_object().unwrap().keys().collect();
    assert_eq!(columns.len(), 3 + 15 + 2);
    for row in &rows {
        let obj = row.as_object().unwrap();
        assert_eq!(obj.keys().collect::<Vec<_>>(), columns);
        assert!(obj.values().all(Value::is_string));
    }
    // Other time and date formats the sample keeps as typed.
    let row = |id: &str| {
        rows.iter()
            .find(|r| r["record_id"] == id && r["redcap_repeat_instance"] == "1")
            .unwrap()
            .clone()
    };
    assert_eq!(row("102")["mri_time"], "09:30:00");
    assert_eq!(row("102")["scheduled_date"], "2026/11/26");
    assert_eq!(row("102")["scheduled_time"], "0930");
    assert_eq!(row("104")["scheduled_date"], "20261126");
    assert_eq!(row("109")["mri_time"], "");
    assert_eq!(row("108")["mri_date"], "2026-11-28");

    // The raw text keeps REDCap's column order: record id, the repeat columns, then
    // data-dictionary order.
    let (_, text) = post_with(
        &client(),
        &server,
        &[
            ("token", DEFAULT_TOKEN),
            ("content", "record"),
            ("format", "json"),
            ("type", "flat"),
            ("records[0]", "110"),
        ],
    )
    .await;
    assert!(text.starts_with(r#"[{"record_id":"110","redcap_repeat_instrument":"","redcap_repeat_instance":"","study_id":"CPIP-FAKE110","family_id":"FAM-FAKE10","#), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn fields_filter_in_both_forms() {
    let server = sample_server().await;
    // redcap_repeat_instrument is no project field: Pylantir drops it after reading
    // the metadata, so this is what it sends.
    let sent: Vec<&str> = PYLANTIR_FIELDS
        .into_iter()
        .filter(|f| *f != "redcap_repeat_instrument")
        .collect();
    let valid = indexed("fields", &sent);
    let by_index = export(&server, &borrowed(&valid)).await;
    let by_comma = export(
        &server,
        &[(
            "fields",
            "study_id, mri_instance,mri_date,mri_time,family_id,youth_dob_y,demo_sex,neuro_pcp",
        )],
    )
    .await;
    assert_eq!(by_index, by_comma);
    assert_eq!(by_index.len(), 22);
    // (serde_json's map sorts keys; the raw order is checked in the test above.)
    let columns: Vec<&str> = by_index[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = [
        "record_id",
        "redcap_repeat_instrument",
        "redcap_repeat_instance",
        "study_id",
        "family_id",
        "youth_dob_y",
        "demo_sex",
        "neuro_pcp",
        "mri_instance",
        "mri_date",
        "mri_time",
    ];
    expected.sort_unstable();
    assert_eq!(columns, expected);

    // The record id comes even when not asked for; baseline fields only: no repeat rows.
    let base_only = export(&server, &[("fields[0]", "study_id")]).await;
    assert_eq!(base_only.len(), 11);
    assert_eq!(base_only[0].as_object().unwrap().len(), 4);
    assert_eq!(base_only[0]["record_id"], "101");
    // Whole instruments with forms[].
    let mri_only = export(&server, &[("forms[0]", "mri")]).await;
    assert_eq!(mri_only.len(), 22);
    assert_eq!(mri_only[1]["mri_complete"], "2");
    assert!(mri_only[1].get("study_id").is_none());
    // Some records only; unknown ids are no error.
    let some = export(
        &server,
        &[
            ("records[0]", "105"),
            ("records[1]", "103"),
            ("records[2]", "999"),
        ],
    )
    .await;
    assert_eq!(record_ids(&some), ["103", "105"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn date_range_selects_records_modified_in_it() {
    let server = sample_server().await;
    assert_eq!(server.modified_at("105"), Some(LOADED));
    let range =
        |begin: &'static str, end: &'static str| [("dateRangeBegin", begin), ("dateRangeEnd", end)];

    // Everything was loaded at 07:00:00: [07:00:00, 07:00:01) holds it, [07:00:01, ...) not.
    assert_eq!(
        export(
            &server,
            &range("2026-11-26 07:00:00", "2026-11-26 07:00:01")
        )
        .await
        .len(),
        22
    );
    assert!(
        export(
            &server,
            &range("2026-11-26 07:00:01", "2026-11-26 09:00:00")
        )
        .await
        .is_empty()
    );
    assert!(
        export(
            &server,
            &range("2026-11-26 06:00:00", "2026-11-26 07:00:00")
        )
        .await
        .is_empty()
    );

    // An edit at 08:15 moves 105 into [08:00, 09:00), with all its rows.
    server.set_now(date(2026, 11, 26).at(8, 15, 0, 0));
    assert!(server.set_instance_field("105", "mri", 1, "mri_time", "15:00"));
    let rows = export(
        &server,
        &range("2026-11-26 08:00:00", "2026-11-26 09:00:00"),
    )
    .await;
    assert_eq!(keys(&rows), [key("105", "", ""), key("105", "mri", "1")]);
    assert_eq!(rows[1]["mri_time"], "15:00");
    // Begin alone; end alone.
    let since = export(&server, &[("dateRangeBegin", "2026-11-26 08:15:00")]).await;
    assert_eq!(record_ids(&since), ["105"]);
    let before = export(&server, &[("dateRangeEnd", "2026-11-26 08:15:00")]).await;
    assert_eq!(record_ids(&before).len(), 10);

    // Deleting an instance modifies its record; a deleted record is in no export.
    server.advance_clock(SignedDuration::from_mins(30));
    assert!(server.remove_instance("103", "mri", 1));
    assert!(!server.remove_instance("103", "mri", 1));
    assert!(server.remove_record("101"));
    let rows = export(&server, &[("dateRangeBegin", "2026-11-26 08:30:00")]).await;
    assert_eq!(keys(&rows), [key("103", "", ""), key("103", "mri", "2")]);
    assert_eq!(
        server.modified_at("103"),
        Some(date(2026, 11, 26).at(8, 45, 0, 0))
    );
    assert!(!record_ids(&export(&server, &[]).await).contains(&"101".to_owned()));
    // A missing record or instance changes nothing, not even a time.
    assert!(!server.set_instance_field("104", "mri", 9, "mri_time", "10:00"));
    assert_eq!(server.modified_at("104"), Some(LOADED));
    assert!(!server.set_field("999", "study_id", "x"));

    // Upserts and new instances are stamped with the clock too.
    server.set_now(date(2026, 11, 26).at(10, 0, 0, 0));
    server.upsert_record(FakeRecord::new("200").with("study_id", "CPIP-FAKE200"));
    assert!(
        server.upsert_instance(
            "200",
            RepeatInstance::new("mri", 1)
                .with("mri_date", "2026-11-27")
                .with("mri_time", "07:30")
        )
    );
    let rows = export(&server, &[("dateRangeBegin", "2026-11-26 10:00:00")]).await;
    assert_eq!(keys(&rows), [key("200", "", ""), key("200", "mri", "1")]);
    // Back-dating, and the real clock again.
    assert!(server.set_modified_at("200", date(2026, 11, 20).at(0, 0, 0, 0)));
    assert!(
        export(&server, &[("dateRangeBegin", "2026-11-26 10:00:00")])
            .await
            .is_empty()
    );
    server.use_real_clock();
    assert!(server.now() > date(2026, 1, 1).at(0, 0, 0, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_date_range_is_a_400() {
    let server = sample_server().await;
    for (param, value) in [
        ("dateRangeBegin", "2026-11-26"),
        ("dateRangeBegin", "2026-11-26T08:00:00"),
        ("dateRangeEnd", "2026-11-31 08:00:00"),
        ("dateRangeEnd", "yesterday"),
    ] {
        let (status, body) = api(
            &server,
            &[
                ("content", "record"),
                ("format", "json"),
                ("type", "flat"),
                (param, value),
            ],
        )
        .await;
        assert_eq!(status, 400, "{param}={value}");
        let message = error_of(&body);
        assert!(
            message.contains(param) && message.contains(value),
            "{message}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn token_is_checked_on_every_request() {
    let server = sample_server().await;
    let c = client();
    let metadata = [("content", "metadata"), ("format", "json")];
    for token in [
        None,
        Some(""),
        Some("0123456789ABCDEF0123456789ABCDEE"),
        Some("0123456789abcdef0123456789abcdef"),
    ] {
        let mut pairs = metadata.to_vec();
        if let Some(token) = token {
            pairs.push(("token", token));
        }
        let (status, text) = post_with(&c, &server, &pairs).await;
        assert_eq!(status, 403, "{token:?}");
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error": "You do not have permissions to use the API"})
        );
    }
    // A bad token is refused before anything else is looked at.
    let (status, _) = post_with(&c, &server, &[("token", "nope"), ("content", "nonsense")]).await;
    assert_eq!(status, 403);
    let stats = server.stats();
    assert_eq!(
        (stats.forbidden, stats.requests, stats.metadata_requests),
        (5, 5, 0)
    );

    // Another configured token.
    let custom = FakeRedcap::start(FakeConfig {
        token: "ABCDEF".into(),
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    assert_eq!(custom.token(), "ABCDEF");
    let (status, _) = post_with(&c, &custom, &[("token", "ABCDEF"), ("content", "version")]).await;
    assert_eq!(status, 200);
    let (status, _) = post_with(
        &c,
        &custom,
        &[("token", DEFAULT_TOKEN), ("content", "version")],
    )
    .await;
    assert_eq!(status, 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_are_400_405_404_with_an_error() {
    let server = sample_server().await;
    let cases: [(&[(&str, &str)], &str); 7] = [
        (
            &[("format", "json")],
            "The parameter \"content\" is missing",
        ),
        (
            &[("content", "arm"), ("format", "json")],
            "The value of the parameter \"content\" is not valid: 'arm'",
        ),
        (
            &[("content", "metadata")],
            "The parameter \"format\" is missing",
        ),
        (
            &[("content", "record"), ("format", "csv"), ("type", "flat")],
            "\"format\" is not valid: 'csv'",
        ),
        (
            &[
                ("content", "record"),
                ("format", "json"),
                ("forms[0]", "consent"),
            ],
            "The following values in the parameter \"forms\" are not valid: 'consent'",
        ),
        (
            &[
                ("content", "record"),
                ("format", "json"),
                ("type", "flat"),
                ("action", "import"),
            ],
            "\"action\" is not valid",
        ),
        (
            &[
                ("content", "record"),
                ("format", "json"),
                ("type", "flat"),
                ("fields[0]", "study_id"),
                ("fields[1]", "t1_date"),
                ("fields[2]", "redcap_repeat_instrument"),
            ],
            "The following values in the parameter \"fields\" are not valid: 't1_date', 'redcap_repeat_instrument'",
        ),
    ];
    for (pairs, message) in cases {
        let (status, body) = api(&server, pairs).await;
        assert_eq!(status, 400, "{pairs:?}");
        assert!(error_of(&body).contains(message), "{pairs:?}: {body}");
    }
    let c = client();
    let get = c.get(server.api_url()).send().await.unwrap();
    assert_eq!(get.status(), 405);
    assert_eq!(get.headers()["allow"], "POST");
    assert!(get.json::<Value>().await.unwrap()["error"].is_string());
    let elsewhere = c
        .post(format!("{}/redcap/api/", server.base_url()))
        .body("")
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), 404);
    // `/api` without the slash works too; version is plain text.
    let (status, text) = post_with(
        &c,
        &server,
        &[("token", DEFAULT_TOKEN), ("content", "version")],
    )
    .await;
    assert_eq!((status, text.as_str()), (200, "14.5.0"));
    // `type` defaults to flat, as in REDCap.
    let (status, rows) = api(&server, &[("content", "record"), ("format", "json")]).await;
    assert_eq!((status, rows.as_array().unwrap().len()), (200, 22));
    let (status, info) = api(&server, &[("content", "project"), ("format", "json")]).await;
    assert_eq!(status, 200);
    assert_eq!(info["has_repeating_instruments_or_events"], 1);
    assert_eq!(server.stats().bad_requests, 9);
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_replace_or_spoil_answers() {
    let server = sample_server().await;
    let c = client();
    let record = [
        ("token", DEFAULT_TOKEN),
        ("content", "record"),
        ("format", "json"),
        ("type", "flat"),
    ];
    let metadata = [
        ("token", DEFAULT_TOKEN),
        ("content", "metadata"),
        ("format", "json"),
    ];

    for code in [401, 500, 503] {
        server.set_fault(Fault::Status(code), FaultScope::All);
        let (status, text) = post_with(&c, &server, &record).await;
        assert_eq!(status, code);
        let body: Value = serde_json::from_str(&text).unwrap();
        assert!(error_of(&body).contains("injected"), "{body}");
    }

    // Scoped to records: metadata still answers.
    server.set_fault(Fault::InvalidJson, FaultScope::Record);
    let (status, text) = post_with(&c, &server, &record).await;
    assert_eq!(status, 200);
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
    let (status, text) = post_with(&c, &server, &metadata).await;
    assert_eq!(status, 200);
    assert!(serde_json::from_str::<Value>(&text).is_ok());

    // Twice, then normal again.
    server.set_fault_times(Fault::Status(500), FaultScope::Metadata, 2);
    assert_eq!(post_with(&c, &server, &metadata).await.0, 500);
    assert_eq!(
        post_with(&c, &server, &record).await.0,
        200,
        "the record fault was replaced"
    );
    assert_eq!(post_with(&c, &server, &metadata).await.0, 500);
    assert_eq!(post_with(&c, &server, &metadata).await.0, 200);

    // Truncated: the body read fails.
    server.set_fault(Fault::TruncatedBody, FaultScope::Record);
    let resp = c
        .post(server.api_url())
        .body(form(&record))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.is_err());

    // Hang: a client timeout; the shutdown answers it 503.
    server.set_fault(Fault::Hang, FaultScope::All);
    let short = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let err = short
        .post(server.api_url())
        .body(form(&record))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    let url = server.api_url();
    let body = form(&metadata);
    let pending = tokio::spawn(async move {
        client()
            .post(url)
            .body(body)
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A fault never spares the token check.
    let (status, _) = post_with(&c, &server, &[("token", "bad"), ("content", "metadata")]).await;
    assert_eq!(status, 403);
    let stats = server.stats();
    assert_eq!(
        stats.records_returned, 11,
        "only the one normal record answer counts"
    );
    server.shutdown().await;
    assert_eq!(pending.await.unwrap().unwrap(), 503);
}

#[tokio::test(flavor = "multi_thread")]
async fn latency_delays_every_answer() {
    let server = sample_server().await;
    server.set_latency(Duration::from_millis(200));
    let started = Instant::now();
    let (status, _) = api(&server, &[("content", "metadata"), ("format", "json")]).await;
    assert_eq!(status, 200);
    assert!(started.elapsed() >= Duration::from_millis(200));
    // Requests wait side by side, not one after the other.
    server.set_latency(Duration::from_millis(300));
    let started = Instant::now();
    let (a, b) = tokio::join!(export(&server, &[]), export(&server, &[]));
    assert_eq!(a, b);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_millis(600),
        "{elapsed:?}"
    );
    assert_eq!(server.stats().max_in_flight, 2);
    server.set_latency(Duration::ZERO);
    let started = Instant::now();
    export(&server, &[]).await;
    assert!(started.elapsed() < Duration::from_millis(150));

    let slow = FakeRedcap::start(FakeConfig {
        latency: Duration::from_millis(100),
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    let started = Instant::now();
    assert_eq!(
        api(&slow, &[("content", "metadata"), ("format", "json")])
            .await
            .0,
        200
    );
    assert!(started.elapsed() >= Duration::from_millis(100));
}

#[tokio::test(flavor = "multi_thread")]
async fn counters_count_by_content_and_what_was_returned() {
    let server = sample_server().await;
    api(&server, &[("content", "metadata"), ("format", "json")]).await;
    export(&server, &[]).await;
    export(&server, &[("records[0]", "103"), ("fields[0]", "mri_date")]).await;
    post_with(
        &client(),
        &server,
        &[("token", DEFAULT_TOKEN), ("content", "version")],
    )
    .await;
    api(&server, &[("content", "nope"), ("format", "json")]).await;
    let stats = server.stats();
    assert_eq!(stats.requests, 5);
    assert_eq!(stats.metadata_requests, 1);
    assert_eq!(stats.record_requests, 2);
    assert_eq!(stats.other_requests, 1);
    assert_eq!(stats.bad_requests, 1);
    assert_eq!(stats.records_returned, 11 + 1);
    assert_eq!(stats.rows_returned, 22 + 3);
    assert_eq!(
        stats.last_params,
        [
            ("content".to_owned(), "nope".to_owned()),
            ("format".to_owned(), "json".to_owned())
        ]
    );

    export(
        &server,
        &[
            ("fields[0]", "study_id"),
            ("dateRangeBegin", "2026-11-26 06:00:00"),
        ],
    )
    .await;
    let last = server.stats().last_params;
    assert!(last.iter().all(|(k, _)| k != "token"));
    assert!(last.contains(&("fields[0]".to_owned(), "study_id".to_owned())));
    assert!(last.contains(&(
        "dateRangeBegin".to_owned(),
        "2026-11-26 06:00:00".to_owned()
    )));

    server.reset_stats();
    assert_eq!(server.stats(), redcap_fake::Stats::default());
}

#[tokio::test(flavor = "multi_thread")]
async fn synthetic_records_for_benchmarks() {
    let server = FakeRedcap::start(FakeConfig::default()).await.unwrap();
    let records = synthetic_records(2_000, TODAY, 1);
    let sessions: usize = records.iter().map(|r| r.repeats.len()).sum();
    server.set_records(records);
    let rows = export(
        &server,
        &borrowed(&indexed("fields", &["study_id", "mri_date", "mri_time"])),
    )
    .await;
    assert_eq!(rows.len(), 2_000 + sessions);
    assert_eq!(record_ids(&rows).len(), 2_000);
    assert_eq!(rows[0]["study_id"], "CPIP-SYN00001");
    assert_eq!(record_ids(&rows)[1], "2", "numeric ids in numeric order");
    let stats = server.stats();
    assert_eq!(
        (stats.records_returned, stats.rows_returned),
        (2_000, rows.len() as u64)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn any_other_project_layout() {
    // No repeating instrument: no repeat columns; another record id field name.
    let project = Project::new(
        vec![
            Field::text("subject", "enrolment", "Subject"),
            Field::text("visit_date", "enrolment", "Visit date").validated("date_ymd"),
        ],
        &[],
    )
    .unwrap();
    let server = FakeRedcap::start(FakeConfig {
        project: project.clone(),
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    server.set_records(vec![
        FakeRecord::new("S-2").with("visit_date", "2026-11-26"),
        FakeRecord::new("S-10"),
    ]);
    let rows = export(&server, &[]).await;
    assert_eq!(
        rows,
        [
            serde_json::json!({"subject": "S-10", "visit_date": "", "enrolment_complete": ""}),
            serde_json::json!({"subject": "S-2", "visit_date": "2026-11-26", "enrolment_complete": ""}),
        ]
    );
    assert_eq!(server.project(), project);
    // Switching project while running.
    server.set_project(Project::cpip());
    let (_, meta) = api(&server, &[("content", "metadata"), ("format", "json")]).await;
    assert_eq!(meta[0]["field_name"], "record_id");
    assert!(Project::new(vec![Field::text("id", "visits", "Id")], &["visits"]).is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_binary_prints_its_url_and_serves() {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_redcap-fake"))
        .args([
            "--bind",
            "127.0.0.1:0",
            "--synthetic",
            "100",
            "--token-env",
            "RCFAKE_TEST_TOKEN",
        ])
        .env("RCFAKE_TEST_TOKEN", "TESTTOKEN")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let url = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/api/"),
        "{url}"
    );
    let body = form(&[
        ("token", "TESTTOKEN"),
        ("content", "record"),
        ("format", "json"),
        ("type", "flat"),
        ("fields", "study_id"),
    ]);
    let resp = client().post(&url).body(body).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>()
            .await
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        100
    );
    child.start_kill().unwrap();
    child.wait().await.unwrap();
}
