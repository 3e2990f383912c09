SELECT count(*) FROM deals WHERE pipeline_id = $1
