-- Registered clients, as sent by the operator or the standalone loader. One JSON document each.
CREATE TABLE clients (
    client_id TEXT PRIMARY KEY NOT NULL,
    document TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Counters other replicas poll to notice changes cheaply.
CREATE TABLE meta (
    name TEXT PRIMARY KEY NOT NULL,
    value BIGINT NOT NULL
);
INSERT INTO meta (name, value) VALUES ('clients_generation', 0);

-- Signing keys. The private key is sealed with AES-256-GCM under the key-encryption key.
CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY NOT NULL,
    generation BIGINT NOT NULL UNIQUE,
    alg TEXT NOT NULL,
    encrypted_private_key BYTEA NOT NULL,
    public_jwk TEXT NOT NULL,
    activates_at BIGINT NOT NULL,
    retire_after BIGINT,
    created_at BIGINT NOT NULL
);

-- Opaque access tokens, by SHA-256 of the token.
CREATE TABLE opaque_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    scope TEXT NOT NULL,
    audience TEXT NOT NULL,
    claims TEXT NOT NULL,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX opaque_tokens_client_id ON opaque_tokens (client_id);
CREATE INDEX opaque_tokens_expires_at ON opaque_tokens (expires_at);

-- Revoked JWTs, kept until they expire.
CREATE TABLE jwt_revocations (
    jti TEXT PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX jwt_revocations_expires_at ON jwt_revocations (expires_at);

-- "Everything issued to this client up to this time is revoked."
CREATE TABLE client_revocations (
    client_id TEXT PRIMARY KEY NOT NULL,
    revoked_before BIGINT NOT NULL
);
