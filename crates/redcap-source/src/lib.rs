//! The REDCap data source of mwlbridge, matching Pylantir 0.4.6's `redcap` and
//! `redcap_concussion` plugins (`data_sources/redcap_plugin.py`).
//!
//! REDCap holds the CPIP study's subjects: one record per subject with its baseline
//! fields, and one instance of the repeating `mri` instrument per MRI visit. This crate
//! exports them over REDCap's form API and maps each visit to a source-neutral
//! [`worklist_store::WorklistEntry`].
//!
//! - [`config`]: the settings ([`RedcapConfig`], [`parse_settings`], [`RedcapKind`]),
//!   accepting Pylantir's configuration as is; [`config::keys`] defines each key once
//!   (name, default, doc, read) and gives [`docs_table`]; [`config::field_mapping`] reads
//!   `{redcap_field: worklist_column}`.
//! - [`source`]: [`RedcapSource`], the [`worklist_store::DataSource`]: the window,
//!   complete and incremental cycles, the cycle's deadline.
//! - `client`: POSTing API forms, retries with back-off, request counters.
//! - [`error`]: how a request fails: retried or not, and the typed
//!   [`worklist_store::SourceError`] it ends the cycle with.
//! - [`export`]: reading the data dictionary and the flat export, and which fields an
//!   export asks for.
//! - [`shape`]: rows → visits (baseline merged into each `mri` row) → entries
//!   (Pylantir's identifiers, mapped fields, the protocol).
//! - [`template`]: the patient ID and name templates.
//! - [`values`]: REDCap's free-text dates, times, weights and sex codes.
//!
//! Life of a sync cycle: at start-up the binary calls [`parse_settings`] (every key read
//! by its [`config::keys::Key`], then site, protocol, zone, URL and token combined) and
//! builds a [`RedcapSource`]. Each cycle the scheduler asks for the window
//! ([`source::sync_window`]) and calls `fetch`: [`source`] decides whether the cycle is
//! complete or incremental, asks (on a complete cycle) for the data dictionary through
//! `client`, which [`export`] reads, then for the records ([`export::wanted_fields`];
//! `dateRangeBegin` when incremental). [`shape::visits`] merges each record's baseline
//! row into its visit rows and [`shape::entry`] builds each visit's entry, its start read
//! by [`values`] and its identifiers rendered by [`template`]. The entries in the window
//! are returned as `Fetched::Complete` or `Fetched::Changed`; once the store holds them
//! the scheduler calls `cycle_committed`, which the next cycle's choice builds on. A
//! failed request ends the cycle with an [`error`]-typed `SourceError` and the store is
//! left unchanged.

mod client;
pub mod config;
pub mod error;
pub mod export;
pub mod shape;
pub mod source;
pub mod template;
pub mod values;

pub use config::{
    FieldMapping, Problem, RedcapConfig, RedcapKind, Secret, SiteContext, Target, docs_table,
    parse_settings,
};
pub use shape::{Protocol, Visit, protocol};
pub use source::RedcapSource;
