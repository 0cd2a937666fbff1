//! One established association as the handlers see it ([`Peer`]): the next PDU (first
//! the ones set aside while a C-FIND looked for its C-CANCEL), a look at what the peer
//! already sent without waiting, responses written in one go; and why an association
//! ends early ([`AssocError`]).

use std::collections::VecDeque;
use std::time::Duration;

use dicom_object::InMemDicomObject;
use dicom_ul::association::{
    Association as _, AsyncAssociation as _, AsyncServerAssociation, Error as UlError,
};
use dicom_ul::pdu::{Pdu, PresentationContextResultReason};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::describe::chain;
use crate::dimse::{self, AssemblyError, EncodeError};

/// How long a write to a peer may take before the association is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Why an association ended early. Its text is the `reason` of the association's log line.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AssocError {
    /// The peer sent A-ABORT.
    #[error("peer aborted the association")]
    PeerAborted,
    /// The peer sent nothing for the idle timeout.
    #[error("peer silent for {0:?}; association dropped")]
    Idle(Duration),
    /// The peer sent only C-ECHO for the idle timeout: it holds a slot for nothing.
    #[error("only C-ECHO for {0:?} (keep-alives do not keep an association); dropped")]
    EchoOnly(Duration),
    /// The connection closed or broke.
    #[error("connection lost: {0}")]
    Connection(#[from] ConnectionLost),
    /// The peer broke the protocol, or a response could not be encoded: the association is
    /// aborted.
    #[error("protocol error: {0}")]
    Protocol(#[from] ProtocolError),
}

/// How the connection was lost.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectionLost {
    /// Reading the next PDU failed: the peer closed the connection, or it broke.
    #[error("{}", chain(.0))]
    Read(#[source] Box<UlError>),
    /// Answering A-RELEASE-RQ failed.
    #[error("{0}")]
    Release(#[source] Box<UlError>),
    /// Writing a response failed.
    #[error("{0}")]
    Write(#[source] std::io::Error),
    /// The peer read nothing for this long while a response was being written.
    #[error("write stalled for {0:?}")]
    WriteStalled(Duration),
}

/// How the protocol was broken.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProtocolError {
    /// dicom-ul refused what the peer sent (a malformed or oversized PDU, ...).
    #[error("{}", chain(.0))]
    Read(#[source] Box<UlError>),
    /// The P-DATA fragments do not assemble into DIMSE messages.
    #[error("{0}")]
    Assembly(#[from] AssemblyError),
    /// A PDU that has no place in an established association (another A-ASSOCIATE-RQ, ...).
    #[error("unexpected {0} during the association")]
    UnexpectedPdu(&'static str),
    /// A message on a presentation context we did not accept.
    #[error("message on presentation context {0} which was not accepted")]
    ContextNotAccepted(u8),
    /// An accepted transfer syntax the registry does not know (cannot happen with the two
    /// we accept).
    #[error("unknown transfer syntax {0}")]
    UnknownTransferSyntax(String),
    /// A response could not be encoded.
    #[error("{0}")]
    Encode(#[from] EncodeError),
}

impl From<EncodeError> for AssocError {
    fn from(e: EncodeError) -> Self {
        AssocError::Protocol(ProtocolError::Encode(e))
    }
}

/// What an association runs over: plain TCP, or TLS on TCP.
pub(crate) trait PeerStream:
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

/// Whether the peer has sent bytes not read yet (or closed the connection), asked of the
/// socket itself without blocking.
fn socket_readable(socket: &TcpStream) -> bool {
    let mut probe = [std::mem::MaybeUninit::<u8>::uninit(); 1];
    match socket2::SockRef::from(socket).peek(&mut probe) {
        Ok(_) => true,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    }
}

/// An established association with the PDUs set aside for later.
pub(crate) struct Peer<S: PeerStream> {
    assoc: AsyncServerAssociation<S>,
    /// PDUs read while a C-FIND looked for its C-CANCEL, handled after it, oldest first.
    set_aside: VecDeque<Pdu>,
    /// The read timeout dicom-ul applies, for [`AssocError::Idle`].
    idle_timeout: Duration,
}

impl<S: PeerStream> Peer<S> {
    /// The association `assoc`, whose reads time out after `idle_timeout`.
    pub(crate) fn new(assoc: AsyncServerAssociation<S>, idle_timeout: Duration) -> Peer<S> {
        Peer {
            assoc,
            set_aside: VecDeque::new(),
            idle_timeout,
        }
    }

    /// The calling AE title, trimmed.
    pub(crate) fn calling_ae(&self) -> String {
        self.assoc.peer_ae_title().trim().to_string()
    }

    /// The called AE title, trimmed.
    pub(crate) fn called_ae(&self) -> String {
        self.assoc.called_ae_title().trim().to_string()
    }

    /// The peer's maximum PDU length.
    pub(crate) fn max_pdu(&self) -> u32 {
        self.assoc.requestor_max_pdu_length()
    }

    /// The abstract syntax (SOP class) and transfer syntax of presentation context `id`,
    /// when it was accepted; NUL padding removed.
    pub(crate) fn accepted_context(&self, id: u8) -> Option<(String, String)> {
        self.assoc
            .presentation_contexts()
            .iter()
            .find(|pc| pc.id == id && pc.reason == PresentationContextResultReason::Acceptance)
            .map(|pc| {
                (
                    pc.abstract_syntax.trim_end_matches('\0').to_string(),
                    pc.transfer_syntax.trim_end_matches('\0').to_string(),
                )
            })
    }

    /// The next PDU: one set aside first, else the next from the peer.
    pub(crate) async fn next_pdu(&mut self) -> Result<Pdu, AssocError> {
        match self.set_aside.pop_front() {
            Some(pdu) => Ok(pdu),
            None => self.receive().await,
        }
    }

    /// The next PDU from the peer when it has already sent some of it; `None` at once
    /// otherwise.
    ///
    /// The check costs one non-blocking `recv(MSG_PEEK)`: a timer (even a zero one) would
    /// wait for the runtime's next millisecond tick.
    pub(crate) async fn pdu_if_sent(&mut self) -> Result<Option<Pdu>, AssocError> {
        let input_waiting = {
            let (socket, buffered) = self.assoc.get_mut();
            !buffered.is_empty() || socket.input_waiting()
        };
        if !input_waiting {
            return Ok(None);
        }
        self.receive().await.map(Some)
    }

    /// Keeps `pdu` for [`next_pdu`](Self::next_pdu), after the current operation.
    pub(crate) fn set_aside(&mut self, pdu: Pdu) {
        self.set_aside.push_back(pdu);
    }

    async fn receive(&mut self) -> Result<Pdu, AssocError> {
        self.assoc.receive().await.map_err(|e| match e {
            UlError::Timeout { .. } => AssocError::Idle(self.idle_timeout),
            UlError::ConnectionClosed { .. } | UlError::WireRead { .. } => {
                ConnectionLost::Read(Box::new(e)).into()
            }
            other => ProtocolError::Read(Box::new(other)).into(),
        })
    }

    /// Sends one message without a data set: `command` on presentation context `ctx_id`.
    pub(crate) async fn send(
        &mut self,
        ctx_id: u8,
        command: &InMemDicomObject,
    ) -> Result<(), AssocError> {
        let cmd = dimse::encode_command(command)?;
        let bytes = dimse::encode_message(ctx_id, &cmd, None, self.max_pdu())?;
        self.write(&bytes).await
    }

    /// Writes encoded PDUs in one go.
    pub(crate) async fn write(&mut self, bytes: &[u8]) -> Result<(), AssocError> {
        let stream = self.assoc.inner_stream();
        let written = tokio::time::timeout(WRITE_TIMEOUT, async {
            stream.write_all(bytes).await?;
            // TLS buffers what it encrypts: push it out now.
            stream.flush().await
        })
        .await;
        match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ConnectionLost::Write(e).into()),
            Err(_) => Err(ConnectionLost::WriteStalled(WRITE_TIMEOUT).into()),
        }
    }

    /// Answers the peer's A-RELEASE-RQ.
    pub(crate) async fn release(&mut self) -> Result<(), AssocError> {
        self.assoc
            .send(&Pdu::ReleaseRP)
            .await
            .map_err(|e| ConnectionLost::Release(Box::new(e)).into())
    }

    /// Sends A-ABORT and closes the connection.
    pub(crate) async fn abort(self) {
        let _ = self.assoc.abort().await;
    }
}
