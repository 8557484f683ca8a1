//! The client controller's watches: OAuthClients (its cache, without managedFields), the Secrets they
//! generate or reference, and the [`view`](crate::view)'s changes (policies, ceilings, namespaces). Each maps an event to the clients it concerns
//! and invalidates their [`memo`](crate::memo) entries; the reconciles themselves are in the parent
//! module.
//!
//! **Which Secrets.** The operator watches only Secrets labelled [`sec::CLIENT_LABEL`], and only their
//! metadata: the Secrets it generates carry the label, so it sees at once when one is edited or deleted.
//! A Secret a team brings (`existingSecretRef`) is read with a GET when its client is reconciled, which
//! happens whenever the OAuthClient changes and at every resync (`--resync-interval`), so a change to
//! it takes effect within one resync. A team that wants it at once labels its Secret
//! `gatehouse.dev/client=<OAuthClient name>`. Watching every Secret of the cluster instead held the
//! metadata of all of them in memory and woke the controller for every Secret written anywhere; a
//! watch per referenced Secret (a field selector on its name) would be one long-lived apiserver watch
//! per client, which does not scale to thousands of clients.

use std::sync::Arc;

use futures::StreamExt as _;
use gatehouse_crds::OAuthClient;
use k8s_openapi::api::core::v1::Secret;
use kube::{
    ResourceExt as _,
    api::PartialObjectMeta,
    runtime::{
        Controller, WatchStreamExt as _, controller,
        reflector::{self, ObjectRef},
        watcher,
    },
};
use tracing::warn;

use super::{client_key, error_policy, key, reconcile};
use crate::{Context, secret as sec};

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
        // A policy change can change any client of its namespace, including the ones it stops selecting,
        // and a ceiling, a namespace's labels or an API product clients anywhere. The view invalidated
        // their memos before it signals; the others find theirs settled and return at once. A policy's
        // status (its matchedClients, written by the policy controller) signals nothing: with
        // `Controller::watches`, every status write reconciled every client of the namespace.
        .reconcile_all_on(ctx.view.changes())
        // Generated Secrets map to their owner; labelled referenced Secrets to every client referencing
        // them.
        .watches(
            crate::scoped_api::<PartialObjectMeta<Secret>>(c, ns.as_deref()),
            watcher::Config::default()
                .labels(sec::WATCH_SELECTOR)
                .any_semantic(),
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
