-- Open deals of these contacts: (contact, deal, deal's responsible).
SELECT dc.contact_id, d.id, coalesce(d.responsible_user_id, 0)
FROM deal_contacts AS dc JOIN deals AS d ON d.id = dc.deal_id AND NOT d.closed
WHERE dc.contact_id = ANY ($1::bigint[])
