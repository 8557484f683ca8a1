//! The OAuthClient controller: policies, products and ceilings → effective settings, the client's Secret (generated once,
//! rotated on schedule or on request), the registration on the token server, status and Events.
//!
//! Each reconcile ([`apply`]) reads the policies, the Secret and the registration fresh, runs the steps
//! in order (each a module: [`secret_step`], [`register`], then [`status`]), decides with pure
//! functions ([`crate::rotation::decide`], [`status::status`], [`crate::conditions`]), writes what
//! changed with server-side apply, and requeues at the next rotation or grace deadline (or the resync
//! interval, whichever is sooner). [`watch`] maps the events of everything a client depends on to the
//! clients to reconcile.

mod events;
mod ownership;
mod register;
mod secret_step;
mod status;
mod watch;

use std::sync::Arc;

use gatehouse_crds::{OAuthClient, OAuthPolicy, resolve};
use kube::{
    Api, ResourceExt as _,
    runtime::{
        controller::Action,
        events::EventType,
        finalizer::{Event as Finalizer, finalizer},
    },
};
use tracing::{info, warn};

use self::status::{Progress, with_ready};
pub use self::watch::run;
use crate::{
    Context, Error, Result,
    admin::AdminError,
    conditions::{self as cond, Desired},
    rotation,
};

/// Finalizer that deregisters the client before the object goes away.
pub const FINALIZER: &str = "gatehouse.dev/cleanup";
const CONTROLLER: &str = "oauthclient";

fn client_key(ns: &str, name: &str) -> String {
    format!("oauthclient/{ns}/{name}")
}

fn key(client: &OAuthClient) -> String {
    client_key(&client.namespace().unwrap_or_default(), &client.name_any())
}

