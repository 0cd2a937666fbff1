//! Signing in and out of the status page.
//!
//! The sign-in form is protected against cross-site request forgery ("login CSRF": a
//! foreign page signing the browser in with the attacker's token) before any session
//! exists, the way OWASP recommends for login forms: the sign-in page sets a random
//! pre-session token in a cookie (`HttpOnly`, `SameSite=Strict`; over HTTPS `Secure` and
//! `__Host-`, so no other site or subdomain can set it) and in a hidden field, and
//! `POST /login` is refused (`403`) unless both are there and equal. A foreign page can
//! neither read the value nor make the browser send the cookie with its cross-site form.
//! A request the browser marks as cross-site (`Sec-Fetch-Site`) is refused as well.

use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;

use super::layout::layout;
use crate::AppState;
use crate::auth::{ClientAddr, PageUser, cookie, log_refusal, retry_after_value};
use crate::refusals::Refusal;
use crate::sessions::{COOKIE, random_hex};
use crate::tokens::TokenRejected;

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
pub(super) fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// The sign-in page with `status`, its pre-session token in the form and the cookie
/// (the request's own when it has one, so that several open tabs all work).
pub(super) fn login_response(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    message: Option<&str>,
) -> Response {
    let csrf = login_csrf_of(state, headers).unwrap_or_else(random_hex);
    let page = layout(
        "mwlbridge: sign in",
        None,
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

#[derive(Debug, Deserialize)]
pub(super) struct LoginForm {
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

pub(super) async fn login(
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
pub(super) struct CsrfForm {
    csrf: String,
}

pub(super) async fn logout(
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
