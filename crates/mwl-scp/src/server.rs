//! The DICOM server: accepts associations and answers C-ECHO and MWL C-FIND.

use std::collections::{BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dicom_core::Tag;
use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_dictionary_std::StandardDataDictionary;
use dicom_encoding::TransferSyntaxIndex;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use dicom_transfer_syntax_registry::entries::{
    EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN,
};
use dicom_ul::association::Association as _;
use dicom_ul::association::AsyncAssociation as _;
use dicom_ul::association::server::DefaultNegotiation;
use dicom_ul::association::{AsyncServerAssociation, ServerAssociationOptions};
use dicom_ul::pdu::{
    AssociationRJ, AssociationRJResult, AssociationRJServiceProviderPresentationReason,
    AssociationRJSource, PDataValueType, Pdu, PresentationContextResultReason,
};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use worklist_store::Store;

use crate::access::AePolicy;
use crate::dimse::{self, Assembler, AssemblyError, Message, command, status};
use crate::find_stream::{
    Items, ProduceError, ResponseEncoder, SmallAnswer, Stream, StreamEvent, small_answer,
};
use crate::metrics::{FindStatus, MppsOperation, RejectReason, ScpMetrics};
use crate::pending::{PendingRequests, PendingTicket};
use crate::query::{MwlQuery, QueryError, ResponseCharset};

/// Verification SOP class.
pub const VERIFICATION: &str = "1.2.840.10008.1.1";
/// Modality Worklist Information Model – FIND.
pub const MWL_FIND: &str = "1.2.840.10008.5.1.4.31";

/// How long a write to a peer may take before the association is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes of pending C-FIND responses gathered before one write.
const WRITE_BATCH: usize = 16 * 1024;
/// How long an association request may take once its first byte arrived.
const ASSOCIATION_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Association requests that may be pending (being read) per association slot...
const PENDING_PER_SLOT: usize = 4;
/// ...and at least this many.
const MIN_PENDING: usize = 64;
/// How long in-flight associations get to finish at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The SCP's settings.
#[derive(Debug, Clone)]
pub struct ScpConfig {
    /// Our AE title.
    pub ae_title: String,
    /// Who may connect.
    pub policy: AePolicy,
    /// Concurrent associations at most; more are rejected (A-ASSOCIATE-RJ, transient).
    pub max_associations: usize,
    /// A peer silent this long is dropped.
    pub idle_timeout: Duration,
    /// Largest PDU we receive.
    pub max_pdu_length: u32,
    /// Character set of responses.
    pub charset: ResponseCharset,
    /// Largest identifier (query data set) accepted, in bytes.
    pub max_identifier_bytes: usize,
    /// At most this many matches are sent per query (`None`: all); a query with more ends
    /// after that many with status FE00, as if cancelled, and the truncation is logged.
    pub max_responses: Option<usize>,
    /// A query that puts no condition on the Scheduled Station AE Title gets only the steps
    /// scheduled on the calling AE title.
    pub station_filter_by_calling_ae: bool,
    /// DICOM over TLS (PS3.15 B.1) on this port, when set; plain TCP otherwise.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl Default for ScpConfig {
    fn default() -> Self {
        ScpConfig {
            ae_title: "MWLBRIDGE".into(),
            policy: AePolicy {
                accept_any_called_ae: false,
                allowed_calling_aets: Vec::new(),
            },
            max_associations: 32,
            idle_timeout: Duration::from_secs(60),
            max_pdu_length: 65_536,
            charset: ResponseCharset::Utf8,
            max_identifier_bytes: 1 << 20,
            max_responses: None,
            station_filter_by_calling_ae: false,
            tls: None,
        }
    }
}

type Options = ServerAssociationOptions<'static, AePolicy, DefaultNegotiation>;
/// What an association runs over: plain TCP, or TLS on TCP.
pub trait PeerStream:
    tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static
{
    /// Whether the peer sent bytes not read yet (or closed), without blocking.
    fn input_waiting(&self) -> bool;
}

impl PeerStream for TcpStream {
    fn input_waiting(&self) -> bool {
        socket_readable(self)
    }
}

impl PeerStream for tokio_rustls::server::TlsStream<TcpStream> {
    /// New ciphertext on the socket. Plaintext rustls already decrypted but not handed out
    /// is not seen here: a C-CANCEL in the same TLS record as an earlier message is then
    /// read after the final response, and ignored as late.
    fn input_waiting(&self) -> bool {
        socket_readable(self.get_ref().0)
    }
}

/// A Modality Worklist SCP over a worklist store.
#[derive(Clone)]
pub struct MwlServer {
    config: Arc<ScpConfig>,
    store: Store,
    options: Arc<Options>,
    /// Set when the port speaks DICOM over TLS.
    tls: bool,
    slots: Arc<Semaphore>,
    pending: Arc<PendingRequests>,
    metrics: ScpMetrics,
}

/// Why an association ended early.
#[derive(Debug, thiserror::Error)]
enum AssocError {
    #[error("peer aborted the association")]
    PeerAborted,
    #[error("peer silent for {0:?}; association dropped")]
    Idle(Duration),
    #[error("connection lost: {0}")]
    Connection(String),
    #[error("protocol error: {0}")]
    Protocol(String),
}

/// What one association did, for its log line.
#[derive(Debug, Default)]
struct AssocStats {
    echoes: u32,
    mpps: u32,
    finds: u32,
    matched: u64,
    cancelled: u32,
    failed: u32,
    keys: BTreeSet<Tag>,
}

impl MwlServer {
    /// A server answering from `store`.
    pub fn new(config: ScpConfig, store: Store) -> MwlServer {
        let options = ServerAssociationOptions::new()
            .ae_access_control(config.policy.clone())
            .ae_title(config.ae_title.clone())
            .with_abstract_syntax(VERIFICATION)
            .with_abstract_syntax(MWL_FIND)
            .with_abstract_syntax(crate::mpps::MPPS)
            .with_transfer_syntax(IMPLICIT_VR_LITTLE_ENDIAN.uid())
            .with_transfer_syntax(EXPLICIT_VR_LITTLE_ENDIAN.uid())
            .max_pdu_length(config.max_pdu_length)
            // Strict: a PDU longer than our maximum is refused, not buffered.
            .strict(true)
            .read_timeout(config.idle_timeout);
        let (options, tls) = match &config.tls {
            Some(tls) => (options.tls_config(tls.clone()), true),
            None => (options, false),
        };
        MwlServer {
            tls,
            slots: Arc::new(Semaphore::new(config.max_associations.max(1))),
            pending: PendingRequests::new(
                config
                    .max_associations
                    .saturating_mul(PENDING_PER_SLOT)
                    .max(MIN_PENDING),
            ),
            config: Arc::new(config),
            store,
            options: Arc::new(options),
            metrics: ScpMetrics::default(),
        }
    }

    /// Records into `metrics` (which the caller registers for export) instead of the
    /// server's own unexported ones.
    pub fn with_metrics(mut self, metrics: ScpMetrics) -> MwlServer {
        self.metrics = metrics;
        self
    }

    /// Accepts associations on `listener` until `shutdown` turns true, then lets the open
    /// ones finish (up to a grace period) and returns.
    pub async fn serve(&self, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
        let mut tasks = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((socket, peer)) => {
                        let server = self.clone();
                        tasks.spawn(async move { server.connection(socket, peer).await });
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: wait a little, keep serving.
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                _ = stopped(&mut shutdown) => break,
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        drop(listener);
        if !tasks.is_empty() {
            tracing::info!(
                open = tasks.len(),
                "waiting for open associations to finish"
            );
            let drain = async { while tasks.join_next().await.is_some() {} };
            if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
                tracing::warn!("associations still open after {SHUTDOWN_GRACE:?}; closing them");
                tasks.abort_all();
            }
        }
    }

    async fn connection(&self, socket: TcpStream, peer: SocketAddr) {
        if let Err(e) = socket.set_nodelay(true) {
            tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
        }
        // A connection takes an association slot only once its peer has spoken: silent
        // connections (a port scan, a reconnect storm) hold no slot and are dropped after
        // the idle timeout, so they cannot lock real consoles out.
        // `readable()` can resolve before any byte arrived: wait for a real one.
        let mut first = [0u8; 1];
        match tokio::time::timeout(self.config.idle_timeout, socket.peek(&mut first)).await {
            Ok(Ok(0)) => return,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "connection failed before an association request");
                return;
            }
            Err(_) => {
                tracing::info!(
                    %peer,
                    "connection closed: no association request within the idle timeout"
                );
                return;
            }
        }
        // Refuse at once when every slot is taken; the slot itself is taken only once the
        // association is established (below), so a stalled request holds none.
        if self.slots.available_permits() == 0 {
            self.reject_busy(socket, peer).await;
            return;
        }
        let started = Instant::now();
        // The association request must complete quickly (an ARTIM-like timer), and holds
        // one of a bounded number of pending places meanwhile (the oldest is dropped for a
        // newer one when they are all taken).
        let ticket = self.pending.enter();
        if self.tls {
            let handshake = self.options.establish_tls_async(socket);
            self.handshake(handshake, ticket, peer, started, "TLS association")
                .await;
        } else {
            let handshake = self.options.establish_async(socket);
            self.handshake(handshake, ticket, peer, started, "association")
                .await;
        }
    }

    /// Waits for an association request to complete (at most the association request
    /// timer, and only while its pending place is not given to a newer request), then
    /// serves the association or logs why there is none.
    async fn handshake<S: PeerStream>(
        &self,
        handshake: impl std::future::Future<
            Output = Result<AsyncServerAssociation<S>, dicom_ul::association::Error>,
        >,
        mut ticket: PendingTicket,
        peer: SocketAddr,
        started: Instant,
        what: &str,
    ) {
        let limit = self.config.idle_timeout.min(ASSOCIATION_REQUEST_TIMEOUT);
        let established = tokio::select! {
            r = tokio::time::timeout(limit, handshake) => r,
            Ok(()) = &mut ticket.evicted => return self.evicted(peer),
        };
        drop(ticket);
        match established {
            Ok(Ok(assoc)) => self.established(assoc, peer, started).await,
            Ok(Err(e)) => {
                self.metrics.association_rejected(reject_reason(&e));
                tracing::info!(%peer, reason = %chain(&e), "{what} rejected")
            }
            Err(_) => {
                self.metrics.association_rejected(RejectReason::Timeout);
                tracing::info!(%peer, "{what} not established within the idle timeout")
            }
        }
    }

    /// Refuses a connection because every association slot is taken.
    async fn reject_busy(&self, socket: TcpStream, peer: SocketAddr) {
        tracing::warn!(
            %peer,
            max = self.config.max_associations,
            "association rejected: too many open associations"
        );
        self.metrics.association_rejected(RejectReason::Busy);
        if self.tls {
            // A TLS peer cannot read a plain A-ASSOCIATE-RJ: close instead.
            drop(socket);
        } else {
            reject_busy(socket, self.config.max_pdu_length).await;
        }
    }

    /// A pending association request dropped to make room for a newer one.
    fn evicted(&self, peer: SocketAddr) {
        self.metrics.association_rejected(RejectReason::Busy);
        tracing::info!(
            %peer,
            "association request dropped: too many requests pending (the oldest goes first)"
        );
    }

    /// Takes a slot for a just-established association and serves it; when the last
    /// slot went to another association meanwhile, aborts it.
    async fn established<S: PeerStream>(
        &self,
        assoc: AsyncServerAssociation<S>,
        peer: SocketAddr,
        started: Instant,
    ) {
        let Ok(_slot) = self.slots.clone().try_acquire_owned() else {
            tracing::warn!(
                %peer,
                max = self.config.max_associations,
                "association aborted: the last slot was taken while it was being established"
            );
            self.metrics.association_rejected(RejectReason::Busy);
            let _ = assoc.abort().await;
            return;
        };
        self.association(assoc, peer, started).await;
    }

    /// Serves an established association and logs what it did.
    async fn association<S: PeerStream>(
        &self,
        mut assoc: AsyncServerAssociation<S>,
        peer: SocketAddr,
        started: Instant,
    ) {
        let _open = self.metrics.association_opened();
        let calling = assoc.peer_ae_title().trim().to_string();
        let called = assoc.called_ae_title().trim().to_string();
        let mut stats = AssocStats::default();
        let result = self.run(&mut assoc, &mut stats).await;
        let keys: Vec<String> = stats.keys.iter().map(|t| tag_name(*t)).collect();
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match &result {
            Ok(()) => tracing::info!(
                %peer, calling_ae = %calling, called_ae = %called,
                echoes = stats.echoes, finds = stats.finds, matched = stats.matched,
                cancelled = stats.cancelled, mpps = stats.mpps, failed = stats.failed,
                keys = %keys.join(","), elapsed_ms,
                "association released"
            ),
            Err(e) => tracing::info!(
                %peer, calling_ae = %calling, called_ae = %called,
                echoes = stats.echoes, finds = stats.finds, matched = stats.matched,
                cancelled = stats.cancelled, mpps = stats.mpps, failed = stats.failed,
                keys = %keys.join(","), elapsed_ms, reason = %e,
                "association ended"
            ),
        }
        if let Err(AssocError::Protocol(_) | AssocError::Idle(_)) = result {
            let _ = assoc.abort().await;
        }
    }

    /// Serves one established association until it is released or fails.
    async fn run<S: PeerStream>(
        &self,
        assoc: &mut AsyncServerAssociation<S>,
        stats: &mut AssocStats,
    ) -> Result<(), AssocError> {
        let mut assembler = Assembler::new(self.config.max_identifier_bytes);
        let mut backlog: VecDeque<Pdu> = VecDeque::new();
        loop {
            let pdu = match backlog.pop_front() {
                Some(p) => p,
                None => assoc.receive().await.map_err(|e| self.receive_error(e))?,
            };
            match pdu {
                Pdu::PData { data } => {
                    for pdv in data {
                        let message = assembler
                            .push(pdv)
                            .map_err(|e: AssemblyError| AssocError::Protocol(e.to_string()))?;
                        if let Some(message) = message {
                            self.dispatch(assoc, message, stats, &mut backlog).await?;
                        }
                    }
                }
                Pdu::ReleaseRQ => {
                    assoc
                        .send(&Pdu::ReleaseRP)
                        .await
                        .map_err(|e| AssocError::Connection(e.to_string()))?;
                    return Ok(());
                }
                Pdu::AbortRQ { .. } => return Err(AssocError::PeerAborted),
                other => {
                    return Err(AssocError::Protocol(format!(
                        "unexpected {} during the association",
                        pdu_name(&other)
                    )));
                }
            }
        }
    }

    fn receive_error(&self, e: dicom_ul::association::Error) -> AssocError {
        use dicom_ul::association::Error as E;
        match e {
            E::Timeout { .. } => AssocError::Idle(self.config.idle_timeout),
            E::ConnectionClosed { .. } | E::WireRead { .. } => AssocError::Connection(chain(&e)),
            other => AssocError::Protocol(chain(&other)),
        }
    }

    async fn dispatch<S: PeerStream>(
        &self,
        assoc: &mut AsyncServerAssociation<S>,
        message: Message,
        stats: &mut AssocStats,
        backlog: &mut VecDeque<Pdu>,
    ) -> Result<(), AssocError> {
        let ctx = assoc
            .presentation_contexts()
            .iter()
            .find(|pc| {
                pc.id == message.context_id
                    && pc.reason == PresentationContextResultReason::Acceptance
            })
            .map(|pc| (pc.abstract_syntax.clone(), pc.transfer_syntax.clone()));
        let Some((abstract_syntax, transfer_syntax)) = ctx else {
            return Err(AssocError::Protocol(format!(
                "message on presentation context {} which was not accepted",
                message.context_id
            )));
        };
        let cmd = &message.command;
        let message_id = cmd.message_id.unwrap_or(0);
        let sop_class = abstract_syntax.trim_end_matches('\0').to_string();
        if let Some(asked) = &cmd.affected_sop_class
            && *asked != sop_class
            && cmd.field != command::C_CANCEL_RQ
        {
            // PS3.7 9.1: the SOP class must be the presentation context's.
            stats.failed += 1;
            let rsp = dimse::response_command(
                cmd.field | 0x8000,
                asked,
                message_id,
                false,
                status::SOP_CLASS_NOT_SUPPORTED,
                vec![dimse::error_comment(
                    "SOP class differs from the presentation context's",
                )],
            );
            return self.send(assoc, message.context_id, &rsp, None).await;
        }
        match cmd.field {
            command::C_ECHO_RQ => {
                stats.echoes += 1;
                self.metrics.echo();
                let rsp = dimse::response_command(
                    command::C_ECHO_RSP,
                    &sop_class,
                    message_id,
                    false,
                    status::SUCCESS,
                    vec![],
                );
                self.send(assoc, message.context_id, &rsp, None).await
            }
            command::C_FIND_RQ => {
                stats.finds += 1;
                // How the query ended is read from the association's counters.
                let (failed, cancelled, matched) = (stats.failed, stats.cancelled, stats.matched);
                let started = Instant::now();
                let result = self
                    .find(
                        assoc,
                        &message,
                        &sop_class,
                        &transfer_syntax,
                        stats,
                        backlog,
                    )
                    .await;
                let items = stats.matched.saturating_sub(matched);
                let status = if result.is_err() {
                    FindStatus::Aborted
                } else if stats.failed > failed {
                    FindStatus::Failed
                } else if stats.cancelled > cancelled {
                    // Truncation stops exactly at max_responses items; a C-CANCEL is only
                    // looked for before an item below that limit.
                    match self.config.max_responses {
                        Some(limit) if items >= limit as u64 => FindStatus::Truncated,
                        _ => FindStatus::Cancelled,
                    }
                } else {
                    FindStatus::Success
                };
                self.metrics.find_done(status, items, started.elapsed());
                result
            }
            command::N_CREATE_RQ | command::N_SET_RQ
                if abstract_syntax.trim_end_matches('\0') == crate::mpps::MPPS =>
            {
                stats.mpps += 1;
                let Some(ts) = TransferSyntaxRegistry.get(transfer_syntax.trim_end_matches('\0'))
                else {
                    return Err(AssocError::Protocol(format!(
                        "unknown transfer syntax {transfer_syntax}"
                    )));
                };
                let calling = assoc.peer_ae_title().trim().to_string();
                let started = Instant::now();
                let (outcome, rsp_field) = if cmd.field == command::N_CREATE_RQ {
                    let o = crate::mpps::create(
                        &self.store,
                        &calling,
                        cmd,
                        message.data.as_deref(),
                        ts,
                    )
                    .await;
                    (o, command::N_CREATE_RSP)
                } else {
                    let o =
                        crate::mpps::set(&self.store, &calling, cmd, message.data.as_deref(), ts)
                            .await;
                    (o, command::N_SET_RSP)
                };
                let operation = if cmd.field == command::N_CREATE_RQ {
                    MppsOperation::NCreate
                } else {
                    MppsOperation::NSet
                };
                self.metrics.mpps_done(
                    operation,
                    outcome.status == crate::mpps::status::SUCCESS,
                    started.elapsed(),
                );
                if outcome.status != crate::mpps::status::SUCCESS {
                    stats.failed += 1;
                    tracing::info!(
                        status = format!("{:#06x}", outcome.status),
                        reason = outcome.comment.as_deref().unwrap_or(""),
                        "MPPS request refused"
                    );
                }
                let rsp = dimse::response_command(
                    rsp_field,
                    crate::mpps::MPPS,
                    message_id,
                    false,
                    outcome.status,
                    outcome.response_elements(),
                );
                self.send(assoc, message.context_id, &rsp, None).await
            }
            command::C_CANCEL_RQ => {
                // A cancel for an operation already answered: ignored, as PS3.7 says.
                tracing::debug!(message_id = ?cmd.responding_to, "late C-CANCEL ignored");
                Ok(())
            }
            other => {
                tracing::info!(
                    command = format!("{other:#06x}"),
                    "unsupported DIMSE operation"
                );
                let rsp = dimse::response_command(
                    other | 0x8000,
                    &sop_class,
                    message_id,
                    false,
                    status::UNRECOGNIZED_OPERATION,
                    vec![],
                );
                self.send(assoc, message.context_id, &rsp, None).await
            }
        }
    }

    async fn find<S: PeerStream>(
        &self,
        assoc: &mut AsyncServerAssociation<S>,
        message: &Message,
        sop_class: &str,
        transfer_syntax: &str,
        stats: &mut AssocStats,
        backlog: &mut VecDeque<Pdu>,
    ) -> Result<(), AssocError> {
        let ctx_id = message.context_id;
        let message_id = message.command.message_id.unwrap_or(0);
        let final_rsp = |status: u16, extra| {
            dimse::response_command(
                command::C_FIND_RSP,
                sop_class,
                message_id,
                false,
                status,
                extra,
            )
        };
        if sop_class != MWL_FIND {
            stats.failed += 1;
            let rsp = final_rsp(
                status::SOP_CLASS_NOT_SUPPORTED,
                vec![dimse::error_comment(
                    "only Modality Worklist FIND is supported",
                )],
            );
            return self.send(assoc, ctx_id, &rsp, None).await;
        }
        let Some(ts) = TransferSyntaxRegistry.get(transfer_syntax.trim_end_matches('\0')) else {
            return Err(AssocError::Protocol(format!(
                "unknown transfer syntax {transfer_syntax}"
            )));
        };
        let identifier = match message
            .data
            .as_deref()
            .map(|d| crate::wire_check::decode(d, ts))
        {
            Some(Ok(obj)) => obj,
            Some(Err(e)) => {
                stats.failed += 1;
                tracing::info!(error = %e, "C-FIND identifier is not valid DICOM");
                let rsp = final_rsp(
                    status::IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,
                    vec![dimse::error_comment(
                        "identifier is not a valid DICOM data set",
                    )],
                );
                return self.send(assoc, ctx_id, &rsp, None).await;
            }
            None => {
                stats.failed += 1;
                let rsp = final_rsp(
                    status::IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,
                    vec![dimse::error_comment("C-FIND without an identifier")],
                );
                return self.send(assoc, ctx_id, &rsp, None).await;
            }
        };
        let query = match MwlQuery::parse(&identifier) {
            Ok(mut q) => {
                if self.config.station_filter_by_calling_ae {
                    let calling = assoc.peer_ae_title().trim().to_string();
                    if q.restrict_to_station(&calling) {
                        tracing::debug!(station = %calling, "query restricted to the caller's station");
                    }
                }
                Arc::new(q)
            }
            Err(QueryError::InvalidIdentifier { offending, reason }) => {
                stats.failed += 1;
                tracing::info!(reason = %reason, "C-FIND identifier refused");
                let rsp = final_rsp(
                    status::IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,
                    vec![
                        dimse::offending_elements(&offending),
                        dimse::error_comment(&reason),
                    ],
                );
                return self.send(assoc, ctx_id, &rsp, None).await;
            }
        };
        stats.keys.extend(query.requested_keys());
        let pending = if query.has_unsupported_keys() {
            status::PENDING_WARNING
        } else {
            status::PENDING
        };
        let pending_cmd = dimse::encode_command(&dimse::response_command(
            command::C_FIND_RSP,
            sop_class,
            message_id,
            true,
            pending,
            vec![],
        ))
        .map_err(AssocError::Protocol)?;
        let peer_max = assoc.requestor_max_pdu_length();
        let limit = self.config.max_responses.unwrap_or(usize::MAX);
        let encoder = ResponseEncoder {
            query: query.clone(),
            charset: self.config.charset,
            explicit: transfer_syntax.trim_end_matches('\0') == EXPLICIT_VR_LITTLE_ENDIAN.uid(),
            context_id: ctx_id,
            pending_command: pending_cmd.into(),
            peer_max_pdu: peer_max,
        };
        let filter = query.candidate_filter();
        // Every response of the query comes from one snapshot of the store. A small answer
        // is read and encoded whole in one trip to the blocking pool; a larger one is
        // given up before anything of it is sent and streamed instead (find_stream.rs).
        let small = small_answer(&self.store, filter.clone(), encoder.clone(), limit).await;
        let mut batch: Vec<u8> = Vec::with_capacity(WRITE_BATCH + 4096);
        let mut cancelled = false;
        let mut matched_in_all = None;
        let mut db_failure = None;
        match small {
            Ok(Ok(SmallAnswer::Complete { items, matched })) => {
                cancelled = !self
                    .send_items(assoc, &items, message_id, backlog, &mut batch, stats)
                    .await?;
                matched_in_all = Some(matched);
            }
            Ok(Ok(SmallAnswer::Large)) => {
                let mut stream = Stream::start(&self.store, filter, encoder, limit);
                loop {
                    match stream.next().await {
                        Some(StreamEvent::Items(items)) => {
                            if !self
                                .send_items(assoc, &items, message_id, backlog, &mut batch, stats)
                                .await?
                            {
                                cancelled = true;
                                break;
                            }
                            stream.recycle(items);
                        }
                        Some(StreamEvent::Done { matched }) => {
                            matched_in_all = Some(matched);
                            break;
                        }
                        Some(StreamEvent::Failed(ProduceError::Store(e))) => {
                            db_failure = Some(e.to_string());
                            break;
                        }
                        Some(StreamEvent::Failed(ProduceError::Encode(e))) => {
                            return Err(AssocError::Protocol(e));
                        }
                        None => {
                            db_failure = Some("the streaming task ended early".to_string());
                            break;
                        }
                    }
                }
                // Stops the producer (at its next row) if it still runs: a cancel.
                drop(stream);
            }
            Ok(Err(ProduceError::Encode(e))) => return Err(AssocError::Protocol(e)),
            Ok(Err(ProduceError::Store(e))) => db_failure = Some(e.to_string()),
            Err(e) => db_failure = Some(e.to_string()),
        }
        if let Some(error) = db_failure {
            stats.failed += 1;
            tracing::error!(error = %error, "C-FIND failed: the worklist database is unavailable");
            let rsp = final_rsp(
                status::UNABLE_TO_PROCESS,
                vec![dimse::error_comment("worklist database unavailable")],
            );
            let cmd = dimse::encode_command(&rsp).map_err(AssocError::Protocol)?;
            batch.extend_from_slice(
                &dimse::encode_message(ctx_id, &cmd, None, peer_max)
                    .map_err(AssocError::Protocol)?,
            );
            return self.write_bytes(assoc, &batch).await;
        }
        if let Some(matched) = matched_in_all
            && matched > limit as u64
        {
            tracing::warn!(
                matched,
                max_responses = limit,
                "query matched more items than max_responses; the rest are not sent (FE00)"
            );
            cancelled = true;
        }
        let status = if cancelled {
            stats.cancelled += 1;
            status::CANCEL
        } else {
            status::SUCCESS
        };
        let final_cmd =
            dimse::encode_command(&final_rsp(status, vec![])).map_err(AssocError::Protocol)?;
        batch.extend_from_slice(
            &dimse::encode_message(ctx_id, &final_cmd, None, peer_max)
                .map_err(AssocError::Protocol)?,
        );
        self.write_bytes(assoc, &batch).await
    }

    /// Sends encoded pending responses in batches of about 16 KiB (one system call for
    /// dozens of items), looking for a C-CANCEL before every item, so a cancel stops the
    /// query within one batch of its arrival. What is left below a batch stays in `batch`
    /// for the final response. Returns false when the query was cancelled.
    async fn send_items<S: PeerStream>(
        &self,
        assoc: &mut AsyncServerAssociation<S>,
        items: &Items,
        message_id: u16,
        backlog: &mut VecDeque<Pdu>,
        batch: &mut Vec<u8>,
        stats: &mut AssocStats,
    ) -> Result<bool, AssocError> {
        for item in items.iter() {
            if self.cancel_requested(assoc, message_id, backlog).await? {
                return Ok(false);
            }
            batch.extend_from_slice(item);
            if batch.len() >= WRITE_BATCH {
                self.write_bytes(assoc, batch).await?;
                batch.clear();
            }
            stats.matched += 1;
        }
        Ok(true)
    }

    /// Looks, without waiting, for a C-CANCEL-RQ of `message_id` among what the peer sent.
    /// Anything else received is kept for after the current operation.
    ///
    /// The check costs one non-blocking `recv(MSG_PEEK)`: a timer (even a zero one) would
    /// wait for the runtime's next millisecond tick before every pending response.
    async fn cancel_requested<S: PeerStream>(
        &self,
        assoc: &mut AsyncServerAssociation<S>,
        message_id: u16,
        backlog: &mut VecDeque<Pdu>,
    ) -> Result<bool, AssocError> {
        let input_waiting = {
            let (socket, buffered) = assoc.get_mut();
            !buffered.is_empty() || socket.input_waiting()
        };
        if !input_waiting {
            return Ok(false);
        }
        let pdu = assoc.receive().await.map_err(|e| self.receive_error(e))?;
        match &pdu {
            Pdu::PData { data }
                if data.len() == 1
                    && data[0].value_type == PDataValueType::Command
                    && data[0].is_last =>
            {
                if let Ok(cmd) = dimse::Command::decode(&data[0].data)
                    && cmd.field == command::C_CANCEL_RQ
                {
                    if cmd.responding_to == Some(message_id) {
                        return Ok(true);
                    }
                    tracing::debug!("C-CANCEL for another message ignored");
                    return Ok(false);
                }
                backlog.push_back(pdu);
                Ok(false)
            }
            Pdu::AbortRQ { .. } => Err(AssocError::PeerAborted),
            _ => {
                backlog.push_back(pdu);
                Ok(false)
            }
        }
    }

    async fn send<S: PeerStream>(
        &self,
        assoc: &mut AsyncServerAssociation<S>,
        ctx_id: u8,
        command: &InMemDicomObject,
        data: Option<&[u8]>,
    ) -> Result<(), AssocError> {
        let cmd = dimse::encode_command(command).map_err(AssocError::Protocol)?;
        self.write_raw(assoc, ctx_id, &cmd, data).await
    }

    /// Writes one message (command and data, in as few PDUs as fit) in a single write.
    async fn write_raw<S: PeerStream>(
        &self,
        assoc: &mut AsyncServerAssociation<S>,
        ctx_id: u8,
        command: &[u8],
        data: Option<&[u8]>,
    ) -> Result<(), AssocError> {
        let peer_max = assoc.requestor_max_pdu_length();
        let bytes =
            dimse::encode_message(ctx_id, command, data, peer_max).map_err(AssocError::Protocol)?;
        self.write_bytes(assoc, &bytes).await
    }

    /// Writes encoded PDUs in one go.
    async fn write_bytes<S: PeerStream>(
        &self,
        assoc: &mut AsyncServerAssociation<S>,
        bytes: &[u8],
    ) -> Result<(), AssocError> {
        let stream = assoc.inner_stream();
        match tokio::time::timeout(WRITE_TIMEOUT, async {
            stream.write_all(bytes).await?;
            // TLS buffers what it encrypts: push it out now.
            stream.flush().await
        })
        .await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(AssocError::Connection(e.to_string())),
            Err(_) => Err(AssocError::Connection(format!(
                "write stalled for {WRITE_TIMEOUT:?}"
            ))),
        }
    }
}

