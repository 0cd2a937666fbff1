//! The server's metrics move with what it does: an MwlServer on 127.0.0.1 with its
//! `ScpMetrics`, driven by a small dicom-ul client (C-ECHO, C-FIND that succeed, are
//! truncated or refused, an MPPS N-CREATE refused, associations refused for their AE
//! titles), then the registry encoded as text and read line by line.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::TcpStream;
use std::time::{Duration, Instant};

use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN;
use dicom_ul::association::client::{ClientAssociation, ClientAssociationOptions};
use dicom_ul::pdu::{PDataValue, PDataValueType, Pdu, PresentationContextResultReason};
use jiff::civil::date;
use mwl_scp::metrics::ScpMetrics;
use mwl_scp::mpps::MPPS;
use mwl_scp::{AePolicy, MWL_FIND, MwlServer, ScpConfig, VERIFICATION};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use worklist_store::{OnCancel, Store, SyncWindow, WorklistEntry};

const AE: &str = "MWLBRIDGE";

fn encode(obj: &InMemDicomObject) -> Vec<u8> {
    let mut out = Vec::new();
    obj.write_dataset_with_ts(&mut out, &IMPLICIT_VR_LITTLE_ENDIAN.erased())
        .expect("encode");
    out
}

fn uid(s: &str) -> PrimitiveValue {
    let mut s = s.to_string();
    if s.len() % 2 == 1 {
        s.push('\0');
    }
    PrimitiveValue::from(s)
}

fn command(sop_class: &str, field: u16, id: u16, with_data: bool) -> Vec<u8> {
    encode(&InMemDicomObject::command_from_element_iter([
        DataElement::new(tags::AFFECTED_SOP_CLASS_UID, VR::UI, uid(sop_class)),
        DataElement::new(tags::COMMAND_FIELD, VR::US, PrimitiveValue::from(field)),
        DataElement::new(tags::MESSAGE_ID, VR::US, PrimitiveValue::from(id)),
        DataElement::new(tags::PRIORITY, VR::US, PrimitiveValue::from(0u16)),
        DataElement::new(
            tags::COMMAND_DATA_SET_TYPE,
            VR::US,
            PrimitiveValue::from(if with_data { 0x0000u16 } else { 0x0101 }),
        ),
    ]))
}

struct Client {
    assoc: ClientAssociation<TcpStream>,
    next_id: u16,
}

impl Client {
    fn connect(port: u16, calling: &str, called: &str) -> Result<Client, String> {
        let mut options = ClientAssociationOptions::new()
            .calling_ae_title(calling.to_string())
            .called_ae_title(called.to_string())
            .read_timeout(Duration::from_secs(20));
        for a in [VERIFICATION, MWL_FIND, MPPS] {
            options = options.with_presentation_context(a, vec![IMPLICIT_VR_LITTLE_ENDIAN.uid()]);
        }
        let assoc = options
            .establish(("127.0.0.1", port))
            .map_err(|e| e.to_string())?;
        Ok(Client { assoc, next_id: 1 })
    }

    fn context(&self, abstract_syntax: &str) -> u8 {
        self.assoc
            .presentation_contexts()
            .iter()
            .find(|pc| {
                pc.abstract_syntax.trim_end_matches('\0') == abstract_syntax
                    && pc.reason == PresentationContextResultReason::Acceptance
            })
            .map(|pc| pc.id)
            .expect("accepted presentation context")
    }

