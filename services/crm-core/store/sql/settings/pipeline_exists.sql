SELECT 1 FROM pipelines WHERE id = $1
