-- Every user gets a subject, the `sub` of their tokens: `user:` and 32 random hex digits, never
-- reassigned. Until now `sub` was the username, which a client_credentials token could equal (its
-- `sub` is the client_id): RFC 9700 §4.15. Client_ids can't hold a colon, so the spaces are disjoint.
-- SQLite can't add a UNIQUE NOT NULL column, so the table is rebuilt.
CREATE TABLE users_with_subjects (
    username TEXT PRIMARY KEY NOT NULL,
    subject TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    name TEXT,
    email TEXT,
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
INSERT INTO users_with_subjects (username, subject, password_hash, name, email, disabled, created_at, updated_at)
    SELECT username, 'user:' || lower(hex(randomblob(16))), password_hash, name, email, disabled, created_at, updated_at
    FROM users;
DROP TABLE users;
ALTER TABLE users_with_subjects RENAME TO users;

-- What named a user by username now names them by subject, so that every refresh token, code,
-- session and consent issued before the upgrade keeps working. Rows of users deleted before the
-- upgrade keep their username, which no subject equals: they stay dead.
ALTER TABLE sessions RENAME COLUMN username TO subject;
ALTER TABLE consents RENAME COLUMN username TO subject;
ALTER TABLE authorization_codes RENAME COLUMN username TO subject;
UPDATE refresh_tokens SET subject = (SELECT u.subject FROM users u WHERE u.username = refresh_tokens.subject)
    WHERE subject IN (SELECT username FROM users);
UPDATE sessions SET subject = (SELECT u.subject FROM users u WHERE u.username = sessions.subject)
    WHERE subject IN (SELECT username FROM users);
UPDATE consents SET subject = (SELECT u.subject FROM users u WHERE u.username = consents.subject)
    WHERE subject IN (SELECT username FROM users);
UPDATE authorization_codes SET subject = (SELECT u.subject FROM users u WHERE u.username = authorization_codes.subject)
    WHERE subject IN (SELECT username FROM users);
-- Only the opaque tokens issued to a user, which are recorded in their family: a client_credentials
-- token's subject is its client_id, which may equal a username and must not become that user's.
UPDATE opaque_tokens SET subject = (SELECT u.subject FROM users u WHERE u.username = opaque_tokens.subject)
    WHERE subject IN (SELECT username FROM users)
    AND token_hash IN (SELECT opaque_hash FROM family_access_tokens WHERE opaque_hash IS NOT NULL);
