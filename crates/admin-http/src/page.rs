//! The status page: server-rendered HTML, no JavaScript. Without a live session it shows
//! only the login form (no subject data); logged in, it shows today's worklist by station,
//! each source's last sync, a "sync now" button and a manual-entry form (write tokens).
//!
//! The sign-in form is protected against cross-site request forgery ("login CSRF": a
//! foreign page signing the browser in with the attacker's token) before any session
//! exists, the way OWASP recommends for login forms: the sign-in page sets a random
//! pre-session token in a cookie (`HttpOnly`, `SameSite=Strict`; over HTTPS `Secure` and
//! `__Host-`, so no other site or subdomain can set it) and in a hidden field, and
//! `POST /login` is refused (`403`) unless both are there and equal. A foreign page can
//! neither read the value nor make the browser send the cookie with its cross-site form.
//! A request the browser marks as cross-site (`Sec-Fetch-Site`) is refused as well.

use axum::Router;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;
use worklist_store::{EntryFilter, StoredEntry, TokenRole, format_da};

use crate::AppState;
use crate::api::{new_record_id, source_views};
use crate::api_types::{FieldProblem, ManualEntryInput, SourceView};
use crate::auth::{ClientAddr, PageUser, cookie, log_refusal, retry_after_value};
use crate::refusals::Refusal;
use crate::sessions::{COOKIE, random_hex};
use crate::tokens::TokenRejected;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/sync", post(sync_now))
        .route("/manual", post(add_manual))
}

const STYLE: &str = r#"
body{font-family:system-ui,sans-serif;margin:0 auto;max-width:72rem;padding:0.75rem;color:#1b1b1b}
h1{font-size:1.4rem}h2{font-size:1.15rem;margin-top:1.5rem}h3{font-size:1rem;margin:1rem 0 .3rem}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{border-bottom:1px solid #ddd;padding:.3rem .4rem;text-align:left;vertical-align:top}
th{white-space:nowrap}
.scroll{overflow-x:auto}
.ok{color:#0a6b2d}.failed{color:#a40000}.note{color:#555;font-size:.85rem}
.flash{background:#eef6ff;border:1px solid #9cc3ef;padding:.5rem;margin:.5rem 0}
.errors{background:#fff0f0;border:1px solid #e3a0a0;padding:.5rem;margin:.5rem 0}
form.inline{display:inline}
label{display:block;margin:.3rem 0}
input,select{font-size:1rem;max-width:100%}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(14rem,1fr));gap:.2rem 1rem}
button{font-size:1rem;padding:.3rem .8rem}
"#;

fn layout(title: &str, body: Markup) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (title) }
                    style { (maud::PreEscaped(STYLE)) }
                }
                body { (body) }
            }
        }
        .into_string(),
    )
}

/// How long the sign-in form's pre-session token lasts.
const LOGIN_CSRF_MAX_AGE: u64 = 24 * 3600;

/// The sign-in form's cookie: `__Host-` over HTTPS (only this host, over HTTPS, may set
/// it).
fn login_cookie_name(state: &AppState) -> &'static str {
    if state.ctx.settings.https {
        "__Host-mwlbridge_login"
    } else {
        "mwlbridge_login"
    }
}

/// The request's sign-in token, when it carries a well-formed one.
fn login_csrf_of(state: &AppState, headers: &HeaderMap) -> Option<String> {
    cookie(headers, login_cookie_name(state))
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn login_csrf_cookie(state: &AppState, value: &str) -> String {
    let secure = if state.ctx.settings.https {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={LOGIN_CSRF_MAX_AGE}{secure}",
        login_cookie_name(state)
    )
}

/// Compares two secrets in time that does not depend on where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// The sign-in page with `status`, its pre-session token in the form and the cookie
/// (the request's own when it has one, so that several open tabs all work).
fn login_response(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    message: Option<&str>,
) -> Response {
    let csrf = login_csrf_of(state, headers).unwrap_or_else(random_hex);
    let page = layout(
        "mwlbridge: sign in",
        html! {
            h1 { "mwlbridge" }
            p { "Sign in with an API token (" code { "mwlbridge token create" } ")." }
            @if let Some(m) = message { p.errors { (m) } }
            form method="post" action="/login" {
                input type="hidden" name="csrf" value=(csrf);
                label { "Token " input type="password" name="token" autocomplete="off" required; }
                button type="submit" { "Sign in" }
            }
        },
    );
    (
        status,
        [(header::SET_COOKIE, login_csrf_cookie(state, &csrf))],
        page,
    )
        .into_response()
}

/// Query flags the page shows after a redirect.
#[derive(Debug, Default, Deserialize)]
struct Flash {
    flash: Option<String>,
}

async fn index(
    user: Option<PageUser>,
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Query(flash): axum::extract::Query<Flash>,
) -> Response {
    match user {
        None => login_response(&state, &headers, StatusCode::OK, None),
        Some(user) => dashboard(&state, &user, flash.flash.as_deref(), &[], None).await,
    }
}

fn flash_text(code: &str) -> Option<&'static str> {
    match code {
        "sync" => Some("Sync requested; the table below shows it once it has run."),
        "added" => Some("Manual entry added."),
        _ => None,
    }
}

