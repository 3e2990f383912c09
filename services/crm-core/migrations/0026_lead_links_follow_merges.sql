-- Leads whose contact_id / company_id still name a contact or company a merge folded. Until
-- this release a merge moved a converted lead's converted_contact_id / converted_company_id but
-- left contact_id / company_id on the folded record (two UPDATEs of one row in one statement of
-- fold_contact / fold_company apply only one). Each now names the record its chain of merges
-- ends at (at most 20 merges along, as merged_into.sql follows them), as converted_*_id do.
-- Row locks on the leads concerned only; a lead a previous release's merge leaves so while the
-- rollout runs keeps its link readable (GetContact on it names the kept record).
WITH RECURSIVE chain (id, kept, depth) AS (
  SELECT id, merged_into, 1 FROM contacts WHERE merged_into IS NOT NULL
  UNION ALL
  SELECT chain.id, c.merged_into, chain.depth + 1 FROM chain
  JOIN contacts AS c ON c.id = chain.kept
  WHERE c.merged_into IS NOT NULL AND chain.depth < 20
), ends AS (
  SELECT DISTINCT ON (id) id, kept FROM chain ORDER BY id, depth DESC
)
UPDATE leads SET contact_id = ends.kept FROM ends WHERE leads.contact_id = ends.id;

WITH RECURSIVE chain (id, kept, depth) AS (
  SELECT id, merged_into, 1 FROM companies WHERE merged_into IS NOT NULL
  UNION ALL
  SELECT chain.id, c.merged_into, chain.depth + 1 FROM chain
  JOIN companies AS c ON c.id = chain.kept
  WHERE c.merged_into IS NOT NULL AND chain.depth < 20
), ends AS (
  SELECT DISTINCT ON (id) id, kept FROM chain ORDER BY id, depth DESC
)
UPDATE leads SET company_id = ends.kept FROM ends WHERE leads.company_id = ends.id;
