//! The reader the binary shares with every source (the `config-reader` crate): a table
//! reader that collects every problem with its location, instead of stopping at the first.

pub use ::config_reader::{Location, Problem, Report, Table};
