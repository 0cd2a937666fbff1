//! The code paths the fuzz targets drive, shared with the regression test
//! `crates/mwl-scp/tests/fuzz_corpus.rs` (which includes this file with `#[path]`), so that
//! the corpus and every saved reproducer go through exactly what the fuzzer ran.
//!
//! Each function takes arbitrary bytes and must not panic (nor allocate without bound).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, VR};
use dicom_dictionary_std::tags;
use dicom_encoding::TransferSyntax;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::entries::{
    EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN,
};
use dicom_ul::pdu::{PDataValue, PDataValueType, Pdu};
use jiff::civil::date;
use mwl_scp::dimse::{self, Assembler, Command};
use mwl_scp::{AePolicy, MwlQuery, ResponseCharset};
use worklist_store::{StepStatus, Store, WorklistEntry};

/// Largest data set the assembler accepts in these harnesses (the server's is 1 MiB; the
/// fuzzer's inputs are smaller, so a small limit lets it reach the limit checks).
const MAX_DATA: usize = 4096;

/// The two transfer syntaxes the server accepts.
fn syntaxes() -> [TransferSyntax; 2] {
    [
        IMPLICIT_VR_LITTLE_ENDIAN.erased(),
        EXPLICIT_VR_LITTLE_ENDIAN.erased(),
    ]
}

/// A few fixed entries, with values that exercise every matcher (non-ASCII names, empty
/// optional fields, an end time, every status).
pub fn entries() -> &'static [WorklistEntry] {
    static ENTRIES: OnceLock<Vec<WorklistEntry>> = OnceLock::new();
    ENTRIES.get_or_init(|| {
        let mut a = WorklistEntry::new(
            "calpendo",
            "101",
            "SUB101",
            date(2026, 11, 26).at(8, 0, 0, 0),
        );
        a.patient_name = Some("Tremblay^Marie".into());
        a.patient_birth_date = Some(date(1980, 2, 29));
        a.patient_sex = Some("F".into());
        a.patient_weight_kg = Some(61.5);
        a.station_ae_title = Some("MRI_3T".into());
        a.station_name = Some("3T".into());
        a.modality = Some("MR".into());
        a.end = Some(date(2026, 11, 26).at(9, 0, 0, 0));
        a.performing_physician_name = Some("Smith^Jane".into());
        a.sps_description = Some("Brain network models".into());
        a.study_description = Some("BRISKP".into());
        a.referring_physician_name = Some("Example^Alice^^Dr".into());
        let mut b = WorklistEntry::new(
            "calpendo",
            "105",
            "SUB105",
            date(2026, 11, 26).at(23, 30, 0, 0),
        );
        b.patient_name = Some("Hébert^Zoë=ヤマダ^タロウ".into());
        b.modality = Some("MR".into());
        b.station_ae_title = Some("MRI_7T".into());
        b.end = Some(date(2026, 11, 27).at(0, 30, 0, 0));
        b.status = StepStatus::Started;
        b.sps_location = Some("Łódź".into());
        let mut c = WorklistEntry::new("other", "x-1", "SUB\\107", date(2026, 1, 1).at(0, 0, 0, 0));
        c.status = StepStatus::Discontinued;
        c.patient_name = Some("Müller^Jürgen".into());
        let mut d = WorklistEntry::new(
            "calpendo",
            "a-very-long-record-identifier-beyond-sh",
            "SUB109",
            date(2026, 12, 31).at(23, 59, 59, 0),
        );
        d.status = StepStatus::Completed;
        d.modality = Some("EEG".into());
        d.patient_weight_kg = Some(0.0);
        vec![a, b, c, d]
    })
}

/// Whether inputs that hit the open bugs below are skipped (`MWL_FUZZ_SKIP_KNOWN=1`), so
/// that a fuzzing run explores past them instead of reporting them again and again. Never
/// set in the regression test.
fn skip_known() -> bool {
    static SKIP: OnceLock<bool> = OnceLock::new();
    *SKIP.get_or_init(|| std::env::var_os("MWL_FUZZ_SKIP_KNOWN").is_some_and(|v| v == "1"))
}

