//! [`EntryFilter`]: which entries a listing returns, and the SQL condition it becomes.

use jiff::civil::Date;
use worklist_model::{StepStatus, format_da, pn};

/// Which entries a listing returns. Every field narrows; `None` means any.
#[derive(Debug, Clone, Default)]
pub struct EntryFilter {
    /// First scheduled start date (inclusive).
    pub from_date: Option<Date>,
    /// Last scheduled start date (inclusive).
    pub to_date: Option<Date>,
    /// Scheduled Station AE Title, exact.
    pub station_ae_title: Option<String>,
    /// Modality, exact.
    pub modality: Option<String>,
    /// Patient ID, exact.
    pub patient_id: Option<String>,
    /// Only these statuses (empty: all).
    pub statuses: Vec<StepStatus>,
    /// Data source name, exact.
    pub source: Option<String>,
    /// Patient-name search-key prefixes, folded as [`pn::fold`] folds: only entries whose
    /// key starts with one of them, and every entry whose name has several component
    /// groups or whose key is not computed yet (see [`pn`]). Empty (or holding an empty
    /// prefix): any name.
    pub patient_name_prefixes: Vec<String>,
}

impl EntryFilter {
    /// Every entry consoles see in a query that names no status: the statuses
    /// [`StepStatus::offered_by_default`] admits.
    pub fn offered() -> EntryFilter {
        EntryFilter {
            statuses: StepStatus::offered().collect(),
            ..EntryFilter::default()
        }
    }
}

/// The condition (`WHERE` clause, without the keyword) of the entries matching `filter`,
/// and its positional arguments.
pub(crate) fn condition(filter: &EntryFilter) -> (String, Vec<String>) {
    let mut sql = String::from("1 = 1");
    let mut args: Vec<String> = Vec::new();
    let mut push = |clause: &str, value: String, sql: &mut String| {
        args.push(value);
        sql.push_str(&format!(" AND {clause} ?{}", args.len()));
    };
    if let Some(d) = filter.from_date {
        push("sps_start_date >=", format_da(d), &mut sql);
    }
    if let Some(d) = filter.to_date {
        push("sps_start_date <=", format_da(d), &mut sql);
    }
    if let Some(v) = &filter.station_ae_title {
        push("station_ae_title =", v.clone(), &mut sql);
    }
    if let Some(v) = &filter.modality {
        push("modality =", v.clone(), &mut sql);
    }
    if let Some(v) = &filter.patient_id {
        push("patient_id =", v.clone(), &mut sql);
    }
    if let Some(v) = &filter.source {
        push("source =", v.clone(), &mut sql);
    }
    if !filter.patient_name_prefixes.is_empty()
        && filter.patient_name_prefixes.iter().all(|p| !p.is_empty())
    {
        let names = name_terms(&filter.patient_name_prefixes, &mut args);
        if filter.patient_id.is_some() {
            // The patient index finds a handful of rows; their names are tested as read.
            sql.push_str(&format!(" AND ({names})"));
        } else {
            // As a list of row ids read from the name index. Written as terms of this
            // WHERE, SQLite's planner (its sampled statistics take the status index for
            // selective) read nearly every row through the status index and tested each
            // name: 10x slower at 10,000 items.
            sql.push_str(&format!(
                " AND id IN (SELECT id FROM worklist_entries WHERE {names})"
            ));
        }
    }
    if !filter.statuses.is_empty() {
        let list: Vec<String> = filter
            .statuses
            .iter()
            .map(|s| format!("'{}'", s.as_dicom()))
            .collect();
        sql.push_str(&format!(" AND status IN ({})", list.join(", ")));
    }
    (sql, args)
}

/// The terms (joined by OR) admitting the names of the search-key prefixes: one key range
/// per prefix, and the names that have no key: several component groups (each is compared
/// with the query), or not computed yet. Every term reads a range of
/// idx_entries_patient_name. Pushes the prefixes and bounds to `args`.
fn name_terms(prefixes: &[String], args: &mut Vec<String>) -> String {
    let mut terms = vec![
        "patient_name_groups IS NULL".to_string(),
        "patient_name_groups > 1".to_string(),
    ];
    for prefix in prefixes {
        args.push(prefix.clone());
        let mut term = format!(
            "(patient_name_groups = 1 AND patient_name_key >= ?{}",
            args.len()
        );
        if let Some(upper) = pn::prefix_upper_bound(prefix) {
            args.push(upper);
            term.push_str(&format!(" AND patient_name_key < ?{}", args.len()));
        }
        term.push(')');
        terms.push(term);
    }
    terms.join(" OR ")
}
