#include "crm-core/statements.h"

namespace leadflow::crm {
namespace {

// The columns LoadLead/FillLead read, in this order; get_lead and list_leads share them so a
// page of leads is one query, identities included.
#define LEADFLOW_LEAD_COLUMNS                                                              \
  "SELECT id, title, status, source, first_name, last_name, company_name, city, comments," \
  " coalesce(responsible_user_id, 0), repeat_count, is_returning,"                         \
  " coalesce(previous_lead_id, 0), source_reference, utm::text, custom_fields::text,"      \
  " page_url, referrer, (extract(epoch FROM created_at) * 1000000)::bigint,"               \
  " (extract(epoch FROM updated_at) * 1000000)::bigint, version,"                          \
  " (SELECT coalesce(json_agg(value ORDER BY value), '[]') FROM lead_identities"           \
  "   WHERE lead_id = leads.id AND kind = 'PHONE')::text,"                                 \
  " (SELECT coalesce(json_agg(value ORDER BY value), '[]') FROM lead_identities"           \
  "   WHERE lead_id = leads.id AND kind = 'EMAIL')::text"                                  \
  " FROM leads"

#define LEADFLOW_ACTIVITY_COLUMNS                                       \
  "SELECT id, type, owner_type, owner_id, subject, description,"        \
  " coalesce(responsible_user_id, 0), completed,"                       \
  " coalesce((extract(epoch FROM deadline) * 1000000)::bigint, 0),"     \
  " (extract(epoch FROM created_at) * 1000000)::bigint,"                \
  " coalesce((extract(epoch FROM completed_at) * 1000000)::bigint, 0)," \
  " coalesce(origin_event_id, '')"                                      \
  " FROM activities"

}  // namespace

const std::vector<pg::Statement>& Statements() {
  static const std::vector<pg::Statement> kAll = {
      // ---- inbound batch: each runs once per batch, whatever its size ----
      // Transaction-scoped locks on every identity of the batch, in one global order (the hash),
      // so two consumers with overlapping identities serialise and never deadlock.
      {"lock_identities",
       "SELECT count(pg_advisory_xact_lock(h)) FROM ("
       " SELECT DISTINCT hashtextextended(k, 0) AS h FROM unnest($1::text[]) AS k ORDER BY h"
       ") AS ordered"},
      // The exactly-once key: only ids returned here are new and get effects.
      {"claim_events",
       "INSERT INTO processed_events (event_id) SELECT unnest($1::text[])"
       " ON CONFLICT DO NOTHING RETURNING event_id"},
      {"find_leads_by_identities",
       "SELECT DISTINCT l.id, l.status, coalesce(l.responsible_user_id, 0), all_ids.kind,"
       " all_ids.value"
       " FROM unnest($1::text[], $2::text[]) AS wanted (kind, value)"
       " JOIN lead_identities AS matched USING (kind, value)"
       " JOIN leads AS l ON l.id = matched.lead_id"
       " JOIN lead_identities AS all_ids ON all_ids.lead_id = l.id"},
      {"active_user_ids", "SELECT id FROM users WHERE active ORDER BY id"},
      // $1 round-robin positions, one per lead to assign; no row lock (see migration 0002).
      {"next_assignment_positions",
       "SELECT nextval('assignment_position') FROM generate_series(1, $1)"},
      {"allocate_lead_ids", "SELECT nextval('leads_id_seq') FROM generate_series(1, $1)"},
      {"insert_leads",
       "INSERT INTO leads (id, title, source, first_name, last_name, company_name, city, comments,"
       " source_reference, utm, custom_fields, page_url, referrer, responsible_user_id,"
       " repeat_count, is_returning, previous_lead_id, origin_event_id)"
       " SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[],"
       " $6::text[], $7::text[], $8::text[], $9::text[], $10::jsonb[], $11::jsonb[], $12::text[],"
       " $13::text[], $14::bigint[], $15::int[], $16::bool[], $17::bigint[], $18::text[])"},
      {"insert_lead_identities",
       "INSERT INTO lead_identities (kind, value, lead_id)"
       " SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[]) ON CONFLICT DO NOTHING"},
      {"insert_inbound_activities",
       "INSERT INTO activities (type, owner_type, owner_id, subject, description,"
       " responsible_user_id, completed, deadline, completed_at, origin_event_id)"
       " SELECT t, 'LEAD', o, s, d, r, c,"
       " CASE WHEN m > 0 THEN now() + make_interval(mins => m) END,"
       " CASE WHEN c THEN now() END, e"
       " FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::bool[],"
       " $7::int[], $8::text[]) AS x (t, o, s, d, r, c, m, e)"},
      {"add_lead_repeats",
       "UPDATE leads AS l SET repeat_count = l.repeat_count + d.n, updated_at = now(),"
       " version = l.version + 1"
       " FROM unnest($1::bigint[], $2::int[]) AS d (id, n) WHERE l.id = d.id"},

      // ---- API ----
      {"get_lead", LEADFLOW_LEAD_COLUMNS " WHERE id = $1"},
      // A whole page in one query (the rows and their identities), newest first.
      {"list_leads", LEADFLOW_LEAD_COLUMNS
       " WHERE ($1 = '' OR status = $1) AND ($2 = '' OR source = $2)"
       " AND ($3::bigint = 0 OR responsible_user_id = $3::bigint)"
       " AND ($4::bigint = 0 OR created_at >= to_timestamp($4::bigint / 1000000.0))"
       " AND ($5::bigint = 0 OR created_at < to_timestamp($5::bigint / 1000000.0))"
       " AND ($6::bigint = 0 OR id < $6::bigint)"
       " ORDER BY id DESC LIMIT $7"},
      {"insert_lead",
       "INSERT INTO leads (title, status, source, first_name, last_name, company_name, city,"
       " comments, responsible_user_id)"
       " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULLIF($9::bigint, 0)) RETURNING id"},
      {"update_lead",
       "UPDATE leads SET"
       " title = CASE WHEN $3 THEN $4 ELSE title END,"
       " status = CASE WHEN $5 THEN $6 ELSE status END,"
       " first_name = CASE WHEN $7 THEN $8 ELSE first_name END,"
       " last_name = CASE WHEN $9 THEN $10 ELSE last_name END,"
       " company_name = CASE WHEN $11 THEN $12 ELSE company_name END,"
       " city = CASE WHEN $13 THEN $14 ELSE city END,"
       " comments = CASE WHEN $15 THEN $16 ELSE comments END,"
       " responsible_user_id = CASE WHEN $17 THEN NULLIF($18::bigint, 0) ELSE responsible_user_id "
       "END,"
       " version = version + 1, updated_at = now()"
       " WHERE id = $1 AND ($2::bigint = 0 OR version = $2::bigint) RETURNING id"},
      {"lead_version", "SELECT version FROM leads WHERE id = $1"},
      {"round_robin_user",
       "WITH active AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n,"
       " count(*) OVER () AS total FROM users WHERE active)"
       " SELECT active.id FROM active"
       " WHERE active.n = (SELECT nextval('assignment_position')) % active.total"},
      {"insert_lead_identity",
       "INSERT INTO lead_identities (kind, value, lead_id) VALUES ($1, $2, $3)"
       " ON CONFLICT DO NOTHING"},

      {"select_activity", LEADFLOW_ACTIVITY_COLUMNS " WHERE id = $1"},
      {"list_activities", LEADFLOW_ACTIVITY_COLUMNS
       " WHERE ($1 = '' OR (owner_type = $1 AND owner_id = $2::bigint))"
       " AND ($3::bigint = 0 OR responsible_user_id = $3::bigint)"
       " AND ($4 = 0 OR ($4 = 1 AND NOT completed) OR ($4 = 2 AND completed))"
       " AND ($5::bigint = 0 OR id < $5::bigint)"
       " ORDER BY id DESC LIMIT $6"},
      {"insert_activity",
       "INSERT INTO activities (type, owner_type, owner_id, subject, description,"
       " responsible_user_id, deadline)"
       " VALUES ($1, $2, $3, $4, $5, NULLIF($6::bigint, 0),"
       " CASE WHEN $7::bigint = 0 THEN NULL ELSE to_timestamp($7::bigint / 1000000.0) END)"
       " RETURNING id"},
      {"complete_activity",
       "UPDATE activities SET completed = true, completed_at = coalesce(completed_at, now())"
       " WHERE id = $1 RETURNING id"},
      {"lead_exists", "SELECT 1 FROM leads WHERE id = $1"},
      {"lead_responsible", "SELECT coalesce(responsible_user_id, 0) FROM leads WHERE id = $1"},

      {"insert_user", "INSERT INTO users (name, email, active) VALUES ($1, $2, $3) RETURNING id"},
      {"select_user",
       "SELECT id, name, email, active, (extract(epoch FROM created_at) * 1000000)::bigint"
       " FROM users WHERE id = $1"},
      {"list_users",
       "SELECT id, name, email, active, (extract(epoch FROM created_at) * 1000000)::bigint"
       " FROM users WHERE id > $1 ORDER BY id LIMIT $2"},
      {"update_user",
       "UPDATE users SET name = CASE WHEN $2 THEN $3 ELSE name END,"
       " email = CASE WHEN $4 THEN $5 ELSE email END,"
       " active = CASE WHEN $6 THEN $7 ELSE active END"
       " WHERE id = $1 RETURNING id"},
      {"user_exists", "SELECT 1 FROM users WHERE id = $1 AND active"},
  };
  return kAll;
}

}  // namespace leadflow::crm

#undef LEADFLOW_LEAD_COLUMNS
#undef LEADFLOW_ACTIVITY_COLUMNS
