//! The authorization endpoint ([RFC 6749 §3.1](https://www.rfc-editor.org/rfc/rfc6749#section-3.1))
//! with its login and consent pages.
//!
//! A request is checked in the order §4.1.2.1 sets: an unknown client or a redirect_uri that is not
//! registered exactly gets an error page and never a redirect; every later error is sent to the
//! redirect_uri with `state`. Then a user needs a session (the login page), consent for the scopes
//! (the consent page, skipped for first-party clients and remembered per user, client and scope),
//! and gets a code (`response_type=code`) or, for clients registered for implicit, an access token in
//! the fragment (`response_type=token`, [§4.2](https://www.rfc-editor.org/rfc/rfc6749#section-4.2)).
//!
//! The pages are plain HTML forms. Each form carries a CSRF token that must equal the CSRF cookie
//! (double submit); the original request travels in a hidden field and is checked again on every
//! POST. Every page and redirect forbids framing and caching.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gatehouse_crds::GrantType;
use gatehouse_crds::admin::ClientRegistration;

use crate::grant::authorization_code::{self, CodeGrant};
use crate::grant::implicit;
use crate::oauth::pkce::{self, Method};
use crate::oauth::{ErrorCode, Form, Params, scope};
use crate::store::Session;
use crate::users::throttle::{self, SignIn};
use crate::{AppState, token};

mod cookies;
mod pages;

use cookies::{csrf_ok, csrf_token, session, set_cookie};

pub use pages::escape;
use pages::{allow_form_redirect_to, error_page, forbidden_form, html, page_headers};

/// The session cookie.
pub const SESSION_COOKIE: &str = "gatehouse_session";
/// The CSRF cookie the forms' hidden field must match.
pub const CSRF_COOKIE: &str = "gatehouse_csrf";
/// How long a sign-in lasts.
pub const SESSION_TTL: i64 = 8 * 3600;

/// What the response type asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ResponseType {
    Code,
    Token,
}

/// A checked authorization request.
#[derive(Clone, Debug)]
struct AuthzRequest {
    client: Arc<ClientRegistration>,
    redirect_uri: String,
    state: Option<String>,
    response_type: ResponseType,
    scopes: Vec<String>,
    challenge: Option<(String, Method)>,
    prompt: Vec<String>,
    nonce: Option<String>,
    /// The query without `prompt`, carried by the forms.
    carried: String,
}

fn redirect(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    page_headers(&mut response);
    response
}

/// The redirect back to the client with `pairs`, in the query for a code and in the fragment for a
/// token, always with `iss` ([RFC 9207 §2](https://www.rfc-editor.org/rfc/rfc9207#section-2)): a client
/// that talks to several authorization servers can tell which one answered (the mix-up defence of
/// RFC 9700 §4.4).
fn redirect_with(uri: &str, response_type: ResponseType, issuer: &str, pairs: &[(&str, &str)]) -> String {
    let encoded = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .append_pair("iss", issuer)
        .finish();
    match response_type {
        ResponseType::Code if uri.contains('?') => format!("{uri}&{encoded}"),
        ResponseType::Code => format!("{uri}?{encoded}"),
        ResponseType::Token => format!("{uri}#{encoded}"),
    }
}

/// An error sent to the client ([RFC 6749 §4.1.2.1](https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2.1)).
/// `error` is an RFC 6749 code or one of OpenID Connect's (`login_required`, `consent_required`).
fn redirect_error(
    uri: &str,
    response_type: ResponseType,
    issuer: &str,
    state: Option<&str>,
    error: ErrorCode,
    description: &str,
) -> Response {
    let mut pairs = vec![("error", error.as_str()), ("error_description", description)];
    if let Some(state) = state {
        pairs.push(("state", state));
    }
    redirect(&redirect_with(uri, response_type, issuer, &pairs))
}

