//! The registration step of a client reconcile: the [`ClientRegistration`] built from the client, its
//! resolution and the Secret step's digests goes to the token server's admin API (only when the server
//! holds something else), and the Registered condition comes back. A server that cannot be reached is
//! also returned as an error, so that the reconcile is retried with backoff.

use gatehouse_crds::{OAuthClient, admin::ClientRegistration, resolve::Resolution};
use kube::{Api, ResourceExt as _, runtime::events::EventType};

use super::{events, secret_step::SecretOutcome, status};
use crate::{
    Context, Error, Result,
    admin::AdminError,
    conditions::{self as cond, Desired},
};

/// What the registration step produced.
pub struct Registered {
    /// The Registered condition.
    pub condition: Desired,
    /// The OAuthClient's resourceVersion after the registered-digests annotation was written, if it was.
    pub version: Option<String>,
    /// A transient failure to retry with backoff, after the status is written.
    pub transient: Option<Error>,
}

/// Registers `client` with the secrets of `outcome`, and remembers the digests on the OAuthClient.
pub async fn step(
    ctx: &Context,
    api: &Api<OAuthClient>,
    client: &OAuthClient,
    resolution: &Resolution,
    outcome: &SecretOutcome,
) -> Result<Registered> {
    let source = format!("{}/{}", client.namespace().unwrap_or_default(), client.name_any());
    let registration = ClientRegistration::of(client, resolution, source, outcome.digests.clone());
    let old = status::current_conditions(client);
    let mut done = Registered {
        condition: Desired::ok(
            cond::REGISTERED,
            cond::REASON_RECONCILED,
            format!("registered with {} secret digest(s)", registration.secrets.len()),
        ),
        version: None,
        transient: None,
    };
    match register(ctx, &registration).await {
        Ok(lost) => {
            if lost && cond::is_true(old, cond::REGISTERED) {
                events::publish(
                    ctx,
                    client,
                    EventType::Warning,
                    "Reregistered",
                    "the token server had lost this client's registration; registered it again".into(),
                )
                .await;
            }
            done.version = status::remember(api, client, &outcome.digests).await?;
        }
        Err(AdminError::Conflict(_)) => {
            // The server's description names the holder, in another namespace: not for this status.
            done.condition = Desired::failed(
                cond::REGISTERED,
                cond::REASON_CLIENT_ID_CONFLICT,
                format!(
                    "client_id {} is registered by another OAuthClient; the token server refused this one",
                    registration.client_id
                ),
            );
        }
        Err(AdminError::Rejected {
            status: code,
            message,
        }) => {
            done.condition = Desired::failed(
                cond::REGISTERED,
                cond::REASON_REGISTRATION_FAILED,
                format!("the token server refused the registration ({code}): {message}"),
            );
        }
        Err(e) => {
            done.condition =
                Desired::failed(cond::REGISTERED, cond::REASON_SERVER_UNAVAILABLE, e.to_string());
            done.transient = Some(Error::RegisterClient {
                client_id: registration.client_id,
                source: e,
            });
        }
    }
    Ok(done)
}

/// Registers `registration` unless the server already holds exactly it. Returns whether the server had
/// lost a registration it should have had.
async fn register(ctx: &Context, registration: &ClientRegistration) -> std::result::Result<bool, AdminError> {
    let current = ctx.admin.get(&registration.client_id).await?;
    if current.as_ref() == Some(registration) {
        return Ok(false);
    }
    ctx.admin.put(registration).await?;
    Ok(current.is_none())
}
