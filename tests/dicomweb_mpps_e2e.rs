//! The MPPS web service end to end: the real `mwlbridge serve` with `[admin]` (DICOMweb at
//! `/dicomweb`), fed by the fake Calpendo. A step created and completed over HTTP changes
//! what `findscu` is offered, as a DIMSE N-SET does; a step created over DIMSE is
//! retrieved over HTTP with the same attributes; refusals carry the mapped HTTP codes.

mod common;

use common::dicom_client::{Client, encode, uid};
use common::dicomweb::{Flat, flat_json, flat_xml, multipart_parts};
use common::scp::{Site, free_port, offered, scheduled, status_of};
use common::{booking, stderr, stdout};
use dicom_core::value::{DataSetSequence, PrimitiveValue};
use dicom_core::{DataElement, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use reqwest::StatusCode;
use serde_json::{Value, json};

const MPPS: &str = "1.2.840.10008.3.1.2.3.3";
const STEPS: &str = "/dicomweb/modality-performed-procedure-steps";

/// A site with the admin interface, a write and a read token.
struct Web {
    site: Site,
    admin_port: u16,
    write: String,
    read: String,
    client: reqwest::Client,
}

impl Web {
    fn start() -> Web {
        let admin_port = free_port();
        let site = Site::start(
            vec![
                booking(101, "SUB101_Tremblay_Marie", "3T Diagnostic", 9),
                booking(102, "SUB102_Novak_Jan", "3T Diagnostic", 10),
            ],
            &format!("[admin]\nenabled = true\nbind = \"127.0.0.1\"\nport = {admin_port}\n"),
        );
        let token = |name: &str, role: &str| {
            let c = site.config().to_str().expect("utf-8 path");
            let o = common::run(&[
                "token", "create", "--config", c, "--name", name, "--role", role,
            ]);
            assert!(o.status.success(), "token create: {}", stderr(&o));
            stdout(&o).trim().to_string()
        };
        let (write, read) = (token("MRI_3T", "write"), token("viewer", "read"));
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .expect("client");
        let web = Web {
            site,
            admin_port,
            write,
            read,
            client,
        };
        for _ in 0..100 {
            let healthz = web
                .site
                .block_on(async { web.client.get(web.url("/healthz")).send().await });
            if healthz.is_ok_and(|r| r.status().is_success()) {
                return web;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("the admin interface did not answer");
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.admin_port)
    }

    /// Sends `method` to `{STEPS}{tail}` with `token` and a DICOM JSON `body`.
    fn send(
        &self,
        method: reqwest::Method,
        tail: &str,
        token: Option<&str>,
        body: Option<String>,
    ) -> (StatusCode, reqwest::header::HeaderMap, String) {
        let mut rb = self
            .client
            .request(method, self.url(&format!("{STEPS}{tail}")));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.header("content-type", "application/dicom+json").body(b);
        }
        self.site.block_on(async {
            let r = rb.send().await.expect("HTTP request");
            let (status, headers) = (r.status(), r.headers().clone());
            (status, headers, r.text().await.expect("body"))
        })
    }
}

/// An N-CREATE body in DICOM JSON for the step of `patient_id`.
fn create_json(site: &Site, patient_id: &str) -> String {
    let common::scp::Scheduled {
        study_uid: study,
        accession,
        sps_id: sps,
    } = scheduled(site, patient_id);
    json!({
        "00400270": {"vr": "SQ", "Value": [{
            "00080050": {"vr": "SH", "Value": [accession]},
            "0020000D": {"vr": "UI", "Value": [study]},
            "00401001": {"vr": "SH", "Value": [accession]},
            "00400009": {"vr": "SH", "Value": [sps]}
        }]},
        "00080060": {"vr": "CS", "Value": ["MR"]},
        "00400241": {"vr": "AE", "Value": ["MRI_3T"]},
        "00400244": {"vr": "DA", "Value": ["20261126"]},
        "00400245": {"vr": "TM", "Value": ["090500"]},
        "00400253": {"vr": "SH", "Value": ["PPS1"]},
        "00400252": {"vr": "CS", "Value": ["IN PROGRESS"]},
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Tremblay^Marie"}]},
        "00100020": {"vr": "LO", "Value": [patient_id]}
    })
    .to_string()
}

fn value<'a>(obj: &'a Value, key: &str) -> &'a Value {
    &obj[key]["Value"][0]
}

