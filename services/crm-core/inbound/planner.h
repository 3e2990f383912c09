#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "crm-core/domain/attempt/contact_attempt.h"
#include "crm-core/domain/lead/lead.h"
#include "crm-core/domain/rules/rule_settings.h"

namespace leadflow::crm {

/// Refers to a lead: a positive value is an existing lead's id, a negative one the
/// (-value - 1)th lead created by this plan, whose id is allocated when the plan is written.
using LeadRef = int64_t;
inline LeadRef NewLeadRef(size_t index) { return -static_cast<int64_t>(index) - 1; }
inline bool IsNewLead(LeadRef ref) { return ref < 0; }
inline size_t NewLeadIndex(LeadRef ref) { return static_cast<size_t>(-ref - 1); }

struct PlannedLead {
  const ContactAttempt* attempt = nullptr;
  std::string title;
  std::string source;  // a lead source id: WEB_FORM, …
  int64_t previous_lead_id = 0;
  bool is_returning = false;
  /// 0: round-robin over the active users when the plan is written.
  int64_t responsible_user_id = 0;
  int repeat_count = 0;
};

struct PlannedIdentity {
  LeadRef lead;
  IdentityKey key;
};

struct PlannedActivity {
  LeadRef lead;
  std::string type;  // TASK, EMAIL, CALL, …
  std::string subject;
  std::string description;
  bool completed = false;
  std::chrono::minutes deadline_after{0};  // 0: no deadline
  std::string origin_event_id;
  /// For an existing lead, its responsible user; for a new lead, filled in when it is written.
  int64_t responsible_user_id = 0;
};

/// Everything one batch of events causes; written in one transaction.
struct Plan {
  std::vector<PlannedLead> leads;
  std::vector<PlannedIdentity> identities;
  std::vector<PlannedActivity> activities;
  std::map<int64_t, int> repeat_increments;  // existing lead id → how many repeat contacts
  /// Identities not attached because their lead had max_inbound_identities already.
  int64_t identities_capped = 0;
};

/// The inbound decision rules, as plain logic over a snapshot: the leads that share an identity
/// with the batch's events (read under the identities' advisory locks, each with its status's
/// semantics) and the active users. Contact attempts are added in Kafka order; a later one sees
/// the leads an earlier one created. It reads ContactAttempts only, never a channel's payload.
class Planner {
 public:
  Planner(RuleSettings settings, std::vector<KnownLead> known, std::set<int64_t> active_users);

  /// Adds the contact attempt of one validated event (see ValidateEvent); `attempt` must outlive
  /// the plan.
  void Add(const ContactAttempt& attempt);

  const Plan& plan() const { return plan_; }

 private:
  struct Candidate {
    LeadRef ref;
    Semantics semantics;
    int64_t responsible_user_id;
    int64_t order;  // newer is larger; new leads are newer than all known ones
  };
  void Index(LeadRef ref, const IdentityKey& key);
  // Attaches `keys` to `ref` within max_inbound_identities; counts the ones left out.
  void Attach(LeadRef ref, const std::vector<IdentityKey>& keys);
  Candidate Describe(LeadRef ref) const;

  RuleSettings settings_;
  std::set<int64_t> active_users_;
  std::map<int64_t, KnownLead> known_;
  std::map<IdentityKey, std::set<LeadRef>> by_identity_;
  std::map<LeadRef, std::set<IdentityKey>> identities_of_;
  Plan plan_;
};

}  // namespace leadflow::crm
