#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "crm-core/domain/attempt/contact_attempt.h"
#include "crm-core/domain/lead/lead.h"
#include "crm-core/domain/matching/matching.h"
#include "crm-core/domain/rules/rule_settings.h"
#include "crm-core/inbound/call_rules.h"
#include "crm-core/store/inbound_repository.h"

namespace leadflow::crm {

/// Refers to a record of one kind: a positive value is an existing record's id, a negative one
/// the (-value - 1)th record of that kind created by this plan, whose id is allocated when the
/// plan is written.
using LeadRef = int64_t;
using Ref = int64_t;
inline Ref NewRef(size_t index) { return -static_cast<int64_t>(index) - 1; }
inline LeadRef NewLeadRef(size_t index) { return NewRef(index); }
inline bool IsNew(Ref ref) { return ref < 0; }
inline bool IsNewLead(LeadRef ref) { return IsNew(ref); }
inline size_t NewIndex(Ref ref) { return static_cast<size_t>(-ref - 1); }
inline size_t NewLeadIndex(LeadRef ref) { return NewIndex(ref); }

struct PlannedLead {
  const ContactAttempt* attempt = nullptr;
  std::string title;
  std::string source;  // a lead source id: WEB_FORM, …
  int64_t previous_lead_id = 0;
  bool is_returning = false;
  /// 0: round-robin over `queue` when the plan is written.
  int64_t responsible_user_id = 0;
  std::string queue;
  int repeat_count = 0;
  /// A returning lead of a known contact/company points at it (0: none).
  Ref contact = 0;
  int64_t company_id = 0;
};

/// A contact made by inbound traffic (simple mode: nobody held the identities).
struct PlannedContact {
  const ContactAttempt* attempt = nullptr;
  std::string first_name;
  std::string last_name;  // the placeholder when the person gave none
  /// Its responsible is its first deal's (made with it in the same decision).
};

/// A deal made by inbound traffic (simple mode), in the inbound pipeline's first stage.
struct PlannedDeal {
  const ContactAttempt* attempt = nullptr;
  std::string title;
  int64_t pipeline_id = 0;
  std::string stage_id;
  Ref contact = 0;  // 0: none
  int64_t company_id = 0;
  int64_t responsible_user_id = 0;
  std::string queue;
};

/// An identity attached to a lead or a contact.
struct PlannedIdentity {
  domain::EntityKind owner = domain::EntityKind::kLead;
  Ref ref = 0;
  IdentityKey key;
};

struct PlannedActivity {
  domain::EntityKind owner = domain::EntityKind::kLead;
  Ref ref = 0;
  std::string type;  // TASK, EMAIL, CALL, …
  std::string subject;
  std::string description;
  bool completed = false;
  std::chrono::minutes deadline_after{0};  // 0: no deadline
  std::string origin_event_id;
  /// For an existing owner, whoever is responsible for it; for a new one, filled in when it is
  /// written.
  int64_t responsible_user_id = 0;
  /// A call's activity (call_rules.h): written with the call's facts; a call-back is folded into
  /// its record's open one.
  const ContactAttempt* call = nullptr;
  bool call_back = false;
  /// An activity on an existing record without an active responsible (nobody, or a deactivated
  /// user): round-robin over this queue when the plan is written, as a new record's responsible
  /// is, so that it is in somebody's list (docs/domain.md, "Who gets the work").
  std::string queue;
};

/// Everything one batch of events causes; written in one transaction.
struct Plan {
  std::vector<PlannedLead> leads;
  std::vector<PlannedContact> contacts;
  std::vector<PlannedDeal> deals;
  std::vector<PlannedIdentity> identities;
  std::vector<PlannedActivity> activities;
  std::map<int64_t, int> repeat_increments;  // existing lead id → how many repeat contacts
  /// Identities not attached because their record had max_inbound_identities already.
  int64_t identities_capped = 0;
  /// Identities not attached because another record holds them (docs/architecture.md's inbound
  /// table): another contact for a contact; another open lead, or a contact, for an open lead.
  int64_t identities_held_elsewhere = 0;
  /// Activities on existing records given to someone other than the record's responsible, because
  /// that user is deactivated ("inactive") or the record has none ("unassigned").
  int64_t reassigned_inactive = 0;
  int64_t reassigned_unassigned = 0;
  CallPlan calls;
};

/// What the planner decides over: the records holding the batch's identities (read under their
/// advisory locks), the active users, and crm_settings as read for this batch.
struct Snapshot {
  std::vector<KnownLead> leads;
  /// Open leads made for a contact of `contacts` or returning to a lead of `leads` (their
  /// contact_id / previous_lead_id set): found through those links, not by an identity.
  std::vector<KnownLead> linked_leads;
  std::vector<KnownParty> contacts;
  std::vector<KnownParty> companies;
  std::set<int64_t> active_users;
  InboundSettings settings;
  CallContext calls;
};

/// The inbound decision rules over a snapshot: domain/matching's Decide for each contact attempt,
/// added in Kafka order; a later attempt sees the records an earlier one created. It reads
/// ContactAttempts only, never a channel's payload.
class Planner {
 public:
  Planner(RuleSettings rules, Snapshot snapshot);
  /// Classic mode with the default settings, over leads only.
  Planner(RuleSettings rules, std::vector<KnownLead> known, std::set<int64_t> active_users);

  /// Adds the contact attempt of one validated event (see ValidateEvent); `attempt` must outlive
  /// the plan.
  void Add(const ContactAttempt& attempt);

  const Plan& plan() const { return plan_; }

 private:
  struct Party {
    int64_t responsible_user_id = 0;
    std::vector<domain::OpenDeal> open_deals;  // new deals under their synthetic ids
  };
  using Key = std::pair<domain::EntityKind, Ref>;
  void Index(Key owner, const IdentityKey& key);
  // Attaches `keys` to a lead or contact within max_inbound_identities, except those another
  // record holds (HeldElsewhere); counts those left out.
  void Attach(Key owner, const std::vector<IdentityKey>& keys);
  bool HeldElsewhere(Key owner, const IdentityKey& key) const;
  int64_t Active(int64_t user) const { return active_users_.count(user) != 0 ? user : 0; }
  // The responsible an existing record has, active or not (0: none or not known).
  int64_t RecordResponsible(domain::EntityKind kind, Ref ref) const;

  RuleSettings rules_;
  InboundSettings settings_;
  std::set<int64_t> active_users_;
  std::map<int64_t, KnownLead> known_leads_;
  std::map<Key, Party> parties_;             // contacts and companies, known and new
  std::map<Ref, int64_t> deal_responsible_;  // known open deals: their responsible, active or not
  std::map<IdentityKey, std::set<Key>> by_identity_;
  std::map<Key, std::set<IdentityKey>> identities_of_;
  // Open leads reached through a link: a contact's returning leads, a lead's returning leads
  // (known and made by this plan). A returning lead holds only the identities of the message that
  // made it; its person's message by another identity of the contact or earlier lead finds it
  // here instead.
  std::map<Key, std::set<Ref>> linked_leads_;
  CallRules calls_;
  Plan plan_;
};

}  // namespace leadflow::crm
