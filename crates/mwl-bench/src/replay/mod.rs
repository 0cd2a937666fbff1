//! The client's ceiling: answers recorded from a real server, replayed without work.
//!
//! `mwl-loadgen --record FILE` runs each query of its mix once against a live server
//! (every PatientID of `--patient-ids` for `patient-id`) over the load generator's own
//! [`client`](crate::client) and keeps, per query identifier, the exact P-DATA-TF PDUs
//! of the answer (pending responses and the final one). `mwl-replay --recording FILE`
//! then accepts the same associations and answers each C-FIND whose identifier it has
//! recorded with those bytes, written as they are: no matching, no encoding. The same
//! load against it measures what the client can absorb, and a server's share of that
//! ceiling is how close it comes.
//!
//! - [`recording`]: the recorded answers and their file format.
//! - [`framing`]: the PDU header, P-DATA-TF's PDV items, and the assembly of a C-FIND
//!   request from them.
//! - [`accept`]: the A-ASSOCIATE-AC for an A-ASSOCIATE-RQ (MWL FIND, Implicit VR LE).
//!
//! The replayed responses carry the MessageIDBeingRespondedTo of the recording
//! (`mwl-loadgen` does not check it), and the presentation context ID the recording
//! server accepted (the replay accepts the same ID, or answers nothing).

pub mod accept;
pub mod framing;
pub mod recording;
