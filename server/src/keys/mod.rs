//! Signing keys. They are generated and rotated automatically, stored in the database sealed with
//! AES-256-GCM under the key-encryption key, shared by every replica, and parsed once into memory:
//! signing a token touches neither the database nor a parser.
//!
//! Rotation has overlap on both sides. The next key is written `lead` seconds before it starts signing,
//! so it is in `/jwks` before any token carries its `kid`. The key that stopped signing stays published
//! until `retire_after`: the moment it was switched out plus the longest access-token lifetime. The
//! signing key is chosen by time ([`KeyStore::signing_key`]), so every replica switches at the same
//! moment. The decisions live in the pure [`plan`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, KeyPair as _};
use aws_lc_rs::{rsa, rsa::KeySize};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::store::{Db, StoredKey};
use crate::{Error, Result};

/// The JWS algorithm access tokens are signed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum SigningAlg {
    /// ECDSA with P-256 and SHA-256.
    #[value(name = "ES256")]
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit keys.
    #[value(name = "RS256")]
    Rs256,
    /// Ed25519.
    #[value(name = "EdDSA")]
    EdDsa,
}

impl SigningAlg {
    /// The JWS `alg` name.
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::Es256 => "ES256",
            SigningAlg::Rs256 => "RS256",
            SigningAlg::EdDsa => "EdDSA",
        }
    }

    /// The algorithm named `name` in a JWS header.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "ES256" => Some(SigningAlg::Es256),
            "RS256" => Some(SigningAlg::Rs256),
            "EdDSA" => Some(SigningAlg::EdDsa),
            _ => None,
        }
    }
}

/// The key-encryption key: AES-256-GCM over the stored private keys.
pub struct Kek(RandomizedNonceKey);

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek(..)")
    }
}

impl Kek {
    /// A key-encryption key from its 32 bytes.
    pub fn new(bytes: &[u8; 32]) -> Result<Self> {
        RandomizedNonceKey::new(&AES_256_GCM, bytes)
            .map(Self)
            .map_err(|_| Error::Crypto("AES-256-GCM key"))
    }

    /// Decodes 32 bytes written as hex or base64 (standard or URL-safe, padded or not).
    pub fn decode(text: &str) -> Result<[u8; 32]> {
        let text = text.trim();
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).ok()
        } else {
            [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
                .iter()
                .find_map(|engine| engine.decode(text).ok())
        };
        bytes.and_then(|b| <[u8; 32]>::try_from(b).ok()).ok_or_else(|| {
            Error::Config("the key-encryption key must be 32 bytes, written as hex or base64".to_owned())
        })
    }

    /// A fresh random key, base64-encoded.
    pub fn generate_encoded() -> String {
        gatehouse_crds::random::key_base64()
    }

    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        let mut in_out = plaintext.to_vec();
        let nonce = self
            .0
            .seal_in_place_append_tag(Aad::from(aad), &mut in_out)
            .map_err(|_| Error::Crypto("sealing a private key"))?;
        let mut sealed = nonce.as_ref().to_vec();
        sealed.extend_from_slice(&in_out);
        Ok(sealed)
    }

    fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>> {
        let failed =
            || Error::Crypto("opening a private key (is the key-encryption key the one it was sealed with?)");
        if sealed.len() < NONCE_LEN {
            return Err(failed());
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| failed())?;
        let mut in_out = ciphertext.to_vec();
        let plaintext = self
            .0
            .open_in_place(nonce, Aad::from(aad), &mut in_out)
            .map_err(|_| failed())?;
        Ok(plaintext.to_vec())
    }
}

enum Signer {
    Ec(signature::EcdsaKeyPair),
    Rsa(rsa::KeyPair),
    Ed(signature::Ed25519KeyPair),
}

