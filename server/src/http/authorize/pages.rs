//! The HTML around the authorization endpoint's forms: the document shell, escaping, the error pages,
//! and the headers that forbid framing, caching and form submissions anywhere but here and the
//! client's redirect_uri.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

pub(super) fn page_headers(response: &mut Response) {
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
pub(super) fn csp_source(redirect_uri: &str) -> Option<String> {
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
pub(super) fn allow_form_redirect_to(response: &mut Response, redirect_uri: &str) {
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

pub(super) fn html(status: StatusCode, title: &str, body: &str) -> Response {
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
pub(super) fn error_page(description: &str) -> Response {
    html(
        StatusCode::BAD_REQUEST,
        "Sign-in request refused",
        &format!("<p role=\"alert\">{}</p>", escape(description)),
    )
}

/// The page for a form whose CSRF token does not match.
pub(super) fn forbidden_form() -> Response {
    html(
        StatusCode::FORBIDDEN,
        "Form expired",
        "<p role=\"alert\">The form expired or was not sent from this site. Go back to the application and start again.</p>",
    )
}
