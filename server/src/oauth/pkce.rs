//! PKCE ([RFC 7636](https://www.rfc-editor.org/rfc/rfc7636)): which challenges `/authorize` accepts
//! under a client's policy, and whether a verifier matches. Pure.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A `code_challenge_method`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// `S256`: the challenge is BASE64URL(SHA256(verifier)).
    S256,
    /// `plain`: the challenge is the verifier.
    Plain,
}

impl Method {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::S256 => "S256",
            Method::Plain => "plain",
        }
    }

    /// The method a wire name names.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "S256" => Some(Method::S256),
            "plain" => Some(Method::Plain),
            _ => None,
        }
    }
}

/// Whether `value` is 43 to 128 characters of the unreserved set
/// ([RFC 7636 §4.1](https://www.rfc-editor.org/rfc/rfc7636#section-4.1)).
pub fn is_well_formed(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Checks an authorization request's challenge against the policy. Returns the challenge to store,
/// or the `invalid_request` description.
pub fn check_request(
    challenge: Option<&str>,
    method: Option<&str>,
    required: bool,
    allow_plain: bool,
) -> Result<Option<(String, Method)>, &'static str> {
    let Some(challenge) = challenge else {
        if method.is_some() {
            return Err("code_challenge_method without code_challenge");
        }
        return if required {
            Err("this client must use PKCE: code_challenge is required (RFC 7636)")
        } else {
            Ok(None)
        };
    };
    // RFC 7636 §4.3: no method means plain.
    let method = match method {
        None => Method::Plain,
        Some(name) => Method::from_name(name).ok_or("code_challenge_method must be S256 or plain")?,
    };
    if method == Method::Plain && !allow_plain {
        return Err("this client must use code_challenge_method=S256");
    }
    if !is_well_formed(challenge) {
        return Err("code_challenge must be 43 to 128 unreserved characters");
    }
    Ok(Some((challenge.to_owned(), method)))
}

/// Whether a verifier matches a stored challenge ([RFC 7636 §4.6](https://www.rfc-editor.org/rfc/rfc7636#section-4.6)).
pub fn verify(verifier: &str, challenge: &str, method: Method) -> bool {
    if !is_well_formed(verifier) {
        return false;
    }
    let computed = match method {
        Method::S256 => URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
        Method::Plain => verifier.to_owned(),
    };
    computed.as_bytes().ct_eq(challenge.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn the_rfc_example_verifies_with_s256() {
        assert!(verify(VERIFIER, CHALLENGE, Method::S256));
        assert!(!verify(CHALLENGE, CHALLENGE, Method::S256));
    }

    #[test]
    fn plain_compares_the_verifier_itself() {
        assert!(verify(VERIFIER, VERIFIER, Method::Plain));
        assert!(!verify(VERIFIER, CHALLENGE, Method::Plain));
    }

    #[test]
    fn a_short_verifier_never_matches() {
        assert!(!verify("abc", "abc", Method::Plain));
    }

    #[test]
    fn the_policy_decides_what_is_required_and_allowed() {
        assert_eq!(check_request(None, None, false, true), Ok(None));
        assert!(check_request(None, None, true, true).is_err());
        assert_eq!(
            check_request(Some(CHALLENGE), Some("plain"), true, false),
            Err("this client must use code_challenge_method=S256")
        );
        assert_eq!(
            check_request(Some(CHALLENGE), None, true, false),
            Err("this client must use code_challenge_method=S256")
        );
        assert_eq!(
            check_request(Some(CHALLENGE), Some("S256"), true, false),
            Ok(Some((CHALLENGE.to_owned(), Method::S256)))
        );
        assert!(check_request(Some("short"), Some("S256"), true, true).is_err());
    }
}
