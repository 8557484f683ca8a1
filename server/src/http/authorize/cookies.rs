//! The authorization endpoint's cookies: the sign-in session and the CSRF token its forms carry
//! (double submit). Both are `HttpOnly`, `SameSite=Lax`, and `Secure` unless the issuer is plain-http
//! loopback.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use subtle::ConstantTimeEq;

use super::{CSRF_COOKIE, SESSION_COOKIE};
use crate::oauth::Params;
use crate::store::Session;
use crate::{AppState, token};

pub(super) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether cookies may go without `Secure`: only for a plain-http loopback issuer.
pub(super) fn insecure_issuer(issuer: &str) -> bool {
    let Some(rest) = issuer.strip_prefix("http://") else {
        return false;
    };
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    let host = host.rsplit_once(':').map_or(host, |(h, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    matches!(host, "localhost" | "127.0.0.1" | "[::1]")
}

pub(super) fn set_cookie(state: &AppState, response: &mut Response, name: &str, value: &str, max_age: i64) {
    let secure = if insecure_issuer(&state.config.issuer) {
        ""
    } else {
        "; Secure"
    };
    let text = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}");
    if let Ok(value) = HeaderValue::from_str(&text) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

pub(super) async fn session(
    state: &AppState,
    headers: &HeaderMap,
    now: i64,
) -> crate::Result<Option<Session>> {
    let Some(value) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    if value.len() > 128 {
        return Ok(None);
    }
    state.db.find_session(&token::hash(value), now).await
}

pub(super) fn csrf_ok(headers: &HeaderMap, form: &Params) -> bool {
    match (cookie(headers, CSRF_COOKIE), form.get("csrf")) {
        (Some(cookie), Some(field)) => {
            !cookie.is_empty() && bool::from(cookie.as_bytes().ct_eq(field.as_bytes()))
        }
        _ => false,
    }
}

/// The CSRF token: the cookie's, or a new one (with the cookie to set).
pub(super) fn csrf_token(headers: &HeaderMap) -> crate::Result<(String, bool)> {
    match cookie(headers, CSRF_COOKIE) {
        Some(value) if value.len() == 43 => Ok((value.to_owned(), false)),
        _ => Ok((token::random(), true)),
    }
}
