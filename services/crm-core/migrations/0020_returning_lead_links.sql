-- leadflow:no-transaction
-- A returning lead holds only the identities of the message that made it; the inbound consumer
-- finds it through its links instead (inbound_find_open_linked_leads): the contact it was made for
-- (leads_contact, 0004) and the earlier lead it returned to, looked up here. Built without
-- blocking writers; see 0009.
CREATE INDEX CONCURRENTLY IF NOT EXISTS leads_previous_lead ON leads (previous_lead_id)
  WHERE previous_lead_id IS NOT NULL;