/// Checks a request; the error is the response to send.
// A refusal is built at most once per request and sent at once; boxing it buys nothing.
#[allow(clippy::result_large_err)]
fn check(state: &AppState, raw: &str) -> Result<AuthzRequest, Response> {
    let params = Params::parse_body(raw.as_bytes())
        .map_err(|e| error_page(e.description.as_deref().unwrap_or("malformed request")))?;
    let client_id = params
        .get("client_id")
        .ok_or_else(|| error_page("the request names no client_id"))?;
    let client = state
        .clients
        .get(client_id)
        .ok_or_else(|| error_page("the client is not registered"))?;
    let redirect_uri = match params.get("redirect_uri") {
        Some(uri) if client.redirect_uris.iter().any(|r| r == uri) => uri.to_owned(),
        Some(_) => return Err(error_page("the redirect_uri is not registered for this client")),
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        None => {
            return Err(error_page(
                "the request must name one of the client's redirect URIs",
            ));
        }
    };
    let state_param = params.get("state").map(str::to_owned);
    let fail = |rt: ResponseType, code: ErrorCode, description: &str| {
        redirect_error(
            &redirect_uri,
            rt,
            &state.config.issuer,
            state_param.as_deref(),
            code,
            description,
        )
    };
    let response_type = match params.get("response_type") {
        Some("code") => ResponseType::Code,
        Some("token") => ResponseType::Token,
        Some(_) => {
            return Err(fail(
                ResponseType::Code,
                ErrorCode::UnsupportedResponseType,
                "response_type must be code or token",
            ));
        }
        None => {
            return Err(fail(
                ResponseType::Code,
                ErrorCode::InvalidRequest,
                "missing parameter response_type",
            ));
        }
    };
    let needed = match response_type {
        ResponseType::Code => GrantType::AuthorizationCode,
        ResponseType::Token => GrantType::Implicit,
    };
    if !client.effective.grant_types.contains(&needed) {
        return Err(fail(
            response_type,
            ErrorCode::UnauthorizedClient,
            &format!("the client is not registered for {}", needed.as_str()),
        ));
    }
    let effective = &client.effective;
    let scopes =
        scope::grant(params.get("scope"), &effective.scopes, &effective.default_scopes).map_err(|e| {
            fail(
                response_type,
                e.code,
                e.description.as_deref().unwrap_or_default(),
            )
        })?;
    let challenge = match response_type {
        ResponseType::Code => {
            let public = client.token_endpoint_auth_method == gatehouse_crds::AuthMethod::None;
            pkce::check_request(
                params.get("code_challenge"),
                params.get("code_challenge_method"),
                effective.require_pkce || public,
                effective.allow_plain_pkce,
            )
            .map_err(|why| fail(response_type, ErrorCode::InvalidRequest, why))?
        }
        ResponseType::Token => None,
    };
    let prompt: Vec<String> = params
        .get("prompt")
        .unwrap_or_default()
        .split(' ')
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect();
    if prompt.iter().any(|p| p == "none") && prompt.len() > 1 {
        return Err(fail(
            response_type,
            ErrorCode::InvalidRequest,
            "prompt=none can't be combined",
        ));
    }
    let carried = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form_urlencoded::parse(raw.as_bytes()).filter(|(k, _)| k != "prompt"))
        .finish();
    Ok(AuthzRequest {
        client,
        redirect_uri,
        state: state_param,
        response_type,
        scopes,
        challenge,
        prompt,
        nonce: params.get("nonce").map(str::to_owned),
        carried,
    })
}

fn login_page(
    state: &AppState,
    headers: &HeaderMap,
    request: &AuthzRequest,
    status: StatusCode,
    message: Option<&str>,
) -> crate::Result<Response> {
    let (csrf, fresh) = csrf_token(headers)?;
    let client_name = request
        .client
        .display_name
        .as_deref()
        .unwrap_or(&request.client.client_id);
    let alert = message
        .map(|m| format!("<p role=\"alert\">{}</p>", escape(m)))
        .unwrap_or_default();
    let body = format!(
        "<p>Sign in to continue to {client}.</p>{alert}\
         <form method=\"post\" action=\"/login\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <input type=\"hidden\" name=\"request\" value=\"{request}\">\
         <p><label for=\"username\">Username</label><br>\
         <input id=\"username\" name=\"username\" autocomplete=\"username\" required autofocus></p>\
         <p><label for=\"password\">Password</label><br>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required></p>\
         <p><button type=\"submit\">Sign in</button></p></form>",
        client = escape(client_name),
        csrf = escape(&csrf),
        request = escape(&request.carried),
    );
    let mut response = html(status, "Sign in", &body);
    allow_form_redirect_to(&mut response, &request.redirect_uri);
    if fresh {
        set_cookie(state, &mut response, CSRF_COOKIE, &csrf, SESSION_TTL);
    }
    Ok(response)
}

