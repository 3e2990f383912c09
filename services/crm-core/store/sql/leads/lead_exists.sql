SELECT 1 FROM leads WHERE id = $1
