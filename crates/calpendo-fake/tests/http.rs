//! The fake Calpendo over real HTTP on 127.0.0.1.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use calpendo_fake::{
    BookingShape, FakeBooking, FakeCalpendo, FakeConfig, Fault, FaultScope, SAMPLE_FIXTURE, Stats,
    load_fixture,
};
use jiff::civil::{Date, date};
use serde_json::Value;

const TODAY: Date = Date::constant(2026, 11, 26);

/// A server holding the sample fixture, with "today" 2026-11-26.
async fn sample_server() -> FakeCalpendo {
    let server = FakeCalpendo::start(FakeConfig::default()).await.unwrap();
    server.set_bookings(load_fixture(SAMPLE_FIXTURE, TODAY).unwrap());
    server
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn get(server: &FakeCalpendo, path: &str) -> reqwest::Response {
    get_with(&client(), server, path).await.unwrap()
}

async fn get_with(
    client: &reqwest::Client,
    server: &FakeCalpendo,
    path: &str,
) -> reqwest::Result<reqwest::Response> {
    client
        .get(format!("{}{path}", server.base_url()))
        .basic_auth("mwlbridge", Some("secret"))
        .header("Accept", "application/json")
        .send()
        .await
}

async fn get_json(server: &FakeCalpendo, path: &str) -> (u16, Value) {
    let resp = get(server, path).await;
    let status = resp.status().as_u16();
    let body = resp.json::<Value>().await.unwrap();
    (status, body)
}

fn ids(list: &Value) -> Vec<i64> {
    list["biskits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_i64().unwrap())
        .collect()
}

const DAY0_FILTERED: &str = "/webdav/q/Calpendo.Booking/AND/dateRange.start/GE/20261126-0000/dateRange.start/LT/20261127-0000/OR/resource.name/EQ/3T%20Diagnostic/resource.name/EQ/EEG%20Lab%20Room%20A/status/EQ/Approved";

#[tokio::test(flavor = "multi_thread")]
async fn base_url_and_bad_timezone() {
    let server = sample_server().await;
    assert_eq!(
        server.base_url(),
        format!("http://127.0.0.1:{}", server.local_addr().port())
    );
    assert_ne!(server.local_addr().port(), 0);
    server.shutdown().await;

    let err = FakeCalpendo::start(FakeConfig {
        timezone: "Mars/Olympus_Mons".into(),
        ..FakeConfig::default()
    })
    .await
    .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_is_required() {
    let server = sample_server().await;
    let url = format!("{}/webdav/b/Calpendo.Booking/1001", server.base_url());
    let c = client();

    let none = c.get(&url).send().await.unwrap();
    assert_eq!(none.status(), 401);
    assert!(none.headers().get("www-authenticate").is_some());
    assert!(none.json::<Value>().await.unwrap()["error"].is_string());
    let wrong_pw = c
        .get(&url)
        .basic_auth("mwlbridge", Some("nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_pw.status(), 401);
    let wrong_user = c
        .get(&url)
        .basic_auth("admin", Some("secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_user.status(), 401);
    let garbage = c
        .get(&url)
        .header("Authorization", "Basic !!!")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 401);
    // Unknown routes need credentials too.
    let other = c
        .get(format!("{}/nothing", server.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 401);

    let ok = c
        .get(&url)
        .basic_auth("mwlbridge", Some("secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);

    let stats = server.stats();
    assert_eq!(stats.unauthorized, 5);
    assert_eq!(stats.requests, 6);
    assert_eq!(stats.detail_requests, 1);

    // Custom credentials.
    let custom = FakeCalpendo::start(FakeConfig {
        username: "u".into(),
        password: "p:w".into(),
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    let url = format!("{}/api/q/MRIScan/id/eq/1", custom.base_url());
    assert_eq!(
        c.get(&url)
            .basic_auth("u", Some("p:w"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        c.get(&url)
            .basic_auth("u", Some("p"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn list_query_filters_by_date_resource_and_status() {
    let server = sample_server().await;
    let (status, list) = get_json(&server, DAY0_FILTERED).await;
    assert_eq!(status, 200);
    assert_eq!(ids(&list), vec![1001, 1002, 1007]);
    let first = &list["biskits"][0];
    assert_eq!(
        first["formattedName"],
        "[2026-11-26 08:00:00.0, 2026-11-26 09:00:00.0]"
    );
    assert_eq!(first["title"], "SUB101_Tremblay_Marie");
    assert_eq!(first["status"], "Approved");
    assert_eq!(first["biskitType"], "MRIScan");
    assert_eq!(list["biskits"][1]["title"], "SUB102_Bélanger_Sophie");

    // Same query under /api.
    let (_, api) = get_json(&server, &DAY0_FILTERED.replacen("/webdav", "/api", 1)).await;
    assert_eq!(api, list);

    // Whole day 0, sorted by start; the overnight booking shows its range across days.
    let (_, day0) = get_json(
        &server,
        "/webdav/q/Calpendo.Booking/AND/dateRange.start/GE/20261126-0000/dateRange.start/LT/20261127-0000",
    )
    .await;
    assert_eq!(
        ids(&day0),
        vec![1001, 1005, 1002, 1007, 1003, 1006, 1004, 1008, 1009, 1010]
    );
    let overnight = day0["biskits"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        overnight["formattedName"],
        "[2026-11-26 22:00:00.0, 2026-11-27 06:00:00.0]"
    );

    // Resource names match exactly: a prefix matches nothing.
    let (_, none) = get_json(
        &server,
        "/webdav/q/Calpendo.Booking/AND/dateRange.start/GE/20261125-0000/dateRange.start/LT/20261128-0000/resource.name/EQ/3T",
    )
    .await;
    assert_eq!(ids(&none), Vec::<i64>::new());

    // biskitType and a three-day window.
    let (_, eeg) = get_json(
        &server,
        "/webdav/q/Calpendo.Booking/AND/dateRange.start/GE/20261125-0000/dateRange.start/LT/20261128-0000/biskitType/EQ/EEGScan",
    )
    .await;
    assert_eq!(ids(&eeg), vec![1007, 1008, 1013]);
    assert_eq!(server.stats().list_requests, 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_queries_are_400_with_json() {
    let server = sample_server().await;
    for path in [
        "/webdav/q/Calpendo.Booking/dateRange.start/GE",
        "/webdav/q/Calpendo.Booking/AND/dateRange.start/GE/2026-11-26",
        "/webdav/q/Calpendo.Booking/AND/colour/EQ/red",
        "/webdav/q/Calpendo.Booking/AND/status/EQ",
        "/api/q/Calpendo.Booking/AND/status/LIKE/Approved",
        "/webdav/q/Calpendo.Booking",
        "/webdav/q/Calpendo.Booking/",
        "/webdav/q/MRIScan/id/eq/abc",
        "/webdav/b/Calpendo.Booking/abc",
    ] {
        let (status, body) = get_json(&server, path).await;
        assert_eq!(status, 400, "{path}");
        assert!(body["message"].is_string(), "{path}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn classic_detail() {
    let server = sample_server().await;
    let (status, d) = get_json(&server, "/webdav/b/Calpendo.Booking/1002").await;
    assert_eq!(status, 200);
    assert_eq!(d["id"], 1002);
    assert_eq!(
        d["formattedName"],
        "[2026-11-26 09:00:00.0, 2026-11-26 10:30:00.0]"
    );
    assert_eq!(d["title"], "SUB102_Bélanger_Sophie");
    assert_eq!(d["status"], "Approved");
    assert_eq!(d["biskitType"], "MRIScan");
    let p = &d["properties"];
    assert_eq!(p["resource"]["name"], "3T Diagnostic");
    assert_eq!(p["resource"]["formattedName"], "3T Diagnostic");
    assert!(p["resource"]["id"].is_i64());
    assert_eq!(
        p["project"]["formattedName"],
        "BRISKP (Brain network models in schizophrenia)"
    );
    assert_eq!(p["project"]["name"], "BRISKP");
    assert_eq!(p["booker"]["name"], "Dr. Samuel Osei");
    assert_eq!(p["owner"]["name"], "Dr. Helen Marchetti");
    assert_eq!(p["durationInMinutes"], 90);
    assert_eq!(p["cancelled"], false);
    assert!(p["cancellationReason"].is_null());
    assert!(p["description"].is_null());
    for key in ["created", "modified"] {
        let s = p[key].as_str().unwrap();
        assert!(
            jiff::civil::DateTime::strptime("%Y-%m-%dT%H:%MZ", s).is_ok(),
            "{key}: {s}"
        );
    }
    assert!(p.get("dateRange").is_none());

    let (_, cancelled) = get_json(&server, "/api/b/Calpendo.Booking/1004").await;
    assert_eq!(cancelled["properties"]["cancelled"], true);
    assert!(cancelled["properties"]["cancellationReason"].is_string());
    assert_eq!(cancelled["properties"]["description"], "Participant unwell");

    // A project without parentheses; a booking without a project.
    let (_, no_paren) = get_json(&server, "/webdav/b/Calpendo.Booking/1003").await;
    assert_eq!(
        no_paren["properties"]["project"]["name"],
        "Memory Consolidation Study"
    );
    let mut b = server
        .bookings()
        .into_iter()
        .find(|b| b.id == 1003)
        .unwrap();
    b.project = None;
    server.upsert_booking(b);
    let (_, no_project) = get_json(&server, "/webdav/b/Calpendo.Booking/1003").await;
    assert!(no_project["properties"].get("project").is_none());
}

fn booking(id: i64, shape: BookingShape) -> FakeBooking {
    FakeBooking {
        id,
        start: date(2026, 11, 26).at(9, 0, 0, 0),
        end: date(2026, 11, 26).at(10, 0, 0, 0),
        title: format!("SUB{id:05}_Doe_Jane"),
        status: "Approved".into(),
        biskit_type: "MRIScan".into(),
        resource: "3T Diagnostic".into(),
        project: Some("P (x)".into()),
        booker: None,
        owner: None,
        operator: Some("Op Erator".into()),
        description: None,
        shape,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn calpendo11_detail() {
    let server = sample_server().await;
    // 1005: odd id → "end" key; 1005 % 4 == 1 → offset form, whatever offset the
    // bundled database gives Edmonton then.
    let (status, d) = get_json(&server, "/webdav/b/Calpendo.Booking/1005").await;
    assert_eq!(status, 200);
    assert_eq!(d["id"], 1005);
    assert_eq!(d["biskitType"], "MRIScan");
    for key in ["formattedName", "title", "status"] {
        assert!(d.get(key).is_none(), "{key} must not be top-level");
    }
    let p = &d["properties"];
    assert_eq!(p["title"], "SUB201_Singh_Priya");
    assert_eq!(p["status"], "Approved");
    let edmonton = jiff::tz::TimeZoneDatabase::bundled()
        .get("America/Edmonton")
        .unwrap();
    for (key, local) in [
        ("start", TODAY.at(8, 30, 0, 0)),
        ("end", TODAY.at(10, 0, 0, 0)),
    ] {
        let s = p["dateRange"][key].as_str().unwrap();
        assert!(
            s.starts_with(&format!("{}", local.strftime("%Y-%m-%dT%H:%M:%S"))),
            "{s}"
        );
        assert!(!s.ends_with('Z'), "{s}");
        let instant: jiff::Timestamp = s.parse().unwrap();
        assert_eq!(instant, edmonton.to_timestamp(local).unwrap(), "{s}");
    }
    assert!(p["dateRange"].get("finish").is_none());
    assert_eq!(p["resource"]["name"], "3T Research");

    // Even id, id % 4 == 2 → "finish" and UTC (America/Regina: UTC-6 all year).
    let regina = FakeCalpendo::start(FakeConfig {
        timezone: "America/Regina".into(),
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    regina.upsert_booking(booking(2002, BookingShape::Calpendo11));
    let (_, d) = get_json(&regina, "/api/b/Calpendo.Booking/2002").await;
    assert_eq!(
        d["properties"]["dateRange"]["start"],
        "2026-11-26T15:00:00Z"
    );
    assert_eq!(
        d["properties"]["dateRange"]["finish"],
        "2026-11-26T16:00:00Z"
    );
    assert!(d["properties"]["dateRange"].get("end").is_none());

    // Summer time, another zone.
    let paris = FakeCalpendo::start(FakeConfig {
        timezone: "Europe/Paris".into(),
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    let mut summer = booking(2004, BookingShape::Calpendo11);
    summer.start = date(2026, 7, 1).at(9, 0, 0, 0);
    summer.end = date(2026, 7, 1).at(9, 45, 0, 0);
    paris.set_bookings(vec![summer]);
    let (_, d) = get_json(&paris, "/webdav/b/Calpendo.Booking/2004").await;
    assert_eq!(
        d["properties"]["dateRange"]["start"],
        "2026-07-01T09:00:00+02:00"
    );
    assert_eq!(
        d["properties"]["dateRange"]["finish"],
        "2026-07-01T09:45:00+02:00"
    );
    assert_eq!(d["properties"]["durationInMinutes"], 45);
}

#[tokio::test(flavor = "multi_thread")]
async fn operator_shapes() {
    let server = sample_server().await;
    let paths = "?paths=resource.name,Operator.name,staffConformation";

    // Odd id: nested shape.
    let (status, v) = get_json(&server, &format!("/webdav/q/MRIScan/id/eq/1001{paths}")).await;
    assert_eq!(status, 200);
    assert_eq!(v["biskits"][0]["id"], 1001);
    assert_eq!(
        v["biskits"][0]["properties"]["Operator"]["name"],
        "Nadia Okoye"
    );

    // Even id: flat shape, hidden operator passed through.
    let (_, v) = get_json(&server, &format!("/webdav/q/MRIScan/id/eq/1002{paths}")).await;
    let e = &v["biskits"][0];
    assert_eq!(e["id"], 1002);
    assert_eq!(e["resource.name"], "3T Diagnostic");
    assert_eq!(e["Operator.name"]["formattedName"], "<Hidden>");
    assert!(e["Operator.name"]["id"].is_i64());
    assert_eq!(e["staffConformation"], "Confirmed");

    let (_, v) = get_json(&server, "/api/q/MRIScan/id/EQ/1006").await;
    assert_eq!(
        v["biskits"][0]["Operator.name"]["formattedName"],
        "Rafael Ortega"
    );

    // No operator: fields omitted, in both shapes.
    let (_, v) = get_json(&server, "/webdav/q/MRIScan/id/eq/1003").await;
    assert_eq!(v["biskits"][0]["properties"], serde_json::json!({}));
    let (_, v) = get_json(&server, "/webdav/q/MRIScan/id/eq/1012").await;
    assert!(v["biskits"][0].get("Operator.name").is_none());
    assert_eq!(v["biskits"][0]["resource.name"], "3T Research");

    // Not an MRIScan, or unknown: empty.
    for id in [1007, 1009, 999_999] {
        let (status, v) = get_json(&server, &format!("/webdav/q/MRIScan/id/eq/{id}")).await;
        assert_eq!(status, 200);
        assert_eq!(v, serde_json::json!({ "biskits": [] }), "{id}");
    }
    assert_eq!(server.stats().operator_requests, 8);
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_booking_is_404_json() {
    let server = sample_server().await;
    let (status, body) = get_json(&server, "/webdav/b/Calpendo.Booking/424242").await;
    assert_eq!(status, 404);
    assert!(body["message"].as_str().unwrap().contains("424242"));
    let (status, body) = get_json(&server, "/webdav/nothing/here").await;
    assert_eq!(status, 404);
    assert!(body["error"].is_string());
}

#[tokio::test(flavor = "multi_thread")]
async fn bookings_can_change_between_requests() {
    let server = sample_server().await;
    assert_eq!(server.bookings().len(), 15);
    assert!(server.remove_booking(1001));
    assert!(!server.remove_booking(1001));
    let (_, list) = get_json(&server, DAY0_FILTERED).await;
    assert_eq!(ids(&list), vec![1002, 1007]);
    assert_eq!(
        get(&server, "/webdav/b/Calpendo.Booking/1001")
            .await
            .status(),
        404
    );

    let mut moved = booking(3000, BookingShape::Classic);
    moved.start = date(2026, 11, 26).at(7, 0, 0, 0);
    server.upsert_booking(moved.clone());
    let (_, list) = get_json(&server, DAY0_FILTERED).await;
    assert_eq!(ids(&list), vec![3000, 1002, 1007]);

    moved.status = "Cancelled".into();
    server.upsert_booking(moved);
    let (_, list) = get_json(&server, DAY0_FILTERED).await;
    assert_eq!(ids(&list), vec![1002, 1007]);

    server.set_bookings(vec![]);
    assert!(server.bookings().is_empty());
    let (_, list) = get_json(&server, DAY0_FILTERED).await;
    assert_eq!(ids(&list), Vec::<i64>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_status_and_scopes() {
    let server = sample_server().await;
    server.set_fault(Fault::Status(503), FaultScope::Details);
    let (status, body) = get_json(&server, "/webdav/b/Calpendo.Booking/1001").await;
    assert_eq!(status, 503);
    assert_eq!(body["status"], 503);
    assert_eq!(get(&server, DAY0_FILTERED).await.status(), 200);
    assert_eq!(
        get(&server, "/webdav/q/MRIScan/id/eq/1001").await.status(),
        200
    );
    // Faults win over 404: a fault on details hits unknown ids too.
    assert_eq!(
        get(&server, "/webdav/b/Calpendo.Booking/5").await.status(),
        503
    );

    server.set_fault(Fault::Status(500), FaultScope::List);
    assert_eq!(get(&server, DAY0_FILTERED).await.status(), 500);
    assert_eq!(
        get(&server, "/webdav/b/Calpendo.Booking/1001")
            .await
            .status(),
        200
    );

    server.set_fault(Fault::Status(403), FaultScope::Operator);
    assert_eq!(
        get(&server, "/webdav/q/MRIScan/id/eq/1001").await.status(),
        403
    );
    assert_eq!(get(&server, DAY0_FILTERED).await.status(), 200);

    server.set_fault(Fault::Status(502), FaultScope::Booking(1001));
    assert_eq!(
        get(&server, "/webdav/b/Calpendo.Booking/1001")
            .await
            .status(),
        502
    );
    assert_eq!(
        get(&server, "/webdav/q/MRIScan/id/eq/1001").await.status(),
        502
    );
    assert_eq!(
        get(&server, "/webdav/b/Calpendo.Booking/1002")
            .await
            .status(),
        200
    );
    assert_eq!(get(&server, DAY0_FILTERED).await.status(), 200);

    server.set_fault(Fault::Status(500), FaultScope::All);
    for path in [
        DAY0_FILTERED,
        "/api/b/Calpendo.Booking/1002",
        "/api/q/MRIScan/id/eq/1002",
    ] {
        assert_eq!(get(&server, path).await.status(), 500, "{path}");
    }
    server.clear_fault();
    assert_eq!(
        get(&server, "/webdav/b/Calpendo.Booking/1001")
            .await
            .status(),
        200
    );

    // A fault for the next N requests only.
    server.set_fault_times(Fault::Status(503), FaultScope::All, 2);
    assert_eq!(get(&server, DAY0_FILTERED).await.status(), 503);
    assert_eq!(
        get(&server, "/webdav/b/Calpendo.Booking/1001")
            .await
            .status(),
        503
    );
    assert_eq!(get(&server, DAY0_FILTERED).await.status(), 200);
    // Requests out of scope do not use up the count.
    server.set_fault_times(Fault::Status(503), FaultScope::Booking(1002), 1);
    assert_eq!(
        get(&server, "/webdav/b/Calpendo.Booking/1001")
            .await
            .status(),
        200
    );
    assert_eq!(
        get(&server, "/webdav/b/Calpendo.Booking/1002")
            .await
            .status(),
        503
    );
    assert_eq!(
        get(&server, "/webdav/b/Calpendo.Booking/1002")
            .await
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_invalid_json() {
    let server = sample_server().await;
    server.set_fault(Fault::InvalidJson, FaultScope::List);
    let resp = get(&server, DAY0_FILTERED).await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(text.starts_with("{\"biskits\": ["), "{text}");
    assert!(serde_json::from_str::<Value>(&text).is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_truncated_body() {
    let server = sample_server().await;
    server.set_fault(Fault::TruncatedBody, FaultScope::Details);
    let resp = get(&server, "/webdav/b/Calpendo.Booking/1001").await;
    assert_eq!(resp.status(), 200);
    let declared: usize = resp.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(declared > 0);
    let err = resp.bytes().await.unwrap_err();
    assert!(!err.is_timeout(), "{err:?}");

    // The server keeps serving other connections.
    server.clear_fault();
    assert_eq!(
        get(&server, "/webdav/b/Calpendo.Booking/1001")
            .await
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_hang_and_graceful_shutdown() {
    let server = sample_server().await;
    server.set_fault(Fault::Hang, FaultScope::Booking(1001));
    let c = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let err = get_with(&c, &server, "/webdav/b/Calpendo.Booking/1001")
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    // Other bookings still answer.
    assert_eq!(
        get_with(&c, &server, "/webdav/b/Calpendo.Booking/1002")
            .await
            .unwrap()
            .status(),
        200
    );

    // A hung request is answered 503 when the server shuts down, promptly.
    let url = format!("{}/webdav/b/Calpendo.Booking/1001", server.base_url());
    let pending = tokio::spawn(async move {
        client()
            .get(url)
            .basic_auth("mwlbridge", Some("secret"))
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), server.shutdown())
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(pending.await.unwrap().unwrap(), 503);
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_slow_body() {
    let server = sample_server().await;
    let (_, expected) = get_json(&server, "/webdav/b/Calpendo.Booking/1001").await;
    server.set_fault(
        Fault::SlowBody(Duration::from_millis(1000)),
        FaultScope::Details,
    );
    let started = Instant::now();
    let resp = get(&server, "/webdav/b/Calpendo.Booking/1001").await;
    assert_eq!(resp.status(), 200);
    let headers_after = started.elapsed();
    let body: Value = resp.json().await.unwrap();
    let total = started.elapsed();
    assert_eq!(body, expected);
    assert!(
        headers_after < Duration::from_millis(600),
        "headers after {headers_after:?}"
    );
    assert!(total >= Duration::from_millis(950), "body after {total:?}");

    // A client with a short timeout gives up on it.
    let c = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let result = async {
        get_with(&c, &server, "/webdav/b/Calpendo.Booking/1001")
            .await?
            .bytes()
            .await
    }
    .await;
    assert!(result.unwrap_err().is_timeout());
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_connection_reset() {
    let server = sample_server().await;
    server.set_fault(Fault::ConnectionReset, FaultScope::List);
    let started = Instant::now();
    let err = get_with(&client(), &server, DAY0_FILTERED)
        .await
        .unwrap_err();
    assert!(!err.is_timeout(), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let chain = format!("{err:?}").to_lowercase();
    assert!(chain.contains("reset"), "{chain}");

    // Other routes (and new connections) still work.
    assert_eq!(
        get(&server, "/webdav/b/Calpendo.Booking/1001")
            .await
            .status(),
        200
    );
    server.clear_fault();
    assert_eq!(get(&server, DAY0_FILTERED).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn latency_and_max_in_flight() {
    let server = sample_server().await;
    server.set_latency(Duration::from_millis(500));
    let c = client();
    let started = Instant::now();
    let requests = (0..6).map(|i| {
        let c = c.clone();
        let base = server.base_url();
        async move {
            let path = if i % 2 == 0 {
                "/webdav/b/Calpendo.Booking/1001"
            } else {
                "/webdav/q/MRIScan/id/eq/1002"
            };
            c.get(format!("{base}{path}"))
                .basic_auth("mwlbridge", Some("secret"))
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    let statuses = futures::future::join_all(requests).await;
    let elapsed = started.elapsed();
    assert!(statuses.iter().all(|s| *s == 200));
    assert!(elapsed >= Duration::from_millis(500), "{elapsed:?}");
    // One after the other would take 3 s.
    assert!(
        elapsed < Duration::from_millis(2500),
        "not concurrent: {elapsed:?}"
    );
    let stats = server.stats();
    assert_eq!(stats.max_in_flight, 6, "{stats:?}");
    assert_eq!(stats.detail_requests, 3);
    assert_eq!(stats.operator_requests, 3);

    server.reset_stats();
    assert_eq!(server.stats(), Stats::default());
    // Sequential requests: never more than one in flight.
    server.set_latency(Duration::from_millis(20));
    for _ in 0..3 {
        assert_eq!(
            get_with(&c, &server, DAY0_FILTERED).await.unwrap().status(),
            200
        );
    }
    let stats = server.stats();
    assert_eq!(stats.max_in_flight, 1);
    assert_eq!(stats.list_requests, 3);
    assert_eq!(stats.requests, 3);

    // Latency from the config applies from the start.
    let slow = FakeCalpendo::start(FakeConfig {
        latency: Duration::from_millis(200),
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    let started = Instant::now();
    get(&slow, "/webdav/q/MRIScan/id/eq/1").await;
    assert!(started.elapsed() >= Duration::from_millis(200));
}

const DAY0: &str = "AND/dateRange.start/GE/20261126-0000/dateRange.start/LT/20261127-0000";

#[tokio::test(flavor = "multi_thread")]
async fn paths_name_each_value_by_its_path() {
    let server = sample_server().await;
    let query = format!(
        "/webdav/q/Calpendo.Booking/{DAY0}/OR/resource.name/STARTS_WITH/3T/resource.name/STARTS_WITH/EEG/CLOSE/OR/status/EQ/Approved/status/EQ/Pending/CLOSE?paths=title,status,resource.name,project,dateRange.start,Operator.name,description"
    );
    let (status, v) = get_json(&server, &query).await;
    assert_eq!(status, 200, "{v}");
    // Mock Scanner (1009) and the cancelled booking (1004) are filtered on the server.
    assert_eq!(
        ids(&v),
        vec![1001, 1005, 1002, 1007, 1003, 1006, 1008, 1010]
    );
    let first = &v["biskits"][0];
    assert_eq!(first["title"], "SUB101_Tremblay_Marie");
    assert_eq!(first["resource.name"], "3T Diagnostic");
    assert_eq!(
        first["project"]["formattedName"],
        "BRISKP (Brain network models in schizophrenia)"
    );
    assert!(first["project"]["id"].is_i64());
    assert_eq!(first["Operator.name"]["formattedName"], "Nadia Okoye");
    assert_eq!(first["dateRange.start"], "2026-11-26T08:00:00-06:00");
    assert_eq!(first["description"], "Baseline session");
    // Only the id and the asked paths.
    assert_eq!(first.as_object().unwrap().len(), 8);
    // An EEG booking has no operator.
    assert!(v["biskits"][3]["Operator.name"].is_null());

    // The MRI operators of the same window in one query.
    let (status, ops) = get_json(
        &server,
        &format!("/webdav/q/MRIScan/{DAY0}?paths=Operator.name"),
    )
    .await;
    assert_eq!(status, 200, "{ops}");
    assert_eq!(ids(&ops), vec![1001, 1005, 1002, 1003, 1006, 1004, 1010]);
    assert_eq!(
        ops["biskits"][2]["Operator.name"]["formattedName"],
        "<Hidden>"
    );
    assert!(ops["biskits"][3]["Operator.name"].is_null());

    // NOR, __NULL__ and a single term.
    let (_, v) = get_json(
        &server,
        &format!(
            "/webdav/q/Calpendo.Booking/{DAY0}/NOR/status/EQ/Approved/description/EQ/__NULL__/CLOSE"
        ),
    )
    .await;
    assert_eq!(ids(&v), vec![1004]);
    let (_, v) = get_json(
        &server,
        "/webdav/q/Calpendo.Booking/updated/GT/20000101T0000",
    )
    .await;
    assert_eq!(v["biskits"].as_array().unwrap().len(), 15);
    let (_, v) = get_json(
        &server,
        "/webdav/q/Calpendo.Booking/updated/GT/29990101T0000",
    )
    .await;
    assert_eq!(ids(&v), Vec::<i64>::new());
    assert_eq!(server.stats().list_requests, 4);
    assert_eq!(server.stats().operator_requests, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn switches_ignore_paths_and_refuse_starts_with() {
    let server = sample_server().await;
    server.set_ignore_paths(true);
    let (_, v) = get_json(
        &server,
        &format!("/webdav/q/Calpendo.Booking/{DAY0}?paths=resource.name,title"),
    )
    .await;
    let first = &v["biskits"][0];
    assert!(first.get("resource.name").is_none(), "{first}");
    assert_eq!(
        first["formattedName"],
        "[2026-11-26 08:00:00.0, 2026-11-26 09:00:00.0]"
    );
    // The window's operators in the two look-up shapes.
    let (_, ops) = get_json(
        &server,
        &format!("/webdav/q/MRIScan/{DAY0}?paths=Operator.name"),
    )
    .await;
    assert_eq!(
        ops["biskits"][0]["properties"]["Operator"]["name"],
        "Nadia Okoye"
    );
    server.set_ignore_paths(false);

    let starts = format!("/webdav/q/Calpendo.Booking/{DAY0}/OR/resource.name/STARTS_WITH/3T/CLOSE");
    assert_eq!(get_json(&server, &starts).await.0, 200);
    server.set_refuse_starts_with(true);
    let (status, body) = get_json(&server, &starts).await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("STARTS_WITH"));
    assert_eq!(
        get_json(&server, &format!("/webdav/q/Calpendo.Booking/{DAY0}"))
            .await
            .0,
        200
    );
}
