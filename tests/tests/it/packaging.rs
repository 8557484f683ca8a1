//! What a platform team installs: the Helm chart (linted, schema-checked, rendered output accepted by
//! the real API server, installable) and the container images' Containerfiles.

use std::path::Path;

use gatehouse_tests::{ControlPlane, repo_root, run_helm};
use kube::{
    Api,
    api::{DynamicObject, GroupVersionKind, Patch, PatchParams},
    discovery::{Discovery, Scope},
};
use serde_json::Value;

const CHART: &str = "charts/gatehouse";

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_chart_carries_exactly_the_generated_crds() {
    for file in [
        "oauthclients.yaml",
        "oauthpolicies.yaml",
        "clusteroauthpolicies.yaml",
    ] {
        let generated = std::fs::read(repo_root().join("crds/manifests").join(file)).unwrap();
        let charted = std::fs::read(repo_root().join(CHART).join("crds").join(file)).unwrap();
        assert!(
            generated == charted,
            "{CHART}/crds/{file} differs from crds/manifests/{file}; copy it over"
        );
    }
}

#[test]
fn helm_lint_is_clean() {
    let out = run_helm(&["lint", "--strict", CHART]);
    assert!(out.status.success(), "helm lint failed:\n{}", text(&out));
    assert!(
        text(&out).contains("1 chart(s) linted, 0 chart(s) failed"),
        "{}",
        text(&out)
    );
}

#[test]
fn the_values_schema_rejects_an_unknown_database_with_a_clear_message() {
    let out = run_helm(&["template", "gh", CHART, "--set", "server.database.type=mysql"]);
    assert!(!out.status.success());
    let msg = text(&out);
    assert!(msg.contains("/server/database/type"), "{msg}");
    assert!(msg.contains("value must be one of 'sqlite', 'postgres'"), "{msg}");
}

#[test]
fn the_values_schema_rejects_several_replicas_on_sqlite() {
    let out = run_helm(&["template", "gh", CHART, "--set", "server.replicas=3"]);
    assert!(!out.status.success());
    let msg = text(&out);
    assert!(msg.contains("/server/replicas"), "{msg}");
    assert!(msg.contains("maximum: got 3, want 1"), "{msg}");
}

#[test]
fn the_values_schema_requires_a_secret_for_postgres() {
    let out = run_helm(&["template", "gh", CHART, "--set", "server.database.type=postgres"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("/server/database/postgres"), "{}", text(&out));
    let ok = run_helm(&[
        "template",
        "gh",
        CHART,
        "--set",
        "server.database.type=postgres,server.database.postgres.existingSecret=pg,server.replicas=3",
    ]);
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("GATEHOUSE_OPERATOR_POSTGRES_SECRET"));
}

