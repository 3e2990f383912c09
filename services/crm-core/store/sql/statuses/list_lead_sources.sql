SELECT id, name, sort, '', system FROM lead_sources ORDER BY sort, id
