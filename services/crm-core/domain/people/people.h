#pragma once

// Contacts, companies and their links as the store reads and writes them (the timeline's record
// is history/). The rules over them live beside: naming/ (name splitting, placeholder, search
// keys), merge/ (merge plans).

#include <cstdint>
#include <string>
#include <vector>

#include "crm-core/domain/history/history.h"
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