fn consent_page(
    state: &AppState,
    headers: &HeaderMap,
    request: &AuthzRequest,
    username: &str,
) -> crate::Result<Response> {
    let (csrf, fresh) = csrf_token(headers)?;
    let client_name = request
        .client
        .display_name
        .as_deref()
        .unwrap_or(&request.client.client_id);
    let scopes: String = request
        .scopes
        .iter()
        .map(|s| {
            let description = request
                .client
                .effective
                .scope_descriptions
                .get(s)
                .map(String::as_str)
                .unwrap_or(s);
            format!("<li><code>{}</code>: {}</li>", escape(s), escape(description))
        })
        .collect();
    let body = format!(
        "<p>Signed in as {user}.</p><p>{client} asks to:</p><ul>{scopes}</ul>\
         <form method=\"post\" action=\"/consent\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <input type=\"hidden\" name=\"request\" value=\"{request}\">\
         <p><button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button> \
         <button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></p></form>",
        user = escape(username),
        client = escape(client_name),
        csrf = escape(&csrf),
        request = escape(&request.carried),
    );
    let mut response = html(StatusCode::OK, "Allow access?", &body);
    allow_form_redirect_to(&mut response, &request.redirect_uri);
    if fresh {
        set_cookie(state, &mut response, CSRF_COOKIE, &csrf, SESSION_TTL);
    }
    Ok(response)
}

/// Issues the code or token and redirects back to the client.
async fn complete(
    state: &AppState,
    request: &AuthzRequest,
    session: &Session,
    now: i64,
) -> crate::Result<Response> {
    let state_param = request.state.as_deref();
    match request.response_type {
        ResponseType::Code => {
            let grant = CodeGrant {
                client: &request.client,
                redirect_uri: &request.redirect_uri,
                subject: &session.subject,
                scopes: &request.scopes,
                challenge: request.challenge.as_ref().map(|(c, m)| (c.as_str(), *m)),
                nonce: request.nonce.as_deref(),
                auth_time: session.auth_time,
            };
            let code = authorization_code::issue_code(state, &grant, now).await?;
            let mut pairs = vec![("code", code.as_str())];
            if let Some(s) = state_param {
                pairs.push(("state", s));
            }
            Ok(redirect(&redirect_with(
                &request.redirect_uri,
                ResponseType::Code,
                &state.config.issuer,
                &pairs,
            )))
        }
        ResponseType::Token => {
            let minted =
                implicit::issue(state, &request.client, &session.subject, &request.scopes, now).await?;
            let expires_in = minted.expires_in.to_string();
            let mut pairs = vec![
                ("access_token", minted.token.as_str()),
                ("token_type", "Bearer"),
                ("expires_in", expires_in.as_str()),
            ];
            if let Some(scope) = minted.scope.as_deref() {
                pairs.push(("scope", scope));
            }
            if let Some(s) = state_param {
                pairs.push(("state", s));
            }
            Ok(redirect(&redirect_with(
                &request.redirect_uri,
                ResponseType::Token,
                &state.config.issuer,
                &pairs,
            )))
        }
    }
}

