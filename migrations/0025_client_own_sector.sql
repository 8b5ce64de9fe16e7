-- A client that registers itself from now on is its own pairwise sector when
-- its redirect URIs are on a private scheme (`fr.exemple.agenda:/cb`): any app
-- may register a scheme, and would be given the subjects of the app whose
-- scheme it copied. Clients registered before keep their scheme's sector (a
-- sector is kept: every subject a service was given is computed from it).
ALTER TABLE clients ADD COLUMN own_sector BIGINT NOT NULL DEFAULT 0;