/// A parsed key pair, ready to sign and verify.
pub struct SigningKey {
    /// Key id: the RFC 7638 thumbprint of the public key.
    pub kid: String,
    /// The algorithm.
    pub alg: SigningAlg,
    /// The public JWK, with `kid`, `alg` and `use`.
    pub jwk: serde_json::Value,
    signer: Signer,
    verify_key: Vec<u8>,
    /// The encoded JWS headers, built once per key rather than per token.
    access_token_header: String,
    id_token_header: String,
}

/// What a JWT signed by [`SigningKey::sign_jwt`] is, which decides its `typ` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JwtType {
    /// An RFC 9068 access token (`typ: at+jwt`).
    AccessToken,
    /// An OpenID Connect ID token (`typ: JWT`).
    IdToken,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish()
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl SigningKey {
    /// Generates a key pair; returns it with its PKCS#8 document.
    pub fn generate(alg: SigningAlg) -> Result<(Self, Vec<u8>)> {
        let rng = SystemRandom::new();
        let pkcs8 = match alg {
            SigningAlg::Es256 => {
                signature::EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|_| Error::Crypto("generating a P-256 key"))?
                    .as_ref()
                    .to_vec()
            }
            SigningAlg::EdDsa => signature::Ed25519KeyPair::generate_pkcs8(&rng)
                .map_err(|_| Error::Crypto("generating an Ed25519 key"))?
                .as_ref()
                .to_vec(),
            SigningAlg::Rs256 => {
                let pair = rsa::KeyPair::generate(KeySize::Rsa2048)
                    .map_err(|_| Error::Crypto("generating an RSA key"))?;
                AsDer::<Pkcs8V1Der>::as_der(&pair)
                    .map_err(|_| Error::Crypto("encoding an RSA key"))?
                    .as_ref()
                    .to_vec()
            }
        };
        let key = Self::from_pkcs8(alg, &pkcs8)?;
        Ok((key, pkcs8))
    }

    /// Parses a PKCS#8 private key.
    pub fn from_pkcs8(alg: SigningAlg, pkcs8: &[u8]) -> Result<Self> {
        let (signer, verify_key, thumbprint_input, mut jwk) = match alg {
            SigningAlg::Es256 => {
                let pair =
                    signature::EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
                        .map_err(|_| Error::Crypto("parsing a P-256 key"))?;
                let point = pair.public_key().as_ref().to_vec();
                if point.len() != 65 {
                    return Err(Error::Crypto("unexpected P-256 public key encoding"));
                }
                let (x, y) = (b64(&point[1..33]), b64(&point[33..65]));
                let input = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
                let jwk = json!({"kty": "EC", "crv": "P-256", "x": x, "y": y});
                (Signer::Ec(pair), point, input, jwk)
            }
            SigningAlg::EdDsa => {
                let pair = signature::Ed25519KeyPair::from_pkcs8(pkcs8)
                    .map_err(|_| Error::Crypto("parsing an Ed25519 key"))?;
                let public = pair.public_key().as_ref().to_vec();
                let x = b64(&public);
                let input = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
                let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": x});
                (Signer::Ed(pair), public, input, jwk)
            }
            SigningAlg::Rs256 => {
                let pair =
                    rsa::KeyPair::from_pkcs8(pkcs8).map_err(|_| Error::Crypto("parsing an RSA key"))?;
                let public = pair.public_key();
                let n = b64(public.modulus().big_endian_without_leading_zero());
                let e = b64(public.exponent().big_endian_without_leading_zero());
                let verify_key = public.as_ref().to_vec();
                let input = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
                let jwk = json!({"kty": "RSA", "n": n, "e": e});
                (Signer::Rsa(pair), verify_key, input, jwk)
            }
        };
        let kid = b64(&Sha256::digest(thumbprint_input.as_bytes()));
        if let Some(object) = jwk.as_object_mut() {
            object.insert("kid".to_owned(), json!(kid));
            object.insert("alg".to_owned(), json!(alg.as_str()));
            object.insert("use".to_owned(), json!("sig"));
        }
        let header = |typ: &str| {
            b64(json!({"alg": alg.as_str(), "typ": typ, "kid": kid})
                .to_string()
                .as_bytes())
        };
        Ok(Self {
            access_token_header: header("at+jwt"),
            id_token_header: header("JWT"),
            kid,
            alg,
            jwk,
            signer,
            verify_key,
        })
    }

    /// Signs `claims` as a compact JWS of type `typ` with this key.
    pub fn sign_jwt(&self, typ: JwtType, claims: &impl serde::Serialize) -> Result<String> {
        let header = match typ {
            JwtType::AccessToken => &self.access_token_header,
            JwtType::IdToken => &self.id_token_header,
        };
        let mut jwt = header.clone();
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(serde_json::to_vec(claims)?, &mut jwt);
        let signature = self.sign(jwt.as_bytes())?;
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut jwt);
        Ok(jwt)
    }

    /// Signs `message` (the JWS signing input).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        let rng = SystemRandom::new();
        match &self.signer {
            Signer::Ec(pair) => Ok(pair
                .sign(&rng, message)
                .map_err(|_| Error::Crypto("ECDSA signing"))?
                .as_ref()
                .to_vec()),
            Signer::Ed(pair) => Ok(pair.sign(message).as_ref().to_vec()),
            Signer::Rsa(pair) => {
                let mut out = vec![0u8; pair.public_modulus_len()];
                pair.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut out)
                    .map_err(|_| Error::Crypto("RSA signing"))?;
                Ok(out)
            }
        }
    }

    /// Whether `sig` is this key's signature over `message`.
    pub fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        let algorithm: &'static dyn signature::VerificationAlgorithm = match self.alg {
            SigningAlg::Es256 => &signature::ECDSA_P256_SHA256_FIXED,
            SigningAlg::EdDsa => &signature::ED25519,
            SigningAlg::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        };
        signature::UnparsedPublicKey::new(algorithm, &self.verify_key)
            .verify(message, sig)
            .is_ok()
    }
}

