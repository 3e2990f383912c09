-- Every contact (not folded by a merge) holding one of the identities, with all its identities;
-- its open deals come from find_open_deals_of_contacts.
SELECT DISTINCT c.id, coalesce(c.responsible_user_id, 0), all_ids.kind, all_ids.value
FROM unnest($1::text[], $2::text[]) AS wanted (kind, value)
JOIN contact_identities AS matched USING (kind, value)
JOIN contacts AS c ON c.id = matched.contact_id AND c.merged_into IS NULL
JOIN contact_identities AS all_ids ON all_ids.contact_id = c.id
