//! Client authentication at the token, introspection and revocation endpoints
//! ([RFC 6749 §2.3](https://www.rfc-editor.org/rfc/rfc6749#section-2.3)). Parsing what was presented
//! ([`presented`]) is pure; [`authenticate`] then checks it against the client registry. Endpoints
//! decide whether a public client (method `none`) is acceptable. A new method (private_key_jwt) is a new
//! [`Presented`] variant and one more arm in [`authenticate`].

use std::sync::Arc;

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use gatehouse_crds::AuthMethod;
use gatehouse_crds::admin::ClientRegistration;

use crate::client::registry::{ClientCache, secret_matches};
use crate::oauth::OAuthError;
use crate::oauth::params::Params;

/// The credentials a request carries, before they are checked.
#[derive(Clone, PartialEq, Eq)]
pub enum Presented {
    /// HTTP Basic ([RFC 6749 §2.3.1](https://www.rfc-editor.org/rfc/rfc6749#section-2.3.1)).
    Basic {
        /// The decoded client_id.
        client_id: String,
        /// The decoded secret.
        secret: String,
    },
    /// `client_id` and `client_secret` in the body.
    Post {
        /// The client_id.
        client_id: String,
        /// The secret.
        secret: String,
    },
    /// Only a `client_id`: a public client.
    None {
        /// The client_id.
        client_id: String,
    },
    /// No credentials at all.
    Absent,
}

impl std::fmt::Debug for Presented {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a secret.
        match self {
            Presented::Basic { client_id, .. } => write!(f, "Basic({client_id})"),
            Presented::Post { client_id, .. } => write!(f, "Post({client_id})"),
            Presented::None { client_id } => write!(f, "None({client_id})"),
            Presented::Absent => f.write_str("Absent"),
        }
    }
}

/// A client whose credentials were checked.
#[derive(Clone, Debug)]
pub struct AuthenticatedClient {
    /// Its registration.
    pub client: Arc<ClientRegistration>,
    /// How it authenticated.
    pub method: AuthMethod,
}

impl AuthenticatedClient {
    /// Whether it is a public client that presented no secret.
    pub fn is_public(&self) -> bool {
        self.method == AuthMethod::None
    }
}

const BASIC_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decodes an RFC 6749 §2.3.1 `Authorization: Basic` value (without the scheme): base64 of
/// `urlencode(client_id):urlencode(secret)`.
pub fn parse_basic(encoded: &str) -> Result<(String, String), OAuthError> {
    let malformed = |why: &str| OAuthError::invalid_request(format!("malformed Basic credentials: {why}"));
    let decoded = BASIC_BASE64
        .decode(encoded.trim())
        .map_err(|_| malformed("not base64"))?;
    let text = String::from_utf8(decoded).map_err(|_| malformed("not UTF-8"))?;
    let (id, secret) = text.split_once(':').ok_or_else(|| malformed("no colon"))?;
    let id = form_decode(id).ok_or_else(|| malformed("bad percent-encoding in the client_id"))?;
    let secret = form_decode(secret).ok_or_else(|| malformed("bad percent-encoding in the secret"))?;
    Ok((id, secret))
}

/// Decodes `application/x-www-form-urlencoded` text: `+` is a space, `%XX` a byte. Fails on a broken
/// escape or bytes that are not UTF-8.
pub fn form_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// What the request presents. Using two methods at once is `invalid_request`
/// ([RFC 6749 §2.3](https://www.rfc-editor.org/rfc/rfc6749#section-2.3)).
pub fn presented(headers: &HeaderMap, params: &Params) -> Result<Presented, OAuthError> {
    let body_id = params.get("client_id");
    let body_secret = params.get("client_secret");
    let mut authorizations = headers.get_all(header::AUTHORIZATION).iter();
    let authorization = authorizations.next();
    if authorizations.next().is_some() {
        return Err(OAuthError::invalid_request("more than one Authorization header"));
    }
    if let Some(value) = authorization {
        let value = value
            .to_str()
            .map_err(|_| OAuthError::invalid_request("malformed Basic credentials: not UTF-8"))?;
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(OAuthError::invalid_request(
                "clients authenticate with the Basic scheme or in the body",
            ));
        }
        let (client_id, secret) = parse_basic(rest)?;
        if body_secret.is_some() {
            return Err(OAuthError::invalid_request(
                "the client authenticated with both Basic and client_secret in the body",
            ));
        }
        if body_id.is_some_and(|id| id != client_id) {
            return Err(OAuthError::invalid_request(
                "client_id in the body differs from the Basic credentials",
            ));
        }
        return Ok(Presented::Basic { client_id, secret });
    }
    match (body_id, body_secret) {
        (Some(id), Some(secret)) => Ok(Presented::Post {
            client_id: id.to_owned(),
            secret: secret.to_owned(),
        }),
        (Some(id), None) => Ok(Presented::None {
            client_id: id.to_owned(),
        }),
        (None, Some(_)) => Err(OAuthError::invalid_request("client_secret without client_id")),
        (None, None) => Ok(Presented::Absent),
    }
}