    /// Sends one request and reads until its final response; returns every status and
    /// the number of identifiers received.
    fn request(
        &mut self,
        sop_class: &str,
        field: u16,
        data: Option<&InMemDicomObject>,
    ) -> (Vec<u16>, usize) {
        let ctx = self.context(sop_class);
        let id = self.next_id;
        self.next_id += 1;
        let pdv = |value_type, data| PDataValue {
            presentation_context_id: ctx,
            value_type,
            is_last: true,
            data,
        };
        let mut pdvs = vec![pdv(
            PDataValueType::Command,
            command(sop_class, field, id, data.is_some()),
        )];
        if let Some(d) = data {
            pdvs.push(pdv(PDataValueType::Data, encode(d)));
        }
        self.assoc.send(&Pdu::PData { data: pdvs }).expect("send");
        let (mut statuses, mut items) = (Vec::new(), 0);
        let mut command_bytes = Vec::new();
        let mut awaiting_data = false;
        loop {
            let Pdu::PData { data } = self.assoc.receive().expect("receive") else {
                panic!("unexpected PDU");
            };
            for v in data {
                match v.value_type {
                    PDataValueType::Command => {
                        command_bytes.extend_from_slice(&v.data);
                        if !v.is_last {
                            continue;
                        }
                        let cmd = InMemDicomObject::read_dataset_with_ts(
                            command_bytes.as_slice(),
                            &IMPLICIT_VR_LITTLE_ENDIAN.erased(),
                        )
                        .expect("response command");
                        command_bytes.clear();
                        let u16_of = |tag| cmd.get(tag).and_then(|e| e.to_int::<u16>().ok());
                        statuses.push(u16_of(tags::STATUS).expect("status"));
                        awaiting_data = u16_of(tags::COMMAND_DATA_SET_TYPE) != Some(0x0101);
                    }
                    PDataValueType::Data => {
                        if v.is_last {
                            items += 1;
                            awaiting_data = false;
                        }
                    }
                }
            }
            if awaiting_data || !command_bytes.is_empty() {
                continue;
            }
            if let Some(&last) = statuses.last()
                && !matches!(last, 0xFF00 | 0xFF01)
            {
                return (statuses, items);
            }
        }
    }

    fn find(&mut self, keys: &[(dicom_core::Tag, VR, &str)]) -> (u16, usize) {
        let identifier = InMemDicomObject::from_element_iter(keys.iter().map(|(t, vr, v)| {
            DataElement::new(
                *t,
                *vr,
                if v.is_empty() {
                    PrimitiveValue::Empty
                } else {
                    PrimitiveValue::from(*v)
                },
            )
        }));
        let (statuses, items) = self.request(MWL_FIND, 0x0020, Some(&identifier));
        (*statuses.last().expect("a status"), items)
    }

    fn release(self) {
        self.assoc.release().expect("release");
    }
}

/// The value of the sample `series` (name and labels exactly as encoded).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.split(' ').next()?.parse().ok())
}

