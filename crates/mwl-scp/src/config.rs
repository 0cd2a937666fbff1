//! The SCP's settings ([`ScpConfig`]): one struct instead of a long constructor.

use std::sync::Arc;
use std::time::Duration;

use crate::access::AePolicy;
use crate::query::ResponseCharset;

/// The SCP's settings.
#[derive(Debug, Clone)]
pub struct ScpConfig {
    /// Our AE title.
    pub ae_title: String,
    /// Who may connect.
    pub policy: AePolicy,
    /// Concurrent associations at most; more are rejected (A-ASSOCIATE-RJ, transient).
    pub max_associations: usize,
    /// Concurrent associations from one network address at most.
    pub max_associations_per_peer: usize,
    /// Concurrent associations under one calling AE title at most.
    pub max_associations_per_ae: usize,
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
    /// What an MPPS performed step may grow to, and who may change it.
    pub mpps: MppsPolicy,
}

/// Bounds and authorization of MPPS (docs/security.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MppsPolicy {
    /// A performed step's stored attributes (N-CREATE merged with every N-SET) are at
    /// most this many bytes; a request that would make them larger is refused (0213).
    pub max_stored_bytes: usize,
    /// A performed step takes at most this many N-SETs; more are refused (0213).
    pub max_sets: u32,
    /// Only the calling AE title that created a performed step may N-SET it; another
    /// gets 0124 (not authorized).
    pub same_ae_only: bool,
}

impl Default for MppsPolicy {
    fn default() -> Self {
        MppsPolicy {
            max_stored_bytes: 4 << 20,
            max_sets: 100,
            same_ae_only: true,
        }
    }
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
            max_associations_per_peer: 16,
            max_associations_per_ae: 8,
            idle_timeout: Duration::from_secs(60),
            max_pdu_length: 65_536,
            charset: ResponseCharset::Utf8,
            max_identifier_bytes: 1 << 20,
            max_responses: None,
            station_filter_by_calling_ae: false,
            tls: None,
            mpps: MppsPolicy::default(),
        }
    }
}
