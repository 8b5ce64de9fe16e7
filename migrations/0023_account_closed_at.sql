-- When the account was closed (NULL while it is open): the day from which its
-- personal data is kept `closed_account_retention_days` (accounts::retention).
-- Until this column the day was read from `updated_at`, which any later write
-- to the closed row would have moved on.
ALTER TABLE accounts ADD COLUMN closed_at BIGINT;
UPDATE accounts SET closed_at = COALESCE(closed_by_school_at, updated_at) WHERE state = 'closed';
