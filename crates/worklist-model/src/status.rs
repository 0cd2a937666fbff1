//! The status terms of a scheduled step: what C-FIND sends ([`StepStatus`]), what MPPS
//! reports ([`PerformedStatus`]) and how one maps to the other, and who set a status
//! ([`StatusSetBy`], which decides whether a sync may change it).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Scheduled Procedure Step Status (0040,0020), with the defined terms sent in C-FIND
/// responses.
///
/// MPPS uses its own terms ([`PerformedStatus`]); `IN PROGRESS` maps to
/// [`StepStatus::Started`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum StepStatus {
    /// The step is booked and waiting (`SCHEDULED`); a new entry's status.
    #[default]
    Scheduled,
    /// The modality has started the step (`STARTED`; MPPS `IN PROGRESS`).
    Started,
    /// The step was performed (`COMPLETED`).
    Completed,
    /// The step was cancelled or abandoned (`DISCONTINUED`).
    Discontinued,
}

impl StepStatus {
    /// Every status, in workflow order.
    pub const ALL: [StepStatus; 4] = [
        StepStatus::Scheduled,
        StepStatus::Started,
        StepStatus::Completed,
        StepStatus::Discontinued,
    ];

    /// The DICOM defined term, as sent in (0040,0020).
    pub fn as_dicom(self) -> &'static str {
        match self {
            StepStatus::Scheduled => "SCHEDULED",
            StepStatus::Started => "STARTED",
            StepStatus::Completed => "COMPLETED",
            StepStatus::Discontinued => "DISCONTINUED",
        }
    }

    /// Maps an MPPS Performed Procedure Step Status (0040,0252) term to the step status
    /// (through [`PerformedStatus`], the one place MPPS terms are read).
    pub fn from_mpps(term: &str) -> Option<StepStatus> {
        PerformedStatus::from_dicom(term).map(PerformedStatus::step_status)
    }

    /// Whether consoles see this step in a query that does not ask for a status: the one
    /// definition of "offered" (the SCP's matching asks it, and the store's
    /// `EntryFilter::offered` lists the statuses it admits).
    pub fn offered_by_default(self) -> bool {
        matches!(self, StepStatus::Scheduled | StepStatus::Started)
    }

    /// The statuses [offered by default](Self::offered_by_default), in workflow order.
    pub fn offered() -> impl Iterator<Item = StepStatus> {
        StepStatus::ALL
            .into_iter()
            .filter(|s| s.offered_by_default())
    }
}

impl fmt::Display for StepStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_dicom())
    }
}

/// A string that is not a known [`StepStatus`] or [`StatusSetBy`] term.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown term {0:?}")]
pub struct UnknownTerm(pub String);

impl FromStr for StepStatus {
    type Err = UnknownTerm;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        StepStatus::ALL
            .into_iter()
            .find(|st| st.as_dicom().eq_ignore_ascii_case(t))
            .or_else(|| StepStatus::from_mpps(&t.to_ascii_uppercase()))
            .ok_or_else(|| UnknownTerm(s.to_string()))
    }
}

/// Performed Procedure Step Status (0040,0252): the terms MPPS messages carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PerformedStatus {
    /// `IN PROGRESS`.
    InProgress,
    /// `COMPLETED`.
    Completed,
    /// `DISCONTINUED`.
    Discontinued,
}

impl PerformedStatus {
    /// Every status, in workflow order.
    pub const ALL: [PerformedStatus; 3] = [
        PerformedStatus::InProgress,
        PerformedStatus::Completed,
        PerformedStatus::Discontinued,
    ];

    /// The DICOM defined term.
    pub fn as_dicom(self) -> &'static str {
        match self {
            PerformedStatus::InProgress => "IN PROGRESS",
            PerformedStatus::Completed => "COMPLETED",
            PerformedStatus::Discontinued => "DISCONTINUED",
        }
    }

    /// Parses the defined term (surrounding spaces ignored).
    pub fn from_dicom(term: &str) -> Option<PerformedStatus> {
        let term = term.trim();
        PerformedStatus::ALL
            .into_iter()
            .find(|s| s.as_dicom() == term)
    }

    /// Whether no further change is allowed (COMPLETED or DISCONTINUED).
    pub fn is_final(self) -> bool {
        self != PerformedStatus::InProgress
    }

    /// The scheduled step status a linked worklist entry takes.
    pub fn step_status(self) -> StepStatus {
        match self {
            PerformedStatus::InProgress => StepStatus::Started,
            PerformedStatus::Completed => StepStatus::Completed,
            PerformedStatus::Discontinued => StepStatus::Discontinued,
        }
    }
}

/// Who set an entry's current status. A status not set by a sync is never reset by one
/// ([`StatusSetBy::sync_may_change`]: the store's reconcile asks it before touching a
/// status, and MPPS and administrators record themselves here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusSetBy {
    /// The data source's sync (Calpendo's booking status, or a vanished booking).
    Sync,
    /// A Modality Performed Procedure Step message from a console.
    Mpps,
    /// An administrator's override.
    Admin,
}

impl StatusSetBy {
    /// The stored name: `sync`, `mpps` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusSetBy::Sync => "sync",
            StatusSetBy::Mpps => "mpps",
            StatusSetBy::Admin => "admin",
        }
    }

    /// Whether a sync may change a status set this way.
    pub fn sync_may_change(self) -> bool {
        self == StatusSetBy::Sync
    }
}

impl fmt::Display for StatusSetBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StatusSetBy {
    type Err = UnknownTerm;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sync" => Ok(StatusSetBy::Sync),
            "mpps" => Ok(StatusSetBy::Mpps),
            "admin" => Ok(StatusSetBy::Admin),
            other => Err(UnknownTerm(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mpps_terms_map_through_performed_status() {
        assert_eq!(
            StepStatus::from_mpps(" IN PROGRESS "),
            Some(StepStatus::Started)
        );
        assert_eq!(
            StepStatus::from_mpps("COMPLETED"),
            Some(StepStatus::Completed)
        );
        assert_eq!(
            StepStatus::from_mpps("DISCONTINUED"),
            Some(StepStatus::Discontinued)
        );
        assert_eq!(StepStatus::from_mpps("STARTED"), None);
        assert_eq!(StepStatus::from_mpps("in progress"), None);
        assert_eq!("in progress".parse(), Ok(StepStatus::Started));
        assert_eq!("Scheduled".parse(), Ok(StepStatus::Scheduled));
        assert!("bogus".parse::<StepStatus>().is_err());
    }

    #[test]
    fn offered_by_default_is_scheduled_and_started() {
        assert_eq!(
            StepStatus::offered().collect::<Vec<_>>(),
            [StepStatus::Scheduled, StepStatus::Started]
        );
    }
}
