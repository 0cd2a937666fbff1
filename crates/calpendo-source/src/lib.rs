//! The Calpendo data source of mwlbridge.
//!
//! Calpendo is a booking system for MRI/EEG research centres. This crate lists the
//! bookings of a sync window with every field the mapping needs in one query (`?paths=`,
//! resource prefixes and statuses filtered on the server) and the window's MRI operators
//! in a second, or, on a server that ignores `paths` (`fetch_mode`), reads each booking's
//! details and operator with a bounded number of requests in flight; it filters them by
//! resource-name prefix and status, and maps them to source-neutral
//! [`worklist_store::WorklistEntry`]s.
//!
//! - [`config`]: the source's settings ([`CalpendoConfig`], [`parse_settings`]), accepting
//!   Pylantir's Calpendo configuration as is; [`config::keys`] defines each key once
//!   (name, default, doc, read).
//! - [`window`]: which bookings a cycle covers ([`WindowMode`], [`window::sync_window`]).
//! - [`query`]: the URLs of the list, detail and operator requests, and of the bulk
//!   list (`?paths=`, `STARTS_WITH` prefixes) and the window's MRI operators.
//! - [`paths`]: which paths the bulk list asks for (the mapping's), and reading its
//!   path-named answer as bookings and operators.
//! - [`booking`]: reading the two booking shapes and the two operator shapes.
//! - [`time`]: Calpendo's naive display times and ISO instants to site-local time.
//! - [`fields`]: configured field rules ([`Extract::apply`]) and the resource-name prefix
//!   maps ([`PrefixMap::lookup`]) of modality and station AE title.
//! - [`mapping`]: booking → worklist entry: the configured rules, else the defaults
//!   (**the patient ID is the title's text before the first `_`**), DICOM clean-up.
//! - [`source`]: [`CalpendoSource`], the [`worklist_store::DataSource`] implementation:
//!   requests, retries, the detail cache, the cycle's deadline.
//! - [`error`]: how a request fails: retried or not, and the typed cause
//!   ([`worklist_store::source::FetchFailure`], [`worklist_store::source::ConfigFailure`])
//!   a failed request ends the cycle with.
//!
//! Life of a sync cycle: at start-up the binary calls [`parse_settings`] (every key read
//! by its [`config::keys::Key`], then zones, window and credentials combined) and builds a
//! [`CalpendoSource`]. Each cycle the scheduler asks the source for its window
//! ([`window::sync_window`]) and calls `fetch_entries`: [`source`] requests the booking
//! list at the URL [`query`] builds with the [`paths`] of the mapping; answered with them,
//! each item is read as a booking, the window's MRI operators are fetched in one query,
//! and the bookings go on to the filters and mapping below. Answered without them (an
//! older server), the details path reads each item with [`booking`] (its times through
//! [`time`]), fetches the details of bookings not fresh in the detail cache, keeps those
//! whose resource and status are selected, and hands each to [`mapping::map_booking`],
//! which applies the [`fields`] rules and the defaults (title → PatientID) and returns the
//! entry. A failed request ends the cycle with a [`worklist_store::SourceError`] and the
//! store is left unchanged.

pub mod booking;
pub mod config;
pub mod error;
pub mod fields;
pub mod mapping;
pub mod paths;
pub mod query;
pub mod source;
pub mod time;
pub mod window;

pub use booking::{Booking, ListedBooking};
pub use config::{
    CalpendoConfig, ConfigProblem, Dialect, FetchMode, Secret, SiteContext, parse_config,
    parse_settings,
};
pub use fields::{Extract, ExtractOutput, FieldMapping, FieldRule, PrefixMap, Target};
pub use mapping::{SkipReason, map_booking, map_status};
pub use source::CalpendoSource;
pub use window::{DailyWindow, WindowMode};
