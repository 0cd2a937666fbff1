//! Benchmarks of mwlbridge, run by `scripts/bench-sync.sh` (sync against a slow Calpendo)
//! and `scripts/bench.sh` (query load against mwlbridge, DCMTK `wlmscpfs` and Pylantir).
//! They drive the real binaries.
//!
//! - [`client`]: a small async MWL C-FIND client (dicom-ul) that counts responses
//!   without decoding the identifiers, so that the load generator stays cheap.
//! - [`queries`]: the named queries of the load generator.
//! - [`stats`]: latency percentiles and the process's own CPU time.
//! - [`procfs`]: CPU time and memory of other processes, from `/proc`.

pub mod client;
pub mod procfs;
pub mod queries;
pub mod stats;
