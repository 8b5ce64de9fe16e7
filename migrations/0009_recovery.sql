-- Self-service recovery (SPEC §3.4, §3.5): every request is recorded under its
-- 13-digit reference, whether or not it matched an account (so the reference
-- shown on screen is unique, and answering costs the same either way). No
-- identifier or address typed by the person is kept, only the account matched.
CREATE TABLE recovery_requests (
    reference   TEXT PRIMARY KEY,
    -- NULL when nothing was sent; not a foreign key: expired letters' accounts are deleted
    account_id  TEXT,
    kind        TEXT NOT NULL CHECK (kind IN ('identifier', 'password_email', 'password_sms')),
    -- what became of it: sent, nothing to send, or held back by a limit
    outcome     TEXT NOT NULL CHECK (outcome IN ('sent', 'nothing', 'limited', 'failed')),
    created_at  BIGINT NOT NULL
);

CREATE INDEX recovery_requests_account ON recovery_requests (account_id, created_at);
CREATE INDEX recovery_requests_created ON recovery_requests (created_at);

-- The identifier reminder finds accounts by address whatever its case.
CREATE INDEX accounts_email_lower ON accounts (LOWER(email));