#[test]
fn the_values_schema_rejects_a_malformed_duration() {
    let out = run_helm(&["template", "gh", CHART, "--set", "operator.resyncInterval=often"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("/operator/resyncInterval"), "{}", text(&out));
}

#[test]
fn operator_concurrency_reaches_the_operator_and_zero_is_rejected() {
    let out = run_helm(&["template", "gh", CHART, "--set", "operator.concurrency=0"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("/operator/concurrency"), "{}", text(&out));
    let docs = render("gh", "auth", &["--set", "operator.concurrency=32"]);
    let deployment = docs
        .iter()
        .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == "gh-operator")
        .expect("the operator Deployment");
    let env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap();
    let value = env
        .iter()
        .find(|e| e["name"] == "GATEHOUSE_OPERATOR_CONCURRENCY")
        .map(|e| e["value"].clone());
    assert_eq!(value, Some(Value::from("32")));
}

/// Renders the chart into `namespace` and parses the documents.
fn render(release: &str, namespace: &str, extra: &[&str]) -> Vec<Value> {
    let mut args = vec![
        "template",
        release,
        CHART,
        "--namespace",
        namespace,
        "--include-crds",
    ];
    args.extend_from_slice(extra);
    let out = run_helm(&args);
    assert!(out.status.success(), "helm template failed:\n{}", text(&out));
    let yaml = String::from_utf8(out.stdout).unwrap();
    serde_yaml::Deserializer::from_str(&yaml)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

async fn dry_run_apply(cp: &ControlPlane, docs: &[Value]) {
    let client = cp.client().unwrap();
    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    for doc in docs {
        let api_version = doc["apiVersion"].as_str().unwrap();
        let kind = doc["kind"].as_str().unwrap();
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let (ar, caps) = discovery
            .resolve_gvk(&gvk)
            .unwrap_or_else(|| panic!("the API server does not serve {gvk:?}"));
        let obj: DynamicObject = serde_json::from_value(doc.clone()).unwrap();
        let name = obj.metadata.name.clone().unwrap();
        let api: Api<DynamicObject> = match caps.scope {
            Scope::Namespaced => {
                Api::namespaced_with(client.clone(), obj.metadata.namespace.as_deref().unwrap(), &ar)
            }
            Scope::Cluster => Api::all_with(client.clone(), &ar),
        };
        api.patch(
            &name,
            &PatchParams::apply("gatehouse-tests").dry_run().force(),
            &Patch::Apply(&obj),
        )
        .await
        .unwrap_or_else(|e| panic!("{kind}/{name} was refused: {e}"));
    }
}

#[tokio::test]
async fn helm_template_output_is_accepted_by_the_api_server() {
    let cp = ControlPlane::shared().await.unwrap();
    let ns = cp.namespace("chart").await.unwrap();
    let docs = render("gh", &ns, &[]);
    let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    for kind in [
        "ClusterOAuthPolicy",
        "CustomResourceDefinition",
        "ServiceAccount",
        "ClusterRole",
        "Role",
        "Deployment",
        "Service",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    ] {
        assert!(kinds.contains(&kind), "the chart renders no {kind}: {kinds:?}");
    }
    dry_run_apply(&cp, &docs).await;

    // The admission policy can be left out (the operator enforces the same rule).
    let without = render("gh", &ns, &["--set", "admission.clientIdOwnership=false"]);
    assert!(
        !without.iter().any(|d| d["kind"]
            .as_str()
            .is_some_and(|k| k.starts_with("ValidatingAdmissionPolicy"))),
        "admission.clientIdOwnership=false still renders an admission policy"
    );

    // Scoped to namespaces, the chart renders Roles there instead of a ClusterRole.
    let scoped = render("gh", &ns, &["--set", "operator.watchNamespaces={team-a,team-b}"]);
    let roles: Vec<&str> = scoped
        .iter()
        .filter(|d| d["kind"] == "Role")
        .filter_map(|d| d["metadata"]["namespace"].as_str())
        .collect();
    assert!(
        roles.contains(&"team-a") && roles.contains(&"team-b"),
        "{roles:?}"
    );
    // The one ClusterRole left covers only what is cluster-scoped.
    let cluster_roles: Vec<&Value> = scoped.iter().filter(|d| d["kind"] == "ClusterRole").collect();
    assert_eq!(cluster_roles.len(), 1, "{cluster_roles:?}");
    let mut resources: Vec<&str> = cluster_roles[0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["resources"].as_array().unwrap())
        .filter_map(Value::as_str)
        .collect();
    resources.sort_unstable();
    assert_eq!(
        resources,
        [
            "clusteroauthpolicies",
            "clusteroauthpolicies/status",
            "namespaces"
        ]
    );
}

#[tokio::test]
async fn helm_install_creates_the_operator_objects_with_a_hardened_pod() {
    let cp = ControlPlane::shared().await.unwrap();
    let ns = cp.namespace("install").await.unwrap();
    let release = format!("gh-{}", gatehouse_tests::suffix());
    let kubeconfig = cp.kubeconfig_path();
    // The control plane is shared: the default ClusterOAuthPolicy selects only this test's namespace.
    let only_here =
        format!("clusterPolicy.namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name={ns}");
    let out = run_helm(&[
        "install",
        &release,
        CHART,
        "--namespace",
        &ns,
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--set",
        &only_here,
    ]);
    assert!(out.status.success(), "helm install failed:\n{}", text(&out));
    assert!(
        text(&out).contains("kubectl get oauthclients"),
        "NOTES.txt should tell the next step"
    );

    let client = cp.client().unwrap();
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> = Api::namespaced(client.clone(), &ns);
    let operator = deployments.get(&format!("{release}-operator")).await.unwrap();
    let spec = operator.spec.unwrap();
    assert_eq!(spec.replicas, Some(2));
    let pod = spec.template.spec.unwrap();
    assert_eq!(pod.security_context.as_ref().unwrap().run_as_non_root, Some(true));
    let container = &pod.containers[0];
    let sc = container.security_context.as_ref().unwrap();
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    let env: Vec<&str> = container.env.iter().flatten().map(|e| e.name.as_str()).collect();
    assert!(env.contains(&"GATEHOUSE_OPERATOR_LEADER_ELECTION"));
    assert!(container.liveness_probe.is_some() && container.readiness_probe.is_some());

    let sa: Api<k8s_openapi::api::core::v1::ServiceAccount> = Api::namespaced(client.clone(), &ns);
    sa.get(&format!("{release}-operator")).await.unwrap();
    let roles: Api<k8s_openapi::api::rbac::v1::ClusterRole> = Api::all(client.clone());
    let role = roles.get(&format!("{release}-operator")).await.unwrap();
    let secret_rule = role
        .rules
        .iter()
        .flatten()
        .find(|r| r.resources.iter().flatten().any(|x| x == "secrets"))
        .expect("a rule for secrets");
    assert!(
        !secret_rule.verbs.iter().any(|v| v == "delete" || v == "*"),
        "no delete on secrets: {secret_rule:?}"
    );

    let ceilings: Api<gatehouse_crds::ClusterOAuthPolicy> = Api::all(client.clone());
    let default = ceilings.get(&format!("{release}-default")).await.unwrap();
    assert_eq!(
        default.spec.allowed_grant_types,
        Some(gatehouse_crds::cluster_policy::BUILT_IN_GRANT_TYPES.to_vec()),
        "the default ceiling allows no more grants than the built-in one"
    );
    assert_eq!(default.spec.allow_first_party, Some(false));
    assert_eq!(default.spec.publishable_audiences, Some(vec![]));

    let uninstall = run_helm(&[
        "uninstall",
        &release,
        "--namespace",
        &ns,
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
    ]);
    assert!(uninstall.status.success(), "{}", text(&uninstall));
}

/// The images can't be built here (no container engine), so check what they reference exists.
#[test]
fn the_containerfiles_reference_binaries_and_paths_that_exist() {
    let root = repo_root();
    for (file, package) in [
        ("server/Containerfile", "gatehouse-server"),
        ("operator/Containerfile", "gatehouse-operator"),
    ] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let mut copied_binary = None;
        for line in text.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("COPY ") {
                let parts: Vec<&str> = rest.split_whitespace().collect();
                if parts[0].starts_with("--from=") {
                    copied_binary = Some(parts[1].rsplit('/').next().unwrap().to_owned());
                } else {
                    for src in &parts[..parts.len() - 1] {
                        assert!(
                            root.join(src).exists(),
                            "{file}: COPY source {src} does not exist"
                        );
                    }
                }
            }
            if line.starts_with("RUN cargo build") {
                assert!(
                    line.contains(&format!("-p {package}")),
                    "{file} builds the wrong package: {line}"
                );
                assert!(
                    line.contains(&format!("--bin {package}")),
                    "{file} builds the wrong binary: {line}"
                );
            }
        }
        assert_eq!(
            copied_binary.as_deref(),
            Some(package),
            "{file} copies the wrong binary"
        );
        let manifest = std::fs::read_to_string(
            root.join(package.trim_start_matches("gatehouse-"))
                .join("Cargo.toml"),
        )
        .unwrap();
        assert!(
            manifest.contains(&format!("name = \"{package}\"")),
            "{file}: no package {package}"
        );
        assert!(
            Path::new(
                &root
                    .join(package.trim_start_matches("gatehouse-"))
                    .join("src/main.rs")
            )
            .exists()
        );
        assert!(
            text.contains("USER 65532:65532") && text.contains(":nonroot"),
            "{file} must run as non-root"
        );
    }
}
