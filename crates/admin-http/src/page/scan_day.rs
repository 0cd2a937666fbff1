//! The scan day: today's worklist (site zone) by status, with the number of entries
//! consoles are offered, on the whole page (`/`) or for one station (`/stations/{AE}`,
//! the page a technician keeps open at a scanner: it reloads itself every
//! [`STATION_REFRESH_SECONDS`] without JavaScript).
//!
//! Scheduled, in progress, completed and discontinued steps are listed apart. "Offered"
//! counts the steps a console's query that names no status gets, by
//! [`StepStatus::offered_by_default`], the rule the SCP's matching applies.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use jiff::Timestamp;
use jiff::civil::Date;
use maud::{Markup, html};
use worklist_store::{EntryFilter, MANUAL_SOURCE, StepStatus, StoredEntry, TokenRole, format_da};

use super::layout::{layout, unavailable};
use super::{Flash, Notice, known_stations, manual, sources, station_url, url_part, words};
use crate::AppState;
use crate::auth::PageUser;
use crate::readiness;

/// How often a station's view reloads itself, seconds.
pub(super) const STATION_REFRESH_SECONDS: u32 = 60;

/// Today in the site's zone.
pub(super) fn today(state: &AppState) -> Date {
    Timestamp::now()
        .to_zoned_datetime(state.ctx.zone.clone())
        .date()
}

/// `GET /stations/{ae_title}`: one station's scan day.
pub(super) async fn station_view(
    user: Option<PageUser>,
    State(state): State<AppState>,
    Path(ae_title): Path<String>,
    Query(flash): Query<Flash>,
) -> Response {
    match user {
        None => Redirect::to("/").into_response(),
        Some(user) => page(&state, &user, Some(&ae_title), flash.notice()).await,
    }
}

/// The scan day, of every station or of one, with `notice` on top.
pub(super) async fn page(
    state: &AppState,
    user: &PageUser,
    station: Option<&str>,
    notice: Notice,
) -> Response {
    let code = match &notice {
        Notice::Refused(_) => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::OK,
    };
    let today = today(state);
    let filter = EntryFilter {
        from_date: Some(today),
        to_date: Some(today),
        station_ae_title: station.map(str::to_string),
        ..EntryFilter::default()
    };
    let entries = state.ctx.store.run(move |s| s.list(&filter)).await;
    let states = readiness::source_states(&state.ctx).await;
    let (entries, states) = match (entries, states) {
        (Ok(e), Ok(s)) => (e, s),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "status page: the worklist database failed");
            return unavailable();
        }
    };
    let can_write = user.role == TokenRole::Write;
    let csrf = can_write.then_some(user.session.csrf.as_str());
    let zone = &state.ctx.zone;
    let body = html! {
        h1 {
            @match station { Some(s) => { (s) }, None => { "mwlbridge" } }
        }
        div.note.who {
            "Signed in as " strong { (user.name) } " (" (user.role.as_str()) "). "
            @if station.is_some() { a href="/" { "All stations" } " · " }
            form.inline method="post" action="/logout" {
                input type="hidden" name="csrf" value=(user.session.csrf);
                button type="submit" { "Sign out" }
            }
        }
        @match &notice {
            Notice::Done(text) => { p.flash { (text) } }
            Notice::Refused(text) => { p.errors { (text) } }
            Notice::None => {}
        }
        (sources::stale_banners(&states, zone))
        h2 title=(format_da(today)) { "Today, " (words::day(today)) }
        (counts(&entries))
        @if station.is_none() { (station_nav(state, &entries)) }
        @else { p.note { "This page reloads itself every minute." } }
        @for status in StepStatus::ALL {
            (group(status, &entries, csrf, station))
        }
        h2 { "Sources" }
        (sources::list(&states, zone, if station.is_none() { csrf } else { None }))
        @if station.is_none() {
            @match csrf {
                Some(csrf) => {
                    (manual::form(csrf, &known_stations(state), &[], None, manual::Mode::Add))
                }
                None => {
                    p.note { "A write token is needed to change statuses, add manual entries or sync now." }
                }
            }
        }
    };
    // The reload drops a flash from the URL, so it is said once.
    let here = station.map(station_url);
    let (title, refresh) = match (station, &here) {
        (Some(s), Some(url)) => (
            format!("{s}: today's worklist"),
            Some((STATION_REFRESH_SECONDS, url.as_str())),
        ),
        _ => ("mwlbridge: today's worklist".to_string(), None),
    };
    (code, layout(&title, refresh, body)).into_response()
}

