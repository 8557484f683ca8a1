//! The OAuthPolicy controller: works out which clients each policy selects, for which of them a
//! higher-priority policy decides a setting this one sets, and which of the audiences and scopes it sets
//! it does not publish (the namespace's ceiling forbids them, or an older policy owns them), and writes
//! that into the policy's status.
//! Re-reconciling the selected clients themselves is the client controller's job (it watches policies).

use std::sync::Arc;

use futures::StreamExt as _;
use gatehouse_crds::{Cluster, OAuthClient, OAuthPolicy, OAuthPolicyStatus, resolve, selector};
use kube::{
    Api, ResourceExt as _,
    api::{Patch, PatchParams},
    runtime::{
        Controller,
        controller::{self, Action},
        reflector::ObjectRef,
        watcher,
    },
};
use serde_json::json;
use tracing::warn;

use crate::{
    Context, Error, MANAGER, Result,
    conditions::{self as cond, Desired},
};

const CONTROLLER: &str = "oauthpolicy";
const POLICY_DEBOUNCE: std::time::Duration = std::time::Duration::from_secs(1);

/// Which clients of its namespace a policy selects and for which it is overridden, resolved against
/// `cluster`. Pure.
pub fn evaluate(
    policy: &OAuthPolicy,
    cluster: &Cluster<'_>,
    clients: &[OAuthClient],
) -> gatehouse_crds::Result<(Vec<String>, Vec<String>)> {
    let name = policy.name_any();
    let ns = policy.namespace();
    let mut matched = Vec::new();
    let mut overridden = Vec::new();
    for client in clients.iter().filter(|c| c.namespace() == ns) {
        let labels = client.metadata.labels.clone().unwrap_or_default();
        if !selector::matches(policy.spec.client_selector.as_ref(), &labels)? {
            continue;
        }
        matched.push(client.name_any());
        let resolution = resolve(client, cluster)?;
        if resolution.applied.iter().any(|a| {
            a.kind == "OAuthPolicy" && a.namespace == ns && a.name == name && !a.overridden.is_empty()
        }) {
            overridden.push(client.name_any());
        }
    }
    matched.sort();
    overridden.sort();
    Ok((matched, overridden))
}

/// Clients listed per request when a policy is evaluated: a namespace of 10,000 clients is read a page
/// at a time, not held in memory at once.
const PAGE: u32 = 500;

/// [`evaluate`] over every client of the namespace, read in pages of [`PAGE`].
async fn evaluate_pages(
    policy: &OAuthPolicy,
    cluster: &Cluster<'_>,
    clients: &Api<OAuthClient>,
) -> Result<gatehouse_crds::Result<(Vec<String>, Vec<String>)>> {
    let mut matched = Vec::new();
    let mut overridden = Vec::new();
    let mut params = kube::api::ListParams::default().limit(PAGE);
    loop {
        let page = clients.list(&params).await.map_err(Error::ListClients)?;
        match evaluate(policy, cluster, &page.items) {
            Ok((m, o)) => {
                matched.extend(m);
                overridden.extend(o);
            }
            Err(e) => return Ok(Err(e)),
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => break,
        }
    }
    matched.sort();
    overridden.sort();
    Ok(Ok((matched, overridden)))
}

/// Runs the controller for OAuthPolicies in `ns` (all namespaces if `None`) until cancelled.
pub async fn run(ctx: Arc<Context>, ns: Option<String>) {
    let c = &ctx.client;
    let controller = Controller::new(
        crate::scoped_api::<OAuthPolicy>(c, ns.as_deref()),
        watcher::Config::default().any_semantic(),
    )
    // A burst of client changes (creating a thousand clients) would otherwise reconcile every policy
    // of the namespace back to back, each listing every client. Trailing-edge debounce waits for a
    // quiet second instead; the status is informational, and the clients never wait for it.
    .with_config(
        controller::Config::default()
            .concurrency(ctx.config.concurrency)
            .debounce(POLICY_DEBOUNCE),
    );
    let store = controller.store();
    controller
        // A new, changed or deleted client changes matchedClients of every policy in its namespace.
        .watches(
            crate::scoped_api::<OAuthClient>(c, ns.as_deref()),
            watcher::Config::default().any_semantic(),
            move |client| {
                let ns = client.namespace();
                store
                    .state()
                    .into_iter()
                    .filter(|p| p.namespace() == ns)
                    .map(|p| ObjectRef::from_obj(&*p))
                    .collect::<Vec<_>>()
            },
        )
        // A ceiling or another namespace's product changes what this policy publishes.
        .reconcile_all_on(ctx.view.changes())
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                warn!(error = %e, "oauthpolicy controller");
            }
        })
        .await;
}