/// Whether dicom-rs reads `bytes` with exactly the element lengths a strict walk finds
/// (each within the data): the check `mwl_scp::wire_check::check_lengths` should make, and
/// misses in three ways (the open bugs the fuzzers found):
///
/// 1. Explicit VR: VR bytes that are not a VR are read by dicom-rs as UN with a 4-byte
///    length; check_lengths takes a 2-byte one.
/// 2. A binary value (US, SS, UL, SL, FL, FD, AT...) whose length is not a multiple of its
///    size: dicom-rs reads whole values only, and the rest of the data set is read out of
///    step, as headers with arbitrary lengths.
/// 3. An item or sequence delimiter outside an undefined-length item or sequence, or with
///    a non-zero length: check_lengths ignores its length; dicom-rs reads it as an element.
///
/// Used only to skip known bugs when exploring (see [`skip_known`]).
pub fn strict_lengths(bytes: &[u8], explicit: bool) -> bool {
    use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
    use dicom_dictionary_std::StandardDataDictionary;
    const UNDEFINED: u32 = 0xFFFF_FFFF;
    #[derive(Clone, Copy, PartialEq)]
    enum Ctx {
        Seq(Option<usize>),
        Item(Option<usize>),
    }
    let u16_at = |i: usize| {
        bytes
            .get(i..i + 2)
            .map(|s| u16::from_le_bytes([s[0], s[1]]))
    };
    let u32_at = |i: usize| {
        bytes
            .get(i..i + 4)
            .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    };
    let mut stack: Vec<Ctx> = Vec::new();
    let mut pos = 0usize;
    loop {
        while let Some(Ctx::Seq(Some(end)) | Ctx::Item(Some(end))) = stack.last().copied() {
            if pos < end {
                break;
            }
            if pos > end {
                return false;
            }
            stack.pop();
        }
        if pos >= bytes.len() {
            return true;
        }
        if stack.len() > 32 {
            return false;
        }
        let (Some(group), Some(element)) = (u16_at(pos), u16_at(pos + 2)) else {
            return false;
        };
        let in_seq = matches!(stack.last(), Some(Ctx::Seq(_)));
        if group == 0xFFFE {
            let Some(len) = u32_at(pos + 4) else {
                return false;
            };
            pos += 8;
            match element {
                0xE000 if in_seq => {
                    if len == UNDEFINED {
                        stack.push(Ctx::Item(None));
                    } else if len as usize > bytes.len() - pos {
                        return false;
                    } else {
                        stack.push(Ctx::Item(Some(pos + len as usize)));
                    }
                }
                0xE00D if len == 0 && stack.last() == Some(&Ctx::Item(None)) => {
                    stack.pop();
                }
                0xE0DD if len == 0 && stack.last() == Some(&Ctx::Seq(None)) => {
                    stack.pop();
                }
                _ => return false,
            }
            continue;
        }
        if in_seq {
            return false;
        }
        let tag = dicom_core::Tag(group, element);
        let (vr, len, header) = if explicit {
            let Some(code) = bytes.get(pos + 4..pos + 6) else {
                return false;
            };
            match VR::from_binary([code[0], code[1]]) {
                Some(
                    vr @ (VR::AE
                    | VR::AS
                    | VR::AT
                    | VR::CS
                    | VR::DA
                    | VR::DS
                    | VR::DT
                    | VR::FL
                    | VR::FD
                    | VR::IS
                    | VR::LO
                    | VR::LT
                    | VR::PN
                    | VR::SH
                    | VR::SL
                    | VR::SS
                    | VR::ST
                    | VR::TM
                    | VR::UI
                    | VR::UL
                    | VR::US),
                ) => match u16_at(pos + 6) {
                    Some(len) => (Some(vr), u32::from(len), 8),
                    None => return false,
                },
                vr => match u32_at(pos + 8) {
                    Some(len) => (Some(vr.unwrap_or(VR::UN)), len, 12),
                    None => return false,
                },
            }
        } else {
            let vr = match StandardDataDictionary.by_tag(tag).map(|e| e.vr()) {
                Some(VirtualVr::Exact(vr)) => Some(vr),
                Some(VirtualVr::Xs | VirtualVr::Ox | VirtualVr::Lt) => Some(VR::US),
                _ => None,
            };
            match u32_at(pos + 4) {
                Some(len) => (vr, len, 8),
                None => return false,
            }
        };
        pos += header;
        let sequence = vr == Some(VR::SQ) || (len == UNDEFINED && vr.is_none_or(|v| v == VR::UN));
        if sequence {
            if len == UNDEFINED {
                stack.push(Ctx::Seq(None));
            } else if len as usize > bytes.len() - pos {
                return false;
            } else {
                stack.push(Ctx::Seq(Some(pos + len as usize)));
            }
            continue;
        }
        if len == UNDEFINED || len as usize > bytes.len() - pos {
            return false;
        }
        let size = match vr {
            Some(VR::US | VR::SS | VR::OW) => 2,
            Some(VR::UL | VR::SL | VR::FL | VR::AT | VR::OF | VR::OL) => 4,
            Some(VR::FD | VR::OD | VR::SV | VR::UV | VR::OV) => 8,
            _ => 1,
        };
        if !(len as usize).is_multiple_of(size) {
            return false;
        }
        pos += len as usize;
    }
}

