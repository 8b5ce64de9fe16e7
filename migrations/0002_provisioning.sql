-- Provisioning (SPEC §2, §3.1–3.3, §3.10): letters, provisional passwords,
-- the school's pupil ids, identifier counters and single-use action tokens.

-- When the letter was issued; a provisional account expires 3 months later.
ALTER TABLE accounts ADD COLUMN letter_date BIGINT;
-- AES-256-GCM ciphertext of the letter's password; erased at activation or expiry.
ALTER TABLE accounts ADD COLUMN provisional_password TEXT;
-- The pupil's id in the school's file (student accounts created by an import).
ALTER TABLE accounts ADD COLUMN student_ref TEXT;
ALTER TABLE accounts ADD COLUMN activated_at BIGINT;

CREATE UNIQUE INDEX accounts_student_ref_key ON accounts (establishment_id, student_ref);
CREATE INDEX accounts_provisional_letter ON accounts (state, letter_date);

-- Next collision number per identifier base (`julie.baillet` → 2 means
-- `julie.baillet1` is taken), so an import never scans the accounts table.
CREATE TABLE identifier_counters (
    base  TEXT PRIMARY KEY,
    next  BIGINT NOT NULL
);

-- Emailed links: only the SHA-256 of the token is kept (STYLE: single-use
-- action tokens with a purpose, an expiry and a consumed-at).
CREATE TABLE action_tokens (
    id           TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts (id),
    purpose      TEXT NOT NULL CHECK (purpose IN ('confirm_email', 'reset_password')),
    token_hash   TEXT NOT NULL,
    email        TEXT,
    return_to    TEXT,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    consumed_at  BIGINT,
    CONSTRAINT action_tokens_token_hash_key UNIQUE (token_hash)
);

CREATE INDEX action_tokens_account ON action_tokens (account_id, purpose);
