-- A password change (and later a reset or a grouping) ends the account's other
-- sessions: each session carries the epoch it was opened in, and a session
-- whose epoch is behind the account's is no longer honoured.
ALTER TABLE accounts ADD COLUMN session_epoch BIGINT NOT NULL DEFAULT 0;
