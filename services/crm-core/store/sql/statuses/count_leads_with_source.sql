SELECT count(*) FROM leads WHERE source = $1
