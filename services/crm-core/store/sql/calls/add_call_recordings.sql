-- Recordings that arrive after their call ($1 call ids, $2 URLs): kept on the call
-- (activity_calls), and shown on the activity holding it when it is the activity's latest call
-- or the activity has none yet (a call-back's later voicemail keeps its own); or on the
-- unidentified call. activities.call_id finds what the previous release wrote. Returns the call
-- ids that found something; the others are counted by the caller.
WITH x AS (SELECT * FROM unnest($1::text[], $2::text[]) AS x (id, url)),
  held AS (
    UPDATE activity_calls AS c SET recording_url = x.url FROM x WHERE c.call_id = x.id
    RETURNING c.call_id, c.activity_id),
  targets AS (
    SELECT x.id, x.url, h.activity_id FROM x JOIN held AS h ON h.call_id = x.id
    UNION
    SELECT x.id, x.url, a.id FROM x JOIN activities AS a ON a.call_id = x.id),
  shown AS (
    UPDATE activities AS a SET call_recording_url = t.url FROM targets AS t
    WHERE a.id = t.activity_id AND (a.call_recording_url IS NULL OR a.call_id = t.id)
    RETURNING a.id),
  unidentified AS (
    UPDATE unidentified_calls AS u SET recording_url = x.url FROM x WHERE u.call_id = x.id
    RETURNING u.call_id)
SELECT id FROM targets UNION SELECT call_id FROM unidentified
