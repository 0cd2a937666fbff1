//! The manual-entry form (walk-ins, phantom scans): add, edit and delete a manual entry,
//! through the store calls the API's `/api/v1/manual-entries` makes.
//!
//! The station is picked from the stations the sources' mappings name, and the entry
//! takes its Modality from that mapping, so a console that asks for its modality finds
//! it. (A site whose sources name no station types the station and modality instead.)
//! A refused form is shown again at its own URL, with each field at fault and what was
//! typed; `GET /manual` and `GET /manual/edit?record_id=...` show the form itself.

use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use jiff::Timestamp;
use maud::{Markup, html};
use serde::Deserialize;
use worklist_store::{KnownStation, MANUAL_SOURCE, ManualEntryError, StoredEntry};

use super::layout::{layout, message_page, unavailable};
use super::{back_to, known_stations, refuse_form, writer};
use crate::AppState;
use crate::api::new_record_id;
use crate::api_types::{EntryView, FieldProblem, ManualEntryInput};
use crate::auth::PageUser;

/// Which form it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode<'a> {
    /// A new entry.
    Add,
    /// The manual entry with this record id.
    Edit(&'a str),
}

/// The form's fields.
#[derive(Debug, Default, Clone, Deserialize)]
pub(super) struct ManualForm {
    csrf: String,
    /// Only when editing.
    #[serde(default)]
    record_id: String,
    patient_id: String,
    #[serde(default)]
    patient_name: String,
    start_date: String,
    start_time: String,
    #[serde(default)]
    station_ae_title: String,
    /// Only when no station is known (otherwise the station's modality is taken).
    #[serde(default)]
    modality: String,
    #[serde(default)]
    sps_description: String,
    #[serde(default)]
    protocol_code_value: String,
}

impl ManualForm {
    /// The form filled with a stored entry's values.
    fn of(e: &StoredEntry) -> ManualForm {
        let v = EntryView::from(e);
        ManualForm {
            csrf: String::new(),
            record_id: v.record_id,
            patient_id: v.patient_id,
            patient_name: v.patient_name.unwrap_or_default(),
            start_date: v.start_date,
            start_time: v.start_time,
            station_ae_title: v.station_ae_title.unwrap_or_default(),
            modality: v.modality.unwrap_or_default(),
            sps_description: v.sps_description.unwrap_or_default(),
            protocol_code_value: v.protocol_code_value.unwrap_or_default(),
        }
    }

    /// The API input these fields give, over `base` (the entry being edited: values the
    /// form does not show are kept), with the modality of the picked station.
    fn input(
        &self,
        base: ManualEntryInput,
        stations: &[KnownStation],
    ) -> Result<ManualEntryInput, Vec<FieldProblem>> {
        let blank = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        let station = blank(&self.station_ae_title);
        let modality = if stations.is_empty() {
            blank(&self.modality)
        } else {
            match stations
                .iter()
                .find(|k| Some(&k.ae_title) == station.as_ref())
            {
                Some(k) => k.modality.clone(),
                None => {
                    let known: Vec<&str> = stations.iter().map(|k| k.ae_title.as_str()).collect();
                    return Err(vec![FieldProblem {
                        field: "station_ae_title".into(),
                        problem: format!(
                            "{:?} is not a known station; pick one of {}",
                            self.station_ae_title,
                            known.join(", ")
                        ),
                    }]);
                }
            }
        };
        let start_moved =
            base.start_date != self.start_date.trim() || base.start_time != self.start_time.trim();
        let protocol_changed = base.protocol_code_value.as_deref().unwrap_or_default()
            != self.protocol_code_value.trim();
        let mut input = ManualEntryInput {
            patient_id: self.patient_id.clone(),
            patient_name: blank(&self.patient_name),
            start_date: self.start_date.clone(),
            start_time: self.start_time.clone(),
            station_ae_title: station,
            modality,
            sps_description: blank(&self.sps_description),
            protocol_code_value: blank(&self.protocol_code_value),
            ..base
        };
        if start_moved {
            // An end kept from before could now come before the start.
            input.end_date = None;
            input.end_time = None;
        }
        if protocol_changed {
            input.protocol_code_meaning = None;
        }
        Ok(input)
    }
}

