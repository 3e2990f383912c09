DELETE FROM pipelines WHERE id = $1
