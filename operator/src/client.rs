//! The OAuthClient controller: policies → effective settings, the client's Secret (generated once,
//! rotated on schedule or on request), the registration on the token server, status and Events.
//!
//! Each reconcile reads the Secret and the registration fresh, decides with the pure functions of
//! [`crate::rotation`] and [`crate::conditions`], writes what changed with server-side apply, and
//! requeues at the next rotation or grace deadline (or the resync interval, whichever is sooner).

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt as _;
use gatehouse_crds::{
    OAuthClient, OAuthClientStatus, OAuthPolicy,
    admin::{ClientRegistration, SecretDigest, secret_digest},
    resolve,
};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, Resource, ResourceExt as _,
    api::{PartialObjectMeta, Patch, PatchParams},
    runtime::{
        Controller, WatchStreamExt as _,
        controller::{self, Action},
        events::{Event as KubeEvent, EventType},
        finalizer::{Event as Finalizer, finalizer},
        reflector::{self, ObjectRef},
        watcher,
    },
};
use serde_json::json;
use tracing::{info, warn};

use crate::{
    Context, Error, MANAGER, Result,
    admin::AdminError,
    conditions::{self as cond, Desired},
    rotation::{self, Trigger},
    secret::{self as sec, Contents, KeyNames},
};

/// Finalizer that deregisters the client before the object goes away.
pub const FINALIZER: &str = "gatehouse.dev/cleanup";
const CONTROLLER: &str = "oauthclient";

/// Runs the controller for OAuthClients in `ns` (all namespaces if `None`) until cancelled.
pub async fn run(ctx: Arc<Context>, ns: Option<String>) {
    let c = &ctx.client;
    // The controller's cache holds every OAuthClient: without their managedFields, which are most of
    // an object's memory once it has a status and three field managers, and which no reconcile reads.
    let (reader, writer) = reflector::store();
    let clients = watcher(
        crate::scoped_api::<OAuthClient>(c, ns.as_deref()),
        watcher::Config::default().any_semantic(),
    )
    .default_backoff()
    .modify(|client: &mut OAuthClient| client.managed_fields_mut().clear())
    .reflect(writer)
    .applied_objects();
    let controller = Controller::for_stream(clients, reader)
        .with_config(controller::Config::default().concurrency(ctx.config.concurrency));
    let store = controller.store();
    let secret_ctx = ctx.clone();
    let controller = controller
        // A policy change can change any client of its namespace, including the ones it stops selecting.
        .reconcile_all_on(policy_changes(ctx.clone(), crate::scoped_api(c, ns.as_deref())))
        // Generated Secrets map to their owner; referenced Secrets to every client referencing them.
        .watches(
            crate::scoped_api::<PartialObjectMeta<Secret>>(c, ns.as_deref()),
            watcher::Config::default().any_semantic(),
            move |secret| {
                let ns = secret.namespace();
                let name = secret.name_any();
                let owners: Vec<_> = secret
                    .owner_references()
                    .iter()
                    .filter(|o| o.kind == "OAuthClient" && o.api_version.starts_with("gatehouse.dev/"))
                    .collect();
                // A generated Secret names its owner: no need to look through every client, which
                // made creating N clients cost O(N²) here. The Secret as the controller applied it
                // needs no reconcile; an edit or a deletion has a new resourceVersion.
                if !owners.is_empty() {
                    let ns = ns.as_deref().unwrap_or_default();
                    return owners
                        .into_iter()
                        .filter_map(|o| {
                            let key = client_key(ns, &o.name);
                            if secret_ctx
                                .memo
                                .is_own_secret(&key, secret.resource_version().as_deref())
                            {
                                return None;
                            }
                            secret_ctx.memo.invalidate(&key);
                            Some(ObjectRef::new(&o.name).within(ns))
                        })
                        .collect();
                }
                store
                    .state()
                    .into_iter()
                    .filter(|client| client.namespace() == ns)
                    .filter(|client| {
                        client
                            .spec
                            .existing_secret_ref
                            .as_ref()
                            .is_some_and(|r| r.name == name)
                            || client.secret_name() == name
                    })
                    .map(|client| {
                        secret_ctx.memo.invalidate(&key(&client));
                        ObjectRef::from_obj(&*client)
                    })
                    .collect::<Vec<_>>()
            },
        );
    controller
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                warn!(error = %e, "oauthclient controller");
            }
        })
        .await;
}