/// A stored manual entry as the API's input (to keep what the form does not show).
fn input_of(e: &StoredEntry) -> ManualEntryInput {
    let v = EntryView::from(e);
    ManualEntryInput {
        record_id: Some(v.record_id),
        patient_id: v.patient_id,
        patient_name: v.patient_name,
        patient_birth_date: v.patient_birth_date,
        patient_sex: v.patient_sex,
        patient_weight_kg: v.patient_weight_kg,
        study_instance_uid: Some(v.study_instance_uid),
        accession_number: Some(v.accession_number),
        study_description: v.study_description,
        referring_physician_name: v.referring_physician_name,
        requested_procedure_id: Some(v.requested_procedure_id),
        requested_procedure_description: v.requested_procedure_description,
        sps_id: Some(v.sps_id),
        station_ae_title: v.station_ae_title,
        station_name: v.station_name,
        start_date: v.start_date,
        start_time: v.start_time,
        end_date: v.end_date,
        end_time: v.end_time,
        modality: v.modality,
        performing_physician_name: v.performing_physician_name,
        sps_description: v.sps_description,
        sps_location: v.sps_location,
        protocol_code_value: v.protocol_code_value,
        protocol_coding_scheme: v.protocol_coding_scheme,
        protocol_code_meaning: v.protocol_code_meaning,
        status: Some(v.status),
    }
}

/// The form: a station picker when stations are known, else station and modality fields.
pub(super) fn form(
    csrf: &str,
    stations: &[KnownStation],
    errors: &[FieldProblem],
    values: Option<&ManualForm>,
    mode: Mode<'_>,
) -> Markup {
    let f = values.cloned().unwrap_or_default();
    let (heading, action, submit) = match mode {
        Mode::Add => ("Add a manual entry", "/manual", "Add"),
        Mode::Edit(_) => ("Edit a manual entry", "/manual/edit", "Save"),
    };
    html! {
        h2 { (heading) }
        p.note { "For walk-ins and phantom scans. Dates YYYYMMDD, times HHMM, names Family^Given." }
        @if !errors.is_empty() {
            div.errors { ul { @for e in errors { li { strong { (e.field) } ": " (e.problem) } } } }
        }
        form method="post" action=(action) {
            input type="hidden" name="csrf" value=(csrf);
            @if let Mode::Edit(id) = mode { input type="hidden" name="record_id" value=(id); }
            div.grid {
                label { "Patient ID " input name="patient_id" required value=(f.patient_id); }
                label { "Patient name " input name="patient_name" value=(f.patient_name); }
                label { "Date " input name="start_date" required placeholder="YYYYMMDD" value=(f.start_date); }
                label { "Time " input name="start_time" required placeholder="HHMM" value=(f.start_time); }
                @if stations.is_empty() {
                    label { "Station AE title " input name="station_ae_title" value=(f.station_ae_title); }
                    label { "Modality " input name="modality" placeholder="MR" value=(f.modality); }
                } @else {
                    label { "Station "
                        select name="station_ae_title" required {
                            option value="" { "Pick a station" }
                            @for k in stations {
                                option value=(k.ae_title) selected[k.ae_title == f.station_ae_title] {
                                    (k.ae_title)
                                    @if let Some(m) = &k.modality { " (" (m) ")" }
                                }
                            }
                        }
                    }
                }
                label { "Description " input name="sps_description" value=(f.sps_description); }
                label { "Protocol " input name="protocol_code_value" placeholder="protocol code" value=(f.protocol_code_value); }
            }
            @if !stations.is_empty() {
                p.note { "The modality comes from the station's mapping." }
            }
            button type="submit" { (submit) }
            @if let Mode::Edit(_) = mode { " " a href="/" { "Cancel" } }
        }
    }
}

/// The form alone on its page; `422` when it shows refused values.
fn form_page(
    state: &AppState,
    user: &PageUser,
    errors: &[FieldProblem],
    values: Option<&ManualForm>,
    mode: Mode<'_>,
) -> Response {
    let code = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let body = html! {
        h1 { "mwlbridge" }
        p.note { a href="/" { "Back to today's worklist" } }
        (form(&user.session.csrf, &known_stations(state), errors, values, mode))
    };
    (code, layout("mwlbridge: manual entry", None, body)).into_response()
}

/// `GET /manual`: the empty form.
pub(super) async fn add_form(user: Option<PageUser>, State(state): State<AppState>) -> Response {
    match writer(user) {
        Ok(user) => form_page(&state, &user, &[], None, Mode::Add),
        Err(r) => r.into_response(),
    }
}

