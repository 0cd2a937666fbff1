//! Who is asking: a Bearer token (API) or a session cookie (status page), and what role
//! the request needs. Refusals go to the [`Refusals`] log with the reason and the token's
//! name when it is known, never with the token.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{Extensions, StatusCode, header};
use axum::response::{IntoResponse, Response};
use worklist_store::{Store, TokenRole};

use crate::AppState;
use crate::refusals::{Refusal, Refusals};
use crate::sessions::{COOKIE, Session};
use crate::tokens::{Principal, TokenRejected};

/// A refused request, as JSON.
#[derive(Debug)]
pub(crate) struct AuthError {
    status: StatusCode,
    message: &'static str,
    retry_after: Option<Duration>,
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let body = axum::Json(serde_json::json!({ "error": self.message }));
        let mut r = (self.status, body).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"mwlbridge\""),
            );
        }
        if let Some(after) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, retry_after_value(after));
        }
        r
    }
}

/// A `Retry-After` value in whole seconds (at least 1).
pub(crate) fn retry_after_value(after: Duration) -> header::HeaderValue {
    header::HeaderValue::from(after.as_secs().max(1))
}

fn unauthorized(message: &'static str) -> AuthError {
    AuthError {
        status: StatusCode::UNAUTHORIZED,
        message,
        retry_after: None,
    }
}

/// The address of the client that sent the request (set by [`crate::serve`]; absent when
/// the router is called otherwise).
pub(crate) fn client_ip(extensions: &Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

/// The client's address, as a handler argument.
pub(crate) struct ClientAddr(pub(crate) Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(ClientAddr(client_ip(&parts.extensions)))
    }
}

/// Logs a refused token without the token: a store failure at once, a refusal through
/// the aggregating [`Refusals`] log.
pub(crate) fn log_refusal(
    refusals: &std::sync::Arc<Refusals>,
    e: &TokenRejected,
    path: &str,
    client: Option<IpAddr>,
) {
    let (reason, token_name) = match e {
        TokenRejected::Store(err) => {
            tracing::error!(error = %err, path, "token check failed: store unavailable");
            return;
        }
        TokenRejected::Malformed => ("malformed token", None),
        TokenRejected::Unknown => ("unknown or revoked token", None),
        TokenRejected::WrongSecret { name } => ("wrong secret", Some(name.as_str())),
        TokenRejected::Busy { .. } => ("too many token checks from this address at once", None),
    };
    refusals.record(Refusal {
        reason,
        token_name,
        path,
        client,
    });
}

/// A request authenticated by a Bearer token, with any role.
pub(crate) struct Reader;

/// A request authenticated by a Bearer token with the write role.
pub(crate) struct Writer(pub(crate) Principal);

async fn bearer(parts: &Parts, state: &AppState) -> Result<Principal, AuthError> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| unauthorized("an API token is required (Authorization: Bearer ...)"))?;
    let token = value
        .to_str()
        .ok()
        // The scheme is case-insensitive (RFC 9110, 11.1): "bearer" is "Bearer".
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token)
        .ok_or_else(|| unauthorized("the Authorization header must be 'Bearer <token>'"))?;
    let client = client_ip(&parts.extensions);
    state.tokens.verify_from(token, client).await.map_err(|e| {
        log_refusal(&state.refusals, &e, parts.uri.path(), client);
        match e {
            TokenRejected::Store(_) => AuthError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: "the token store is unavailable",
                retry_after: None,
            },
            TokenRejected::Busy { retry_after } => AuthError {
                status: StatusCode::TOO_MANY_REQUESTS,
                message: "too many token checks from your address at once; retry shortly",
                retry_after: Some(retry_after),
            },
            _ => unauthorized("invalid or revoked API token"),
        }
    })
}

impl FromRequestParts<AppState> for Reader {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AuthError> {
        bearer(parts, state).await.map(|_| Reader)
    }
}

impl FromRequestParts<AppState> for Writer {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AuthError> {
        let p = bearer(parts, state).await?;
        if p.role < TokenRole::Write {
            state.refusals.record(Refusal {
                reason: "read-only token used on a write endpoint",
                token_name: Some(&p.name),
                path: parts.uri.path(),
                client: client_ip(&parts.extensions),
            });
            return Err(AuthError {
                status: StatusCode::FORBIDDEN,
                message: "this token may only read; a write token is required",
                retry_after: None,
            });
        }
        Ok(Writer(p))
    }
}

/// A status-page visitor with a live session whose token is still active.
#[derive(Debug, Clone)]
pub(crate) struct PageUser {
    /// The session id (cookie value).
    pub(crate) session_id: String,
    /// The session.
    pub(crate) session: Session,
    /// The token's name.
    pub(crate) name: String,
    /// The token's role.
    pub(crate) role: TokenRole,
}

/// The value of the cookie `name`, if the request carries one.
pub(crate) fn cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// The session cookie's value, if the request carries one.
pub(crate) fn session_cookie(parts: &Parts) -> Option<String> {
    cookie(&parts.headers, COOKIE)
}

async fn token_of_session(store: &Store, token_id: i64) -> Option<(String, TokenRole)> {
    let store = store.clone();
    let tokens = store.run(|s| s.list_tokens()).await.ok()?;
    tokens
        .into_iter()
        .find(|t| t.id == token_id && t.revoked_at.is_none())
        .map(|t| (t.name, t.role))
}

impl OptionalFromRequestParts<AppState> for PageUser {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, Self::Rejection> {
        let Some(id) = session_cookie(parts) else {
            return Ok(None);
        };
        let Some(session) = state.sessions.get(&id) else {
            return Ok(None);
        };
        match token_of_session(&state.ctx.store, session.token_id).await {
            Some((name, role)) => Ok(Some(PageUser {
                session_id: id,
                session,
                name,
                role,
            })),
            None => {
                state.sessions.close(&id);
                Ok(None)
            }
        }
    }
}
