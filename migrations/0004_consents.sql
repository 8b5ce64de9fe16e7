-- Consent to third-party clients (SPEC §4, §3.6): what an account let a client
-- receive, as the union of the scopes it accepted; asked again when a request
-- wants more. First-party clients need none.
CREATE TABLE consents (
    account_id  TEXT NOT NULL REFERENCES accounts (id),
    client_id   TEXT NOT NULL REFERENCES clients (id),
    scopes      TEXT NOT NULL,
    granted_at  BIGINT NOT NULL,
    CONSTRAINT consents_pkey PRIMARY KEY (account_id, client_id)
);
