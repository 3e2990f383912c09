-- Recordings that arrive after their call ($1 call ids, $2 URLs): on the call's activity and on
-- its unidentified call, whichever it made.
WITH x AS (SELECT * FROM unnest($1::text[], $2::text[]) AS x (id, url)),
  unidentified AS (
    UPDATE unidentified_calls AS u SET recording_url = x.url FROM x WHERE u.call_id = x.id)
UPDATE activities AS a SET call_recording_url = x.url
FROM x WHERE a.call_id = x.id AND a.call_recording_url IS DISTINCT FROM x.url