/// How many entries consoles are offered, and how many are not (by status).
fn counts(entries: &[StoredEntry]) -> Markup {
    let n = |s: StepStatus| entries.iter().filter(|e| e.entry.status == s).count();
    let offered = entries
        .iter()
        .filter(|e| e.entry.status.offered_by_default())
        .count();
    html! {
        p.counts id="counts" data-offered=(offered) {
            strong { (offered) } " offered to consoles ("
            (n(StepStatus::Scheduled)) " scheduled, " (n(StepStatus::Started)) " in progress); "
            "not offered: " (n(StepStatus::Completed)) " completed, "
            (n(StepStatus::Discontinued)) " discontinued."
        }
    }
}

/// Links to each station's view: every known station and every station with entries
/// today, with today's count.
fn station_nav(state: &AppState, entries: &[StoredEntry]) -> Markup {
    let mut names: Vec<String> = known_stations(state)
        .into_iter()
        .map(|s| s.ae_title)
        .collect();
    for e in entries {
        if let Some(s) = &e.entry.station_ae_title
            && !names.contains(s)
        {
            names.push(s.clone());
        }
    }
    names.sort();
    let today = |s: &str| {
        entries
            .iter()
            .filter(|e| e.entry.station_ae_title.as_deref() == Some(s))
            .count()
    };
    html! {
        @if !names.is_empty() {
            nav.stations {
                "Station views: "
                @for s in &names {
                    a href=(station_url(s)) data-station=(s) { (s) " (" (today(s)) ")" }
                }
            }
        }
    }
}

/// One status's entries, as a table.
fn group(
    status: StepStatus,
    entries: &[StoredEntry],
    csrf: Option<&str>,
    station: Option<&str>,
) -> Markup {
    let list: Vec<&StoredEntry> = entries
        .iter()
        .filter(|e| e.entry.status == status)
        .collect();
    let css = status.as_dicom().to_ascii_lowercase();
    html! {
        section class={ "status-group " (css) } data-status=(status.as_dicom()) {
            h3 { (words::status_words(status)) " (" (list.len()) ")" }
            @if list.is_empty() { p.note { "None." } }
            @else {
                div.scroll { table.entries {
                    thead { tr {
                        th { "Time" } th { "Patient ID" } th { "Name" } th { "Station" }
                        th { "Modality" } th { "Description" } th { "Status" } th { "Set by" }
                        th { "Source" }
                        @if csrf.is_some() { th { "Actions" } }
                    } }
                    tbody { @for e in list { (row(e, csrf, station)) } }
                } }
            }
        }
    }
}

fn row(e: &StoredEntry, csrf: Option<&str>, station: Option<&str>) -> Markup {
    let w = &e.entry;
    let time_title = match w.end {
        Some(end) => format!(
            "start {}, end {}",
            words::dicom_when(w.start),
            words::dicom_when(end)
        ),
        None => format!("start {}", words::dicom_when(w.start)),
    };
    html! {
        tr.entry data-source=(w.source) data-record=(w.source_record_id)
            data-station=(w.station_ae_title.as_deref().unwrap_or_default())
            data-status=(w.status.as_dicom()) {
            td.time data-label="Time" title=(time_title) {
                (words::clock(w.start.time()))
                @if let Some(end) = w.end { "–" (words::clock(end.time())) }
            }
            td data-label="Patient ID" { (w.patient_id) }
            td.name data-label="Name" title=[w.patient_name.as_deref()] {
                (w.patient_name.as_deref().map(words::person).unwrap_or_default())
            }
            td data-label="Station" {
                @if let Some(s) = &w.station_ae_title { a href=(station_url(s)) { (s) } }
            }
            td data-label="Modality" { (w.modality.as_deref().unwrap_or("")) }
            td data-label="Description" { (w.display_description().unwrap_or("")) }
            td data-label="Status" { (words::badge(w.status)) }
            td data-label="Set by" { (e.meta.status_set_by.as_str()) }
            td data-label="Source" { (w.source) }
            @if let Some(csrf) = csrf {
                td.actions { (actions(e, csrf, station)) }
            }
        }
    }
}

