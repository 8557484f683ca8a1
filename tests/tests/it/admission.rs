//! Client-id ownership at admission (issue 13), as an application team meets it: the team holds only a
//! namespaced Role for OAuthClients, OAuthPolicies and Secrets, and the chart's ValidatingAdmissionPolicy
//! (the file the chart ships, applied by the test control plane) refuses a `spec.clientId` of another
//! namespace with a message that names the field. Only the Namespace's annotation, which the team cannot
//! write, grants other ids.

use gatehouse_crds::{OAuthClient, ownership};
use gatehouse_tests::ControlPlane;
use k8s_openapi::api::core::v1::Namespace;
use kube::{
    Api,
    api::{Patch, PatchParams, PostParams},
};
use serde_json::{Value, json};

fn client(name: &str, client_id: Option<&str>) -> OAuthClient {
    let mut spec = json!({"grantTypes": ["client_credentials"]});
    if let Some(id) = client_id {
        spec["clientId"] = Value::from(id);
    }
    serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1",
        "kind": "OAuthClient",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .unwrap()
}

/// The API server's refusal of `client_id` in `ns`, created as team member `user`.
async fn refusal(cp: &ControlPlane, ns: &str, user: &str, client_id: &str) -> kube::core::Status {
    let team = cp.team_client(ns, user).await.unwrap();
    let api = Api::<OAuthClient>::namespaced(team, ns);
    match api
        .create(&PostParams::default(), &client("intruder", Some(client_id)))
        .await
    {
        Ok(_) => panic!("the API server accepted client_id {client_id} in namespace {ns}"),
        Err(kube::Error::Api(status)) => *status,
        Err(other) => panic!("unexpected error: {other}"),
    }
}

#[tokio::test]
async fn admission_refuses_a_client_id_that_belongs_to_another_namespace() {
    let cp = ControlPlane::shared().await.unwrap();
    let victim = cp.namespace("adm-victim").await.unwrap();
    let evil = cp.namespace("adm-evil").await.unwrap();
    let taken = format!("orders-service.{victim}");
    let status = refusal(&cp, &evil, "mallory", &taken).await;
    assert_eq!(status.code, 403, "{status:?}");
    assert!(
        status.message.contains(&ownership::refusal(&taken, &evil)),
        "{:?} does not carry the policy's message",
        status.message
    );
    // Lookalikes of the namespace suffix are refused as well.
    for id in [format!("orders-{evil}"), format!("orders.x{evil}"), evil.clone()] {
        let status = refusal(&cp, &evil, "mallory", &id).await;
        assert!(status.message.contains("spec.clientId"), "{status:?}");
    }
    // Nothing was created.
    let api = Api::<OAuthClient>::namespaced(cp.client().unwrap(), &evil);
    assert!(api.get_opt("intruder").await.unwrap().is_none());
}

#[tokio::test]
async fn admission_accepts_the_namespaces_own_client_ids() {
    let cp = ControlPlane::shared().await.unwrap();
    let ns = cp.namespace("adm-own").await.unwrap();
    let team = cp.team_client(&ns, "alice").await.unwrap();
    let api = Api::<OAuthClient>::namespaced(team, &ns);
    let own = format!("orders.api.{ns}");
    for (name, id) in [("default-id", None), ("explicit-id", Some(own.as_str()))] {
        api.create(&PostParams::default(), &client(name, id))
            .await
            .unwrap_or_else(|e| panic!("{name} refused: {e}"));
    }
}

#[tokio::test]
async fn only_the_namespace_annotation_grants_other_client_ids_and_a_team_cannot_write_it() {
    let cp = ControlPlane::shared().await.unwrap();
    let ns = cp.namespace("adm-grant").await.unwrap();
    let namespaces = Api::<Namespace>::all(cp.team_client(&ns, "bob").await.unwrap());
    let annotate = json!({"metadata": {"annotations": {ownership::CLIENT_IDS_ANNOTATION: "legacy-*"}}});

    // The team cannot grant itself anything.
    let err = namespaces
        .patch(&ns, &PatchParams::default(), &Patch::Merge(&annotate))
        .await
        .unwrap_err();
    assert!(matches!(&err, kube::Error::Api(s) if s.code == 403), "{err}");
    let status = refusal(&cp, &ns, "bob", "legacy-billing").await;
    assert_eq!(status.code, 403, "{status:?}");

    // The platform team can. Admission reads the Namespace from its informer, so the grant takes a
    // moment to arrive.
    Api::<Namespace>::all(cp.client().unwrap())
        .patch(&ns, &PatchParams::default(), &Patch::Merge(&annotate))
        .await
        .unwrap();
    let team = Api::<OAuthClient>::namespaced(cp.team_client(&ns, "bob").await.unwrap(), &ns);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match team
            .create(&PostParams::default(), &client("legacy", Some("legacy-billing")))
            .await
        {
            Ok(_) => break,
            Err(e) if tokio::time::Instant::now() > deadline => panic!("still refused after 30 s: {e}"),
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(250)).await,
        }
    }
    // The grant is a prefix of ids, not a licence for every id.
    let status = refusal(&cp, &ns, "bob", "billing.other").await;
    assert!(status.message.contains("spec.clientId"), "{status:?}");
}
