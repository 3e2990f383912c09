SELECT count(*) FROM leads WHERE status = $1
