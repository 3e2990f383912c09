-- The classic → simple switch job skips a lead it cannot convert (a constraint of the data
-- refuses it) instead of retrying its whole step for ever: it counts it in `failed` (0004) and
-- keeps which leads, the first 100 of them, and why the latest one failed, for GetSettings.
-- Adding columns with constant defaults rewrites nothing; their CHECKs scan this table, which
-- holds one row per switch ever made.
ALTER TABLE mode_switch_jobs
  ADD COLUMN failed_lead_ids bigint[] NOT NULL DEFAULT '{}'
    CHECK (cardinality(failed_lead_ids) <= 100),
  ADD COLUMN failure text NOT NULL DEFAULT '' CHECK (length(failure) <= 2000);

-- ConvertLead's request as it was asked (what to produce, the existing contact and company, the
-- pipeline), so that a request id reused for another request is refused instead of replaying
-- the first one's answer. NULL on older rows (then only `produce` is compared) and on the mode
-- switch's conversions (no request id). A nullable column without a constraint: no rewrite and
-- no scan under the ACCESS EXCLUSIVE lock. Its length is bounded where it is made (an enum name
-- and three ids: under 100 bytes), never from a caller's text.
ALTER TABLE conversions ADD COLUMN request text;
