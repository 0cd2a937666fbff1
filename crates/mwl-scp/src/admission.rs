//! Admission: from an accepted TCP connection to an established association that holds
//! one of the `max_associations` slots.
//!
//! - From the moment it is accepted until it is established (or refused), a connection
//!   holds one of a bounded number of pending places ([`pending`](crate::pending)): when
//!   they are all taken, the oldest waiting connection is closed for the newer one. So
//!   silent connections (a port scan, a reconnect storm), stalled requests and
//!   connections being refused are bounded in number, and a flood of them cannot use up
//!   the process's file descriptors nor keep a console out.
//! - A connection takes no slot until its peer has spoken; a silent one is closed after
//!   the idle timeout (or sooner, for a newer one).
//! - When every slot is taken, the request is refused at once (`Admission::refuse`:
//!   A-ASSOCIATE-RJ transient, "local limit exceeded"; a TLS connection is closed).
//! - Otherwise the request must complete within [`ASSOCIATION_REQUEST_TIMEOUT`] (an
//!   ARTIM-like timer).
//! - A peer already holding `max_associations_per_peer` established associations from its
//!   address, or `max_associations_per_ae` under its calling AE title ([`PeerLimits`]), is
//!   refused the same way before its request is negotiated (the calling AE title read from
//!   the request's first bytes when they are there, on a plain TCP port).
//! - Once established, the association takes a slot and is counted for its address and
//!   calling AE title, or is aborted when the last slot went to another meanwhile or a peer
//!   limit was reached (a TLS peer, whose request cannot be read beforehand, or a request
//!   that raced another for the last place), and is served by [`association`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dicom_dictionary_std::uids;
use dicom_ul::association::server::DefaultNegotiation;
use dicom_ul::association::{Association as _, AsyncServerAssociation, ServerAssociationOptions};
use dicom_ul::pdu::{
    AssociationRJ, AssociationRJResult, AssociationRJServiceProviderPresentationReason,
    AssociationRJSource, Pdu,
};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::access::AePolicy;
use crate::association;
use crate::connection::PeerStream;
use crate::context::Context;
use crate::describe::{chain, printable};
use crate::dimse::sop_class;
use crate::metrics::RejectReason;
use crate::peer_limits::{PeerLimit, PeerLimits, calling_ae_of_request};
use crate::pending::{PendingRequests, PendingTicket};

/// How long an association request may take once its first byte arrived.
const ASSOCIATION_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Association requests that may be pending (being read) per association slot...
const PENDING_PER_SLOT: usize = 4;
/// ...and at least this many.
const MIN_PENDING: usize = 64;
/// How long a refused peer gets to send its request and read the refusal.
const BUSY_REJECTION_TIMEOUT: Duration = Duration::from_secs(5);

type Options = ServerAssociationOptions<'static, AePolicy, DefaultNegotiation>;

/// The slots and pending places of one server, and how it negotiates.
pub(crate) struct Admission {
    cx: Context,
    options: Options,
    /// Set when the port speaks DICOM over TLS.
    tls: bool,
    slots: Arc<Semaphore>,
    pending: Arc<PendingRequests>,
    peers: PeerLimits,
}

/// Why a request is refused before negotiation.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    /// Every association slot is taken.
    Busy,
    /// The peer reached one of its own limits.
    Peer(PeerLimit),
}

impl Admission {
    /// Admission for a server with `cx`'s settings.
    pub(crate) fn new(cx: Context) -> Admission {
        let config = &cx.config;
        let options = ServerAssociationOptions::new()
            .ae_access_control(config.policy.clone())
            .ae_title(config.ae_title.clone())
            .with_abstract_syntax(sop_class::VERIFICATION)
            .with_abstract_syntax(sop_class::MWL_FIND)
            .with_abstract_syntax(sop_class::MPPS)
            .with_transfer_syntax(uids::IMPLICIT_VR_LITTLE_ENDIAN)
            .with_transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
            .max_pdu_length(config.max_pdu_length)
            // Strict: a PDU longer than our maximum is refused, not buffered.
            .strict(true)
            .read_timeout(config.idle_timeout);
        let (options, tls) = match &config.tls {
            Some(tls) => (options.tls_config(tls.clone()), true),
            None => (options, false),
        };
        let pending_places = config
            .max_associations
            .saturating_mul(PENDING_PER_SLOT)
            .max(MIN_PENDING);
        Admission {
            tls,
            slots: Arc::new(Semaphore::new(config.max_associations.max(1))),
            pending: PendingRequests::new(pending_places),
            peers: PeerLimits::new(
                config.max_associations_per_peer,
                config.max_associations_per_ae,
            ),
            options,
            cx,
        }
    }

    /// What the server's handlers share.
    pub(crate) fn context(&self) -> &Context {
        &self.cx
    }

