-- FindByName matches a prefix of any word of a name ("beeth" finds Ludwig van Beethoven), not
-- only of its first word: a LIKE '% beeth%' that no btree serves. pg_trgm (PostgreSQL's contrib,
-- a trusted extension: the database owner may create it) indexes it; 0016 builds the indexes.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