async fn dashboard(
    state: &AppState,
    user: &PageUser,
    flash: Option<&str>,
    errors: &[FieldProblem],
    form: Option<&ManualForm>,
) -> Response {
    let zone = state.ctx.zone.clone();
    let now = Timestamp::now().to_zoned_datetime(zone);
    let today = now.date();
    let filter = EntryFilter {
        from_date: Some(today),
        to_date: Some(today),
        ..EntryFilter::default()
    };
    let entries = state.ctx.store.run(move |s| s.list(&filter)).await;
    let sources = source_views(state).await;
    let (entries, sources) = match (entries, sources) {
        (Ok(e), Ok(s)) => (e, s),
        _ => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                layout(
                    "mwlbridge",
                    html! { h1 { "mwlbridge" } p.errors { "The worklist database is unavailable." } },
                ),
            )
                .into_response();
        }
    };
    let mut stations: Vec<(String, Vec<&StoredEntry>)> = Vec::new();
    for e in &entries {
        let station = e
            .entry
            .station_ae_title
            .clone()
            .unwrap_or_else(|| "(no station)".into());
        match stations.iter_mut().find(|(s, _)| *s == station) {
            Some((_, list)) => list.push(e),
            None => stations.push((station, vec![e])),
        }
    }
    stations.sort_by(|a, b| a.0.cmp(&b.0));
    let can_write = user.role == TokenRole::Write;
    let csrf = &user.session.csrf;
    let body = html! {
        h1 { "mwlbridge" }
        p.note {
            "Signed in as " strong { (user.name) } " (" (user.role.as_str()) "). "
            form.inline method="post" action="/logout" {
                input type="hidden" name="csrf" value=(csrf);
                button type="submit" { "Sign out" }
            }
        }
        @if let Some(text) = flash.and_then(flash_text) { p.flash { (text) } }
        h2 { "Today's worklist, " (format_da(today)) " (" (entries.len()) " entries)" }
        @if stations.is_empty() { p { "No entries today." } }
        @for (station, list) in &stations {
            section.station data-station=(station) {
                h3 { (station) " (" (list.len()) ")" }
                div.scroll { table {
                    thead { tr {
                        th { "Time" } th { "Patient ID" } th { "Name" } th { "Modality" }
                        th { "Description" } th { "Status" } th { "Set by" } th { "Source" }
                    } }
                    tbody { @for e in list {
                        tr.entry data-record=(e.entry.source_record_id) {
                            td { (e.entry.start.time().strftime("%H:%M")) }
                            td { (e.entry.patient_id) }
                            td { (e.entry.patient_name.as_deref().unwrap_or("")) }
                            td { (e.entry.modality.as_deref().unwrap_or("")) }
                            td { (e.entry.display_description().unwrap_or("")) }
                            td { (e.entry.status.as_dicom()) }
                            td { (e.meta.status_set_by.as_str()) }
                            td { (e.entry.source) }
                        }
                    } }
                } }
            }
        }
        h2 { "Sources" }
        (sources_table(&sources, can_write, csrf, &state.ctx.zone))
        @if can_write { (manual_form(csrf, errors, form)) }
        @else { p.note { "A write token is needed to add manual entries or sync now." } }
    };
    let code = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    (code, layout("mwlbridge: status", body)).into_response()
}

