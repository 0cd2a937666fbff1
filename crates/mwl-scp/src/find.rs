//! The Modality Worklist service (C-FIND): from one C-FIND-RQ to its final response.
//!
//! # Contract
//!
//! [`handle`] answers one C-FIND-RQ and returns once its final response is written, or
//! the association failed. It:
//!
//! 1. **refuses** a request it cannot run with one final response and nothing else
//!    ([`Refusal`]): a presentation context other than MWL FIND (0122), no identifier or
//!    one that is not a valid data set (A900), or one [`MwlQuery::parse`] refuses (A900
//!    with OffendingElement);
//! 2. otherwise reads the matches from **one snapshot** of the store
//!    ([`find_stream`](crate::find_stream): a small answer whole, a large one streamed)
//!    and sends one pending response per match (FF00; FF01 when the query has keys not
//!    supported for matching), gathered into writes of about [`WRITE_BATCH`] bytes;
//! 3. looks for a **C-CANCEL-RQ before the first pending response and before each
//!    batch**, without waiting ([`Peer::pdu_if_sent`], one non-blocking system call; per
//!    response it cost more than the response): one naming this request's Message ID
//!    stops the query, one naming another is ignored, any other PDU is set aside for
//!    after the final response. A cancel is therefore honoured within a batch or two of
//!    its arrival. A C-CANCEL that
//!    arrives after the final response is dropped by [`dispatch`](crate::dispatch);
//! 4. ends with **one final response**, decided by its [`FindOutcome`]:
//!
//! | outcome | final status | metric `status` | log |
//! |---|---|---|---|
//! | `Complete` | 0000 | `success` | — |
//! | `Cancelled` (C-CANCEL) | FE00 | `cancelled` | — |
//! | `Truncated` (`max_responses` sent, more matched) | FE00 | `truncated` | warning |
//! | `Refused` | 0122 or A900 | `failed` | the reason, for a bad identifier |
//! | `StoreUnavailable` (also midway) | C000 | `failed` | error |
//!
//! When the association fails meanwhile (the peer aborts, a write fails), no final
//! response is sent and the query counts as `aborted`; the association's log line says
//! why. The tally, the metrics and the log of every outcome come from one place,
//! [`record`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use dicom_core::{DataElement, Tag};
use dicom_encoding::TransferSyntax;
use dicom_object::InMemDicomObject;
use dicom_ul::pdu::{PDataValueType, Pdu};
use worklist_store::{EntryFilter, StoreError};

use crate::connection::{AssocError, Peer, PeerStream};
use crate::context::{AssocStats, Context};
use crate::dimse::{self, Message, command, sop_class, status};
use crate::find_stream::{
    Items, ProduceError, ResponseEncoder, SmallAnswer, Stream, StreamEvent, inline_answer,
    small_answer,
};
use crate::metrics::FindStatus;
use crate::query::{MwlQuery, QueryError};
use crate::wire_check::{self, WireError};

/// Bytes of pending C-FIND responses gathered before one write.
const WRITE_BATCH: usize = 16 * 1024;

/// How one C-FIND ended: what its final response says.
#[derive(Debug)]
pub(crate) enum FindOutcome {
    /// Every match was sent.
    Complete,
    /// The peer's C-CANCEL stopped the query.
    Cancelled,
    /// `limit` (`max_responses`) matches were sent of `matched`.
    Truncated {
        /// Matches in all.
        matched: u64,
        /// `max_responses`.
        limit: usize,
    },
    /// The request could not be run; nothing but the final response was sent.
    Refused(Refusal),
    /// Reading the worklist failed, before or after some matches were sent.
    StoreUnavailable(StoreFailure),
}

/// Why a C-FIND request is refused.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// Its presentation context is not Modality Worklist FIND.
    NotWorklist,
    /// It has no identifier.
    NoIdentifier,
    /// Its identifier is not a valid data set.
    NotDicom(WireError),
    /// Its identifier breaks the MWL information model.
    Invalid(QueryError),
}

/// Why the worklist could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreFailure {
    /// The store failed (the database is unavailable, a reader thread failed, ...).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The streaming producer ended without a last event (it panicked).
    #[error("the streaming task ended early")]
    StreamEnded,
}

impl FindOutcome {
    /// The final response's status and extra command elements.
    fn final_response(&self) -> (u16, Vec<DataElement<InMemDicomObject>>) {
        match self {
            FindOutcome::Complete => (status::SUCCESS, vec![]),
            FindOutcome::Cancelled | FindOutcome::Truncated { .. } => (status::CANCEL, vec![]),
            FindOutcome::Refused(refusal) => refusal.final_response(),
            FindOutcome::StoreUnavailable(_) => (
                status::UNABLE_TO_PROCESS,
                vec![dimse::error_comment("worklist database unavailable")],
            ),
        }
    }

