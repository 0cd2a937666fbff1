//! The replay's answer to an A-ASSOCIATE-RQ: MWL FIND in Implicit VR Little Endian is
//! accepted, every other presentation context rejected.

use dicom_ul::pdu::{
    AssociationAC, AssociationRQ, PresentationContextResult, PresentationContextResultReason,
    UserVariableItem,
};

use crate::client::{IMPLICIT_LE, MWL_FIND};

/// The A-ASSOCIATE-AC for `rq`, announcing `max_pdu` as the largest PDU we take.
pub fn accept(rq: &AssociationRQ, max_pdu: u32) -> AssociationAC {
    let presentation_contexts = rq
        .presentation_contexts
        .iter()
        .map(|pc| {
            let reason = if trim(&pc.abstract_syntax) != MWL_FIND {
                PresentationContextResultReason::AbstractSyntaxNotSupported
            } else if pc.transfer_syntaxes.iter().any(|t| trim(t) == IMPLICIT_LE) {
                PresentationContextResultReason::Acceptance
            } else {
                PresentationContextResultReason::TransferSyntaxesNotSupported
            };
            PresentationContextResult {
                id: pc.id,
                reason,
                transfer_syntax: IMPLICIT_LE.to_string(),
            }
        })
        .collect();
    AssociationAC {
        protocol_version: rq.protocol_version,
        calling_ae_title: rq.calling_ae_title.clone(),
        called_ae_title: rq.called_ae_title.clone(),
        application_context_name: rq.application_context_name.clone(),
        presentation_contexts,
        user_variables: vec![
            UserVariableItem::MaxLength(max_pdu),
            UserVariableItem::ImplementationClassUID(
                dicom_ul::IMPLEMENTATION_CLASS_UID.to_string(),
            ),
            UserVariableItem::ImplementationVersionName("MWL-REPLAY".to_string()),
        ],
    }
}

/// The largest PDU the requester takes (0: no limit, as PS3.8 D.1 says), if it said.
pub fn requester_max_pdu(rq: &AssociationRQ) -> Option<u32> {
    rq.user_variables.iter().find_map(|v| match v {
        UserVariableItem::MaxLength(n) => Some(*n),
        _ => None,
    })
}

/// The ID of the accepted MWL FIND context in `ac`.
pub fn accepted_context(ac: &AssociationAC) -> Option<u8> {
    ac.presentation_contexts
        .iter()
        .find(|pc| pc.reason == PresentationContextResultReason::Acceptance)
        .map(|pc| pc.id)
}

fn trim(uid: &str) -> &str {
    uid.trim_end_matches(['\0', ' '])
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_ul::pdu::PresentationContextProposed;

    #[test]
    fn accepts_mwl_find_in_implicit_le_only() {
        let proposed = |id, abs: &str, ts: &str| PresentationContextProposed {
            id,
            abstract_syntax: format!("{abs}\0"),
            transfer_syntaxes: vec![ts.to_string()],
        };
        let rq = AssociationRQ {
            protocol_version: 1,
            calling_ae_title: "LOADGEN".into(),
            called_ae_title: "MWLBRIDGE".into(),
            application_context_name: "1.2.840.10008.3.1.1.1".into(),
            presentation_contexts: vec![
                proposed(1, "1.2.840.10008.1.1", IMPLICIT_LE),
                proposed(3, MWL_FIND, "1.2.840.10008.1.2.1"),
                proposed(5, MWL_FIND, IMPLICIT_LE),
            ],
            user_variables: vec![UserVariableItem::MaxLength(16384)],
        };
        let ac = accept(&rq, 65536);
        let reasons: Vec<_> = ac
            .presentation_contexts
            .iter()
            .map(|p| p.reason.clone())
            .collect();
        assert_eq!(
            reasons,
            vec![
                PresentationContextResultReason::AbstractSyntaxNotSupported,
                PresentationContextResultReason::TransferSyntaxesNotSupported,
                PresentationContextResultReason::Acceptance,
            ]
        );
        assert_eq!(accepted_context(&ac), Some(5));
        assert_eq!(requester_max_pdu(&rq), Some(16384));
        assert_eq!(ac.called_ae_title, "MWLBRIDGE");
    }
}
