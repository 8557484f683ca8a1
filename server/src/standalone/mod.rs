//! Standalone mode: `--clients-dir DIR` serves the same YAML a cluster would hold, without one.
//!
//! Every `*.yaml` / `*.yml` file in DIR may hold several documents: `OAuthClient`, `OAuthPolicy` and
//! `ClusterOAuthPolicy` (gatehouse.dev/v1alpha1) and v1 `Secret`s with the client secrets. Each client
//! is resolved against the policies and ceilings by [`gatehouse_crds::resolve`], the function the
//! operator uses (with no namespace labels: a directory has no Namespace objects, so only
//! ClusterOAuthPolicies without a `namespaceSelector`, or with one that matches no label, apply), and
//! becomes a [`ClientRegistration`]. Without a ClusterOAuthPolicy the built-in ceiling applies, as in a
//! cluster: no password, implicit or first-party, and nothing publishable. Like the operator, the loader generates a Secret for a confidential client
//! that has none and writes it next to the manifests as `<secretName>.secret.yaml`, once: the next start
//! reads it back. A client with `existingSecretRef` whose Secret is missing is an error.

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use gatehouse_crds::admin::{ClientRegistration, SecretDigest, check_client_id, secret_digest};
use gatehouse_crds::credentials::{Credentials, KeyNames};
use gatehouse_crds::{Cluster, ClusterOAuthPolicy, OAuthClient, OAuthPolicy, resolve};
use serde::Deserialize;
use serde_json::json;

use crate::{Error, Result, token};

/// The `source` prefix of registrations made from a clients directory.
pub const SOURCE_PREFIX: &str = "clients-dir:";

/// What a directory held.
#[derive(Debug, Default)]
pub struct Loaded {
    /// One registration per OAuthClient.
    pub registrations: Vec<ClientRegistration>,
    /// Secret files written for clients that had none.
    pub generated: Vec<PathBuf>,
}

#[derive(Deserialize)]
struct SecretManifest {
    metadata: SecretMeta,
    #[serde(default)]
    data: BTreeMap<String, String>,
    #[serde(default, rename = "stringData")]
    string_data: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct SecretMeta {
    name: String,
    #[serde(default)]
    namespace: Option<String>,
}

struct Secret {
    path: PathBuf,
    values: BTreeMap<String, String>,
}

fn manifest_error(path: &Path, message: impl Into<String>) -> Error {
    Error::Manifest {
        path: path.to_owned(),
        message: message.into(),
    }
}

fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Io {
        path: dir.to_owned(),
        source,
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|source| Error::Io {
                path: dir.to_owned(),
                source,
            })?
            .path();
        let yaml = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e == "yaml" || e == "yml");
        if yaml && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Loads, resolves and validates every client in `dir`, generating missing Secrets.
