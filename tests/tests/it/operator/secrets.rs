//! Secrets are a namespace's own (issue 13, items 6 and 7): no digest of a Secret reaches an object
//! that OAuthClient readers can read, a short bring-your-own secret is refused, the digests earlier
//! operators left on OAuthClients are migrated away, and the operator works with exactly the chart's
//! RBAC (run as the chart's ServiceAccount through impersonation) in both of the chart's modes, without
//! touching another namespace's Secrets.
//!
//! The attacker is a team member: [`ControlPlane::team_client`], a user holding only a Role for
//! OAuthClients, OAuthPolicies and Secrets in the team's namespace.

use std::{collections::BTreeMap, path::PathBuf, sync::Arc, time::Duration};

use base64::Engine as _;
use gatehouse_tests::{ADMIN_TOKEN, ControlPlane, suffix};
use k8s_openapi::api::{
    core::v1::{Namespace, Secret, ServiceAccount},
    events::v1::Event as KubeEvent,
    rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding},
};
use kube::{
    Api,
    api::{DeleteParams, DynamicObject, Patch, PatchParams, PostParams},
    config::AuthInfo,
    core::ApiResource,
};
use serde_json::{Value, json};

use super::{TIMEOUT, World, apply_in, client_manifest, eventually, machine_client};

/// Every spelling of the SHA-256 of `value` that someone could search for: hex in both cases, base64
/// and base64url with and without padding.
fn digest_spellings(value: &str) -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, value.as_bytes());
    let bytes = digest.as_ref();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    vec![
        hex.to_uppercase(),
        hex,
        STANDARD.encode(bytes),
        STANDARD_NO_PAD.encode(bytes),
        URL_SAFE.encode(bytes),
        URL_SAFE_NO_PAD.encode(bytes),
    ]
}

/// Asserts that OAuthClient `name`, as its reader `reader` sees all of it (metadata with every
/// annotation and label, spec, status), and the Events about it, hold no digest of `value`, nor
/// `value` itself.
async fn assert_no_trace_of(w: &World, reader: &kube::Client, name: &str, value: &str) {
    let ar = ApiResource::erase::<gatehouse_crds::OAuthClient>(&());
    let client = Api::<DynamicObject>::namespaced_with(reader.clone(), &w.ns, &ar)
        .get(name)
        .await
        .unwrap();
    let events: Vec<KubeEvent> = Api::<KubeEvent>::namespaced(w.kube.clone(), &w.ns)
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .collect();
    let text = format!(
        "{}\n{}",
        serde_json::to_string(&client).unwrap(),
        serde_json::to_string(&events).unwrap()
    );
    for spelling in digest_spellings(value).iter().chain([&value.to_owned()]) {
        assert!(
            !text.contains(spelling.as_str()),
            "OAuthClient {name} or its Events hold {spelling}:\n{text}"
        );
    }
}

/// Waits for an Event of `type_` and `reason` about OAuthClient `name`; returns its note.
async fn wait_event(w: &World, name: &str, type_: &str, reason: &str) -> String {
    let events: Api<KubeEvent> = Api::namespaced(w.kube.clone(), &w.ns);
    eventually(
        &format!("a {type_} Event {reason} for {name}"),
        TIMEOUT,
        || async {
            events
                .list(&Default::default())
                .await
                .ok()?
                .items
                .into_iter()
                .find(|e| {
                    e.reason.as_deref() == Some(reason)
                        && e.type_.as_deref() == Some(type_)
                        && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
                })?
                .note
        },
    )
    .await
}

/// The token server's admin token, from the Secret the operator generated.
async fn admin_token(w: &World) -> String {
    let secrets: Api<Secret> = Api::namespaced(w.kube.clone(), &w.operator_ns);
    let secret = secrets.get("gatehouse-server-admin-token").await.unwrap();
    String::from_utf8(secret.data.unwrap()["token"].0.clone()).unwrap()
}

/// The token server's registration of `client_id`, through its admin API.
async fn registration(w: &World, client_id: &str) -> Value {
    let response = w
        .http
        .get(format!(
            "http://127.0.0.1:{}/admin/v1/clients/{client_id}",
            w.admin_port
        ))
        .bearer_auth(admin_token(w).await)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "no registration of {client_id}");
    response.json().await.unwrap()
}

