//! Self-granted privileges (issue 13): a team with write access to OAuthClients and OAuthPolicies in
//! its own namespace asks for another team's audience and admin scope, the password grant and
//! first-party consent, and then tries to publish that audience itself. The ceiling (ClusterOAuthPolicy)
//! and the payments team's API product refuse each, `status.effective.denials` names who refused, and
//! the real token from the running server carries none of it. The product's listed consumer (namespace
//! shop) gets the audience and scope; no Secret outside the attacker's namespace changes.

use std::collections::BTreeMap;

use gatehouse_crds::{ClusterOAuthPolicy, Denial, OAuthClient, OAuthPolicy};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::{
    Api,
    api::{DeleteParams, Patch, PatchParams, PostParams},
};
use serde_json::{Value, json};

use super::{TIMEOUT, World, client_manifest, eventually};

const PAYMENTS: &str = "https://payments.example.com";

/// Every Secret of `ns`, name → data.
async fn secrets_of(w: &World, ns: &str) -> BTreeMap<String, BTreeMap<String, Vec<u8>>> {
    let api: Api<Secret> = Api::namespaced(w.kube.clone(), ns);
    api.list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|s| {
            let data = s
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect();
            (s.metadata.name.unwrap_or_default(), data)
        })
        .collect()
}

/// A token request with `form` and HTTP Basic; the status and JSON body.
async fn token_with(w: &World, id: &str, secret: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = w
        .http
        .post(format!("{}/token", w.issuer()))
        .basic_auth(id, Some(secret))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A client_credentials token of `id`, validated as a resource server would with `aud` = `id`; its
/// claims.
async fn own_audience_token(w: &World, id: &str, secret: &str) -> Value {
    let (status, body) = token_with(w, id, secret, &[("grant_type", "client_credentials")]).await;
    assert_eq!(status, 200, "{body}");
    let claims = w
        .validate_with_jwks(body["access_token"].as_str().unwrap(), id)
        .await;
    assert_eq!(claims["aud"], id, "{claims}");
    claims
}

/// The consumer's token for scope payments.read validates with `aud` = the payments audience.
async fn consumer_is_served(w: &World, id: &str, secret: &str) {
    let form = [("grant_type", "client_credentials"), ("scope", "payments.read")];
    let (status, body) = token_with(w, id, secret, &form).await;
    assert_eq!(status, 200, "{body}");
    let claims = w
        .validate_with_jwks(body["access_token"].as_str().unwrap(), PAYMENTS)
        .await;
    assert_eq!(claims["scope"], "payments.read", "{claims}");
}

async fn apply_as(kube: &kube::Client, ns: &str, manager: &str, object: &Value) -> Result<(), kube::Error> {
    let name = object["metadata"]["name"].as_str().unwrap();
    let params = PatchParams::apply(manager);
    match object["kind"].as_str() {
        Some("OAuthClient") => Api::<OAuthClient>::namespaced(kube.clone(), ns)
            .patch(name, &params, &Patch::Apply(object))
            .await
            .map(drop),
        Some("OAuthPolicy") => Api::<OAuthPolicy>::namespaced(kube.clone(), ns)
            .patch(name, &params, &Patch::Apply(object))
            .await
            .map(drop),
        other => panic!("unexpected kind {other:?}"),
    }
}

fn cluster_policy(name: &str, namespaces: &[&str], spec: Value) -> ClusterOAuthPolicy {
    let mut spec = spec;
    spec["namespaceSelector"] = json!({"matchExpressions": [
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": namespaces}
    ]});
    serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "ClusterOAuthPolicy",
        "metadata": {"name": name}, "spec": spec,
    }))
    .unwrap()
}

/// The effective settings of `ns/name` once its status shows `done`.
async fn effective_when(
    w: &World,
    ns: &str,
    name: &str,
    what: &str,
    done: impl Fn(&gatehouse_crds::EffectiveSettings) -> bool,
) -> gatehouse_crds::EffectiveSettings {
    let api: Api<OAuthClient> = Api::namespaced(w.kube.clone(), ns);
    eventually(what, TIMEOUT, || async {
        let status = api.get(name).await.ok()?.status?;
        let ready = status
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        let effective = status.effective?;
        (ready && done(&effective)).then_some(effective)
    })
    .await
}

async fn credentials(w: &World, ns: &str, secret: &str) -> (String, String) {
    let api: Api<Secret> = Api::namespaced(w.kube.clone(), ns);
    let s = api.get(secret).await.unwrap();
    let data = s.data.unwrap();
    let get = |k: &str| String::from_utf8(data[k].0.clone()).unwrap();
    (get("client_id"), get("client_secret"))
}