/// One reconcile of `policy`.
pub async fn reconcile(policy: Arc<OAuthPolicy>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile(CONTROLLER);
    let ns = policy
        .namespace()
        .ok_or(Error::MissingField("metadata.namespace"))?;
    let name = policy.name_any();
    let policies: Api<OAuthPolicy> = Api::namespaced(ctx.client.clone(), &ns);
    let all_policies = policies
        .list(&Default::default())
        .await
        .map_err(Error::ListPolicies)?;
    if !ctx.view.ready().await {
        return Err(Error::ViewNotReady);
    }
    let snapshot = ctx.view.snapshot(Some(&ns), all_policies.items);
    let cluster = snapshot.cluster();
    let clients = Api::<OAuthClient>::namespaced(ctx.client.clone(), &ns);
    let evaluated = evaluate_pages(&policy, &cluster, &clients)
        .await?
        .and_then(|(matched, overridden)| Ok((matched, overridden, cluster.unpublished(&policy)?)));
    let (matched, overridden, denials, ready) = match evaluated {
        Ok((matched, overridden, denials)) => {
            let mut message = format!("selects {} client(s)", matched.len());
            if !denials.is_empty() {
                message.push_str(&format!(
                    "; does not publish {} of the audiences and scopes it sets (see status.denials)",
                    denials.len()
                ));
            }
            (
                matched,
                overridden,
                denials,
                Desired::ok(cond::READY, cond::REASON_POLICY_APPLIED, message),
            )
        }
        Err(e) => (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Desired::failed(cond::READY, cond::REASON_INVALID_POLICY, e.to_string()),
        ),
    };
    let old = policy.status.clone().unwrap_or_default();
    let generation = policy.metadata.generation;
    let status = OAuthPolicyStatus {
        matched_clients: matched,
        overridden_for: overridden,
        denials,
        conditions: cond::merge(&old.conditions, &[ready], generation, ctx.clock.now()),
        observed_generation: generation,
    };
    if status != old {
        let patch =
            json!({ "apiVersion": "gatehouse.dev/v1alpha1", "kind": "OAuthPolicy", "status": status });
        policies
            .patch_status(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&patch))
            .await
            .map_err(Error::WriteStatus)?;
    }
    ctx.reset_backoff(&format!("oauthpolicy/{ns}/{name}"));
    Ok(Action::requeue(ctx.config.resync_interval))
}

/// Retries a failed reconcile with exponential backoff.
pub fn error_policy(policy: Arc<OAuthPolicy>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.error(CONTROLLER);
    let key = format!(
        "oauthpolicy/{}/{}",
        policy.namespace().unwrap_or_default(),
        policy.name_any()
    );
    warn!(policy = %key, error = %error, "reconcile failed");
    Action::requeue(ctx.next_backoff(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(name: &str, tier: &str) -> OAuthClient {
        OAuthClient::test(name)
            .in_namespace("team")
            .with_labels(&[("tier", tier)])
    }

    fn policy(name: &str, priority: i32, tier: Option<&str>, ttl: &str) -> OAuthPolicy {
        let mut p = OAuthPolicy::test(name)
            .in_namespace("team")
            .with_priority(priority)
            .with_access_token_ttl(ttl);
        if let Some(tier) = tier {
            p = p.selecting(&[("tier", tier)]);
        }
        p
    }

    #[test]
    fn a_policy_lists_the_clients_it_selects_and_where_it_is_overridden() {
        let clients = [
            client("a", "backend"),
            client("b", "frontend"),
            client("c", "backend"),
        ];
        let broad = policy("broad", 0, None, "1h");
        let narrow = policy("narrow", 10, Some("backend"), "5m");
        let policies = [broad.clone(), narrow.clone()];
        let cluster = Cluster::with_policies(&policies);
        assert_eq!(
            evaluate(&broad, &cluster, &clients).unwrap(),
            (
                vec!["a".into(), "b".into(), "c".into()],
                vec!["a".into(), "c".into()]
            )
        );
        assert_eq!(
            evaluate(&narrow, &cluster, &clients).unwrap(),
            (vec!["a".into(), "c".into()], vec![])
        );
    }

    #[test]
    fn clients_of_other_namespaces_are_ignored() {
        let mut other = client("x", "backend");
        other.metadata.namespace = Some("elsewhere".into());
        let p = policy("p", 0, None, "1h");
        assert_eq!(
            evaluate(&p, &Cluster::with_policies(std::slice::from_ref(&p)), &[other]).unwrap(),
            (vec![], vec![])
        );
    }
}
