//! The REST API under `/api/v1`. Reading needs a token of any role; changing needs the
//! write role. Entries of a synced source are read-only here except their status, which an
//! admin may override (recorded as set by `admin`, never reset by a sync).

use std::ops::ControlFlow;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use jiff::Timestamp;
use utoipa::OpenApi;
use worklist_store::{
    EntryFilter, MANUAL_SOURCE, ManualEntryError, StatusSetBy, StepStatus, Store, StoreError,
    StoredEntry, parse_da,
};

use crate::AppState;
use crate::api_types::{
    EntryView, ErrorBody, FieldProblem, ManualEntryInput, PageQuery, SourceView, StatusInput,
    SyncNowQuery, SyncRunView, SyncRunsQuery, WorklistQuery,
};
use crate::auth::{Reader, Writer};
use crate::health::{Readiness, SourceReadiness};
use crate::paging::{self, EntryKey};
use crate::sync_control::{SourceInfo, SyncNow, SyncTriggerError};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/worklist", get(list_worklist))
        .route("/api/v1/entries/{source}/{record_id}", get(get_entry))
        .route(
            "/api/v1/entries/{source}/{record_id}/status",
            put(set_status),
        )
        .route("/api/v1/manual-entries", post(create_manual))
        .route(
            "/api/v1/manual-entries/{record_id}",
            put(update_manual).delete(delete_manual),
        )
        .route("/api/v1/sync-runs", get(list_sync_runs))
        .route("/api/v1/sources", get(list_sources))
        .route("/api/v1/sources/{name}/sync", post(sync_now))
}

/// The OpenAPI document of this API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "mwlbridge admin API",
        description = "Worklist, manual entries, status overrides and sync control of an \
                       mwlbridge DICOM Modality Worklist server. Authenticate with \
                       `Authorization: Bearer <token>` (tokens: `mwlbridge token create`)."
    ),
    paths(
        list_worklist,
        get_entry,
        set_status,
        create_manual,
        update_manual,
        delete_manual,
        list_sync_runs,
        list_sources,
        sync_now
    ),
    components(schemas(
        EntryView,
        ManualEntryInput,
        StatusInput,
        SyncRunView,
        SourceView,
        ErrorBody,
        FieldProblem,
        Readiness,
        SourceReadiness
    )),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
pub(crate) struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// An API error: a status and a JSON body.
#[derive(Debug)]
pub(crate) struct ApiError(pub(crate) StatusCode, pub(crate) ErrorBody);

impl ApiError {
    fn new(status: StatusCode, error: impl Into<String>) -> ApiError {
        ApiError(
            status,
            ErrorBody {
                error: error.into(),
                fields: Vec::new(),
            },
        )
    }

    fn invalid(fields: Vec<FieldProblem>) -> ApiError {
        ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorBody {
                error: "the entry's values are not valid".into(),
                fields,
            },
        )
    }

    pub(crate) fn store(e: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %e, "admin API: the worklist database failed");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the worklist database is unavailable",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}

/// The field a serde message names (`unknown field `x``, `missing field `x``), if any.
fn field_of(message: &str) -> Option<String> {
    let start = message.find("field `")? + "field `".len();
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_string())
}

fn rejection(status: StatusCode, what: &str, detail: String) -> ApiError {
    let fields = field_of(&detail)
        .map(|field| {
            vec![FieldProblem {
                field,
                problem: detail.clone(),
            }]
        })
        .unwrap_or_default();
    ApiError(
        status,
        ErrorBody {
            error: format!("{what}: {detail}"),
            fields,
        },
    )
}

/// A JSON body whose refusal (not JSON, wrong content type, unknown or missing field)
/// answers in the API's error format.
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<S, T> axum::extract::FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(r) => Err(rejection(r.status(), "bad request body", r.body_text())),
        }
    }
}

/// Query parameters whose refusal answers in the API's error format.
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<S, T> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(v)) => Ok(ApiQuery(v)),
            Err(r) => Err(rejection(r.status(), "bad query parameters", r.body_text())),
        }
    }
}

