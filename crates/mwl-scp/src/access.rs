//! Who may open an association: our called AE title and the calling AE allow-list.

use dicom_ul::association::server::AccessControl;
use dicom_ul::pdu::{AssociationRJServiceUserReason, UserIdentity};

/// The association acceptance policy.
#[derive(Debug, Clone)]
pub struct AePolicy {
    /// Accept any called AE title instead of only ours.
    pub accept_any_called_ae: bool,
    /// Calling AE titles allowed; empty allows every caller.
    pub allowed_calling_aets: Vec<String>,
}

impl AePolicy {
    /// Whether a calling AE title may connect.
    pub fn calling_allowed(&self, calling: &str) -> bool {
        self.allowed_calling_aets.is_empty()
            || self
                .allowed_calling_aets
                .iter()
                .any(|a| a.trim() == calling.trim())
    }
}

impl AccessControl for AePolicy {
    fn check_access(
        &self,
        this_ae_title: &str,
        calling_ae_title: &str,
        called_ae_title: &str,
        _user_identity: Option<&UserIdentity>,
    ) -> Result<(), AssociationRJServiceUserReason> {
        // AE titles name devices, not subjects: they are logged, as the admin needs them
        // when a console cannot connect.
        if !self.accept_any_called_ae && this_ae_title.trim() != called_ae_title.trim() {
            tracing::info!(
                called_ae = called_ae_title.trim(),
                calling_ae = calling_ae_title.trim(),
                our_ae = this_ae_title.trim(),
                "association rejected: the called AE title is not ours (the console must \
                 call our AE title, server.ae_title, or set server.accept_any_called_ae)"
            );
            return Err(AssociationRJServiceUserReason::CalledAETitleNotRecognized);
        }
        if !self.calling_allowed(calling_ae_title) {
            tracing::info!(
                called_ae = called_ae_title.trim(),
                calling_ae = calling_ae_title.trim(),
                "association rejected: the calling AE title is not in \
                 server.allowed_calling_aets"
            );
            return Err(AssociationRJServiceUserReason::CallingAETitleNotRecognized);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn called_and_calling_rules() {
        let strict = AePolicy {
            accept_any_called_ae: false,
            allowed_calling_aets: vec!["MRI_3T".into()],
        };
        assert!(
            strict
                .check_access("MWLBRIDGE", "MRI_3T", "MWLBRIDGE", None)
                .is_ok()
        );
        assert_eq!(
            strict.check_access("MWLBRIDGE", "MRI_3T", "OTHER", None),
            Err(AssociationRJServiceUserReason::CalledAETitleNotRecognized)
        );
        assert_eq!(
            strict.check_access("MWLBRIDGE", "CT_1", "MWLBRIDGE", None),
            Err(AssociationRJServiceUserReason::CallingAETitleNotRecognized)
        );
        let open = AePolicy {
            accept_any_called_ae: true,
            allowed_calling_aets: vec![],
        };
        assert!(
            open.check_access("MWLBRIDGE", "ANY", "WHATEVER", None)
                .is_ok()
        );
    }
}