    /// The metrics' `status` label.
    fn label(&self) -> FindStatus {
        match self {
            FindOutcome::Complete => FindStatus::Success,
            FindOutcome::Cancelled => FindStatus::Cancelled,
            FindOutcome::Truncated { .. } => FindStatus::Truncated,
            FindOutcome::Refused(_) | FindOutcome::StoreUnavailable(_) => FindStatus::Failed,
        }
    }

    /// Counts the outcome in the association's tally and logs it.
    fn tally_and_log(&self, stats: &mut AssocStats) {
        match self {
            FindOutcome::Complete => {}
            FindOutcome::Cancelled => stats.cancelled += 1,
            FindOutcome::Truncated { matched, limit } => {
                stats.truncated += 1;
                tracing::warn!(
                    matched,
                    max_responses = limit,
                    "query matched more items than max_responses; the rest are not sent (FE00)"
                );
            }
            FindOutcome::Refused(refusal) => {
                stats.failed += 1;
                match refusal {
                    Refusal::NotDicom(e) => {
                        tracing::info!(error = %e, "C-FIND identifier is not valid DICOM");
                    }
                    Refusal::Invalid(QueryError::InvalidIdentifier { reason, .. }) => {
                        tracing::info!(reason = %reason, "C-FIND identifier refused");
                    }
                    Refusal::NotWorklist | Refusal::NoIdentifier => {}
                }
            }
            FindOutcome::StoreUnavailable(error) => {
                stats.failed += 1;
                tracing::error!(error = %error, "C-FIND failed: the worklist database is unavailable");
            }
        }
    }
}

impl Refusal {
    fn final_response(&self) -> (u16, Vec<DataElement<InMemDicomObject>>) {
        match self {
            Refusal::NotWorklist => (
                status::SOP_CLASS_NOT_SUPPORTED,
                vec![dimse::error_comment(
                    "only Modality Worklist FIND is supported",
                )],
            ),
            Refusal::NoIdentifier => (
                status::IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,
                vec![dimse::error_comment("C-FIND without an identifier")],
            ),
            Refusal::NotDicom(_) => (
                status::IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,
                vec![dimse::error_comment(
                    "identifier is not a valid DICOM data set",
                )],
            ),
            Refusal::Invalid(QueryError::InvalidIdentifier { offending, reason }) => (
                status::IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,
                vec![
                    dimse::offending_elements(offending),
                    dimse::error_comment(reason),
                ],
            ),
        }
    }
}

/// Answers one C-FIND-RQ as the [module documentation](self) says, on presentation
/// context `sop_class` with transfer syntax `ts`.
pub(crate) async fn handle<S: PeerStream>(
    cx: &Context,
    peer: &mut Peer<S>,
    stats: &mut AssocStats,
    message: &Message,
    sop_class: &str,
    ts: &TransferSyntax,
) -> Result<(), AssocError> {
    let started = Instant::now();
    let mut find = Find {
        cx,
        peer,
        sop_class,
        message_id: message.command.id(),
        context_id: message.context_id,
        sent: 0,
        batch: Vec::new(),
        keys: Vec::new(),
    };
    let result = find.run(message, ts).await;
    let (sent, keys) = (find.sent, find.keys);
    record(cx, stats, &result, sent, keys, started.elapsed());
    result.map(drop)
}

/// Records how a C-FIND ended, in one place: the association's tally and log line, the
/// metrics, the outcome's own log.
fn record(
    cx: &Context,
    stats: &mut AssocStats,
    result: &Result<FindOutcome, AssocError>,
    sent: u64,
    keys: Vec<Tag>,
    elapsed: Duration,
) {
    stats.finds += 1;
    stats.matched += sent;
    stats.keys.extend(keys);
    let label = match result {
        Ok(outcome) => {
            outcome.tally_and_log(stats);
            outcome.label()
        }
        // The association's log line says why.
        Err(_) => FindStatus::Aborted,
    };
    cx.metrics.find_done(label, sent, elapsed);
}

/// One C-FIND being answered.
struct Find<'a, S: PeerStream> {
    cx: &'a Context,
    peer: &'a mut Peer<S>,
    /// The presentation context's SOP class, echoed in every response.
    sop_class: &'a str,
    /// The request's Message ID, which responses and a C-CANCEL name.
    message_id: u16,
    /// The presentation context of the request and its responses.
    context_id: u8,
    /// Pending responses put into `batch` (written, or about to be).
    sent: u64,
    /// Encoded responses not written yet.
    batch: Vec<u8>,
    /// The keys the query asked for, for the association's log line.
    keys: Vec<Tag>,
}

