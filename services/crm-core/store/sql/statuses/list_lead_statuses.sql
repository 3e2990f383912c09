SELECT id, name, sort, semantics, system FROM lead_statuses ORDER BY sort, id