fn encoded(registry: &Registry) -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry).expect("encode");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_follow_echo_find_mpps_and_refused_associations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path().join("worklist.db")).expect("store");
    let day = date(2026, 11, 26);
    let window = SyncWindow {
        start: day.at(0, 0, 0, 0),
        end: day.at(23, 59, 0, 0),
    };
    let entries = (1..=3)
        .map(|i| {
            WorklistEntry::new(
                "calpendo",
                format!("{i}"),
                format!("SUB00{i}"),
                day.at(9 + i, 0, 0, 0),
            )
        })
        .collect();
    store
        .reconcile(
            "calpendo",
            &window,
            entries,
            OnCancel::Discontinue,
            jiff::Timestamp::now(),
        )
        .expect("reconcile");

    let metrics = ScpMetrics::new();
    let mut registry = Registry::default();
    metrics.register(&mut registry);
    let config = ScpConfig {
        ae_title: AE.into(),
        policy: AePolicy {
            accept_any_called_ae: false,
            allowed_calling_aets: vec!["CONSOLE".into()],
        },
        max_responses: Some(2),
        ..ScpConfig::default()
    };
    let server = MwlServer::new(config, store).with_metrics(metrics.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let serving = tokio::spawn(async move { server.serve(listener, stop_rx).await });

    let before = encoded(&registry);
    assert_eq!(value(&before, "mwlbridge_echo_requests_total"), Some(0.0));

    let results = tokio::task::spawn_blocking(move || {
        let mut c = Client::connect(port, "CONSOLE", AE).expect("associate");
        let (echo, _) = c.request(VERIFICATION, 0x0030, None);
        // One match: success.
        let one = c.find(&[(tags::PATIENT_ID, VR::LO, "SUB002")]);
        // Three matches, max_responses 2: truncated after two.
        let all = c.find(&[(tags::PATIENT_ID, VR::LO, "")]);
        // A birth date that is no date: the identifier is refused.
        let bad = c.find(&[(tags::PATIENT_BIRTH_DATE, VR::DA, "notadate")]);
        // An N-CREATE without the required attributes: refused.
        let (mpps, _) = c.request(
            MPPS,
            0x0140,
            Some(&InMemDicomObject::from_element_iter([DataElement::new(
                tags::PATIENT_ID,
                VR::LO,
                PrimitiveValue::from("SUB001"),
            )])),
        );
        c.release();
        let wrong_called = Client::connect(port, "CONSOLE", "SOMEONE_ELSE").err();
        let wrong_calling = Client::connect(port, "INTRUDER", AE).err();
        (echo, one, all, bad, mpps, wrong_called, wrong_calling)
    })
    .await
    .expect("client");
    let (echo, one, all, bad, mpps, wrong_called, wrong_calling) = results;
    assert_eq!(echo, vec![0x0000]);
    assert_eq!(one, (0x0000, 1));
    assert_eq!(all, (0xFE00, 2));
    assert_eq!(bad.0, 0xA900);
    assert_ne!(mpps.last().copied(), Some(0x0000));
    assert!(wrong_called.is_some() && wrong_calling.is_some());

    // The server finishes its side of the release and the refusals on its own time.
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let t = encoded(&registry);
        let settled = value(&t, "mwlbridge_associations_open") == Some(0.0)
            && value(
                &t,
                "mwlbridge_associations_rejected_total{reason=\"calling_ae\"}",
            ) == Some(1.0);
        if settled || Instant::now() > deadline {
            break t;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let expect = [
        ("mwlbridge_associations_open", 0.0),
        ("mwlbridge_associations_accepted_total", 1.0),
        (
            "mwlbridge_associations_rejected_total{reason=\"called_ae\"}",
            1.0,
        ),
        (
            "mwlbridge_associations_rejected_total{reason=\"calling_ae\"}",
            1.0,
        ),
        (
            "mwlbridge_associations_rejected_total{reason=\"busy\"}",
            0.0,
        ),
        ("mwlbridge_echo_requests_total", 1.0),
        ("mwlbridge_find_requests_total{status=\"success\"}", 1.0),
        ("mwlbridge_find_requests_total{status=\"truncated\"}", 1.0),
        ("mwlbridge_find_requests_total{status=\"failed\"}", 1.0),
        ("mwlbridge_find_requests_total{status=\"cancelled\"}", 0.0),
        ("mwlbridge_find_requests_total{status=\"aborted\"}", 0.0),
        ("mwlbridge_find_items_returned_total", 3.0),
        ("mwlbridge_find_duration_seconds_count", 3.0),
        (
            "mwlbridge_mpps_requests_total{operation=\"n_create\",outcome=\"error\"}",
            1.0,
        ),
        (
            "mwlbridge_mpps_requests_total{operation=\"n_create\",outcome=\"success\"}",
            0.0,
        ),
        (
            "mwlbridge_mpps_duration_seconds_count{operation=\"n_create\"}",
            1.0,
        ),
    ];
    for (series, v) in expect {
        assert_eq!(value(&text, series), Some(v), "{series} in\n{text}");
    }

    stop_tx.send(true).expect("stop");
    serving.await.expect("server task");
}

#[tokio::test]
async fn a_server_without_exported_metrics_still_serves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path().join("worklist.db")).expect("store");
    let server = MwlServer::new(ScpConfig::default(), store);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let serving = tokio::spawn(async move { server.serve(listener, stop_rx).await });
    let echo = tokio::task::spawn_blocking(move || {
        let mut c = Client::connect(port, "CONSOLE", AE).expect("associate");
        let (statuses, _) = c.request(VERIFICATION, 0x0030, None);
        c.release();
        statuses
    })
    .await
    .expect("client");
    assert_eq!(echo, vec![0x0000]);
    stop_tx.send(true).expect("stop");
    serving.await.expect("server task");
}
