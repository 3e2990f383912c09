-- Validates the constraints 0006 and 0007 added NOT VALID, once 0008 has brought the older rows
-- under them and committed (its row locks released). VALIDATE CONSTRAINT takes SHARE UPDATE
-- EXCLUSIVE on the table it scans (and ROW SHARE on a referenced one): readers and writers of the
-- previous release do not wait for it.

-- The sources of contacts, companies and deals (0007).
ALTER TABLE contacts VALIDATE CONSTRAINT contacts_source_fkey;
ALTER TABLE companies VALIDATE CONSTRAINT companies_source_fkey;
ALTER TABLE deals VALIDATE CONSTRAINT deals_source_fkey;

-- The call columns' CHECKs (0006).
ALTER TABLE activities VALIDATE CONSTRAINT activities_call_direction_check;
ALTER TABLE activities VALIDATE CONSTRAINT activities_call_outcome_check;
ALTER TABLE activities VALIDATE CONSTRAINT activities_call_duration_seconds_check;
ALTER TABLE activities VALIDATE CONSTRAINT activities_missed_calls_check;
ALTER TABLE activities VALIDATE CONSTRAINT activities_call_back_is_a_call;
ALTER TABLE users VALIDATE CONSTRAINT users_extension_check;
