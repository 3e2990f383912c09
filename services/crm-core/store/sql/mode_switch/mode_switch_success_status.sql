-- The status a converted lead takes (the one with SUCCESS semantics; seeded CONVERTED).
SELECT id FROM lead_statuses WHERE semantics = 'SUCCESS' ORDER BY sort, id LIMIT 1
