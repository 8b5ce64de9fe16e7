-- The account's session epoch a session was opened in. Ending "the other
-- sessions" (a password change, « se déconnecter partout », a reset) ends
-- those of earlier epochs only: a sign-in that lands in the new epoch while
-- they are being ended stays open. NULL for sessions opened before: earlier.
ALTER TABLE sessions ADD COLUMN epoch BIGINT;
