//! The operator's view of what resolution reads beyond a client's namespace: every ClusterOAuthPolicy,
//! every Namespace's labels, and the OAuthPolicies of every watched namespace (API products admit
//! consumers across namespaces, and ownership of a published audience is decided cluster-wide).
//!
//! Each is a watch cache (a reflector), not a list per reconcile: a fresh list of every policy of the
//! cluster for each of 10,000 clients would be 10,000 lists. A client's own namespace is still listed
//! fresh by its reconcile ([`View::cluster`] takes that list), so that a policy applied just before its
//! clients applies to their first registration. A change seen in these caches invalidates the
//! [`memo`](crate::memo) of the clients it may concern (a namespace's, or all of them for anything
//! that crosses namespaces) and then bumps [`View::changes`], on which every client controller
//! reconciles all its clients.
//!
//! In `--watch-namespaces` mode only the OAuthPolicies of the watched namespaces are watched (that is
//! all the operator's RBAC lets it read), so only products there are visible.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{Stream, StreamExt as _};
use gatehouse_crds::{ClusterOAuthPolicy, OAuthPolicy};
use k8s_openapi::api::core::v1::Namespace;
use kube::{
    Api, ResourceExt as _,
    api::PartialObjectMeta,
    runtime::{
        WatchStreamExt as _,
        reflector::{self, Store},
        watcher,
    },
};
use tracing::warn;

use crate::{Context, memo::Memo};

/// How long a reconcile waits for the caches' first lists before it fails and is retried.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The writers the watch tasks fill; taken once by [`run`].
struct Writers {
    cluster_policies: reflector::store::Writer<ClusterOAuthPolicy>,
    namespaces: reflector::store::Writer<PartialObjectMeta<Namespace>>,
    policies: Vec<(Option<String>, reflector::store::Writer<OAuthPolicy>)>,
}

/// The caches, and the change signal.
pub struct View {
    cluster_policies: Store<ClusterOAuthPolicy>,
    namespaces: Store<PartialObjectMeta<Namespace>>,
    policies: Vec<Store<OAuthPolicy>>,
    writers: Mutex<Option<Writers>>,
    changes: tokio::sync::watch::Sender<u64>,
}

/// What one resolution reads, owned (a [`gatehouse_crds::Cluster`] borrows from it).
#[derive(Debug, Default)]
pub struct Snapshot {
    /// OAuthPolicies of every watched namespace.
    pub policies: Vec<OAuthPolicy>,
    /// Every ClusterOAuthPolicy.
    pub cluster_policies: Vec<ClusterOAuthPolicy>,
    /// Every namespace's labels.
    pub namespace_labels: BTreeMap<String, BTreeMap<String, String>>,
}

impl Snapshot {
    /// The borrowed form resolution takes.
    pub fn cluster(&self) -> gatehouse_crds::Cluster<'_> {
        gatehouse_crds::Cluster {
            policies: &self.policies,
            cluster_policies: &self.cluster_policies,
            namespace_labels: &self.namespace_labels,
        }
    }
}

impl View {
    /// Empty caches for the OAuthPolicies of `scopes` (`None`: every namespace).
    pub fn new(scopes: &[Option<String>]) -> Self {
        let (cluster_policies, cp_writer) = reflector::store();
        let (namespaces, ns_writer) = reflector::store();
        let mut policies = Vec::new();
        let mut policy_writers = Vec::new();
        for scope in scopes {
            let (reader, writer) = reflector::store();
            policies.push(reader);
            policy_writers.push((scope.clone(), writer));
        }
        Self {
            cluster_policies,
            namespaces,
            policies,
            writers: Mutex::new(Some(Writers {
                cluster_policies: cp_writer,
                namespaces: ns_writer,
                policies: policy_writers,
            })),
            changes: tokio::sync::watch::Sender::new(0),
        }
    }

    /// Waits (a bounded time) until every cache holds its first list.
    pub async fn ready(&self) -> bool {
        let all = async {
            self.cluster_policies.wait_until_ready().await.is_ok()
                && self.namespaces.wait_until_ready().await.is_ok()
                && futures::future::join_all(self.policies.iter().map(Store::wait_until_ready))
                    .await
                    .iter()
                    .all(Result::is_ok)
        };
        tokio::time::timeout(READY_TIMEOUT, all).await.unwrap_or(false)
    }

