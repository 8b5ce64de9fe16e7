-- An initial access token registers a bounded number of clients
-- (`clef client token --clients N`): one handed to an integrator, and leaked
-- from them, cannot fill the clients table until it expires. Tokens issued
-- before this column keep the default.
ALTER TABLE registration_tokens ADD COLUMN clients_left BIGINT NOT NULL DEFAULT 10;
