-- Among the keys ($1 kinds, $2 values), those contact $3 does not hold that another live contact
-- holds, each with the oldest such contact: one person's phone or email is never copied onto
-- another person's contact.
SELECT k.kind, k.value, min(c.id)
FROM unnest($1::text[], $2::text[]) AS k (kind, value)
JOIN contact_identities AS i USING (kind, value)
JOIN contacts AS c ON c.id = i.contact_id AND c.merged_into IS NULL AND c.id <> $3
WHERE NOT EXISTS (SELECT 1 FROM contact_identities AS own
                  WHERE own.kind = k.kind AND own.value = k.value AND own.contact_id = $3)
GROUP BY k.kind, k.value
ORDER BY k.kind, k.value
