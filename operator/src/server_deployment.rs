//! The bundled token server: its ConfigMap, Deployment, Service, data volume, and the admin-token and
//! key-encryption-key Secrets, in the operator's namespace.
//!
//! Rendering is pure ([`render`]). [`run`] applies the rendered objects with server-side apply, creates
//! the two Secrets once (never overwriting them), and applies again whenever one of the objects changes
//! or disappears, and at every resync.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use futures::{StreamExt as _, stream::BoxStream};
use k8s_openapi::{
    ByteString,
    api::{
        apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy},
        core::v1::{
            Capabilities, ConfigMap, ConfigMapEnvSource, Container, ContainerPort, EnvFromSource, EnvVar,
            EnvVarSource, HTTPGetAction, PersistentVolumeClaim, PersistentVolumeClaimSpec,
            PersistentVolumeClaimVolumeSource, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
            SecretKeySelector, SecretVolumeSource, SecurityContext, Service, ServicePort, ServiceSpec,
            Volume, VolumeMount, VolumeResourceRequirements,
        },
    },
    apimachinery::pkg::{
        api::resource::Quantity,
        apis::meta::v1::{LabelSelector, ObjectMeta},
        util::intstr::IntOrString,
    },
};
use kube::{
    Api, Resource,
    api::{PartialObjectMeta, Patch, PatchParams, PostParams},
    runtime::{WatchStreamExt as _, watcher},
};
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use tracing::{info, warn};

use crate::{Context, Error, MANAGER, Result};

/// Name of the Deployment, Service and ConfigMap.
pub const SERVER_NAME: &str = "gatehouse-server";
/// The Secret holding the admin API's bearer token.
pub const ADMIN_TOKEN_SECRET: &str = "gatehouse-server-admin-token";
/// Key of the admin token.
pub const ADMIN_TOKEN_KEY: &str = "token";
/// The Secret holding the key that encrypts signing keys at rest.
pub const KEK_SECRET: &str = "gatehouse-server-kek";
/// Key of the key-encryption key.
pub const KEK_KEY: &str = "key";
/// The SQLite data volume.
pub const DATA_PVC: &str = "gatehouse-server-data";
/// Pod-template annotation holding the hash of the server's configuration; a change rolls the pods.
pub const CONFIG_HASH: &str = "gatehouse.dev/config-hash";
/// Public port.
pub const PUBLIC_PORT: i32 = 8080;
/// Admin port.
pub const ADMIN_PORT: i32 = 8081;

const DATA_DIR: &str = "/var/lib/gatehouse";
const ADMIN_TOKEN_DIR: &str = "/etc/gatehouse/admin-token";
const KEK_DIR: &str = "/etc/gatehouse/kek";

/// The token server's database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Database {
    /// SQLite on a PersistentVolumeClaim; one replica.
    Sqlite,
    /// PostgreSQL from a Secret's `url`; any number of replicas.
    Postgres,
}

/// How the bundled token server is deployed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// Container image.
    pub image: String,
    /// Replicas (forced to 1 with SQLite).
    pub replicas: i32,
    /// Database backend.
    pub database: Database,
    /// With PostgreSQL: the Secret whose `url` key holds the connection URL.
    pub postgres_secret: Option<String>,
    /// Issuer URL.
    pub issuer: String,
    /// JWT signing algorithm.
    pub signing_alg: String,
    /// Signing-key rotation period.
    pub key_rotation_period: String,
}

/// The objects of the bundled server, as applied.
#[derive(Clone, Debug, PartialEq)]
pub struct Rendered {
    /// The server's environment.
    pub config_map: ConfigMap,
    /// The server itself.
    pub deployment: Deployment,
    /// Its public and admin ports.
    pub service: Service,
    /// The SQLite volume, with SQLite only.
    pub data: Option<PersistentVolumeClaim>,
}

