//! The admin API, on its own listener, for the operator (and operators of the standalone server).
//! Every route needs `Authorization: Bearer <admin token>`, compared in constant time. Documents are
//! [`ClientRegistration`]s from gatehouse-crds; an invalid one gets 400 naming the field.
//!
//! A registration's `owner` holds its client_id ([`crate::client::ownership`]):
//!
//! - `PUT /admin/v1/clients/{id}` that may not replace the registration in place is 409 with
//!   `{"error": "client_id_conflict", "error_description", "owner": {"namespace", "name"} | null}`,
//!   naming the current owner, and changes nothing.
//! - `DELETE /admin/v1/clients/{id}?namespace=NS&name=NAME` deletes only a registration that OAuthClient
//!   holds; for any other it does nothing and answers 204, as for a client_id nobody registered.
//!   Without `namespace` and `name` (a person with the admin token), it deletes whatever is there.

pub mod users;

use axum::Json;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse_crds::admin::{ClientList, ClientOwner, ClientRegistration, DEFAULT_PAGE_SIZE};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::client::ownership;
use crate::oauth::params::read_body;
use crate::oauth::{ErrorCode, OAuthError};
use crate::token::REGISTERED_CLAIMS;

/// Largest admin document accepted.
pub const ADMIN_BODY_LIMIT: usize = 1024 * 1024;
/// Largest page of a client listing.
pub const MAX_PAGE_SIZE: usize = 1000;

/// Middleware: refuses a request without the admin bearer token.
pub async fn require_token(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let allowed = match (&state.config.admin_token, presented) {
        (Some(expected), Some(presented)) => {
            bool::from(Sha256::digest(expected.as_bytes()).ct_eq(&Sha256::digest(presented.as_bytes())))
        }
        _ => false,
    };
    if !allowed {
        let why = if presented.is_some() {
            "the admin token is wrong"
        } else {
            "the admin API needs Authorization: Bearer <admin token>"
        };
        return OAuthError::new(ErrorCode::InvalidToken, why).into_response();
    }
    next.run(request).await
}

fn not_found(what: String) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": "not_found", "error_description": what})),
    )
        .into_response()
}

/// Parses and checks an admin document. Errors name the field: `effective.scopes[0]: ...`.
pub fn parse_registration(body: &[u8]) -> Result<ClientRegistration, OAuthError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(body);
    let doc: ClientRegistration = serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            OAuthError::invalid_request(inner.to_string())
        } else {
            OAuthError::invalid_request(format!("{path}: {inner}"))
        }
    })?;
    doc.validate()
        .map_err(|e| OAuthError::invalid_request(e.to_string()))?;
    if let Some(key) = doc
        .effective
        .claims
        .keys()
        .find(|k| REGISTERED_CLAIMS.contains(&k.as_str()))
    {
        return Err(OAuthError::invalid_request(format!(
            "effective.claims.{key}: is a registered claim and cannot be set"
        )));
    }
    Ok(doc)
}

/// `PUT /admin/v1/clients/{client_id}`.
pub async fn put_client(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    request: Request,
) -> Result<Response, OAuthError> {
    let (_, body) = read_body(request, ADMIN_BODY_LIMIT).await?;
    let doc = parse_registration(&body)?;
    if doc.client_id != client_id {
        return Err(OAuthError::invalid_request(
            "clientId: must equal the client_id in the path",
        ));
    }
    if let Some(current) = state.db.upsert_client(&doc, state.clock.now()).await? {
        tracing::warn!(
            client_id = %doc.client_id,
            owner = ?doc.owner.as_ref().map(ClientOwner::key),
            held_by = ?current.owner.as_ref().map(ClientOwner::key),
            "refused a registration of a client_id another owner holds"
        );
        return Ok(conflict(&current, doc.owner.as_ref()));
    }
    state.clients.insert(doc.clone());
    tracing::info!(
        client_id = %doc.client_id,
        source = ?doc.source,
        owner = ?doc.owner.as_ref().map(ClientOwner::key),
        "client registered"
    );
    Ok(Json(doc).into_response())
}

/// The 409 answer to a registration owned by `incoming` that may not replace `current`.
fn conflict(current: &ClientRegistration, incoming: Option<&ClientOwner>) -> Response {
    let owner = current
        .owner
        .as_ref()
        .map(|o| json!({"namespace": o.namespace, "name": o.name}));
    (
        StatusCode::CONFLICT,
        Json(json!({
            "error": "client_id_conflict",
            "error_description": ownership::conflict_description(current, incoming),
            "owner": owner,
        })),
    )
        .into_response()
}

/// `GET /admin/v1/clients/{client_id}`.
pub async fn get_client(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
) -> Result<Response, OAuthError> {
    match state.db.get_client(&client_id).await? {
        Some(doc) => Ok(Json(doc).into_response()),
        None => Ok(not_found(format!("client {client_id} is not registered"))),
    }
}

