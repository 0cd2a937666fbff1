//! DIMSE dispatch: checks that a message's presentation context was accepted and names
//! the SOP class it was negotiated for, then hands the message to its service's handler
//! (one per service, as DCMTK's activity manager has). What no service handles is
//! answered here: an unknown operation (0211), and a C-CANCEL that comes after its query
//! ended (ignored, as PS3.7 says).

use dicom_encoding::{TransferSyntax, TransferSyntaxIndex};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use crate::connection::{AssocError, Peer, PeerStream, ProtocolError};
use crate::context::{AssocStats, Context};
use crate::dimse::{self, Message, command, sop_class, status};
use crate::{echo, find, mpps};

/// Hands one complete DIMSE message to its service's handler.
pub(crate) async fn dispatch<S: PeerStream>(
    cx: &Context,
    peer: &mut Peer<S>,
    stats: &mut AssocStats,
    message: Message,
) -> Result<(), AssocError> {
    let Some((abstract_syntax, transfer_syntax)) = peer.accepted_context(message.context_id) else {
        return Err(ProtocolError::ContextNotAccepted(message.context_id).into());
    };
    let cmd = &message.command;
    if let Some(asked) = &cmd.affected_sop_class
        && *asked != abstract_syntax
        && cmd.field != command::C_CANCEL_RQ
    {
        // PS3.7 9.1: the SOP class must be the presentation context's.
        stats.failed += 1;
        let head = dimse::ResponseHead {
            field: command::response_to(cmd.field),
            sop_class: asked,
            responding_to: cmd.id(),
            has_data_set: false,
            status: status::SOP_CLASS_NOT_SUPPORTED,
        };
        let comment = "SOP class differs from the presentation context's";
        let rsp = dimse::response_command(head, vec![dimse::error_comment(comment)]);
        return peer.send(message.context_id, &rsp).await;
    }
    let sop_class = abstract_syntax.as_str();
    match cmd.field {
        command::C_ECHO_RQ => echo::handle(cx, peer, stats, &message, sop_class).await,
        command::C_FIND_RQ => {
            let ts = transfer_syntax_of(&transfer_syntax)?;
            find::handle(cx, peer, stats, &message, sop_class, ts).await
        }
        command::N_CREATE_RQ | command::N_SET_RQ if sop_class == sop_class::MPPS => {
            let ts = transfer_syntax_of(&transfer_syntax)?;
            mpps::handle(cx, peer, stats, &message, ts).await
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
            let head = dimse::ResponseHead {
                field: command::response_to(other),
                sop_class,
                responding_to: cmd.id(),
                has_data_set: false,
                status: status::UNRECOGNIZED_OPERATION,
            };
            let rsp = dimse::response_command(head, vec![]);
            peer.send(message.context_id, &rsp).await
        }
    }
}

/// The accepted transfer syntax `uid`, in which the message's data set is encoded.
fn transfer_syntax_of(uid: &str) -> Result<&'static TransferSyntax, AssocError> {
    TransferSyntaxRegistry
        .get(uid)
        .ok_or_else(|| ProtocolError::UnknownTransferSyntax(uid.to_string()).into())
}
