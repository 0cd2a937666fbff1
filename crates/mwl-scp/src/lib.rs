//! mwlbridge's DICOM Modality Worklist SCP: association handling, the DIMSE messages
//! (C-ECHO, MWL C-FIND, C-CANCEL), and MWL matching (PS3.4 C.2.2.2, Annex K) of queries
//! against the worklist store's entries.

pub mod access;
pub mod dimse;
pub mod find_stream;
pub mod metrics;
pub mod mpps;
mod pending;
pub mod query;
pub mod server;
pub mod tls;
pub mod wire_check;

pub use access::AePolicy;
pub use metrics::ScpMetrics;
pub use query::{MwlQuery, QueryError, ResponseCharset};
pub use server::{MWL_FIND, MwlServer, ScpConfig, VERIFICATION};
