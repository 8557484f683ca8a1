//! The protocol's vocabulary, shared by every endpoint and grant: the RFC error codes and their
//! responses ([`error`]), the form parameters of a request and their extractor ([`params`], which reads
//! the body and nothing else), and the pure scope ([`scope`]) and PKCE ([`pkce`]) rules. It depends on
//! nothing of the server's but its [`crate::Error`].

pub mod error;
pub mod params;
pub mod pkce;
pub mod scope;

pub use error::{ErrorCode, OAuthError, no_store};
pub use params::{Form, Params};
