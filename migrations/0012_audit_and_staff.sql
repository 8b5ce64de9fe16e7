-- The audit trail (SPEC §3.9, issue 11): every security event, who it
-- concerned, who did it, from where, and how it ended. No personal data beyond
-- account ids and identifiers; kept `audit_retention_days`.
CREATE TABLE audit_events (
    id          TEXT PRIMARY KEY,
    at          BIGINT NOT NULL,
    event       TEXT NOT NULL,
    outcome     TEXT NOT NULL CHECK (outcome IN ('ok', 'failed', 'refused')),
    -- the account concerned (not a foreign key: the trail outlives deleted accounts)
    account_id  TEXT,
    -- who acted, when it was not the account itself (a staff member)
    actor_id    TEXT,
    client_id   TEXT,
    address     TEXT,
    user_agent  TEXT,
    detail      TEXT
);

CREATE INDEX audit_events_account ON audit_events (account_id, at);
CREATE INDEX audit_events_at ON audit_events (at);

-- Staff roles: an establishment's staff over their establishment(s), or an
-- academy operator over all of them.
CREATE TABLE staff_roles (
    account_id        TEXT NOT NULL REFERENCES accounts (id),
    establishment_id  TEXT REFERENCES establishments (id),
    created_at        BIGINT NOT NULL,
    -- NULL establishment: the academy operator role
    CONSTRAINT staff_roles_key UNIQUE (account_id, establishment_id)
);

CREATE INDEX staff_roles_account ON staff_roles (account_id);

-- Dynamic registration metadata kept as registered (OIDC Registration §2).
ALTER TABLE clients ADD COLUMN application_type TEXT NOT NULL DEFAULT 'web';
ALTER TABLE clients ADD COLUMN token_endpoint_auth_signing_alg TEXT;
