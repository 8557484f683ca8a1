//! Access tokens: building their claims (pure), minting them as RFC 9068 JWTs or opaque references,
//! and reading them back for introspection and revocation.
//!
//! A JWT is signed with the in-memory key and written nowhere. An opaque token is 256 random bits; only
//! its SHA-256 is stored, with the claims it stands for.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse_crds::TokenFormat;
use gatehouse_crds::admin::ClientRegistration;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::db::OpaqueToken;
use crate::{AppState, Error, Result};

/// Claims a policy's static claims may not replace.
pub const REGISTERED_CLAIMS: [&str; 11] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "client_id",
    "scope",
    "auth_time",
    "acr",
];

/// The claims of an access token ([RFC 9068 §2.2](https://www.rfc-editor.org/rfc/rfc9068#section-2.2)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer.
    pub iss: String,
    /// Subject: the client itself for client_credentials, the user otherwise.
    pub sub: String,
    /// Audiences.
    pub aud: Audience,
    /// Expiry.
    pub exp: i64,
    /// Issue time.
    pub iat: i64,
    /// Not before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Unique id.
    pub jti: String,
    /// The client it was issued to.
    pub client_id: String,
    /// Space-separated scopes; absent when none were granted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Static claims from the client's policy.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// `aud`: one string or several ([RFC 7519 §4.1.3](https://www.rfc-editor.org/rfc/rfc7519#section-4.1.3)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience.
    One(String),
    /// Several audiences.
    Many(Vec<String>),
}

impl Audience {
    /// As a list.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            Audience::One(a) => vec![a.clone()],
            Audience::Many(list) => list.clone(),
        }
    }

    fn from_list(mut list: Vec<String>) -> Self {
        if list.len() == 1 {
            Audience::One(list.remove(0))
        } else {
            Audience::Many(list)
        }
    }
}

/// Builds an access token's claims. `aud` is the client's effective audience, or the client_id when
/// the policy names none (RFC 9068 requires an audience; the client_id is one no resource server
/// accepts by accident). Static claims never replace a registered claim.
pub fn build_claims(
    issuer: &str,
    client: &ClientRegistration,
    subject: &str,
    scopes: &[String],
    now: i64,
    jti: String,
) -> AccessClaims {
    let effective = &client.effective;
    let audience = if effective.audience.is_empty() {
        vec![client.client_id.clone()]
    } else {
        effective.audience.clone()
    };
    let extra = effective
        .claims
        .iter()
        .filter(|(k, _)| !REGISTERED_CLAIMS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    AccessClaims {
        iss: issuer.to_owned(),
        sub: subject.to_owned(),
        aud: Audience::from_list(audience),
        exp: now + effective.access_token_ttl_seconds,
        iat: now,
        nbf: Some(now),
        jti,
        client_id: client.client_id.clone(),
        scope: (!scopes.is_empty()).then(|| scopes.join(" ")),
        extra,
    }
}

/// 256 random bits, base64url without padding.
pub fn random_token() -> Result<String> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| Error::Crypto("random"))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Hex SHA-256 of a token, the key it is stored under.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A freshly minted access token.
#[derive(Clone, Debug)]
pub struct Minted {
    /// The token itself.
    pub token: String,
    /// Its lifetime in seconds.
    pub expires_in: i64,
    /// Granted scopes.
    pub scope: Option<String>,
}

fn random_jti() -> Result<String> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| Error::Crypto("random"))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Mints an access token for `client` in the format its policy asks for.
pub async fn mint(
    state: &AppState,
    client: &ClientRegistration,
    subject: &str,
    scopes: &[String],
) -> Result<Minted> {
    let now = state.clock.now();
    let claims = build_claims(&state.config.issuer, client, subject, scopes, now, random_jti()?);
    let expires_in = claims.exp - now;
    let scope = claims.scope.clone();
    let token = match client.effective.access_token_format {
        TokenFormat::Jwt => sign_jwt(state, &claims, now)?,
        TokenFormat::Opaque => {
            let token = random_token()?;
            state
                .db
                .insert_opaque_token(&opaque_record(&claims, &token)?)
                .await?;
            token
        }
    };
    Ok(Minted {
        token,
        expires_in,
        scope,
    })
}

/// The stored record of opaque token `token` standing for `claims`.
pub fn opaque_record(claims: &AccessClaims, token: &str) -> Result<OpaqueToken> {
    Ok(OpaqueToken {
        token_hash: token_hash(token),
        client_id: claims.client_id.clone(),
        subject: claims.sub.clone(),
        scope: claims.scope.clone().unwrap_or_default(),
        audience: serde_json::to_string(&claims.aud.to_vec())?,
        claims: serde_json::to_string(&claims.extra)?,
        issued_at: claims.iat,
        expires_at: claims.exp,
        revoked: false,
    })
}