fn labels() -> BTreeMap<String, String> {
    [
        ("app.kubernetes.io/name", SERVER_NAME),
        ("app.kubernetes.io/part-of", "gatehouse"),
        ("app.kubernetes.io/managed-by", MANAGER),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn selector() -> BTreeMap<String, String> {
    [("app.kubernetes.io/name".to_owned(), SERVER_NAME.to_owned())].into()
}

fn meta(name: &str, namespace: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(namespace.to_owned()),
        labels: Some(labels()),
        ..Default::default()
    }
}

/// Renders every object of the bundled server for `config` in `namespace`. Pure.
pub fn render(config: &ServerConfig, namespace: &str) -> Rendered {
    let mut env: BTreeMap<String, String> = [
        ("GATEHOUSE_LISTEN", format!("0.0.0.0:{PUBLIC_PORT}")),
        ("GATEHOUSE_ADMIN_LISTEN", format!("0.0.0.0:{ADMIN_PORT}")),
        ("GATEHOUSE_ISSUER", config.issuer.clone()),
        ("GATEHOUSE_SIGNING_ALG", config.signing_alg.clone()),
        (
            "GATEHOUSE_KEY_ROTATION_PERIOD",
            config.key_rotation_period.clone(),
        ),
        (
            "GATEHOUSE_ADMIN_TOKEN_FILE",
            format!("{ADMIN_TOKEN_DIR}/{ADMIN_TOKEN_KEY}"),
        ),
        (
            "GATEHOUSE_KEY_ENCRYPTION_KEY_FILE",
            format!("{KEK_DIR}/{KEK_KEY}"),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if config.database == Database::Sqlite {
        env.insert(
            "GATEHOUSE_DATABASE_URL".into(),
            format!("sqlite://{DATA_DIR}/gatehouse.db?mode=rwc"),
        );
    }
    let config_map = ConfigMap {
        metadata: meta(SERVER_NAME, namespace),
        data: Some(env.clone()),
        ..Default::default()
    };

    let hash = config_hash(&env, config);
    let sqlite = config.database == Database::Sqlite;
    let replicas = if sqlite { 1 } else { config.replicas.max(1) };

    let mut volumes = vec![
        secret_volume("admin-token", ADMIN_TOKEN_SECRET),
        secret_volume("kek", KEK_SECRET),
    ];
    let mut mounts = vec![
        mount("admin-token", ADMIN_TOKEN_DIR, true),
        mount("kek", KEK_DIR, true),
    ];
    let mut extra_env = Vec::new();
    if sqlite {
        volumes.push(Volume {
            name: "data".into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: DATA_PVC.into(),
                read_only: None,
            }),
            ..Default::default()
        });
        mounts.push(mount("data", DATA_DIR, false));
    } else if let Some(secret) = &config.postgres_secret {
        extra_env.push(EnvVar {
            name: "GATEHOUSE_DATABASE_URL".into(),
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: secret.clone(),
                    key: "url".into(),
                    optional: Some(false),
                }),
                ..Default::default()
            }),
            ..Default::default()
        });
    }

    let probe = |path: &str| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::String("public".into()),
            ..Default::default()
        }),
        period_seconds: Some(10),
        ..Default::default()
    };
    let container = Container {
        name: "server".into(),
        image: Some(config.image.clone()),
        env_from: Some(vec![EnvFromSource {
            config_map_ref: Some(ConfigMapEnvSource {
                name: SERVER_NAME.into(),
                optional: Some(false),
            }),
            ..Default::default()
        }]),
        env: (!extra_env.is_empty()).then_some(extra_env),
        ports: Some(vec![
            ContainerPort {
                name: Some("public".into()),
                container_port: PUBLIC_PORT,
                protocol: Some("TCP".into()),
                ..Default::default()
            },
            ContainerPort {
                name: Some("admin".into()),
                container_port: ADMIN_PORT,
                protocol: Some("TCP".into()),
                ..Default::default()
            },
        ]),
        readiness_probe: Some(probe("/readyz")),
        liveness_probe: Some(probe("/healthz")),
        volume_mounts: Some(mounts),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                add: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut template_labels = labels();
    template_labels.extend(selector());
    let deployment = Deployment {
        metadata: meta(SERVER_NAME, namespace),
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some(selector()),
                match_expressions: None,
            },
            // One SQLite writer at a time: the old pod must release the volume first.
            strategy: sqlite.then(|| DeploymentStrategy {
                type_: Some("Recreate".into()),
                rolling_update: None,
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(template_labels),
                    annotations: Some([(CONFIG_HASH.to_owned(), hash)].into()),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    volumes: Some(volumes),
                    automount_service_account_token: Some(false),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(65532),
                        fs_group: Some(65532),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    };
    let service = Service {
        metadata: meta(SERVER_NAME, namespace),
        spec: Some(ServiceSpec {
            selector: Some(selector()),
            ports: Some(vec![
                ServicePort {
                    name: Some("public".into()),
                    port: PUBLIC_PORT,
                    target_port: Some(IntOrString::String("public".into())),
                    protocol: Some("TCP".into()),
                    ..Default::default()
                },
                ServicePort {
                    name: Some("admin".into()),
                    port: ADMIN_PORT,
                    target_port: Some(IntOrString::String("admin".into())),
                    protocol: Some("TCP".into()),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let data = sqlite.then(|| PersistentVolumeClaim {
        metadata: meta(DATA_PVC, namespace),
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            resources: Some(VolumeResourceRequirements {
                requests: Some([("storage".to_owned(), Quantity("1Gi".into()))].into()),
                limits: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    });
    Rendered {
        config_map,
        deployment,
        service,
        data,
    }
}

/// Hash of everything that needs a restart of the server when it changes.
fn config_hash(env: &BTreeMap<String, String>, config: &ServerConfig) -> String {
    let mut h = Sha256::new();
    for (k, v) in env {
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.as_bytes());
        h.update([0]);
    }
    h.update(config.postgres_secret.as_deref().unwrap_or_default().as_bytes());
    hex::encode(&h.finalize()[..16])
}

fn secret_volume(name: &str, secret: &str) -> Volume {
    Volume {
        name: name.into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret.into()),
            default_mode: Some(0o400),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: Some(read_only),
        ..Default::default()
    }
}

/// An Opaque Secret holding `value` under `key`: the admin token or the key-encryption key, each created
/// once with a value of [`gatehouse_crds::random`].
fn opaque_secret(
    name: &str,
    namespace: &str,
    key: &str,
    value: String,
) -> k8s_openapi::api::core::v1::Secret {
    k8s_openapi::api::core::v1::Secret {
        metadata: meta(name, namespace),
        type_: Some("Opaque".into()),
        data: Some([(key.to_owned(), ByteString(value.into_bytes()))].into()),
        ..Default::default()
    }
}

async fn apply<K>(api: &Api<K>, obj: &K, kind: &'static str) -> Result<()>
where
    K: Resource + Serialize + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let name = obj.meta().name.clone().unwrap_or_default();
    api.patch(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(obj))
        .await
        .map(drop)
        .map_err(|source| Error::ApplyServerObject { kind, name, source })
}

/// Creates a Secret unless it exists; an existing Secret is never touched.
async fn create_once(
    api: &Api<k8s_openapi::api::core::v1::Secret>,
    secret: k8s_openapi::api::core::v1::Secret,
) -> Result<()> {
    let name = secret.metadata.name.clone().unwrap_or_default();
    match api
        .create(
            &PostParams {
                field_manager: Some(MANAGER.into()),
                ..Default::default()
            },
            &secret,
        )
        .await
    {
        Ok(_) => {
            info!(secret = %name, "generated");
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(source) => Err(Error::ApplyServerObject {
            kind: "Secret",
            name,
            source,
        }),
    }
}

/// Applies every object of the bundled server once.
pub async fn apply_all(ctx: &Context) -> Result<()> {
    let ns = &ctx.config.namespace;
    let c = &ctx.client;
    let rendered = render(&ctx.config.server, ns);
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(c.clone(), ns);
    create_once(
        &secrets,
        opaque_secret(
            ADMIN_TOKEN_SECRET,
            ns,
            ADMIN_TOKEN_KEY,
            gatehouse_crds::random::token(),
        ),
    )
    .await?;
    create_once(
        &secrets,
        opaque_secret(KEK_SECRET, ns, KEK_KEY, gatehouse_crds::random::key_base64()),
    )
    .await?;
    apply(
        &Api::<ConfigMap>::namespaced(c.clone(), ns),
        &rendered.config_map,
        "ConfigMap",
    )
    .await?;
    if let Some(pvc) = &rendered.data {
        apply(
            &Api::<PersistentVolumeClaim>::namespaced(c.clone(), ns),
            pvc,
            "PersistentVolumeClaim",
        )
        .await?;
    }
    apply(
        &Api::<Service>::namespaced(c.clone(), ns),
        &rendered.service,
        "Service",
    )
    .await?;
    apply(
        &Api::<Deployment>::namespaced(c.clone(), ns),
        &rendered.deployment,
        "Deployment",
    )
    .await?;
    Ok(())
}

fn changes<K>(client: &kube::Client, ns: &str, name: &str) -> BoxStream<'static, ()>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + 'static,
{
    let api: Api<PartialObjectMeta<K>> = Api::namespaced(client.clone(), ns);
    watcher::watcher(
        api,
        watcher::Config::default().fields(&format!("metadata.name={name}")),
    )
    .default_backoff()
    .filter_map(|event| async move {
        match event {
            Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_) | watcher::Event::InitDone) => Some(()),
            Ok(_) => None,
            Err(e) => {
                warn!(error = %e, "watching the token server's objects");
                None
            }
        }
    })
    .boxed()
}

/// Keeps the bundled server's objects applied: at start, whenever one of them changes or is deleted,
/// and at every resync. Runs until cancelled.
pub async fn run(ctx: Arc<Context>) {
    let c = &ctx.client;
    let ns = ctx.config.namespace.as_str();
    let mut streams = vec![
        changes::<ConfigMap>(c, ns, SERVER_NAME),
        changes::<Deployment>(c, ns, SERVER_NAME),
        changes::<Service>(c, ns, SERVER_NAME),
        changes::<k8s_openapi::api::core::v1::Secret>(c, ns, ADMIN_TOKEN_SECRET),
        changes::<k8s_openapi::api::core::v1::Secret>(c, ns, KEK_SECRET),
    ];
    if ctx.config.server.database == Database::Sqlite {
        streams.push(changes::<PersistentVolumeClaim>(c, ns, DATA_PVC));
    }
    let mut events = futures::stream::select_all(streams);
    let mut failures = 0u32;
    loop {
        let _timer = ctx.metrics.reconcile("server");
        let wait = match apply_all(&ctx).await {
            Ok(()) => {
                failures = 0;
                ctx.config.resync_interval
            }
            Err(e) => {
                ctx.metrics.error("server");
                warn!(error = %e, "applying the token server's objects");
                failures = failures.saturating_add(1);
                crate::backoff_delay(failures, ctx.config.max_backoff)
            }
        };
        drop(_timer);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            Some(()) = events.next() => {
                // Coalesce a burst (our own apply produces several events).
                tokio::time::sleep(Duration::from_millis(200)).await;
                while let Some(Some(())) = futures::FutureExt::now_or_never(events.next()) {}
            }
        }
    }
}

#[cfg(test)]
mod tests;
