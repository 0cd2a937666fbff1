//! `mwlbridge import-pylantir`: Pylantir's worklist rows (`worklist_items`) into the
//! worklist, once each, and the warning every command gives while some are left.
//!
//! Which entry a row becomes ([`plan`]):
//! - a row of a configured source (its `data_source` is the source's name, or Pylantir's
//!   name for an unnamed source or for the plugin, when that points at one configured
//!   source) is that source's entry: under its booking id when Pylantir kept it
//!   (`source_record_id` of a Calpendo row), so the next sync updates it; otherwise under
//!   a provisional id that the source's first sync bringing the same Patient ID on the
//!   same day takes over (worklist-store's `pylantir` module);
//! - any other row (added through Pylantir's API, or from a source no longer configured)
//!   is a manual entry `pylantir-{row id}`, which no sync touches.
//!
//! Statuses: `SCHEDULED` stays scheduled (a sync may change it); `IN_PROGRESS`,
//! `COMPLETED` and `DISCONTINUED`, which Pylantir's MPPS wrote, become STARTED, COMPLETED
//! and DISCONTINUED set by MPPS, so no sync offers the step again.

use std::path::Path;

use anyhow::{Context, anyhow};
use jiff::Timestamp;
use jiff::civil::DateTime;
use worklist_store::pylantir::{PROVISIONAL_PREFIX, PylantirRow, pending_at, read_rows};
use worklist_store::validate::{SH_MAX, coding_scheme_problem, uid_problem};
use worklist_store::{
    DEFAULT_PROTOCOL_CODING_SCHEME, ImportItem, MANUAL_SOURCE, StatusSetBy, StepStatus, Store,
    WorklistEntry,
};

use crate::config::{Config, SourceConfig, SourceKind};
use crate::failure::Failure;
use crate::load::{config_only, open_store};

/// Longest LO value (Study Description, protocol, ...).
const LO_MAX: usize = 64;

/// Imports the rows of Pylantir's `worklist_items` in `from` (default: the configured
/// database itself) and prints what became of them.
pub async fn run(path: &Path, from: Option<&Path>) -> Result<(), Failure> {
    let config = config_only(path)?;
    let from = from.unwrap_or(&config.store.path).to_path_buf();
    if !from.exists() {
        return Err(Failure::Usage(anyhow!(
            "no Pylantir database at {} (give it with --from, or set db_path / store.path)",
            from.display()
        )));
    }
    let rows = read_rows(&from)
        .with_context(|| format!("reading Pylantir's worklist_items in {}", from.display()))
        .map_err(Failure::Runtime)?
        .ok_or_else(|| {
            Failure::Usage(anyhow!(
                "{} has no table worklist_items: it is not a Pylantir database",
                from.display()
            ))
        })?;
    let planned = plan(&rows, &config.sources);
    let store = open_store(&config)?;
    let items = planned.iter().map(|p| p.item.clone()).collect();
    let counts = store
        .run(move |s| s.import_pylantir(items, Timestamp::now()))
        .await
        .context("importing")
        .map_err(Failure::Runtime)?;
    println!(
        "{} rows of {}: {} imported, {} already in the worklist (kept as they are), \
         {} skipped, {} imported before",
        rows.len(),
        from.display(),
        counts.imported,
        counts.present,
        counts.skipped,
        counts.already_imported
    );
    if counts.imported > 0 {
        for (kind, n) in summary(&planned) {
            println!("  {n} {kind}");
        }
    }
    if counts.skipped > 0 {
        // Row ids and reasons only: the rows hold subject names and IDs.
        for p in &planned {
            if let Some(why) = &p.skipped {
                println!("  row {} skipped: {why}", p.row_id);
            }
        }
    }
    Ok(())
}

/// Logs, at WARN, that Pylantir rows wait for an import (`serve`, `sync`).
pub fn log_pending(config: &Config, store: &Store) {
    if let Some(text) = pending_text(config, Some(store)) {
        tracing::warn!("{text}");
    }
}

