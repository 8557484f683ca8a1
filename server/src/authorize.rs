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
use axum::response::{Html, IntoResponse, Response};
use gatehouse_crds::GrantType;
use gatehouse_crds::admin::ClientRegistration;
use subtle::ConstantTimeEq;

use crate::db::{AuthorizationCode, Session, Spend};
use crate::oauth::ErrorCode;
use crate::params::{Form, Params};
use crate::pkce::{self, Method};
use crate::throttle::{self, SignIn};
use crate::{AppState, issue, scope, token};

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

fn page_headers(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "frame-ancestors 'none'; default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
}

/// The CSP source that matches a redirect URI: its origin (`https://app.example.com:8443`), or its
/// scheme for a private-use URI scheme (`com.example.app:`, RFC 8252). `None` for anything that
/// could break out of the header's grammar.
fn csp_source(redirect_uri: &str) -> Option<String> {
    let (scheme, rest) = redirect_uri.split_once(':')?;
    let source = match rest.strip_prefix("//") {
        Some(after) => {
            let authority = after.split(['/', '?', '#']).next().unwrap_or_default();
            format!("{scheme}://{authority}")
        }
        None => format!("{scheme}:"),
    };
    let safe = source
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '/' | '.' | '-' | '+' | '[' | ']'));
    safe.then_some(source)
}

/// Lets the forms of a login or consent page end at the client: browsers apply `form-action` to
/// every redirect that follows a form's submission, so `'self'` alone would stop the final redirect
/// to the client's `redirect_uri`.
fn allow_form_redirect_to(response: &mut Response, redirect_uri: &str) {
    let Some(source) = csp_source(redirect_uri) else {
        return;
    };
    let policy = format!(
        "frame-ancestors 'none'; default-src 'none'; style-src 'unsafe-inline'; form-action 'self' {source}"
    );
    if let Ok(value) = HeaderValue::from_str(&policy) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
}

/// Escapes text for HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn html(status: StatusCode, title: &str, body: &str) -> Response {
    let document = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title></head><body><main><h1>{title}</h1>{body}</main></body></html>\n",
        title = escape(title),
    );
    let mut response = (status, Html(document)).into_response();
    page_headers(&mut response);
    response
}

/// The error page: shown instead of redirecting when the client or redirect_uri can't be trusted.
fn error_page(description: &str) -> Response {
    html(
        StatusCode::BAD_REQUEST,
        "Sign-in request refused",
        &format!("<p role=\"alert\">{}</p>", escape(description)),
    )
}

fn redirect(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    page_headers(&mut response);
    response
}

