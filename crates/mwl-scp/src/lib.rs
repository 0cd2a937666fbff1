//! mwlbridge's DICOM Modality Worklist SCP: association handling, the DIMSE services
//! (C-ECHO, MWL C-FIND with C-CANCEL, MPPS N-CREATE/N-SET), and MWL matching (PS3.4
//! C.2.2.2, Annex K) of queries against the worklist store's entries.
//!
//! # Modules
//!
//! The network side, in the order a connection meets it:
//!
//! - [`server`]: [`MwlServer`], the accept loop and the shutdown grace period;
//!   `accept_errors`: failed accepts (out of descriptors) backed off and logged once per
//!   burst.
//! - `admission`: from a TCP connection to an established association holding a slot:
//!   the slots, the pending-request places (`pending`: a bounded queue, oldest dropped
//!   first), the per-address and per-calling-AE limits (`peer_limits`), the refusal
//!   before negotiation (`refuse`), the association request timer.
//! - [`access`]: who may open an association ([`AePolicy`]: called AE, calling AE list).
//! - [`tls`]: DICOM over TLS settings.
//! - `association`: one association's receive loop and its log line.
//! - `connection`: one association as the handlers see it (next PDU, PDUs set aside,
//!   writes) and why an association ends early (`AssocError`).
//! - `dispatch`: checks a message's presentation context and SOP class and calls its
//!   service's handler; answers unknown operations; drops late C-CANCELs.
//! - `echo`: the Verification service (C-ECHO).
//! - `find`: the MWL C-FIND service: its contract, **C-CANCEL handling**, batching of
//!   pending responses, and `FindOutcome` (complete, cancelled, truncated, refused, store
//!   unavailable), from which the final status, the metrics and the logs come.
//! - [`find_stream`]: where a C-FIND's responses come from: one store snapshot, read,
//!   matched and encoded (or copied, when the store keeps the encoded response) on a few
//!   reader threads, whole or streamed; [`find_stream::scan_matches`] is where a query
//!   meets the store, for the DICOMweb search (`find_stream::search_page`, served by
//!   `admin-http`), and its twin `scan_matches_lent` for C-FIND.
//! - [`mpps`]: the Modality Performed Procedure Step service (N-CREATE, N-SET).
//! - `context`: what every handler is given (settings, store, metrics) and the
//!   association's tally for its log line.
//!
//! Protocol and data, without I/O:
//!
//! - [`dimse`]: DIMSE messages: SOP classes, command fields, statuses, command sets,
//!   assembly from P-DATA fragments, packing into PDUs.
//! - [`identity`]: mwlbridge's implementation class UID and version name (written into
//!   exported files).
//! - [`wire_check`]: a structural check of a received data set before dicom-rs decodes it.
//! - [`read_set`]: dicom-rs reading a received data set, told where its bytes end (so
//!   that reaching the end costs no error backtrace).
//! - [`query`]: MWL query parsing, matching and responses; its module doc lists every
//!   matching rule. **Person-name (PN) wildcard matching** is `PnMatcher` in
//!   `query/matching.rs`.
//!
//! Around them: `config` ([`ScpConfig`], the settings), [`metrics`] ([`ScpMetrics`], the
//! Prometheus series) and `describe` (tag and PDU names, error chains, for logs).
//!
//! # Life of a C-FIND
//!
//! `server` accepts the connection and `admission` waits for its A-ASSOCIATE-RQ, checks
//! it against [`AePolicy`] and gives it a slot. `association` receives its P-DATA, which
//! [`dimse::Assembler`] turns into a [`dimse::Message`]; `dispatch` finds the message's
//! accepted presentation context and calls `find::handle`. There [`wire_check::decode`]
//! reads the identifier, [`MwlQuery::parse`] turns it into a query (or a refusal, A900),
//! [`MwlQuery::candidate_filter`] narrows the store's rows, and [`find_stream`] reads them
//! in one snapshot, keeps those [`MwlQuery::matches`] accepts and encodes each pending
//! response. `find` writes them in batches, looking for a C-CANCEL before each one, then
//! sends the final response its `FindOutcome` decides and records that outcome (metrics,
//! the association's tally, the log). When the peer releases the association,
//! `association` logs one line with what it did.
//!
//! # Who may change a status
//!
//! A scheduled step's status comes from its source (a sync) until a console reports on
//! it through MPPS. `dispatch` hands N-CREATE and N-SET on the MPPS presentation context
//! to [`mpps`], which checks the request ([`mpps::create`]: IN PROGRESS only;
//! [`mpps::set`]: IN PROGRESS, COMPLETED or DISCONTINUED, never after COMPLETED or
//! DISCONTINUED) and reads the terms with `worklist_store::PerformedStatus`. The store
//! applies the change (`Store::mpps_create`, `Store::mpps_modify`): the linked worklist
//! entries take the step status (IN PROGRESS is STARTED), marked as set by MPPS, and no
//! sync resets a status set by MPPS. C-FIND only reads statuses.

mod accept_errors;
pub mod access;
mod admission;
mod association;
mod config;
mod connection;
mod context;
mod describe;
pub mod dimse;
mod dispatch;
mod echo;
mod find;
pub mod find_stream;
pub mod identity;
pub mod metrics;
pub mod mpps;
mod peer_limits;
mod pending;
pub mod query;
pub mod read_set;
pub mod server;
pub mod tls;
pub mod wire_check;

pub use access::AePolicy;
pub use metrics::ScpMetrics;
pub use query::{MwlQuery, QueryError, ResponseCharset};
pub use server::{MWL_FIND, MwlServer, ScpConfig, VERIFICATION};