    /// What resolution reads, with the OAuthPolicies of `namespace` replaced by `fresh`.
    pub fn snapshot(&self, namespace: Option<&str>, fresh: Vec<OAuthPolicy>) -> Snapshot {
        let mut policies: Vec<OAuthPolicy> = self
            .policies
            .iter()
            .flat_map(Store::state)
            .filter(|p| namespace.is_none() || p.namespace().as_deref() != namespace)
            .map(|p| (*p).clone())
            .collect();
        policies.extend(fresh);
        Snapshot {
            policies,
            cluster_policies: self
                .cluster_policies
                .state()
                .iter()
                .map(|p| (**p).clone())
                .collect(),
            namespace_labels: self
                .namespaces
                .state()
                .iter()
                .map(|n| (n.name_any(), n.labels().clone()))
                .collect(),
        }
    }

    /// A stream that yields whenever something in the caches changed what a client may resolve to.
    pub fn changes(&self) -> impl Stream<Item = ()> + Send + use<> {
        let rx = self.changes.subscribe();
        futures::stream::unfold(rx, |mut rx| async move {
            rx.changed().await.ok()?;
            Some(((), rx))
        })
    }

    fn changed(&self, memo: &Memo, scope: Scope) {
        match scope {
            Scope::Namespace(ns) => memo.invalidate_namespace(&ns),
            Scope::All => memo.invalidate_all(),
        }
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// Which clients a change may concern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scope {
    Namespace(String),
    All,
}

/// Remembers a fingerprint per object to tell real changes from re-deliveries and status writes, and,
/// after a (re)list, what is new, changed or gone since the last one.
struct Tracker<F> {
    known: HashMap<(String, String), F>,
    listed: HashMap<(String, String), F>,
}

impl<F: PartialEq + Clone> Tracker<F> {
    fn new() -> Self {
        Self {
            known: HashMap::new(),
            listed: HashMap::new(),
        }
    }

