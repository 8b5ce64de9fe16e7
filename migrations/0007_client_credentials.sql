-- client_credentials (RFC 6749 §4.4): which grants a client may use, and the
-- scopes a service may ask for its own tokens (space-separated).
ALTER TABLE clients ADD COLUMN grant_types TEXT NOT NULL DEFAULT 'authorization_code refresh_token';
ALTER TABLE clients ADD COLUMN service_scopes TEXT NOT NULL DEFAULT '';
