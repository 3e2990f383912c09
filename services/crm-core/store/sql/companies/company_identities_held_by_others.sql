-- Among the keys ($1 kinds, $2 values), those company $3 does not hold that another live company
-- holds, each with the oldest such company: one company's phone or email is never copied onto
-- another company.
SELECT k.kind, k.value, min(c.id)
FROM unnest($1::text[], $2::text[]) AS k (kind, value)
JOIN company_identities AS i USING (kind, value)
JOIN companies AS c ON c.id = i.company_id AND c.merged_into IS NULL AND c.id <> $3
WHERE NOT EXISTS (SELECT 1 FROM company_identities AS own
                  WHERE own.kind = k.kind AND own.value = k.value AND own.company_id = $3)
GROUP BY k.kind, k.value
ORDER BY k.kind, k.value
