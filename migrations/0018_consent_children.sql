-- The children a guardian's consent to a service's `children` scope covers:
-- those the account had when the person accepted. A child attached later (a
-- grouping of accounts, a sibling in the school's file) is not sent to the
-- service until the person accepts again (its next sign-in asks).
CREATE TABLE consent_children (
    account_id  TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    child_id    TEXT NOT NULL,
    CONSTRAINT consent_children_pkey PRIMARY KEY (account_id, client_id, child_id)
);

-- Consents given before this table covered the children the account has now.
INSERT INTO consent_children (account_id, client_id, child_id)
SELECT c.account_id, c.client_id, g.student_id
FROM consents c JOIN guardianships g ON g.guardian_id = c.account_id
WHERE ' ' || c.scopes || ' ' LIKE '% children %';