/// `redirect_uri` with parameters added to its query (code) or fragment (token).
fn redirect_with(uri: &str, response_type: ResponseType, pairs: &[(&str, &str)]) -> String {
    let encoded = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
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
    state: Option<&str>,
    error: &str,
    description: &str,
) -> Response {
    let mut pairs = vec![("error", error), ("error_description", description)];
    if let Some(state) = state {
        pairs.push(("state", state));
    }
    redirect(&redirect_with(uri, response_type, &pairs))
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
            state_param.as_deref(),
            code.as_str(),
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

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
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
fn insecure_issuer(issuer: &str) -> bool {
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

fn set_cookie(state: &AppState, response: &mut Response, name: &str, value: &str, max_age: i64) {
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

async fn session(state: &AppState, headers: &HeaderMap) -> crate::Result<Option<Session>> {
    let Some(value) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    if value.len() > 128 {
        return Ok(None);
    }
    state
        .db
        .find_session(&token::token_hash(value), state.clock.now())
        .await
}

fn csrf_ok(headers: &HeaderMap, form: &Params) -> bool {
    match (cookie(headers, CSRF_COOKIE), form.get("csrf")) {
        (Some(cookie), Some(field)) => {
            !cookie.is_empty() && bool::from(cookie.as_bytes().ct_eq(field.as_bytes()))
        }
        _ => false,
    }
}

/// The CSRF token: the cookie's, or a new one (with the cookie to set).
fn csrf_token(headers: &HeaderMap) -> crate::Result<(String, bool)> {
    match cookie(headers, CSRF_COOKIE) {
        Some(value) if value.len() == 43 => Ok((value.to_owned(), false)),
        _ => Ok((token::random_token()?, true)),
    }
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
async fn complete(state: &AppState, request: &AuthzRequest, session: &Session) -> crate::Result<Response> {
    let now = state.clock.now();
    let family_id = issue::new_family_id()?;
    let state_param = request.state.as_deref();
    match request.response_type {
        ResponseType::Code => {
            let code = token::random_token()?;
            state
                .db
                .insert_code(&AuthorizationCode {
                    code_hash: token::token_hash(&code),
                    family_id,
                    client_id: request.client.client_id.clone(),
                    redirect_uri: request.redirect_uri.clone(),
                    username: session.username.clone(),
                    scope: request.scopes.join(" "),
                    code_challenge: request.challenge.as_ref().map(|(c, _)| c.clone()),
                    code_challenge_method: request.challenge.as_ref().map(|(_, m)| m.as_str().to_owned()),
                    auth_time: session.auth_time,
                    expires_at: now + request.client.effective.authorization_code_ttl_seconds,
                    used: false,
                    nonce: request.nonce.clone(),
                })
                .await?;
            let mut pairs = vec![("code", code.as_str())];
            if let Some(s) = state_param {
                pairs.push(("state", s));
            }
            Ok(redirect(&redirect_with(
                &request.redirect_uri,
                ResponseType::Code,
                &pairs,
            )))
        }
        ResponseType::Token => {
            let pending = issue::access_token(
                state,
                &request.client,
                &session.username,
                &request.scopes,
                &family_id,
            )?;
            state
                .db
                .store_grant(Spend::Nothing, &pending.record, None)
                .await?;
            let minted = pending.minted;
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
                &pairs,
            )))
        }
    }
}

async fn proceed(state: &AppState, headers: &HeaderMap, request: &AuthzRequest) -> crate::Result<Response> {
    let has = |p: &str| request.prompt.iter().any(|x| x == p);
    let session = if has("login") {
        None
    } else {
        session(state, headers).await?
    };
    let Some(session) = session else {
        if has("none") {
            return Ok(redirect_error(
                &request.redirect_uri,
                request.response_type,
                request.state.as_deref(),
                "login_required",
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
            .consented_scopes(&session.username, &request.client.client_id)
            .await?;
        !has("consent") && request.scopes.iter().all(|s| given.contains(s))
    };
    if !consented {
        if has("none") {
            return Ok(redirect_error(
                &request.redirect_uri,
                request.response_type,
                request.state.as_deref(),
                "consent_required",
                "the user has not consented to these scopes",
            ));
        }
        return consent_page(state, headers, request, &session.username);
    }
    complete(state, request, &session).await
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
    proceed(&state, &headers, &request).await.unwrap_or_else(internal)
}

fn forbidden_form() -> Response {
    html(
        StatusCode::FORBIDDEN,
        "Form expired",
        "<p role=\"alert\">The form expired or was not sent from this site. Go back to the application and start again.</p>",
    )
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
        let value = token::random_token()?;
        let session = Session {
            username: user.username,
            auth_time: now,
        };
        state
            .db
            .insert_session(&token::token_hash(&value), &session, now + SESSION_TTL)
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
        let Some(session) = session(&state, &form.headers).await? else {
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
                request.state.as_deref(),
                ErrorCode::AccessDenied.as_str(),
                "the user denied the request",
            ));
        }
        state
            .db
            .insert_consent(
                &session.username,
                &request.client.client_id,
                &request.scopes,
                state.clock.now(),
            )
            .await?;
        complete(&state, &request, &session).await
    }
    .await;
    result.unwrap_or_else(internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_csp_source_of_a_redirect_uri_is_its_origin_or_private_scheme() {
        assert_eq!(
            csp_source("https://app.example.com:8443/cb?x=1#f").as_deref(),
            Some("https://app.example.com:8443")
        );
        assert_eq!(
            csp_source("http://127.0.0.1:3000").as_deref(),
            Some("http://127.0.0.1:3000")
        );
        assert_eq!(
            csp_source("http://[::1]:3000/cb").as_deref(),
            Some("http://[::1]:3000")
        );
        assert_eq!(
            csp_source("com.example.app:/oauth2redirect").as_deref(),
            Some("com.example.app:")
        );
        assert_eq!(csp_source("https://evil.example; script-src *"), None);
        assert_eq!(csp_source("no-scheme"), None);
    }

    #[test]
    fn only_a_plain_http_loopback_issuer_goes_without_secure_cookies() {
        assert!(insecure_issuer("http://localhost:8080"));
        assert!(insecure_issuer("http://127.0.0.1:8080/base"));
        assert!(insecure_issuer("http://[::1]:8080"));
        assert!(!insecure_issuer("https://localhost:8080"));
        assert!(!insecure_issuer("http://example.com"));
        assert!(!insecure_issuer("http://localhost.example.com"));
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn codes_go_in_the_query_and_tokens_in_the_fragment() {
        assert_eq!(
            redirect_with(
                "https://app/cb?x=1",
                ResponseType::Code,
                &[("code", "c"), ("state", "s 1")]
            ),
            "https://app/cb?x=1&code=c&state=s+1"
        );
        assert_eq!(
            redirect_with("https://app/cb", ResponseType::Token, &[("access_token", "t")]),
            "https://app/cb#access_token=t"
        );
    }
}