/// Whether `bytes` hits one of the open bugs of `wire_check::check_lengths` (it accepts
/// them, a strict walk does not) and the run skips known bugs.
fn skipped(bytes: &[u8], explicit: bool) -> bool {
    skip_known()
        && mwl_scp::wire_check::check_lengths(bytes, explicit).is_ok()
        && !strict_lengths(bytes, explicit)
}

/// An [`Assembler`] as the server feeds it (a fresh one after an error: the server aborts
/// the association), which also follows the command bytes to skip known bugs.
struct Feeder {
    assembler: Assembler,
    command: Vec<u8>,
}

impl Default for Feeder {
    fn default() -> Self {
        Feeder {
            assembler: Assembler::new(MAX_DATA),
            command: Vec::new(),
        }
    }
}

impl Feeder {
    fn push(&mut self, pdv: PDataValue) -> Option<mwl_scp::dimse::Message> {
        let last_command = pdv.value_type == PDataValueType::Command && pdv.is_last;
        if pdv.value_type == PDataValueType::Command {
            self.command.extend_from_slice(&pdv.data);
            if last_command && skipped(&self.command, false) {
                *self = Feeder::default();
                return None;
            }
        }
        match self.assembler.push(pdv) {
            Ok(message) => {
                if last_command {
                    self.command.clear();
                }
                message
            }
            Err(_) => {
                *self = Feeder::default();
                None
            }
        }
    }
}

/// `identifier`: bytes → `wire_check::decode` (implicit, then explicit VR LE) →
/// `MwlQuery::parse` → `matches` on the fixed entries → `response` in every character set,
/// written as the server writes it.
pub fn identifier(data: &[u8]) {
    for (i, ts) in syntaxes().into_iter().enumerate() {
        if skipped(data, i == 1) {
            continue;
        }
        let Ok(obj) = mwl_scp::wire_check::decode(data, &ts) else {
            continue;
        };
        let query = match MwlQuery::parse(&obj) {
            Ok(q) => q,
            Err(e) => {
                // What the server puts in the A900 response.
                let head = dimse::ResponseHead {
                    field: dimse::command::C_FIND_RSP,
                    sop_class: mwl_scp::MWL_FIND,
                    responding_to: 1,
                    has_data_set: false,
                    status: dimse::status::IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,
                };
                let _ = dimse::response_command(
                    head,
                    vec![
                        dimse::offending_elements(e.offending()),
                        dimse::error_comment(&e.to_string()),
                    ],
                );
                continue;
            }
        };
        let _ = query.candidate_filter();
        let _ = query.requested_keys();
        let _ = query.has_unsupported_keys();
        for entry in entries() {
            let _ = query.matches(entry);
            for charset in [
                ResponseCharset::Utf8,
                ResponseCharset::Latin1,
                ResponseCharset::Ascii,
            ] {
                let _ = query.charset_used(entry, charset);
                let response = query.response(entry, charset);
                let mut out = Vec::new();
                let _ = response.write_dataset_with_ts(&mut out, &ts);
            }
        }
    }
}

