//! Client-id takeover across namespaces (issue 13): a team with write access to OAuthClients in its own
//! namespace declares the client_id another namespace's OAuthClient holds. Admission refuses it (see
//! `admission.rs`); these tests cover the two layers behind it. On a control plane without the admission
//! policy, the operator refuses the client_id itself (`ClientIdConflict`, no Secret, no registration).
//! Where the platform team granted two namespaces the same id, the token server keeps the first
//! registration (409) and the operator reports `ClientIdConflict`. Throughout, the victim's credentials
//! keep working and its Secret never changes, including after the intruder deletes its OAuthClient.

use std::sync::Arc;

use gatehouse_crds::{OAuthClient, ownership};
use gatehouse_tests::ControlPlane;
use k8s_openapi::api::{
    core::v1::{Namespace, Secret},
    events::v1::Event as KubeEvent,
};
use kube::{
    Api,
    api::{DeleteParams, Patch, PatchParams},
};
use serde_json::json;

use super::{TIMEOUT, World, client_manifest, eventually, machine_client};

/// The (status, reason) of condition `type_` of OAuthClient `ns/name`.
async fn condition(w: &World, ns: &str, name: &str, type_: &str) -> Option<(String, String)> {
    let api: Api<OAuthClient> = Api::namespaced(w.kube.clone(), ns);
    let c = api.get_opt(name).await.ok()??;
    let cond = c.status?.conditions.into_iter().find(|c| c.type_ == type_)?;
    Some((cond.status, cond.reason))
}

/// The message of condition `type_` of OAuthClient `ns/name`.
async fn condition_message(w: &World, ns: &str, name: &str, type_: &str) -> Option<String> {
    let api: Api<OAuthClient> = Api::namespaced(w.kube.clone(), ns);
    let c = api.get_opt(name).await.ok()??;
    Some(
        c.status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == type_)?
            .message,
    )
}

/// A control plane without the chart's admission policies, shared by the tests that need one.
async fn without_admission() -> Arc<ControlPlane> {
    static BARE: tokio::sync::OnceCell<Arc<ControlPlane>> = tokio::sync::OnceCell::const_new();
    BARE.get_or_init(|| async {
        Arc::new(
            ControlPlane::start_without_admission_policies()
                .await
                .expect("control plane"),
        )
    })
    .await
    .clone()
}

