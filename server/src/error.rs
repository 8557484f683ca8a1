//! The crate's error type. Internal failures end up here; handlers turn them into a bare
//! `server_error` (see [`crate::oauth::OAuthError`]) after logging the detail.

use std::path::PathBuf;

/// Everything that can fail inside the server, apart from a client's mistake.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A query or connection failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying the schema migrations failed.
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A cryptographic operation failed (key generation, sealing, signing).
    #[error("cryptography: {0}")]
    Crypto(&'static str),
    /// A row holds a document that does not parse.
    #[error("stored {what} does not parse: {source}")]
    StoredDocument {
        /// Which document.
        what: String,
        /// Why.
        source: serde_json::Error,
    },
    /// The configuration is unusable.
    #[error("configuration: {0}")]
    Config(String),
    /// A generated Secret manifest could not be rendered as YAML.
    #[error("rendering the Secret {path}: {source}")]
    RenderSecret {
        /// The file it was for.
        path: PathBuf,
        /// Why.
        source: serde_yaml::Error,
    },
    /// A manifest in the clients directory is invalid.
    #[error("{path}: {message}")]
    Manifest {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the document and field.
        message: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Binding or serving a listener failed.
    #[error("listener {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// Serializing a response or document failed.
    #[error("serializing: {0}")]
    Serialize(#[from] serde_json::Error),
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
