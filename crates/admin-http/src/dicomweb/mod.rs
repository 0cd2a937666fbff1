//! DICOMweb on the admin interface: the Modality Scheduled Procedure Step (worklist)
//! search of PS3.18 chapter 14, `GET {base}/modality-scheduled-procedure-steps`, here;
//! the Modality Performed Procedure Step service of chapter 15 in [`mpps`], its request
//! bodies read by [`json_read`].
//!
//! # Life of a search
//!
//! The `Reader` extractor checks the Bearer token as for `/api/v1` (401 without a valid
//! one); [`acceptable`] checks `Accept` (406 unless DICOM JSON may be sent); `params`
//! turns the query parameters into a C-FIND identifier (400 naming a bad parameter);
//! [`MwlQuery::parse`] reads it exactly as it reads a C-FIND's (a refused key is a 400
//! naming its parameter); [`search_page`] reads the page's matches through the same
//! candidate filter and matching as C-FIND, from one snapshot, on the blocking pool; `json`
//! writes each response identifier in the DICOM JSON model. A page cut by `limit` carries
//! `Warning: 299 {host}: There are additional results that can be requested` (PS3.18
//! 8.3.4.4). No match is `200` with `[]`.
//!
//! Unlike a C-FIND, a search is neither restricted to the caller's station nor cut by
//! `max_responses`: `limit` and `offset` page it.

mod json;
mod json_read;
mod mpps;
mod params;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mwl_scp::MwlQuery;
use mwl_scp::find_stream::search_page;

use crate::AppState;
use crate::api::ApiError;
use crate::api_types::{ErrorBody, FieldProblem};
use crate::auth::Reader;

/// The media type of every answer.
pub(crate) const DICOM_JSON: &str = "application/dicom+json";

/// The search's and the MPPS service's routes under `base` (`/dicomweb`).
pub(crate) fn routes(base: &str) -> Router<AppState> {
    let base = base.trim_end_matches('/');
    Router::new()
        .route(
            &format!("{base}/modality-scheduled-procedure-steps"),
            get(search),
        )
        .merge(mpps::routes(base))
}

/// Whether an `Accept` header lets us send DICOM JSON: absent, or one of its media ranges
/// is `application/dicom+json`, `application/json`, `application/*` or `*/*` (with a
/// quality above 0).
pub(crate) fn acceptable(headers: &HeaderMap) -> bool {
    let mut any = false;
    for value in headers.get_all(header::ACCEPT) {
        any = true;
        let Ok(text) = value.to_str() else { continue };
        for range in text.split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default().to_ascii_lowercase();
            let refused = parts.any(|p| {
                p.split_once('=').is_some_and(|(k, v)| {
                    k.trim().eq_ignore_ascii_case("q") && v.trim().parse::<f32>() == Ok(0.0)
                })
            });
            if !refused
                && matches!(
                    media.as_str(),
                    DICOM_JSON | "application/json" | "application/*" | "*/*"
                )
            {
                return true;
            }
        }
    }
    !any
}

fn bad_request(parameter: &str, problem: String) -> ApiError {
    ApiError(
        StatusCode::BAD_REQUEST,
        ErrorBody {
            error: format!("bad query parameter {parameter:?}: {problem}"),
            fields: vec![FieldProblem {
                field: parameter.into(),
                problem,
            }],
        },
    )
}

/// `GET {base}/modality-scheduled-procedure-steps`: see the [module doc](self).
async fn search(
    _who: Reader,
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    if !acceptable(&headers) {
        return Err(ApiError(
            StatusCode::NOT_ACCEPTABLE,
            ErrorBody {
                error: format!("only {DICOM_JSON} is supported"),
                fields: Vec::new(),
            },
        ));
    }
    let search = params::parse(&pairs).map_err(|e| bad_request(&e.parameter, e.problem))?;
    let query = MwlQuery::parse(&search.identifier).map_err(|e| {
        let parameter = search.parameter_of(e.offending()).unwrap_or("query");
        let problem = match &e {
            mwl_scp::QueryError::InvalidIdentifier { reason, .. } => reason.clone(),
        };
        bad_request(parameter, problem)
    })?;
    let (offset, limit) = (search.offset, search.limit);
    let page = state
        .ctx
        .store
        .run(move |s| search_page(s, &query, offset, limit))
        .await
        .map_err(ApiError::store)?;
    let items: Vec<json::DataSet<'_>> = page.items.iter().map(json::DataSet).collect();
    let body = serde_json::to_vec(&items).map_err(|e| {
        tracing::error!(error = %e, "DICOMweb: a result could not be written as JSON");
        ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorBody {
                error: "a result could not be written as JSON".into(),
                fields: Vec::new(),
            },
        )
    })?;
    let mut response = (
        [(header::CONTENT_TYPE, HeaderValue::from_static(DICOM_JSON))],
        body,
    )
        .into_response();
    if page.more {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| !h.is_empty() && !h.contains(char::is_whitespace))
            .unwrap_or("mwlbridge");
        let warning = |host: &str| {
            HeaderValue::from_str(&format!(
                "299 {host}: There are additional results that can be requested"
            ))
        };
        if let Ok(v) = warning(host).or_else(|_| warning("mwlbridge")) {
            response.headers_mut().insert(header::WARNING, v);
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> bool {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).expect("header"));
        acceptable(&h)
    }

    #[test]
    fn accept_negotiation() {
        assert!(acceptable(&HeaderMap::new()));
        for ok in [
            "application/dicom+json",
            "*/*",
            "application/json",
            "application/dicom+xml, application/json;q=0.5",
            "Application/DICOM+JSON; charset=utf-8",
        ] {
            assert!(accept(ok), "{ok}");
        }
        for no in [
            "application/dicom+xml",
            "multipart/related; type=\"application/dicom+xml\"",
            "text/html",
            "application/dicom+json;q=0",
        ] {
            assert!(!accept(no), "{no}");
        }
    }
}