fn opaque_secret(name: &str, data: &[(&str, &str)]) -> Value {
    let data: BTreeMap<&str, &str> = data.iter().copied().collect();
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": data})
}

fn byo_client(name: &str, secret: &str, key: &str) -> Value {
    client_manifest(
        name,
        json!({"grantTypes": ["client_credentials"],
               "existingSecretRef": {"name": secret, "clientSecretKey": key}}),
    )
}

#[tokio::test]
async fn existing_secret_ref_at_another_secret_of_the_namespace_leaves_no_digest_of_it_on_the_client() {
    let mut w = World::new("sec-deputy").await;
    w.start_operator(false).await;
    w.start_server().await;
    // A Secret of the namespace that has nothing to do with OAuth; the team's member cannot be assumed
    // to be the only one who reads OAuthClients.
    let password = "db-password-6f1e0c9a-long-enough-to-be-accepted";
    w.apply(opaque_secret("payments-db", &[("password", password)]))
        .await;
    let team = w.cp.team_client(&w.ns, "mallory").await.unwrap();
    apply_in(&team, &w.ns, byo_client("deputy", "payments-db", "password")).await;

    // With a long value the client works, as the reference asks.
    w.wait_ready("deputy").await;
    let client_id = format!("deputy.{}", w.ns);
    w.wait_token(&client_id, password, 200).await;
    assert_no_trace_of(&w, &team, "deputy", password).await;
    let registered = registration(&w, &client_id).await;
    assert_eq!(
        registered["secrets"],
        json!([{"sha256": digest_spellings(password)[1]}]),
        "the server, and only the server, holds the digest"
    );
}

#[tokio::test]
async fn a_bring_your_own_secret_under_32_bytes_is_refused_and_retires_the_one_registered_before() {
    let mut w = World::new("sec-weak").await;
    w.start_operator(false).await;
    w.start_server().await;
    let team = w.cp.team_client(&w.ns, "mallory").await.unwrap();
    let short = "x".repeat(31);
    apply_in(&team, &w.ns, opaque_secret("weak-creds", &[("secret", &short)])).await;
    apply_in(&team, &w.ns, byo_client("weak", "weak-creds", "secret")).await;

    w.wait_condition("weak", "Ready", "False", "SecretTooWeak").await;
    w.wait_condition("weak", "SecretSynced", "False", "SecretTooWeak")
        .await;
    let note = wait_event(&w, "weak", "Warning", "SecretTooWeak").await;
    assert!(note.contains("shorter than 32 bytes"), "{note}");
    let client_id = format!("weak.{}", w.ns);
    assert_eq!(registration(&w, &client_id).await["secrets"], json!([]));
    assert_eq!(w.token(&client_id, &short).await.0, 401);
    assert_no_trace_of(&w, &team, "weak", &short).await;

    // 32 bytes are enough.
    let long = "y".repeat(32);
    apply_in(&team, &w.ns, opaque_secret("weak-creds", &[("secret", &long)])).await;
    w.wait_ready("weak").await;
    w.wait_token(&client_id, &long, 200).await;

    // Replaced by a short one, the Secret retires the long one all the same: nothing works.
    apply_in(&team, &w.ns, opaque_secret("weak-creds", &[("secret", &short)])).await;
    w.wait_condition("weak", "Ready", "False", "SecretTooWeak").await;
    w.wait_token(&client_id, &long, 401).await;
    assert_eq!(w.token(&client_id, &short).await.0, 401);
    assert_eq!(registration(&w, &client_id).await["secrets"], json!([]));
    assert_no_trace_of(&w, &team, "weak", &long).await;
}

