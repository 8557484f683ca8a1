//! The protocol's vocabulary, shared by every endpoint and grant and free of I/O: the RFC error codes
//! and their responses ([`error`]), the form parameters of a request ([`params`]), and the scope
//! ([`scope`]) and PKCE ([`pkce`]) rules.

pub mod error;
pub mod params;
pub mod pkce;
pub mod scope;

pub use error::{ErrorCode, OAuthError, no_store};
pub use params::{Form, Params};
