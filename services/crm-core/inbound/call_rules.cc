#include "crm-core/inbound/call_rules.h"

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "crm-core/domain/matching/matching.h"
#include "crm-core/inbound/planner.h"

namespace leadflow::crm {

using domain::CallAction;
using domain::EntityKind;

int64_t CallRules::Operator(const domain::CallFacts& call) const {
  if (auto user = context_.operators.by_extension.find(call.extension);
      !call.extension.empty() && user != context_.operators.by_extension.end()) {
    return user->second;
  }
  if (auto user = context_.operators.by_email.find(absl::AsciiStrToLower(call.operator_name));
      !call.operator_name.empty() && user != context_.operators.by_email.end()) {
    return user->second;
  }
  return 0;
}

std::optional<domain::CallPolicy> CallRules::Admit(const ContactAttempt& attempt, bool known,
                                                   Plan& plan) {
  const domain::CallFacts& call = *attempt.call;
  const domain::CallPolicy policy = domain::DecideCall(call, known, context_.settings);
  switch (policy.action) {
    case CallAction::kAddRecording:
      for (const std::string& url : call.recording_urls) {
        plan.calls.recordings.emplace_back(call.call_id, url);
        plan.calls.recording_events[call.call_id] = attempt.event_id;
      }
      if (!call.carried_by_call) plan.calls.recordings_not_carried.insert(call.call_id);
      return std::nullopt;
    case CallAction::kUnidentified:
      for (const std::string& url : call.recording_urls) {
        plan.calls.own_recordings.emplace_back(call.call_id, url);
      }
      plan.calls.unidentified.push_back({.call = call,
                                         .reason = domain::ReasonUnidentified(call),
                                         .responsible_user_id = Operator(call),
                                         .origin_event_id = attempt.event_id});
      return std::nullopt;
    case CallAction::kCallBack:
    case CallAction::kCompletedCall:
      for (const std::string& url : call.recording_urls) {
        plan.calls.own_recordings.emplace_back(call.call_id, url);
      }
      break;
  }
  return policy;
}

std::string CallRules::Queue(const ContactAttempt& attempt,
                             const std::string& channel_queue) const {
  return domain::CallQueue(context_.settings, attempt.call->line, channel_queue);
}

void CallRules::Adjust(const ContactAttempt& attempt, const domain::CallPolicy& policy,
                       const domain::MatchInput& input, domain::MatchDecision& decision) const {
  const bool known = !input.leads.empty() || !input.contacts.empty() || !input.companies.empty();
  if (known || !policy.may_create_record) {
    domain::KeepOnKnownRecord(input, decision);
  }
  if (int64_t user = Operator(*attempt.call); user > 0) {
    decision.responsible = {user, ""};
  }
}

void CallRules::Shape(const ContactAttempt& attempt, const domain::CallPolicy& policy,
                      PlannedActivity& activity) const {
  activity.call = &attempt;
  activity.call_back = policy.action == CallAction::kCallBack;
  activity.completed = !activity.call_back;
  activity.deadline_after =
      activity.call_back ? context_.settings.call_back_sla : std::chrono::minutes(0);
  if (activity.call_back) {
    activity.subject = "Call back";
  }
}

void CallRules::Complete(const ContactAttempt& attempt,
                         std::vector<std::pair<EntityKind, Ref>> owners, Plan& plan) const {
  // The identity the ingestion normalised (libs/identity), as records hold it: never the number
  // as the provider spelled it.
  std::string phone;
  for (const IdentityKey& key : attempt.identities) {
    if (key.kind == "PHONE") {
      phone = key.value;
      break;
    }
  }
  plan.calls.completions.push_back({.position = plan.activities.size(),
                                    .owners = std::move(owners),
                                    .phone = std::move(phone),
                                    .event_id = attempt.event_id});
}

}  // namespace leadflow::crm
