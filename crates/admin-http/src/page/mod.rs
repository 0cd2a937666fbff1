//! The status page: server-rendered HTML, no JavaScript. Without a live session it shows
//! only the sign-in form (no subject data); signed in, it serves the scan day.
//!
//! - `layout`: the frame and style every page shares, and the "something failed" pages;
//! - `login`: signing in (with its pre-session CSRF protection) and out;
//! - `words`: dates, times, names and statuses in the site's words;
//! - `scan_day`: today's worklist by status with the counts consoles see (`/`), and one
//!   station's view that refreshes itself (`/stations/{AE}`);
//! - `sources`: each source's last success and last attempt in one line, and the
//!   "may be stale" banner (the rule of `/readyz`);
//! - `actions`: a row's status change (completed / discontinued / back to scheduled);
//! - `manual`: the manual-entry form (add, edit, delete), with the known stations.
//!
//! Every form carries the session's CSRF token and needs a write token; a change is
//! recorded as set by `admin`, through the same store calls the API makes. A form URL
//! asked for with GET shows its form or goes back to the page, never a bare 405.
//!
//! # Life of a row action
//!
//! A technician presses "Completed" on a row: the browser posts `/entries/status` with the
//! session's CSRF token, the row's source and record id, and where to go back to (the
//! scan day, or the station view it came from). `actions` checks the session, the token
//! and the write role ([`refuse_form`]), changes the status with `api::override_status`
//! (set by `admin`, never reset by a sync), and redirects back, where the row now sits
//! under "Completed" and the count of entries offered to consoles is one less.

mod actions;
mod layout;
mod login;
mod manual;
mod scan_day;
mod sources;
mod words;

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;
use worklist_store::{KnownStation, TokenRole};

use crate::AppState;
use crate::auth::PageUser;
use crate::sync_control::SyncNow;

pub(crate) fn routes() -> Router<AppState> {
    let back = || get(|| async { Redirect::to("/") });
    Router::new()
        .route("/", get(index))
        .route("/login", back().post(login::login))
        .route("/logout", back().post(login::logout))
        .route("/sync", back().post(sync_now))
        .route("/stations/{ae_title}", get(scan_day::station_view))
        .route("/entries/status", back().post(actions::set_status))
        .route("/manual", get(manual::add_form).post(manual::add))
        .route("/manual/edit", get(manual::edit_form).post(manual::edit))
        .route("/manual/delete", back().post(manual::delete))
}

/// What the page says above the worklist after a form.
#[derive(Debug, Clone, Default)]
pub(super) enum Notice {
    /// Nothing.
    #[default]
    None,
    /// It worked.
    Done(&'static str),
    /// It was refused, and why.
    Refused(String),
}

/// Query flags the page shows after a redirect.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Flash {
    flash: Option<String>,
}

impl Flash {
    /// What to say for this flag.
    pub(super) fn notice(&self) -> Notice {
        self.flash
            .as_deref()
            .and_then(flash_text)
            .map_or(Notice::None, Notice::Done)
    }
}

fn flash_text(code: &str) -> Option<&'static str> {
    match code {
        "sync" => Some("Sync requested; the sources below show it once it has run."),
        "added" => Some("Manual entry added."),
        "updated" => Some("Manual entry saved."),
        "deleted" => Some("Manual entry deleted."),
        "status" => Some("Status changed."),
        _ => None,
    }
}

async fn index(
    user: Option<PageUser>,
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(flash): Query<Flash>,
) -> Response {
    match user {
        None => login::login_response(&state, &headers, StatusCode::OK, None),
        Some(user) => scan_day::page(&state, &user, None, flash.notice()).await,
    }
}

/// What a path segment or query value keeps as it is: RFC 3986's unreserved characters.
const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `value` percent-encoded for a path segment or a query value.
pub(super) fn url_part(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, UNRESERVED).to_string()
}

/// The URL of a station's view.
pub(super) fn station_url(ae_title: &str) -> String {
    format!("/stations/{}", url_part(ae_title))
}

/// Where a form goes back to: the station view it came from, or the scan day.
pub(super) fn back_to(station: Option<&str>) -> String {
    station
        .filter(|s| !s.is_empty())
        .map_or_else(|| "/".to_string(), station_url)
}

/// Every station the sources' mappings name, each once, in configuration order.
pub(super) fn known_stations(state: &AppState) -> Vec<KnownStation> {
    let mut out: Vec<KnownStation> = Vec::new();
    for source in state.ctx.sync.sources() {
        for s in source.stations {
            if !out.iter().any(|k| k.ae_title == s.ae_title) {
                out.push(s);
            }
        }
    }
    out
}

/// Why a page form (or a form page) was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    /// No live session: back to the sign-in page.
    SignedOut,
    /// The form's CSRF token is not the session's.
    StaleForm,
    /// A read token.
    ReadOnly,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::SignedOut => Redirect::to("/").into_response(),
            Refusal::StaleForm => layout::message_page(
                StatusCode::FORBIDDEN,
                "This form was stale (from before you signed in again, or from another \
                 site). Reload the page and try again.",
                "/",
            ),
            Refusal::ReadOnly => layout::message_page(
                StatusCode::FORBIDDEN,
                "A write token is needed for this.",
                "/",
            ),
        }
    }
}

/// A user with a write token, for the pages that show a form (no CSRF check: showing a
/// form changes nothing).
pub(super) fn writer(user: Option<PageUser>) -> Result<PageUser, Refusal> {
    match user {
        Some(u) if u.role == TokenRole::Write => Ok(u),
        Some(_) => Err(Refusal::ReadOnly),
        None => Err(Refusal::SignedOut),
    }
}

/// The checks every page form shares: a live session, its CSRF token, the write role.
pub(super) fn refuse_form(user: Option<PageUser>, csrf: &str) -> Result<PageUser, Refusal> {
    let user = user.ok_or(Refusal::SignedOut)?;
    if !login::same_secret(&user.session.csrf, csrf) {
        tracing::warn!(token_name = %user.name, "status page form with a wrong CSRF token");
        return Err(Refusal::StaleForm);
    }
    writer(Some(user))
}

#[derive(Debug, Deserialize)]
struct SyncForm {
    csrf: String,
    source: String,
    /// The confirmation box of a refused mass change ([`sources::list`]).
    accept_mass_change: Option<String>,
}

async fn sync_now(
    user: Option<PageUser>,
    State(state): State<AppState>,
    Form(f): Form<SyncForm>,
) -> Response {
    let user = match refuse_form(user, &f.csrf) {
        Ok(u) => u,
        Err(r) => return r.into_response(),
    };
    let now = SyncNow {
        wait: false,
        accept_mass_change: f.accept_mass_change.is_some(),
    };
    tracing::info!(
        token_name = %user.name,
        source = %f.source,
        accept_mass_change = now.accept_mass_change,
        "sync requested from the status page"
    );
    match state.ctx.sync.trigger(&f.source, now).await {
        Ok(_) => Redirect::to("/?flash=sync").into_response(),
        Err(e) => scan_day::page(&state, &user, None, Notice::Refused(e.to_string())).await,
    }
}