fn day(state: &AppState, v: &str, field: &str) -> Result<jiff::civil::Date, ApiError> {
    let today = Timestamp::now()
        .to_zoned_datetime(state.ctx.zone.clone())
        .date();
    match v {
        "today" => Ok(today),
        "tomorrow" => today
            .tomorrow()
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string())),
        _ => parse_da(v).filter(|_| v.len() == 8).ok_or_else(|| {
            ApiError(
                StatusCode::BAD_REQUEST,
                ErrorBody {
                    error: "bad filter".into(),
                    fields: vec![FieldProblem {
                        field: field.into(),
                        problem: format!("{v:?} is not today, tomorrow or YYYYMMDD"),
                    }],
                },
            )
        }),
    }
}

fn statuses(v: &str) -> Result<Vec<StepStatus>, ApiError> {
    v.split(',')
        .map(|s| {
            s.trim()
                .to_ascii_uppercase()
                .parse::<StepStatus>()
                .map_err(|_| {
                    ApiError(
                        StatusCode::BAD_REQUEST,
                        ErrorBody {
                            error: "bad filter".into(),
                            fields: vec![FieldProblem {
                                field: "status".into(),
                                problem: format!(
                                    "{s:?} is not SCHEDULED, STARTED, COMPLETED or DISCONTINUED"
                                ),
                            }],
                        },
                    )
                })
        })
        .collect()
}

/// List the worklist, a page at a time.
#[utoipa::path(
    get, path = "/api/v1/worklist", params(WorklistQuery),
    responses(
        (status = 200, description = "Entries, by scheduled start: one page (`limit`, default \
                                      500, at most 5000)", body = [EntryView],
            headers(("Link" = String, description = "`<...>; rel=\"next\"`: the next page, \
                     with the same filters; absent on the last page"))),
        (status = 400, description = "A filter, the limit or the cursor is malformed", body = ErrorBody),
        (status = 401, description = "No or invalid token"),
        (status = 429, description = "Too many token checks from this address at once")
    )
)]
async fn list_worklist(
    _who: Reader,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<WorklistQuery>,
) -> Result<Response, ApiError> {
    let limit = paging::limit(q.limit, paging::WORKLIST_DEFAULT)?;
    let after = q.cursor.as_deref().map(EntryKey::parse).transpose()?;
    let mut filter = EntryFilter::default();
    if let Some(d) = &q.date {
        let d = day(&state, d, "date")?;
        filter.from_date = Some(d);
        filter.to_date = Some(d);
    }
    if let Some(d) = &q.from {
        filter.from_date = Some(day(&state, d, "from")?);
    }
    if let Some(d) = &q.to {
        filter.to_date = Some(day(&state, d, "to")?);
    }
    filter.station_ae_title = q.station.clone();
    filter.modality = q.modality.clone();
    filter.source = q.source.clone();
    if let Some(s) = &q.status {
        filter.statuses = statuses(s)?;
    }
    // The next page starts on the cursor's day: the store skips the days before it.
    if let Some(k) = &after
        && filter.from_date.is_none_or(|d| d < k.date())
    {
        filter.from_date = Some(k.date());
    }
    let (page, last) = state
        .ctx
        .store
        .run(move |s| {
            let mut page = Vec::with_capacity(limit.min(1024));
            let mut last = None;
            let mut more = false;
            s.scan_entries(&filter, |e| {
                let key = EntryKey::of(e);
                if after.as_ref().is_some_and(|a| key <= *a) {
                    return ControlFlow::Continue(());
                }
                if page.len() == limit {
                    more = true;
                    return ControlFlow::Break(());
                }
                page.push(EntryView::from(e));
                last = Some(key);
                ControlFlow::Continue(())
            })?;
            Ok((page, last.filter(|_| more)))
        })
        .await
        .map_err(ApiError::store)?;
    let Some(last) = last else {
        return Ok(Json(page).into_response());
    };
    let link = paging::next_link(
        "/api/v1/worklist",
        &[
            ("date", q.date),
            ("from", q.from),
            ("to", q.to),
            ("station", q.station),
            ("modality", q.modality),
            ("status", q.status),
            ("source", q.source),
            ("limit", Some(limit.to_string())),
            ("cursor", Some(last.cursor())),
        ],
    );
    Ok(([(header::LINK, link)], Json(page)).into_response())
}

