-- OIDC Registration §2 `default_max_age`: a registered client's maximum
-- authentication age, used when its request carries no `max_age`.
ALTER TABLE clients ADD COLUMN default_max_age BIGINT;
