//! A row's status change from the page: mark completed, discontinued, or back to
//! scheduled. Recorded as set by `admin` (a sync never resets it), through
//! `api::override_status`, the call the API's `PUT .../status` makes.

use axum::extract::{Form, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use worklist_store::StepStatus;

use super::layout::unavailable;
use super::{Notice, back_to, refuse_form, scan_day};
use crate::AppState;
use crate::api::override_status;
use crate::auth::PageUser;

/// The fields of a row's status button.
#[derive(Debug, Deserialize)]
pub(super) struct StatusForm {
    csrf: String,
    source: String,
    record_id: String,
    status: String,
    /// The station view the form is on (absent: the scan day).
    #[serde(default)]
    station: Option<String>,
}

/// `POST /entries/status`.
pub(super) async fn set_status(
    user: Option<PageUser>,
    State(state): State<AppState>,
    Form(f): Form<StatusForm>,
) -> Response {
    let user = match refuse_form(user, &f.csrf) {
        Ok(u) => u,
        Err(r) => return r.into_response(),
    };
    let station = f.station.as_deref().filter(|s| !s.is_empty());
    let refused = |why: String| scan_day::page(&state, &user, station, Notice::Refused(why));
    let Ok(status) = f.status.parse::<StepStatus>() else {
        return refused(format!(
            "{:?} is not SCHEDULED, STARTED, COMPLETED or DISCONTINUED.",
            f.status
        ))
        .await;
    };
    match override_status(&state.ctx.store, &f.source, &f.record_id, status).await {
        Ok(Some(_)) => {
            tracing::info!(
                token_name = %user.name, source = %f.source, record_id = %f.record_id,
                status = status.as_dicom(), "status overridden from the status page"
            );
            let back = back_to(station);
            let sep = if back.contains('?') { '&' } else { '?' };
            Redirect::to(&format!("{back}{sep}flash=status")).into_response()
        }
        Ok(None) => {
            refused("That entry is no longer in the worklist (deleted or re-synced away).".into())
                .await
        }
        Err(e) => {
            tracing::error!(error = %e, "status page: the worklist database failed");
            unavailable()
        }
    }
}
