-- Sign-in sessions of the login page, by SHA-256 of the session cookie.
CREATE TABLE sessions (
    session_hash TEXT PRIMARY KEY NOT NULL,
    username TEXT NOT NULL,
    auth_time INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

-- Consent given by a user to a client, one row per scope.
CREATE TABLE consents (
    username TEXT NOT NULL,
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (username, client_id, scope)
);

-- Authorization codes, by SHA-256 of the code. family_id is the family the exchange starts, so a
-- replayed code can revoke what was issued from it.
CREATE TABLE authorization_codes (
    code_hash TEXT PRIMARY KEY NOT NULL,
    family_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    username TEXT NOT NULL,
    scope TEXT NOT NULL,
    code_challenge TEXT,
    code_challenge_method TEXT,
    auth_time INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used INTEGER NOT NULL DEFAULT 0
);
