-- When a school closed the account in the back office (NULL otherwise: open,
-- grouped into another, or closed by its letter's expiry). A parent account
-- the school closed is not created again by the next import that still
-- lists the parent (a parent who lost parental authority, while the
-- school's export lags behind).
ALTER TABLE accounts ADD COLUMN closed_by_school_at BIGINT;
