//! mwlbridge's source-neutral domain model: the worklist entry and its DICOM attributes,
//! the rules their values obey, the status terms, and the contract between data sources
//! and the store. No I/O and no database: the SQLite store (`worklist-store`), the SCP
//! (`mwl-scp`) and every source build on it.
//!
//! # Modules
//!
//! - [`model`]: [`WorklistEntry`] (one scheduled procedure step) and
//!   [`TEXT_ATTRIBUTES`], the table of its text attributes (column, DICOM tag and keyword,
//!   VR, longest value, accessors) that its value checks and the store's columns iterate;
//!   [`StoredEntry`] with the store's bookkeeping.
//! - [`status`]: the status terms: [`StepStatus`] (C-FIND, and which statuses are offered
//!   by default), [`PerformedStatus`] (MPPS, and how it maps to a step status),
//!   [`StatusSetBy`] (who set a status, and whether a sync may change it).
//! - [`validate`]: one check per DICOM value representation (AE, CS, LO, PN, SH, UI).
//! - [`identifiers`]: the stable StudyInstanceUID and short identifiers derived from an
//!   entry's identity.
//! - [`datetime`]: the DICOM DA and TM forms of local dates and times.
//! - [`pn`]: person-name case folding and normalization, and the patient-name search key.
//! - [`zones`]: [`ZoneDb`], time zones from the bundled IANA database.
//! - [`source`]: the [`DataSource`] trait, [`Fetched`] (a complete window or only what
//!   changed), [`SyncWindow`], [`OnCancel`], [`SiteContext`] (what a source takes from
//!   the site) with [`Dialect`] (whose defaults apply: mwlbridge's or Pylantir's),
//!   [`Secret`] (a credential kept out of logs), and
//!   [`SourceMetrics`], the request counters sources share.
//!
//! # Life of an entry through a sync cycle
//!
//! A source ([`DataSource::fetch_entries`]) builds each booking with
//! [`WorklistEntry::new`], which derives the identifiers consoles require
//! ([`identifiers`]), and fills its values, dates in the site's local time ([`zones`]).
//! The store's reconcile calls [`WorklistEntry::problems`]: each row of
//! [`TEXT_ATTRIBUTES`] checks its value with the [`validate`] check of its VR; an entry
//! with problems is not stored. The store writes the others' columns by the same table,
//! dates as [`datetime`] forms and the patient name's [`pn`] search key beside them.
//!
//! # Who may change a status
//!
//! A step's status ([`StepStatus`]) is set by its source's sync, by MPPS (a
//! [`PerformedStatus`] mapped by [`PerformedStatus::step_status`], the one place MPPS terms
//! are read) or by an administrator, and the store records which ([`StatusSetBy`]). The
//! rule that protects MPPS and administrator statuses is
//! [`StatusSetBy::sync_may_change`], asked by the store's reconcile before it touches a
//! status; which statuses consoles see by default is [`StepStatus::offered_by_default`].

pub mod datetime;
pub mod fit;
pub mod identifiers;
pub mod model;
pub mod pn;
pub mod source;
pub mod status;
pub mod tidy;
pub mod validate;
pub mod zones;

pub use datetime::{format_da, format_tm, parse_da, parse_tm};
pub use model::{
    Allowed, DEFAULT_PROTOCOL_CODING_SCHEME, EntryMeta, Presence, StoredEntry, TEXT_ATTRIBUTES,
    TextAttribute, WorklistEntry,
};
pub use source::{
    DataSource, Dialect, Fetched, KnownStation, OnCancel, RequestLabels, Secret, SiteContext,
    SourceError, SourceMetrics, SyncWindow,
};
pub use status::{PerformedStatus, StatusSetBy, StepStatus, UnknownTerm};
pub use zones::{DEFAULT_TIMEZONE, ZoneDb, ZoneError};