#[test]
fn a_step_created_and_completed_over_the_web_leaves_the_worklist() {
    let web = Web::start();
    let site = &web.site;
    assert!(offered(site, "SUB101"));
    let uid = "1.2.826.0.1.3680043.10.1.501";
    let body = create_json(site, "SUB101");

    let (status, _, text) = web.send(
        reqwest::Method::POST,
        &format!("/{uid}"),
        None,
        Some(body.clone()),
    );
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{text}");
    let (status, _, text) = web.send(
        reqwest::Method::POST,
        &format!("/{uid}"),
        Some(&web.read),
        Some(body.clone()),
    );
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    let (status, _, text) = web.send(
        reqwest::Method::POST,
        &format!("/{uid}"),
        Some(&web.write),
        Some("{\"00400252\": {\"vr\": \"CS\", \"Value\": [1]}}".into()),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("00400252"), "{text}");
    let (status, _, text) = web.send(
        reqwest::Method::POST,
        &format!("/{uid}"),
        Some(&web.write),
        Some("{\"00080060\": {\"vr\": \"CS\", \"Value\": [\"MR\"]}}".into()),
    );
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "missing attributes: {text}"
    );

    let (status, headers, text) = web.send(
        reqwest::Method::POST,
        &format!("/{uid}"),
        Some(&web.write),
        Some(body.clone()),
    );
    assert_eq!(status, StatusCode::CREATED, "{text}");
    assert_eq!(
        headers.get("location").and_then(|v| v.to_str().ok()),
        Some(format!("{STEPS}/{uid}").as_str())
    );
    assert!(offered(site, "SUB101"), "a STARTED step is still offered");
    let (status, _, text) = web.send(
        reqwest::Method::POST,
        &format!("/{uid}"),
        Some(&web.write),
        Some(body),
    );
    assert_eq!(status, StatusCode::CONFLICT, "duplicate: {text}");

    let (status, _, text) = web.send(
        reqwest::Method::GET,
        &format!("/{uid}"),
        Some(&web.read),
        None,
    );
    assert_eq!(status, StatusCode::OK, "{text}");
    let got: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(value(&got, "00400252"), "IN PROGRESS");
    assert_eq!(value(&got, "00100010")["Alphabetic"], "Tremblay^Marie");
    retrieved_alike_in_every_media_type(&web, uid, &got);

    let completed = json!({
        "00400252": {"vr": "CS", "Value": ["COMPLETED"]},
        "00400250": {"vr": "DA", "Value": ["20261126"]},
        "00400251": {"vr": "TM", "Value": ["094500"]}
    })
    .to_string();
    // The update of PS3.18 15.5: POST with the `update` query parameter.
    let (status, _, text) = web.send(
        reqwest::Method::POST,
        &format!("/{uid}?update"),
        Some(&web.read),
        Some(completed.clone()),
    );
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    let (status, _, text) = web.send(
        reqwest::Method::POST,
        &format!("/{uid}?update"),
        Some(&web.write),
        Some(completed.clone()),
    );
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(
        !offered(site, "SUB101"),
        "a COMPLETED step leaves the default worklist"
    );
    assert!(offered(site, "SUB102"));
    let (status, _, text) = web.send(
        reqwest::Method::PATCH,
        &format!("/{uid}"),
        Some(&web.write),
        Some(completed.clone()),
    );
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "already COMPLETED (PATCH): {text}"
    );
    let (status, _, text) = web.send(
        reqwest::Method::POST,
        &format!("/{uid}?update"),
        Some(&web.write),
        Some(completed.clone()),
    );
    assert_eq!(status, StatusCode::CONFLICT, "already COMPLETED: {text}");

    let unknown = "/1.2.826.0.1.3680043.10.1.999";
    let (status, _, _) = web.send(reqwest::Method::GET, unknown, Some(&web.read), None);
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = web.send(
        reqwest::Method::PATCH,
        unknown,
        Some(&web.write),
        Some(completed),
    );
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = web.send(reqwest::Method::GET, unknown, None, None);
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[test]
fn a_step_created_over_dimse_is_retrieved_over_the_web() {
    let web = Web::start();
    let site = &web.site;
    let common::scp::Scheduled {
        study_uid: study,
        accession,
        sps_id: sps,
    } = scheduled(site, "SUB102");
    let el = |tag, vr, v: &str| DataElement::new(tag, vr, PrimitiveValue::from(v.to_string()));
    let item = InMemDicomObject::from_element_iter([
        el(tags::ACCESSION_NUMBER, VR::SH, &accession),
        DataElement::new(tags::STUDY_INSTANCE_UID, VR::UI, uid(&study)),
        el(tags::SCHEDULED_PROCEDURE_STEP_ID, VR::SH, &sps),
    ]);
    let mut data = InMemDicomObject::from_element_iter([
        el(tags::MODALITY, VR::CS, "MR"),
        el(
            tags::PERFORMED_PROCEDURE_STEP_START_DATE,
            VR::DA,
            "20261126",
        ),
        el(tags::PERFORMED_PROCEDURE_STEP_START_TIME, VR::TM, "100500"),
        el(tags::PERFORMED_PROCEDURE_STEP_ID, VR::SH, "PPS2"),
        el(tags::PERFORMED_PROCEDURE_STEP_STATUS, VR::CS, "IN PROGRESS"),
        el(tags::PATIENT_NAME, VR::PN, "Novak^Jan"),
    ]);
    data.put(DataElement::new(
        tags::SCHEDULED_STEP_ATTRIBUTES_SEQUENCE,
        VR::SQ,
        DataSetSequence::from(vec![item]),
    ));
    let instance = "1.2.826.0.1.3680043.10.1.502";
    let mut client =
        Client::connect_with(site.port(), "MRI_3T", "MWLBRIDGE", &[MPPS]).expect("associate");
    let command = InMemDicomObject::command_from_element_iter([
        DataElement::new(tags::AFFECTED_SOP_CLASS_UID, VR::UI, uid(MPPS)),
        DataElement::new(tags::COMMAND_FIELD, VR::US, PrimitiveValue::from(0x0140u16)),
        DataElement::new(
            tags::MESSAGE_ID,
            VR::US,
            PrimitiveValue::from(client.message_id()),
        ),
        DataElement::new(
            tags::COMMAND_DATA_SET_TYPE,
            VR::US,
            PrimitiveValue::from(0u16),
        ),
        DataElement::new(tags::AFFECTED_SOP_INSTANCE_UID, VR::UI, uid(instance)),
    ]);
    let r = client.request(MPPS, &command, Some(&encode(&data)));
    assert_eq!(r.final_status(), Some(0));
    client.release();

    let (status, headers, text) = web.send(
        reqwest::Method::GET,
        &format!("/{instance}"),
        Some(&web.read),
        None,
    );
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(
        headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/dicom+json")
    );
    let got: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(value(&got, "00080060"), "MR");
    assert_eq!(value(&got, "00400244"), "20261126");
    assert_eq!(value(&got, "00400245"), "100500");
    assert_eq!(value(&got, "00400253"), "PPS2");
    assert_eq!(value(&got, "00400252"), "IN PROGRESS");
    assert_eq!(value(&got, "00100010")["Alphabetic"], "Novak^Jan");
    let step = value(&got, "00400270");
    assert_eq!(value(step, "00400009"), sps.as_str());
    assert_eq!(value(step, "0020000D"), study.as_str());
    assert_eq!(value(step, "00080050"), accession.as_str());

    // The DIMSE step's creator is MRI_3T; with `mpps_same_ae_only` (the default) only the
    // token of that name may update it. Discontinued as a wrong pick (DCM 110514), the
    // scheduled step is offered again, as after the DIMSE N-SET.
    assert_eq!(status_of(site, "SUB102"), "STARTED");
    let wrong_pick = json!({
        "00400252": {"vr": "CS", "Value": ["DISCONTINUED"]},
        "00400281": {"vr": "SQ", "Value": [{
            "00080100": {"vr": "SH", "Value": ["110514"]},
            "00080102": {"vr": "SH", "Value": ["DCM"]},
            "00080104": {"vr": "LO", "Value": ["Incorrect worklist entry selected"]}
        }]}
    });
    let (status, _, text) = web.send(
        reqwest::Method::PATCH,
        &format!("/{instance}"),
        Some(&web.write),
        Some(wrong_pick.to_string()),
    );
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(status_of(site, "SUB102"), "SCHEDULED");
    assert!(offered(site, "SUB102"), "the wrong pick is offered again");
}

