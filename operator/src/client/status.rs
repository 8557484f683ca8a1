//! A client's status: what a reconcile learnt (its [`Progress`]) and its conditions go in, the
//! `OAuthClientStatus` to write comes out of [`status`], the one pure function that assembles it.
//! Writing it, and removing the digests earlier operators left on the OAuthClient, is the I/O around it.

use gatehouse_crds::{OAuthClient, OAuthClientStatus, admin::SecretDigest, resolve::Resolution};
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{
    Api, ResourceExt as _,
    api::{Patch, PatchParams},
};
use serde_json::json;

use super::secret_step::SecretOutcome;
use crate::{
    Error, MANAGER, Result,
    conditions::{self as cond, Desired},
    secret as sec,
};

/// How far a reconcile got.
#[derive(Clone, Copy, Debug)]
pub enum Progress<'a> {
    /// The reconcile stopped before the Secret step (the client_id is not the namespace's, or the
    /// selecting policies could not be resolved); nothing else was attempted.
    Unresolved,
    /// The policies resolved to `resolution`; the Secret step gave `secret`, or failed (`None`).
    Resolved {
        /// The effective settings and the policies applied.
        resolution: &'a Resolution,
        /// What the Secret step produced, if it succeeded.
        secret: Option<&'a SecretOutcome>,
    },
    /// The client is being deleted and its deregistration failed: only the conditions change.
    Deleting,
}

/// The conditions `client`'s status shows now.
pub fn current_conditions(client: &OAuthClient) -> &[Condition] {
    client.status.as_ref().map_or(&[], |s| s.conditions.as_slice())
}

/// The Secret step's and the registration's conditions, followed by the Ready they add up to.
pub fn with_ready(secret: Desired, registered: Desired) -> [Desired; 3] {
    let ready = cond::ready(&[secret.clone(), registered.clone()]);
    [secret, registered, ready]
}

/// The status of `client` after a reconcile that got as far as `progress` and computed `conditions`
/// at `now`. What the reconcile did not find out again (the rotation times after a failed Secret step,
/// everything while deleting) is kept from the current status.
pub fn status(
    client: &OAuthClient,
    progress: Progress<'_>,
    conditions: &[Desired],
    now: Timestamp,
) -> OAuthClientStatus {
    let old = client.status.clone().unwrap_or_default();
    let generation = client.metadata.generation;
    let conditions = cond::merge(&old.conditions, conditions, generation, now);
    let fresh = OAuthClientStatus {
        client_id: Some(client.client_id()),
        secret_name: Some(client.secret_name()),
        observed_generation: generation,
        conditions,
        ..Default::default()
    };
    match progress {
        Progress::Deleting => OAuthClientStatus {
            conditions: fresh.conditions,
            ..old
        },
        Progress::Unresolved => OAuthClientStatus {
            secret_rotated_at: old.secret_rotated_at,
            next_rotation_at: old.next_rotation_at,
            rotate_annotation: old.rotate_annotation,
            ..fresh
        },
        Progress::Resolved { resolution, secret } => {
            let (secret_rotated_at, next_rotation_at) = match secret.and_then(|s| s.plan.as_ref()) {
                Some(plan) => (
                    Some(plan.rotated_at.to_string()),
                    plan.next_rotation_at.map(|t| t.to_string()),
                ),
                None => (old.secret_rotated_at, old.next_rotation_at),
            };
            OAuthClientStatus {
                effective: Some(resolution.effective.clone()),
                applied_policies: resolution.applied.clone(),
                secret_rotated_at,
                next_rotation_at,
                rotate_annotation: secret.and_then(|s| s.rotate_handled.clone()),
                ..fresh
            }
        }
    }
}

/// Writes the status; returns the object's new resourceVersion.
pub async fn write(api: &Api<OAuthClient>, name: &str, status: &OAuthClientStatus) -> Result<Option<String>> {
    let patch = json!({
        "apiVersion": "gatehouse.dev/v1alpha1",
        "kind": "OAuthClient",
        "status": status,
    });
    api.patch_status(name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&patch))
        .await
        .map(|written| written.resource_version())
        .map_err(Error::WriteStatus)
}

/// Removes the digests earlier operators remembered on the OAuthClient
/// ([`sec::LEGACY_REGISTERED_DIGESTS`]), where every reader of OAuthClients could see them; returns the
/// object's new resourceVersion if it had to write. The OAuthClient remembers nothing about secrets any
/// more (the generated Secret does: [`sec::ACCEPTED_DIGESTS`]), so `_registered` is not kept anywhere.
/// The reconcile calls this first, and the registration step again after it registered, which is then a
/// no-op.
pub async fn remember(
    api: &Api<OAuthClient>,
    client: &OAuthClient,
    _registered: &[SecretDigest],
) -> Result<Option<String>> {
    if !client.annotations().contains_key(sec::LEGACY_REGISTERED_DIGESTS) {
        return Ok(None);
    }
    // A merge patch, not an apply: it removes the annotation whichever field manager owns it.
    let patch = json!({ "metadata": { "annotations": { sec::LEGACY_REGISTERED_DIGESTS: null } } });
    api.patch(&client.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|written| written.resource_version())
        .map_err(Error::WriteAnnotations)
}

/// `client` without the legacy digests annotation, and the digests it held, if it had the annotation.
pub fn without_legacy_digests(client: &OAuthClient) -> Option<(OAuthClient, Option<Vec<SecretDigest>>)> {
    let annotations = client.metadata.annotations.as_ref()?;
    annotations.get(sec::LEGACY_REGISTERED_DIGESTS)?;
    let digests = sec::digests_in(annotations, sec::LEGACY_REGISTERED_DIGESTS);
    let mut cleaned = client.clone();
    cleaned.annotations_mut().remove(sec::LEGACY_REGISTERED_DIGESTS);
    Some((cleaned, digests))
}

#[cfg(test)]
mod tests;
