//! Form bodies of the public endpoints. Token, introspection and revocation requests are
//! `application/x-www-form-urlencoded` ([RFC 6749 §3.2](https://www.rfc-editor.org/rfc/rfc6749#section-3.2));
//! a parameter may appear once ([RFC 6749 §3.1](https://www.rfc-editor.org/rfc/rfc6749#section-3.1)), and
//! one sent without a value counts as omitted. The body is read up to the configured limit; every
//! violation is `invalid_request`, never a rejection of axum's own.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, Request};
use axum::http::{HeaderMap, header};

use crate::oauth::OAuthError;

/// The parameters of a form body, each present at most once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params(HashMap<String, String>);

impl Params {
    /// Parses a body after checking its content type.
    pub fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Self, OAuthError> {
        check_content_type(headers)?;
        Self::parse_body(body)
    }

    /// Parses `application/x-www-form-urlencoded` bytes.
    pub fn parse_body(body: &[u8]) -> Result<Self, OAuthError> {
        let mut params = HashMap::new();
        let mut seen = std::collections::HashSet::new();
        for (name, value) in form_urlencoded::parse(body) {
            if !seen.insert(name.clone().into_owned()) {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {} is repeated",
                    printable(&name)
                )));
            }
            if !value.is_empty() {
                params.insert(name.into_owned(), value.into_owned());
            }
        }
        Ok(Self(params))
    }

    /// A parameter's value, if sent with a value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A parameter that must be present.
    pub fn required(&self, name: &'static str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("missing parameter {name}")))
    }
}

/// A parameter name as it may appear in an error description: short and printable.
fn printable(name: &str) -> String {
    let mut shown: String = name
        .chars()
        .take(40)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect();
    if name.chars().count() > 40 {
        shown.push_str("...");
    }
    shown
}

fn check_content_type(headers: &HeaderMap) -> Result<(), OAuthError> {
    let expected = "application/x-www-form-urlencoded";
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Err(OAuthError::invalid_request(format!(
            "the body must be {expected}; no Content-Type was sent"
        )));
    };
    let essence = value
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if essence == expected {
        Ok(())
    } else {
        Err(OAuthError::invalid_request(format!(
            "the body must be {expected}, not {}",
            printable(&essence)
        )))
    }
}

/// Reads a body up to `limit` bytes; a larger one is `invalid_request`.
pub async fn read_body(request: Request, limit: usize) -> Result<(HeaderMap, Bytes), OAuthError> {
    let too_large = || OAuthError::invalid_request(format!("the request body is larger than {limit} bytes"));
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large());
    }
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| too_large())?;
    Ok((parts.headers, bytes))
}

/// Extracts the headers and the form parameters of a public-endpoint request.
#[derive(Debug)]
pub struct Form {
    /// The request headers (for `Authorization`).
    pub headers: HeaderMap,
    /// The form parameters.
    pub params: Params,
}

/// The largest body a public endpoint reads, in bytes: what [`Form`] needs of the server's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyLimit(pub usize);

impl<S> FromRequest<S> for Form
where
    S: Send + Sync,
    BodyLimit: FromRef<S>,
{
    type Rejection = OAuthError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let BodyLimit(limit) = BodyLimit::from_ref(state);
        let (headers, body) = read_body(request, limit).await?;
        let params = Params::parse(&headers, &body)?;
        Ok(Self { headers, params })
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;
    use crate::oauth::ErrorCode;

    fn form_headers(content_type: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers
    }

    #[test]
    fn a_form_body_parses_and_empty_values_count_as_omitted() {
        let params = Params::parse(
            &form_headers("application/x-www-form-urlencoded; charset=UTF-8"),
            b"grant_type=client_credentials&scope=a+b%20c&state=",
        )
        .unwrap();
        assert_eq!(params.get("grant_type"), Some("client_credentials"));
        assert_eq!(params.get("scope"), Some("a b c"));
        assert_eq!(params.get("state"), None);
    }

    #[test]
    fn a_repeated_parameter_is_invalid_request() {
        let error = Params::parse_body(b"scope=a&scope=b").unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidRequest);
        assert_eq!(error.description.as_deref(), Some("parameter scope is repeated"));
    }

    #[test]
    fn a_json_body_is_invalid_request() {
        let error = Params::parse(&form_headers("application/json"), b"{}").unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidRequest);
        assert_eq!(
            error.description.as_deref(),
            Some("the body must be application/x-www-form-urlencoded, not application/json")
        );
    }

    #[test]
    fn a_missing_required_parameter_is_named() {
        let error = Params::default().required("grant_type").unwrap_err();
        assert_eq!(error, OAuthError::invalid_request("missing parameter grant_type"));
    }
}
