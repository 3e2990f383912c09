-- A page in id order; merged-away contacts are never listed.
{{contact_columns}}
WHERE c.merged_into IS NULL
  AND ($1::bigint = 0 OR c.responsible_user_id = $1::bigint)
  AND ($2::bigint = 0 OR EXISTS (SELECT 1 FROM contact_companies AS f
                                 WHERE f.contact_id = c.id AND f.company_id = $2::bigint))
  AND ($3::bigint = 0 OR c.created_at >= to_timestamp($3::bigint / 1000000.0))
  AND ($4::bigint = 0 OR c.created_at < to_timestamp($4::bigint / 1000000.0))
  AND c.id > $5::bigint
ORDER BY c.id LIMIT $6
