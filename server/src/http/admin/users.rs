//! The users part of the admin API, under `/admin/v1/users`:
//!
//! - `GET /admin/v1/users`: every user.
//! - `POST /admin/v1/users` with `{username, password, name?, email?}`: 201, or 409 when taken.
//! - `GET /admin/v1/users/{username}`.
//! - `PUT /admin/v1/users/{username}/password` with `{password}`: 204.
//! - `POST /admin/v1/users/{username}/disable` and `/enable`: the user.
//! - `DELETE /admin/v1/users/{username}`: 204 whether or not it existed.
//!
//! A new password, disabling and deleting revoke the user's refresh tokens. Answers never carry a
//! password or its hash. A user document shows the user's `subject`, the `sub` of their tokens, which
//! the server assigns and nobody can set ([`users::subject`]).

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::http::admin::ADMIN_BODY_LIMIT;
use crate::oauth::OAuthError;
use crate::oauth::params::read_body;
use crate::users::{self, User};

fn not_found(username: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": "not_found", "error_description": format!("user {username} does not exist")})),
    )
        .into_response()
}

async fn json_body<T: for<'de> Deserialize<'de>>(request: Request) -> Result<T, OAuthError> {
    let (_, body) = read_body(request, ADMIN_BODY_LIMIT).await?;
    let deserializer = &mut serde_json::Deserializer::from_slice(&body);
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = e.path().to_string();
        if path == "password" {
            // A type error would quote the value.
            return OAuthError::invalid_request("password: must be a string");
        }
        OAuthError::invalid_request(format!("{path}: {}", e.into_inner()))
    })
}

async fn hash(state: &AppState, password: String) -> Result<String, OAuthError> {
    users::check_password(&password).map_err(OAuthError::invalid_request)?;
    let hashed = state
        .hasher
        .run(move || users::hash_password(&password))
        .await
        .ok_or_else(OAuthError::server_error)??;
    Ok(hashed)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    username: String,
    password: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPassword {
    password: String,
}

/// `GET /admin/v1/users`.
pub async fn list_users(State(state): State<AppState>) -> Result<Response, OAuthError> {
    Ok(Json(json!({ "items": state.db.list_users().await? })).into_response())
}

/// `POST /admin/v1/users`.
pub async fn create_user(State(state): State<AppState>, request: Request) -> Result<Response, OAuthError> {
    let NewUser {
        username,
        password,
        name,
        email,
    } = json_body(request).await?;
    users::check_username(&username).map_err(OAuthError::invalid_request)?;
    let password_hash = hash(&state, password).await?;
    let now = state.clock.now();
    let user = User {
        username,
        subject: users::subject::new(),
        name,
        email,
        disabled: false,
        created_at: now,
        updated_at: now,
    };
    if !state.db.insert_user(&user, &password_hash).await? {
        return Ok((
            StatusCode::CONFLICT,
            Json(json!({"error": "conflict", "error_description": format!("user {} exists", user.username)})),
        )
            .into_response());
    }
    tracing::info!(username = %user.username, "user created");
    Ok((StatusCode::CREATED, Json(user)).into_response())
}

/// `GET /admin/v1/users/{username}`.
pub async fn get_user(
    State(state): State<AppState>,
    Path(username): Path<String>,
) -> Result<Response, OAuthError> {
    match state.db.find_user(&username).await? {
        Some(stored) => Ok(Json(stored.user).into_response()),
        None => Ok(not_found(&username)),
    }
}

/// `PUT /admin/v1/users/{username}/password`.
pub async fn set_password(
    State(state): State<AppState>,
    Path(username): Path<String>,
    request: Request,
) -> Result<Response, OAuthError> {
    let NewPassword { password } = json_body(request).await?;
    let password_hash = hash(&state, password).await?;
    let Some(stored) = state.db.find_user(&username).await? else {
        return Ok(not_found(&username));
    };
    if !state
        .db
        .set_user_password(&username, &password_hash, state.clock.now())
        .await?
    {
        return Ok(not_found(&username));
    }
    let revoked = users::revoke_user_grants(&state, &stored.user.subject).await?;
    tracing::info!(%username, revoked_grants = revoked, "user password changed");
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn set_disabled(state: &AppState, username: &str, disabled: bool) -> Result<Response, OAuthError> {
    if !state
        .db
        .set_user_disabled(username, disabled, state.clock.now())
        .await?
    {
        return Ok(not_found(username));
    }
    let Some(stored) = state.db.find_user(username).await? else {
        return Ok(not_found(username));
    };
    if disabled {
        let revoked = users::revoke_user_grants(state, &stored.user.subject).await?;
        tracing::info!(%username, revoked_grants = revoked, "user disabled");
    } else {
        tracing::info!(%username, "user enabled");
    }
    Ok(Json(stored.user).into_response())
}

/// `POST /admin/v1/users/{username}/disable`.
pub async fn disable_user(
    State(state): State<AppState>,
    Path(username): Path<String>,
) -> Result<Response, OAuthError> {
    set_disabled(&state, &username, true).await
}

/// `POST /admin/v1/users/{username}/enable`.
pub async fn enable_user(
    State(state): State<AppState>,
    Path(username): Path<String>,
) -> Result<Response, OAuthError> {
    set_disabled(&state, &username, false).await
}

/// `DELETE /admin/v1/users/{username}`.
pub async fn delete_user(
    State(state): State<AppState>,
    Path(username): Path<String>,
) -> Result<Response, OAuthError> {
    if let Some(subject) = state.db.delete_user(&username).await? {
        let revoked = users::revoke_user_grants(&state, &subject).await?;
        tracing::info!(%username, revoked_grants = revoked, "user deleted");
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