/// An RFC 3339 instant as the site's local time, to the second, with the zone's
/// abbreviation (`2026-11-26 08:01:08 CST`); the text itself when it does not parse.
fn local_time(rfc3339: &str, zone: &TimeZone) -> String {
    rfc3339.parse::<Timestamp>().map_or_else(
        |_| rfc3339.to_string(),
        |t| {
            t.to_zoned_datetime(zone.clone())
                .strftime("%Y-%m-%d %H:%M:%S %Z")
                .to_string()
        },
    )
}

fn sources_table(sources: &[SourceView], can_write: bool, csrf: &str, zone: &TimeZone) -> Markup {
    html! {
        div.scroll { table id="sources" {
            thead { tr {
                th { "Source" } th { "Last sync" } th { "Outcome" } th { "Fetched" }
                th { "Inserted" } th { "Updated" } th { "Discontinued" } th { "Error" } th {}
            } }
            tbody { @for s in sources {
                tr.source data-source=(s.name) {
                    td { (s.name) }
                    @match &s.last_run {
                        Some(r) => {
                            td { time datetime=(r.finished_at) { (local_time(&r.finished_at, zone)) } }
                            td class=(if r.outcome == "success" { "ok" } else { "failed" }) { (r.outcome) }
                            td { (r.fetched) } td { (r.inserted) } td { (r.updated) }
                            td { (r.discontinued) }
                            td { (r.error.as_deref().unwrap_or("")) }
                        }
                        None => { td colspan="7" { "never synced" } }
                    }
                    td { @if can_write {
                        form.inline method="post" action="/sync" {
                            input type="hidden" name="csrf" value=(csrf);
                            input type="hidden" name="source" value=(s.name);
                            button type="submit" { "Sync now" }
                        }
                    } }
                }
            } }
        } }
    }
}

/// The manual-entry form's fields.
#[derive(Debug, Default, Clone, Deserialize)]
struct ManualForm {
    csrf: String,
    patient_id: String,
    #[serde(default)]
    patient_name: String,
    start_date: String,
    start_time: String,
    #[serde(default)]
    station_ae_title: String,
    #[serde(default)]
    modality: String,
    #[serde(default)]
    sps_description: String,
    #[serde(default)]
    protocol_code_value: String,
}

fn manual_form(csrf: &str, errors: &[FieldProblem], form: Option<&ManualForm>) -> Markup {
    let f = form.cloned().unwrap_or_default();
    html! {
        h2 { "Add a manual entry" }
        p.note { "For walk-ins and phantom scans. Dates YYYYMMDD, times HHMM, names Family^Given." }
        @if !errors.is_empty() {
            div.errors { ul { @for e in errors { li { strong { (e.field) } ": " (e.problem) } } } }
        }
        form method="post" action="/manual" {
            input type="hidden" name="csrf" value=(csrf);
            div.grid {
                label { "Patient ID " input name="patient_id" required value=(f.patient_id); }
                label { "Patient name " input name="patient_name" value=(f.patient_name); }
                label { "Date " input name="start_date" required placeholder="YYYYMMDD" value=(f.start_date); }
                label { "Time " input name="start_time" required placeholder="HHMM" value=(f.start_time); }
                label { "Station AE title " input name="station_ae_title" value=(f.station_ae_title); }
                label { "Modality " input name="modality" placeholder="MR" value=(f.modality); }
                label { "Description " input name="sps_description" value=(f.sps_description); }
                label { "Protocol " input name="protocol_code_value" placeholder="protocol code" value=(f.protocol_code_value); }
            }
            button type="submit" { "Add" }
        }
    }
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    token: String,
    /// The sign-in page's pre-session token.
    #[serde(default)]
    csrf: String,
}

fn session_cookie(state: &AppState, value: &str, max_age: u64) -> String {
    let secure = if state.ctx.settings.https {
        "; Secure"
    } else {
        ""
    };
    format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
}