/// `command`: bytes → `Command::decode`; the same bytes cut into PDVs fed to an
/// [`Assembler`] (each record: a control byte — bit 0 command, bit 1 last, bit 7 context 3
/// instead of 1 — a length byte, then that many bytes); and `encode_message` of the bytes,
/// whose PDUs must read back to the same bytes.
pub fn command(data: &[u8]) {
    if skipped(data, false) {
        return;
    }
    if let Ok(cmd) = Command::decode(data) {
        // What the server answers with.
        let head = dimse::ResponseHead {
            field: cmd.field | 0x8000,
            sop_class: cmd.affected_sop_class.as_deref().unwrap_or(""),
            responding_to: cmd.message_id.unwrap_or(0),
            has_data_set: false,
            status: 0,
        };
        let rsp = dimse::response_command(head, vec![]);
        let _ = dimse::encode_command(&rsp);
    }

    let mut feeder = Feeder::default();
    let mut rest = data;
    while let [control, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (chunk, next) = tail.split_at(n);
        rest = next;
        let pdv = PDataValue {
            presentation_context_id: if control & 0x80 != 0 { 3 } else { 1 },
            value_type: if control & 1 != 0 {
                PDataValueType::Command
            } else {
                PDataValueType::Data
            },
            is_last: control & 2 != 0,
            data: chunk.to_vec(),
        };
        if let Some(message) = feeder.push(pdv) {
            let _ = message.command.field;
            assert!(
                message.data.as_ref().is_none_or(|d| d.len() <= MAX_DATA),
                "assembled a data set above the limit"
            );
        }
    }

    // Packing: a split point and a peer maximum from the first bytes.
    if let [a, b, c, tail @ ..] = data {
        let peer_max = (u32::from(*a) << 8) | u32::from(*b);
        let split = usize::from(*c).min(tail.len());
        let (cmd, ds) = tail.split_at(split);
        let ds = if c & 1 == 0 { Some(ds) } else { None };
        check_packing(cmd, ds, peer_max);
    }
}

/// `encode_message` must give P-DATA PDUs within the peer's maximum (8 bytes at least:
/// one PDV of two bytes) that carry the command and data set unchanged.
fn check_packing(cmd: &[u8], ds: Option<&[u8]>, peer_max: u32) {
    let Ok(bytes) = dimse::encode_message(5, cmd, ds, peer_max) else {
        return;
    };
    let (mut got_cmd, mut got_ds, mut saw_ds) = (Vec::new(), Vec::new(), false);
    let mut pos = 0;
    while pos < bytes.len() {
        let len = u32::from_be_bytes([
            bytes[pos + 2],
            bytes[pos + 3],
            bytes[pos + 4],
            bytes[pos + 5],
        ]);
        if peer_max != 0 {
            assert!(
                len <= peer_max.max(8),
                "PDU of {len} bytes for a peer maximum of {peer_max}"
            );
        }
        let pdu = dicom_ul::pdu::read_pdu(&bytes[pos..], dicom_ul::pdu::MAXIMUM_PDU_SIZE, false)
            .expect("our own PDU reads back")
            .expect("complete PDU");
        let Pdu::PData { data } = pdu else {
            panic!("not P-DATA");
        };
        for v in data {
            assert_eq!(v.presentation_context_id, 5);
            match v.value_type {
                PDataValueType::Command => got_cmd.extend_from_slice(&v.data),
                PDataValueType::Data => {
                    saw_ds = true;
                    got_ds.extend_from_slice(&v.data)
                }
            }
        }
        pos += 6 + len as usize;
    }
    assert_eq!(got_cmd, cmd);
    assert_eq!(saw_ds, ds.is_some());
    assert_eq!(got_ds, ds.unwrap_or_default());
}