pub fn load_dir(dir: &Path, issuer: &str) -> Result<Loaded> {
    let mut clients: Vec<(PathBuf, OAuthClient)> = Vec::new();
    let mut policies: Vec<OAuthPolicy> = Vec::new();
    let mut cluster_policies: Vec<ClusterOAuthPolicy> = Vec::new();
    let mut secrets: HashMap<(String, String), Secret> = HashMap::new();

    for path in yaml_files(dir)? {
        let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        for (index, document) in serde_yaml::Deserializer::from_str(&text).enumerate() {
            let number = index + 1;
            let value = serde_yaml::Value::deserialize(document)
                .map_err(|e| manifest_error(&path, format!("document {number}: not YAML: {e}")))?;
            if value.is_null() {
                continue;
            }
            let kind = value
                .get("kind")
                .and_then(|k| k.as_str())
                .unwrap_or_default()
                .to_owned();
            let api_version = value
                .get("apiVersion")
                .and_then(|k| k.as_str())
                .unwrap_or_default()
                .to_owned();
            let field_error = |e: serde_path_to_error::Error<serde_yaml::Error>| {
                manifest_error(
                    &path,
                    format!("document {number} ({kind}): {}: {}", e.path(), e.inner()),
                )
            };
            match (api_version.as_str(), kind.as_str()) {
                ("gatehouse.dev/v1alpha1", "OAuthClient") => {
                    let mut client: OAuthClient =
                        serde_path_to_error::deserialize(value).map_err(field_error)?;
                    if client.metadata.name.as_deref().unwrap_or_default().is_empty() {
                        return Err(manifest_error(
                            &path,
                            format!("document {number} (OAuthClient): metadata.name: is required"),
                        ));
                    }
                    client
                        .metadata
                        .namespace
                        .get_or_insert_with(|| "default".to_owned());
                    clients.push((path.clone(), client));
                }
                ("gatehouse.dev/v1alpha1", "OAuthPolicy") => {
                    let mut policy: OAuthPolicy =
                        serde_path_to_error::deserialize(value).map_err(field_error)?;
                    policy
                        .metadata
                        .namespace
                        .get_or_insert_with(|| "default".to_owned());
                    policies.push(policy);
                }
                ("gatehouse.dev/v1alpha1", "ClusterOAuthPolicy") => {
                    let policy: ClusterOAuthPolicy =
                        serde_path_to_error::deserialize(value).map_err(field_error)?;
                    cluster_policies.push(policy);
                }
                ("v1", "Secret") => {
                    let secret: SecretManifest =
                        serde_path_to_error::deserialize(value).map_err(field_error)?;
                    let mut values = secret.string_data;
                    for (key, encoded) in secret.data {
                        let compact: String = encoded.split_whitespace().collect();
                        let decoded = STANDARD
                            .decode(compact)
                            .ok()
                            .and_then(|b| String::from_utf8(b).ok())
                            .ok_or_else(|| {
                                manifest_error(
                                    &path,
                                    format!(
                                        "document {number} (Secret): data.{key}: is not base64 of UTF-8 text"
                                    ),
                                )
                            })?;
                        values.entry(key).or_insert(decoded);
                    }
                    let namespace = secret.metadata.namespace.unwrap_or_else(|| "default".to_owned());
                    secrets.insert(
                        (namespace, secret.metadata.name),
                        Secret {
                            path: path.clone(),
                            values,
                        },
                    );
                }
                _ => {
                    tracing::warn!(file = %path.display(), document = number, %api_version, %kind, "ignoring a document that is not an OAuthClient, OAuthPolicy, ClusterOAuthPolicy or Secret");
                }
            }
        }
    }

    let namespace_labels = Default::default();
    let cluster = Cluster {
        policies: &policies,
        cluster_policies: &cluster_policies,
        namespace_labels: &namespace_labels,
    };
    let mut loaded = Loaded::default();
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    for (path, client) in &clients {
        let registration = register(
            dir,
            path,
            client,
            &cluster,
            &secrets,
            issuer,
            &mut loaded.generated,
        )?;
        if let Some(first) = seen.insert(registration.client_id.clone(), path.clone()) {
            return Err(manifest_error(
                path,
                format!(
                    "client_id {} is also declared in {}",
                    registration.client_id,
                    first.display()
                ),
            ));
        }
        loaded.registrations.push(registration);
    }
    Ok(loaded)
}

