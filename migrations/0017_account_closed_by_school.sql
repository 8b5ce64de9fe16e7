-- When a school closed the account in the back office (NULL otherwise: open,
-- grouped into another, or closed by its letter's expiry). A parent account
-- the school closed is not created again by the next import that still
-- lists the parent (a parent who lost parental authority, while the
-- school's export lags behind).
ALTER TABLE accounts ADD COLUMN closed_by_school_at BIGINT;

-- Closures made before this column, as the audit trail recorded them (a
-- staff « close » action); those the trail's retention already forgot stay
-- NULL, and the next import creates their account again, as before.
UPDATE accounts SET closed_by_school_at = (
    SELECT MAX(e.at) FROM audit_events e
    WHERE e.account_id = accounts.id AND e.event = 'staff_action'
      AND e.detail = 'close' AND e.outcome = 'ok'
)
WHERE state = 'closed' AND merged_into IS NULL AND kind = 'guardian';
