#include "crm-core/planner.h"

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "crm-core/title.h"

namespace leadflow::crm {
namespace {

using events::v1::Identity;
using events::v1::InboundEvent;

constexpr size_t kNeedChars = 60;

std::string PersonName(const InboundEvent& event) {
  std::string name = event.person().first_name();
  if (!event.person().last_name().empty()) {
    absl::StrAppend(&name, name.empty() ? "" : " ", event.person().last_name());
  }
  return name;
}

}  // namespace

std::string IdentityKindName(Identity::Kind kind) {
  switch (kind) {
    case Identity::PHONE:
      return "PHONE";
    case Identity::EMAIL:
      return "EMAIL";
    case Identity::MESSENGER:
      return "MESSENGER";
    case Identity::KIND_UNSPECIFIED:
    case events::v1::Identity_Kind_Identity_Kind_INT_MIN_SENTINEL_DO_NOT_USE_:
    case events::v1::Identity_Kind_Identity_Kind_INT_MAX_SENTINEL_DO_NOT_USE_:
      return "";
  }
  return "";
}

std::string ValidateEvent(const InboundEvent& event) {
  if (event.event_id().empty()) {
    return "event has no event_id";
  }
  if (event.event_id().size() > 200) {
    return "event_id is longer than 200 bytes";
  }
  for (char c : event.event_id()) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return "event_id contains a control character";
    }
  }
  if (event.identities().empty()) {
    return "event has no identity of its sender";
  }
  for (const Identity& identity : event.identities()) {
    if (IdentityKindName(identity.kind()).empty()) {
      return "identity of unknown kind";
    }
    if (identity.value().empty() || identity.value().size() > 320) {
      return "identity value is empty or too long";
    }
  }
  if (event.payload_case() != InboundEvent::kWebForm) {
    return "payload not handled by this crm-core version";
  }
  return "";
}

std::string LeadTitle(const std::string& title_template, const InboundEvent& event) {
  std::string need = Summarize(event.web_form().message(), kNeedChars);
  std::string title = RenderTitle(title_template, {{"city", event.person().city()},
                                                   {"name", PersonName(event)},
                                                   {"company", event.person().company()},
                                                   {"need", need},
                                                   {"form", event.web_form().form_id()}});
  if (!title.empty()) {
    return title;
  }
  // Nothing the template names was given: say where it came from and who.
  return absl::StrCat("Web form request from ", event.identities(0).value());
}

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
    return {ref, LeadStatus::kNew, lead.responsible_user_id,
            std::numeric_limits<int64_t>::max() / 2 + static_cast<int64_t>(NewLeadIndex(ref))};
  }
  const KnownLead& lead = known_.at(ref);
  return {ref, lead.status, lead.responsible_user_id, ref};
}

void Planner::Add(const InboundEvent& event) {
  std::vector<IdentityKey> keys;
  std::set<LeadRef> matches;
  for (const Identity& identity : event.identities()) {
    IdentityKey key{IdentityKindName(identity.kind()), identity.value()};
    keys.push_back(key);
    if (auto found = by_identity_.find(key); found != by_identity_.end()) {
      matches.insert(found->second.begin(), found->second.end());
    }
  }
  std::optional<Candidate> newest_open;
  std::optional<Candidate> newest_closed;
  for (LeadRef ref : matches) {
    Candidate candidate = Describe(ref);
    std::optional<Candidate>& slot = IsOpen(candidate.status) ? newest_open : newest_closed;
    if (!slot || candidate.order > slot->order) {
      slot = candidate;
    }
  }
  const std::string need = Summarize(event.web_form().message(), kNeedChars);
  const std::string description =
      absl::StrCat(event.web_form().message(), event.web_form().message().empty() ? "" : "\n\n",
                   "Form: ", event.web_form().form_id());

  if (newest_open) {
    // Same person, lead still open: one more request on it, never a second lead.
    LeadRef target = newest_open->ref;
    if (IsNewLead(target)) {
      ++plan_.leads[NewLeadIndex(target)].repeat_count;
    } else {
      ++plan_.repeat_increments[target];
    }
    Attach(target, keys);
    plan_.activities.push_back({target, "TASK",
                                need.empty() ? "Repeated request" : "Repeated request: " + need,
                                description, false, settings_.task_deadline, event.event_id(),
                                newest_open->responsible_user_id});
    return;
  }

  PlannedLead lead;
  lead.event = &event;
  lead.title = LeadTitle(settings_.title_template, event);
  lead.source = "WEB_FORM";
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
  plan_.activities.push_back({ref, "TASK", "Process the request", description, false,
                              settings_.task_deadline, event.event_id()});
}

}  // namespace leadflow::crm
