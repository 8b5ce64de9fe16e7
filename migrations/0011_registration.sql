-- Dynamic client registration (RFC 7591): the initial access tokens an
-- operator hands to integrators (`clef client token`), kept as SHA-256 digests,
-- and clients deleted through RFC 7592 (kept for the records that name them).
CREATE TABLE registration_tokens (
    token_hash  TEXT PRIMARY KEY,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);

ALTER TABLE clients ADD COLUMN deleted_at BIGINT;
