-- The OAuthClient that holds each client_id: only it may replace or delete the registration (see
-- server/src/client/ownership.rs). Rows from before this migration have no owner; the OAuthClient their
-- `source` names adopts them on its next registration.
ALTER TABLE clients ADD COLUMN owner_namespace TEXT;
ALTER TABLE clients ADD COLUMN owner_name TEXT;
ALTER TABLE clients ADD COLUMN owner_uid TEXT;