/// Whether the peer has sent bytes not read yet (or closed the connection), asked of the
/// socket itself without blocking.
fn socket_readable(socket: &TcpStream) -> bool {
    let mut probe = [std::mem::MaybeUninit::<u8>::uninit(); 1];
    match socket2::SockRef::from(socket).peek(&mut probe) {
        Ok(_) => true,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    }
}

/// Why dicom-ul refused an association request, for the metrics.
fn reject_reason(e: &dicom_ul::association::Error) -> RejectReason {
    use dicom_ul::association::Error as E;
    use dicom_ul::pdu::{AssociationRJServiceUserReason as User, AssociationRJSource as Source};
    match e {
        E::Rejected { association_rj, .. } => match association_rj.source {
            Source::ServiceUser(User::CalledAETitleNotRecognized) => RejectReason::CalledAe,
            Source::ServiceUser(User::CallingAETitleNotRecognized) => RejectReason::CallingAe,
            _ => RejectReason::Protocol,
        },
        E::NoAcceptedPresentationContexts { .. } => RejectReason::NoPresentationContext,
        E::TlsHandshake { .. } | E::TlsNotSupported => RejectReason::Tls,
        E::Timeout { .. } => RejectReason::Timeout,
        _ => RejectReason::Protocol,
    }
}