/// A key with its schedule.
#[derive(Clone, Debug)]
pub struct KeyEntry {
    /// The parsed key.
    pub key: Arc<SigningKey>,
    /// Sequence number in the database.
    pub generation: i64,
    /// When it starts signing.
    pub activates_at: i64,
    /// When it leaves the JWKS, once it stopped signing.
    pub retire_after: Option<i64>,
}

/// The schedule of a stored key, as [`plan`] sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyMeta {
    /// Key id.
    pub kid: String,
    /// Algorithm name.
    pub alg: String,
    /// When it starts signing.
    pub activates_at: i64,
    /// When it leaves the JWKS.
    pub retire_after: Option<i64>,
}

/// What [`plan`] decided.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Create a key that starts signing at this time.
    pub create_at: Option<i64>,
    /// Keys that stopped signing, with the time they leave the JWKS.
    pub retire: Vec<(String, i64)>,
    /// Keys past their retirement, to delete.
    pub delete: Vec<String>,
}

/// Timing of rotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// How long a key signs before the next one takes over, in seconds.
    pub period: i64,
    /// How long before it signs a new key is published, in seconds.
    pub lead: i64,
}

impl Schedule {
    /// The schedule for a rotation period: keys are published a quarter period (at most a day) ahead.
    pub fn for_period(period: i64) -> Self {
        Self {
            period,
            lead: (period / 4).clamp(1, 86_400),
        }
    }
}

