//! The Calpendo data source of mwlbridge.
//!
//! Calpendo is a booking system for MRI/EEG research centres. This crate lists the
//! bookings of a sync window, reads each booking's details (and, for MRI scans, the
//! operator) with a bounded number of requests in flight, filters them by resource-name
//! prefix and status, and maps them to source-neutral [`worklist_store::WorklistEntry`]s.
//!
//! - [`config`]: the source's settings ([`CalpendoConfig`], [`parse_config`]), accepting
//!   Pylantir's Calpendo configuration as is.
//! - [`query`]: the URLs of the list, detail and operator requests.
//! - [`booking`]: reading the two booking shapes and the two operator shapes.
//! - [`time`]: Calpendo's naive display times and ISO instants to site-local time.
//! - [`mapping`]: booking → worklist entry (field mapping, defaults, DICOM clean-up).
//! - [`source`]: [`CalpendoSource`], the [`worklist_store::DataSource`] implementation.

pub mod booking;
pub mod config;
pub mod mapping;
pub mod query;
pub mod source;
pub mod time;

pub use booking::{Booking, ListedBooking};
pub use config::{
    CalpendoConfig, ConfigProblem, DailyWindow, Extract, ExtractOutput, FieldMapping, FieldRule,
    PrefixMap, Secret, Target, WindowMode, parse_config,
};
pub use mapping::{SkipReason, map_booking, map_status};
pub use source::CalpendoSource;
