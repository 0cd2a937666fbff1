//! Benchmarks of mwlbridge, run by `scripts/bench-sync.sh` (sync against a slow Calpendo)
//! and `scripts/bench.sh` (query load against mwlbridge, DCMTK `wlmscpfs` and Pylantir).
//! They drive the real binaries.
//!
//! - [`client`]: a small async MWL C-FIND client (dicom-ul) that counts responses
//!   without decoding the identifiers, so that the load generator stays cheap.
//! - [`queries`]: the named queries of the load generator; [`query_args`]: their
//!   command-line options, shared by `mwl-loadgen` and `mwl-webload`.
//! - [`stats`]: latency percentiles and the process's own CPU time.
//! - [`procfs`]: CPU time and memory of other processes, from `/proc`.
//! - [`replay`]: the client's ceiling: a server's recorded answers, their file, and the
//!   upper-layer framing `mwl-replay` needs to send them back without work.
//! - [`web`]: the same named queries as DICOMweb searches, for `mwl-webload`.
//!
//! The binaries: `mwl-loadgen` (C-FIND load against any MWL SCP, a JSON or table
//! report; `--record` keeps a server's answers), `mwl-replay` (answers with a recording:
//! the ceiling), `mwl-webload` (the same queries as DICOMweb searches against mwlbridge's
//! admin interface, the same report), `bench-query` (mwlbridge against wlmscpfs and
//! Pylantir; its modules: `runner`
//! runs one size, `report` writes the Markdown, `plot` the gnuplot figure, `results` holds
//! what is measured) and `bench-sync` (sync against a slow fake Calpendo).
//!
//! # Life of a query benchmark
//!
//! `scripts/bench.sh` builds the release binaries and runs `bench-query`. For each size,
//! its `runner` starts the synthetic fake Calpendos, syncs mwlbridge into a fresh
//! database (`mwlbridge sync --once`), exports the same worklist for wlmscpfs and lets
//! Pylantir sync on its own, then starts the servers. In each round it runs `mwl-loadgen`
//! once per server and query: the load generator builds the identifiers of [`queries`],
//! sends them over [`client`] connections and reports [`stats`] (queries/s, latency
//! percentiles, its own CPU), while `bench-query` samples the server's process tree
//! through [`procfs`]. The runs are saved as JSON, pooled over the rounds, and written as
//! the Markdown section of docs/benchmarks.md.

pub mod client;
pub mod procfs;
pub mod queries;
pub mod query_args;
pub mod replay;
pub mod stats;
pub mod web;
