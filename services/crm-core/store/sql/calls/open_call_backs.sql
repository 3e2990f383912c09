-- The open call-backs of records of one type ($1, $2 their ids): each one's activity, missed
-- calls and recordings, their count and their URLs as a JSON array (a list still empty is the
-- one URL an earlier release kept).
SELECT owner_id, id, missed_calls,
  CASE WHEN cardinality(call_recording_urls) = 0 AND call_recording_url IS NOT NULL THEN 1
    ELSE cardinality(call_recording_urls) END,
  array_to_json(CASE WHEN cardinality(call_recording_urls) = 0 AND call_recording_url IS NOT NULL
    THEN ARRAY[call_recording_url] ELSE call_recording_urls END)::text
FROM activities
WHERE owner_type = $1 AND owner_id = ANY ($2::bigint[]) AND call_back AND NOT completed
ORDER BY owner_id
