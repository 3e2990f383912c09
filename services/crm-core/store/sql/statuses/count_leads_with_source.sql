-- Records naming this source: leads, and contacts, companies and deals (migration 0007's keys).
SELECT (SELECT count(*) FROM leads WHERE source = $1)
  + (SELECT count(*) FROM contacts WHERE source_ref = $1)
  + (SELECT count(*) FROM companies WHERE source_ref = $1)
  + (SELECT count(*) FROM deals WHERE source_ref = $1)