const FAILED: &str = "client authentication failed";

/// Checks presented credentials against the registry at `now`. Unknown clients and wrong secrets get
/// the same `invalid_client`, so the answer doesn't reveal which client_ids exist. A confidential
/// client may use either secret method.
pub fn authenticate(
    clients: &ClientCache,
    presented: Presented,
    now: i64,
) -> Result<AuthenticatedClient, OAuthError> {
    let (client_id, secret, method) = match presented {
        Presented::Absent => return Err(OAuthError::invalid_client("client authentication is required")),
        Presented::Basic { client_id, secret } => (client_id, Some(secret), AuthMethod::ClientSecretBasic),
        Presented::Post { client_id, secret } => (client_id, Some(secret), AuthMethod::ClientSecretPost),
        Presented::None { client_id } => (client_id, None, AuthMethod::None),
    };
    let client = clients.get(&client_id);
    let client_is_public = client
        .as_ref()
        .is_some_and(|c| c.token_endpoint_auth_method == AuthMethod::None);
    match (client, secret) {
        (Some(client), Some(secret))
            if !client_is_public && secret_matches(&client.secrets, &secret, now) =>
        {
            Ok(AuthenticatedClient { client, method })
        }
        (Some(client), None) if client_is_public => Ok(AuthenticatedClient { client, method }),
        (Some(_), None) => Err(OAuthError::invalid_client(
            "this client must authenticate with its secret",
        )),
        _ => Err(OAuthError::invalid_client(FAILED)),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use base64::engine::general_purpose::STANDARD;

    use super::*;
    use crate::oauth::ErrorCode;

    fn basic(raw: &[u8]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let value = format!("Basic {}", STANDARD.encode(raw));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(&value).unwrap());
        headers
    }

    #[test]
    fn basic_credentials_are_form_urldecoded() {
        let encoded = STANDARD.encode("my%3Aclient:p%40ss+word%2B");
        assert_eq!(
            parse_basic(&encoded).unwrap(),
            ("my:client".to_owned(), "p@ss word+".to_owned())
        );
    }

    #[test]
    fn basic_credentials_that_are_not_base64_are_invalid_request() {
        let error = parse_basic("!!!").unwrap_err();
        assert_eq!(
            error,
            OAuthError::invalid_request("malformed Basic credentials: not base64")
        );
    }

    #[test]
    fn basic_credentials_without_a_colon_are_invalid_request() {
        let error = parse_basic(&STANDARD.encode("client")).unwrap_err();
        assert_eq!(
            error,
            OAuthError::invalid_request("malformed Basic credentials: no colon")
        );
    }

    #[test]
    fn basic_credentials_that_are_not_utf8_are_invalid_request() {
        let error = parse_basic(&STANDARD.encode([0xff, b':', b'x'])).unwrap_err();
        assert_eq!(
            error,
            OAuthError::invalid_request("malformed Basic credentials: not UTF-8")
        );
        assert!(parse_basic(&STANDARD.encode("a:%ff")).is_err());
    }

    #[test]
    fn basic_and_a_body_secret_together_are_invalid_request() {
        let params = Params::parse_body(b"client_id=a&client_secret=s").unwrap();
        let error = presented(&basic(b"a:s"), &params).unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn basic_with_the_same_client_id_in_the_body_is_accepted() {
        let params = Params::parse_body(b"client_id=a").unwrap();
        assert_eq!(
            presented(&basic(b"a:s"), &params).unwrap(),
            Presented::Basic {
                client_id: "a".to_owned(),
                secret: "s".to_owned()
            }
        );
    }

    #[test]
    fn body_credentials_and_a_bare_client_id_are_told_apart() {
        let post = Params::parse_body(b"client_id=a&client_secret=s").unwrap();
        assert!(matches!(
            presented(&HeaderMap::new(), &post).unwrap(),
            Presented::Post { .. }
        ));
        let none = Params::parse_body(b"client_id=a").unwrap();
        assert!(matches!(
            presented(&HeaderMap::new(), &none).unwrap(),
            Presented::None { .. }
        ));
        assert_eq!(
            presented(&HeaderMap::new(), &Params::default()).unwrap(),
            Presented::Absent
        );
    }

    #[test]
    fn no_credentials_are_invalid_client() {
        let error = authenticate(&ClientCache::default(), Presented::Absent, 0).unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidClient);
    }

    #[test]
    fn secrets_never_appear_in_debug_output() {
        let shown = format!(
            "{:?}",
            Presented::Basic {
                client_id: "a".to_owned(),
                secret: "hunter2".to_owned()
            }
        );
        assert!(!shown.contains("hunter2"));
    }
}
