//! OAuth clients as the server knows them: the in-memory registry of registrations ([`registry`]),
//! who may replace or delete a registration ([`ownership`]), and client authentication at the token,
//! introspection and revocation endpoints ([`auth`]).

pub mod auth;
pub mod ownership;
pub mod registry;

pub use auth::{AuthenticatedClient, Presented, authenticate, presented};
pub use registry::ClientCache;
