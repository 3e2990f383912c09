-- By sort, then id, after the place ($2 sort, $3 id) where the previous page ended ($1: there is
-- one). The place itself, not the pipeline at it: that one may be deleted or moved since.
SELECT id, sort FROM pipelines
WHERE NOT $1 OR (sort, id) > ($2::integer, $3::bigint)
ORDER BY sort, id LIMIT $4