#[tokio::test]
async fn the_digests_an_earlier_operator_left_on_a_client_move_to_its_secret_and_nothing_else_changes() {
    let mut w = World::new("sec-migrate").await;
    w.start_operator(false).await;
    w.start_server().await;
    w.apply(machine_client("old")).await;
    w.wait_ready("old").await;
    let data = w.secret_data("old-oauth").await;
    let (client_id, current) = (data["client_id"].clone(), data["client_secret"].clone());
    w.wait_token(&client_id, &current, 200).await;
    w.operators.pop();

    // What an earlier operator left behind: the digests on the OAuthClient, among them one of a secret
    // whose Secret was deleted and that works until the end of its grace period; a Secret without
    // the accepted-digests annotation; and the registration on the server.
    let lost = "a-secret-whose-secret-was-deleted-0123456789";
    // The end of a grace period on the server's clock, which is the wall clock.
    #[allow(clippy::disallowed_methods)]
    let grace_until = jiff::Timestamp::now().as_second() + 3600;
    let digests = json!([
        {"sha256": digest_spellings(&current)[1]},
        {"sha256": digest_spellings(lost)[1], "expiresAt": grace_until},
    ]);
    let mut registered = registration(&w, &client_id).await;
    registered["secrets"] = digests.clone();
    let put = w
        .http
        .put(format!(
            "http://127.0.0.1:{}/admin/v1/clients/{client_id}",
            w.admin_port
        ))
        .bearer_auth(admin_token(&w).await)
        .json(&registered)
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.status());
    let legacy = "gatehouse.dev/registered-digests";
    w.clients()
        .patch(
            "old",
            &PatchParams::apply("gatehouse-operator").force(),
            &Patch::Apply(json!({
                "apiVersion": "gatehouse.dev/v1alpha1", "kind": "OAuthClient",
                "metadata": {"name": "old", "annotations": {legacy: digests.to_string()}},
            })),
        )
        .await
        .unwrap();
    w.secrets()
        .patch(
            "old-oauth",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"gatehouse.dev/accepted-digests": null}}})),
        )
        .await
        .unwrap();
    let before = w.secrets().get("old-oauth").await.unwrap();
    w.wait_token(&client_id, lost, 200).await;

    w.start_operator(false).await;
    eventually("the legacy annotation to go", TIMEOUT, || async {
        let c = w.clients().get("old").await.ok()?;
        (!c.metadata.annotations.unwrap_or_default().contains_key(legacy)).then_some(())
    })
    .await;
    let accepted = eventually("the digests in the Secret", TIMEOUT, || async {
        let s = w.secrets().get("old-oauth").await.ok()?;
        let v = s
            .metadata
            .annotations?
            .get("gatehouse.dev/accepted-digests")?
            .clone();
        serde_json::from_str::<Value>(&v).ok()
    })
    .await;
    assert_eq!(accepted, digests);
    w.wait_ready("old").await;
    let after = w.secrets().get("old-oauth").await.unwrap();
    assert_eq!(after.data, before.data, "the credentials changed");
    assert_eq!(registration(&w, &client_id).await["secrets"], digests);
    assert_eq!(w.token(&client_id, &current).await.0, 200);
    assert_eq!(w.token(&client_id, lost).await.0, 200);
    let kube = w.kube.clone();
    assert_no_trace_of(&w, &kube, "old", &current).await;
    assert_no_trace_of(&w, &kube, "old", lost).await;
}

/// Applies the RBAC objects (and the ServiceAccount) of the rendered chart `docs` as the cluster's
/// administrator; returns the cluster-scoped ones, for [`delete_cluster_rbac`].
async fn apply_rbac(cp: &ControlPlane, docs: &[Value]) -> Vec<(String, String)> {
    let admin = cp.client().unwrap();
    let apply = PatchParams::apply("gatehouse-tests").force();
    let mut cluster_scoped = Vec::new();
    for doc in docs {
        let kind = doc["kind"].as_str().unwrap_or_default();
        let name = doc["metadata"]["name"].as_str().unwrap_or_default();
        let ns = doc["metadata"]["namespace"].as_str().unwrap_or_default();
        let patch = Patch::Apply(doc);
        let result = match kind {
            "ServiceAccount" => Api::<ServiceAccount>::namespaced(admin.clone(), ns)
                .patch(name, &apply, &patch)
                .await
                .map(drop),
            "Role" => Api::<Role>::namespaced(admin.clone(), ns)
                .patch(name, &apply, &patch)
                .await
                .map(drop),
            "RoleBinding" => Api::<RoleBinding>::namespaced(admin.clone(), ns)
                .patch(name, &apply, &patch)
                .await
                .map(drop),
            "ClusterRole" => Api::<ClusterRole>::all(admin.clone())
                .patch(name, &apply, &patch)
                .await
                .map(drop),
            "ClusterRoleBinding" => Api::<ClusterRoleBinding>::all(admin.clone())
                .patch(name, &apply, &patch)
                .await
                .map(drop),
            _ => continue,
        };
        result.unwrap_or_else(|e| panic!("applying {kind} {name}: {e}"));
        if kind.starts_with("Cluster") {
            cluster_scoped.push((kind.to_owned(), name.to_owned()));
        }
    }
    cluster_scoped
}

