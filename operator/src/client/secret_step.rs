//! The Secret step of a client reconcile: in comes the OAuthClient, out go the digests to register (and
//! the rotation plan the status shows). A generated Secret is read, decided on by the pure
//! [`rotation::decide`] and applied; a Secret the platform team brings (`existingSecretRef`) is only
//! read. A problem the spec has to fix comes back as the failed SecretSynced condition.
//!
//! No digest goes anywhere but the token server and the generated Secret: the OAuthClient is readable
//! by many more people than its namespace's Secrets, and a SHA-256 of a secret someone chose (a
//! bring-your-own one) can be searched offline. What the server was told to accept is remembered in
//! the generated Secret itself ([`sec::ACCEPTED_DIGESTS`]); a bring-your-own secret has no rotation and
//! needs no memory.

use gatehouse_crds::{
    OAuthClient,
    admin::{SecretDigest, secret_digest},
    credentials::{Credentials, KeyNames, MIN_SECRET_BYTES, long_enough},
};
use jiff::Timestamp;
use k8s_openapi::{api::core::v1::Secret, apimachinery::pkg::apis::meta::v1::OwnerReference};
use kube::{
    Api, Resource as _, ResourceExt as _,
    api::{Patch, PatchParams},
};

use super::{events, key};
use crate::{
    Context, Error, MANAGER, Result,
    conditions::{self as cond, Desired},
    rotation,
    secret::{self as sec, Contents},
};

/// What the Secret step produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretOutcome {
    /// Digests to register.
    pub digests: Vec<SecretDigest>,
    /// Rotation plan of a generated secret.
    pub plan: Option<rotation::Plan>,
    /// The rotate annotation value the current secret answers.
    pub rotate_handled: Option<String>,
    /// The failed SecretSynced condition of a secret that is refused but still registers the client, with
    /// no digests: so that the secret the Secret held before stops working too.
    pub refused: Option<Desired>,
}

/// The Secret step's result: the outcome, or the failed SecretSynced condition.
pub type Step = std::result::Result<SecretOutcome, Desired>;

/// The digests the token server was last told to accept for a generated secret: what the Secret says
/// ([`sec::ACCEPTED_DIGESTS`]); else `legacy`, what an earlier operator remembered on the OAuthClient;
/// else, for a client that had a secret before, what the server holds. Only a Secret that is gone, or
/// that an earlier operator wrote, needs the server: without it, the secret of a deleted Secret would
/// stop working at once instead of at the end of its grace period. A registration that another
/// OAuthClient made is no memory of this one.
async fn remembered(
    client: &OAuthClient,
    secret: Option<&Secret>,
    legacy: Option<Vec<SecretDigest>>,
    ctx: &Context,
) -> Result<Vec<SecretDigest>> {
    if let Some(digests) = secret.and_then(sec::accepted).or(legacy) {
        return Ok(digests);
    }
    let had_secret = client
        .status
        .as_ref()
        .is_some_and(|s| s.secret_rotated_at.is_some());
    if !had_secret {
        return Ok(Vec::new());
    }
    let client_id = client.client_id();
    let registration = ctx
        .admin
        .get(&client_id)
        .await
        .map_err(|source| Error::ReadRegistration { client_id, source })?;
    let source = format!("{}/{}", client.namespace().unwrap_or_default(), client.name_any());
    Ok(registration
        .filter(|r| r.source.as_ref() == Some(&source))
        .map(|r| r.secrets)
        .unwrap_or_default())
}

fn owner_ref(client: &OAuthClient) -> Result<OwnerReference> {
    client
        .controller_owner_ref(&())
        .ok_or(Error::MissingField("metadata.uid"))
}

