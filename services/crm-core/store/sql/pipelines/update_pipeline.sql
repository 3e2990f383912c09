-- Name and sort, and a new version (every edit of the pipeline or its stages).
UPDATE pipelines SET name = $2, sort = $3, version = version + 1, updated_at = now()
WHERE id = $1
