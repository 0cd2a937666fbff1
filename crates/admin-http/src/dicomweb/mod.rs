//! DICOMweb on the admin interface: the Modality Scheduled Procedure Step (worklist)
//! search of PS3.18 chapter 14, `GET {base}/modality-scheduled-procedure-steps`, here;
//! the Modality Performed Procedure Step service of chapter 15 in [`mpps`].
//!
//! - [`media`]: content negotiation (`Accept`, `Accept-Charset`, the `accept` and
//!   `charset` query parameters) for the search and the MPPS retrieve;
//! - [`params`]: the search's query parameters as a C-FIND identifier;
//! - [`body`]: data sets as the negotiated payload, written by [`json`] (PS3.18 F.2),
//!   [`xml`] (PS3.19 Native DICOM Model) and [`multipart`] (`multipart/related`);
//! - [`json_read`]: the MPPS request bodies.
//!
//! # Life of a search
//!
//! The `Reader` extractor checks the Bearer token as for `/api/v1` (401 without a valid
//! one); [`media::negotiate`] picks the representation (406 naming the offered media types
//! when none is acceptable, 400 for a malformed `accept` parameter); `params` turns the
//! other query parameters into a C-FIND identifier (400 naming a bad parameter);
//! [`MwlQuery::parse`] reads it exactly as it reads a C-FIND's (a refused key is a 400
//! naming its parameter); [`search_page`] reads the page's matches through the same
//! candidate filter and matching as C-FIND, from one snapshot, on the blocking pool;
//! [`body::list`] writes each response identifier in the chosen model. A page cut by
//! `limit` carries `Warning: 299 {host}: There are additional results that can be
//! requested` (PS3.18 8.3.4.4). No match is `200` with `[]` (an empty multipart body).
//!
//! Unlike a C-FIND, a search is neither restricted to the caller's station nor cut by
//! `max_responses`: `limit` and `offset` page it.

mod body;
mod json;
mod json_read;
mod media;
mod mpps;
mod multipart;
mod params;
mod xml;

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
    let (negotiation, pairs) = media::take_query_params(pairs);
    let representation = media::negotiate(media::Target::List, &headers, &negotiation)?;
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
    let payload = body::list(representation, &page.items)?;
    let mut response = (
        [(header::CONTENT_TYPE, payload.content_type)],
        payload.bytes,
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