/// The Secret step for a client whose Secret the operator generates, with `effective_scopes` as its
/// `scope` key and `now` for the rotation decision. `legacy` are the digests an earlier operator
/// remembered on the OAuthClient, if it did (see [`super::status::remember`]).
pub async fn generated(
    client: &OAuthClient,
    ctx: &Context,
    effective_scopes: &[String],
    now: Timestamp,
    legacy: Option<Vec<SecretDigest>>,
) -> Result<Step> {
    let ns = client.namespace().unwrap_or_default();
    let name = client.secret_name();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let existing = secrets.get_opt(&name).await.map_err(|source| Error::ReadSecret {
        name: name.clone(),
        source,
    })?;
    let owner = owner_ref(client)?;
    if let Some(s) = &existing
        && !s.owner_references().iter().any(|o| o.uid == owner.uid)
    {
        return Ok(Err(Desired::failed(
            cond::SECRET_SYNCED,
            cond::REASON_SECRET_CONFLICT,
            format!("Secret {name} exists and is not owned by this OAuthClient; it is left untouched"),
        )));
    }
    let client_id = client.client_id();
    let issuer = ctx.config.server.issuer.clone();
    let credentials = |secret, previous| Credentials {
        client_id: &client_id,
        secret,
        previous,
        issuer: &issuer,
        scopes: effective_scopes,
    };

    if client.spec.is_public() {
        let rendered = sec::render(
            client,
            owner,
            &Contents {
                credentials: credentials(None, None),
                rotated_at: None,
                rotate_handled: None,
                accepted: &[],
            },
        );
        apply_secret(ctx, client, &secrets, &rendered).await?;
        return Ok(Ok(SecretOutcome::default()));
    }

    let keys = KeyNames::of(client);
    let remembered = remembered(client, existing.as_ref(), legacy, ctx).await?;
    let current = existing
        .as_ref()
        .and_then(|s| sec::current(s, &keys, &remembered));
    let annotation = |key: &str| existing.as_ref().and_then(|s| s.annotations().get(key));
    let observed = rotation::Observed {
        rotation: client.spec.secret.as_ref().and_then(|t| t.rotation.as_ref()),
        current: current.as_deref(),
        previous: existing
            .as_ref()
            .and_then(|s| sec::value(s, &keys.previous_client_secret)),
        rotated_at: annotation(sec::ROTATED_AT).and_then(|v| v.parse::<Timestamp>().ok()),
        handled: annotation(sec::ROTATE_HANDLED).map(String::as_str),
        annotation: client.annotations().get(sec::ROTATE).map(String::as_str),
        remembered: &remembered,
    };
    let decision = match rotation::decide(&observed, now, sec::generate) {
        Ok(d) => d,
        Err(e) => {
            return Ok(Err(Desired::failed(
                cond::SECRET_SYNCED,
                cond::REASON_INVALID_SPEC,
                e.to_string(),
            )));
        }
    };
    let rendered = sec::render(
        client,
        owner,
        &Contents {
            credentials: credentials(Some(&decision.secret), decision.previous.as_deref()),
            rotated_at: Some(decision.plan.rotated_at),
            rotate_handled: decision.rotate_handled.as_deref(),
            accepted: &decision.digests,
        },
    );
    apply_secret(ctx, client, &secrets, &rendered).await?;
    if let Some(trigger) = decision.plan.rotate {
        let (type_, reason, note) = events::rotation(trigger, &name, decision.plan.grace_until);
        events::publish(ctx, client, type_, reason, note).await;
    }
    Ok(Ok(SecretOutcome {
        digests: decision.digests,
        plan: Some(decision.plan),
        rotate_handled: decision.rotate_handled,
        refused: None,
    }))
}

/// Applies the client's Secret, and remembers the version the API server answered with.
async fn apply_secret(
    ctx: &Context,
    client: &OAuthClient,
    secrets: &Api<Secret>,
    secret: &Secret,
) -> Result<()> {
    let name = secret.metadata.name.clone().unwrap_or_default();
    let applied = secrets
        .patch(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(secret))
        .await
        .map_err(|source| Error::ApplySecret { name, source })?;
    ctx.memo.secret_applied(&key(client), applied.resource_version());
    Ok(())
}

/// The Secret step for a client that brings its own Secret: read it, never write it. A secret shorter
/// than [`MIN_SECRET_BYTES`] is refused, and the client is registered with no secret at all rather than
/// left with the one registered before: replacing the Secret is how its owner retires the old value,
/// with a long value or a short one, and a refused value must not keep the retired one alive.
pub async fn existing(client: &OAuthClient, ctx: &Context) -> Result<Step> {
    let Some(reference) = &client.spec.existing_secret_ref else {
        return Err(Error::MissingField("spec.existingSecretRef"));
    };
    let ns = client.namespace().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let found = secrets
        .get_opt(&reference.name)
        .await
        .map_err(|source| Error::ReadSecret {
            name: reference.name.clone(),
            source,
        })?;
    let key = KeyNames::of(client).client_secret;
    let Some(found) = found else {
        return Ok(Err(Desired::failed(
            cond::SECRET_SYNCED,
            cond::REASON_SECRET_MISSING,
            format!(
                "waiting for Secret {} (existingSecretRef); no secret is generated in its place",
                reference.name
            ),
        )));
    };
    let Some(value) = sec::value(&found, &key) else {
        return Ok(Err(Desired::failed(
            cond::SECRET_SYNCED,
            cond::REASON_SECRET_KEY_MISSING,
            format!("Secret {} has no non-empty key {key}", reference.name),
        )));
    };
    if !long_enough(value) {
        // The message says "shorter", not how long: OAuthClient readers need not learn more of a Secret.
        return Ok(Ok(SecretOutcome {
            refused: Some(Desired::failed(
                cond::SECRET_SYNCED,
                cond::REASON_SECRET_TOO_WEAK,
                format!(
                    "the value under key {key} of Secret {} is shorter than {MIN_SECRET_BYTES} bytes; it is \
                     not registered, and no secret works for this client until the Secret holds a longer one",
                    reference.name
                ),
            )),
            ..SecretOutcome::default()
        }));
    }
    Ok(Ok(SecretOutcome {
        digests: vec![SecretDigest {
            sha256: secret_digest(value),
            expires_at: None,
        }],
        ..SecretOutcome::default()
    }))
}
