//! `mwlbridge worklist`: the stored worklist as a table or JSON, for the site admin.

use std::path::Path;

use anyhow::{Context, anyhow};
use jiff::Timestamp;
use jiff::civil::Date;
use worklist_store::{EntryFilter, StoredEntry, format_da};

use crate::failure::Failure;
use crate::import_pylantir;
use crate::load::{config_only, open_store, site_zone, zones_of};

/// Prints the stored worklist of `date` (see [`parse_day`]), as a table or JSON.
pub async fn run(path: &Path, date: &str, json: bool) -> Result<(), Failure> {
    // The worklist view needs only the generic settings: a source whose credentials are
    // not in this shell's environment must not stop an admin from looking.
    let config = config_only(path)?;
    let zones = zones_of(&config).map_err(|p| Failure::Usage(anyhow!("{p}")))?;
    let zone = site_zone(&config, &zones)?;
    let today = Timestamp::now().to_zoned_datetime(zone).date();
    let day = parse_day(date, today).map_err(|e| Failure::Usage(e.into()))?;
    if !config.store.path.exists() {
        return Err(Failure::Runtime(anyhow!(
            "no worklist database at {} yet; run `mwlbridge sync --once --config {}` first",
            config.store.path.display(),
            config.file.display()
        )));
    }
    let store = open_store(&config)?;
    if let Some(text) = import_pylantir::pending_text(&config, Some(&store)) {
        eprintln!("warning: {text}");
    }
    let filter = filter(day);
    let entries = store
        .run(move |s| s.list(&filter))
        .await
        .context("reading the worklist")
        .map_err(Failure::Runtime)?;
    if json {
        let text = serde_json::to_string_pretty(&entries)
            .context("writing JSON")
            .map_err(Failure::Runtime)?;
        println!("{text}");
    } else if entries.is_empty() {
        println!("{}", empty_message(day));
    } else {
        print!("{}", table(&entries));
    }
    Ok(())
}

/// Which days to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DaySelection {
    /// One local day.
    Day(Date),
    /// Everything stored.
    All,
}

/// A `--date` that is none of the words or dates [`parse_day`] knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--date {0:?}: expected today, tomorrow, yesterday, all or YYYYMMDD")]
pub struct BadDay(pub String);

/// Parses `today`, `tomorrow`, `yesterday`, `all` or `YYYYMMDD` (also `YYYY-MM-DD`).
pub fn parse_day(arg: &str, today: Date) -> Result<DaySelection, BadDay> {
    let bad = || BadDay(arg.to_string());
    match arg.trim().to_ascii_lowercase().as_str() {
        "today" => Ok(DaySelection::Day(today)),
        "tomorrow" => today.tomorrow().map(DaySelection::Day).map_err(|_| bad()),
        "yesterday" => today.yesterday().map(DaySelection::Day).map_err(|_| bad()),
        "all" => Ok(DaySelection::All),
        other => worklist_store::parse_da(&other.replace('-', ""))
            .map(DaySelection::Day)
            .ok_or_else(bad),
    }
}

/// The store filter of a selection.
pub fn filter(day: DaySelection) -> EntryFilter {
    match day {
        DaySelection::Day(d) => EntryFilter {
            from_date: Some(d),
            to_date: Some(d),
            ..Default::default()
        },
        DaySelection::All => EntryFilter::default(),
    }
}

/// A fixed-width table, one line per entry.
pub fn table(entries: &[StoredEntry]) -> String {
    let header = [
        "START",
        "STATION AE",
        "MOD",
        "PATIENT ID",
        "PATIENT NAME",
        "ACCESSION",
        "DESCRIPTION",
        "STATUS",
        "SET BY",
        "SOURCE/ID",
    ];
    let mut rows: Vec<[String; 10]> = Vec::with_capacity(entries.len());
    for s in entries {
        let e = &s.entry;
        rows.push([
            e.start.strftime("%Y-%m-%d %H:%M").to_string(),
            e.station_ae_title.clone().unwrap_or_default(),
            e.modality.clone().unwrap_or_default(),
            e.patient_id.clone(),
            e.patient_name.clone().unwrap_or_default(),
            e.accession_number.clone(),
            e.display_description().unwrap_or_default().to_string(),
            e.status.to_string(),
            format!(
                "{} {}",
                s.meta.status_set_by,
                s.meta.status_changed_at.strftime("%Y-%m-%dT%H:%MZ")
            ),
            format!("{}/{}", e.source, e.source_record_id),
        ]);
    }
    let mut widths = header.map(|h| h.chars().count());
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut out = String::new();
        for (i, (c, w)) in cells.iter().zip(widths.iter()).enumerate() {
            out.push_str(c);
            if i + 1 < cells.len() {
                out.push_str(&" ".repeat(w - c.chars().count() + 2));
            }
        }
        out.push('\n');
        out
    };
    let mut out = line(header.to_vec());
    for r in &rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

/// A short line for an empty result.
pub fn empty_message(day: DaySelection) -> String {
    match day {
        DaySelection::Day(d) => format!("no worklist entries on {}", format_da(d)),
        DaySelection::All => "the worklist is empty".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn days() {
        let today = date(2026, 11, 26);
        assert_eq!(parse_day("today", today), Ok(DaySelection::Day(today)));
        assert_eq!(
            parse_day("tomorrow", today),
            Ok(DaySelection::Day(date(2026, 11, 27)))
        );
        assert_eq!(
            parse_day("20261231", today),
            Ok(DaySelection::Day(date(2026, 12, 31)))
        );
        assert_eq!(
            parse_day("2026-12-31", today),
            Ok(DaySelection::Day(date(2026, 12, 31)))
        );
        assert_eq!(parse_day("all", today), Ok(DaySelection::All));
        assert!(parse_day("20261332", today).is_err());
        assert!(parse_day("soon", today).is_err());
    }
}
