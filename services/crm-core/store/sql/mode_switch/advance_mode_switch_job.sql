-- Progress of a step: where the next one starts, how many were converted; finished when the
-- step found no more open leads.
UPDATE mode_switch_jobs SET last_lead_id = $2, done = done + $3, total = greatest(total, $4),
  state = CASE WHEN $5 THEN 'DONE' ELSE state END,
  finished_at = CASE WHEN $5 THEN now() END
WHERE id = $1