/// Sets the client-id allowance of Namespace `ns` (as the platform team: the admin client).
async fn grant(w: &World, ns: &str, allowance: Option<&str>) {
    let patch = json!({"metadata": {"annotations": {ownership::CLIENT_IDS_ANNOTATION: allowance}}});
    Api::<Namespace>::all(w.kube.clone())
        .patch(ns, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

/// The data of every Secret in `ns`, by name.
async fn secrets_of(
    w: &World,
    ns: &str,
) -> Vec<(
    String,
    Option<std::collections::BTreeMap<String, k8s_openapi::ByteString>>,
)> {
    let api: Api<Secret> = Api::namespaced(w.kube.clone(), ns);
    let mut all: Vec<_> = api
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|s| (s.metadata.name.unwrap_or_default(), s.data))
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

/// Waits for a Warning Event `reason` about OAuthClient `name` in `ns`.
async fn wait_warning(w: &World, ns: &str, name: &str, reason: &str) {
    let events: Api<KubeEvent> = Api::namespaced(w.kube.clone(), ns);
    eventually(&format!("a Warning Event {reason}"), TIMEOUT, || async {
        let list = events.list(&Default::default()).await.ok()?;
        list.items
            .into_iter()
            .any(|e| {
                e.reason.as_deref() == Some(reason)
                    && e.type_.as_deref() == Some("Warning")
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
            })
            .then_some(())
    })
    .await;
}

/// Applies, as team member `user` of `ns`, an OAuthClient `name` that declares `client_id`. Admission may
/// still be catching up with a grant just written, so a refusal is retried for a while.
async fn apply_as_team(w: &World, ns: &str, user: &str, name: &str, client_id: &str) -> Api<OAuthClient> {
    let team = w.cp.team_client(ns, user).await.unwrap();
    let api: Api<OAuthClient> = Api::namespaced(team, ns);
    let manifest = client_manifest(
        name,
        json!({"clientId": client_id, "grantTypes": ["client_credentials"], "scopes": ["read"]}),
    );
    eventually("the API server to accept the OAuthClient", TIMEOUT, || async {
        api.patch(name, &PatchParams::apply(user), &Patch::Apply(&manifest))
            .await
            .ok()
            .map(|_| ())
    })
    .await;
    api
}

/// Deletes the intruder's OAuthClient and checks that the victim (`id`, `secret`, Secret `before`) is
/// served and unchanged throughout and afterwards.
async fn delete_intruder_and_check_victim(
    w: &World,
    intruder: &Api<OAuthClient>,
    id: &str,
    secret: &str,
    before: &std::collections::BTreeMap<String, String>,
) {
    intruder
        .delete("orders-service", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the intruder's OAuthClient to be gone", TIMEOUT, || async {
        assert_eq!(w.token(id, secret).await.0, 200, "{}", w.logs());
        intruder
            .get_opt("orders-service")
            .await
            .ok()
            .and_then(|c| c.is_none().then_some(()))
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(w.token(id, secret).await.0, 200);
    w.wait_ready("orders-service").await;
    assert_eq!(&w.secret_data("orders-service-oauth").await, before);
}

/// A world on `cp` with a victim OAuthClient `orders-service` Ready and served in its namespace, an
/// operator watching it and a second namespace for the intruder. Returns the world, the intruder's
/// namespace and the victim's Secret data.
async fn victim_and_intruder_namespace(
    cp: Arc<ControlPlane>,
    prefix: &str,
) -> (World, String, std::collections::BTreeMap<String, String>) {
    let mut w = World::on(cp, prefix).await;
    let evil_ns = w.cp.namespace(&format!("{prefix}-evil")).await.unwrap();
    w.start_operator_watching(false, &[w.ns.clone(), evil_ns.clone()])
        .await;
    w.start_server().await;
    w.apply(machine_client("orders-service")).await;
    w.wait_ready("orders-service").await;
    let before = w.secret_data("orders-service-oauth").await;
    w.wait_token(&before["client_id"], &before["client_secret"], 200)
        .await;
    (w, evil_ns, before)
}

/// Waits for the intruder `orders-service` in `evil_ns` to be `Ready=False, ClientIdConflict` while the
/// victim's credentials keep working; returns that (status, reason).
async fn wait_conflict(w: &World, evil_ns: &str, id: &str, secret: &str) -> (String, String) {
    let conflict = ("False".to_owned(), "ClientIdConflict".to_owned());
    eventually(
        "the intruder's Ready=False reason ClientIdConflict",
        TIMEOUT,
        || async {
            assert_eq!(w.token(id, secret).await.0, 200, "{}", w.logs());
            let ready = condition(w, evil_ns, "orders-service", "Ready").await;
            (ready.as_ref() == Some(&conflict)).then_some(())
        },
    )
    .await;
    conflict
}

#[tokio::test]
async fn without_the_admission_policy_the_operator_refuses_another_namespaces_client_id() {
    let (w, evil_ns, before) = victim_and_intruder_namespace(without_admission().await, "op-own-bare").await;
    let (id, secret) = (before["client_id"].clone(), before["client_secret"].clone());
    let victim_secrets = secrets_of(&w, &w.ns).await;

    // The intruder holds only a Role for OAuthClients, OAuthPolicies and Secrets in its namespace, and
    // nothing stops its manifest at admission on this cluster.
    let intruder = apply_as_team(&w, &evil_ns, "mallory", "orders-service", &id).await;
    let conflict = wait_conflict(&w, &evil_ns, &id, &secret).await;
    for type_ in ["SecretSynced", "Registered"] {
        assert_eq!(
            condition(&w, &evil_ns, "orders-service", type_).await,
            Some(conflict.clone()),
            "{type_}"
        );
        assert_eq!(
            condition_message(&w, &evil_ns, "orders-service", type_).await,
            Some(ownership::refusal(&id, &evil_ns)),
            "{type_}"
        );
    }
    wait_warning(&w, &evil_ns, "orders-service", "ClientIdConflict").await;
    // No Secret was written for the intruder, and the victim's namespace is untouched.
    assert!(secrets_of(&w, &evil_ns).await.is_empty());
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(
        condition(&w, &evil_ns, "orders-service", "Ready").await,
        Some(conflict)
    );
    assert_eq!(secrets_of(&w, &w.ns).await, victim_secrets);

    delete_intruder_and_check_victim(&w, &intruder, &id, &secret, &before).await;
}

#[tokio::test]
async fn a_withdrawn_client_id_allowance_deregisters_the_client() {
    let mut w = World::on(without_admission().await, "op-own-grant").await;
    w.start_operator(false).await;
    w.start_server().await;
    grant(&w, &w.ns, Some("legacy-*")).await;
    apply_as_team(&w, &w.ns.clone(), "alice", "legacy", "legacy-billing").await;
    w.wait_ready("legacy").await;
    let data = w.secret_data("legacy-oauth").await;
    assert_eq!(data["client_id"], "legacy-billing");
    w.wait_token("legacy-billing", &data["client_secret"], 200).await;

    grant(&w, &w.ns, None).await;
    w.wait_condition("legacy", "Ready", "False", "ClientIdConflict")
        .await;
    w.wait_token("legacy-billing", &data["client_secret"], 401).await;
    // The Secret stays as it was: granting the id again brings the same credentials back.
    assert_eq!(w.secret_data("legacy-oauth").await, data);
    grant(&w, &w.ns, Some("legacy-billing")).await;
    w.wait_ready("legacy").await;
    w.wait_token("legacy-billing", &data["client_secret"], 200).await;
}

#[tokio::test]
async fn a_client_id_granted_to_two_namespaces_stays_with_its_first_owner() {
    let cp = ControlPlane::shared().await.unwrap();
    let (w, evil_ns, before) = victim_and_intruder_namespace(cp, "op-own").await;
    let (id, secret) = (before["client_id"].clone(), before["client_secret"].clone());

    // A platform team's mistake: the intruder's namespace is granted the victim's id, so admission and
    // the operator let it through, and only the token server's ownership record stands in the way.
    grant(&w, &evil_ns, Some(&id)).await;
    let intruder = apply_as_team(&w, &evil_ns, "mallory", "orders-service", &id).await;

    let conflict = wait_conflict(&w, &evil_ns, &id, &secret).await;
    assert_eq!(
        condition(&w, &evil_ns, "orders-service", "Registered").await,
        Some(conflict.clone())
    );
    wait_warning(&w, &evil_ns, "orders-service", "ClientIdConflict").await;
    // The Secret the operator generated for the intruder holds nothing that works.
    let evil_secrets: Api<Secret> = Api::namespaced(w.kube.clone(), &evil_ns);
    if let Some(s) = evil_secrets.get_opt("orders-service-oauth").await.unwrap()
        && let Some(value) = s.data.and_then(|d| d.get("client_secret").cloned())
    {
        let value = String::from_utf8(value.0).unwrap();
        assert_eq!(w.token(&id, &value).await.0, 401);
    }
    // A resync later, still refused and the victim still served.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(
        condition(&w, &evil_ns, "orders-service", "Ready").await,
        Some(conflict)
    );
    assert_eq!(w.token(&id, &secret).await.0, 200);

    // Deleting the intruder (its finalizer asks the server to deregister) leaves the victim registered.
    delete_intruder_and_check_victim(&w, &intruder, &id, &secret, &before).await;
}