async fn delete_cluster_rbac(cp: &ControlPlane, objects: &[(String, String)]) {
    let admin = cp.client().unwrap();
    for (kind, name) in objects {
        let dp = DeleteParams::default();
        let _ = match kind.as_str() {
            "ClusterRole" => Api::<ClusterRole>::all(admin.clone())
                .delete(name, &dp)
                .await
                .map(drop),
            _ => Api::<ClusterRoleBinding>::all(admin.clone())
                .delete(name, &dp)
                .await
                .map(drop),
        };
    }
}

/// A kubeconfig whose user is the cluster's administrator acting as `user` (impersonation), and a
/// client configured the same way.
fn impersonating(w: &World, user: &str) -> (PathBuf, kube::Client) {
    let path = w.dir.path().join("operator-kubeconfig");
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: gatehouse-test\n  cluster:\n    server: {url}\n    \
         insecure-skip-tls-verify: true\nusers:\n- name: operator\n  user:\n    token: {ADMIN_TOKEN}\n    as: \
         {user}\ncontexts:\n- name: gatehouse-test\n  context:\n    cluster: gatehouse-test\n    user: operator\n    \
         namespace: default\ncurrent-context: gatehouse-test\n",
        url = w.cp.url()
    );
    std::fs::write(&path, kubeconfig).unwrap();
    let mut config = kube::Config::new(w.cp.url().parse().unwrap());
    config.accept_invalid_certs = true;
    config.auth_info = AuthInfo {
        token: Some(ADMIN_TOKEN.to_owned().into()),
        impersonate: Some(user.to_owned()),
        ..Default::default()
    };
    (path, kube::Client::try_from(config).unwrap())
}

fn is_forbidden<T>(result: &kube::Result<T>) -> bool {
    matches!(result, Err(kube::Error::Api(s)) if s.code == 403)
}