/// What to say while rows of Pylantir's table in the configured database wait for an
/// import; `store` when it is open, else the file is read without being changed
/// (`check-config`, `worklist`).
pub fn pending_text(config: &Config, store: Option<&Store>) -> Option<String> {
    let path = &config.store.path;
    let n = match store {
        Some(s) => s.pylantir_pending(),
        None if path.exists() => pending_at(path),
        None => return None,
    };
    match n {
        Ok(0) => None,
        Ok(n) => Some(format!(
            "{} holds {n} Pylantir worklist rows (worklist_items) that are not in the \
             worklist; consoles do not see them until you run \
             `mwlbridge import-pylantir --config {}`",
            path.display(),
            config.file.display()
        )),
        Err(e) => {
            tracing::debug!(error = %e, "cannot count Pylantir rows");
            None
        }
    }
}

/// One row's fate.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The Pylantir row id.
    pub row_id: i64,
    /// What the store is asked to do.
    pub item: ImportItem,
    /// Why the row is skipped, if it is.
    pub skipped: Option<SkipReason>,
}

/// Why a row cannot become an entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SkipReason {
    /// No Patient ID.
    #[error("no patient_id")]
    NoPatientId,
    /// No scheduled start date, or none of the forms reads it.
    #[error("scheduled_start_date missing or unreadable")]
    NoDate,
    /// No scheduled start time, or none of the forms reads it.
    #[error("scheduled_start_time missing or unreadable")]
    NoTime,
    /// A status Pylantir does not write.
    #[error(
        "performed_procedure_step_status is not SCHEDULED, IN_PROGRESS, COMPLETED or DISCONTINUED"
    )]
    Status,
    /// A value breaks its DICOM rule (fields named, values not shown).
    #[error("values break their DICOM rules: {0}")]
    Invalid(String),
}

/// What becomes of each row with the configured `sources` (pure).
pub fn plan(rows: &[PylantirRow], sources: &[SourceConfig]) -> Vec<Planned> {
    rows.iter()
        .map(|row| match convert(row, sources) {
            Ok((entry, set_by)) => Planned {
                row_id: row.id,
                item: ImportItem::Entry {
                    row_id: row.id,
                    entry: Box::new(entry),
                    set_by,
                },
                skipped: None,
            },
            Err(why) => Planned {
                row_id: row.id,
                item: ImportItem::Skipped { row_id: row.id },
                skipped: Some(why),
            },
        })
        .collect()
}

/// How many imported entries of each kind `planned` holds.
fn summary(planned: &[Planned]) -> Vec<(String, usize)> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for p in planned {
        let ImportItem::Entry { entry, .. } = &p.item else {
            continue;
        };
        let kind = if entry.source == MANUAL_SOURCE {
            "manual entries (no sync touches them)".to_string()
        } else if entry.source_record_id.starts_with(PROVISIONAL_PREFIX) {
            format!(
                "entries of source {:?}, taken over by its first sync",
                entry.source
            )
        } else {
            format!(
                "entries of source {:?}, linked to their records",
                entry.source
            )
        };
        match out.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => out.push((kind, 1)),
        }
    }
    out
}

/// The configured source a row came from, by Pylantir's `data_source`.
fn source_of<'a>(
    data_source: Option<&str>,
    sources: &'a [SourceConfig],
) -> Option<&'a SourceConfig> {
    let d = data_source?.trim();
    if let Some(s) = sources.iter().find(|s| s.name == d) {
        return Some(s);
    }
    let only = |pick: &dyn Fn(&SourceConfig) -> bool| {
        let mut it = sources.iter().filter(|s| pick(s));
        match (it.next(), it.next()) {
            (Some(s), None) => Some(s),
            _ => None,
        }
    };
    match d {
        // Pylantir's name for a source the config left unnamed.
        "unknown" => only(&|s| !s.named),
        // The plugins' own names, which older Pylantir versions stored.
        "Calpendo" => only(&|s| s.kind == SourceKind::Calpendo),
        "REDCap" => only(&|s| matches!(s.kind, SourceKind::Redcap | SourceKind::RedcapConcussion)),
        _ => None,
    }
}

