#include <nlohmann/json.hpp>

#include "crm-core/domain/naming/naming.h"
#include "crm-core/store/repositories.h"
#include "pg/pg.h"

namespace leadflow::crm {
namespace {

std::string Clean(const std::string& text) { return pg::StripNul(text); }

// JSON text of a string map, with invalid UTF-8 replaced so PostgreSQL accepts it.
std::string JsonObject(const std::map<std::string, std::string>& values) {
  nlohmann::json object = nlohmann::json::object();
  for (const auto& [key, value] : values) {
    object[Clean(key)] = Clean(value);
  }
  return object.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::map<std::string, std::string> StringMap(const std::string& json_text) {
  std::map<std::string, std::string> out;
  auto json = nlohmann::json::parse(json_text, nullptr, false);
  if (!json.is_object()) {
    return out;
  }
  for (const auto& [key, value] : json.items()) {
    out[key] = value.is_string() ? value.get<std::string>() : value.dump();
  }
  return out;
}

std::vector<std::string> StringList(const std::string& json_text) {
  std::vector<std::string> out;
  auto json = nlohmann::json::parse(json_text, nullptr, false);
  if (!json.is_array()) {
    return out;
  }
  for (const auto& value : json) {
    if (value.is_string()) {
      out.push_back(value.get<std::string>());
    }
  }
  return out;
}

// A row of get_lead / list_leads (store/sql/_lead_columns.sql).
Lead ReadLead(const pqxx::row& row) {
  Lead lead;
  lead.id = row[0].as<int64_t>();
  lead.title = row[1].as<std::string>();
  lead.status = row[2].as<std::string>();
  lead.source = row[3].as<std::string>();
  lead.first_name = row[4].as<std::string>();
  lead.last_name = row[5].as<std::string>();
  lead.company_name = row[6].as<std::string>();
  lead.city = row[7].as<std::string>();
  lead.comments = row[8].as<std::string>();
  lead.responsible_user_id = row[9].as<int64_t>();
  lead.repeat_count = row[10].as<int>();
  lead.returning = row[11].as<bool>();
  lead.previous_lead_id = row[12].as<int64_t>();
  lead.source_details = StringMap(row[13].as<std::string>());
  lead.create_micros = row[14].as<int64_t>();
  lead.update_micros = row[15].as<int64_t>();
  lead.version = row[16].as<int64_t>();
  lead.phones = StringList(row[17].as<std::string>());
  lead.emails = StringList(row[18].as<std::string>());
  lead.contact_id = row[19].as<int64_t>();
  lead.company_id = row[20].as<int64_t>();
  lead.converted_contact_id = row[21].as<int64_t>();
  lead.converted_company_id = row[22].as<int64_t>();
  lead.converted_deal_id = row[23].as<int64_t>();
  return lead;
}

}  // namespace

std::optional<Lead> LeadRepository::Get(int64_t id) {
  pqxx::result rows = work_.exec_prepared("get_lead", id);
  if (rows.empty()) {
    return std::nullopt;
  }
  return ReadLead(rows[0]);
}

std::vector<Lead> LeadRepository::List(const Filter& filter, int64_t before_id, int limit) {
  std::vector<Lead> leads;
  for (const auto& row : work_.exec_prepared(
           "list_leads", filter.status, filter.source, filter.responsible_user_id,
           filter.created_after_micros, filter.created_before_micros, before_id, limit)) {
    leads.push_back(ReadLead(row));
  }
  return leads;
}

int64_t LeadRepository::Insert(const Lead& lead) {
  return work_
      .exec_prepared1("insert_lead", lead.title, lead.status, lead.source, lead.first_name,
                      lead.last_name, lead.company_name, lead.city, lead.comments,
                      lead.responsible_user_id)[0]
      .as<int64_t>();
}

void LeadRepository::AddIdentity(int64_t lead_id, const IdentityKey& key) {
  work_.exec_prepared("insert_lead_identity", key.kind, key.value, lead_id);
}

bool LeadRepository::Update(int64_t id, int64_t expected_version,
                            const std::set<std::string>& fields, const Lead& values) {
  auto has = [&](const char* field) { return fields.count(field) != 0; };
  return !work_
              .exec_prepared("update_lead", id, expected_version, has("title"), values.title,
                             has("status"), values.status, has("first_name"), values.first_name,
                             has("last_name"), values.last_name, has("company_name"),
                             values.company_name, has("city"), values.city, has("comments"),
                             values.comments, has("responsible_user_id"),
                             values.responsible_user_id)
              .empty();
}

bool LeadRepository::Exists(int64_t id) { return !work_.exec_prepared("lead_exists", id).empty(); }

std::optional<int64_t> LeadRepository::Responsible(int64_t id) {
  pqxx::result rows = work_.exec_prepared("lead_responsible", id);
  if (rows.empty()) {
    return std::nullopt;
  }
  return rows[0][0].as<int64_t>();
}

std::vector<KnownLead> LeadRepository::FindByIdentities(const std::vector<IdentityKey>& keys) {
  std::vector<std::string> kinds;
  std::vector<std::string> values;
  for (const IdentityKey& key : keys) {
    kinds.push_back(key.kind);
    values.push_back(key.value);
  }
  std::map<int64_t, KnownLead> known;
  for (const auto& row : work_.exec_prepared("find_leads_by_identities", pg::TextArray(kinds),
                                             pg::TextArray(values))) {
    KnownLead& lead = known[row[0].as<int64_t>()];
    lead.id = row[0].as<int64_t>();
    // The column is CHECKed to these three names: anything else is a schema this binary does
    // not know, and failing loudly beats guessing open or closed.
    auto semantics = ParseSemantics(row[1].as<std::string>());
    if (!semantics) {
      throw std::runtime_error("lead status with unknown semantics " + row[1].as<std::string>());
    }
    lead.semantics = *semantics;
    lead.responsible_user_id = row[2].as<int64_t>();
    lead.identities.insert({row[3].as<std::string>(), row[4].as<std::string>()});
  }
  std::vector<KnownLead> out;
  out.reserve(known.size());
  for (auto& [id, lead] : known) {
    out.push_back(std::move(lead));
  }
  return out;
}

std::vector<int64_t> LeadRepository::AllocateIds(size_t count) {
  std::vector<int64_t> ids;
  for (const auto& row : work_.exec_prepared("allocate_lead_ids", static_cast<int64_t>(count))) {
    ids.push_back(row[0].as<int64_t>());
  }
  return ids;
}

void LeadRepository::InsertMany(const std::vector<Lead>& leads) {
  if (leads.empty()) {
    return;
  }
  std::vector<std::string> title, source, first, last, company, city, comments, details, origin,
      search_name, search_company;
  std::vector<int64_t> ids, responsible, repeats, previous;
  std::vector<bool> returning;
  for (const Lead& lead : leads) {
    ids.push_back(lead.id);
    title.push_back(Clean(lead.title));
    source.push_back(lead.source);
    first.push_back(Clean(lead.first_name));
    last.push_back(Clean(lead.last_name));
    company.push_back(Clean(lead.company_name));
    city.push_back(Clean(lead.city));
    comments.push_back(Clean(lead.comments));
    details.push_back(JsonObject(lead.source_details));
    responsible.push_back(lead.responsible_user_id);
    repeats.push_back(lead.repeat_count);
    returning.push_back(lead.returning);
    previous.push_back(lead.previous_lead_id);
    origin.push_back(lead.origin_event_id);
    // The keys SetLeadSearchKeys writes for a lead the API creates.
    search_name.push_back(domain::PersonKeys(first.back(), last.back()).first_last);
    search_company.push_back(domain::StoredSearchKey(company.back()));
  }
  work_.exec_prepared(
      "insert_leads", pg::IntArray(ids), pg::TextArray(title), pg::TextArray(source),
      pg::TextArray(first), pg::TextArray(last), pg::TextArray(company), pg::TextArray(city),
      pg::TextArray(comments), pg::TextArray(details), pg::IdArrayZeroNull(responsible),
      pg::IntArray(repeats), pg::BoolArray(returning), pg::IdArrayZeroNull(previous),
      pg::TextArray(origin), pg::TextArray(search_name), pg::TextArray(search_company));
}

void LeadRepository::AddIdentities(const std::vector<std::pair<int64_t, IdentityKey>>& identities) {
  if (identities.empty()) {
    return;
  }
  std::vector<std::string> kinds, values;
  std::vector<int64_t> owners;
  for (const auto& [lead, key] : identities) {
    kinds.push_back(key.kind);
    values.push_back(Clean(key.value));
    owners.push_back(lead);
  }
  work_.exec_prepared("insert_lead_identities", pg::TextArray(kinds), pg::TextArray(values),
                      pg::IntArray(owners));
}

void LeadRepository::MarkReturning(int64_t lead_id, int64_t previous_lead_id, int64_t contact_id,
                                   int64_t company_id) {
  work_.exec_prepared0("mark_lead_returning", lead_id, previous_lead_id, contact_id, company_id);
}

void LeadRepository::AddRepeats(const std::map<int64_t, int>& repeats) {
  if (repeats.empty()) {
    return;
  }
  std::vector<int64_t> lead, count;
  for (const auto& [id, n] : repeats) {
    lead.push_back(id);
    count.push_back(n);
  }
  work_.exec_prepared("add_lead_repeats", pg::IntArray(lead), pg::IntArray(count));
}

}  // namespace leadflow::crm