/// One entry.
#[utoipa::path(
    get, path = "/api/v1/entries/{source}/{record_id}",
    params(("source" = String, Path), ("record_id" = String, Path)),
    responses(
        (status = 200, body = EntryView),
        (status = 404, description = "No such entry", body = ErrorBody)
    )
)]
async fn get_entry(
    _who: Reader,
    State(state): State<AppState>,
    Path((source, record_id)): Path<(String, String)>,
) -> Result<Json<EntryView>, ApiError> {
    let found = state
        .ctx
        .store
        .run(move |s| s.get(&source, &record_id))
        .await
        .map_err(ApiError::store)?;
    found
        .as_ref()
        .map(|e| Json(EntryView::from(e)))
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no such entry"))
}

/// Override an entry's status (recorded as set by `admin`; a sync never resets it).
#[utoipa::path(
    put, path = "/api/v1/entries/{source}/{record_id}/status",
    params(("source" = String, Path), ("record_id" = String, Path)),
    request_body = StatusInput,
    responses(
        (status = 200, body = EntryView),
        (status = 403, description = "Read-only token"),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)
    )
)]
async fn set_status(
    Writer(who): Writer,
    State(state): State<AppState>,
    Path((source, record_id)): Path<(String, String)>,
    ApiJson(input): ApiJson<StatusInput>,
) -> Result<Json<EntryView>, ApiError> {
    let status = statuses(&input.status)
        .ok()
        .filter(|s| s.len() == 1)
        .and_then(|s| s.first().copied())
        .ok_or_else(|| {
            ApiError::invalid(vec![FieldProblem {
                field: "status".into(),
                problem: format!(
                    "{:?} is not SCHEDULED, STARTED, COMPLETED or DISCONTINUED",
                    input.status
                ),
            }])
        })?;
    let updated = override_status(&state.ctx.store, &source, &record_id, status)
        .await
        .map_err(ApiError::store)?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no such entry"))?;
    tracing::info!(
        token_name = %who.name, source = %source, record_id = %record_id,
        status = status.as_dicom(), "status overridden by an admin"
    );
    Ok(Json(EntryView::from(&updated)))
}

/// Sets an entry's status as an admin's choice (recorded as set by `admin`, so a sync
/// never resets it); the entry as it is then, or `None` when there is no such entry. The
/// API and the status page both change statuses through this.
pub(crate) async fn override_status(
    store: &Store,
    source: &str,
    record_id: &str,
    status: StepStatus,
) -> Result<Option<StoredEntry>, StoreError> {
    let (src, rec) = (source.to_string(), record_id.to_string());
    store
        .run(move |s| {
            let Some(e) = s.get(&src, &rec)? else {
                return Ok(None);
            };
            s.set_status(e.meta.row_id, status, StatusSetBy::Admin, Timestamp::now())?;
            s.get(&src, &rec)
        })
        .await
}

fn manual_error(e: ManualEntryError) -> ApiError {
    match e {
        ManualEntryError::Invalid(problems) => ApiError::invalid(
            problems
                .into_iter()
                .map(|(field, problem)| FieldProblem {
                    field: field.to_string(),
                    problem,
                })
                .collect(),
        ),
        ManualEntryError::Exists(id) => ApiError::new(
            StatusCode::CONFLICT,
            format!("a manual entry with record_id {id:?} exists already"),
        ),
        ManualEntryError::NotFound(id) => {
            ApiError::new(StatusCode::NOT_FOUND, format!("no manual entry {id:?}"))
        }
        ManualEntryError::NotManual(_) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "only manual entries are written here",
        ),
        ManualEntryError::Store(e) => ApiError::store(e),
    }
}

/// A fresh record id for a manual entry: the time and a random suffix.
pub(crate) fn new_record_id() -> String {
    use rand::Rng;
    let now = Timestamp::now();
    let suffix: u32 = rand::rng().random_range(0..0x10000);
    format!("m{}-{suffix:04x}", now.as_millisecond())
}