/// The status changes a row offers, and edit / delete for a manual entry.
fn actions(e: &StoredEntry, csrf: &str, station: Option<&str>) -> Markup {
    let w = &e.entry;
    let targets: &[(StepStatus, &str)] = match w.status {
        StepStatus::Scheduled => &[
            (StepStatus::Completed, "Completed"),
            (StepStatus::Discontinued, "Discontinued"),
        ],
        StepStatus::Started => &[
            (StepStatus::Completed, "Completed"),
            (StepStatus::Discontinued, "Discontinued"),
            (StepStatus::Scheduled, "Back to scheduled"),
        ],
        StepStatus::Completed | StepStatus::Discontinued => {
            &[(StepStatus::Scheduled, "Back to scheduled")]
        }
    };
    html! {
        @for (to, label) in targets {
            form method="post" action="/entries/status" data-set=(to.as_dicom()) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="source" value=(w.source);
                input type="hidden" name="record_id" value=(w.source_record_id);
                input type="hidden" name="status" value=(to.as_dicom());
                @if let Some(s) = station { input type="hidden" name="station" value=(s); }
                button type="submit" { (label) }
            }
        }
        @if w.source == MANUAL_SOURCE {
            a.edit href={ "/manual/edit?record_id=" (url_part(&w.source_record_id)) } { "Edit" }
            " "
            form method="post" action="/manual/delete" data-delete=(w.source_record_id) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="record_id" value=(w.source_record_id);
                @if let Some(s) = station { input type="hidden" name="station" value=(s); }
                button type="submit" { "Delete" }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use worklist_store::{EntryMeta, StatusSetBy, WorklistEntry};

    use super::*;

    fn stored(record: &str, status: StepStatus, name: &str) -> StoredEntry {
        let start = jiff::civil::date(2026, 12, 4).at(8, 0, 0, 0);
        let mut entry = WorklistEntry::new("calpendo", record, "<PID&1>", start);
        entry.patient_name = Some(name.to_string());
        entry.station_ae_title = Some("MRI 3T".into());
        entry.status = status;
        let t = Timestamp::UNIX_EPOCH;
        StoredEntry {
            entry,
            meta: EntryMeta {
                row_id: 1,
                first_seen: t,
                last_updated: t,
                status_changed_at: t,
                status_set_by: StatusSetBy::Sync,
            },
        }
    }

    #[test]
    fn a_row_escapes_subject_text_and_keeps_dicom_values_on_hover() {
        let html = row(
            &stored("1\"x", StepStatus::Scheduled, "<b>Fraser</b>^Emma"),
            Some("tok"),
            None,
        )
        .into_string();
        assert!(!html.contains("<b>"), "{html}");
        assert!(html.contains("&lt;b&gt;Fraser&lt;/b&gt;, Emma"), "{html}");
        assert!(
            html.contains("title=\"&lt;b&gt;Fraser&lt;/b&gt;^Emma\""),
            "{html}"
        );
        assert!(html.contains("&lt;PID&amp;1&gt;"), "{html}");
        assert!(html.contains("title=\"start 20261204 080000\""), "{html}");
        assert!(html.contains("href=\"/stations/MRI%203T\""), "{html}");
        assert!(html.contains("value=\"1&quot;x\""), "{html}");
    }

    #[test]
    fn only_offered_steps_are_counted_as_offered() {
        let entries: Vec<StoredEntry> = StepStatus::ALL
            .into_iter()
            .map(|s| stored(s.as_dicom(), s, "A^B"))
            .collect();
        let html = counts(&entries).into_string();
        assert!(html.contains("data-offered=\"2\""), "{html}");
        assert!(html.contains("1 completed, 1 discontinued"), "{html}");
    }

    #[test]
    fn each_status_offers_its_own_changes() {
        let buttons = |s: StepStatus| {
            let html = actions(&stored("1", s, "A^B"), "tok", Some("MRI_3T")).into_string();
            StepStatus::ALL
                .into_iter()
                .filter(|to| html.contains(&format!("data-set=\"{}\"", to.as_dicom())))
                .collect::<Vec<_>>()
        };
        use StepStatus::*;
        assert_eq!(buttons(Scheduled), [Completed, Discontinued]);
        assert_eq!(buttons(Started), [Scheduled, Completed, Discontinued]);
        assert_eq!(buttons(Completed), [Scheduled]);
        assert_eq!(buttons(Discontinued), [Scheduled]);
    }
}