    /// Takes an accepted connection through admission and serves its association.
    pub(crate) async fn connection(&self, socket: TcpStream, peer: SocketAddr) {
        if let Err(e) = socket.set_nodelay(true) {
            tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
        }
        // Every connection not yet established holds a pending place from here on, so
        // connections that never speak, or are being refused, are bounded in number too
        // (the oldest is closed for a newer one): a flood cannot use up file descriptors.
        let mut ticket = self.pending.enter();
        // `readable()` can resolve before any byte arrived: wait for a real one. The
        // request's head usually arrives whole: its calling AE title is read when it has.
        let mut head = [0u8; 42];
        let idle = self.cx.config.idle_timeout;
        let peeked = tokio::select! {
            r = tokio::time::timeout(idle, socket.peek(&mut head)) => r,
            Ok(()) = &mut ticket.evicted => {
                self.cx.metrics.association_rejected(RejectReason::Busy);
                tracing::debug!(
                    %peer,
                    "connection closed before its association request: too many connections \
                     waiting (the oldest goes first)"
                );
                return;
            }
        };
        let calling = match peeked {
            Ok(Ok(0)) => return,
            Ok(Ok(n)) if !self.tls => calling_ae_of_request(&head[..n]),
            Ok(Ok(_)) => None,
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
        };
        // The slot itself is taken only once the association is established (below), so
        // a stalled request holds none.
        let refusal = if self.slots.available_permits() == 0 {
            Some(Refusal::Busy)
        } else {
            self.peers
                .would_refuse(peer.ip(), calling.as_deref())
                .map(Refusal::Peer)
        };
        if let Some(why) = refusal {
            tokio::select! {
                () = self.refuse(socket, peer, calling.as_deref(), why) => {}
                Ok(()) = &mut ticket.evicted => {}
            }
            return;
        }
        let started = Instant::now();
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
        let limit = self.cx.config.idle_timeout.min(ASSOCIATION_REQUEST_TIMEOUT);
        // The access check's refusal line (access.rs) names the AE titles; the span adds
        // the peer's address to it.
        let handshake =
            tracing::Instrument::instrument(handshake, tracing::info_span!("request", %peer));
        let established = tokio::select! {
            r = tokio::time::timeout(limit, handshake) => r,
            Ok(()) = &mut ticket.evicted => {
                self.cx.metrics.association_rejected(RejectReason::Busy);
                tracing::info!(
                    %peer,
                    "association request dropped: too many requests pending (the oldest goes first)"
                );
                return;
            }
        };
        drop(ticket);
        match established {
            Ok(Ok(assoc)) => self.established(assoc, peer, started).await,
            Ok(Err(e)) => {
                let reason = reject_reason(&e);
                self.cx.metrics.association_rejected(reason);
                // AE-title refusals were logged, with the titles, by the access check.
                if !matches!(reason, RejectReason::CalledAe | RejectReason::CallingAe) {
                    tracing::info!(%peer, reason = %chain(&e), "{what} rejected")
                }
            }
            Err(_) => {
                self.cx.metrics.association_rejected(RejectReason::Timeout);
                tracing::info!(%peer, "{what} not established within the idle timeout")
            }
        }
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
                max = self.cx.config.max_associations,
                "association aborted: the last slot was taken while it was being established"
            );
            self.cx.metrics.association_rejected(RejectReason::Busy);
            let _ = assoc.abort().await;
            return;
        };
        // Counted once established, so requests still being negotiated (a flood of stalled
        // ones from a console's own address) never count against a console. Two requests
        // racing for the last place may both pass the check above: the later one to be
        // established is then aborted here.
        let _counted = match self.peers.admit(peer.ip(), Some(assoc.peer_ae_title())) {
            Ok(hold) => hold,
            Err(limit) => {
                tracing::warn!(
                    %peer,
                    calling_ae = %printable(assoc.peer_ae_title().trim()),
                    limit = limit.key(),
                    max = limit.max(),
                    "association aborted: the peer has as many open associations as allowed"
                );
                self.cx.metrics.association_rejected(RejectReason::Busy);
                let _ = assoc.abort().await;
                return;
            }
        };
        association::serve(&self.cx, assoc, peer, started).await;
    }

    /// Refuses a connection because every association slot is taken, or the peer has as
    /// many as it may: reads its A-ASSOCIATE-RQ and answers A-ASSOCIATE-RJ (transient,
    /// local limit exceeded). A TLS peer cannot read a plain A-ASSOCIATE-RJ: its
    /// connection is closed instead.
    async fn refuse(
        &self,
        mut socket: TcpStream,
        peer: SocketAddr,
        calling: Option<&str>,
        why: Refusal,
    ) {
        match why {
            Refusal::Busy => tracing::warn!(
                %peer,
                calling_ae = %printable(calling.unwrap_or("")),
                max = self.cx.config.max_associations,
                "association rejected: too many open associations"
            ),
            Refusal::Peer(limit) => tracing::warn!(
                %peer,
                calling_ae = %printable(calling.unwrap_or("")),
                limit = limit.key(),
                max = limit.max(),
                "association rejected: the peer has as many open associations as allowed"
            ),
        }
        self.cx.metrics.association_rejected(RejectReason::Busy);
        if self.tls {
            return;
        }
        let mut buf = bytes::BytesMut::with_capacity(1024);
        let max_pdu = self.cx.config.max_pdu_length;
        let read = tokio::time::timeout(
            BUSY_REJECTION_TIMEOUT,
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
                let _ = tokio::time::timeout(BUSY_REJECTION_TIMEOUT, socket.write_all(&out)).await;
            }
        }
        let _ = socket.shutdown().await;
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
