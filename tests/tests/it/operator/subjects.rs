//! Subject confusion (issue 13, RFC 9700 §4.15), as a team meets it: the platform team created a user
//! whose username happens to be a client_id the team may declare. The team's client gets a
//! client_credentials token and presents it at `/userinfo`: the server answers `401 invalid_token` and
//! gives away none of the user's claims, because a user's `sub` is an opaque `user:<32 hex>` that no
//! client_id can equal.

use gatehouse_crds::OAuthClient;
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use serde_json::{Value, json};

use super::{World, client_manifest};

#[tokio::test]
async fn a_teams_client_named_like_a_user_reads_nothing_of_that_user_at_userinfo() {
    let mut w = World::new("op-sub").await;
    let evil_ns = w.cp.namespace("op-sub-evil").await.unwrap();
    w.start_operator_watching(false, &[w.ns.clone(), evil_ns.clone()])
        .await;
    w.start_server().await;

    // The platform team's user, named exactly like a client_id of the evil namespace.
    let username = format!("reports.{evil_ns}");
    let admin = format!("http://127.0.0.1:{}/admin/v1/users", w.admin_port);
    let created = w
        .http
        .post(&admin)
        .bearer_auth(&w.admin_token)
        .json(&json!({
            "username": username,
            "password": "correct horse battery staple",
            "name": "Victim Person",
            "email": "victim@example.com",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let user: Value = created.json().await.unwrap();
    let subject = user["subject"].as_str().unwrap().to_owned();
    assert!(subject.starts_with("user:"), "{user}");

    // The team, holding only a namespaced Role, declares that client_id (its own namespace's).
    let team = w.cp.team_client(&evil_ns, "mallory").await.unwrap();
    let api: Api<OAuthClient> = Api::namespaced(team, &evil_ns);
    let manifest = client_manifest(
        "reports",
        json!({"grantTypes": ["client_credentials"], "scopes": ["openid", "profile", "email"]}),
    );
    api.patch(
        "reports",
        &PatchParams::apply("mallory"),
        &Patch::Apply(&manifest),
    )
    .await
    .unwrap();
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(w.kube.clone(), &evil_ns);
    let data = super::eventually("the team's Secret", super::TIMEOUT, || async {
        secrets.get_opt("reports-oauth").await.ok()??.data
    })
    .await;
    let text = |k: &str| String::from_utf8(data[k].0.clone()).unwrap();
    assert_eq!(text("client_id"), username);
    let body = w.wait_token(&username, &text("client_secret"), 200).await;
    let token = body["access_token"].as_str().unwrap();

    let response = w
        .http
        .get(format!("{}/userinfo", w.issuer()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.contains(r#"error="invalid_token""#), "{challenge}");
    let body = response.text().await.unwrap();
    for secret_of_the_user in ["victim@example.com", "Victim Person", subject.as_str()] {
        assert!(!body.contains(secret_of_the_user), "{body}");
    }
}
