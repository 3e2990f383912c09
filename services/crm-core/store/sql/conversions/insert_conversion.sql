INSERT INTO conversions (request_id, lead_id, produce, contact_id, company_id, deal_id, user_id,
  request)
VALUES (nullif($1, ''), $2, $3, nullif($4, 0), nullif($5, 0), nullif($6, 0), nullif($7, 0),
  nullif($8, ''))
