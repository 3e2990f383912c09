-- Stages no longer in the pipeline's list (deals' foreign key refuses one that holds deals).
DELETE FROM pipeline_stages WHERE pipeline_id = $1 AND NOT (id = ANY($2::text[]))
