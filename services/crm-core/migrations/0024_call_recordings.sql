-- Every recording of a call (docs/architecture.md, "Calls"): a call may have several (Twilio
-- posts one per recorded leg or transfer, a generic report brings one and a later report
-- another) and a call-back folds the voicemails of several missed calls, where 0006 kept one
-- URL. Kept in arrival order, each URL once, at most a cap per row (append_call_recordings;
-- the ones past it are dropped and counted by the server). activities.call_recording_url and
-- unidentified_calls.recording_url stay the one URL earlier releases read and write; a row whose
-- list is empty is read as that one URL. New columns with a constant default: no table rewrite,
-- and a binary that does not know them leaves them empty.
ALTER TABLE activities ADD COLUMN call_recording_urls text[] NOT NULL DEFAULT '{}';
ALTER TABLE unidentified_calls ADD COLUMN recording_urls text[] NOT NULL DEFAULT '{}';

-- `kept` then the URLs of `added` it does not hold, each once, in `added`'s order, up to `cap`
-- URLs in all.
CREATE FUNCTION append_call_recordings(kept text[], added text[], cap int) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
  SELECT kept || ARRAY(
    SELECT url FROM (
      SELECT url, min(n) AS n FROM unnest(added) WITH ORDINALITY AS a (url, n)
      WHERE url <> '' AND NOT (url = ANY (kept)) GROUP BY url) AS fresh
    ORDER BY n LIMIT greatest(cap - cardinality(kept), 0))
$$;

-- How many distinct new URLs of `added` append_call_recordings(kept, added, cap) leaves out.
CREATE FUNCTION call_recordings_over(kept text[], added text[], cap int) RETURNS int
LANGUAGE sql IMMUTABLE AS $$
  SELECT greatest(count(DISTINCT url)::int - greatest(cap - cardinality(kept), 0), 0)
  FROM unnest(added) AS a (url) WHERE url <> '' AND NOT (url = ANY (kept))
$$;
