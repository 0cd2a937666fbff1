//! The Modality Performed Procedure Step web service (PS3.18 chapter 15): an MPPS
//! created, updated and retrieved over HTTP; request bodies in DICOM JSON.
//!
//! - `POST {base}/modality-performed-procedure-steps/{uid}` (15.4), or without the UID:
//!   the N-CREATE; the UID is the path's, else the body's SOP Instance UID (0008,0018),
//!   else a new one. `201 Created` with `Location` and `Content-Location` naming the step.
//! - `POST {base}/modality-performed-procedure-steps/{uid}?update` (15.5): the N-SET.
//!   `200`. `PATCH` on the same path (without `update`) is kept as an alias: it was our
//!   form before we read 15.5, and no other transaction uses it.
//! - `GET {base}/modality-performed-procedure-steps/{uid}` (15.6): the N-GET: the step's
//!   attributes as stored, in the representation [`media::negotiate`] picks for one data
//!   set (DICOM JSON: one object; or XML, or either multipart form). `200`.
//!
//! Create and update run the DIMSE side's own N-CREATE and N-SET
//! ([`create_dataset`], [`set_dataset`]): the same validation, limits, status protection
//! and linking of scheduled steps. The token's name stands for the calling AE title, so
//! with `mpps_same_ae_only` only the token that created a step may update it.
//! [`http_status`] maps the DIMSE status to the HTTP code.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use dicom_dictionary_std::tags;
use mwl_scp::dimse::status;
use mwl_scp::mpps::{MppsOutcome, Requester, create_dataset, set_dataset, stored_attributes};

use super::media::{self, DICOM_JSON};
use super::{body, json_read};
use crate::AppState;
use crate::api::ApiError;
use crate::api_types::ErrorBody;
use crate::auth::{Reader, Writer};

/// The resource's path under `base`.
const RESOURCE: &str = "modality-performed-procedure-steps";

/// The service's routes under `base`.
pub(crate) fn routes(base: &str) -> Router<AppState> {
    let base = base.trim_end_matches('/');
    Router::new()
        .route(&format!("{base}/{RESOURCE}"), post(create_new))
        .route(
            &format!("{base}/{RESOURCE}/{{uid}}"),
            post(create_named).patch(update).get(retrieve),
        )
}

/// The HTTP code of a DIMSE status: success is `ok`; a duplicate or a step already final
/// conflicts (409); an unknown step is 404; a missing or invalid attribute or UID is 400;
/// another token's step is 403; a size or update-count limit is 413. (A database failure,
/// also 0110, is told apart by [`MppsOutcome::database_failed`]: 503.)
pub(crate) fn http_status(dimse: u16, ok: StatusCode) -> StatusCode {
    match dimse {
        status::SUCCESS => ok,
        status::DUPLICATE_SOP_INSTANCE | status::PROCESSING_FAILURE => StatusCode::CONFLICT,
        status::NO_SUCH_OBJECT_INSTANCE => StatusCode::NOT_FOUND,
        status::MISSING_ATTRIBUTE
        | status::INVALID_ATTRIBUTE_VALUE
        | status::INVALID_OBJECT_INSTANCE => StatusCode::BAD_REQUEST,
        status::NOT_AUTHORIZED => StatusCode::FORBIDDEN,
        status::RESOURCE_LIMITATION => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn error(code: StatusCode, message: impl Into<String>) -> ApiError {
    ApiError(
        code,
        ErrorBody {
            error: message.into(),
            fields: Vec::new(),
        },
    )
}

/// The body as a data set, or 415 / 400.
fn body_data_set(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<dicom_object::InMemDicomObject, ApiError> {
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    if !matches!(media.as_deref(), Some(DICOM_JSON | "application/json")) {
        return Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("the body must be {DICOM_JSON}"),
        ));
    }
    json_read::read(body).map_err(|e| error(StatusCode::BAD_REQUEST, format!("bad body: {e}")))
}

fn requester<'a>(state: &AppState, token_name: &'a str) -> Requester<'a> {
    Requester {
        calling_ae: token_name,
        policy: state.ctx.settings.mpps,
        own_station_only: state.ctx.settings.mpps_own_station_only,
    }
}

/// The outcome as a response: `ok` with `Location` for the step, else the mapped error.
fn answer(outcome: MppsOutcome, ok: StatusCode, location_base: &str) -> Result<Response, ApiError> {
    if outcome.status != status::SUCCESS {
        tracing::info!(
            status = format!("{:#06x}", outcome.status),
            reason = outcome.comment.as_deref().unwrap_or(""),
            "DICOMweb MPPS request refused"
        );
        let code = if outcome.database_failed {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            http_status(outcome.status, ok)
        };
        return Err(error(
            code,
            outcome.comment.unwrap_or_else(|| "refused".into()),
        ));
    }
    let mut response = ok.into_response();
    if let Some(v) = outcome
        .instance_uid
        .as_ref()
        .and_then(|uid| HeaderValue::from_str(&format!("{location_base}{uid}")).ok())
    {
        response.headers_mut().insert(header::LOCATION, v.clone());
        response.headers_mut().insert(header::CONTENT_LOCATION, v);
    }
    Ok(response)
}

