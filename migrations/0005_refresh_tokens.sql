-- Refresh tokens (RFC 6749 §6), rotated on every use: each family starts at a
-- code exchange; a token used twice (outside a short grace window) revokes its
-- whole family. Kept in the database: they outlive a Redis restart.
CREATE TABLE refresh_families (
    id                TEXT PRIMARY KEY,
    client_id         TEXT NOT NULL REFERENCES clients (id),
    account_id        TEXT NOT NULL REFERENCES accounts (id),
    scopes            TEXT NOT NULL,
    sid               TEXT NOT NULL,
    auth_time         BIGINT NOT NULL,
    amr               TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    -- the family ends at this instant whatever its use (absolute lifetime)
    expires_at        BIGINT NOT NULL,
    revoked_at        BIGINT
);

CREATE INDEX refresh_families_account ON refresh_families (account_id);

CREATE TABLE refresh_tokens (
    -- SHA-256 of the token
    id          TEXT PRIMARY KEY,
    family_id   TEXT NOT NULL REFERENCES refresh_families (id),
    issued_at   BIGINT NOT NULL,
    -- idle lifetime: unused past this instant, the token is dead
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);

CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
