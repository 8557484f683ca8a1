//! The authorization code grant: the code issued at the authorization endpoint ([`issue_code`]) and
//! its token request ([RFC 6749 §4.1.3](https://www.rfc-editor.org/rfc/rfc6749#section-4.1.3)). A code
//! is single-use, lives `authorizationCodeTtlSeconds` (60 s by default), and is bound to the client,
//! the redirect_uri and the PKCE verifier ([RFC 7636 §4.6](https://www.rfc-editor.org/rfc/rfc7636#section-4.6)).
//! A code presented a second time is refused and every token issued from it is revoked
//! ([§10.5](https://www.rfc-editor.org/rfc/rfc6749#section-10.5)).

use gatehouse_crds::admin::ClientRegistration;

use crate::AppState;
use crate::client::AuthenticatedClient;
use crate::oauth::pkce::{self, Method};
use crate::oauth::{ErrorCode, OAuthError, Params};
use crate::store::{AuthorizationCode, Spend};
use crate::token::family::{self, NewGrant};
use crate::token::id_token::About;
use crate::token::{self, TokenResponse};

/// The description of an unknown, expired or another client's code.
pub const INVALID: &str = "the authorization code is invalid or expired";
/// The description of a replayed code.
pub const REPLAYED: &str = "the authorization code was already used; the tokens issued from it are revoked";
/// The description of a PKCE failure.
pub const BAD_VERIFIER: &str = "the code_verifier is missing or does not match the code_challenge";
/// The description of a redirect_uri that is not the authorization request's.
pub const REDIRECT_URI_MISMATCH: &str = "redirect_uri differs from the one of the authorization request";

/// What the authorization endpoint grants a code for.
#[derive(Clone, Copy, Debug)]
pub struct CodeGrant<'a> {
    /// The client the code is for.
    pub client: &'a ClientRegistration,
    /// The request's redirect_uri, which the token request must repeat.
    pub redirect_uri: &'a str,
    /// The signed-in user's subject.
    pub subject: &'a str,
    /// The granted scopes.
    pub scopes: &'a [String],
    /// The PKCE challenge and its method.
    pub challenge: Option<(&'a str, Method)>,
    /// The OpenID Connect nonce.
    pub nonce: Option<&'a str>,
    /// When the user signed in.
    pub auth_time: i64,
}

/// Issues a code at `now` and stores its hash; returns the code.
pub async fn issue_code(state: &AppState, grant: &CodeGrant<'_>, now: i64) -> crate::Result<String> {
    let code = token::random();
    state
        .db
        .insert_code(&AuthorizationCode {
            code_hash: token::hash(&code),
            family_id: family::new_family_id(),
            client_id: grant.client.client_id.clone(),
            redirect_uri: grant.redirect_uri.to_owned(),
            subject: grant.subject.to_owned(),
            scope: grant.scopes.join(" "),
            code_challenge: grant.challenge.map(|(c, _)| c.to_owned()),
            code_challenge_method: grant.challenge.map(|(_, m)| m.as_str().to_owned()),
            auth_time: grant.auth_time,
            expires_at: now + grant.client.effective.authorization_code_ttl_seconds,
            used: false,
            nonce: grant.nonce.map(str::to_owned),
        })
        .await?;
    Ok(code)
}

/// Why a presented code is refused. Every refusal is `invalid_grant`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Unknown, expired, or issued to another client.
    Invalid,
    /// Exchanged before: the tokens issued from it must be revoked.
    Replayed,
    /// The redirect_uri is not the authorization request's.
    RedirectUriMismatch,
    /// The PKCE verifier is missing, unexpected or wrong.
    BadVerifier,
}

impl From<Refusal> for OAuthError {
    fn from(refusal: Refusal) -> Self {
        let description = match refusal {
            Refusal::Invalid => INVALID,
            Refusal::Replayed => REPLAYED,
            Refusal::RedirectUriMismatch => REDIRECT_URI_MISMATCH,
            Refusal::BadVerifier => BAD_VERIFIER,
        };
        OAuthError::new(ErrorCode::InvalidGrant, description)
    }
}

/// What the token request presents with the code.
#[derive(Clone, Copy, Debug)]
pub struct Presented<'a> {
    /// The authenticated client.
    pub client_id: &'a str,
    /// `redirect_uri`.
    pub redirect_uri: &'a str,
    /// `code_verifier`, when sent.
    pub code_verifier: Option<&'a str>,
}

/// Whether `stored` may be exchanged by this request at `now`. Pure; the checks run in the order that
/// decides the answer: another client's code is unknown to it, a replay is told even when expired.
pub fn check(stored: &AuthorizationCode, presented: &Presented<'_>, now: i64) -> Result<(), Refusal> {
    if stored.client_id != presented.client_id {
        return Err(Refusal::Invalid);
    }
    if stored.used {
        return Err(Refusal::Replayed);
    }
    if now >= stored.expires_at {
        return Err(Refusal::Invalid);
    }
    if stored.redirect_uri != presented.redirect_uri {
        return Err(Refusal::RedirectUriMismatch);
    }
    let pkce_ok = match (
        &stored.code_challenge,
        &stored.code_challenge_method,
        presented.code_verifier,
    ) {
        (Some(challenge), Some(method), Some(verifier)) => {
            Method::from_name(method).is_some_and(|m| pkce::verify(verifier, challenge, m))
        }
        // A code issued without a challenge is exchanged without a verifier.
        (None, _, None) => true,
        // A missing verifier for a code with a challenge, or a verifier for a code issued without one:
        // the latter is a downgrade attempt (RFC 9700 §4.8.2).
        _ => false,
    };
    if !pkce_ok {
        return Err(Refusal::BadVerifier);
    }
    Ok(())
}

