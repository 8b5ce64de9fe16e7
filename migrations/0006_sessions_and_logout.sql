-- Back-channel logout (OpenID Connect Back-Channel Logout 1.0) and per-client
-- terms (the ENT charter), on the client; the sessions an account has open and
-- the clients that received tokens in each, so that ending a session (logout,
-- « se déconnecter partout », a password reset, a grouping) tells those clients.
ALTER TABLE clients ADD COLUMN backchannel_logout_uri TEXT;
ALTER TABLE clients ADD COLUMN backchannel_logout_session_required BIGINT NOT NULL DEFAULT 1;
ALTER TABLE clients ADD COLUMN terms_url TEXT;
ALTER TABLE clients ADD COLUMN terms_version TEXT;

CREATE TABLE sessions (
    sid           TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL REFERENCES accounts (id),
    -- the browser, as its User-Agent names it (shown in « Mon compte »)
    device        TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    ended_at      BIGINT
);

CREATE INDEX sessions_account ON sessions (account_id);

CREATE TABLE session_clients (
    sid         TEXT NOT NULL REFERENCES sessions (sid),
    client_id   TEXT NOT NULL REFERENCES clients (id),
    created_at  BIGINT NOT NULL,
    CONSTRAINT session_clients_pkey PRIMARY KEY (sid, client_id)
);

CREATE TABLE terms_acceptances (
    account_id   TEXT NOT NULL REFERENCES accounts (id),
    client_id    TEXT NOT NULL REFERENCES clients (id),
    version      TEXT NOT NULL,
    accepted_at  BIGINT NOT NULL,
    CONSTRAINT terms_acceptances_pkey PRIMARY KEY (account_id, client_id, version)
);