/// The operator as the chart's ServiceAccount, with exactly the chart's RBAC, watching the team's
/// namespace (`cluster_wide` false) or every namespace: a client becomes Ready, a rotation rewrites
/// its Secret, the Events are published, the operator logs no refusal, it is refused what the chart
/// does not grant, and a Secret of another namespace is left exactly as it was.
async fn the_charted_rbac_is_enough(cp: Arc<ControlPlane>, cluster_wide: bool) {
    let mut w = World::on(cp.clone(), "sec-rbac-team").await;
    w.operator_ns = cp.namespace("sec-rbac-sys").await.unwrap();
    let other = cp.namespace("sec-rbac-other").await.unwrap();
    apply_in(
        &w.kube,
        &other,
        opaque_secret(
            "bystander",
            &[("client_secret", "not-yours-0123456789-0123456789")],
        ),
    )
    .await;
    let unrelated = "unrelated";
    apply_in(&w.kube, &w.operator_ns, opaque_secret(unrelated, &[("k", "v")])).await;
    let bystander = || async {
        let s: Secret = Api::namespaced(cp.client().unwrap(), &other)
            .get("bystander")
            .await
            .unwrap();
        (s.data, s.metadata.resource_version)
    };
    let untouched = bystander().await;

    let release = format!("sec-{}", suffix());
    let mut values = vec!["operator.resyncInterval=2s".to_owned()];
    if !cluster_wide {
        values.push(format!("operator.watchNamespaces={{{}}}", w.ns));
    }
    let docs = w.render_chart(&release, &values);
    let cluster_rbac = apply_rbac(&cp, &docs).await;
    let sa = format!("system:serviceaccount:{}:{release}-operator", w.operator_ns);
    let (kubeconfig, operator) = impersonating(&w, &sa);
    w.start_charted_operator(&docs, &kubeconfig).await;
    w.start_server().await;

    let team = cp.team_client(&w.ns, "alice").await.unwrap();
    apply_in(&team, &w.ns, machine_client("app")).await;
    // A reference reaches only the client's own namespace.
    apply_in(&team, &w.ns, byo_client("reach", "bystander", "client_secret")).await;
    w.wait_ready("app").await;
    w.wait_condition("reach", "Ready", "False", "SecretMissing").await;
    let old = w.secret_data("app-oauth").await;
    let client_id = old["client_id"].clone();
    w.wait_token(&client_id, &old["client_secret"], 200).await;

    let mut rotate = machine_client("app");
    rotate["metadata"]["annotations"] = json!({"gatehouse.dev/rotate": "now"});
    apply_in(&team, &w.ns, rotate).await;
    let new = eventually("the rotated Secret", TIMEOUT, || async {
        let d = w.secret_data("app-oauth").await;
        (d["client_secret"] != old["client_secret"]).then_some(d)
    })
    .await;
    assert_eq!(new["previous_client_secret"], old["client_secret"]);
    w.wait_token(&client_id, &new["client_secret"], 200).await;
    assert_eq!(w.token(&client_id, &old["client_secret"]).await.0, 200);
    for reason in ["SecretGenerated", "Ready", "SecretRotated"] {
        wait_event(&w, "app", "Normal", reason).await;
    }
    wait_event(&w, "reach", "Warning", "SecretMissing").await;

    // What the chart does not grant, the API server refuses the operator.
    let team_secrets: Api<Secret> = Api::namespaced(operator.clone(), &w.ns);
    assert!(is_forbidden(
        &team_secrets.delete("app-oauth", &DeleteParams::default()).await
    ));
    let own_secrets: Api<Secret> = Api::namespaced(operator.clone(), &w.operator_ns);
    let other_secrets: Api<Secret> = Api::namespaced(operator.clone(), &other);
    if !cluster_wide {
        assert!(is_forbidden(&own_secrets.get(unrelated).await));
        assert!(is_forbidden(&own_secrets.list(&Default::default()).await));
        assert!(is_forbidden(&other_secrets.get("bystander").await));
        let planted = serde_json::from_value::<Secret>(opaque_secret("planted", &[("k", "v")])).unwrap();
        assert!(is_forbidden(
            &other_secrets.create(&PostParams::default(), &planted).await
        ));
        let other_clients: Api<gatehouse_crds::OAuthClient> = Api::namespaced(operator.clone(), &other);
        assert!(is_forbidden(&other_clients.list(&Default::default()).await));
    }
    // The cluster-scoped reads it will need are granted in both modes.
    Api::<Namespace>::all(operator.clone())
        .list(&Default::default())
        .await
        .unwrap();

    tokio::time::sleep(Duration::from_secs(3)).await;
    for (i, o) in w.operators.iter().enumerate() {
        let log = o.log();
        assert!(
            !log.to_lowercase().contains("forbidden"),
            "operator {i} was refused something:\n{log}"
        );
    }
    assert_eq!(
        bystander().await,
        untouched,
        "a Secret of another namespace changed"
    );
    delete_cluster_rbac(&cp, &cluster_rbac).await;
}

#[tokio::test]
async fn the_charts_rbac_is_enough_with_watch_namespaces_and_reaches_no_other_namespace() {
    let cp = ControlPlane::shared().await.unwrap();
    the_charted_rbac_is_enough(cp, false).await;
}

#[tokio::test]
async fn the_charts_rbac_is_enough_cluster_wide_and_touches_no_other_namespaces_secret() {
    // A control plane of its own: an operator watching every namespace would reconcile the clients of
    // the tests running beside it.
    let cp = Arc::new(ControlPlane::start().await.unwrap());
    the_charted_rbac_is_enough(cp, true).await;
}