/// One reconcile of `client`, wrapped in the finalizer.
pub async fn reconcile(client: Arc<OAuthClient>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile(CONTROLLER);
    let ns = client
        .namespace()
        .ok_or(Error::MissingField("metadata.namespace"))?;
    let api: Api<OAuthClient> = Api::namespaced(ctx.client.clone(), &ns);
    let key = key(&client);
    let action = finalizer(&api, FINALIZER, client, |event| async {
        match event {
            Finalizer::Apply(client) => apply(&client, &api, &ctx).await,
            Finalizer::Cleanup(client) => cleanup(&client, &api, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))?;
    ctx.reset_backoff(&key);
    Ok(action)
}

/// Retries a failed reconcile with exponential backoff.
pub fn error_policy(client: Arc<OAuthClient>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.error(CONTROLLER);
    warn!(client = %key(&client), error = %error, "reconcile failed");
    let delay = ctx.next_backoff(key(&client));
    Action::requeue(delay)
}

async fn apply(client: &OAuthClient, api: &Api<OAuthClient>, ctx: &Context) -> Result<Action> {
    let memo_key = key(client);
    let started = std::time::Instant::now();
    if let Some(left) = ctx
        .memo
        .settled(&memo_key, client.resource_version().as_deref(), started)
    {
        // The watch event of this controller's own write: nothing changed since.
        return Ok(Action::requeue(left));
    }
    let ticket = ctx.memo.begin(&memo_key);
    let mut versions: Vec<String> = client.resource_version().into_iter().collect();
    let now = ctx.clock.now();
    let name = client.name_any();
    let ns = client.namespace().unwrap_or_default();
    let old_conditions = status::current_conditions(client);
    let resync = ctx.config.resync_interval;

    // 0. Earlier operators remembered the registered digests on the OAuthClient, for every reader of it
    // to see. The Secret step takes them over into the generated Secret, and the annotation goes first.
    let migrated = status::without_legacy_digests(client);
    let mut legacy = None;
    if let Some((_, digests)) = &migrated {
        versions.extend(status::remember(api, client, &[]).await?);
        legacy.clone_from(digests);
    }
    let client = migrated.as_ref().map_or(client, |(cleaned, _)| cleaned);

    // 1. The client_id must be the namespace's. A Namespace's allowance can change without an event
    // here, so a refused client is looked at again at every resync.
    if let Some(message) = ownership::refusal(ctx, client).await? {
        halt(ctx, api, client, cond::REASON_CLIENT_ID_CONFLICT, message).await?;
        return Ok(Action::requeue(resync));
    }

    // 2. Effective settings.
    // A fresh list, not a watch cache: a policy applied just before its clients (one `kubectl apply`
    // of a directory) must already apply to their first registration, never a moment later.
    // Other namespaces' products, the ceilings and the namespaces' labels come from watch caches.
    let policies = Api::<OAuthPolicy>::namespaced(ctx.client.clone(), &ns)
        .list(&Default::default())
        .await
        .map_err(Error::ListPolicies)?;
    if !ctx.view.ready().await {
        return Err(Error::ViewNotReady);
    }
    let snapshot = ctx.view.snapshot(Some(&ns), policies.items);
    let resolution = match resolve(client, &snapshot.cluster()) {
        Ok(r) => r,
        Err(e) => {
            let message = format!("cannot resolve the policies that apply to this client: {e}");
            halt(ctx, api, client, cond::REASON_INVALID_POLICY, message).await?;
            // A policy change re-triggers this client; nothing else will fix it.
            return Ok(Action::await_change());
        }
    };

    // 3. The Secret.
    let secret_step = if client.spec.existing_secret_ref.is_some() {
        secret_step::existing(client, ctx).await?
    } else {
        secret_step::generated(client, ctx, &resolution.effective.default_scopes, now, legacy).await?
    };

    // 4. The registration.
    let mut requeue = resync;
    let mut transient: Option<Error> = None;
    let (secret_cond, registered_cond) = match &secret_step {
        Err(failed) => {
            let waiting = Desired::failed(
                cond::REGISTERED,
                cond::REASON_WAITING_FOR_SECRET,
                format!("not registered while the Secret step fails: {}", failed.reason),
            );
            (failed.clone(), waiting)
        }
        Ok(outcome) => {
            if let Some(plan) = &outcome.plan {
                requeue = rotation::requeue_after(plan, now, resync);
            }
            let synced = outcome.refused.clone().unwrap_or_else(|| {
                Desired::ok(
                    cond::SECRET_SYNCED,
                    cond::REASON_RECONCILED,
                    format!("Secret {} holds the client's credentials", client.secret_name()),
                )
            });
            let registered = register::step(ctx, api, client, &resolution, outcome).await?;
            versions.extend(registered.version);
            transient = registered.transient;
            (synced, registered.condition)
        }
    };

    // 5. The status.
    let desired = with_ready(secret_cond, registered_cond);
    events::publish_transitions(ctx, client, old_conditions, &desired).await;
    let progress = Progress::Resolved {
        resolution: &resolution,
        secret: secret_step.as_ref().ok(),
    };
    let status = status::status(client, progress, &desired, now);
    versions.extend(status::write(api, &name, &status).await?);
    if let Some(e) = transient {
        return Err(e);
    }
    ctx.memo.settle(&memo_key, ticket, versions, requeue, started);
    if !desired[2].ok {
        info!(client = %key(client), reason = desired[2].reason, "not ready");
    }
    Ok(Action::requeue(requeue))
}

/// Ends a reconcile that stopped before the Secret step: the Secret and the registration are left
/// alone, and both conditions give `reason` and `message`.
async fn halt(
    ctx: &Context,
    api: &Api<OAuthClient>,
    client: &OAuthClient,
    reason: &'static str,
    message: String,
) -> Result<()> {
    let desired = with_ready(
        Desired::failed(cond::SECRET_SYNCED, reason, message.clone()),
        Desired::failed(cond::REGISTERED, reason, message),
    );
    events::publish_transitions(ctx, client, status::current_conditions(client), &desired).await;
    let status = status::status(client, Progress::Unresolved, &desired, ctx.clock.now());
    status::write(api, &client.name_any(), &status).await?;
    Ok(())
}

async fn cleanup(client: &OAuthClient, api: &Api<OAuthClient>, ctx: &Context) -> Result<Action> {
    ctx.memo.forget(&key(client));
    let client_id = client.client_id();
    match client.spec.deletion_policy.unwrap_or_default() {
        gatehouse_crds::DeletionPolicy::Orphan => {
            events::publish(
                ctx,
                client,
                EventType::Normal,
                "Orphaned",
                format!("left client {client_id} registered (deletionPolicy: Orphan)"),
            )
            .await;
            Ok(Action::await_change())
        }
        gatehouse_crds::DeletionPolicy::Delete => match delete(ctx, client, &client_id).await {
            Ok(()) => {
                events::publish(
                    ctx,
                    client,
                    EventType::Normal,
                    "Deregistered",
                    format!(
                        "the token server holds no registration of client {client_id} for this OAuthClient"
                    ),
                )
                .await;
                Ok(Action::await_change())
            }
            Err(e) => {
                let reason = match e {
                    AdminError::Rejected { .. } | AdminError::Conflict(_) => cond::REASON_REGISTRATION_FAILED,
                    _ => cond::REASON_SERVER_UNAVAILABLE,
                };
                let message = format!("deregistration pending, retrying: {e}");
                let desired = [
                    Desired::failed(cond::REGISTERED, reason, message.clone()),
                    Desired::failed(cond::READY, cond::REASON_DELETING, message),
                ];
                let old_conditions = status::current_conditions(client);
                events::publish_transitions(ctx, client, old_conditions, &desired[..1]).await;
                let status = status::status(client, Progress::Deleting, &desired, ctx.clock.now());
                status::write(api, &client.name_any(), &status).await?;
                Err(Error::DeregisterClient { client_id, source: e })
            }
        },
    }
}

/// Deletes the registration of `client_id` that `client` holds; one another OAuthClient holds stays.
async fn delete(ctx: &Context, client: &OAuthClient, client_id: &str) -> Result<(), AdminError> {
    let owner = gatehouse_crds::admin::ClientOwner {
        namespace: client.namespace().unwrap_or_default(),
        name: client.name_any(),
        uid: client.uid().unwrap_or_default(),
    };
    ctx.admin.delete(client_id, &owner).await
}
