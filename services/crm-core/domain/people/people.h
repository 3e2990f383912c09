#pragma once

// Contacts, companies, their links and every record's timeline as the store reads and writes
// them. The rules over them live beside: naming/ (name splitting, placeholder, search keys),
// merge/ (merge plans).

#include <cstdint>
#include <string>
#include <vector>

#include "crm-core/domain/identity/identity_key.h"

namespace leadflow::crm {

/// One contact ↔ company link with the contact's role there ("Accountant").
struct CompanyLink {
  int64_t contact_id = 0;
  int64_t company_id = 0;
  std::string role;
  int64_t create_micros = 0;
};

struct Contact {
  int64_t id = 0;
  std::string first_name;
  std::string last_name;  // never blank: the placeholder when unknown
  std::string position;
  int64_t responsible_user_id = 0;
  std::string source_id;
  std::string comments;
  std::string origin_event_id;
  int64_t version = 0;
  int64_t create_micros = 0;
  int64_t update_micros = 0;
  int64_t merged_into = 0;  // 0: not merged away
  std::vector<IdentityKey> identities;
  std::vector<CompanyLink> companies;
  std::vector<int64_t> deal_ids;
};

struct Company {
  int64_t id = 0;
  std::string name;
  std::string industry;
  std::string website;
  int64_t responsible_user_id = 0;
  std::string source_id;
  std::string comments;
  std::string origin_event_id;
  int64_t version = 0;
  int64_t create_micros = 0;
  int64_t update_micros = 0;
  int64_t merged_into = 0;
  std::vector<IdentityKey> identities;
  std::vector<CompanyLink> contacts;
  std::vector<int64_t> deal_ids;
};

/// One line of a record's timeline (the history table; common.proto HistoryEntry). Types are
/// LEAD, CONTACT, COMPANY, DEAL; kinds CREATED, FIELD_CHANGED, STATUS_CHANGED, STAGE_CHANGED,
/// LINKED, UNLINKED, MERGED, CONVERTED, DELETED.
struct HistoryRecord {
  int64_t id = 0;
  std::string entity_type;
  int64_t entity_id = 0;
  std::string kind;
  std::string field;
  std::string old_value;
  std::string new_value;
  std::string related_type;  // empty: none
  int64_t related_id = 0;
  int64_t user_id = 0;   // 0: inbound traffic or the system
  std::string event_id;  // the inbound event, if any
  int64_t at_micros = 0;
};

/// A record found by a person search (SearchService).
struct SearchHit {
  std::string type;  // LEAD, CONTACT, COMPANY
  int64_t id = 0;
  std::string display_name;
  std::string company_name;
  int64_t responsible_user_id = 0;
  bool closed = false;
};

}  // namespace leadflow::crm