/// `GET {STEPS}/{uid}` with `Accept: {accept}` by the read token.
fn retrieve_as(web: &Web, uid: &str, accept: &str) -> (StatusCode, String, String) {
    let rb = web
        .client
        .get(web.url(&format!("{STEPS}/{uid}")))
        .bearer_auth(&web.read)
        .header("accept", accept);
    web.site.block_on(async {
        let r = rb.send().await.expect("HTTP request");
        let status = r.status();
        let ct = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        (status, ct, r.text().await.expect("body"))
    })
}

/// The retrieve of `uid` in XML and in both multipart forms holds what its JSON (`json`)
/// holds; a media type it does not offer is a 406.
fn retrieved_alike_in_every_media_type(web: &Web, uid: &str, json: &Value) {
    let mut expected = Flat::new();
    flat_json(json, "", &mut expected);
    assert!(expected.contains_key("00400270.00400009"), "{expected:?}");

    let (status, ct, doc) = retrieve_as(web, uid, "application/dicom+xml");
    assert_eq!(status, StatusCode::OK, "{doc}");
    assert_eq!(ct, "application/dicom+xml; charset=utf-8");
    assert_eq!(flat_xml(&doc), expected, "the step in XML");
    assert!(
        doc.contains("<FamilyName>Tremblay</FamilyName><GivenName>Marie</GivenName>"),
        "{doc}"
    );

    let (status, ct, body) = retrieve_as(
        web,
        uid,
        "multipart/related; type=\"application/dicom+xml\"",
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    let parts = multipart_parts(&ct, &body);
    assert_eq!(parts.len(), 1);
    assert_eq!(
        flat_xml(&parts[0].1),
        expected,
        "the step in a multipart XML part"
    );

    let (status, ct, body) = retrieve_as(
        web,
        uid,
        "multipart/related; type=\"application/dicom+json\"",
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    let parts = multipart_parts(&ct, &body);
    assert_eq!(parts.len(), 1);
    let part: Value = serde_json::from_str(&parts[0].1).expect("JSON part");
    let mut f = Flat::new();
    flat_json(&part[0], "", &mut f);
    assert_eq!(f, expected, "the step in a multipart JSON part");

    let (status, _, body) = retrieve_as(web, uid, "text/html");
    assert_eq!(status, StatusCode::NOT_ACCEPTABLE, "{body}");
    assert!(body.contains("application/dicom+xml"), "{body}");
}
