//! The Secret step of a client reconcile: in comes the OAuthClient, out go the digests to register (and
//! the rotation plan the status shows). A generated Secret is read, decided on by the pure
//! [`rotation::decide`] and applied; a Secret the platform team brings (`existingSecretRef`) is only
//! read. A problem the spec has to fix comes back as the failed SecretSynced condition.

use gatehouse_crds::{
    OAuthClient,
    admin::{SecretDigest, secret_digest},
    credentials::{Credentials, KeyNames},
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
}

/// The Secret step's result: the outcome, or the failed SecretSynced condition.
pub type Step = std::result::Result<SecretOutcome, Desired>;

/// The digests registered last time, from the OAuthClient's annotation.
pub fn remembered(client: &OAuthClient) -> Vec<SecretDigest> {
    client
        .annotations()
        .get(sec::REGISTERED_DIGESTS)
        .and_then(|v| serde_json::from_str(v).ok())
        .unwrap_or_default()
}

fn owner_ref(client: &OAuthClient) -> Result<OwnerReference> {
    client
        .controller_owner_ref(&())
        .ok_or(Error::MissingField("metadata.uid"))
}

/// The Secret step for a client whose Secret the operator generates, with `effective_scopes` as its
/// `scope` key and `now` for the rotation decision.
pub async fn generated(
    client: &OAuthClient,
    ctx: &Context,
    effective_scopes: &[String],
    now: Timestamp,
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
            },
        );
        apply_secret(ctx, client, &secrets, &rendered).await?;
        return Ok(Ok(SecretOutcome::default()));
    }

    let keys = KeyNames::of(client);
    let remembered = remembered(client);
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

/// The Secret step for a client that brings its own Secret: read it, never write it.
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
    Ok(Ok(SecretOutcome {
        digests: vec![SecretDigest {
            sha256: secret_digest(value),
            expires_at: None,
        }],
        plan: None,
        rotate_handled: None,
    }))
}