impl<S: PeerStream> Find<'_, S> {
    /// The whole C-FIND: refusal or matches, then the final response.
    async fn run(
        &mut self,
        message: &Message,
        ts: &TransferSyntax,
    ) -> Result<FindOutcome, AssocError> {
        let outcome = match self.query(message, ts) {
            Ok(query) => {
                self.keys = query.requested_keys();
                self.answer(Arc::new(query), ts).await?
            }
            Err(refusal) => FindOutcome::Refused(refusal),
        };
        let (status, extra) = outcome.final_response();
        let cmd = self.response(false, status, extra)?;
        let pdus = dimse::encode_message(self.context_id, &cmd, None, self.peer.max_pdu())?;
        self.batch.extend_from_slice(&pdus);
        self.peer.write(&self.batch).await?;
        Ok(outcome)
    }

    /// A C-FIND-RSP command set, encoded.
    fn response(
        &self,
        has_data_set: bool,
        status: u16,
        extra: Vec<DataElement<InMemDicomObject>>,
    ) -> Result<Vec<u8>, dimse::EncodeError> {
        let head = dimse::ResponseHead {
            field: command::C_FIND_RSP,
            sop_class: self.sop_class,
            responding_to: self.message_id,
            has_data_set,
            status,
        };
        dimse::encode_response_command(head, extra)
    }

    /// The request's query, restricted to the caller's station when so configured.
    fn query(&self, message: &Message, ts: &TransferSyntax) -> Result<MwlQuery, Refusal> {
        if self.sop_class != sop_class::MWL_FIND {
            return Err(Refusal::NotWorklist);
        }
        let data = message.data.as_deref().ok_or(Refusal::NoIdentifier)?;
        let identifier = wire_check::decode(data, ts).map_err(Refusal::NotDicom)?;
        let mut query = MwlQuery::parse(&identifier).map_err(Refusal::Invalid)?;
        if self.cx.config.station_filter_by_calling_ae {
            let calling = self.peer.calling_ae();
            if query.restrict_to_station(&calling) {
                tracing::debug!(station = %crate::describe::printable(&calling), "query restricted to the caller's station");
            }
        }
        Ok(query)
    }

    /// Sends the pending responses of `query`; the outcome decides the final response.
    async fn answer(
        &mut self,
        query: Arc<MwlQuery>,
        ts: &TransferSyntax,
    ) -> Result<FindOutcome, AssocError> {
        let pending = if query.has_unsupported_keys() {
            status::PENDING_WARNING
        } else {
            status::PENDING
        };
        let pending_command = self.response(true, pending, vec![])?;
        let limit = self.cx.config.max_responses.unwrap_or(usize::MAX);
        let encoder = ResponseEncoder::new(
            query.clone(),
            query.response_charset(self.cx.config.charset),
            // The identifier was decoded: the transfer syntax is one we accept.
            wire_check::explicit_vr(ts).unwrap_or(false),
            self.context_id,
            pending_command.into(),
            self.peer.max_pdu(),
        );
        self.batch.reserve(WRITE_BATCH + 4096);
        let filter = query.candidate_filter();
        // Every response of the query comes from one snapshot of the store. A small answer
        // of few candidates in the in-memory worklist is gathered right here; another small
        // answer is read and encoded whole in one trip to a reader thread; a larger one is
        // given up before anything of it is sent and streamed instead (find_stream.rs).
        let small = match inline_answer(&self.cx.store, &filter, &encoder, limit) {
            Some(answer) => Ok(Ok(answer)),
            None => small_answer(&self.cx.store, filter.clone(), encoder.clone(), limit).await,
        };
        match small {
            Ok(Ok(SmallAnswer::Complete { items, matched })) => {
                if self.send_items(&items).await? {
                    return Ok(FindOutcome::Cancelled);
                }
                Ok(all_read(matched, limit))
            }
            Ok(Ok(SmallAnswer::Large)) => self.stream(filter, encoder, limit).await,
            Ok(Err(ProduceError::Store(e))) | Err(e) => Ok(FindOutcome::StoreUnavailable(e.into())),
        }
    }

    /// Sends a large answer as a streaming producer hands it over.
    async fn stream(
        &mut self,
        filter: EntryFilter,
        encoder: ResponseEncoder,
        limit: usize,
    ) -> Result<FindOutcome, AssocError> {
        // Dropping `stream` (on any return) stops the producer at its next row.
        let mut stream = Stream::start(&self.cx.store, filter, encoder, limit);
        loop {
            match stream.next().await {
                Some(StreamEvent::Items(items)) => {
                    if self.send_items(&items).await? {
                        return Ok(FindOutcome::Cancelled);
                    }
                    stream.recycle(items);
                }
                Some(StreamEvent::Done { matched }) => return Ok(all_read(matched, limit)),
                Some(StreamEvent::Failed(ProduceError::Store(e))) => {
                    return Ok(FindOutcome::StoreUnavailable(e.into()));
                }
                None => return Ok(FindOutcome::StoreUnavailable(StoreFailure::StreamEnded)),
            }
        }
    }

    /// Sends encoded pending responses in batches of about [`WRITE_BATCH`] bytes (one
    /// system call for dozens of items), looking for a C-CANCEL before each batch starts.
    /// What is left below a batch stays in `batch` for the final response. Returns
    /// whether the query was cancelled.
    async fn send_items(&mut self, items: &Items) -> Result<bool, AssocError> {
        for item in items.iter() {
            if self.batch.is_empty() && self.cancel_requested().await? {
                return Ok(true);
            }
            self.batch.extend_from_slice(item);
            if self.batch.len() >= WRITE_BATCH {
                self.peer.write(&self.batch).await?;
                self.batch.clear();
            }
            self.sent += 1;
        }
        Ok(false)
    }

    /// Whether the peer has sent a C-CANCEL-RQ for this request, looked for without
    /// waiting. Anything else received is set aside for after the request.
    async fn cancel_requested(&mut self) -> Result<bool, AssocError> {
        let Some(pdu) = self.peer.pdu_if_sent().await? else {
            return Ok(false);
        };
        match &pdu {
            Pdu::PData { data }
                if data.len() == 1
                    && data[0].value_type == PDataValueType::Command
                    && data[0].is_last =>
            {
                if let Ok(cmd) = dimse::Command::decode(&data[0].data)
                    && cmd.field == command::C_CANCEL_RQ
                {
                    if cmd.responding_to == Some(self.message_id) {
                        return Ok(true);
                    }
                    tracing::debug!("C-CANCEL for another message ignored");
                    return Ok(false);
                }
                self.peer.set_aside(pdu);
                Ok(false)
            }
            Pdu::AbortRQ { .. } => Err(AssocError::PeerAborted),
            _ => {
                self.peer.set_aside(pdu);
                Ok(false)
            }
        }
    }
}

