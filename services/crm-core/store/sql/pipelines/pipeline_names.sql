-- The names of the other pipelines; domain NameKey decides which are the same name.
SELECT name FROM pipelines WHERE id <> $1
