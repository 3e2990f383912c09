#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "crm-core/domain/identity/identity_key.h"
#include "crm-core/domain/status/status.h"

namespace leadflow::crm {

/// A lead as stored: status and source are ids of the configurable lists (lead_statuses,
/// lead_sources); source_details is what the channel told (see ContactAttempt).
struct Lead {
  int64_t id = 0;
  std::string title;
  std::string status;
  std::string source;
  std::string first_name;
  std::string last_name;
  std::string company_name;
  std::string city;
  std::string comments;
  int64_t responsible_user_id = 0;  // 0: nobody
  int repeat_count = 0;
  bool returning = false;
  int64_t previous_lead_id = 0;
  std::map<std::string, std::string> source_details;
  std::vector<std::string> phones;
  std::vector<std::string> emails;
  int64_t create_micros = 0;
  int64_t update_micros = 0;
  int64_t version = 0;          // the etag
  std::string origin_event_id;  // the inbound event that made it; empty for walk-ins
  // The contact and company it is linked to (0: none): a returning lead's client, a converted
  // lead's contact and company (store: leads.contact_id, company_id).
  int64_t contact_id = 0;
  int64_t company_id = 0;
  // What its conversion produced (0: none). The same ids as its conversions row; merges of the
  // contact or company move both to the kept record.
  int64_t converted_contact_id = 0;
  int64_t converted_company_id = 0;
  int64_t converted_deal_id = 0;
};

/// What the inbound rules need to know of a lead already in the database that shares an
/// identity with an event of the batch: its status's semantics (open or closed), read from
/// lead_statuses with it.
struct KnownLead {
  int64_t id = 0;
  Semantics semantics = Semantics::kProcess;
  int64_t responsible_user_id = 0;  // 0: nobody
  std::set<IdentityKey> identities;
  /// An open returning lead's links, read when the lead is found through them rather than by an
  /// identity (InboundRepository::FindOpenLinkedLeads): the contact it was made for and the
  /// earlier lead it returned to (0: none).
  int64_t contact_id = 0;
  int64_t previous_lead_id = 0;
};

/// The title of a lead made from an attempt: the template over its title parts, else the
/// attempt's fallback title.
struct ContactAttempt;
std::string LeadTitle(const std::string& title_template, const ContactAttempt& attempt);

}  // namespace leadflow::crm
