//! Reads a parsed config document (TOML or JSON, as a [`serde_json::Value`]) and reports
//! every problem at once, each with where it is, in one wording for the binary and every
//! data source.
//!
//! - [`problem`]: [`Location`] (a key path or an environment variable), [`Problem`] (a
//!   location and what is wrong) and [`Report`], which collects problems and, beside
//!   them, warnings (notes that do not stop the config from being used).
//! - [`table`]: [`Table`], a reader over one table of the document: typed getters that
//!   accept the forms admins write (Pylantir's `"True"` for `true`, ...), and the check
//!   that reports every key nobody read as unknown, with a "did you mean" suggestion.
//!
//! Life of a config check: the binary opens the document's root as a [`Table`] and reads
//! its sections with the getters; each getter that finds a value of the wrong kind or out
//! of range adds a [`Problem`] at the key's path to the [`Report`] and returns `None`, so
//! the caller falls back to the default and carries on. A data source reads its own
//! settings the same way from a table rooted at `""`; the binary moves those problems
//! under the source's path ([`Problem::within`]). Environment variables a source reads
//! are reported at [`Location::Env`]. At the end the caller turns the report into the
//! value or the list of problems ([`Report::finish`]).

pub mod problem;
pub mod table;

pub use problem::{Location, Problem, Report};
pub use table::{Table, kind, suggestion};