/// Decides key maintenance at `now`: which key to create, which to mark for retirement, which to
/// delete. `max_ttl` is the longest lifetime of a token a key may have signed.
pub fn plan(keys: &[KeyMeta], alg: SigningAlg, now: i64, schedule: Schedule, max_ttl: i64) -> Plan {
    let mut plan = Plan::default();
    let ours = || keys.iter().filter(|k| k.alg == alg.as_str());
    let signing = ours()
        .filter(|k| k.activates_at <= now)
        .max_by_key(|k| k.activates_at);
    let pending = ours().any(|k| k.activates_at > now);
    plan.create_at = match signing {
        None => Some(now),
        Some(current) if !pending && now >= current.activates_at + schedule.period - schedule.lead => {
            Some((now + schedule.lead).max(current.activates_at + schedule.period))
        }
        Some(_) => None,
    };
    for key in keys {
        if let Some(retire_after) = key.retire_after {
            if retire_after <= now {
                plan.delete.push(key.kid.clone());
            }
            continue;
        }
        let is_signing = signing.is_some_and(|s| s.kid == key.kid);
        if is_signing || key.activates_at > now {
            continue;
        }
        let switched_out = keys
            .iter()
            .filter(|k| k.activates_at > key.activates_at && k.activates_at <= now)
            .map(|k| k.activates_at)
            .min()
            .unwrap_or(now);
        plan.retire.push((key.kid.clone(), switched_out + max_ttl));
    }
    plan
}

/// The keys in memory, and the key-encryption key to open new ones.
#[derive(Debug)]
pub struct KeyStore {
    kek: Kek,
    alg: SigningAlg,
    schedule: Schedule,
    entries: RwLock<Arc<Vec<KeyEntry>>>,
    last_reload: AtomicI64,
}

/// Unknown kids trigger at most one reload per this many seconds, so junk tokens can't hammer the
/// database.
const UNKNOWN_KID_RELOAD_INTERVAL: i64 = 5;

impl KeyStore {
    /// An empty store; call [`KeyStore::maintain`] to load or create keys.
    pub fn new(kek: Kek, alg: SigningAlg, schedule: Schedule) -> Self {
        Self {
            kek,
            alg,
            schedule,
            entries: RwLock::new(Arc::new(Vec::new())),
            last_reload: AtomicI64::new(i64::MIN),
        }
    }

