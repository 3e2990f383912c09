#pragma once

// What the inbound consumer reads and writes beyond leads: the settings its rules read once per
// batch, contacts and companies holding a batch's identities (with their open deals), and the
// contacts, deals, links, activities on any owner and timeline entries it makes. Each statement
// runs once per batch, whatever its size.

#include <cstdint>
#include <map>
#include <optional>
#include <pqxx/pqxx>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "crm-core/domain/common/types.h"
#include "crm-core/domain/identity/identity_key.h"
#include "crm-core/domain/lead/lead.h"

namespace leadflow::crm {

/// crm_settings as the inbound rules use it.
struct InboundSettings {
  domain::CrmMode mode = domain::CrmMode::kClassic;
  bool repeat_rule = true;
  std::string last_name_placeholder = "Unknown";
  std::string title_template = "{city} – {name} – {need}";
  int64_t inbound_pipeline_id = 0;
  std::string inbound_first_stage_id;                 // the pipeline's first PROCESS stage
  std::map<std::string, std::string> channel_queues;  // channel → queue key
};

/// A contact or company holding one of a batch's identities.
struct KnownParty {
  int64_t id = 0;
  int64_t responsible_user_id = 0;  // 0: nobody
  std::set<IdentityKey> identities;
  std::vector<std::pair<int64_t, int64_t>> open_deals;  // (deal id, its responsible or 0)
};

struct NewContactRow {
  int64_t id = 0;
  std::string first_name;
  std::string last_name;
  int64_t responsible_user_id = 0;
  std::string source_id;
  std::string comments;
  std::string origin_event_id;
};

struct NewDealRow {
  int64_t id = 0;
  std::string title;
  int64_t pipeline_id = 0;
  std::string stage_id;
  int64_t company_id = 0;  // 0: none
  int64_t contact_id = 0;  // 0: none
  int64_t responsible_user_id = 0;
  std::string source_id;
  int64_t lead_id = 0;  // 0: none
  std::string origin_event_id;
};

struct InboundActivityRow {
  std::string type;
  domain::EntityKind owner = domain::EntityKind::kLead;
  int64_t owner_id = 0;
  std::string subject;
  std::string description;
  int64_t responsible_user_id = 0;
  bool completed = false;
  int64_t deadline_minutes = 0;  // 0: none
  std::string origin_event_id;
};

class InboundRepository {
 public:
  explicit InboundRepository(pqxx::transaction_base& work) : work_(work) {}

  InboundSettings ReadSettings();
  std::vector<KnownParty> FindContacts(const std::vector<IdentityKey>& keys);
  std::vector<KnownParty> FindCompanies(const std::vector<IdentityKey>& keys);
  /// Open leads made for one of `contact_ids` or returning to one of `lead_ids`, with their
  /// identities and those two links: how a returning lead (which holds only its message's
  /// identities) is found when its person writes again by another identity of its contact or
  /// earlier lead.
  std::vector<KnownLead> FindOpenLinkedLeads(const std::vector<int64_t>& contact_ids,
                                             const std::vector<int64_t>& lead_ids);
  std::vector<int64_t> AllocateContactIds(size_t count);
  std::vector<int64_t> AllocateDealIds(size_t count);
  void InsertContacts(const std::vector<NewContactRow>& contacts);
  void AddContactIdentities(const std::vector<std::pair<int64_t, IdentityKey>>& identities);
  void InsertDeals(const std::vector<NewDealRow>& deals);
  /// Leads (just made) → (contact id or 0, company id or 0).
  void LinkLeads(const std::map<int64_t, std::pair<int64_t, int64_t>>& links);
  void InsertActivities(const std::vector<InboundActivityRow>& activities);
  void TouchDeals(const std::set<int64_t>& deal_ids);
  /// Active members of each queue, in rotation order; queues without any are absent.
  std::map<std::string, std::vector<int64_t>> QueueMembers(const std::set<std::string>& queues);

 private:
  pqxx::transaction_base& work_;
};

/// Takes `count` positions of a round-robin queue in a short transaction of its own on
/// `connection` (not the batch's), so no writer holds a queue's row beyond this statement; returns
/// the first. Positions taken by a batch that then rolls back are skipped, which only shifts the
/// rotation.
int64_t AdvanceQueue(pqxx::connection& connection, const std::string& queue, int64_t count);

}  // namespace leadflow::crm