/// `DELETE /admin/v1/clients/{client_id}[?namespace=NS&name=NAME]`: 204 whether or not it existed, and
/// whether or not it was that OAuthClient's to delete.
pub async fn delete_client(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, OAuthError> {
    let (mut namespace, mut name) = (None, None);
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "namespace" => namespace = Some(value.into_owned()),
            "name" => name = Some(value.into_owned()),
            _ => {}
        }
    }
    let by = match (&namespace, &name) {
        (None, None) => None,
        (Some(namespace), Some(name)) if !namespace.is_empty() && !name.is_empty() => {
            Some(ownership::Claimant { namespace, name })
        }
        _ => {
            return Err(OAuthError::invalid_request(
                "namespace and name: give both, or neither",
            ));
        }
    };
    if state.db.delete_client(&client_id, by).await? {
        state.clients.remove(&client_id);
        tracing::info!(%client_id, by = ?by, "client deleted");
    } else if by.is_some() {
        tracing::info!(%client_id, by = ?by, "nothing deleted: no registration of the client_id held by it");
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /admin/v1/clients?limit=N&continue=TOKEN`, ordered by client_id.
pub async fn list_clients(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, OAuthError> {
    let mut limit = DEFAULT_PAGE_SIZE;
    let mut after = None;
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match name.as_ref() {
            "limit" => {
                limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
                    .ok_or_else(|| {
                        OAuthError::invalid_request(format!("limit: must be 1 to {MAX_PAGE_SIZE}"))
                    })?;
            }
            "continue" => {
                let decoded = URL_SAFE_NO_PAD
                    .decode(value.as_bytes())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| {
                        OAuthError::invalid_request("continue: not a token from a previous page")
                    })?;
                after = Some(decoded);
            }
            _ => {}
        }
    }
    let page_size = i64::try_from(limit).map_err(|_| OAuthError::invalid_request("limit: too large"))?;
    let mut items = state.db.list_clients(after.as_deref(), page_size + 1).await?;
    let r#continue = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|last| URL_SAFE_NO_PAD.encode(&last.client_id))
    } else {
        None
    };
    Ok(Json(ClientList { items, r#continue }).into_response())
}

/// `POST /admin/v1/clients/{client_id}/revoke`: revokes every token issued to the client so far.
pub async fn revoke_client(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
) -> Result<Response, OAuthError> {
    let now = state.clock.now();
    let (opaque, refresh) = state.db.revoke_client_tokens(&client_id, now).await?;
    tracing::info!(%client_id, opaque_tokens = opaque, refresh_tokens = refresh, "revoked every token of the client");
    Ok(Json(json!({
        "clientId": client_id,
        "revokedBefore": now,
        "opaqueTokensRevoked": opaque,
        "refreshTokensRevoked": refresh,
    }))
    .into_response())
}

/// `POST /admin/v1/keys/rotate?activate_in=SECONDS`: adds a signing key now. It is published at once
/// and starts signing after `activate_in` (default: the rotation lead; 0 replaces the key at once,
/// for a compromised key).
pub async fn rotate_keys(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, OAuthError> {
    let mut activate_in = state.keys.schedule().lead;
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if name == "activate_in" {
            activate_in = value
                .parse::<i64>()
                .ok()
                .filter(|s| *s >= 0)
                .ok_or_else(|| OAuthError::invalid_request("activate_in: must be a number of seconds"))?;
        }
    }
    let now = state.clock.now();
    let kid = state.keys.rotate(&state.db, now, activate_in).await?;
    Ok(Json(json!({"kid": kid, "activatesAt": now + activate_in})).into_response())
}

/// `GET /admin/v1/keys`: the stored keys and their schedule.
pub async fn list_keys(State(state): State<AppState>) -> Result<Response, OAuthError> {
    state.keys.reload(&state.db).await?;
    let keys: Vec<serde_json::Value> = state
        .keys
        .entries()
        .iter()
        .map(|e| {
            json!({
                "kid": e.key.kid,
                "alg": e.key.alg.as_str(),
                "activatesAt": e.activates_at,
                "retireAfter": e.retire_after,
            })
        })
        .collect();
    Ok(Json(json!({ "keys": keys })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_field_is_named() {
        let error = parse_registration(br#"{"clientId": "a", "bogus": 1}"#).unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidRequest);
        assert!(
            error
                .description
                .as_deref()
                .unwrap()
                .contains("unknown field `bogus`"),
            "{error}"
        );
    }

    #[test]
    fn a_nested_type_error_names_its_path() {
        let body = br#"{"clientId":"a","tokenEndpointAuthMethod":"client_secret_basic","effective":{"grantTypes":["nope"]}}"#;
        let error = parse_registration(body).unwrap_err();
        assert!(
            error
                .description
                .as_deref()
                .unwrap()
                .starts_with("effective.grantTypes[0]: "),
            "{error}"
        );
    }
}
