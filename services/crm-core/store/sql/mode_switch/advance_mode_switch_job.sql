-- Progress of a step: where the next one starts, how many were converted, how many skipped
-- (their ids appended while fewer than 100 are kept, the latest reason kept); finished when the
-- step found no more open leads. The total, counted at the first step, grows with leads opened
-- since and converted or skipped now: done + failed never passes it.
UPDATE mode_switch_jobs SET last_lead_id = $2, done = done + $3,
  total = greatest(total, $4, done + $3 + failed + cardinality($6::bigint[])),
  state = CASE WHEN $5 THEN 'DONE' ELSE state END,
  finished_at = CASE WHEN $5 THEN now() END,
  failed = failed + cardinality($6::bigint[]),
  failed_lead_ids = (failed_lead_ids || $6::bigint[])[1:100],
  failure = CASE WHEN $7 = '' THEN failure ELSE left($7, 2000) END
WHERE id = $1