    /// The changes `event` brings, each as (key, old fingerprint, new fingerprint).
    #[allow(clippy::type_complexity)]
    fn event<K: kube::Resource>(
        &mut self,
        event: watcher::Event<K>,
        fingerprint: impl Fn(&K) -> F,
    ) -> Vec<((String, String), Option<F>, Option<F>)> {
        let id = |o: &K| {
            (
                o.meta().namespace.clone().unwrap_or_default(),
                o.meta().name.clone().unwrap_or_default(),
            )
        };
        match event {
            watcher::Event::Apply(o) => {
                let new = fingerprint(&o);
                match self.known.insert(id(&o), new.clone()) {
                    Some(old) if old == new => Vec::new(),
                    old => vec![(id(&o), old, Some(new))],
                }
            }
            watcher::Event::Delete(o) => {
                let old = self.known.remove(&id(&o));
                vec![(id(&o), old, None)]
            }
            watcher::Event::Init => {
                self.listed.clear();
                Vec::new()
            }
            watcher::Event::InitApply(o) => {
                self.listed.insert(id(&o), fingerprint(&o));
                Vec::new()
            }
            watcher::Event::InitDone => {
                let mut changes: Vec<_> = self
                    .listed
                    .iter()
                    .filter(|(k, f)| self.known.get(*k) != Some(*f))
                    .map(|(k, f)| (k.clone(), self.known.get(k).cloned(), Some(f.clone())))
                    .collect();
                changes.extend(
                    self.known
                        .iter()
                        .filter(|(k, _)| !self.listed.contains_key(*k))
                        .map(|(k, f)| (k.clone(), Some(f.clone()), None)),
                );
                self.known = std::mem::take(&mut self.listed);
                changes
            }
        }
    }
}

/// What of an OAuthPolicy matters to clients: its generation, and whether it reaches beyond its
/// namespace (publishes an audience or scopes, which ownership decides cluster-wide, or has consumers).
fn policy_fingerprint(p: &OAuthPolicy) -> (Option<i64>, bool) {
    let crosses = p.spec.audience.is_some() || p.spec.scopes.is_some() || !p.spec.consumers.is_empty();
    (p.metadata.generation, crosses)
}

/// Runs the watches that fill the caches, until cancelled. Runs once per operator; a second call
/// finds the writers taken and returns at once.
pub async fn run(ctx: Arc<Context>) {
    let Some(writers) = ctx
        .view
        .writers
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
    else {
        return;
    };
    let c = &ctx.client;
    let mut tasks: Vec<futures::future::BoxFuture<'static, ()>> = Vec::new();

    let cluster_ctx = ctx.clone();
    let mut tracker = Tracker::new();
    let stream = watcher(
        Api::<ClusterOAuthPolicy>::all(c.clone()),
        watcher::Config::default().any_semantic(),
    )
    .default_backoff()
    .reflect(writers.cluster_policies);
    tasks.push(Box::pin(drain(stream, "ClusterOAuthPolicies", move |event| {
        // Every ceiling may bound a product that other namespaces consume.
        if !tracker
            .event(event, |p: &ClusterOAuthPolicy| p.metadata.generation)
            .is_empty()
        {
            cluster_ctx.view.changed(&cluster_ctx.memo, Scope::All);
        }
    })));

    let ns_ctx = ctx.clone();
    let mut tracker = Tracker::new();
    let stream = watcher(
        Api::<PartialObjectMeta<Namespace>>::all(c.clone()),
        watcher::Config::default().any_semantic(),
    )
    .default_backoff()
    .reflect(writers.namespaces);
    tasks.push(Box::pin(drain(stream, "Namespaces", move |event| {
        // Labels decide ceilings and consumer admission; a new namespace without clients changes
        // nothing until its clients come, and those are reconciled then.
        let changes = tracker.event(event, |n: &PartialObjectMeta<Namespace>| n.labels().clone());
        if changes.iter().any(|(_, old, _)| old.is_some()) {
            ns_ctx.view.changed(&ns_ctx.memo, Scope::All);
        }
    })));

    for (scope, writer) in writers.policies {
        let policy_ctx = ctx.clone();
        let mut tracker = Tracker::new();
        let stream = watcher(
            crate::scoped_api::<OAuthPolicy>(c, scope.as_deref()),
            watcher::Config::default().any_semantic(),
        )
        .default_backoff()
        .reflect(writer);
        tasks.push(Box::pin(drain(stream, "OAuthPolicies", move |event| {
            // A policy's status (written by the policy controller) has no new generation: no trigger.
            let changes = tracker.event(event, policy_fingerprint);
            if changes.is_empty() {
                return;
            }
            let crosses = |f: &Option<(Option<i64>, bool)>| f.as_ref().is_some_and(|(_, c)| *c);
            if changes.iter().any(|(_, old, new)| crosses(old) || crosses(new)) {
                policy_ctx.view.changed(&policy_ctx.memo, Scope::All);
            } else {
                let mut namespaces: Vec<String> = changes.into_iter().map(|((ns, _), _, _)| ns).collect();
                namespaces.sort();
                namespaces.dedup();
                for ns in namespaces {
                    policy_ctx.view.changed(&policy_ctx.memo, Scope::Namespace(ns));
                }
            }
        })));
    }
    futures::future::join_all(tasks).await;
}

/// Consumes a reflected watch stream, handing each event to `on_event`.
async fn drain<K, S>(stream: S, what: &'static str, mut on_event: impl FnMut(watcher::Event<K>) + Send)
where
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send,
{
    let mut stream = std::pin::pin!(stream);
    while let Some(event) = stream.next().await {
        match event {
            Ok(event) => on_event(event),
            Err(e) => warn!(error = %e, "watching {what}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(name: &str, generation: i64) -> OAuthPolicy {
        let mut p = OAuthPolicy::test(name).in_namespace("team");
        p.metadata.generation = Some(generation);
        p
    }

    #[test]
    fn a_tracker_reports_new_changed_and_deleted_objects_but_not_redeliveries() {
        let mut t = Tracker::new();
        let generation = |p: &OAuthPolicy| p.metadata.generation;
        let key = ("team".to_owned(), "a".to_owned());
        assert_eq!(
            t.event(watcher::Event::Apply(policy("a", 1)), generation),
            [(key.clone(), None, Some(Some(1)))]
        );
        assert!(
            t.event(watcher::Event::Apply(policy("a", 1)), generation)
                .is_empty(),
            "a status write"
        );
        assert_eq!(
            t.event(watcher::Event::Apply(policy("a", 2)), generation),
            [(key.clone(), Some(Some(1)), Some(Some(2)))]
        );
        // A relist that no longer has `a` but has `b`.
        assert!(t.event(watcher::Event::Init, generation).is_empty());
        assert!(
            t.event(watcher::Event::InitApply(policy("b", 1)), generation)
                .is_empty()
        );
        let mut changes = t.event(watcher::Event::<OAuthPolicy>::InitDone, generation);
        changes.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(
            changes,
            [
                (key, Some(Some(2)), None),
                (("team".to_owned(), "b".to_owned()), None, Some(Some(1)))
            ]
        );
    }

    #[test]
    fn a_policy_that_publishes_or_has_consumers_reaches_beyond_its_namespace() {
        assert!(!policy_fingerprint(&policy("a", 1)).1);
        assert!(policy_fingerprint(&policy("a", 1).publishing_audience(&["https://x"])).1);
        assert!(policy_fingerprint(&policy("a", 1).consumed_by(&[("team", "shop")])).1);
    }
}
