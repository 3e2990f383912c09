SELECT 1 FROM pipelines WHERE lower(btrim(name)) = lower(btrim($1)) AND id <> $2
