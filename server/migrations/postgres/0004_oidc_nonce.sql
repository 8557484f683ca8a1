-- The OpenID Connect nonce of the authorization request, returned in the ID token.
ALTER TABLE authorization_codes ADD COLUMN nonce TEXT;
