//! `mwlbridge sync --dry-run`: one fetch of every enabled source, mapped and reconciled as
//! a sync would, against a private copy of the database, and what it would change printed
//! on standard output (a table, or JSON with `--json`). The database, its sync runs and
//! the sources' incremental state stay as they were.
//!
//! The output holds subject IDs and names: it goes to the admin's terminal only, never to
//! the log.

use std::path::Path;

use anyhow::{Context, anyhow};
use jiff::Timestamp;
use serde::Serialize;
use worklist_store::{Change, ChangeKind, MASS_CHANGE_REFUSED, Preview, Store, SyncWindow};

use crate::failure::Failure;
use crate::load::load;
use crate::sources;
use crate::tidy::{Said, fetch_tidied};

/// What one source's sync would do.
#[derive(Debug, Serialize)]
struct SourcePreview {
    source: String,
    window: SyncWindow,
    /// `complete` or `changed` (a fetch of changes only discontinues nothing it lacks).
    mode: Option<&'static str>,
    /// The fetch or the store failed: a sync would change nothing.
    error: Option<String>,
    #[serde(flatten)]
    preview: Option<Preview>,
}

/// The whole dry run, as `--json` prints it.
#[derive(Debug, Serialize)]
struct Report<'a> {
    database: &'a Path,
    dry_run: bool,
    sources: Vec<SourcePreview>,
}

/// Runs the dry run for the config at `path`. Fails (exit 1) when a source's fetch fails
/// or its sync would be refused, as `sync --once` would.
pub async fn run(path: &Path, json: bool) -> Result<(), Failure> {
    let loaded = load(path, &sources::process_env)?;
    loaded.log_warnings();
    let database = loaded.config.store.path.clone();
    // The copy holds health data: tempfile makes its directory 0700.
    let scratch = tempfile::Builder::new()
        .prefix("mwlbridge-dry-run-")
        .tempdir()
        .context("cannot create a scratch directory for the database copy")
        .map_err(Failure::Runtime)?;
    let copy = Store::open_copy_of(&database, &scratch.path().join("worklist.db"))
        .map_err(|e| Failure::Runtime(anyhow!("cannot copy the database for a dry run: {e}")))?;
    let guard = loaded.config.store.mass_change_guard();
    tracing::info!(
        database = %database.display(),
        sources = loaded.sources.len(),
        "mwlbridge sync dry run: nothing will be written"
    );
    let mut previews = Vec::new();
    let said = Said::default();
    for s in &loaded.sources {
        let source = s.source.as_ref();
        let window = source.sync_window(Timestamp::now());
        let name = source.name().to_string();
        let mut preview = SourcePreview {
            source: name.clone(),
            window,
            mode: None,
            error: None,
            preview: None,
        };
        match fetch_tidied(source, &window, &said).await {
            Err(e) => preview.error = Some(e),
            Ok(fetched) => {
                preview.mode = Some(fetched.mode());
                let on_cancel = source.on_cancel();
                let result = copy
                    .run(move |s| {
                        s.preview_fetched(
                            &name,
                            &window,
                            fetched,
                            on_cancel,
                            Timestamp::now(),
                            guard,
                        )
                    })
                    .await;
                match result {
                    Ok(mut p) => {
                        p.changes
                            .sort_by(|a, b| display_order(a).cmp(&display_order(b)));
                        preview.preview = Some(p);
                    }
                    Err(e) => preview.error = Some(e.to_string()),
                }
            }
        }
        previews.push(preview);
    }
    drop(copy);
    let report = Report {
        database: &database,
        dry_run: true,
        sources: previews,
    };
    if json {
        let text = serde_json::to_string_pretty(&report)
            .context("cannot write the JSON")
            .map_err(Failure::Runtime)?;
        println!("{text}");
    } else {
        print!("{}", table(&report));
    }
    let failed: Vec<&str> = report
        .sources
        .iter()
        .filter(|p| p.error.is_some() || p.preview.as_ref().is_some_and(|p| p.refused.is_some()))
        .map(|p| p.source.as_str())
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::Runtime(anyhow!(
            "a sync would fail for {} (dry run: nothing was written)",
            failed.join(", ")
        )))
    }
}

/// Changes listed by kind, then by start.
fn display_order(c: &Change) -> (u8, jiff::civil::DateTime, &str) {
    let kind = match c.kind {
        ChangeKind::Insert => 0,
        ChangeKind::Update => 1,
        ChangeKind::Discontinue => 2,
        ChangeKind::Delete => 3,
        ChangeKind::Reject => 4,
    };
    (kind, c.entry.start, &c.entry.source_record_id)
}

/// The report as text: per source a summary line, then a table of its changes.
fn table(report: &Report<'_>) -> String {
    let mut out = format!(
        "Dry run against {} (nothing is written).\n",
        report.database.display()
    );
    for p in &report.sources {
        out.push('\n');
        let mode = p.mode.unwrap_or("complete");
        out.push_str(&format!(
            "{}: window {} ({mode} fetch)\n",
            p.source, p.window
        ));
        if let Some(e) = &p.error {
            out.push_str(&format!("  FAILED: {e}\n  A sync would change nothing.\n"));
            continue;
        }
        let Some(preview) = &p.preview else { continue };
        let c = preview.counts;
        out.push_str(&format!(
            "  would insert {}, update {}, discontinue {}, delete {}, reject {}; {} unchanged ({} fetched)\n",
            c.inserted, c.updated, c.discontinued, c.deleted, c.rejected, c.unchanged, c.fetched
        ));
        if let Some(refused) = &preview.refused {
            let refused = refused.strip_prefix(MASS_CHANGE_REFUSED).unwrap_or(refused);
            out.push_str(&format!(
                "  REFUSED by the mass-change guard: {refused}. A sync would change nothing; \
                 `mwlbridge sync --once --accept-mass-change` would apply the changes below.\n"
            ));
        }
        if !preview.changes.is_empty() {
            out.push_str(&rows(&preview.changes));
        }
    }
    out
}

/// The changes as aligned columns.
fn rows(changes: &[Change]) -> String {
    const HEADER: [&str; 8] = [
        "CHANGE",
        "RECORD",
        "START",
        "STATION",
        "MODALITY",
        "PATIENT ID",
        "PATIENT NAME",
        "FIELDS",
    ];
    let cells: Vec<[String; 8]> = changes
        .iter()
        .map(|c| {
            let e = &c.entry;
            [
                c.kind.to_string(),
                e.source_record_id.clone(),
                e.start.strftime("%Y-%m-%d %H:%M").to_string(),
                e.station_ae_title.clone().unwrap_or_default(),
                e.modality.clone().unwrap_or_default(),
                e.patient_id.clone(),
                e.patient_name.clone().unwrap_or_default(),
                c.fields.join(","),
            ]
        })
        .collect();
    let mut widths = HEADER.map(|h| h.chars().count());
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |row: &[&str]| {
        let padded: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        format!("  {}\n", padded.join("  ").trim_end())
    };
    let mut out = line(&HEADER);
    for row in &cells {
        out.push_str(&line(&row.each_ref().map(String::as_str)));
    }
    out
}
