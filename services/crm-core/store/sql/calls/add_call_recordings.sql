-- Recordings of calls ($1 call ids, $2 URLs, pairs in arrival order, a call id any number of
-- times; $3 the cap per row): a call's own ($4 false), or those that arrive after their call ($4
-- true). Appended to the list of the activity holding the call (activity_calls, or
-- activities.call_id for what the previous release wrote) and of the unidentified call, each URL
-- once, at most $3 per row; a late one on a list still empty starts it from the one URL an
-- earlier release kept (a call's own already holds the one URL its write just set). The one-URL columns as
-- before: the call's latest recording on activity_calls and the unidentified call; on the
-- activity when the call is its latest or the activity has none yet (a call-back's later
-- voicemail keeps its own). Returns the call ids that found something, then one row with a NULL
-- id and the number of URLs dropped past the cap.
WITH x AS (SELECT * FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS x (id, url, n)),
  latest AS (SELECT DISTINCT ON (id) id, url FROM x ORDER BY id, n DESC),
  held AS (
    UPDATE activity_calls AS c SET recording_url = l.url FROM latest AS l WHERE c.call_id = l.id
    RETURNING c.call_id, c.activity_id),
  targets AS (
    SELECT call_id, activity_id FROM held
    UNION
    SELECT a.call_id, a.id FROM activities AS a WHERE a.call_id IN (SELECT id FROM latest)),
  per_activity AS (
    SELECT t.activity_id,
      array_agg(x.url ORDER BY x.n) AS urls,
      (array_agg(x.url ORDER BY x.n DESC) FILTER (WHERE x.id = a.call_id))[1] AS own_url,
      (array_agg(x.url ORDER BY x.n DESC))[1] AS last_url,
      CASE WHEN $4 AND cardinality(a.call_recording_urls) = 0 AND a.call_recording_url IS NOT NULL
        THEN ARRAY[a.call_recording_url] ELSE a.call_recording_urls END AS kept
    FROM targets AS t JOIN x ON x.id = t.call_id JOIN activities AS a ON a.id = t.activity_id
    GROUP BY t.activity_id, a.call_recording_urls, a.call_recording_url),
  shown AS (
    UPDATE activities AS a SET
      call_recording_urls = append_call_recordings(p.kept, p.urls, $3),
      call_recording_url = coalesce(p.own_url,
        CASE WHEN a.call_recording_url IS NULL THEN p.last_url END, a.call_recording_url)
    FROM per_activity AS p WHERE a.id = p.activity_id
    RETURNING call_recordings_over(p.kept, p.urls, $3) AS over),
  per_unidentified AS (
    SELECT u.id, array_agg(x.url ORDER BY x.n) AS urls,
      (array_agg(x.url ORDER BY x.n DESC))[1] AS last_url,
      CASE WHEN $4 AND cardinality(u.recording_urls) = 0 AND u.recording_url <> ''
        THEN ARRAY[u.recording_url] ELSE u.recording_urls END AS kept
    FROM unidentified_calls AS u JOIN x ON x.id = u.call_id
    GROUP BY u.id, u.recording_urls, u.recording_url),
  unidentified AS (
    UPDATE unidentified_calls AS u SET
      recording_urls = append_call_recordings(p.kept, p.urls, $3), recording_url = p.last_url
    FROM per_unidentified AS p WHERE u.id = p.id
    RETURNING u.call_id, call_recordings_over(p.kept, p.urls, $3) AS over)
SELECT id, 0 FROM (SELECT call_id AS id FROM targets UNION SELECT call_id FROM unidentified) AS m
UNION ALL
SELECT NULL, (SELECT coalesce(sum(over), 0) FROM shown)::int +
  (SELECT coalesce(sum(over), 0) FROM unidentified)::int
