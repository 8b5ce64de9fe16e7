-- The language the person last signed in with (`fr`, `en`): mails that
-- another person's action sends them (a school correcting their address)
-- speak it. NULL until their next sign-in: French.
ALTER TABLE accounts ADD COLUMN locale TEXT;
