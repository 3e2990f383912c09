// Contacts, companies, links, search and merges over PostgreSQL
// (store/sql/{contacts,companies,search,merges}/).
#include <nlohmann/json.hpp>

#include <algorithm>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

#include "crm-core/domain/naming/naming.h"
#include "crm-core/store/people_repository.h"
#include "crm-core/store/repositories.h"
#include "pg/pg.h"

namespace leadflow::crm {
namespace {

std::string Clean(const std::string& text) { return pg::StripNul(text); }

nlohmann::json ParseArray(const std::string& text) {
  auto json = nlohmann::json::parse(text, nullptr, false);
  return json.is_array() ? json : nlohmann::json::array();
}

std::vector<IdentityKey> ReadIdentities(const std::string& text) {
  std::vector<IdentityKey> keys;
  for (const auto& pair : ParseArray(text)) {
    keys.push_back({pair[0].get<std::string>(), pair[1].get<std::string>()});
  }
  return keys;
}

// [[other_id, role, created_micros], …] as links seen from `id`'s side.
std::vector<CompanyLink> ReadLinks(const std::string& text, int64_t id, bool from_contact) {
  std::vector<CompanyLink> links;
  for (const auto& item : ParseArray(text)) {
    CompanyLink link{.role = item[1].get<std::string>(), .create_micros = item[2].get<int64_t>()};
    link.contact_id = from_contact ? id : item[0].get<int64_t>();
    link.company_id = from_contact ? item[0].get<int64_t>() : id;
    links.push_back(std::move(link));
  }
  return links;
}

std::vector<int64_t> ReadIds(const std::string& text) {
  std::vector<int64_t> ids;
  for (const auto& id : ParseArray(text)) {
    ids.push_back(id.get<int64_t>());
  }
  return ids;
}

Contact ReadContact(const pqxx::row& row) {
  Contact contact{.id = row[0].as<int64_t>(),
                  .first_name = row[1].as<std::string>(),
                  .last_name = row[2].as<std::string>(),
                  .position = row[3].as<std::string>(),
                  .responsible_user_id = row[4].as<int64_t>(),
                  .source_id = row[5].as<std::string>(),
                  .comments = row[6].as<std::string>(),
                  .origin_event_id = row[7].as<std::string>(),
                  .version = row[8].as<int64_t>(),
                  .create_micros = row[9].as<int64_t>(),
                  .update_micros = row[10].as<int64_t>(),
                  .merged_into = row[11].as<int64_t>()};
  contact.identities = ReadIdentities(row[12].as<std::string>());
  contact.companies = ReadLinks(row[13].as<std::string>(), contact.id, true);
  contact.deal_ids = ReadIds(row[14].as<std::string>());
  return contact;
}

Company ReadCompany(const pqxx::row& row) {
  Company company{.id = row[0].as<int64_t>(),
                  .name = row[1].as<std::string>(),
                  .industry = row[2].as<std::string>(),
                  .website = row[3].as<std::string>(),
                  .responsible_user_id = row[4].as<int64_t>(),
                  .source_id = row[5].as<std::string>(),
                  .comments = row[6].as<std::string>(),
                  .origin_event_id = row[7].as<std::string>(),
                  .version = row[8].as<int64_t>(),
                  .create_micros = row[9].as<int64_t>(),
                  .update_micros = row[10].as<int64_t>(),
                  .merged_into = row[11].as<int64_t>()};
  company.identities = ReadIdentities(row[12].as<std::string>());
  company.contacts = ReadLinks(row[13].as<std::string>(), company.id, false);
  company.deal_ids = ReadIds(row[14].as<std::string>());
  return company;
}

std::vector<int64_t> FirstColumnIds(const pqxx::result& rows) {
  std::vector<int64_t> ids;
  for (const auto& row : rows) {
    ids.push_back(row[0].as<int64_t>());
  }
  return ids;
}

std::pair<std::string, std::string> KindsAndValues(const std::vector<IdentityKey>& keys) {
  std::vector<std::string> kinds;
  std::vector<std::string> values;
  for (const IdentityKey& key : keys) {
    kinds.push_back(key.kind);
    values.push_back(Clean(key.value));
  }
  return {pg::TextArray(kinds), pg::TextArray(values)};
}

// A search row; a contact's display name from its own columns, from `contact_at` on (first name,
// last name, whether that is the placeholder, its first identity): naming's ContactDisplayName.
SearchHit ReadHit(const pqxx::row& row, std::optional<int> contact_at = std::nullopt) {
  SearchHit hit{.type = row[0].as<std::string>(),
                .id = row[1].as<int64_t>(),
                .display_name = row[2].as<std::string>(),
                .company_name = row[3].as<std::string>(),
                .responsible_user_id = row[4].as<int64_t>(),
                .closed = row[5].as<bool>()};
  if (contact_at && hit.type == "CONTACT") {
    const int at = *contact_at;
    hit.display_name =
        domain::ContactDisplayName(row[at].as<std::string>(), row[at + 1].as<std::string>(),
                                   row[at + 2].as<bool>(false), row[at + 3].as<std::string>());
  }
  return hit;
}

}  // namespace

void LockIdentityKeys(pqxx::transaction_base& work, const std::vector<IdentityKey>& keys) {
  std::vector<std::string> lock_keys;
  for (const IdentityKey& key : keys) {
    lock_keys.push_back(IdentityLockKey(key));
  }
  EventRepository(work).LockIdentities(lock_keys);
}

std::optional<int64_t> HoldReferenced(pqxx::transaction_base& work, domain::EntityKind kind,
                                      int64_t id) {
  const char* statement = "hold_deal";
  switch (kind) {
    case domain::EntityKind::kLead:
      statement = "hold_lead";
      break;
    case domain::EntityKind::kContact:
      statement = "hold_contact";
      break;
    case domain::EntityKind::kCompany:
      statement = "hold_company";
      break;
    case domain::EntityKind::kDeal:
      break;
  }
  pqxx::result rows = work.exec_prepared(statement, id);
  if (rows.empty()) {
    return std::nullopt;
  }
  return rows[0][0].as<int64_t>();
}

std::vector<HeldIdentity> IdentitiesHeldByAnother(pqxx::transaction_base& work,
                                                  domain::EntityKind kind, int64_t id,
                                                  const std::vector<IdentityKey>& keys) {
  std::vector<HeldIdentity> held;
  if (keys.empty()) {
    return held;
  }
  const char* statement = kind == domain::EntityKind::kCompany
                              ? "company_identities_held_by_others"
                              : "contact_identities_held_by_others";
  auto [kinds, values] = KindsAndValues(keys);
  for (const auto& row : work.exec_prepared(statement, kinds, values, id)) {
    held.push_back({{row[0].as<std::string>(), row[1].as<std::string>()}, row[2].as<int64_t>()});
  }
  return held;
}

AddedIdentities AddIdentitiesToExisting(pqxx::transaction_base& work, domain::EntityKind kind,
                                        int64_t id, const std::vector<IdentityKey>& keys,
                                        int64_t user_id, const std::string& event_id,
                                        std::optional<size_t> max_identities) {
  const bool company = kind == domain::EntityKind::kCompany;
  AddedIdentities done;
  pqxx::result rows =
      work.exec_prepared(company ? "lock_company_identities" : "lock_contact_identities", id);
  if (rows.empty() || keys.empty()) {
    return done;
  }
  std::vector<IdentityKey> held;
  for (const auto& row : rows) {
    if (!row[0].is_null()) {
      held.push_back({row[0].as<std::string>(), row[1].as<std::string>()});
    }
  }
  std::vector<IdentityKey> wanted;
  for (const IdentityKey& key : keys) {
    IdentityKey clean{key.kind, Clean(key.value)};
    if (std::find(held.begin(), held.end(), clean) == held.end() &&
        std::find(wanted.begin(), wanted.end(), clean) == wanted.end()) {
      wanted.push_back(std::move(clean));
    }
  }
  done.left = IdentitiesHeldByAnother(work, kind, id, wanted);
  for (const IdentityKey& key : wanted) {
    if (std::none_of(done.left.begin(), done.left.end(),
                     [&](const HeldIdentity& other) { return other.key == key; })) {
      if (max_identities && held.size() + done.added.size() >= *max_identities) {
        done.capped.push_back(key);
      } else {
        done.added.push_back(key);
      }
    }
  }
  if (done.added.empty()) {
    return done;
  }
  auto [kinds, values] = KindsAndValues(done.added);
  work.exec_prepared0(company ? "insert_company_identities" : "insert_contact_identities", kinds,
                      values, id);
  work.exec_prepared0(company ? "touch_company_version" : "touch_contact_version", id);
  std::vector<IdentityKey> now = held;
  now.insert(now.end(), done.added.begin(), done.added.end());
  std::sort(held.begin(), held.end());
  std::sort(now.begin(), now.end());
  auto join = [](const std::vector<IdentityKey>& list, const char* of) {
    std::vector<std::string> values;
    for (const IdentityKey& key : list) {
      if (key.kind == of) values.push_back(key.value);
    }
    return absl::StrJoin(values, ", ");
  };
  std::vector<HistoryRecord> history;
  for (const auto& [field, of] :
       {std::pair{"phones", "PHONE"}, {"emails", "EMAIL"}, {"messengers", "MESSENGER"}}) {
    std::string before = join(held, of);
    std::string after = join(now, of);
    if (before == after) continue;
    HistoryRecord& entry = history.emplace_back(HistoryRecord::Of(kind, id, "FIELD_CHANGED"));
    entry.field = field;
    entry.old_value = std::move(before);
    entry.new_value = std::move(after);
    entry.user_id = user_id;
    entry.event_id = event_id;
  }
  HistoryRepository(work).Append(history);
  return done;
}

void TouchDealActivity(pqxx::transaction_base& work, int64_t deal_id) {
  work.exec_prepared0("touch_deal_activity", deal_id);
}

void SetLeadSearchKeys(pqxx::transaction_base& work, int64_t lead_id, const std::string& first,
                       const std::string& last, const std::string& company) {
  work.exec_prepared0("set_lead_search_keys", lead_id, domain::PersonKeys(first, last).first_last,
                      domain::StoredSearchKey(company));
}

// ---- contacts ----

std::optional<Contact> ContactRepository::Get(int64_t id, bool lock) {
  pqxx::result rows = work_.exec_prepared(lock ? "get_contact_for_update" : "get_contact", id);
  if (rows.empty()) {
    return std::nullopt;
  }
  return ReadContact(rows[0]);
}

std::vector<Contact> ContactRepository::List(const PeopleFilter& filter, int64_t after_id,
                                             int limit) {
  std::vector<Contact> contacts;
  for (const auto& row : work_.exec_prepared("list_contacts", filter.responsible_user_id,
                                             filter.linked_id, filter.created_after_micros,
                                             filter.created_before_micros, after_id, limit)) {
    contacts.push_back(ReadContact(row));
  }
  return contacts;
}

int64_t ContactRepository::Insert(const Contact& contact) {
  domain::PersonSearchKeys keys = domain::PersonKeys(contact.first_name, contact.last_name);
  return work_
      .exec_prepared1("insert_contact", Clean(contact.first_name), Clean(contact.last_name),
                      keys.first_last, keys.last_first, Clean(contact.position),
                      contact.responsible_user_id, Clean(contact.source_id),
                      Clean(contact.comments), Clean(contact.origin_event_id))[0]
      .as<int64_t>();
}

bool ContactRepository::Update(const Contact& contact, int64_t version) {
  domain::PersonSearchKeys keys = domain::PersonKeys(contact.first_name, contact.last_name);
  return !work_
              .exec_prepared("update_contact", contact.id, version, Clean(contact.first_name),
                             Clean(contact.last_name), keys.first_last, keys.last_first,
                             Clean(contact.position), contact.responsible_user_id,
                             Clean(contact.source_id), Clean(contact.comments))
              .empty();
}

void ContactRepository::SetIdentities(int64_t id, const std::vector<IdentityKey>& keys) {
  work_.exec_prepared0("delete_contact_identities", id);
  auto [kinds, values] = KindsAndValues(keys);
  work_.exec_prepared0("insert_contact_identities", kinds, values, id);
}

std::vector<int64_t> ContactRepository::Delete(int64_t id) {
  return FirstColumnIds(work_.exec_prepared("delete_contact", id));
}

std::vector<int64_t> ContactRepository::FindByIdentities(const std::vector<IdentityKey>& keys) {
  auto [kinds, values] = KindsAndValues(keys);
  return FirstColumnIds(work_.exec_prepared("find_contacts_by_identities", kinds, values));
}

std::optional<std::string> ContactRepository::Link(int64_t contact_id, int64_t company_id,
                                                   const std::optional<std::string>& role) {
  pqxx::result rows = work_.exec_prepared("contact_company_role", contact_id, company_id);
  std::optional<std::string> previous;
  if (!rows.empty()) {
    previous = rows[0][0].as<std::string>();
  }
  work_.exec_prepared0("link_contact_company", contact_id, company_id,
                       Clean(role.value_or(previous.value_or(""))));
  return previous;
}

bool ContactRepository::Unlink(int64_t contact_id, int64_t company_id) {
  return !work_.exec_prepared("unlink_contact_company", contact_id, company_id).empty();
}

// ---- companies ----

std::optional<Company> CompanyRepository::Get(int64_t id, bool lock) {
  pqxx::result rows = work_.exec_prepared(lock ? "get_company_for_update" : "get_company", id);
  if (rows.empty()) {
    return std::nullopt;
  }
  return ReadCompany(rows[0]);
}

std::vector<Company> CompanyRepository::List(const PeopleFilter& filter, int64_t after_id,
                                             int limit) {
  std::vector<Company> companies;
  for (const auto& row : work_.exec_prepared("list_companies", filter.responsible_user_id,
                                             filter.linked_id, filter.created_after_micros,
                                             filter.created_before_micros, after_id, limit)) {
    companies.push_back(ReadCompany(row));
  }
  return companies;
}

int64_t CompanyRepository::Insert(const Company& company) {
  return work_
      .exec_prepared1("insert_company", Clean(company.name), domain::StoredSearchKey(company.name),
                      Clean(company.industry), Clean(company.website), company.responsible_user_id,
                      Clean(company.source_id), Clean(company.comments),
                      Clean(company.origin_event_id))[0]
      .as<int64_t>();
}

bool CompanyRepository::Update(const Company& company, int64_t version) {
  return !work_
              .exec_prepared("update_company", company.id, version, Clean(company.name),
                             domain::StoredSearchKey(company.name), Clean(company.industry),
                             Clean(company.website), company.responsible_user_id,
                             Clean(company.source_id), Clean(company.comments))
              .empty();
}

void CompanyRepository::SetIdentities(int64_t id, const std::vector<IdentityKey>& keys) {
  work_.exec_prepared0("delete_company_identities", id);
  auto [kinds, values] = KindsAndValues(keys);
  work_.exec_prepared0("insert_company_identities", kinds, values, id);
}

std::vector<int64_t> CompanyRepository::Delete(int64_t id) {
  return FirstColumnIds(work_.exec_prepared("delete_company", id));
}

std::vector<int64_t> CompanyRepository::FindByIdentities(const std::vector<IdentityKey>& keys) {
  auto [kinds, values] = KindsAndValues(keys);
  return FirstColumnIds(work_.exec_prepared("find_companies_by_identities", kinds, values));
}

// ---- search ----

std::vector<SearchHit> SearchRepository::ByIdentity(const IdentityKey& key, int limit) {
  std::vector<SearchHit> hits;
  for (const auto& row :
       work_.exec_prepared("find_by_identity", key.kind, Clean(key.value), limit)) {
    hits.push_back(ReadHit(row, 7));
  }
  return hits;
}

std::vector<SearchHit> SearchRepository::ByName(const std::string& type,
                                                const std::vector<std::string>& query_forms,
                                                int64_t after_id, int limit) {
  auto escape = [](const std::string& text) {
    std::string out;
    for (char c : text) {
      if (c == '%' || c == '_' || c == '\\') {
        out.push_back('\\');
      }
      out.push_back(c);
    }
    return out;
  };
  const std::string separator(domain::kSearchReadingSeparator);
  // A word of any reading starts with a form: at a reading's start, or after a space (a
  // reading's start too, after the separator), a hyphen or an apostrophe ("epi" finds
  // "l'epi d'or"). A reading starts with it: contacts' "last first" key ("curie ma").
  std::vector<std::string> word_start;
  std::vector<std::string> reading_start;
  for (const std::string& form : query_forms) {
    const std::string pattern = escape(Clean(form)) + "%";
    for (const char* before : {"", "% ", "%-", "%'"}) {
      word_start.push_back(before + pattern);
    }
    reading_start.push_back(pattern);
    reading_start.push_back("%" + separator + pattern);
  }
  // Planned for this prefix each time: a generic plan of these prepared statements, not knowing
  // the pattern, walks the primary key in id order and filters every row (5 s over a million
  // leads for a rare prefix, where the trigram indexes answer in milliseconds;
  // docs/performance.md).
  work_.exec0("SET LOCAL plan_cache_mode = force_custom_plan");
  std::vector<SearchHit> hits;
  if (type == "LEAD") {
    // A lead keeps one key, "first last"; a contact has "last first" too. A form read as
    // "last first" — its first k words the whole last name, the rest the start of the first name —
    // is, over a reading of "first last", the rest, anything, then those k words at the reading's
    // end (the key's end, or before the separator).
    std::vector<std::string> reversed;
    for (const std::string& form : query_forms) {
      const std::vector<std::string> words = absl::StrSplit(Clean(form), ' ', absl::SkipEmpty());
      for (size_t k = 1; k < words.size(); ++k) {
        std::vector<std::string> last(words.begin(), words.begin() + k);
        std::vector<std::string> first(words.begin() + k, words.end());
        const std::string pattern =
            escape(absl::StrJoin(first, " ")) + "% " + escape(absl::StrJoin(last, " "));
        for (const std::string& before : {std::string(), "%" + separator}) {
          reversed.push_back(before + pattern);
          reversed.push_back(before + pattern + separator + "%");
        }
      }
    }
    for (const auto& row : work_.exec_prepared("find_leads_by_name", pg::TextArray(word_start),
                                               after_id, limit, pg::TextArray(reversed))) {
      hits.push_back(ReadHit(row));
    }
    return hits;
  }
  if (type == "CONTACT") {
    for (const auto& row : work_.exec_prepared("find_contacts_by_name", pg::TextArray(word_start),
                                               after_id, limit, pg::TextArray(reading_start))) {
      hits.push_back(ReadHit(row, 6));
    }
    return hits;
  }
  for (const auto& row :
       work_.exec_prepared("find_companies_by_name", pg::TextArray(word_start), after_id, limit)) {
    hits.push_back(ReadHit(row, 6));
  }
  return hits;
}

// ---- merges ----

std::optional<MergeRepository::Owner> MergeRepository::Find(const std::string& type, int64_t id) {
  pqxx::result rows = work_.exec_prepared("merged_into", type, id);
  if (rows.empty()) {
    return std::nullopt;
  }
  return Owner{rows[0][0].as<int64_t>(), rows[0][1].as<int64_t>()};
}

std::vector<MergeRepository::Locked> MergeRepository::Lock(const std::string& type,
                                                           const std::vector<int64_t>& ids) {
  const char* statement = type == "LEAD"      ? "lock_leads_for_merge"
                          : type == "CONTACT" ? "lock_contacts_for_merge"
                                              : "lock_companies_for_merge";
  std::vector<Locked> locked;
  for (const auto& row : work_.exec_prepared(statement, pg::IntArray(ids))) {
    locked.push_back({row[0].as<int64_t>(), row[1].as<int64_t>(), row[2].as<bool>()});
  }
  return locked;
}

std::map<int64_t, domain::Produced> MergeRepository::Products(const std::vector<int64_t>& ids) {
  std::map<int64_t, domain::Produced> products;
  for (const auto& row : work_.exec_prepared("merge_lead_products", pg::IntArray(ids))) {
    domain::Produced produced;
    for (auto [column, field] :
         {std::pair{1, &produced.contact_id}, {2, &produced.company_id}, {3, &produced.deal_id}}) {
      if (int64_t id = row[column].as<int64_t>(); id != 0) *field = id;
    }
    if (!produced.empty()) products[row[0].as<int64_t>()] = produced;
  }
  return products;
}

std::vector<MergeRepository::RelinkedDeal> MergeRepository::RelinkedDeals(
    const std::string& type, int64_t kept_id, const std::vector<int64_t>& folded_ids) {
  std::vector<RelinkedDeal> deals;
  for (const auto& row :
       work_.exec_prepared("merge_relinked_deals", type, pg::IntArray(folded_ids), kept_id)) {
    deals.push_back({row[0].as<int64_t>(), row[1].as<int64_t>(), row[2].as<bool>()});
  }
  return deals;
}

std::vector<MergeRepository::MovedLink> MergeRepository::MovedLinks(
    const std::string& type, int64_t kept_id, const std::vector<int64_t>& folded_ids, int limit,
    int64_t* total) {
  std::vector<MovedLink> links;
  *total = 0;
  for (const auto& row :
       work_.exec_prepared("merge_moved_links", type, pg::IntArray(folded_ids), kept_id, limit)) {
    links.push_back({row[0].as<int64_t>(), row[1].as<int64_t>(), row[2].as<std::string>()});
    *total = row[3].as<int64_t>();
  }
  return links;
}

std::vector<IdentityKey> MergeRepository::Identities(const std::string& type,
                                                     const std::vector<int64_t>& ids) {
  std::vector<IdentityKey> keys;
  for (const auto& row : work_.exec_prepared("merge_identities", type, pg::IntArray(ids))) {
    keys.push_back({row[0].as<std::string>(), row[1].as<std::string>()});
  }
  return keys;
}

void MergeRepository::Fold(const std::string& type, int64_t kept_id,
                           const std::vector<int64_t>& folded_ids, int64_t user_id) {
  const char* statement = type == "LEAD"      ? "fold_lead"
                          : type == "CONTACT" ? "fold_contact"
                                              : "fold_company";
  for (int64_t id : folded_ids) {
    work_.exec_prepared0(statement, kept_id, id, user_id);
  }
}

}  // namespace leadflow::crm