/// How a query whose every row was read ends: truncated when more than `limit` matched
/// (only `limit` were sent).
fn all_read(matched: u64, limit: usize) -> FindOutcome {
    if matched > limit as u64 {
        FindOutcome::Truncated { matched, limit }
    } else {
        FindOutcome::Complete
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table of the module documentation: final status, metric label, tally.
    #[test]
    fn each_outcome_decides_its_final_status_label_and_tally() {
        let cases = [
            (all_read(5, 5), status::SUCCESS, FindStatus::Success),
            (
                FindOutcome::Cancelled,
                status::CANCEL,
                FindStatus::Cancelled,
            ),
            (all_read(6, 5), status::CANCEL, FindStatus::Truncated),
            (
                FindOutcome::Refused(Refusal::NotWorklist),
                status::SOP_CLASS_NOT_SUPPORTED,
                FindStatus::Failed,
            ),
            (
                FindOutcome::Refused(Refusal::NoIdentifier),
                status::IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,
                FindStatus::Failed,
            ),
            (
                FindOutcome::StoreUnavailable(StoreFailure::StreamEnded),
                status::UNABLE_TO_PROCESS,
                FindStatus::Failed,
            ),
        ];
        for (outcome, final_status, label) in cases {
            assert_eq!(outcome.final_response().0, final_status, "{outcome:?}");
            assert_eq!(outcome.label(), label, "{outcome:?}");
        }
    }

    #[test]
    fn a_truncation_is_tallied_as_truncated_not_cancelled() {
        let mut stats = AssocStats::default();
        all_read(6, 5).tally_and_log(&mut stats);
        assert_eq!((stats.truncated, stats.cancelled, stats.failed), (1, 0, 0));
        FindOutcome::Cancelled.tally_and_log(&mut stats);
        assert_eq!((stats.truncated, stats.cancelled, stats.failed), (1, 1, 0));
        FindOutcome::Refused(Refusal::NoIdentifier).tally_and_log(&mut stats);
        assert_eq!(stats.failed, 1);
    }
}