/// `pdu`: bytes → dicom-ul's `read_pdu` as the server calls it (max 65536, not strict);
/// for an A-ASSOCIATE-RQ, our AE policy on its titles; a P-DATA's PDVs through an
/// [`Assembler`].
pub fn pdu(data: &[u8]) {
    let Ok(Some(pdu)) = dicom_ul::pdu::read_pdu(data, 65_536, false) else {
        return;
    };
    match pdu {
        Pdu::AssociationRQ(rq) => {
            use dicom_ul::association::server::AccessControl;
            let policy = AePolicy {
                accept_any_called_ae: false,
                allowed_calling_aets: vec!["MRI_3T".into()],
            };
            let _ =
                policy.check_access("MWLBRIDGE", &rq.calling_ae_title, &rq.called_ae_title, None);
        }
        Pdu::PData { data } => {
            let mut feeder = Feeder::default();
            for pdv in data {
                feeder.push(pdv);
            }
        }
        _ => {}
    }
}

/// A store and a runtime for the MPPS handlers, made once per process.
struct MppsEnv {
    _dir: tempfile::TempDir,
    store: Store,
    runtime: tokio::runtime::Runtime,
}

fn mpps_env() -> &'static MppsEnv {
    static ENV: OnceLock<MppsEnv> = OnceLock::new();
    ENV.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("mwl-fuzz-mpps-")
            .tempdir()
            .expect("temp dir");
        let store = Store::open(dir.path().join("w.db")).expect("store");
        let window = worklist_store::SyncWindow {
            start: date(2026, 11, 26).at(0, 0, 0, 0),
            end: date(2026, 11, 28).at(0, 0, 0, 0),
        };
        store
            .reconcile(
                "calpendo",
                &window,
                entries()[..2].to_vec(),
                worklist_store::OnCancel::Discontinue,
                jiff::Timestamp::UNIX_EPOCH,
            )
            .expect("seed entries");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        MppsEnv {
            _dir: dir,
            store,
            runtime,
        }
    })
}

fn text_el(tag: dicom_core::Tag, vr: VR, v: &str) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, vr, PrimitiveValue::from(v.to_string()))
}

fn uid_el(tag: dicom_core::Tag, v: &str) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, VR::UI, PrimitiveValue::from(dimse::uid_value(v)))
}

/// A valid N-CREATE data set referencing the first fixed entry.
pub fn valid_create_data(ts: &TransferSyntax) -> Vec<u8> {
    let e = &entries()[0];
    let item = InMemDicomObject::from_element_iter([
        text_el(tags::ACCESSION_NUMBER, VR::SH, &e.accession_number),
        uid_el(tags::STUDY_INSTANCE_UID, &e.study_instance_uid),
        text_el(
            tags::REQUESTED_PROCEDURE_ID,
            VR::SH,
            &e.requested_procedure_id,
        ),
        text_el(tags::SCHEDULED_PROCEDURE_STEP_ID, VR::SH, &e.sps_id),
    ]);
    let mut obj = InMemDicomObject::from_element_iter([
        text_el(tags::MODALITY, VR::CS, "MR"),
        text_el(
            tags::PERFORMED_PROCEDURE_STEP_START_DATE,
            VR::DA,
            "20261126",
        ),
        text_el(tags::PERFORMED_PROCEDURE_STEP_START_TIME, VR::TM, "090500"),
        text_el(tags::PERFORMED_PROCEDURE_STEP_ID, VR::SH, "PPS1"),
        text_el(tags::PERFORMED_PROCEDURE_STEP_STATUS, VR::CS, "IN PROGRESS"),
    ]);
    obj.put(DataElement::new(
        tags::SCHEDULED_STEP_ATTRIBUTES_SEQUENCE,
        VR::SQ,
        dicom_core::value::DataSetSequence::from(vec![item]),
    ));
    let mut out = Vec::new();
    obj.write_dataset_with_ts(&mut out, ts)
        .expect("encode a valid N-CREATE data set");
    out
}