#[tokio::test]
async fn a_team_cannot_grant_itself_another_teams_audience_scopes_password_or_first_party() {
    let mut w = World::new("op-ceil-pay").await;
    let payments = w.ns.clone();
    let shop = w.cp.namespace("op-ceil-shop").await.unwrap();
    let evil = w.cp.namespace("op-ceil-evil").await.unwrap();
    let all = [payments.as_str(), shop.as_str(), evil.as_str()];
    w.start_operator_watching(false, &[payments.clone(), shop.clone(), evil.clone()])
        .await;
    w.start_server().await;

    // The platform team: a default ceiling for the three namespaces, and payments may publish its API.
    let default_name = format!("default-{payments}");
    let payments_name = format!("payments-{payments}");
    let ceilings = Api::<ClusterOAuthPolicy>::all(w.kube.clone());
    for policy in [
        cluster_policy(
            &default_name,
            &all,
            json!({"priority": -100, "allowedGrantTypes": ["authorization_code", "client_credentials", "refresh_token"],
                   "allowFirstParty": false, "publishableAudiences": [], "publishableScopes": []}),
        ),
        cluster_policy(
            &payments_name,
            &[&payments],
            json!({"publishableAudiences": [PAYMENTS], "publishableScopes": ["payments.*"]}),
        ),
    ] {
        ceilings.create(&PostParams::default(), &policy).await.unwrap();
    }

    // The payments team publishes its product to namespace shop.
    let payments_team = w.cp.team_client(&payments, "paula").await.unwrap();
    let product = json!({"apiVersion": "gatehouse.dev/v1alpha1", "kind": "OAuthPolicy",
        "metadata": {"name": "payments-api"},
        "spec": {"audience": [PAYMENTS],
                 "scopes": [{"name": "payments.read"}, {"name": "payments.admin"}],
                 "consumers": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": shop}}}]}});
    apply_as(&payments_team, &payments, "paula", &product)
        .await
        .unwrap();
    apply_as(
        &payments_team,
        &payments,
        "paula",
        &client_manifest("ledger", json!({"grantTypes": ["client_credentials"]})),
    )
    .await
    .unwrap();
    let shop_team = w.cp.team_client(&shop, "sam").await.unwrap();
    apply_as(
        &shop_team,
        &shop,
        "sam",
        &client_manifest(
            "checkout",
            json!({"grantTypes": ["client_credentials"], "audience": [PAYMENTS], "scopes": ["payments.read"]}),
        ),
    )
    .await
    .unwrap();
    let checkout = effective_when(
        &w,
        &shop,
        "checkout",
        "checkout granted the payments audience",
        |e| e.audience == [PAYMENTS],
    )
    .await;
    assert_eq!(checkout.scopes, ["payments.read"]);
    assert!(checkout.denials.is_empty(), "{:?}", checkout.denials);
    effective_when(&w, &payments, "ledger", "ledger Ready", |_| true).await;
    let (shop_id, shop_secret) = credentials(&w, &shop, "checkout-oauth").await;
    consumer_is_served(&w, &shop_id, &shop_secret).await;
    let before_payments = secrets_of(&w, &payments).await;
    let before_shop = secrets_of(&w, &shop).await;

    // The attacker holds only a Role for OAuthClients, OAuthPolicies and Secrets in namespace evil.
    let evil_team = w.cp.team_client(&evil, "mallory").await.unwrap();
    let thief = client_manifest(
        "thief",
        json!({"grantTypes": ["client_credentials", "password"], "audience": [PAYMENTS],
               "scopes": ["payments.admin"], "firstParty": true}),
    );
    apply_as(&evil_team, &evil, "mallory", &thief).await.unwrap();
    let effective = effective_when(&w, &evil, "thief", "thief resolved", |_| true).await;
    let by_default = format!("ClusterOAuthPolicy/{default_name}");
    let by_product = format!("OAuthPolicy/{payments}/payments-api");
    let denial = |setting: &str, value: &str, by: &str, message: String| Denial {
        setting: setting.into(),
        value: value.into(),
        by: by.into(),
        message,
    };
    assert_eq!(
        effective.denials,
        [
            denial(
                "grantTypes",
                "password",
                &by_default,
                format!("the password grant is not allowed in namespace {evil}")
            ),
            denial(
                "audience",
                PAYMENTS,
                &by_product,
                format!("audience {PAYMENTS} is published by {by_product}, which does not admit this client")
            ),
            denial(
                "scopes",
                "payments.admin",
                &by_product,
                format!(
                    "scope payments.admin is published by {by_product}, which does not admit this client"
                )
            ),
            denial(
                "firstParty",
                "true",
                &by_default,
                format!(
                    "first-party clients (which skip the consent page) are not allowed in namespace {evil}"
                )
            ),
        ]
    );
    assert_eq!(
        effective.grant_types,
        [gatehouse_crds::GrantType::ClientCredentials]
    );
    assert!(effective.audience.is_empty() && effective.scopes.is_empty() && !effective.first_party);

    // The real token: aud is the thief's own client_id, no payments scope, no password grant.
    let (thief_id, thief_secret) = credentials(&w, &evil, "thief-oauth").await;
    let claims = own_audience_token(&w, &thief_id, &thief_secret).await;
    assert_eq!(claims.get("scope"), None, "no scope granted: {claims}");
    let (status, body) = token_with(
        &w,
        &thief_id,
        &thief_secret,
        &[("grant_type", "client_credentials"), ("scope", "payments.admin")],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope")),
        "{body}"
    );
    let (status, body) = token_with(
        &w,
        &thief_id,
        &thief_secret,
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "wonderland"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unauthorized_client")),
        "{body}"
    );

    // Publishing the audience itself: the ceiling of namespace evil does not allow it.
    let squat = json!({"apiVersion": "gatehouse.dev/v1alpha1", "kind": "OAuthPolicy",
        "metadata": {"name": "squat"},
        "spec": {"audience": [PAYMENTS], "scopes": [{"name": "payments.admin"}]}});
    apply_as(&evil_team, &evil, "mallory", &squat).await.unwrap();
    let effective = effective_when(&w, &evil, "thief", "thief refused by its ceiling", |e| {
        e.denials
            .iter()
            .any(|d| d.setting == "audience" && d.by.starts_with("ClusterOAuthPolicy/"))
    })
    .await;
    let published: Vec<(&str, &str, &str)> = effective
        .denials
        .iter()
        .filter(|d| d.setting == "audience" || d.setting == "scopes")
        .map(|d| (d.setting.as_str(), d.value.as_str(), d.by.as_str()))
        .collect();
    assert_eq!(
        published,
        [
            ("audience", PAYMENTS, by_default.as_str()),
            ("scopes", "payments.admin", by_default.as_str())
        ]
    );
    assert!(effective.audience.is_empty() && effective.scopes.is_empty());
    let policies: Api<OAuthPolicy> = Api::namespaced(w.kube.clone(), &evil);
    let unpublished = eventually("squat's status.denials", TIMEOUT, || async {
        let status = policies.get("squat").await.ok()?.status?;
        (!status.denials.is_empty()).then_some(status.denials)
    })
    .await;
    assert_eq!(
        unpublished
            .iter()
            .map(|d| (d.value.as_str(), d.by.as_str()))
            .collect::<Vec<_>>(),
        [
            (PAYMENTS, by_default.as_str()),
            ("payments.admin", by_default.as_str())
        ]
    );
    let claims = own_audience_token(&w, &thief_id, &thief_secret).await;
    assert_eq!(claims.get("scope"), None, "no scope granted: {claims}");

    // The team's Role reaches neither the ceiling nor the payments team's product.
    let raise = cluster_policy(
        &format!("evil-{evil}"),
        &[&evil],
        json!({"priority": 1000, "allowedGrantTypes": ["password"], "allowFirstParty": true,
               "publishableAudiences": ["*"], "publishableScopes": ["*"]}),
    );
    match Api::<ClusterOAuthPolicy>::all(evil_team.clone())
        .create(&PostParams::default(), &raise)
        .await
    {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 403, "{status:?}"),
        other => panic!("creating a ClusterOAuthPolicy as the team: {other:?}"),
    }
    let mut widened = product.clone();
    widened["spec"]["consumers"] = json!([{"namespaceSelector": {}}]);
    match apply_as(&evil_team, &payments, "mallory", &widened).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 403, "{status:?}"),
        other => panic!("patching the payments product as the team: {other:?}"),
    }
    let labels = json!({"metadata": {"labels": {"team": "payments"}}});
    match Api::<Namespace>::all(evil_team)
        .patch(&evil, &PatchParams::default(), &Patch::Merge(&labels))
        .await
    {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 403, "{status:?}"),
        other => panic!("labelling its namespace as the team: {other:?}"),
    }

    // The consumer is still served, and nothing outside namespace evil changed.
    consumer_is_served(&w, &shop_id, &shop_secret).await;
    assert_eq!(secrets_of(&w, &payments).await, before_payments);
    assert_eq!(secrets_of(&w, &shop).await, before_shop);

    for name in [default_name, payments_name] {
        ceilings.delete(&name, &DeleteParams::default()).await.unwrap();
    }
}
