//! mwlbridge's fuzz harnesses (see `harness.rs`), as a library for the fuzz targets.

#[path = "harness.rs"]
mod harness;

pub use harness::*;