/// `POST /manual`.
pub(super) async fn add(
    user: Option<PageUser>,
    State(state): State<AppState>,
    Form(f): Form<ManualForm>,
) -> Response {
    let user = match refuse_form(user, &f.csrf) {
        Ok(u) => u,
        Err(r) => return r.into_response(),
    };
    let record_id = new_record_id();
    let entry = match f
        .input(ManualEntryInput::default(), &known_stations(&state))
        .and_then(|i| i.to_entry(&record_id))
    {
        Ok(e) => e,
        Err(problems) => return form_page(&state, &user, &problems, Some(&f), Mode::Add),
    };
    let result = state
        .ctx
        .store
        .run(move |s| Ok(s.create_manual(&entry, Timestamp::now())))
        .await;
    match result {
        Ok(Ok(_)) => {
            tracing::info!(token_name = %user.name, record_id = %record_id, "manual entry created from the status page");
            Redirect::to("/?flash=added").into_response()
        }
        Ok(Err(e)) => form_page(&state, &user, &refused(e), Some(&f), Mode::Add),
        Err(e) => {
            tracing::error!(error = %e, "status page: the worklist database failed");
            unavailable()
        }
    }
}

/// A store refusal as the form's problems.
fn refused(e: ManualEntryError) -> Vec<FieldProblem> {
    match e {
        ManualEntryError::Invalid(problems) => problems
            .into_iter()
            .map(|(field, problem)| FieldProblem {
                field: field.to_string(),
                problem,
            })
            .collect(),
        other => vec![FieldProblem {
            field: "entry".into(),
            problem: other.to_string(),
        }],
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct RecordQuery {
    #[serde(default)]
    record_id: String,
}

/// The manual entry `record_id`, or the page that says it is not there.
async fn manual_entry(state: &AppState, record_id: &str) -> Result<StoredEntry, Response> {
    let rec = record_id.to_string();
    match state
        .ctx
        .store
        .run(move |s| s.get(MANUAL_SOURCE, &rec))
        .await
    {
        Ok(Some(e)) => Ok(e),
        Ok(None) => Err(message_page(
            StatusCode::NOT_FOUND,
            "There is no such manual entry (it may have been deleted).",
            "/",
        )),
        Err(e) => {
            tracing::error!(error = %e, "status page: the worklist database failed");
            Err(unavailable())
        }
    }
}

/// `GET /manual/edit?record_id=...`: the form filled with the entry.
pub(super) async fn edit_form(
    user: Option<PageUser>,
    State(state): State<AppState>,
    Query(q): Query<RecordQuery>,
) -> Response {
    let user = match writer(user) {
        Ok(u) => u,
        Err(r) => return r.into_response(),
    };
    match manual_entry(&state, &q.record_id).await {
        Ok(e) => form_page(
            &state,
            &user,
            &[],
            Some(&ManualForm::of(&e)),
            Mode::Edit(&q.record_id),
        ),
        Err(r) => r,
    }
}

/// `POST /manual/edit`.
pub(super) async fn edit(
    user: Option<PageUser>,
    State(state): State<AppState>,
    Form(f): Form<ManualForm>,
) -> Response {
    let user = match refuse_form(user, &f.csrf) {
        Ok(u) => u,
        Err(r) => return r.into_response(),
    };
    let existing = match manual_entry(&state, &f.record_id).await {
        Ok(e) => e,
        Err(r) => return r,
    };
    let mode = Mode::Edit(&f.record_id);
    let entry = match f
        .input(input_of(&existing), &known_stations(&state))
        .and_then(|i| i.to_entry(&f.record_id))
    {
        Ok(e) => e,
        Err(problems) => return form_page(&state, &user, &problems, Some(&f), mode),
    };
    let result = state
        .ctx
        .store
        .run(move |s| Ok(s.update_manual(&entry, Timestamp::now())))
        .await;
    match result {
        Ok(Ok(_)) => {
            tracing::info!(token_name = %user.name, record_id = %f.record_id, "manual entry updated from the status page");
            Redirect::to("/?flash=updated").into_response()
        }
        Ok(Err(e)) => form_page(&state, &user, &refused(e), Some(&f), mode),
        Err(e) => {
            tracing::error!(error = %e, "status page: the worklist database failed");
            unavailable()
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct DeleteForm {
    csrf: String,
    record_id: String,
    #[serde(default)]
    station: Option<String>,
}

/// `POST /manual/delete`.
pub(super) async fn delete(
    user: Option<PageUser>,
    State(state): State<AppState>,
    Form(f): Form<DeleteForm>,
) -> Response {
    let user = match refuse_form(user, &f.csrf) {
        Ok(u) => u,
        Err(r) => return r.into_response(),
    };
    let rec = f.record_id.clone();
    match state.ctx.store.run(move |s| s.delete_manual(&rec)).await {
        Ok(true) => {
            tracing::info!(token_name = %user.name, record_id = %f.record_id, "manual entry deleted from the status page");
            let back = back_to(f.station.as_deref());
            Redirect::to(&format!("{back}?flash=deleted")).into_response()
        }
        Ok(false) => message_page(
            StatusCode::NOT_FOUND,
            "There is no such manual entry (it may have been deleted already).",
            &back_to(f.station.as_deref()),
        ),
        Err(e) => {
            tracing::error!(error = %e, "status page: the worklist database failed");
            unavailable()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(station: &str, modality: &str) -> ManualForm {
        ManualForm {
            patient_id: "WALK1".into(),
            start_date: "20261204".into(),
            start_time: "0800".into(),
            station_ae_title: station.into(),
            modality: modality.into(),
            ..ManualForm::default()
        }
    }

    fn known() -> Vec<KnownStation> {
        vec![
            KnownStation {
                ae_title: "MRI_3T".into(),
                modality: Some("MR".into()),
            },
            KnownStation {
                ae_title: "EEG_LAB".into(),
                modality: None,
            },
        ]
    }

    #[test]
    fn a_known_station_gives_its_modality_whatever_was_typed() {
        let input = filled("MRI_3T", "CT")
            .input(ManualEntryInput::default(), &known())
            .expect("valid");
        assert_eq!(input.station_ae_title.as_deref(), Some("MRI_3T"));
        assert_eq!(input.modality.as_deref(), Some("MR"));
        let input = filled("EEG_LAB", "CT")
            .input(ManualEntryInput::default(), &known())
            .expect("valid");
        assert_eq!(input.modality, None, "the mapping gives none");
    }

    #[test]
    fn a_station_the_mappings_do_not_name_is_refused() {
        for station in ["MRI_9T", ""] {
            let problems = filled(station, "MR")
                .input(ManualEntryInput::default(), &known())
                .expect_err("refused");
            assert_eq!(problems.len(), 1);
            assert_eq!(problems[0].field, "station_ae_title");
            assert!(
                problems[0].problem.contains("MRI_3T, EEG_LAB"),
                "{}",
                problems[0].problem
            );
        }
    }

    #[test]
    fn without_known_stations_station_and_modality_are_typed() {
        let input = filled("ANY_AE", "CT")
            .input(ManualEntryInput::default(), &[])
            .expect("valid");
        assert_eq!(input.station_ae_title.as_deref(), Some("ANY_AE"));
        assert_eq!(input.modality.as_deref(), Some("CT"));
        let html = form("c", &[], &[], None, Mode::Add).into_string();
        assert!(html.contains("name=\"modality\""), "{html}");
        let html = form("c", &known(), &[], None, Mode::Add).into_string();
        assert!(!html.contains("name=\"modality\""), "{html}");
        assert!(
            html.contains("<option value=\"MRI_3T\">MRI_3T (MR)</option>"),
            "{html}"
        );
    }

    #[test]
    fn an_edit_keeps_what_the_form_does_not_show_and_drops_a_stale_end() {
        let base = ManualEntryInput {
            patient_birth_date: Some("19800101".into()),
            accession_number: Some("ACC1".into()),
            start_date: "20261204".into(),
            start_time: "080000".into(),
            end_date: Some("20261204".into()),
            end_time: Some("090000".into()),
            status: Some("COMPLETED".into()),
            ..ManualEntryInput::default()
        };
        let same_start = ManualForm {
            start_time: "080000".into(),
            ..filled("MRI_3T", "")
        };
        let kept = same_start.input(base.clone(), &known()).expect("valid");
        assert_eq!(kept.patient_birth_date.as_deref(), Some("19800101"));
        assert_eq!(kept.accession_number.as_deref(), Some("ACC1"));
        assert_eq!(kept.status.as_deref(), Some("COMPLETED"));
        assert_eq!(kept.end_time.as_deref(), Some("090000"));
        let moved = ManualForm {
            start_time: "1900".into(),
            ..filled("MRI_3T", "")
        };
        let moved = moved.input(base, &known()).expect("valid");
        assert_eq!((moved.end_date, moved.end_time), (None, None));
    }
}
