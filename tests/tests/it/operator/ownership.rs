//! Client-id takeover across namespaces (issue 13): a team with write access to OAuthClients in its own
//! namespace declares the client_id another namespace's OAuthClient holds. The token server refuses
//! the registration (409), the operator reports `ClientIdConflict`, and the victim's credentials and
//! Secret never change, including after the intruder deletes its OAuthClient.

use gatehouse_crds::OAuthClient;
use k8s_openapi::api::events::v1::Event as KubeEvent;
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

#[tokio::test]
async fn an_oauth_client_in_another_namespace_cannot_take_over_a_client_id() {
    let mut w = World::new("op-own").await;
    let evil_ns = w.cp.namespace("op-own-evil").await.unwrap();
    w.start_operator_watching(false, &[w.ns.clone(), evil_ns.clone()])
        .await;
    w.start_server().await;
    w.apply(machine_client("orders-service")).await;
    w.wait_ready("orders-service").await;
    let before = w.secret_data("orders-service-oauth").await;
    let (id, secret) = (before["client_id"].clone(), before["client_secret"].clone());
    w.wait_token(&id, &secret, 200).await;

    // The intruder holds only a Role for OAuthClients, OAuthPolicies and Secrets in its namespace.
    let team = w.cp.team_client(&evil_ns, "mallory").await.unwrap();
    let intruder: Api<OAuthClient> = Api::namespaced(team, &evil_ns);
    let manifest = client_manifest(
        "orders-service",
        json!({"clientId": id, "grantTypes": ["client_credentials"], "scopes": ["read"]}),
    );
    intruder
        .patch(
            "orders-service",
            &PatchParams::apply("mallory"),
            &Patch::Apply(&manifest),
        )
        .await
        .unwrap();

    let conflict = ("False".to_owned(), "ClientIdConflict".to_owned());
    eventually(
        "the intruder's Ready=False reason ClientIdConflict",
        TIMEOUT,
        || async {
            // The victim's credentials work throughout.
            assert_eq!(w.token(&id, &secret).await.0, 200, "{}", w.logs());
            let ready = condition(&w, &evil_ns, "orders-service", "Ready").await;
            (ready.as_ref() == Some(&conflict)).then_some(())
        },
    )
    .await;
    assert_eq!(
        condition(&w, &evil_ns, "orders-service", "Registered").await,
        Some(conflict.clone())
    );
    let events: Api<KubeEvent> = Api::namespaced(w.kube.clone(), &evil_ns);
    eventually("a Warning Event ClientIdConflict", TIMEOUT, || async {
        let list = events.list(&Default::default()).await.ok()?;
        list.items
            .into_iter()
            .any(|e| {
                e.reason.as_deref() == Some("ClientIdConflict")
                    && e.type_.as_deref() == Some("Warning")
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("orders-service")
            })
            .then_some(())
    })
    .await;
    // The Secret the operator generated for the intruder holds nothing that works.
    let evil_secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(w.kube.clone(), &evil_ns);
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
    intruder
        .delete("orders-service", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the intruder's OAuthClient to be gone", TIMEOUT, || async {
        assert_eq!(w.token(&id, &secret).await.0, 200, "{}", w.logs());
        intruder
            .get_opt("orders-service")
            .await
            .ok()
            .and_then(|c| c.is_none().then_some(()))
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(w.token(&id, &secret).await.0, 200);
    w.wait_ready("orders-service").await;
    assert_eq!(w.secret_data("orders-service-oauth").await, before);
}