fn mpps_command(field: u16, instance_tag: dicom_core::Tag, uid: &str) -> Command {
    let bytes = dimse::encode_command(&InMemDicomObject::command_from_element_iter([
        uid_el(tags::AFFECTED_SOP_CLASS_UID, mwl_scp::mpps::MPPS),
        DataElement::new(tags::COMMAND_FIELD, VR::US, PrimitiveValue::from(field)),
        DataElement::new(tags::MESSAGE_ID, VR::US, PrimitiveValue::from(1u16)),
        DataElement::new(
            tags::COMMAND_DATA_SET_TYPE,
            VR::US,
            PrimitiveValue::from(0u16),
        ),
        uid_el(instance_tag, uid),
    ]))
    .expect("encode an MPPS command");
    Command::decode(&bytes).expect("decode our own MPPS command")
}

/// `mpps`: bytes as an N-CREATE data set and as an N-SET modification list, through the
/// server's real handlers (`mwl_scp::mpps::create` / `set`, with a store on a temporary
/// SQLite file): the first byte picks the transfer syntax (bit 0) and the operation
/// (bit 1: N-SET on a step just created from a valid data set; else N-CREATE), the rest is
/// the data set. The outcome is turned into a response command as the server does.
pub fn mpps(data: &[u8]) {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let env = mpps_env();
    let ts = &syntaxes()[usize::from(selector & 1)];
    // mpps::decode has no length check at all (open bug): skip what a strict walk refuses.
    if skip_known() && !strict_lengths(body, selector & 1 == 1) {
        return;
    }
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    if n % 1000 == 999 {
        // Keep the database small over millions of runs.
        let _ = env.store.purge_performed_before(jiff::Timestamp::MAX);
    }
    let uid = format!("1.2.826.0.1.3680043.10.1.{}.{n}", std::process::id());
    let who = mwl_scp::mpps::Requester {
        calling_ae: "FUZZ",
        policy: mwl_scp::mpps::MppsPolicy::default(),
        own_station_only: selector & 4 != 0,
    };
    let outcome = env.runtime.block_on(async {
        if selector & 2 == 0 {
            let cmd = mpps_command(
                dimse::command::N_CREATE_RQ,
                tags::AFFECTED_SOP_INSTANCE_UID,
                &uid,
            );
            mwl_scp::mpps::create(&env.store, &who, &cmd, Some(body), ts).await
        } else {
            let create = mpps_command(
                dimse::command::N_CREATE_RQ,
                tags::AFFECTED_SOP_INSTANCE_UID,
                &uid,
            );
            let valid = valid_create_data(ts);
            let created = mwl_scp::mpps::create(&env.store, &who, &create, Some(&valid), ts).await;
            assert_eq!(
                created.status, 0,
                "a valid N-CREATE is refused: {created:?}"
            );
            let set = mpps_command(
                dimse::command::N_SET_RQ,
                tags::REQUESTED_SOP_INSTANCE_UID,
                &uid,
            );
            mwl_scp::mpps::set(&env.store, &who, &set, Some(body), ts).await
        }
    });
    let head = dimse::ResponseHead {
        field: dimse::command::N_CREATE_RSP,
        sop_class: mwl_scp::mpps::MPPS,
        responding_to: 1,
        has_data_set: false,
        status: outcome.status,
    };
    let rsp = dimse::response_command(head, outcome.response_elements());
    dimse::encode_command(&rsp).expect("an MPPS response encodes");
}

/// A data set from `(tag, VR, value)` keys (`\` separates values; `""` is zero-length) and,
/// when `sps` is given, one Scheduled Procedure Step item with those keys.
/// A query key: tag, VR, value.
type Key<'a> = (dicom_core::Tag, VR, &'a str);

fn query_object(top: &[Key], sps: Option<&[&[Key]]>) -> InMemDicomObject {
    let el = |(tag, vr, v): &Key| {
        let value = if v.is_empty() {
            PrimitiveValue::Empty
        } else {
            PrimitiveValue::Strs(v.split('\\').map(str::to_owned).collect())
        };
        DataElement::new(*tag, *vr, value)
    };
    let mut obj = InMemDicomObject::from_element_iter(top.iter().map(el));
    if let Some(items) = sps {
        let items: Vec<InMemDicomObject> = items
            .iter()
            .map(|keys| InMemDicomObject::from_element_iter(keys.iter().map(el)))
            .collect();
        obj.put(DataElement::new(
            tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE,
            VR::SQ,
            dicom_core::value::DataSetSequence::from(items),
        ));
    }
    obj
}

