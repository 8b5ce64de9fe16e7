-- Indexes found missing by the query plans at a million accounts (issue 12,
-- item 7; tests/api/query_plans.rs, docs/benchmarks.md « A million accounts »).

-- The hourly housekeeping deletes sessions and refresh-token families by the
-- instant they ended (`COALESCE(ended_at, expires_at) < $1`): without these it
-- reads both tables whole every hour, and they grow with every sign-in.
-- (Double parentheses: PostgreSQL wants an expression other than a function
-- call in parentheses; SQLite takes them as a parenthesised expression.)
CREATE INDEX sessions_purge ON sessions ((COALESCE(ended_at, expires_at)));
CREATE INDEX refresh_families_purge ON refresh_families ((COALESCE(revoked_at, expires_at)));

-- Deleting an account (the expiry of unactivated letters) checks that no
-- account was merged into it: without an index, one read of the whole
-- accounts table per deleted account. Partial: merged_into is almost always NULL.
CREATE INDEX accounts_merged_into ON accounts (merged_into) WHERE merged_into IS NOT NULL;
