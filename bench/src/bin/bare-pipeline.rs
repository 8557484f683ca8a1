//! `bare-pipeline`: the ceiling issue 7 measures the token endpoint against, built here so that it is
//! measured on the machine that measures Gatehouse (`bench/ceiling.sh`).
//!
//! `POST /token` with HTTP Basic, a SHA-256 check of the secret, and an ES256 JWT signed with aws-lc-rs
//! in a JSON response: axum and nothing else. No client registry, no scopes, no metrics, no body
//! parsing, no logging. It accepts one client, `bare` with the secret given on the command line.
//!
//! Usage: `bare-pipeline ADDR SECRET`

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest as _, Sha256};

struct Bare {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    digest: [u8; 32],
}

fn token(bare: &Bare, headers: &HeaderMap) -> Option<String> {
    let basic = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Basic ")?;
    let decoded = STANDARD.decode(basic).ok()?;
    let (id, secret) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    let digest: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
    if id != "bare" || digest != bare.digest {
        return None;
    }
    // The ceiling's stand-in server has no clock to be given: it is the one place bench/ mints a JWT.
    #[allow(clippy::disallowed_methods)]
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    let mut jti = [0u8; 16];
    bare.rng.fill(&mut jti).ok()?;
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256","typ":"at+jwt","kid":"bare"}"#);
    let claims = serde_json::json!({
        "iss": "http://127.0.0.1",
        "sub": id,
        "aud": "bench-api",
        "exp": now + 3600,
        "iat": now,
        "jti": URL_SAFE_NO_PAD.encode(jti),
        "client_id": id,
        "scope": "read",
    });
    let signing_input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
    let signature = bare.key.sign(&bare.rng, signing_input.as_bytes()).ok()?;
    let jwt = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()));
    Some(
        serde_json::json!({ "access_token": jwt, "token_type": "Bearer", "expires_in": 3600, "scope": "read" })
            .to_string(),
    )
}

async fn handle(State(bare): State<Arc<Bare>>, headers: HeaderMap) -> Response {
    match token(&bare, &headers) {
        Some(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().context("usage: bare-pipeline ADDR SECRET")?;
    let secret = args.next().context("usage: bare-pipeline ADDR SECRET")?;
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| anyhow::anyhow!("generating a P-256 key"))?;
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
        .map_err(|_| anyhow::anyhow!("parsing the P-256 key"))?;
    let bare = Arc::new(Bare {
        key,
        rng,
        digest: Sha256::digest(secret.as_bytes()).into(),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        let app = axum::Router::new().route("/token", post(handle)).with_state(bare);
        axum::serve(listener, app).await?;
        anyhow::Ok(())
    })
}
