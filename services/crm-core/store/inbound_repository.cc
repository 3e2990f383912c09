#include "crm-core/store/inbound_repository.h"

#include <nlohmann/json.hpp>

#include "crm-core/domain/naming/naming.h"
#include "pg/pg.h"

namespace leadflow::crm {
namespace {

std::string Clean(const std::string& text) { return pg::StripNul(text); }

std::pair<std::vector<std::string>, std::vector<std::string>> Columns(
    const std::vector<IdentityKey>& keys) {
  std::vector<std::string> kinds;
  std::vector<std::string> values;
  for (const IdentityKey& key : keys) {
    kinds.push_back(key.kind);
    values.push_back(Clean(key.value));
  }
  return {std::move(kinds), std::move(values)};
}

std::vector<KnownParty> FindParties(pqxx::transaction_base& work, const std::string& find,
                                    const std::string& deals,
                                    const std::vector<IdentityKey>& keys) {
  std::map<int64_t, KnownParty> parties;
  if (keys.empty()) {
    return {};
  }
  auto [kinds, values] = Columns(keys);
  for (const auto& row : work.exec_prepared(find, pg::TextArray(kinds), pg::TextArray(values))) {
    KnownParty& party = parties[row[0].as<int64_t>()];
    party.id = row[0].as<int64_t>();
    party.responsible_user_id = row[1].as<int64_t>();
    party.identities.insert({row[2].as<std::string>(), row[3].as<std::string>()});
  }
  if (parties.empty()) {
    return {};
  }
  std::vector<int64_t> ids;
  for (const auto& [id, party] : parties) {
    ids.push_back(id);
  }
  for (const auto& row : work.exec_prepared(deals, pg::IntArray(ids))) {
    parties[row[0].as<int64_t>()].open_deals.emplace_back(row[1].as<int64_t>(),
                                                          row[2].as<int64_t>());
  }
  std::vector<KnownParty> out;
  for (auto& [id, party] : parties) {
    out.push_back(std::move(party));
  }
  return out;
}

std::vector<int64_t> Allocate(pqxx::transaction_base& work, const std::string& statement,
                              size_t count) {
  std::vector<int64_t> ids;
  if (count == 0) {
    return ids;
  }
  for (const auto& row : work.exec_prepared(statement, static_cast<int64_t>(count))) {
    ids.push_back(row[0].as<int64_t>());
  }
  return ids;
}

}  // namespace

InboundSettings InboundRepository::ReadSettings() {
  pqxx::row row = work_.exec_prepared1("read_inbound_settings");
  InboundSettings settings;
  // The column is CHECKed to these two names; anything else is a schema this binary does not
  // know, and failing loudly beats guessing a mode.
  auto mode = domain::ParseCrmMode(row[0].as<std::string>());
  if (!mode) {
    throw std::runtime_error("crm_settings.mode unknown: " + row[0].as<std::string>());
  }
  settings.mode = *mode;
  settings.repeat_rule = row[1].as<bool>();
  settings.last_name_placeholder = row[2].as<std::string>();
  settings.title_template = row[3].as<std::string>();
  settings.inbound_pipeline_id = row[4].as<int64_t>();
  settings.inbound_first_stage_id = row[5].as<std::string>();
  auto queues = nlohmann::json::parse(row[6].as<std::string>(), nullptr, false);
  if (queues.is_object()) {
    for (const auto& [channel, queue] : queues.items()) {
      if (queue.is_string()) {
        settings.channel_queues[channel] = queue.get<std::string>();
      }
    }
  }
  return settings;
}

std::vector<KnownParty> InboundRepository::FindContacts(const std::vector<IdentityKey>& keys) {
  return FindParties(work_, "inbound_find_contacts_by_identities",
                     "inbound_find_open_deals_of_contacts", keys);
}

std::vector<KnownParty> InboundRepository::FindCompanies(const std::vector<IdentityKey>& keys) {
  return FindParties(work_, "inbound_find_companies_by_identities",
                     "inbound_find_open_deals_of_companies", keys);
}

std::vector<KnownLead> InboundRepository::FindOpenLinkedLeads(
    const std::vector<int64_t>& contact_ids, const std::vector<int64_t>& lead_ids) {
  if (contact_ids.empty() && lead_ids.empty()) {
    return {};
  }
  std::map<int64_t, KnownLead> leads;
  for (const auto& row : work_.exec_prepared("inbound_find_open_linked_leads",
                                             pg::IntArray(contact_ids), pg::IntArray(lead_ids))) {
    KnownLead& lead = leads[row[0].as<int64_t>()];
    lead.id = row[0].as<int64_t>();
    lead.semantics = domain::Semantics::kProcess;  // the statement reads open leads only
    lead.responsible_user_id = row[2].as<int64_t>();
    lead.contact_id = row[3].as<int64_t>();
    lead.previous_lead_id = row[4].as<int64_t>();
    if (!row[5].is_null()) {
      lead.identities.insert({row[5].as<std::string>(), row[6].as<std::string>()});
    }
  }
  std::vector<KnownLead> out;
  for (auto& [id, lead] : leads) {
    out.push_back(std::move(lead));
  }
  return out;
}

std::vector<int64_t> InboundRepository::AllocateContactIds(size_t count) {
  return Allocate(work_, "inbound_allocate_contact_ids", count);
}

std::vector<int64_t> InboundRepository::AllocateDealIds(size_t count) {
  return Allocate(work_, "inbound_allocate_deal_ids", count);
}

void InboundRepository::InsertContacts(const std::vector<NewContactRow>& contacts) {
  if (contacts.empty()) {
    return;
  }
  std::vector<int64_t> ids, responsible;
  std::vector<std::string> first, last, first_last, last_first, source, comments, event;
  for (const NewContactRow& contact : contacts) {
    ids.push_back(contact.id);
    first.push_back(Clean(contact.first_name));
    last.push_back(Clean(contact.last_name));
    domain::PersonSearchKeys keys = domain::PersonKeys(first.back(), last.back());
    first_last.push_back(Clean(keys.first_last));
    last_first.push_back(Clean(keys.last_first));
    responsible.push_back(contact.responsible_user_id);
    source.push_back(Clean(contact.source_id));
    comments.push_back(Clean(contact.comments));
    event.push_back(Clean(contact.origin_event_id));
  }
  work_.exec_prepared("insert_inbound_contacts", pg::IntArray(ids), pg::TextArray(first),
                      pg::TextArray(last), pg::TextArray(first_last), pg::TextArray(last_first),
                      pg::IntArray(responsible), pg::TextArray(source), pg::TextArray(comments),
                      pg::TextArray(event));
}

void InboundRepository::AddContactIdentities(
    const std::vector<std::pair<int64_t, IdentityKey>>& identities) {
  if (identities.empty()) {
    return;
  }
  std::vector<std::string> kinds, values;
  std::vector<int64_t> ids;
  for (const auto& [id, key] : identities) {
    kinds.push_back(key.kind);
    values.push_back(Clean(key.value));
    ids.push_back(id);
  }
  work_.exec_prepared("inbound_insert_contact_identities", pg::TextArray(kinds),
                      pg::TextArray(values), pg::IntArray(ids));
}

void InboundRepository::InsertDeals(const std::vector<NewDealRow>& deals) {
  if (deals.empty()) {
    return;
  }
  std::vector<int64_t> ids, pipelines, companies, responsible, leads, contacts;
  std::vector<std::string> titles, stages, sources, events;
  for (const NewDealRow& deal : deals) {
    ids.push_back(deal.id);
    titles.push_back(Clean(deal.title));
    pipelines.push_back(deal.pipeline_id);
    stages.push_back(deal.stage_id);
    companies.push_back(deal.company_id);
    responsible.push_back(deal.responsible_user_id);
    sources.push_back(Clean(deal.source_id));
    leads.push_back(deal.lead_id);
    events.push_back(Clean(deal.origin_event_id));
    contacts.push_back(deal.contact_id);
  }
  work_.exec_prepared("insert_inbound_deals", pg::IntArray(ids), pg::TextArray(titles),
                      pg::IntArray(pipelines), pg::TextArray(stages), pg::IntArray(companies),
                      pg::IntArray(responsible), pg::TextArray(sources), pg::IntArray(leads),
                      pg::TextArray(events), pg::IntArray(contacts));
}

void InboundRepository::LinkLeads(const std::map<int64_t, std::pair<int64_t, int64_t>>& links) {
  if (links.empty()) {
    return;
  }
  std::vector<int64_t> ids, contacts, companies;
  for (const auto& [id, link] : links) {
    ids.push_back(id);
    contacts.push_back(link.first);
    companies.push_back(link.second);
  }
  work_.exec_prepared("inbound_link_leads_to_parties", pg::IntArray(ids), pg::IntArray(contacts),
                      pg::IntArray(companies));
}

void InboundRepository::InsertActivities(const std::vector<InboundActivityRow>& activities) {
  if (activities.empty()) {
    return;
  }
  std::vector<std::string> types, owners, subjects, descriptions, events;
  std::vector<int64_t> owner_ids, responsible, deadlines;
  std::vector<bool> completed;
  for (const InboundActivityRow& activity : activities) {
    types.push_back(activity.type);
    owners.emplace_back(domain::ToString(activity.owner));
    owner_ids.push_back(activity.owner_id);
    subjects.push_back(Clean(activity.subject));
    descriptions.push_back(Clean(activity.description));
    responsible.push_back(activity.responsible_user_id);
    completed.push_back(activity.completed);
    deadlines.push_back(activity.deadline_minutes);
    events.push_back(Clean(activity.origin_event_id));
  }
  work_.exec_prepared("insert_inbound_activities_on_owners", pg::TextArray(types),
                      pg::TextArray(owners), pg::IntArray(owner_ids), pg::TextArray(subjects),
                      pg::TextArray(descriptions), pg::IdArrayZeroNull(responsible),
                      pg::BoolArray(completed), pg::IntArray(deadlines), pg::TextArray(events));
}

void InboundRepository::TouchDeals(const std::set<int64_t>& deal_ids) {
  if (!deal_ids.empty()) {
    work_.exec_prepared("inbound_touch_deals",
                        pg::IntArray(std::vector<int64_t>(deal_ids.begin(), deal_ids.end())));
  }
}

std::map<std::string, std::vector<int64_t>> InboundRepository::QueueMembers(
    const std::set<std::string>& queues) {
  std::map<std::string, std::vector<int64_t>> members;
  if (queues.empty()) {
    return members;
  }
  for (const auto& row :
       work_.exec_prepared("inbound_queue_members",
                           pg::TextArray(std::vector<std::string>(queues.begin(), queues.end())))) {
    members[row[0].as<std::string>()].push_back(row[1].as<int64_t>());
  }
  return members;
}

int64_t AdvanceQueue(pqxx::connection& connection, const std::string& queue, int64_t count) {
  pqxx::work work(connection);
  const int64_t first = work.exec_prepared1("inbound_advance_queue", queue, count)[0].as<int64_t>();
  work.commit();
  return first;
}

}  // namespace leadflow::crm
