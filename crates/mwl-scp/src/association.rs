//! One established association: the receive loop (P-DATA fragments assembled into DIMSE
//! messages for [`dispatch`], A-RELEASE answered, A-ABORT and anything else ending it),
//! and the one log line that says what it did.
//!
//! An association ends after `idle_timeout` without a PDU, and also after `idle_timeout`
//! in which it sent nothing but C-ECHO: keep-alives do not hold a slot that consoles
//! doing work need.

use std::net::SocketAddr;
use std::time::Instant;

use dicom_ul::association::AsyncServerAssociation;
use dicom_ul::pdu::Pdu;

use crate::connection::{AssocError, Peer, PeerStream, ProtocolError};
use crate::context::{AssocStats, Context};
use crate::describe::{pdu_name, printable, tag_name};
use crate::dimse::{Assembler, command};
use crate::dispatch::dispatch;

/// Serves an established association until it is released or fails, then logs what it
/// did; aborts it after a protocol error or the idle timeout.
pub(crate) async fn serve<S: PeerStream>(
    cx: &Context,
    assoc: AsyncServerAssociation<S>,
    peer_addr: SocketAddr,
    started: Instant,
) {
    let _open = cx.metrics.association_opened();
    let mut peer = Peer::new(assoc, cx.config.idle_timeout);
    // As sent by the peer: escaped for the log.
    let calling = printable(&peer.calling_ae());
    let called = printable(&peer.called_ae());
    let mut stats = AssocStats::default();
    let result = receive_loop(cx, &mut peer, &mut stats).await;
    let keys: Vec<String> = stats.keys.iter().map(|t| tag_name(*t)).collect();
    let elapsed_ms = started.elapsed().as_millis() as u64;
    match &result {
        Ok(()) => tracing::info!(
            peer = %peer_addr, calling_ae = %calling, called_ae = %called,
            echoes = stats.echoes, finds = stats.finds, matched = stats.matched,
            cancelled = stats.cancelled, truncated = stats.truncated, mpps = stats.mpps,
            failed = stats.failed, keys = %keys.join(","), elapsed_ms,
            "association released"
        ),
        Err(e) => tracing::info!(
            peer = %peer_addr, calling_ae = %calling, called_ae = %called,
            echoes = stats.echoes, finds = stats.finds, matched = stats.matched,
            cancelled = stats.cancelled, truncated = stats.truncated, mpps = stats.mpps,
            failed = stats.failed, keys = %keys.join(","), elapsed_ms, reason = %e,
            "association ended"
        ),
    }
    if let Err(AssocError::Protocol(_) | AssocError::Idle(_) | AssocError::EchoOnly(_)) = result {
        peer.abort().await;
    }
}

/// Receives PDUs until the peer releases the association (`Ok`) or it fails.
async fn receive_loop<S: PeerStream>(
    cx: &Context,
    peer: &mut Peer<S>,
    stats: &mut AssocStats,
) -> Result<(), AssocError> {
    let mut assembler = Assembler::new(cx.config.max_identifier_bytes);
    let idle = cx.config.idle_timeout;
    let mut last_work = Instant::now();
    loop {
        match peer.next_pdu().await? {
            Pdu::PData { data } => {
                for pdv in data {
                    let message = assembler.push(pdv).map_err(ProtocolError::from)?;
                    if let Some(message) = message {
                        let echo = message.command.field == command::C_ECHO_RQ;
                        dispatch(cx, peer, stats, message).await?;
                        if !echo {
                            last_work = Instant::now();
                        } else if last_work.elapsed() >= idle {
                            return Err(AssocError::EchoOnly(idle));
                        }
                    }
                }
            }
            Pdu::ReleaseRQ => {
                peer.release().await?;
                return Ok(());
            }
            Pdu::AbortRQ { .. } => return Err(AssocError::PeerAborted),
            other => return Err(ProtocolError::UnexpectedPdu(pdu_name(&other)).into()),
        }
    }
}
