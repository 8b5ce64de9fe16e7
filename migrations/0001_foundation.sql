-- Clef's schema, one text for SQLite and PostgreSQL: TEXT identifiers (UUIDs made
-- by the application), BIGINT Unix seconds for instants, ISO dates as TEXT, and
-- CHECK constraints mirroring the Rust enums.

CREATE TABLE establishments (
    id          TEXT PRIMARY KEY,
    uai         TEXT NOT NULL,
    name        TEXT NOT NULL,
    address     TEXT,
    city        TEXT,
    contact     TEXT,
    portal_url  TEXT,
    created_at  BIGINT NOT NULL,
    CONSTRAINT establishments_uai_key UNIQUE (uai)
);

CREATE TABLE accounts (
    id                 TEXT PRIMARY KEY,
    identifier         TEXT NOT NULL,
    kind               TEXT NOT NULL CHECK (kind IN ('student', 'guardian', 'staff')),
    state              TEXT NOT NULL CHECK (state IN ('provisional', 'pending_email', 'active', 'closed')),
    given_name         TEXT NOT NULL,
    family_name        TEXT NOT NULL,
    birthdate          TEXT,
    email              TEXT,
    email_verified_at  BIGINT,
    pending_email      TEXT,
    phone              TEXT,
    password_hash      TEXT,
    establishment_id   TEXT REFERENCES establishments (id),
    class_name         TEXT,
    last_login_at      BIGINT,
    merged_into        TEXT REFERENCES accounts (id),
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    CONSTRAINT accounts_identifier_key UNIQUE (identifier),
    -- a student belongs to an establishment and a class (SPEC §2)
    CONSTRAINT accounts_student_school CHECK (kind <> 'student' OR (establishment_id IS NOT NULL AND class_name IS NOT NULL)),
    CONSTRAINT accounts_closed_merge CHECK (merged_into IS NULL OR state = 'closed')
);

CREATE INDEX accounts_establishment_class ON accounts (establishment_id, class_name);
CREATE INDEX accounts_email ON accounts (email);

CREATE TABLE guardianships (
    guardian_id  TEXT NOT NULL REFERENCES accounts (id),
    student_id   TEXT NOT NULL REFERENCES accounts (id),
    rank         BIGINT NOT NULL CHECK (rank IN (1, 2)),
    created_at   BIGINT NOT NULL,
    CONSTRAINT guardianships_pkey PRIMARY KEY (guardian_id, student_id)
);

CREATE INDEX guardianships_student ON guardianships (student_id);

CREATE TABLE clients (
    id                         TEXT PRIMARY KEY,
    name                       TEXT NOT NULL,
    -- SHA-256 of the secret (256 random bits, so a slow hash adds nothing); NULL for public clients
    secret_hash                TEXT,
    redirect_uris              TEXT NOT NULL,
    post_logout_redirect_uris  TEXT NOT NULL,
    is_public                  BIGINT NOT NULL CHECK (is_public IN (0, 1)),
    is_first_party             BIGINT NOT NULL CHECK (is_first_party IN (0, 1)),
    created_at                 BIGINT NOT NULL,
    CONSTRAINT clients_secret CHECK ((is_public = 1) = (secret_hash IS NULL))
);