/// A trigger for every change of a policy's spec: a new policy, a changed generation, a deleted
/// policy. Each invalidates the memo of its namespace's clients, and the controller then reconciles
/// every client: those of other namespaces find their memo settled and return at once.
///
/// A policy's status (its matchedClients, written by the policy controller) triggers nothing. Watching
/// policies with `Controller::watches` reconciled every client of the namespace on each status write,
/// and the policy controller writes one as clients come and go.
fn policy_changes(ctx: Arc<Context>, api: Api<OAuthPolicy>) -> impl futures::Stream<Item = ()> + Send {
    let mut known: HashMap<(String, String), Option<i64>> = HashMap::new();
    let mut listed: HashMap<(String, String), Option<i64>> = HashMap::new();
    watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .filter_map(move |event| {
            let id = |p: &OAuthPolicy| (p.namespace().unwrap_or_default(), p.name_any());
            let changed: Vec<String> = match event {
                Ok(watcher::Event::Apply(p)) => {
                    let generation = p.metadata.generation;
                    match known.insert(id(&p), generation) {
                        Some(before) if before == generation => Vec::new(),
                        _ => vec![id(&p).0],
                    }
                }
                Ok(watcher::Event::Delete(p)) => {
                    known.remove(&id(&p));
                    vec![id(&p).0]
                }
                Ok(watcher::Event::Init) => {
                    listed.clear();
                    Vec::new()
                }
                Ok(watcher::Event::InitApply(p)) => {
                    listed.insert(id(&p), p.metadata.generation);
                    Vec::new()
                }
                // After a (re)list: what is new, changed or gone since the last one.
                Ok(watcher::Event::InitDone) => {
                    let mut changed: Vec<String> = listed
                        .iter()
                        .filter(|(k, g)| known.get(*k) != Some(*g))
                        .chain(known.iter().filter(|(k, _)| !listed.contains_key(*k)))
                        .map(|((ns, _), _)| ns.clone())
                        .collect();
                    changed.sort();
                    changed.dedup();
                    known = std::mem::take(&mut listed);
                    changed
                }
                Err(e) => {
                    warn!(error = %e, "watching OAuthPolicies");
                    Vec::new()
                }
            };
            for ns in &changed {
                ctx.memo.invalidate_namespace(ns);
            }
            futures::future::ready((!changed.is_empty()).then_some(()))
        })
}

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

/// What the Secret step produced.
struct SecretOutcome {
    /// Digests to register.
    digests: Vec<SecretDigest>,
    /// Rotation plan of a generated secret.
    plan: Option<rotation::Plan>,
    /// The rotate annotation value the current secret answers.
    rotate_handled: Option<String>,
}

/// The digests registered last time, from the OAuthClient's annotation.
fn remembered(client: &OAuthClient) -> Vec<SecretDigest> {
    client
        .annotations()
        .get(sec::REGISTERED_DIGESTS)
        .and_then(|v| serde_json::from_str(v).ok())
        .unwrap_or_default()
}

fn owner_ref(client: &OAuthClient) -> Result<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference> {
    client
        .controller_owner_ref(&())
        .ok_or(Error::MissingField("metadata.uid"))
}

