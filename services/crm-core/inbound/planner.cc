#include "crm-core/inbound/planner.h"

#include <algorithm>
#include <limits>

namespace leadflow::crm {

Planner::Planner(RuleSettings settings, std::vector<KnownLead> known,
                 std::set<int64_t> active_users)
    : settings_(std::move(settings)), active_users_(std::move(active_users)) {
  for (KnownLead& lead : known) {
    for (const IdentityKey& key : lead.identities) {
      Index(lead.id, key);
    }
    known_[lead.id] = std::move(lead);
  }
}

void Planner::Index(LeadRef ref, const IdentityKey& key) {
  by_identity_[key].insert(ref);
  identities_of_[ref].insert(key);
}

void Planner::Attach(LeadRef ref, const std::vector<IdentityKey>& keys) {
  std::set<IdentityKey>& held = identities_of_[ref];
  for (const IdentityKey& key : keys) {
    if (held.count(key) != 0) {
      continue;
    }
    if (held.size() >= settings_.max_inbound_identities) {
      ++plan_.identities_capped;
      continue;
    }
    plan_.identities.push_back({ref, key});
    Index(ref, key);
  }
}

Planner::Candidate Planner::Describe(LeadRef ref) const {
  if (IsNewLead(ref)) {
    const PlannedLead& lead = plan_.leads[NewLeadIndex(ref)];
    // A lead this plan makes gets the default status, NEW: open.
    return {ref, Semantics::kProcess, lead.responsible_user_id,
            std::numeric_limits<int64_t>::max() / 2 + static_cast<int64_t>(NewLeadIndex(ref))};
  }
  const KnownLead& lead = known_.at(ref);
  return {ref, lead.semantics, lead.responsible_user_id, ref};
}

void Planner::Add(const ContactAttempt& attempt) {
  std::vector<IdentityKey> keys;
  std::set<LeadRef> matches;
  for (const IdentityKey& key : attempt.identities) {
    keys.push_back(key);
    if (auto found = by_identity_.find(key); found != by_identity_.end()) {
      matches.insert(found->second.begin(), found->second.end());
    }
  }
  std::optional<Candidate> newest_open;
  std::optional<Candidate> newest_closed;
  for (LeadRef ref : matches) {
    Candidate candidate = Describe(ref);
    std::optional<Candidate>& slot = IsOpen(candidate.semantics) ? newest_open : newest_closed;
    if (!slot || candidate.order > slot->order) {
      slot = candidate;
    }
  }
  const ContactAttempt::Activity& implied = attempt.activity;
  const std::chrono::minutes deadline =
      implied.has_deadline ? settings_.task_deadline : std::chrono::minutes(0);

  if (newest_open) {
    // Same person, lead still open: one more request on it, never a second lead.
    LeadRef target = newest_open->ref;
    if (IsNewLead(target)) {
      ++plan_.leads[NewLeadIndex(target)].repeat_count;
    } else {
      ++plan_.repeat_increments[target];
    }
    Attach(target, keys);
    plan_.activities.push_back({target, implied.type, implied.repeat_subject, implied.description,
                                implied.completed, deadline, attempt.event_id,
                                newest_open->responsible_user_id});
    return;
  }

  PlannedLead lead;
  lead.attempt = &attempt;
  lead.title = LeadTitle(settings_.title_template, attempt);
  lead.source = attempt.source_id;
  if (newest_closed) {
    // Came back after an earlier lead was closed (as junk or otherwise): a returning prospect,
    // linked to the previous lead and, when possible, with the same responsible user.
    lead.previous_lead_id = newest_closed->ref;
    lead.is_returning = true;
    if (active_users_.count(newest_closed->responsible_user_id) != 0) {
      lead.responsible_user_id = newest_closed->responsible_user_id;
    }
  }
  if (newest_closed && !IsNewLead(newest_closed->ref)) {
    // The same person: the ways we knew to reach them carry over, so that their next contact by
    // any of them joins this lead instead of making yet another one.
    for (const IdentityKey& key : known_.at(newest_closed->ref).identities) {
      if (std::find(keys.begin(), keys.end(), key) == keys.end()) {
        keys.push_back(key);
      }
    }
  }
  LeadRef ref = NewLeadRef(plan_.leads.size());
  plan_.leads.push_back(std::move(lead));
  Attach(ref, keys);
  plan_.activities.push_back({ref, implied.type, implied.subject, implied.description,
                              implied.completed, deadline, attempt.event_id});
}

}  // namespace leadflow::crm