async fn create(
    state: AppState,
    token_name: String,
    uid: Option<String>,
    headers: HeaderMap,
    body: &[u8],
    location_base: String,
) -> Result<Response, ApiError> {
    let mut dataset = body_data_set(&headers, body)?;
    let from_body = dataset
        .take_element(tags::SOP_INSTANCE_UID)
        .ok()
        .and_then(|e| {
            e.to_str()
                .ok()
                .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
        })
        .filter(|s| !s.is_empty());
    let uid = uid.or(from_body);
    let who = requester(&state, &token_name);
    let outcome = create_dataset(&state.ctx.store, &who, uid, dataset).await;
    answer(outcome, StatusCode::CREATED, &location_base)
}

fn location_base(state: &AppState) -> String {
    let base = state
        .ctx
        .settings
        .dicomweb_base
        .as_deref()
        .unwrap_or_default()
        .trim_end_matches('/');
    format!("{base}/{RESOURCE}/")
}

/// `POST {base}/modality-performed-procedure-steps`.
async fn create_new(
    Writer(who): Writer,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let base = location_base(&state);
    create(state, who.name, None, headers, &body, base).await
}

/// `POST {base}/modality-performed-procedure-steps/{uid}`: a create, or with the
/// `update` query parameter an update (PS3.18 15.5).
async fn create_named(
    Writer(who): Writer,
    State(state): State<AppState>,
    Path(uid): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if pairs.iter().any(|(k, _)| k == "update") {
        return set(state, who.name, uid, headers, &body).await;
    }
    let base = location_base(&state);
    create(state, who.name, Some(uid), headers, &body, base).await
}

/// `PATCH {base}/modality-performed-procedure-steps/{uid}`: the same update.
async fn update(
    Writer(who): Writer,
    State(state): State<AppState>,
    Path(uid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    set(state, who.name, uid, headers, &body).await
}

async fn set(
    state: AppState,
    token_name: String,
    uid: String,
    headers: HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let modifications = body_data_set(&headers, body)?;
    let requester = requester(&state, &token_name);
    let outcome = set_dataset(&state.ctx.store, &requester, uid, modifications).await;
    answer(outcome, StatusCode::OK, &location_base(&state))
}

/// `GET {base}/modality-performed-procedure-steps/{uid}`.
async fn retrieve(
    _who: Reader,
    State(state): State<AppState>,
    Path(uid): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (negotiation, _rest) = media::take_query_params(pairs);
    let representation = media::negotiate(media::Target::One, &headers, &negotiation)?;
    let u = uid.clone();
    let step = state
        .ctx
        .store
        .run(move |s| s.mpps_get(&u))
        .await
        .map_err(ApiError::store)?
        .ok_or_else(|| error(StatusCode::NOT_FOUND, "no such performed procedure step"))?;
    let dataset = stored_attributes(&step).map_err(|e| {
        tracing::error!(sop_instance_uid = %uid, error = %e, "stored MPPS attributes unreadable");
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "stored attributes unreadable",
        )
    })?;
    let payload = body::one(representation, &dataset)?;
    Ok((
        [(header::CONTENT_TYPE, payload.content_type)],
        payload.bytes,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dimse_statuses_map_to_http_codes() {
        for (dimse, http) in [
            (status::SUCCESS, StatusCode::CREATED),
            (status::DUPLICATE_SOP_INSTANCE, StatusCode::CONFLICT),
            (status::PROCESSING_FAILURE, StatusCode::CONFLICT),
            (status::NO_SUCH_OBJECT_INSTANCE, StatusCode::NOT_FOUND),
            (status::MISSING_ATTRIBUTE, StatusCode::BAD_REQUEST),
            (status::INVALID_ATTRIBUTE_VALUE, StatusCode::BAD_REQUEST),
            (status::INVALID_OBJECT_INSTANCE, StatusCode::BAD_REQUEST),
            (status::NOT_AUTHORIZED, StatusCode::FORBIDDEN),
            (status::RESOURCE_LIMITATION, StatusCode::PAYLOAD_TOO_LARGE),
        ] {
            assert_eq!(
                http_status(dimse, StatusCode::CREATED),
                http,
                "{dimse:#06x}"
            );
        }
    }
}