/// Signs claims as an RFC 9068 JWT with the key that signs at `now`.
pub fn sign_jwt(state: &AppState, claims: &AccessClaims, now: i64) -> Result<String> {
    let key = state
        .keys
        .signing_key(now)
        .ok_or(Error::Crypto("no signing key is active"))?;
    key.sign_jwt(crate::keys::JwtType::AccessToken, claims)
}

/// What a presented token turned out to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// A JWT with a valid signature from one of our published keys and our issuer.
    Jwt(AccessClaims),
    /// An opaque token we issued.
    Opaque(OpaqueToken),
    /// Nothing we issued.
    Unknown,
}

impl Found {
    /// The client the token was issued to.
    pub fn client_id(&self) -> Option<&str> {
        match self {
            Found::Jwt(c) => Some(&c.client_id),
            Found::Opaque(t) => Some(&t.client_id),
            Found::Unknown => None,
        }
    }
}

#[derive(Deserialize)]
struct JwtHeader {
    alg: String,
    kid: String,
    typ: Option<String>,
}

/// Looks a token up: a JWT is checked for signature, type and issuer (not expiry); an opaque token
/// is looked up by hash. The hint only decides the order ([RFC 7009 §2.1](https://www.rfc-editor.org/rfc/rfc7009#section-2.1)).
pub async fn find(state: &AppState, token: &str) -> Result<Found> {
    if token.split('.').count() == 3 {
        if let Some(claims) = verify_jwt(state, token).await? {
            return Ok(Found::Jwt(claims));
        }
        return Ok(Found::Unknown);
    }
    if token.len() > 512 {
        return Ok(Found::Unknown);
    }
    match state.db.find_opaque_token(&token_hash(token)).await? {
        Some(row) => Ok(Found::Opaque(row)),
        None => Ok(Found::Unknown),
    }
}

async fn verify_jwt(state: &AppState, token: &str) -> Result<Option<AccessClaims>> {
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(sig_b64)) = (parts.next(), parts.next(), parts.next())
    else {
        return Ok(None);
    };
    let Some(header) = URL_SAFE_NO_PAD
        .decode(header_b64)
        .ok()
        .and_then(|h| serde_json::from_slice::<JwtHeader>(&h).ok())
    else {
        return Ok(None);
    };
    if !header.typ.is_some_and(|t| t.eq_ignore_ascii_case("at+jwt")) {
        return Ok(None);
    }
    let now = state.clock.now();
    let key = match state.keys.find(&header.kid, now) {
        Some(key) => key,
        None => {
            // Another replica may have added a key since the last reload.
            state.keys.reload_for_unknown_kid(&state.db, now).await?;
            match state.keys.find(&header.kid, now) {
                Some(key) => key,
                None => return Ok(None),
            }
        }
    };
    if key.alg.as_str() != header.alg {
        return Ok(None);
    }
    let Ok(signature) = URL_SAFE_NO_PAD.decode(sig_b64) else {
        return Ok(None);
    };
    let signing_input_len = header_b64.len() + 1 + payload_b64.len();
    if !key.verify(&token.as_bytes()[..signing_input_len], &signature) {
        return Ok(None);
    }
    let Some(claims) = URL_SAFE_NO_PAD
        .decode(payload_b64)
        .ok()
        .and_then(|p| serde_json::from_slice::<AccessClaims>(&p).ok())
    else {
        return Ok(None);
    };
    if claims.iss != state.config.issuer {
        return Ok(None);
    }
    Ok(Some(claims))
}

