//! The `gatehouse.dev/v1alpha1` API, shared by the operator and the token server.
//!
//! - [`OAuthClient`], [`OAuthPolicy`] and [`ClusterOAuthPolicy`] are the custom resources teams write. Their schema,
//!   including the CEL rules the API server enforces, is generated from these types by `crdgen`.
//! - [`resolve`] works out a client's effective settings from its request, the policies and API
//!   products that admit it, and its namespace's ceiling. It is pure,
//!   so the operator and the standalone server enforce exactly the same rules.
//! - [`admin`] holds the documents the operator sends to the server's admin API.
//! - [`ownership`] says which client_ids a namespace may declare.
//! - [`credentials`] is the layout of a client's credentials Secret, which the operator and the
//!   standalone server both write.

pub mod admin;
#[cfg(any(test, feature = "test-builders"))]
mod builders;
pub mod client;
pub mod cluster_policy;
pub mod credentials;
pub mod duration;
pub mod ownership;
pub mod policy;
pub mod random;
pub mod resolve;
pub mod selector;

pub use client::{
    AuthMethod, DeletionPolicy, ExistingSecretRef, GrantType, OAuthClient, OAuthClientSpec,
    OAuthClientStatus, Rotation, SecretKeys, SecretTemplate,
};
pub use cluster_policy::{ClusterOAuthPolicy, ClusterOAuthPolicySpec, ClusterOAuthPolicyStatus};
pub use duration::Duration;
pub use policy::{Consumer, OAuthPolicy, OAuthPolicySpec, OAuthPolicyStatus, ScopeSpec, TokenFormat};
pub use resolve::{AppliedPolicy, Cluster, Denial, EffectiveSettings, resolve};

/// The API group of every Gatehouse resource.
pub const GROUP: &str = "gatehouse.dev";

/// Errors raised while reading Gatehouse documents.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A duration string that is not a positive Go-style duration such as `90s` or `1h30m`.
    #[error("invalid duration {0:?}: expected a positive duration such as 90s, 15m or 1h30m")]
    InvalidDuration(String),
    /// A label selector that cannot be evaluated.
    #[error("invalid label selector: {0}")]
    InvalidSelector(String),
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