/// Create a manual entry (walk-ins, phantom scans).
#[utoipa::path(
    post, path = "/api/v1/manual-entries",
    request_body = ManualEntryInput,
    responses(
        (status = 201, description = "Created", body = EntryView),
        (status = 403, description = "Read-only token"),
        (status = 409, description = "record_id taken", body = ErrorBody),
        (status = 422, description = "Invalid values, each field named", body = ErrorBody)
    )
)]
async fn create_manual(
    Writer(who): Writer,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<ManualEntryInput>,
) -> Result<Response, ApiError> {
    let record_id = input
        .record_id
        .clone()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(new_record_id);
    let entry = input.to_entry(&record_id).map_err(ApiError::invalid)?;
    let stored = state
        .ctx
        .store
        .run(move |s| Ok(s.create_manual(&entry, Timestamp::now())))
        .await
        .map_err(ApiError::store)?
        .map_err(manual_error)?;
    tracing::info!(token_name = %who.name, record_id = %record_id, "manual entry created");
    let location = format!("/api/v1/entries/{MANUAL_SOURCE}/{record_id}");
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(EntryView::from(&stored)),
    )
        .into_response())
}

/// Replace a manual entry's values.
#[utoipa::path(
    put, path = "/api/v1/manual-entries/{record_id}",
    params(("record_id" = String, Path)),
    request_body = ManualEntryInput,
    responses(
        (status = 200, body = EntryView),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)
    )
)]
async fn update_manual(
    Writer(who): Writer,
    State(state): State<AppState>,
    Path(record_id): Path<String>,
    ApiJson(input): ApiJson<ManualEntryInput>,
) -> Result<Json<EntryView>, ApiError> {
    if let Some(other) = input.record_id.as_deref().filter(|r| *r != record_id) {
        return Err(ApiError::invalid(vec![FieldProblem {
            field: "record_id".into(),
            problem: format!("{other:?} differs from the path's {record_id:?}"),
        }]));
    }
    let entry = input.to_entry(&record_id).map_err(ApiError::invalid)?;
    let stored = state
        .ctx
        .store
        .run(move |s| Ok(s.update_manual(&entry, Timestamp::now())))
        .await
        .map_err(ApiError::store)?
        .map_err(manual_error)?;
    tracing::info!(token_name = %who.name, record_id = %record_id, "manual entry updated");
    Ok(Json(EntryView::from(&stored)))
}

/// Delete a manual entry.
#[utoipa::path(
    delete, path = "/api/v1/manual-entries/{record_id}",
    params(("record_id" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody))
)]
async fn delete_manual(
    Writer(who): Writer,
    State(state): State<AppState>,
    Path(record_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let rec = record_id.clone();
    let deleted = state
        .ctx
        .store
        .run(move |s| s.delete_manual(&rec))
        .await
        .map_err(ApiError::store)?;
    if deleted {
        tracing::info!(token_name = %who.name, record_id = %record_id, "manual entry deleted");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no manual entry {record_id:?}"),
        ))
    }
}

/// Sync runs, newest first, a page at a time.
#[utoipa::path(
    get, path = "/api/v1/sync-runs", params(SyncRunsQuery),
    responses(
        (status = 200, description = "Runs, newest first: one page (`limit`, default 20, at \
                                      most 5000)", body = [SyncRunView],
            headers(("Link" = String, description = "`<...>; rel=\"next\"`: the next page; \
                     absent on the last page"))),
        (status = 400, description = "The limit or the cursor is malformed", body = ErrorBody)
    )
)]
async fn list_sync_runs(
    _who: Reader,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<SyncRunsQuery>,
) -> Result<Response, ApiError> {
    let limit = paging::limit(q.limit, paging::SYNC_RUNS_DEFAULT)?;
    let offset = paging::offset(q.cursor.as_deref())?;
    let source = q.source.clone();
    // The store lists the newest runs first: this page and one more run, to know whether
    // another page follows.
    let runs = state
        .ctx
        .store
        .run(move |s| s.recent_sync_runs(source.as_deref(), offset + limit + 1))
        .await
        .map_err(ApiError::store)?;
    let more = runs.len() > offset + limit;
    let page: Vec<SyncRunView> = runs
        .iter()
        .skip(offset)
        .take(limit)
        .map(SyncRunView::from)
        .collect();
    if !more {
        return Ok(Json(page).into_response());
    }
    let link = paging::next_link(
        "/api/v1/sync-runs",
        &[
            ("source", q.source),
            ("limit", Some(limit.to_string())),
            ("cursor", Some((offset + limit).to_string())),
        ],
    );
    Ok(([(header::LINK, link)], Json(page)).into_response())
}

