//! The Verification service (C-ECHO): a success response, counted.

use crate::connection::{AssocError, Peer, PeerStream};
use crate::context::{AssocStats, Context};
use crate::dimse::{self, Message, command, status};

/// Answers a C-ECHO-RQ with success.
pub(crate) async fn handle<S: PeerStream>(
    cx: &Context,
    peer: &mut Peer<S>,
    stats: &mut AssocStats,
    message: &Message,
    sop_class: &str,
) -> Result<(), AssocError> {
    stats.echoes += 1;
    cx.metrics.echo();
    let head = dimse::ResponseHead {
        field: command::C_ECHO_RSP,
        sop_class,
        responding_to: message.command.id(),
        has_data_set: false,
        status: status::SUCCESS,
    };
    let rsp = dimse::response_command(head, vec![]);
    peer.send(message.context_id, &rsp).await
}