fn encoded(obj: &InMemDicomObject, ts: &TransferSyntax) -> Vec<u8> {
    let mut out = Vec::new();
    obj.write_dataset_with_ts(&mut out, ts)
        .expect("encode a seed data set");
    out
}

fn command_bytes(field: u16, sop_class: &str, has_data: bool) -> Vec<u8> {
    dimse::encode_command(&InMemDicomObject::command_from_element_iter([
        uid_el(tags::AFFECTED_SOP_CLASS_UID, sop_class),
        DataElement::new(tags::COMMAND_FIELD, VR::US, PrimitiveValue::from(field)),
        DataElement::new(tags::MESSAGE_ID, VR::US, PrimitiveValue::from(7u16)),
        DataElement::new(
            tags::COMMAND_DATA_SET_TYPE,
            VR::US,
            PrimitiveValue::from(if has_data { 0u16 } else { 0x0101 }),
        ),
    ]))
    .expect("encode a seed command")
}

/// Seed inputs for each target: `(target, name, bytes)`.
pub fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    use dicom_core::Tag;
    let mut out = Vec::new();
    let sps_keys: &[(Tag, VR, &str)] = &[
        (tags::SCHEDULED_STATION_AE_TITLE, VR::AE, "MRI_3T\\MRI_7*"),
        (tags::MODALITY, VR::CS, "MR"),
        (
            tags::SCHEDULED_PROCEDURE_STEP_START_DATE,
            VR::DA,
            "20261126-20261127",
        ),
        (
            tags::SCHEDULED_PROCEDURE_STEP_START_TIME,
            VR::TM,
            "2200-0200",
        ),
        (tags::SCHEDULED_PROCEDURE_STEP_END_DATE, VR::DA, ""),
        (
            tags::SCHEDULED_PROCEDURE_STEP_STATUS,
            VR::CS,
            "SCHEDULED\\STARTED",
        ),
        (
            tags::SCHEDULED_PERFORMING_PHYSICIAN_NAME,
            VR::PN,
            "SMITH^J*",
        ),
        (tags::SCHEDULED_PROCEDURE_STEP_ID, VR::SH, ""),
        (tags::SCHEDULED_PROCEDURE_STEP_LOCATION, VR::LO, "?ódź"),
    ];
    let queries: Vec<(&str, InMemDicomObject)> = vec![
        (
            "universal",
            query_object(
                &[
                    (tags::PATIENT_NAME, VR::PN, ""),
                    (tags::PATIENT_ID, VR::LO, ""),
                ],
                Some(&[&[]]),
            ),
        ),
        (
            "keys",
            query_object(
                &[
                    (tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192"),
                    (tags::ACCESSION_NUMBER, VR::SH, "*"),
                    (tags::REFERRING_PHYSICIAN_NAME, VR::PN, "^Alice"),
                    (tags::PATIENT_NAME, VR::PN, "hébert^Z?ë=*"),
                    (tags::PATIENT_ID, VR::LO, "SUB101\\SUB105"),
                    (tags::PATIENT_BIRTH_DATE, VR::DA, "19800101-"),
                    (tags::PATIENT_SEX, VR::CS, "F"),
                    (tags::PATIENT_WEIGHT, VR::DS, "61.5\\70"),
                    (tags::STUDY_INSTANCE_UID, VR::UI, ""),
                    (tags::REQUESTED_PROCEDURE_ID, VR::SH, ""),
                    (Tag(0x0010, 0x2160), VR::SH, "X"),
                    (Tag(0x0009, 0x0010), VR::LO, "PRIVATE"),
                ],
                Some(&[sps_keys]),
            ),
        ),
        (
            "two-items",
            query_object(
                &[(tags::PATIENT_ID, VR::LO, "")],
                Some(&[
                    &[(tags::MODALITY, VR::CS, "MR")],
                    &[(tags::MODALITY, VR::CS, "EEG")],
                ]),
            ),
        ),
        (
            "latin1",
            query_object(
                &[
                    (tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 100"),
                    (tags::PATIENT_NAME, VR::PN, "M*LLER"),
                    (tags::SCHEDULED_PROCEDURE_STEP_START_TIME, VR::TM, "1000"),
                ],
                None,
            ),
        ),
    ];
    for (name, q) in &queries {
        for (i, ts) in syntaxes().iter().enumerate() {
            out.push(("identifier", format!("seed-{name}-{i}"), encoded(q, ts)));
        }
    }

    let echo = command_bytes(dimse::command::C_ECHO_RQ, mwl_scp::VERIFICATION, false);
    let find = command_bytes(dimse::command::C_FIND_RQ, mwl_scp::MWL_FIND, true);
    let create = command_bytes(dimse::command::N_CREATE_RQ, mwl_scp::mpps::MPPS, true);
    out.push(("command", "seed-echo".into(), echo.clone()));
    out.push(("command", "seed-find".into(), find.clone()));
    out.push(("command", "seed-create".into(), create));
    // PDV records: command of the C-FIND in two fragments, then a data set.
    let mut records = Vec::new();
    let (a, b) = find.split_at(find.len() / 2);
    for (control, chunk) in [
        (1u8, a),
        (3, b),
        (2, &b"\x08\x00\x50\x00\x00\x00\x00\x00"[..]),
    ] {
        records.push(control);
        records.push(chunk.len() as u8);
        records.extend_from_slice(chunk);
    }
    out.push(("command", "seed-records".into(), records));

    for (i, ts) in syntaxes().iter().enumerate() {
        let mut create = vec![i as u8];
        create.extend(valid_create_data(ts));
        out.push(("mpps", format!("seed-create-{i}"), create));
        for (term, name) in [
            ("COMPLETED", "complete"),
            ("DISCONTINUED", "discontinue"),
            ("DONE", "bad"),
        ] {
            let mut set = vec![i as u8 | 2];
            set.extend(encoded(
                &query_object(
                    &[
                        (tags::PERFORMED_PROCEDURE_STEP_STATUS, VR::CS, term),
                        (tags::PERFORMED_PROCEDURE_STEP_END_DATE, VR::DA, "20261126"),
                        (tags::PERFORMED_PROCEDURE_STEP_END_TIME, VR::TM, "100000"),
                    ],
                    None,
                ),
                ts,
            ));
            out.push(("mpps", format!("seed-set-{name}-{i}"), set));
        }
    }

    let rq = Pdu::AssociationRQ(dicom_ul::pdu::AssociationRQ {
        protocol_version: 1,
        calling_ae_title: "MRI_3T".into(),
        called_ae_title: "MWLBRIDGE".into(),
        application_context_name: "1.2.840.10008.3.1.1.1".into(),
        presentation_contexts: vec![dicom_ul::pdu::PresentationContextProposed {
            id: 1,
            abstract_syntax: mwl_scp::MWL_FIND.into(),
            transfer_syntaxes: vec!["1.2.840.10008.1.2".into(), "1.2.840.10008.1.2.1".into()],
        }],
        user_variables: vec![
            dicom_ul::pdu::UserVariableItem::MaxLength(16384),
            dicom_ul::pdu::UserVariableItem::ImplementationClassUID("1.2.3.4".into()),
            dicom_ul::pdu::UserVariableItem::ImplementationVersionName("FUZZ".into()),
        ],
    });
    let pdata = Pdu::PData {
        data: vec![PDataValue {
            presentation_context_id: 1,
            value_type: PDataValueType::Command,
            is_last: true,
            data: echo,
        }],
    };
    for (name, pdu) in [
        ("assoc-rq", rq),
        ("pdata", pdata),
        ("release", Pdu::ReleaseRQ),
        (
            "abort",
            Pdu::AbortRQ {
                source: dicom_ul::pdu::AbortRQSource::ServiceUser,
            },
        ),
    ] {
        let mut bytes = Vec::new();
        dicom_ul::pdu::write_pdu(&mut bytes, &pdu).expect("encode a seed PDU");
        out.push(("pdu", format!("seed-{name}"), bytes));
    }
    out
}
