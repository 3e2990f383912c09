-- Pipeline creations and renames one at a time, so that a name checked free (domain NameKey;
-- the lower(btrim()) indexes of 0004 are kept only until the release after 0007 drops them) is
-- still free when it is written.
SELECT pg_advisory_xact_lock(hashtextextended('pipeline-names', 0))
