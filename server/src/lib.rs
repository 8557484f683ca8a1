//! The Gatehouse token server: an OAuth 2.0 authorization server on axum and sqlx.
//!
//! The modules, from the edge inwards:
//! - [`http`]: the public and admin routers ([`app`], [`admin_app`]) and their handlers, the
//!   authorization endpoint's pages included. Neither router binds anything: tests call them directly,
//!   and [`server::start`] serves them.
//! - [`grant`]: the token endpoint's dispatcher and one module per grant (implicit included).
//! - [`token`]: every token the server issues: claims, the one mint, families of refresh tokens, ID
//!   tokens, and the lookup that introspection and revocation share.
//! - [`client`]: the client registry and client authentication. [`users`]: people and the sign-in
//!   throttle; [`password`]: argon2id hashing on a bounded pool. [`keys`]: signing keys and their
//!   encryption at rest.
//! - [`oauth`]: the protocol's vocabulary, pure: error codes, request parameters, scope and PKCE rules.
//! - [`store`]: the database (SQLite or PostgreSQL). [`state`]: what every handler gets. [`sync`]: the
//!   lock helpers of the in-memory caches.
//! - [`cli`] turns flags into [`server::Settings`]; [`standalone`] loads manifests from a directory.

pub mod cli;
pub mod client;
pub mod clock;
pub mod error;
pub mod grant;
pub mod http;
pub mod keys;
pub mod metrics;
pub mod oauth;
pub mod password;
pub mod server;
pub mod standalone;
pub mod state;
pub mod store;
pub mod sync;
#[cfg(test)]
mod test_support;
pub mod token;
pub mod users;

pub use error::{Error, Result};
pub use http::{admin_app, app};
pub use state::{AppState, Config};