/// Exchanges a code for tokens.
pub async fn exchange(
    state: &AppState,
    client: &AuthenticatedClient,
    params: &Params,
    now: i64,
) -> Result<TokenResponse, OAuthError> {
    let code = params.required("code")?;
    let presented = Presented {
        client_id: &client.client.client_id,
        redirect_uri: params.required("redirect_uri")?,
        code_verifier: params.get("code_verifier"),
    };
    if code.len() > 512 {
        return Err(Refusal::Invalid.into());
    }
    let hash = token::hash(code);
    let Some(row) = state.db.find_code(&hash).await? else {
        return Err(Refusal::Invalid.into());
    };
    if let Err(refusal) = check(&row, &presented, now) {
        if refusal == Refusal::Replayed {
            state.db.revoke_family(&row.family_id, now).await?;
            tracing::warn!(client_id = %row.client_id, "an authorization code was presented twice; revoked its tokens");
        }
        return Err(refusal.into());
    }
    let user = match state.db.find_user_by_subject(&row.subject).await? {
        Some(stored) if !stored.user.disabled => stored.user,
        _ => {
            state.db.spend(Spend::Code(&hash)).await?;
            return Err(Refusal::Invalid.into());
        }
    };
    let scopes: Vec<String> = row
        .scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let grant = NewGrant {
        subject: &user.subject,
        scopes: &scopes,
        auth_time: row.auth_time,
        family_id: &row.family_id,
    };
    // The code is spent in the transaction that stores the tokens: of two concurrent exchanges one
    // wins, and the other is a replay.
    let Some(mut response) = family::new_grant(state, &client.client, grant, Spend::Code(&hash), now).await?
    else {
        state.db.revoke_family(&row.family_id, now).await?;
        return Err(Refusal::Replayed.into());
    };
    if scopes.iter().any(|s| s == "openid") {
        let about = About {
            user: &user,
            scopes: &scopes,
            nonce: row.nonce.as_deref(),
            auth_time: row.auth_time,
        };
        response.id_token = Some(token::id_token::id_token(
            state,
            &client.client,
            &about,
            &response.access_token,
            now,
        )?);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn code(challenge: Option<(&str, &str)>) -> AuthorizationCode {
        AuthorizationCode {
            code_hash: "h".to_owned(),
            family_id: "f".to_owned(),
            client_id: "web".to_owned(),
            redirect_uri: "https://app.example/cb".to_owned(),
            subject: "user:0123456789abcdef0123456789abcdef".to_owned(),
            scope: "openid".to_owned(),
            code_challenge: challenge.map(|(c, _)| c.to_owned()),
            code_challenge_method: challenge.map(|(_, m)| m.to_owned()),
            auth_time: 0,
            expires_at: 100,
            used: false,
            nonce: None,
        }
    }

    fn presented(verifier: Option<&'static str>) -> Presented<'static> {
        Presented {
            client_id: "web",
            redirect_uri: "https://app.example/cb",
            code_verifier: verifier,
        }
    }

    #[test]
    fn a_fresh_code_with_its_verifier_is_accepted() {
        let stored = code(Some((CHALLENGE, "S256")));
        assert_eq!(check(&stored, &presented(Some(VERIFIER)), 99), Ok(()));
    }

    #[test]
    fn a_code_expires_at_its_expiry_second() {
        let stored = code(Some((CHALLENGE, "S256")));
        assert_eq!(
            check(&stored, &presented(Some(VERIFIER)), 100),
            Err(Refusal::Invalid)
        );
    }

    #[test]
    fn another_clients_code_is_unknown_even_when_used() {
        let mut stored = code(None);
        stored.used = true;
        let other = Presented {
            client_id: "evil",
            ..presented(None)
        };
        assert_eq!(check(&stored, &other, 0), Err(Refusal::Invalid));
    }

    #[test]
    fn a_used_code_is_a_replay_even_after_it_expired() {
        let mut stored = code(None);
        stored.used = true;
        assert_eq!(check(&stored, &presented(None), 1_000), Err(Refusal::Replayed));
    }

    #[test]
    fn the_redirect_uri_must_be_the_requests() {
        let stored = code(None);
        let elsewhere = Presented {
            redirect_uri: "https://app.example/other",
            ..presented(None)
        };
        assert_eq!(check(&stored, &elsewhere, 0), Err(Refusal::RedirectUriMismatch));
    }

    #[test]
    fn a_wrong_or_missing_verifier_is_refused() {
        let stored = code(Some((CHALLENGE, "S256")));
        assert_eq!(
            check(
                &stored,
                &presented(Some("wrong-verifier-wrong-verifier-wrong-verifier")),
                0
            ),
            Err(Refusal::BadVerifier)
        );
        assert_eq!(check(&stored, &presented(None), 0), Err(Refusal::BadVerifier));
    }

    #[test]
    fn a_verifier_for_a_code_without_a_challenge_is_a_downgrade() {
        assert_eq!(
            check(&code(None), &presented(Some(VERIFIER)), 0),
            Err(Refusal::BadVerifier)
        );
    }

    #[test]
    fn every_refusal_is_invalid_grant() {
        for refusal in [
            Refusal::Invalid,
            Refusal::Replayed,
            Refusal::RedirectUriMismatch,
            Refusal::BadVerifier,
        ] {
            assert_eq!(OAuthError::from(refusal).code, ErrorCode::InvalidGrant);
        }
    }
}
