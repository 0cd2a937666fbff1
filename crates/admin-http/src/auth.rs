//! Who is asking: a Bearer token (API) or a session cookie (status page), and what role
//! the request needs. Refusals are logged with the reason and the token's name when it is
//! known, never with the token.

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use worklist_store::{Store, TokenRole};

use crate::AppState;
use crate::sessions::{COOKIE, Session};
use crate::tokens::{Principal, TokenRejected};

/// A refused request, as JSON.
#[derive(Debug)]
pub(crate) struct AuthError {
    status: StatusCode,
    message: &'static str,
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
        r
    }
}

fn unauthorized(message: &'static str) -> AuthError {
    AuthError {
        status: StatusCode::UNAUTHORIZED,
        message,
    }
}

/// Logs a refused token without the token.
pub(crate) fn log_refusal(e: &TokenRejected, path: &str) {
    match e {
        TokenRejected::Store(err) => {
            tracing::error!(error = %err, path, "token check failed: store unavailable");
        }
        TokenRejected::WrongSecret { name } => {
            tracing::warn!(token_name = %name, path, "refused an API token: wrong secret");
        }
        other => tracing::warn!(reason = %other, path, "refused an API token"),
    }
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
    state.tokens.verify(token).await.map_err(|e| {
        log_refusal(&e, parts.uri.path());
        match e {
            TokenRejected::Store(_) => AuthError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: "the token store is unavailable",
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
            tracing::warn!(token_name = %p.name, path = parts.uri.path(), "read-only token used on a write endpoint");
            return Err(AuthError {
                status: StatusCode::FORBIDDEN,
                message: "this token may only read; a write token is required",
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

/// The session cookie's value, if the request carries one.
pub(crate) fn session_cookie(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
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
