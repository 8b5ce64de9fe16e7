-- The only algorithm a client's signed request objects may use, when it
-- registered one (OIDC Registration §2 `request_object_signing_alg`).
ALTER TABLE clients ADD COLUMN request_object_signing_alg TEXT;
