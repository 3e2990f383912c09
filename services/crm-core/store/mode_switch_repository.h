#pragma once

// The classic → simple switch job's statements (mode_switch_jobs; inbound/mode_switch.h).

#include <cstdint>
#include <map>
#include <optional>
#include <pqxx/pqxx>
#include <set>
#include <string>
#include <vector>

#include "crm-core/domain/identity/identity_key.h"

namespace leadflow::crm {

struct ModeSwitchJobRow {
  int64_t id = 0;
  std::string to_mode;
  int64_t last_lead_id = 0;
  int64_t total = 0;
  int64_t done = 0;
};

struct OpenLeadRow {
  int64_t id = 0;
  std::string title;
  std::string first_name;
  std::string last_name;
  int64_t responsible_user_id = 0;
  std::string source;
  int64_t contact_id = 0;  // a returning lead's contact: used instead of a new one
  int64_t company_id = 0;
  std::string origin_event_id;
  std::string status;
};

class ModeSwitchRepository {
 public:
  explicit ModeSwitchRepository(pqxx::transaction_base& work) : work_(work) {}

  /// The running job, row-locked until the transaction ends; nullopt when none (or another
  /// process holds it).
  std::optional<ModeSwitchJobRow> ClaimRunning();
  int64_t CountOpenLeadsAfter(int64_t lead_id);
  /// Up to `limit` open lead ids after `lead_id`, in order, and all their identities.
  std::vector<int64_t> NextOpenLeads(int64_t lead_id, int64_t limit,
                                     std::vector<IdentityKey>& identities);
  /// Those of `ids` still open, row-locked.
  std::vector<OpenLeadRow> LockOpen(const std::vector<int64_t>& ids);
  /// Lead id → the oldest live contact and company holding one of its identities (0: none).
  std::map<int64_t, std::pair<int64_t, int64_t>> Holders(const std::vector<int64_t>& ids);
  /// Lead `lead_id`'s identities, by kind and value.
  std::vector<IdentityKey> LeadIdentities(int64_t lead_id);
  /// Gives a contact made by this step the lead's identities (an existing contact takes them
  /// through AddIdentitiesToExisting instead).
  void CopyIdentitiesToContact(int64_t lead_id, int64_t contact_id);
  void MoveActivitiesToDeal(int64_t lead_id, int64_t deal_id);
  /// The lead CONVERTED into `contact_id` and `deal_id`, with `company_id` (0: none) when the
  /// deal links one; its contact_id and company_id point at them, as ConvertLead's do.
  void MarkConverted(int64_t lead_id, int64_t contact_id, int64_t deal_id, int64_t company_id);
  /// The lead status with SUCCESS semantics (seeded CONVERTED).
  std::string SuccessStatus();
  /// `skipped`: leads not converted (appended to failed_lead_ids while fewer than 100), `failure`
  /// why the latest was not ('' keeps the one recorded).
  void Advance(int64_t job_id, int64_t last_lead_id, int64_t converted, int64_t total,
               bool finished, const std::vector<int64_t>& skipped, const std::string& failure);

 private:
  pqxx::transaction_base& work_;
};

}  // namespace leadflow::crm
