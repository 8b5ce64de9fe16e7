-- Client metadata of a certified-grade provider (OIDC Core §8, RFC 7591/7592,
-- RFC 7523): subject type and sector, signing algorithms, the client's own keys
-- for private_key_jwt, and what dynamic registration records.

-- Existing clients keep public subjects (their relying parties already stored them).
ALTER TABLE clients ADD COLUMN subject_type TEXT NOT NULL DEFAULT 'public' CHECK (subject_type IN ('public', 'pairwise'));
-- The host that groups a client's redirect URIs into one sector (§8.1).
ALTER TABLE clients ADD COLUMN sector_identifier_uri TEXT;
ALTER TABLE clients ADD COLUMN id_token_signed_response_alg TEXT NOT NULL DEFAULT 'RS256';
-- NULL: UserInfo answers plain JSON.
ALTER TABLE clients ADD COLUMN userinfo_signed_response_alg TEXT;
-- NULL: any of client_secret_basic / client_secret_post (none for public clients).
ALTER TABLE clients ADD COLUMN token_endpoint_auth_method TEXT;
-- private_key_jwt: the client's public keys, inline (JSON) or by URI.
ALTER TABLE clients ADD COLUMN jwks TEXT;
ALTER TABLE clients ADD COLUMN jwks_uri TEXT;
-- RFC 7592: SHA-256 of the registration access token (NULL: registered by an operator).
ALTER TABLE clients ADD COLUMN registration_access_token_hash TEXT;
ALTER TABLE clients ADD COLUMN logo_uri TEXT;
ALTER TABLE clients ADD COLUMN policy_uri TEXT;
ALTER TABLE clients ADD COLUMN tos_uri TEXT;
