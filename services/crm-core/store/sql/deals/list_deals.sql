-- In id order after $1. Idle (the filter of $9): open, the stage sets idle_days, and no activity
-- for that many days — the same rule as domain IsIdle, which decides Deal.idle.
{{deal_columns}}
WHERE d.id > $1
  AND ($2 = 0 OR d.pipeline_id = $2)
  AND ($3 = '' OR d.stage_id = $3)
  AND ($4 = '' OR d.stage_semantics = $4)
  AND ($5 = 0 OR d.responsible_user_id = $5)
  AND ($6 = 0 OR EXISTS (SELECT 1 FROM deal_contacts c WHERE c.deal_id = d.id AND c.contact_id = $6))
  AND ($7 = 0 OR d.company_id = $7)
  AND (NOT $8 OR (NOT d.closed AND s.idle_days IS NOT NULL
                  AND d.last_activity_at <= now() - make_interval(days => s.idle_days)))
ORDER BY d.id LIMIT $9
