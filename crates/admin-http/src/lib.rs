//! mwlbridge's admin HTTP interface, served inside `mwlbridge serve` on its own address:
//!
//! - `GET /healthz`, `GET /readyz`, `GET /metrics`: unauthenticated, no subject data;
//! - `/api/v1/...`: the REST API (JSON, OpenAPI document at `/api/v1/openapi.json`),
//!   behind API tokens (`Authorization: Bearer`), read or write role;
//! - `{base}/modality-scheduled-procedure-steps` (`/dicomweb` by default): the DICOMweb
//!   worklist search, behind the same tokens (read role);
//! - `{base}/modality-performed-procedure-steps[/{uid}]`: the DICOMweb MPPS service
//!   (create and update with a write token, retrieve with any);
//! - `/`: the server-rendered status page for the scan day (and `/stations/{AE}`, one
//!   station's), after a login with a token.
//!
//! Tokens are created with `mwlbridge token create`; only an Argon2 hash of each secret is
//! stored. There is no default account or password.
//!
//! # Modules
//!
//! - `lib.rs` (here): [`router`] joins the routes, [`AdminContext`] is what every handler
//!   shares (store, sync control, metrics, site zone, settings), and every response gets
//!   the security headers.
//! - [`serve`]: the router on a listener, plain HTTP or HTTPS, until shutdown, with
//!   every connection bounded ([`ServeLimits`]: header and idle timeouts, a connection
//!   cap, a bounded shutdown).
//! - `health`: `/healthz`, `/readyz`, `/metrics`, without authentication.
//! - `dicomweb`: the DICOMweb worklist search (PS3.18 chapter 14) under
//!   [`AdminSettings::dicomweb_base`], behind the API's tokens (read role): query
//!   parameters to a C-FIND identifier, matched by `mwl-scp` exactly as a C-FIND, answered
//!   in the media type `dicomweb::media` negotiates (DICOM JSON by default, the PS3.19
//!   XML model, or either as `multipart/related`); and the MPPS web service (PS3.18 chapter 15): DICOM JSON
//!   bodies read by `json_read`, handed to `mwl-scp`'s own N-CREATE and N-SET, the token's
//!   name standing for the calling AE title.
//! - `api`: the REST API's handlers under `/api/v1` and its OpenAPI document;
//!   `api_types`: the JSON shapes they read and write (DICOM DA/TM in the site's zone);
//!   `paging`: the lists' `limit`, `cursor` and `next` link.
//! - `auth`: who is asking (Bearer token or session cookie) and whether the role
//!   suffices; [`tokens`]: creating tokens and checking one against its stored hash
//!   (cached, in constant time whether the id exists or not, bounded per client
//!   address); `sessions`: status-page logins and their CSRF tokens, in memory, capped
//!   per token; `refusals`: refused tokens logged once per kind, then counted per
//!   interval.
//! - `page`: the server-rendered status page and its forms (a module per concern: see
//!   its doc); `readiness`: whether each source synced recently enough, the one rule of
//!   `/readyz` and the page's "may be stale" banner.
//! - [`sync_control`]: the [`SyncControl`] trait through which "sync now" and the source
//!   list reach the binary's sync worker.
//!
//! # Life of an API call
//!
//! `PUT /api/v1/entries/calpendo/4711/status` with `{"status": "COMPLETED"}`: [`serve`]
//! accepts the connection and hands the request to the [`router`], which routes it to
//! `api::set_status`. Before the handler runs, its `auth::Writer` argument extracts the
//! Bearer token and has [`tokens`] verify it against the store (a refusal is 401, or 403
//! for a read-only token, or 429 when the client has too many checks under way; logged
//! with the token's name, never the token, and counted rather than logged one by one
//! when it repeats). The handler
//! parses the body into an `api_types` shape, checks the status term, and changes the
//! entry in one [`Store::run`] call on the blocking pool, recorded as set by `admin`;
//! the store's errors become 503. The answer is the entry as `api_types::EntryView`, with
//! the security headers added on the way out.

mod api;
mod api_types;
mod auth;
mod dicomweb;
mod health;
mod page;
mod paging;
mod readiness;
mod refusals;
mod serve;
mod sessions;
pub mod sync_control;
pub mod tokens;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use prometheus_client::registry::Registry;
use worklist_store::{StepStatus, Store};

pub use serve::{AdminServeError, ServeLimits, serve, serve_with_limits};
pub use sync_control::{SourceInfo, SyncControl, SyncNow, SyncTriggerError};

/// Sets the gauge of worklist entries in one status (called for each status at scrape).
pub type SetEntryGauge = Arc<dyn Fn(StepStatus, u64) + Send + Sync>;

/// What `/metrics` exports: the process's registry, and the gauge of worklist entries by
/// status, refreshed from the store at each scrape.
#[derive(Clone)]
pub struct MetricsExport {
    /// Every registered metric.
    pub registry: Arc<Registry>,
    /// Sets the entries-by-status gauge.
    pub set_entries: SetEntryGauge,
}

/// Settings of the admin interface.
#[derive(Debug, Clone)]
pub struct AdminSettings {
    /// `/readyz` answers 503 once a source has had no successful sync for this many of its
    /// intervals.
    pub unready_after_intervals: u32,
    /// How long a status-page login lasts.
    pub session_lifetime: Duration,
    /// Whether the interface is served over HTTPS (cookies are then marked `Secure`).
    pub https: bool,
    /// Where DICOMweb is served (`/dicomweb`); `None`: not served.
    pub dicomweb_base: Option<String>,
    /// MPPS bounds and authorization, as for DIMSE (the token's name is the calling AE).
    pub mpps: mwl_scp::mpps::MppsPolicy,
    /// `station_filter_by_calling_ae`: a web N-CREATE links only steps scheduled on the
    /// token's name.
    pub mpps_own_station_only: bool,
}

/// Everything the handlers share.
#[derive(Clone)]
pub struct AdminContext {
    /// The worklist store.
    pub store: Store,
    /// The sync worker's controls.
    pub sync: Arc<dyn SyncControl>,
    /// What `/metrics` exports (`None`: an empty exposition).
    pub metrics: Option<MetricsExport>,
    /// The site's zone (DICOM dates and times are local to it).
    pub zone: TimeZone,
    /// Settings.
    pub settings: AdminSettings,
    /// When the process started (readiness grace before the first sync).
    pub started_at: Timestamp,
}

#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) ctx: AdminContext,
    pub(crate) tokens: Arc<tokens::TokenVerifier>,
    pub(crate) sessions: Arc<sessions::Sessions>,
    pub(crate) refusals: Arc<refusals::Refusals>,
}

/// The whole interface as an axum router.
pub fn router(ctx: AdminContext) -> Router {
    let state = AppState {
        tokens: Arc::new(tokens::TokenVerifier::new(ctx.store.clone())),
        sessions: Arc::new(sessions::Sessions::new(ctx.settings.session_lifetime)),
        refusals: Arc::new(refusals::Refusals::new(refusals::INTERVAL)),
        ctx,
    };
    let dicomweb = match &state.ctx.settings.dicomweb_base {
        Some(base) => dicomweb::routes(base),
        None => Router::new(),
    };
    Router::new()
        .merge(health::routes())
        .merge(api::routes())
        .merge(page::routes())
        .merge(dicomweb)
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(state)
}

/// Headers every response carries: no caching of subject data, no framing, no sniffing.
async fn security_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    response
}
