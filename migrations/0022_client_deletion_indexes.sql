-- A client's deletion (RFC 7592) revokes its refresh families and forgets the
-- consents given to it: by client, over tables that grow with the accounts.
CREATE INDEX refresh_families_client ON refresh_families (client_id);
CREATE INDEX consents_client ON consents (client_id);
CREATE INDEX consent_children_client ON consent_children (client_id);
