-- Every identity of the records of a merge ($1: LEAD, CONTACT or COMPANY), to lock them.
SELECT kind, value FROM lead_identities WHERE $1 = 'LEAD' AND lead_id = ANY($2::bigint[])
UNION SELECT kind, value FROM contact_identities
  WHERE $1 = 'CONTACT' AND contact_id = ANY($2::bigint[])
UNION SELECT kind, value FROM company_identities
  WHERE $1 = 'COMPANY' AND company_id = ANY($2::bigint[])