fn register(
    dir: &Path,
    path: &Path,
    client: &OAuthClient,
    cluster: &Cluster<'_>,
    secrets: &HashMap<(String, String), Secret>,
    issuer: &str,
    generated: &mut Vec<PathBuf>,
) -> Result<ClientRegistration> {
    let name = client.metadata.name.clone().unwrap_or_default();
    let namespace = client.metadata.namespace.clone().unwrap_or_default();
    let what = format!("OAuthClient {namespace}/{name}");
    let resolution = resolve(client, cluster).map_err(|e| manifest_error(path, format!("{what}: {e}")))?;
    let spec = &client.spec;
    let client_id = client.client_id();
    // Before anything is generated for it: a client_id outside the CRD's pattern gets no Secret file.
    check_client_id(&client_id)
        .map_err(|why| manifest_error(path, format!("{what}: spec.clientId: {why}")))?;
    let source = format!("{SOURCE_PREFIX}{namespace}/{name}");
    let mut registration = ClientRegistration::of(client, &resolution, source, Vec::new());
    // A directory is not a cluster: its registrations belong to whoever runs the server, even if a
    // manifest carries a uid.
    registration.owner = None;
    if !spec.is_public() {
        let keys = KeyNames::of(client);
        let (secret_key, previous_key) = (&keys.client_secret, &keys.previous_client_secret);
        let secret_name = client.secret_name();
        match secrets.get(&(namespace.clone(), secret_name.clone())) {
            Some(secret) => {
                let current = secret.values.get(secret_key).ok_or_else(|| {
                    manifest_error(
                        &secret.path,
                        format!("Secret {namespace}/{secret_name}: has no key {secret_key} for {what}"),
                    )
                })?;
                registration.secrets.push(SecretDigest {
                    sha256: secret_digest(current),
                    expires_at: None,
                });
                if let Some(previous) = secret.values.get(previous_key) {
                    registration.secrets.push(SecretDigest {
                        sha256: secret_digest(previous),
                        expires_at: None,
                    });
                }
            }
            None if spec.existing_secret_ref.is_some() => {
                return Err(manifest_error(
                    path,
                    format!(
                        "{what}: spec.existingSecretRef: Secret {namespace}/{secret_name} is not in {}",
                        dir.display()
                    ),
                ));
            }
            None => {
                let secret = token::random();
                let file = write_secret(dir, client, &registration, &keys, &secret_name, &secret, issuer)?;
                tracing::info!(client_id = %client_id, file = %file.display(), "generated a client secret");
                generated.push(file);
                registration.secrets.push(SecretDigest {
                    sha256: secret_digest(&secret),
                    expires_at: None,
                });
            }
        }
    }
    registration
        .validate()
        .map_err(|e| manifest_error(path, format!("{what}: {e}")))?;
    Ok(registration)
}

fn write_secret(
    dir: &Path,
    client: &OAuthClient,
    registration: &ClientRegistration,
    keys: &KeyNames,
    secret_name: &str,
    secret: &str,
    issuer: &str,
) -> Result<PathBuf> {
    let template = client.spec.secret.clone().unwrap_or_default();
    let mut labels = template.labels.clone();
    labels.insert(
        "app.kubernetes.io/managed-by".to_owned(),
        "gatehouse-server".to_owned(),
    );
    let data = keys.data(&Credentials {
        client_id: &registration.client_id,
        secret: Some(secret),
        previous: None,
        issuer,
        scopes: &registration.effective.default_scopes,
    });
    let mut manifest = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": secret_name,
            "namespace": client.metadata.namespace,
            "labels": labels,
        },
        "type": "Opaque",
        "stringData": data,
    });
    if !template.annotations.is_empty() {
        manifest["metadata"]["annotations"] = json!(template.annotations);
    }
    let path = dir.join(format!("{secret_name}.secret.yaml"));
    let yaml = serde_yaml::to_string(&manifest).map_err(|source| Error::RenderSecret {
        path: path.clone(),
        source,
    })?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let io_error = |source| Error::Io {
        path: path.clone(),
        source,
    };
    let mut file = options.open(&path).map_err(io_error)?;
    let header = format!(
        "# Generated by gatehouse-server for OAuthClient {}/{}. It holds a secret: keep it out of version control.\n",
        client.metadata.namespace.as_deref().unwrap_or_default(),
        client.metadata.name.as_deref().unwrap_or_default(),
    );
    file.write_all(header.as_bytes()).map_err(io_error)?;
    file.write_all(yaml.as_bytes()).map_err(io_error)?;
    file.sync_all().map_err(io_error)?;
    Ok(path)
}

#[cfg(test)]
mod tests;
