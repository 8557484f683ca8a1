//! The ClusterOAuthPolicy controller: counts the namespaces each ceiling selects (of those the operator
//! watches) and writes that, with a Ready condition, into its status. Applying the ceiling to clients is
//! resolution's job; the client controller reconciles them when a ceiling changes (see [`crate::view`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt as _;
use gatehouse_crds::{ClusterOAuthPolicy, ClusterOAuthPolicyStatus, selector};
use kube::{
    Api, ResourceExt as _,
    api::{Patch, PatchParams},
    runtime::{
        Controller, WatchStreamExt as _,
        controller::{self, Action},
        predicates, reflector, watcher,
    },
};
use serde_json::json;
use tracing::warn;

use crate::{
    Context, Error, MANAGER, Result,
    conditions::{self as cond, Desired},
};

const CONTROLLER: &str = "clusteroauthpolicy";
const DEBOUNCE: std::time::Duration = std::time::Duration::from_secs(1);

/// How many of `namespaces` (name → labels) `policy` selects; `watched` (if not empty) limits them.
pub fn matched_namespaces(
    policy: &ClusterOAuthPolicy,
    namespaces: &BTreeMap<String, BTreeMap<String, String>>,
    watched: &[String],
) -> gatehouse_crds::Result<i64> {
    let mut count = 0;
    for (name, labels) in namespaces {
        if !watched.is_empty() && !watched.contains(name) {
            continue;
        }
        if selector::matches(policy.spec.namespace_selector.as_ref(), labels)? {
            count += 1;
        }
    }
    Ok(count)
}

/// Runs the controller until cancelled.
pub async fn run(ctx: Arc<Context>) {
    // Spec changes only: a status write (this operator's, or another Gatehouse install's watching other
    // namespaces, whose count differs) triggers nothing, so two operators never bounce a status between
    // them faster than their resyncs.
    let (reader, writer) = reflector::store();
    let policies = watcher(
        Api::<ClusterOAuthPolicy>::all(ctx.client.clone()),
        watcher::Config::default().any_semantic(),
    )
    .default_backoff()
    .reflect(writer)
    .applied_objects()
    .predicate_filter(predicates::generation, Default::default());
    Controller::for_stream(policies, reader)
        .with_config(
            controller::Config::default()
                .concurrency(ctx.config.concurrency)
                .debounce(DEBOUNCE),
        )
        // Namespaces come and go and change labels; the counts follow.
        .reconcile_all_on(ctx.view.changes())
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                warn!(error = %e, "clusteroauthpolicy controller");
            }
        })
        .await;
}

/// One reconcile of `policy`.
pub async fn reconcile(policy: Arc<ClusterOAuthPolicy>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile(CONTROLLER);
    if !ctx.view.ready().await {
        return Err(Error::ViewNotReady);
    }
    let name = policy.name_any();
    let snapshot = ctx.view.snapshot(None, Vec::new());
    let (count, ready) =
        match matched_namespaces(&policy, &snapshot.namespace_labels, &ctx.config.watch_namespaces) {
            Ok(count) => (
                count,
                Desired::ok(
                    cond::READY,
                    cond::REASON_POLICY_APPLIED,
                    format!("selects {count} namespace(s)"),
                ),
            ),
            Err(e) => (
                0,
                Desired::failed(cond::READY, cond::REASON_INVALID_POLICY, e.to_string()),
            ),
        };
    let old = policy.status.clone().unwrap_or_default();
    let generation = policy.metadata.generation;
    let status = ClusterOAuthPolicyStatus {
        matched_namespaces: count,
        conditions: cond::merge(&old.conditions, &[ready], generation, ctx.clock.now()),
        observed_generation: generation,
    };
    if status != old {
        let patch = json!({
            "apiVersion": "gatehouse.dev/v1alpha1", "kind": "ClusterOAuthPolicy", "status": status,
        });
        Api::<ClusterOAuthPolicy>::all(ctx.client.clone())
            .patch_status(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&patch))
            .await
            .map_err(Error::WriteStatus)?;
    }
    ctx.reset_backoff(&format!("{CONTROLLER}/{name}"));
    Ok(Action::requeue(ctx.config.resync_interval))
}

/// Retries a failed reconcile with exponential backoff.
pub fn error_policy(policy: Arc<ClusterOAuthPolicy>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.error(CONTROLLER);
    let key = format!("{CONTROLLER}/{}", policy.name_any());
    warn!(policy = %key, error = %error, "reconcile failed");
    Action::requeue(ctx.next_backoff(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn namespaces() -> BTreeMap<String, BTreeMap<String, String>> {
        [("a", "gold"), ("b", "gold"), ("c", "free")]
            .into_iter()
            .map(|(ns, tier)| {
                (
                    ns.to_owned(),
                    BTreeMap::from([("tier".to_owned(), tier.to_owned())]),
                )
            })
            .collect()
    }

    #[test]
    fn a_ceiling_counts_the_watched_namespaces_it_selects() {
        let gold = ClusterOAuthPolicy::test("gold").selecting(&[("tier", "gold")]);
        assert_eq!(matched_namespaces(&gold, &namespaces(), &[]).unwrap(), 2);
        assert_eq!(
            matched_namespaces(&gold, &namespaces(), &["b".into(), "c".into()]).unwrap(),
            1
        );
        let all = ClusterOAuthPolicy::test("all");
        assert_eq!(matched_namespaces(&all, &namespaces(), &[]).unwrap(), 3);
    }
}