/// Introspection's view of a token at `now`: its claims if it is active, `None` otherwise
/// ([RFC 7662 §2.2](https://www.rfc-editor.org/rfc/rfc7662#section-2.2)).
pub async fn active_claims(state: &AppState, found: &Found, now: i64) -> Result<Option<Map<String, Value>>> {
    let (client_id, iat, exp, nbf) = match found {
        Found::Unknown => return Ok(None),
        Found::Jwt(c) => (&c.client_id, c.iat, c.exp, c.nbf),
        Found::Opaque(t) => (&t.client_id, t.issued_at, t.expires_at, None),
    };
    if now >= exp || nbf.is_some_and(|nbf| now < nbf) {
        return Ok(None);
    }
    if state.clients.get(client_id).is_none() {
        return Ok(None);
    }
    let jti = match found {
        Found::Jwt(claims) => Some(claims.jti.as_str()),
        _ => None,
    };
    if state.db.is_token_revoked(client_id, iat, jti).await? {
        return Ok(None);
    }
    let mut out = Map::new();
    out.insert("active".to_owned(), Value::Bool(true));
    match found {
        Found::Jwt(claims) => {
            if let Value::Object(map) = serde_json::to_value(claims)? {
                out.extend(map);
            }
        }
        Found::Opaque(t) => {
            if t.revoked {
                return Ok(None);
            }
            if let Ok(Value::Object(extra)) = serde_json::from_str::<Value>(&t.claims) {
                out.extend(extra);
            }
            let audience: Vec<String> = serde_json::from_str(&t.audience).unwrap_or_default();
            out.insert("iss".to_owned(), json!(state.config.issuer));
            out.insert("sub".to_owned(), json!(t.subject));
            out.insert(
                "aud".to_owned(),
                serde_json::to_value(Audience::from_list(audience))?,
            );
            out.insert("exp".to_owned(), json!(t.expires_at));
            out.insert("iat".to_owned(), json!(t.issued_at));
            out.insert("client_id".to_owned(), json!(t.client_id));
            if !t.scope.is_empty() {
                out.insert("scope".to_owned(), json!(t.scope));
            }
        }
        Found::Unknown => return Ok(None),
    }
    out.insert("active".to_owned(), Value::Bool(true));
    out.insert("token_type".to_owned(), json!("Bearer"));
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use gatehouse_crds::admin::ClientRegistration;
    use gatehouse_crds::{AuthMethod, EffectiveSettings, GrantType};

    use super::*;

    fn client(audience: &[&str], claims: &[(&str, &str)]) -> ClientRegistration {
        ClientRegistration {
            client_id: "billing".to_owned(),
            source: None,
            display_name: None,
            token_endpoint_auth_method: AuthMethod::ClientSecretBasic,
            redirect_uris: Vec::new(),
            effective: EffectiveSettings {
                grant_types: vec![GrantType::ClientCredentials],
                denied_grant_types: Vec::new(),
                scopes: vec!["read".to_owned()],
                denied_scopes: Vec::new(),
                default_scopes: Vec::new(),
                scope_descriptions: BTreeMap::new(),
                audience: audience.iter().map(|a| (*a).to_owned()).collect(),
                access_token_ttl_seconds: 600,
                refresh_token_ttl_seconds: 3600,
                authorization_code_ttl_seconds: 60,
                access_token_format: TokenFormat::Jwt,
                require_pkce: false,
                allow_plain_pkce: true,
                refresh_token_rotation: true,
                first_party: false,
                claims: claims
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            },
            secrets: Vec::new(),
        }
    }

    #[test]
    fn claims_carry_every_rfc9068_claim() {
        let claims = build_claims(
            "https://issuer",
            &client(&["api"], &[]),
            "billing",
            &["read".to_owned()],
            1_000,
            "j1".to_owned(),
        );
        let value = serde_json::to_value(&claims).unwrap();
        assert_eq!(
            value,
            json!({
                "iss": "https://issuer", "sub": "billing", "aud": "api", "exp": 1_600, "iat": 1_000,
                "nbf": 1_000, "jti": "j1", "client_id": "billing", "scope": "read"
            })
        );
    }

    #[test]
    fn the_audience_defaults_to_the_client_id() {
        let claims = build_claims("i", &client(&[], &[]), "billing", &[], 0, "j".to_owned());
        assert_eq!(claims.aud, Audience::One("billing".to_owned()));
        assert_eq!(claims.scope, None);
    }

    #[test]
    fn several_audiences_become_an_array() {
        let claims = build_claims("i", &client(&["a", "b"], &[]), "s", &[], 0, "j".to_owned());
        assert_eq!(serde_json::to_value(&claims.aud).unwrap(), json!(["a", "b"]));
    }

    #[test]
    fn static_claims_are_added_but_never_replace_registered_ones() {
        let claims = build_claims(
            "i",
            &client(&[], &[("tenant", "acme"), ("sub", "evil"), ("exp", "0")]),
            "billing",
            &[],
            0,
            "j".to_owned(),
        );
        let value = serde_json::to_value(&claims).unwrap();
        assert_eq!(value["tenant"], "acme");
        assert_eq!(value["sub"], "billing");
        assert_eq!(value["exp"], 600);
    }

    #[test]
    fn random_tokens_are_256_bits_and_distinct() {
        let a = random_token().unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 32);
        assert_ne!(a, random_token().unwrap());
    }
}