async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    // Checked before the token (and its Argon2 work): the form must come from our own
    // sign-in page, in a request the browser does not mark as cross-site.
    let cross_site = headers
        .get("sec-fetch-site")
        .is_some_and(|v| v != "same-origin" && v != "none");
    let paired = login_csrf_of(&state, &headers).is_some_and(|c| same_secret(&c, &form.csrf));
    if cross_site || !paired {
        state.refusals.record(Refusal {
            reason: if cross_site {
                "cross-site sign-in form"
            } else {
                "sign-in form without its CSRF token"
            },
            token_name: None,
            path: "/login",
            client,
        });
        return login_response(
            &state,
            &headers,
            StatusCode::FORBIDDEN,
            Some("The sign-in form was stale or came from another site. Sign in again."),
        );
    }
    match state.tokens.verify_from(&form.token, client).await {
        Ok(p) => {
            let id = state.sessions.open(p.token_id);
            tracing::info!(token_name = %p.name, "status page sign-in");
            (
                StatusCode::SEE_OTHER,
                [
                    (
                        header::SET_COOKIE,
                        session_cookie(&state, &id, state.sessions.max_age()),
                    ),
                    (header::LOCATION, "/".to_string()),
                ],
            )
                .into_response()
        }
        Err(e) => {
            log_refusal(&state.refusals, &e, "/login", client);
            if let TokenRejected::Busy { retry_after } = e {
                let mut r = login_response(
                    &state,
                    &headers,
                    StatusCode::TOO_MANY_REQUESTS,
                    Some("Too many sign-in attempts from your address at once; try again."),
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, retry_after_value(retry_after));
                return r;
            }
            login_response(
                &state,
                &headers,
                StatusCode::UNAUTHORIZED,
                Some("That token is not valid."),
            )
        }
    }
}

#[derive(Debug, Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn logout(
    user: Option<PageUser>,
    State(state): State<AppState>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Some(user) = user
        && user.session.csrf == f.csrf
    {
        state.sessions.close(&user.session_id);
    }
    (
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, session_cookie(&state, "", 0)),
            (header::LOCATION, "/".to_string()),
        ],
    )
        .into_response()
}

/// The checks every page form shares: a live session, its CSRF token, the write role.
/// Returns the refusal to send, if any.
fn refuse_form(user: Option<&PageUser>, csrf: &str) -> Option<Response> {
    let Some(user) = user else {
        return Some(Redirect::to("/").into_response());
    };
    if user.session.csrf != csrf {
        tracing::warn!(token_name = %user.name, "status page form with a wrong CSRF token");
        return Some((StatusCode::FORBIDDEN, "stale form; reload the page").into_response());
    }
    if user.role != TokenRole::Write {
        return Some((StatusCode::FORBIDDEN, "a write token is required").into_response());
    }
    None
}

#[derive(Debug, Deserialize)]
struct SyncForm {
    csrf: String,
    source: String,
}

async fn sync_now(
    user: Option<PageUser>,
    State(state): State<AppState>,
    Form(f): Form<SyncForm>,
) -> Response {
    if let Some(r) = refuse_form(user.as_ref(), &f.csrf) {
        return r;
    }
    let name = user.map(|u| u.name).unwrap_or_default();
    tracing::info!(token_name = %name, source = %f.source, "sync requested from the status page");
    match state.ctx.sync.trigger(&f.source, false).await {
        Ok(_) => Redirect::to("/?flash=sync").into_response(),
        Err(e) => (StatusCode::NOT_FOUND, e.to_string()).into_response(),
    }
}

async fn add_manual(
    user: Option<PageUser>,
    State(state): State<AppState>,
    Form(f): Form<ManualForm>,
) -> Response {
    if let Some(r) = refuse_form(user.as_ref(), &f.csrf) {
        return r;
    }
    let Some(user) = user else {
        return Redirect::to("/").into_response();
    };
    let blank = |s: &str| Some(s.to_string()).filter(|s| !s.trim().is_empty());
    let input = ManualEntryInput {
        patient_id: f.patient_id.clone(),
        patient_name: blank(&f.patient_name),
        start_date: f.start_date.clone(),
        start_time: f.start_time.clone(),
        station_ae_title: blank(&f.station_ae_title),
        modality: blank(&f.modality),
        sps_description: blank(&f.sps_description),
        protocol_code_value: blank(&f.protocol_code_value),
        ..ManualEntryInput::default()
    };
    let record_id = new_record_id();
    let entry = match input.to_entry(&record_id) {
        Ok(e) => e,
        Err(problems) => return dashboard(&state, &user, None, &problems, Some(&f)).await,
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
        Ok(Err(e)) => {
            let problems = vec![FieldProblem {
                field: "entry".into(),
                problem: e.to_string(),
            }];
            dashboard(&state, &user, None, &problems, Some(&f)).await
        }
        Err(e) => {
            tracing::error!(error = %e, "status page: the worklist database failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the worklist database is unavailable",
            )
                .into_response()
        }
    }
}
