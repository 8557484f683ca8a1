//! Scope decisions ([RFC 6749 §3.3](https://www.rfc-editor.org/rfc/rfc6749#section-3.3)): what a request
//! may be granted, given what the client is allowed. Pure.

use crate::oauth::{ErrorCode, OAuthError};

/// Whether `token` is a valid scope token: `1*( %x21 / %x23-5B / %x5D-7E )`.
pub fn is_scope_token(token: &str) -> bool {
    !token.is_empty()
        && token
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

/// The scopes granted for `requested` (the raw `scope` parameter): each must be in `allowed`, and none
/// requested means `defaults`. Duplicates are dropped and order kept.
pub fn grant(
    requested: Option<&str>,
    allowed: &[String],
    defaults: &[String],
) -> Result<Vec<String>, OAuthError> {
    let Some(requested) = requested else {
        return Ok(defaults.to_vec());
    };
    let mut granted: Vec<String> = Vec::new();
    let mut refused: Vec<&str> = Vec::new();
    for token in requested.split(' ').filter(|t| !t.is_empty()) {
        if !is_scope_token(token) {
            return Err(OAuthError::new(
                ErrorCode::InvalidScope,
                "scope must be space-separated scope tokens (RFC 6749 §3.3)",
            ));
        }
        if !allowed.iter().any(|a| a == token) {
            refused.push(token);
        } else if !granted.iter().any(|g| g == token) {
            granted.push(token.to_owned());
        }
    }
    if !refused.is_empty() {
        let mut shown = refused.iter().take(5).copied().collect::<Vec<_>>().join(" ");
        if shown.len() > 200 {
            shown.truncate(200);
        }
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            format!("the client may not request: {shown}"),
        ));
    }
    if granted.is_empty() {
        return Ok(defaults.to_vec());
    }
    Ok(granted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn no_requested_scope_grants_the_defaults() {
        assert_eq!(
            grant(None, &list(&["a", "b"]), &list(&["a"])).unwrap(),
            list(&["a"])
        );
    }

    #[test]
    fn a_subset_of_the_allowed_scopes_is_granted_without_duplicates() {
        assert_eq!(
            grant(Some("b a b"), &list(&["a", "b", "c"]), &list(&["a"])).unwrap(),
            list(&["b", "a"])
        );
    }

    #[test]
    fn a_scope_beyond_the_allowed_ones_is_invalid_scope_and_named() {
        let error = grant(Some("a admin"), &list(&["a"]), &[]).unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidScope);
        assert_eq!(
            error.description.as_deref(),
            Some("the client may not request: admin")
        );
    }

    #[test]
    fn a_malformed_scope_token_is_invalid_scope() {
        let error = grant(Some("a \"b\""), &list(&["a"]), &[]).unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidScope);
    }
}
