-- The account a guardianship came from when a grouping moved it (the closed
-- account's id, kept along further groupings): breaking the grouping gives
-- the child a letter account in the name of that parent, not the principal's.
ALTER TABLE guardianships ADD COLUMN grouped_from TEXT;
