-- Pipeline creations and renames one at a time, so that a name checked free (domain NameKey;
-- the schema has no unique index on names since 0007) is still free when it is written.
SELECT pg_advisory_xact_lock(hashtextextended('pipeline-names', 0))
