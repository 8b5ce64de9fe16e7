-- The sign-in before the last one: « Mon compte » shows it (« Dernière
-- connexion »), so a person can spot a sign-in that was not theirs; the last
-- one is the sign-in that opened the page.
ALTER TABLE accounts ADD COLUMN previous_login_at BIGINT;
