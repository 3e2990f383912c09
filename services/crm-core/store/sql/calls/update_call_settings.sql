-- The call part of crm_settings; the caller's settings update bumps the version (the etag).
UPDATE crm_settings SET call_back_sla_minutes = $1, outbound_call_creates_lead = $2 WHERE id = 1