async fn publish(ctx: &Context, client: &OAuthClient, type_: EventType, reason: &str, note: String) {
    let event = KubeEvent {
        type_,
        reason: reason.to_owned(),
        note: Some(note),
        action: "Reconcile".to_owned(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder().publish(&event, &client.object_ref(&())).await {
        warn!(error = %e, reason, "could not publish event");
    }
}

/// The Secret step for a client whose Secret the operator generates.
async fn generated_secret(
    client: &OAuthClient,
    ctx: &Context,
    effective_scopes: &[String],
    now: Timestamp,
) -> Result<std::result::Result<SecretOutcome, Desired>> {
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
    let template = client.spec.secret.clone().unwrap_or_default();
    let keys = KeyNames::from_spec(template.keys.as_ref());
    let client_id = client.client_id();
    let issuer = ctx.config.server.issuer.clone();

    if client.spec.is_public() {
        let rendered = sec::render(
            client,
            owner,
            &Contents {
                client_id: &client_id,
                secret: None,
                previous: None,
                issuer: &issuer,
                scopes: effective_scopes,
                rotated_at: None,
                rotate_handled: None,
            },
        );
        apply_secret(ctx, client, &secrets, &rendered).await?;
        return Ok(Ok(SecretOutcome {
            digests: Vec::new(),
            plan: None,
            rotate_handled: None,
        }));
    }

    let remembered = remembered(client);
    let current = existing
        .as_ref()
        .and_then(|s| sec::current(s, &keys, &remembered));
    let annotation = |key: &str| existing.as_ref().and_then(|s| s.annotations().get(key).cloned());
    let rotated_at = annotation(sec::ROTATED_AT).and_then(|v| v.parse::<Timestamp>().ok());
    let handled = annotation(sec::ROTATE_HANDLED);
    let rotate_value = client.annotations().get(sec::ROTATE).cloned();
    let rotation_spec = template.rotation.as_ref();
    let period = match rotation_spec.map(|r| rotation::signed(&r.period)).transpose() {
        Ok(p) => p,
        Err(e) => {
            return Ok(Err(Desired::failed(
                cond::SECRET_SYNCED,
                cond::REASON_INVALID_SPEC,
                e.to_string(),
            )));
        }
    };
    let grace = match rotation_spec
        .and_then(|r| r.grace_period.as_ref())
        .map(rotation::signed)
        .transpose()
    {
        Ok(g) => g.unwrap_or(rotation::DEFAULT_GRACE),
        Err(e) => {
            return Ok(Err(Desired::failed(
                cond::SECRET_SYNCED,
                cond::REASON_INVALID_SPEC,
                e.to_string(),
            )));
        }
    };
    let input = rotation::Input {
        period,
        grace,
        secret_exists: current.is_some(),
        rotated_at,
        registered_before: !remembered.is_empty(),
        annotation: rotate_value.as_deref(),
        handled_annotation: handled.as_deref(),
    };
    let plan = rotation::plan(&input, now);
    let (secret_value, previous, rotate_handled) = match (plan.rotate, current) {
        (None, Some(current)) => {
            let previous = if rotation::in_grace(&plan, now) {
                existing
                    .as_ref()
                    .and_then(|s| sec::value(s, &keys.previous_client_secret))
                    .map(str::to_owned)
            } else {
                None
            };
            (current, previous, handled.clone())
        }
        (Some(trigger), current) => {
            let previous = match trigger {
                Trigger::Scheduled | Trigger::Annotation => current,
                Trigger::Initial | Trigger::SecretLost => None,
            };
            (
                sec::generate(),
                previous,
                rotate_value.clone().or(handled.clone()),
            )
        }
        // plan() rotates whenever there is no current secret.
        (None, None) => (sec::generate(), None, rotate_value.clone()),
    };
    let rendered = sec::render(
        client,
        owner,
        &Contents {
            client_id: &client_id,
            secret: Some(&secret_value),
            previous: previous.as_deref(),
            issuer: &issuer,
            scopes: effective_scopes,
            rotated_at: Some(plan.rotated_at),
            rotate_handled: rotate_handled.as_deref(),
        },
    );
    apply_secret(ctx, client, &secrets, &rendered).await?;
    match plan.rotate {
        Some(Trigger::Initial) => {
            publish(
                ctx,
                client,
                EventType::Normal,
                "SecretGenerated",
                format!("generated the client secret in Secret {name}"),
            )
            .await;
        }
        Some(Trigger::Scheduled) => {
            publish(
                ctx,
                client,
                EventType::Normal,
                "SecretRotated",
                format!(
                    "rotated the client secret on schedule; the previous one works until {}",
                    fmt_opt(plan.grace_until)
                ),
            )
            .await;
        }
        Some(Trigger::Annotation) => {
            publish(
                ctx,
                client,
                EventType::Normal,
                "SecretRotated",
                format!(
                    "rotated the client secret as requested by {}; the previous one works until {}",
                    sec::ROTATE,
                    fmt_opt(plan.grace_until)
                ),
            )
            .await;
        }
        Some(Trigger::SecretLost) => {
            publish(
                ctx,
                client,
                EventType::Warning,
                "SecretRecreated",
                format!(
                    "Secret {name} was deleted: generated a new client secret; the old one works until {}",
                    fmt_opt(plan.grace_until)
                ),
            )
            .await;
        }
        None => {}
    }
    let digests = rotation::digests(
        &secret_value,
        previous.as_deref(),
        &remembered,
        plan.grace_until,
        now,
    );
    Ok(Ok(SecretOutcome {
        digests,
        plan: Some(plan),
        rotate_handled,
    }))
}

fn fmt_opt(t: Option<Timestamp>) -> String {
    t.map_or_else(|| "-".to_owned(), |t| t.to_string())
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
async fn existing_secret(
    client: &OAuthClient,
    ctx: &Context,
) -> Result<std::result::Result<SecretOutcome, Desired>> {
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
    let key = reference
        .client_secret_key
        .clone()
        .unwrap_or_else(|| "client_secret".to_owned());
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

/// Registers `registration` unless the server already holds exactly it. Returns whether the server had
/// lost a registration it should have had.
async fn register(ctx: &Context, registration: &ClientRegistration) -> std::result::Result<bool, AdminError> {
    let current = ctx.admin.get(&registration.client_id).await?;
    if current.as_ref() == Some(registration) {
        return Ok(false);
    }
    ctx.admin.put(registration).await?;
    Ok(current.is_none())
}

/// Writes the status; returns the object's new resourceVersion.
async fn write_status(
    api: &Api<OAuthClient>,
    name: &str,
    status: &OAuthClientStatus,
) -> Result<Option<String>> {
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

/// Records the registered digests in an annotation; returns the object's new resourceVersion if it
/// had to write.
async fn remember(
    api: &Api<OAuthClient>,
    client: &OAuthClient,
    digests: &[SecretDigest],
) -> Result<Option<String>> {
    let value = serde_json::to_string(digests)?;
    if client.annotations().get(sec::REGISTERED_DIGESTS) == Some(&value) {
        return Ok(None);
    }
    let patch = json!({
        "apiVersion": "gatehouse.dev/v1alpha1",
        "kind": "OAuthClient",
        "metadata": { "name": client.name_any(), "annotations": { sec::REGISTERED_DIGESTS: value } },
    });
    api.patch(
        &client.name_any(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map(|written| written.resource_version())
    .map_err(Error::WriteAnnotations)
}

/// Publishes an Event for every condition that changed status or reason.
async fn publish_transitions(
    ctx: &Context,
    client: &OAuthClient,
    old: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
    new: &[Desired],
) {
    for d in new {
        let before = cond::find(old, d.type_);
        let changed = before.is_none_or(|b| (b.status == cond::TRUE) != d.ok || b.reason != d.reason);
        if !changed {
            continue;
        }
        if d.ok {
            if d.type_ == cond::READY {
                publish(ctx, client, EventType::Normal, "Ready", d.message.clone()).await;
            }
        } else if d.type_ != cond::READY {
            publish(ctx, client, EventType::Warning, d.reason, d.message.clone()).await;
        }
    }
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
    let now = Timestamp::now();
    let name = client.name_any();
    let ns = client.namespace().unwrap_or_default();
    let generation = client.metadata.generation;
    let old = client.status.clone().unwrap_or_default();
    let resync = ctx.config.resync_interval;
    let client_id = client.client_id();
    let mut status = OAuthClientStatus {
        client_id: Some(client_id.clone()),
        secret_name: Some(client.secret_name()),
        observed_generation: generation,
        ..Default::default()
    };

    // 1. Effective settings.
    // A fresh list, not a watch cache: a policy applied just before its clients (one `kubectl apply`
    // of a directory) must already apply to their first registration, never a moment later.
    let policies = Api::<OAuthPolicy>::namespaced(ctx.client.clone(), &ns)
        .list(&Default::default())
        .await
        .map_err(Error::ListPolicies)?;
    let resolution = match resolve(client, &policies.items) {
        Ok(r) => r,
        Err(e) => {
            let message = format!("cannot resolve the selecting OAuthPolicies: {e}");
            let steps = [
                Desired::failed(cond::SECRET_SYNCED, cond::REASON_INVALID_POLICY, message.clone()),
                Desired::failed(cond::REGISTERED, cond::REASON_INVALID_POLICY, message),
            ];
            let desired = [steps[0].clone(), steps[1].clone(), cond::ready(&steps)];
            publish_transitions(ctx, client, &old.conditions, &desired).await;
            status.conditions = cond::merge(&old.conditions, &desired, generation, now);
            status.secret_rotated_at = old.secret_rotated_at.clone();
            status.next_rotation_at = old.next_rotation_at.clone();
            status.rotate_annotation = old.rotate_annotation.clone();
            write_status(api, &name, &status).await?;
            // A policy change re-triggers this client; nothing else will fix it.
            return Ok(Action::await_change());
        }
    };
    status.effective = Some(resolution.effective.clone());
    status.applied_policies = resolution.applied.clone();

    // 2. The Secret.
    let secret_step = if client.spec.existing_secret_ref.is_some() {
        existing_secret(client, ctx).await?
    } else {
        generated_secret(client, ctx, &resolution.effective.default_scopes, now).await?
    };

    // 3. The registration.
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
                status.secret_rotated_at = Some(plan.rotated_at.to_string());
                status.next_rotation_at = plan.next_rotation_at.map(|t| t.to_string());
                requeue = rotation::requeue_after(plan, now, resync);
            }
            status.rotate_annotation = outcome.rotate_handled.clone();
            let synced = Desired::ok(
                cond::SECRET_SYNCED,
                cond::REASON_RECONCILED,
                format!("Secret {} holds the client's credentials", client.secret_name()),
            );
            let registration = ClientRegistration {
                client_id: client_id.clone(),
                source: Some(format!("{ns}/{name}")),
                display_name: client.spec.display_name.clone(),
                token_endpoint_auth_method: client.spec.auth_method(),
                redirect_uris: client.spec.redirect_uris.clone(),
                effective: resolution.effective.clone(),
                secrets: outcome.digests.clone(),
            };
            let registered = match register(ctx, &registration).await {
                Ok(lost) => {
                    if lost && cond::is_true(&old.conditions, cond::REGISTERED) {
                        publish(
                            ctx,
                            client,
                            EventType::Warning,
                            "Reregistered",
                            "the token server had lost this client's registration; registered it again"
                                .into(),
                        )
                        .await;
                    }
                    versions.extend(remember(api, client, &outcome.digests).await?);
                    Desired::ok(
                        cond::REGISTERED,
                        cond::REASON_RECONCILED,
                        format!("registered with {} secret digest(s)", registration.secrets.len()),
                    )
                }
                Err(AdminError::Rejected {
                    status: code,
                    message,
                }) => Desired::failed(
                    cond::REGISTERED,
                    cond::REASON_REGISTRATION_FAILED,
                    format!("the token server refused the registration ({code}): {message}"),
                ),
                Err(e) => {
                    let message = e.to_string();
                    transient = Some(Error::RegisterClient {
                        client_id: client_id.clone(),
                        source: e,
                    });
                    Desired::failed(cond::REGISTERED, cond::REASON_SERVER_UNAVAILABLE, message)
                }
            };
            (synced, registered)
        }
    };
    if status.secret_rotated_at.is_none() {
        status.secret_rotated_at = old.secret_rotated_at.clone();
        status.next_rotation_at = old.next_rotation_at.clone();
    }
    let steps = [secret_cond, registered_cond];
    let desired = [steps[0].clone(), steps[1].clone(), cond::ready(&steps)];
    publish_transitions(ctx, client, &old.conditions, &desired).await;
    status.conditions = cond::merge(&old.conditions, &desired, generation, now);
    versions.extend(write_status(api, &name, &status).await?);
    if let Some(e) = transient {
        return Err(e);
    }
    ctx.memo.settle(&memo_key, ticket, versions, requeue, started);
    if !desired[2].ok {
        info!(client = %key(client), reason = desired[2].reason, "not ready");
    }
    Ok(Action::requeue(requeue))
}

async fn cleanup(client: &OAuthClient, api: &Api<OAuthClient>, ctx: &Context) -> Result<Action> {
    ctx.memo.forget(&key(client));
    let client_id = client.client_id();
    match client.spec.deletion_policy.unwrap_or_default() {
        gatehouse_crds::DeletionPolicy::Orphan => {
            publish(
                ctx,
                client,
                EventType::Normal,
                "Orphaned",
                format!("left client {client_id} registered (deletionPolicy: Orphan)"),
            )
            .await;
            Ok(Action::await_change())
        }
        gatehouse_crds::DeletionPolicy::Delete => match ctx.admin.delete(&client_id).await {
            Ok(()) => {
                publish(
                    ctx,
                    client,
                    EventType::Normal,
                    "Deregistered",
                    format!("removed client {client_id} from the token server"),
                )
                .await;
                Ok(Action::await_change())
            }
            Err(e) => {
                let now = Timestamp::now();
                let old = client.status.clone().unwrap_or_default();
                let reason = match e {
                    AdminError::Rejected { .. } => cond::REASON_REGISTRATION_FAILED,
                    _ => cond::REASON_SERVER_UNAVAILABLE,
                };
                let message = format!("deregistration pending, retrying: {e}");
                let desired = [
                    Desired::failed(cond::REGISTERED, reason, message.clone()),
                    Desired::failed(cond::READY, cond::REASON_DELETING, message),
                ];
                publish_transitions(ctx, client, &old.conditions, &desired[..1]).await;
                let status = OAuthClientStatus {
                    conditions: cond::merge(&old.conditions, &desired, client.metadata.generation, now),
                    ..old
                };
                write_status(api, &client.name_any(), &status).await?;
                Err(Error::DeregisterClient { client_id, source: e })
            }
        },
    }
}