async fn proceed(
    state: &AppState,
    headers: &HeaderMap,
    request: &AuthzRequest,
    now: i64,
) -> crate::Result<Response> {
    let has = |p: &str| request.prompt.iter().any(|x| x == p);
    let session = if has("login") {
        None
    } else {
        session(state, headers, now).await?
    };
    let Some(session) = session else {
        if has("none") {
            return Ok(redirect_error(
                &request.redirect_uri,
                request.response_type,
                &state.config.issuer,
                request.state.as_deref(),
                ErrorCode::LoginRequired,
                "the user is not signed in",
            ));
        }
        return login_page(state, headers, request, StatusCode::OK, None);
    };
    let consented = if request.client.effective.first_party {
        true
    } else {
        let given = state
            .db
            .consented_scopes(&session.subject, &request.client.client_id)
            .await?;
        !has("consent") && request.scopes.iter().all(|s| given.contains(s))
    };
    if !consented {
        if has("none") {
            return Ok(redirect_error(
                &request.redirect_uri,
                request.response_type,
                &state.config.issuer,
                request.state.as_deref(),
                ErrorCode::ConsentRequired,
                "the user has not consented to these scopes",
            ));
        }
        return consent_page(state, headers, request, &session.username);
    }
    complete(state, request, &session, now).await
}

fn internal(error: crate::Error) -> Response {
    tracing::error!(%error, "internal failure at the authorization endpoint");
    html(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "<p>Try again later.</p>",
    )
}

/// `GET /authorize`.
pub async fn authorize(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let raw = query.unwrap_or_default();
    let request = match check(&state, &raw) {
        Ok(request) => request,
        Err(response) => return response,
    };
    let now = state.clock.now();
    proceed(&state, &headers, &request, now)
        .await
        .unwrap_or_else(internal)
}

/// `POST /login`.
pub async fn login(State(state): State<AppState>, form: Form) -> Response {
    if !csrf_ok(&form.headers, &form.params) {
        return forbidden_form();
    }
    let request = match check(&state, form.params.get("request").unwrap_or_default()) {
        Ok(request) => request,
        Err(response) => return response,
    };
    let result = async {
        let (Some(username), Some(password)) = (form.params.get("username"), form.params.get("password"))
        else {
            return login_page(
                &state,
                &form.headers,
                &request,
                StatusCode::BAD_REQUEST,
                Some("Enter a username and a password."),
            );
        };
        let now = state.clock.now();
        let user = match throttle::sign_in(&state, &request.client.client_id, username, password, now).await?
        {
            SignIn::Locked => {
                return login_page(
                    &state,
                    &form.headers,
                    &request,
                    StatusCode::TOO_MANY_REQUESTS,
                    Some("Too many failed sign-ins. Try again later."),
                );
            }
            SignIn::Refused => {
                return login_page(
                    &state,
                    &form.headers,
                    &request,
                    StatusCode::UNAUTHORIZED,
                    Some("The username or password is wrong."),
                );
            }
            SignIn::User(user) => user,
        };
        let value = token::random();
        let session = Session {
            subject: user.subject,
            username: user.username,
            auth_time: now,
        };
        state
            .db
            .insert_session(&token::hash(&value), &session, now + SESSION_TTL)
            .await?;
        let mut response = redirect(&format!("/authorize?{}", request.carried));
        set_cookie(&state, &mut response, SESSION_COOKIE, &value, SESSION_TTL);
        Ok(response)
    }
    .await;
    result.unwrap_or_else(internal)
}

/// `POST /consent`.
pub async fn consent(State(state): State<AppState>, form: Form) -> Response {
    if !csrf_ok(&form.headers, &form.params) {
        return forbidden_form();
    }
    let request = match check(&state, form.params.get("request").unwrap_or_default()) {
        Ok(request) => request,
        Err(response) => return response,
    };
    let result = async {
        let now = state.clock.now();
        let Some(session) = session(&state, &form.headers, now).await? else {
            return login_page(
                &state,
                &form.headers,
                &request,
                StatusCode::UNAUTHORIZED,
                Some("Sign in again."),
            );
        };
        if form.params.get("decision") != Some("allow") {
            return Ok(redirect_error(
                &request.redirect_uri,
                request.response_type,
                &state.config.issuer,
                request.state.as_deref(),
                ErrorCode::AccessDenied,
                "the user denied the request",
            ));
        }
        state
            .db
            .insert_consent(&session.subject, &request.client.client_id, &request.scopes, now)
            .await?;
        complete(&state, &request, &session, now).await
    }
    .await;
    result.unwrap_or_else(internal)
}

#[cfg(test)]
mod tests;
