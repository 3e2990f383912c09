-- By sort, then id; $1 is the last id of the previous page (0: the first page).
SELECT id FROM pipelines
WHERE $1 = 0 OR (sort, id) > (SELECT sort, id FROM pipelines WHERE id = $1)
ORDER BY sort, id LIMIT $2