    /// Reloads because a token names a kid not in memory (another replica may have added it), at
    /// most once per [`UNKNOWN_KID_RELOAD_INTERVAL`].
    pub async fn reload_for_unknown_kid(&self, db: &Db, now: i64) -> Result<()> {
        let last = self.last_reload.load(Ordering::Relaxed);
        if now.saturating_sub(last) < UNKNOWN_KID_RELOAD_INTERVAL {
            return Ok(());
        }
        if self
            .last_reload
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return Ok(());
        }
        self.reload(db).await
    }

    /// The configured algorithm.
    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    /// The rotation schedule.
    pub fn schedule(&self) -> Schedule {
        self.schedule
    }

    /// Every key in memory, oldest first.
    pub fn entries(&self) -> Arc<Vec<KeyEntry>> {
        self.entries.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Reads the keys from the database, parsing only those not already in memory.
    pub async fn reload(&self, db: &Db) -> Result<()> {
        let stored = db.signing_keys().await?;
        let known: HashMap<String, Arc<SigningKey>> = self
            .entries()
            .iter()
            .map(|e| (e.key.kid.clone(), e.key.clone()))
            .collect();
        let mut entries = Vec::with_capacity(stored.len());
        for row in stored {
            let key = match known.get(&row.kid) {
                Some(key) => key.clone(),
                None => {
                    let Some(alg) = SigningAlg::from_name(&row.alg) else {
                        tracing::warn!(kid = %row.kid, alg = %row.alg, "skipping a key of an unknown algorithm");
                        continue;
                    };
                    let pkcs8 = self.kek.open(row.kid.as_bytes(), &row.encrypted_private_key)?;
                    Arc::new(SigningKey::from_pkcs8(alg, &pkcs8)?)
                }
            };
            entries.push(KeyEntry {
                key,
                generation: row.generation,
                activates_at: row.activates_at,
                retire_after: row.retire_after,
            });
        }
        *self.entries.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(entries);
        Ok(())
    }

    /// Applies [`plan`] to what the database holds, then reloads.
    pub async fn maintain(&self, db: &Db, now: i64, max_ttl: i64) -> Result<()> {
        let stored = db.signing_keys().await?;
        let metas: Vec<KeyMeta> = stored
            .iter()
            .map(|k| KeyMeta {
                kid: k.kid.clone(),
                alg: k.alg.clone(),
                activates_at: k.activates_at,
                retire_after: k.retire_after,
            })
            .collect();
        let decided = plan(&metas, self.alg, now, self.schedule, max_ttl);
        for (kid, retire_after) in &decided.retire {
            tracing::info!(%kid, retire_after, "signing key switched out; it stays published until then");
            db.set_key_retire_after(kid, *retire_after).await?;
        }
        for kid in &decided.delete {
            tracing::info!(%kid, "signing key retired");
            db.delete_signing_key(kid).await?;
        }
        if let Some(activates_at) = decided.create_at {
            let next_generation = stored.iter().map(|k| k.generation).max().unwrap_or(0) + 1;
            self.create(db, next_generation, now, activates_at).await?;
        }
        self.reload(db).await
    }

    /// Adds a key that starts signing `activate_in` seconds from `now` (0: at once, for a compromised
    /// key). Returns its kid.
    pub async fn rotate(&self, db: &Db, now: i64, activate_in: i64) -> Result<String> {
        let next_generation = db
            .signing_keys()
            .await?
            .iter()
            .map(|k| k.generation)
            .max()
            .unwrap_or(0)
            + 1;
        let kid = self
            .create(db, next_generation, now, now + activate_in.max(0))
            .await?;
        self.reload(db).await?;
        Ok(kid)
    }

    async fn create(&self, db: &Db, generation: i64, now: i64, activates_at: i64) -> Result<String> {
        let (key, pkcs8) = SigningKey::generate(self.alg)?;
        let stored = StoredKey {
            kid: key.kid.clone(),
            generation,
            alg: self.alg.as_str().to_owned(),
            encrypted_private_key: self.kek.seal(key.kid.as_bytes(), &pkcs8)?,
            public_jwk: key.jwk.to_string(),
            activates_at,
            retire_after: None,
            created_at: now,
        };
        if db.insert_signing_key(&stored).await? {
            tracing::info!(kid = %key.kid, alg = self.alg.as_str(), activates_at, "signing key created");
        } else {
            tracing::info!(
                generation,
                "another replica created this generation's signing key first"
            );
        }
        Ok(key.kid.clone())
    }

    /// The key that signs at `now`: the newest of the configured algorithm that is already active.
    pub fn signing_key(&self, now: i64) -> Option<Arc<SigningKey>> {
        self.entries()
            .iter()
            .filter(|e| e.key.alg == self.alg && e.activates_at <= now)
            .max_by_key(|e| (e.activates_at, e.generation))
            .map(|e| e.key.clone())
    }

    /// The keys in the JWKS at `now`: the signing key, keys about to sign, and switched-out keys
    /// until their retirement.
    pub fn published(&self, now: i64) -> Vec<KeyEntry> {
        self.entries()
            .iter()
            .filter(|e| e.retire_after.is_none_or(|r| now < r))
            .cloned()
            .collect()
    }

    /// A published key by kid.
    pub fn find(&self, kid: &str, now: i64) -> Option<Arc<SigningKey>> {
        self.published(now)
            .into_iter()
            .find(|e| e.key.kid == kid)
            .map(|e| e.key)
    }

    /// The JWK Set document ([RFC 7517 §5](https://www.rfc-editor.org/rfc/rfc7517#section-5)).
    pub fn jwks(&self, now: i64) -> serde_json::Value {
        let keys: Vec<serde_json::Value> = self.published(now).iter().map(|e| e.key.jwk.clone()).collect();
        json!({ "keys": keys })
    }
}

#[cfg(test)]
mod tests;
