//! The client_id rule of [`gatehouse_crds::ownership`], applied by the operator as well as at admission:
//! a client whose client_id its namespace does not own gets no Secret and no registration, and any
//! registration it held (the Namespace's allowance was withdrawn) is removed. The removal names the
//! client as owner, so the token server never removes another namespace's registration of that id.

use gatehouse_crds::{OAuthClient, ownership};
use k8s_openapi::api::core::v1::Namespace;
use kube::{Api, ResourceExt as _};
use tracing::warn;

use crate::{Context, Error, Result};

/// Why `client`'s namespace may not hold its client_id, or `None` when it may. The Namespace is read
/// only for a client_id that does not end in `.<namespace>`.
pub async fn refusal(ctx: &Context, client: &OAuthClient) -> Result<Option<String>> {
    let ns = client.namespace().unwrap_or_default();
    let client_id = client.client_id();
    if ownership::client_id_allowed(&client_id, &ns, None) {
        return Ok(None);
    }
    let namespace = Api::<Namespace>::all(ctx.client.clone())
        .get_opt(&ns)
        .await
        .map_err(Error::ReadNamespace)?;
    let allowance = namespace
        .as_ref()
        .and_then(|n| n.annotations().get(ownership::CLIENT_IDS_ANNOTATION).cloned());
    if ownership::client_id_allowed(&client_id, &ns, allowance.as_deref()) {
        return Ok(None);
    }
    // Whatever this client registered while the allowance lasted goes; the server keeps another
    // owner's registration of the id. A server that cannot be reached is retried at the next resync.
    if let Err(e) = super::delete(ctx, client, &client_id).await {
        warn!(client_id, error = %e, "could not remove the registration of a refused client_id");
    }
    Ok(Some(ownership::refusal(&client_id, &ns)))
}
