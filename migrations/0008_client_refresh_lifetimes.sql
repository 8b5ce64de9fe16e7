-- Refresh-token lifetimes per client, in seconds; NULL keeps the server's defaults.
ALTER TABLE clients ADD COLUMN refresh_token_idle_ttl BIGINT;
ALTER TABLE clients ADD COLUMN refresh_token_absolute_ttl BIGINT;