/// The configured sources and their newest run, a page at a time.
#[utoipa::path(
    get, path = "/api/v1/sources", params(PageQuery),
    responses(
        (status = 200, description = "Sources: one page (`limit`, default 500, at most 5000)",
            body = [SourceView],
            headers(("Link" = String, description = "`<...>; rel=\"next\"`: the next page; \
                     absent on the last page"))),
        (status = 400, description = "The limit or the cursor is malformed", body = ErrorBody)
    )
)]
async fn list_sources(
    _who: Reader,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    let limit = paging::limit(q.limit, paging::SOURCES_DEFAULT)?;
    let offset = paging::offset(q.cursor.as_deref())?;
    let all = state.ctx.sync.sources();
    let more = all.len() > offset + limit;
    let page: Vec<SourceInfo> = all.into_iter().skip(offset).take(limit).collect();
    let page = views_of(&state, page).await?;
    if !more {
        return Ok(Json(page).into_response());
    }
    let link = paging::next_link(
        "/api/v1/sources",
        &[
            ("limit", Some(limit.to_string())),
            ("cursor", Some((offset + limit).to_string())),
        ],
    );
    Ok(([(header::LINK, link)], Json(page)).into_response())
}

async fn views_of(state: &AppState, sources: Vec<SourceInfo>) -> Result<Vec<SourceView>, ApiError> {
    let names: Vec<String> = sources.iter().map(|s| s.name.clone()).collect();
    let runs = state
        .ctx
        .store
        .run(move |s| {
            names
                .iter()
                .map(|n| Ok(s.recent_sync_runs(Some(n), 1)?.pop()))
                .collect::<Result<Vec<_>, worklist_store::StoreError>>()
        })
        .await
        .map_err(ApiError::store)?;
    Ok(sources
        .into_iter()
        .zip(runs)
        .map(|(s, run)| SourceView {
            name: s.name,
            interval_seconds: s.interval.as_secs(),
            enabled: true,
            last_run: run.as_ref().map(SyncRunView::from),
        })
        .collect())
}

/// Sync a source now.
#[utoipa::path(
    post, path = "/api/v1/sources/{name}/sync",
    params(("name" = String, Path), SyncNowQuery),
    responses(
        (status = 200, description = "The run (with wait=true)", body = SyncRunView),
        (status = 202, description = "Queued"),
        (status = 404, description = "No such enabled source", body = ErrorBody)
    )
)]
async fn sync_now(
    Writer(who): Writer,
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<SyncNowQuery>,
) -> Result<Response, ApiError> {
    let now = SyncNow {
        wait: q.wait.unwrap_or(false),
        accept_mass_change: q.accept_mass_change.unwrap_or(false),
    };
    tracing::info!(
        token_name = %who.name,
        source = %name,
        accept_mass_change = now.accept_mass_change,
        "sync requested by an admin"
    );
    match state.ctx.sync.trigger(&name, now).await {
        Ok(Some(run)) => Ok(Json(SyncRunView::from(&run)).into_response()),
        Ok(None) => Ok((
            StatusCode::ACCEPTED,
            Json(serde_json::json!({ "queued": name })),
        )
            .into_response()),
        Err(e @ SyncTriggerError::UnknownSource(_)) => {
            Err(ApiError::new(StatusCode::NOT_FOUND, e.to_string()))
        }
        Err(e @ SyncTriggerError::Stopping) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            e.to_string(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_messages_name_their_field() {
        assert_eq!(
            field_of("Failed to deserialize the JSON body into the target type: unknown field `colour`, expected one of `record_id`, `patient_id` at line 1 column 9").as_deref(),
            Some("colour")
        );
        assert_eq!(
            field_of("missing field `start_date` at line 1 column 2").as_deref(),
            Some("start_date")
        );
        assert_eq!(field_of("EOF while parsing a value"), None);
    }
}
