-- Every user gets a subject, the `sub` of their tokens: `user:` and 32 random hex digits, never
-- reassigned. Until now `sub` was the username, which a client_credentials token could equal (its
-- `sub` is the client_id): RFC 9700 §4.15. Client_ids can't hold a colon, so the spaces are disjoint.
-- gen_random_uuid() (PostgreSQL 13 and later) is the random source: 122 random bits.
ALTER TABLE users ADD COLUMN subject TEXT;
UPDATE users SET subject = 'user:' || replace(gen_random_uuid()::text, '-', '');
ALTER TABLE users ALTER COLUMN subject SET NOT NULL;
ALTER TABLE users ADD CONSTRAINT users_subject_key UNIQUE (subject);

-- What named a user by username now names them by subject, so that every refresh token, code,
-- session and consent issued before the upgrade keeps working. Rows of users deleted before the
-- upgrade keep their username, which no subject equals: they stay dead.
ALTER TABLE sessions RENAME COLUMN username TO subject;
ALTER TABLE consents RENAME COLUMN username TO subject;
ALTER TABLE authorization_codes RENAME COLUMN username TO subject;
UPDATE refresh_tokens SET subject = u.subject FROM users u WHERE u.username = refresh_tokens.subject;
UPDATE sessions SET subject = u.subject FROM users u WHERE u.username = sessions.subject;
UPDATE consents SET subject = u.subject FROM users u WHERE u.username = consents.subject;
UPDATE authorization_codes SET subject = u.subject FROM users u WHERE u.username = authorization_codes.subject;
-- Only the opaque tokens issued to a user, which are recorded in their family: a client_credentials
-- token's subject is its client_id, which may equal a username and must not become that user's.
UPDATE opaque_tokens SET subject = u.subject FROM users u
    WHERE u.username = opaque_tokens.subject
    AND opaque_tokens.token_hash IN (SELECT opaque_hash FROM family_access_tokens WHERE opaque_hash IS NOT NULL);