/// A column's text, trimmed; `None` when blank.
fn text(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// The row as an entry, with who its status counts as set by.
fn convert(
    row: &PylantirRow,
    sources: &[SourceConfig],
) -> Result<(WorklistEntry, StatusSetBy), SkipReason> {
    let patient_id = text(&row.patient_id).ok_or(SkipReason::NoPatientId)?;
    let date = text(&row.scheduled_start_date)
        .and_then(redcap_source::values::parse_date)
        .ok_or(SkipReason::NoDate)?;
    let time = text(&row.scheduled_start_time)
        .and_then(redcap_source::values::parse_time)
        .ok_or(SkipReason::NoTime)?;
    let status = match text(&row.performed_procedure_step_status)
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        None | Some("SCHEDULED") => StepStatus::Scheduled,
        Some("IN_PROGRESS" | "IN PROGRESS" | "STARTED") => StepStatus::Started,
        Some("COMPLETED") => StepStatus::Completed,
        Some("DISCONTINUED") => StepStatus::Discontinued,
        Some(_) => return Err(SkipReason::Status),
    };
    let (source, record_id, set_by_scheduled) = match source_of(text(&row.data_source), sources) {
        Some(s) => {
            let record = match (s.kind, text(&row.source_record_id)) {
                (SourceKind::Calpendo, Some(booking)) => booking.to_string(),
                _ => format!("{PROVISIONAL_PREFIX}{}", row.id),
            };
            (s.name.clone(), record, StatusSetBy::Sync)
        }
        None => (
            MANUAL_SOURCE.to_string(),
            format!("pylantir-{}", row.id),
            StatusSetBy::Admin,
        ),
    };
    let set_by = if status == StepStatus::Scheduled {
        set_by_scheduled
    } else {
        StatusSetBy::Mpps
    };
    let mut e = WorklistEntry::new(
        source,
        record_id,
        patient_id,
        DateTime::from_parts(date, time),
    );
    e.status = status;
    fill_values(&mut e, row);
    let problems = e.problems();
    if !problems.is_empty() {
        let fields: Vec<&str> = problems.iter().map(|(f, _)| *f).collect();
        return Err(SkipReason::Invalid(fields.join(", ")));
    }
    Ok((e, set_by))
}

/// The row's other columns, each cleaned as a source's value would be.
fn fill_values(e: &mut WorklistEntry, row: &PylantirRow) {
    use calpendo_source::mapping::{clean_ae, clean_code, clean_text, person_name};
    let text = |v: &Option<String>, max: usize| v.as_deref().and_then(|v| clean_text(v, max));
    let name = |v: &Option<String>| v.as_deref().and_then(person_name);
    e.patient_name = name(&row.patient_name);
    e.patient_birth_date = row
        .patient_birth_date
        .as_deref()
        .and_then(redcap_source::values::parse_date);
    e.patient_sex = row
        .patient_sex
        .as_deref()
        .map(|s| s.trim().to_ascii_uppercase())
        .filter(|s| matches!(s.as_str(), "M" | "F" | "O"));
    e.patient_weight_kg = row
        .patient_weight_lb
        .as_deref()
        .and_then(redcap_source::values::pounds_to_kg);
    if let Some(uid) = row.study_instance_uid.as_deref().map(str::trim)
        && uid_problem(uid).is_none()
        && uid.contains('.')
    {
        e.study_instance_uid = uid.to_string();
    }
    if let Some(accession) = text(&row.accession_number, SH_MAX) {
        e.accession_number = accession;
    }
    e.referring_physician_name = name(&row.referring_physician_name);
    // Pylantir sends MR when a row has no modality.
    e.modality = row
        .modality
        .as_deref()
        .and_then(clean_code)
        .or_else(|| Some("MR".into()));
    e.study_description = text(&row.study_description, LO_MAX);
    e.station_ae_title = row.scheduled_station_aetitle.as_deref().and_then(clean_ae);
    e.station_name = text(&row.station_name, SH_MAX);
    e.performing_physician_name = name(&row.performing_physician);
    e.requested_procedure_description = text(&row.procedure_description, LO_MAX);
    // Pylantir sends the protocol as the step description and the protocol code.
    if let Some(protocol) = text(&row.protocol_name, LO_MAX) {
        let scheme = row
            .hisris_coding_designator
            .as_deref()
            .map(str::trim)
            .filter(|v| coding_scheme_problem(v).is_none())
            .unwrap_or(DEFAULT_PROTOCOL_CODING_SCHEME);
        e.set_protocol(&protocol, scheme);
        e.sps_description = Some(protocol);
    }
}

#[cfg(test)]
mod tests;