/// Resolves when `shutdown` turns true (or its sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Answers an association request with A-ASSOCIATE-RJ (transient, local limit exceeded).
async fn reject_busy(mut socket: TcpStream, max_pdu: u32) {
    let mut buf = bytes_buffer();
    let read = tokio::time::timeout(
        Duration::from_secs(5),
        dicom_ul::association::read_pdu_from_wire_async(&mut socket, &mut buf, max_pdu, true),
    )
    .await;
    if let Ok(Ok(Pdu::AssociationRQ(_))) = read {
        let rj = Pdu::AssociationRJ(AssociationRJ {
            result: AssociationRJResult::Transient,
            source: AssociationRJSource::ServiceProviderPresentation(
                AssociationRJServiceProviderPresentationReason::LocalLimitExceeded,
            ),
        });
        let mut out = Vec::new();
        if dicom_ul::pdu::write_pdu(&mut out, &rj).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(5), socket.write_all(&out)).await;
        }
    }
    let _ = socket.shutdown().await;
}

fn bytes_buffer() -> bytes::BytesMut {
    bytes::BytesMut::with_capacity(1024)
}

/// An error with its causes, on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

fn pdu_name(pdu: &Pdu) -> &'static str {
    match pdu {
        Pdu::AssociationRQ(_) => "A-ASSOCIATE-RQ",
        Pdu::AssociationAC(_) => "A-ASSOCIATE-AC",
        Pdu::AssociationRJ(_) => "A-ASSOCIATE-RJ",
        Pdu::PData { .. } => "P-DATA",
        Pdu::ReleaseRQ => "A-RELEASE-RQ",
        Pdu::ReleaseRP => "A-RELEASE-RP",
        Pdu::AbortRQ { .. } => "A-ABORT",
        _ => "unknown PDU",
    }
}

/// `PatientName` for (0010,0010); the tag itself for unknown ones.
pub fn tag_name(tag: Tag) -> String {
    StandardDataDictionary
        .by_tag(tag)
        .map(|e| e.alias().to_string())
        .unwrap_or_else(|| format!("({:04X},{:04X})", tag.group(), tag.element()))
}
