#include "crm-core/domain/call/call.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "crm-core/domain/common/errors.h"

namespace leadflow::crm::domain {
namespace {

bool LineCharacter(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '_' || c == ':' || c == '.' || c == '@' || c == '-';
}

}  // namespace

std::string_view ToString(CallDirection direction) {
  switch (direction) {
    case CallDirection::kInbound:
      return "INBOUND";
    case CallDirection::kOutbound:
      return "OUTBOUND";
  }
  return "INBOUND";
}

std::string_view ToString(CallOutcome outcome) {
  switch (outcome) {
    case CallOutcome::kMissed:
      return "MISSED";
    case CallOutcome::kAnswered:
      return "ANSWERED";
    case CallOutcome::kBusy:
      return "BUSY";
    case CallOutcome::kFailed:
      return "FAILED";
    case CallOutcome::kVoicemail:
      return "VOICEMAIL";
    case CallOutcome::kCanceled:
      return "CANCELED";
  }
  return "MISSED";
}

std::optional<CallDirection> ParseCallDirection(std::string_view text) {
  for (CallDirection direction : {CallDirection::kInbound, CallDirection::kOutbound}) {
    if (ToString(direction) == text) return direction;
  }
  return std::nullopt;
}

std::optional<CallOutcome> ParseCallOutcome(std::string_view text) {
  for (CallOutcome outcome :
       {CallOutcome::kMissed, CallOutcome::kAnswered, CallOutcome::kBusy, CallOutcome::kFailed,
        CallOutcome::kVoicemail, CallOutcome::kCanceled}) {
    if (ToString(outcome) == text) return outcome;
  }
  return std::nullopt;
}

std::string_view ToString(UnidentifiedReason reason) {
  switch (reason) {
    case UnidentifiedReason::kWithheld:
      return "WITHHELD";
    case UnidentifiedReason::kNotAPhoneNumber:
      return "NOT_A_PHONE_NUMBER";
    case UnidentifiedReason::kOutboundUnknownNumber:
      return "OUTBOUND_UNKNOWN_NUMBER";
  }
  return "WITHHELD";
}

std::optional<UnidentifiedReason> ParseUnidentifiedReason(std::string_view text) {
  for (UnidentifiedReason reason :
       {UnidentifiedReason::kWithheld, UnidentifiedReason::kNotAPhoneNumber,
        UnidentifiedReason::kOutboundUnknownNumber}) {
    if (ToString(reason) == text) return reason;
  }
  return std::nullopt;
}

UnidentifiedReason ReasonUnidentified(const CallFacts& call) {
  if (call.anonymous) {
    return call.withheld || call.Counterpart().empty() ? UnidentifiedReason::kWithheld
                                                       : UnidentifiedReason::kNotAPhoneNumber;
  }
  return UnidentifiedReason::kOutboundUnknownNumber;
}

absl::Status ValidateCallSettings(int64_t sla_minutes,
                                  const std::map<std::string, std::string>& line_queues) {
  if (sla_minutes < CallSettings::kMinSlaMinutes || sla_minutes > CallSettings::kMaxSlaMinutes) {
    return absl::InvalidArgumentError(
        absl::StrCat("call_back_sla_minutes must be between ", CallSettings::kMinSlaMinutes,
                     " and ", CallSettings::kMaxSlaMinutes, " (7 days); got ", sla_minutes));
  }
  for (const auto& [line, queue] : line_queues) {
    if (line.empty() || line.size() > 100 ||
        !std::all_of(line.begin(), line.end(), LineCharacter)) {
      return absl::InvalidArgumentError(absl::StrCat("line_queues: line ",
                                                     domain::Quoted(line.substr(0, 100)),
                                                     " must be 1–100 of A-Z a-z 0-9 + _ : . @ -"));
    }
  }
  return absl::OkStatus();
}

bool IsValidExtension(std::string_view extension) {
  return !extension.empty() && extension.size() <= 32 &&
         std::all_of(extension.begin(), extension.end(), [](char c) {
           return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '*' || c == '#' || c == '_' || c == '.' || c == '-';
         });
}

CallPolicy DecideCall(const CallFacts& call, bool known, const CallSettings& settings) {
  if (call.recording_only) {
    return {.action = CallAction::kAddRecording};
  }
  if (call.anonymous) {
    return {.action = CallAction::kUnidentified};
  }
  if (call.direction == CallDirection::kOutbound) {
    if (!known && !settings.outbound_creates_lead) {
      return {.action = CallAction::kUnidentified};
    }
    return {.action = CallAction::kCompletedCall,
            .may_create_record = settings.outbound_creates_lead,
            .completes_call_backs = call.outcome == CallOutcome::kAnswered};
  }
  if (call.outcome == CallOutcome::kAnswered) {
    // The client called again and somebody answered: the conversation a call-back asked for has
    // happened, whoever dialled.
    return {.action = CallAction::kCompletedCall,
            .may_create_record = true,
            .completes_call_backs = true};
  }
  // Missed, busy, failed, voicemail, or the caller gave up: somebody has to call back.
  return {.action = CallAction::kCallBack, .may_create_record = true};
}

std::string CallQueue(const CallSettings& settings, const std::string& line,
                      const std::string& channel_queue) {
  if (auto queue = settings.line_queues.find(line); queue != settings.line_queues.end()) {
    return queue->second;
  }
  return channel_queue;
}

void KeepOnKnownRecord(const MatchInput& input, MatchDecision& decision) {
  switch (decision.action) {
    case MatchAction::kActivityOnLead:
    case MatchAction::kActivityOnDeal:
    case MatchAction::kActivityOnParty:
    case MatchAction::kNewLead:
      return;
    case MatchAction::kReturningLead:
    case MatchAction::kDealForExisting:
    case MatchAction::kNewContactAndDeal:
      break;
  }
  auto responsible_of = [](const auto& candidates, int64_t id) -> int64_t {
    for (const auto& candidate : candidates) {
      if (candidate.id == id) return candidate.responsible_user_id;
    }
    return 0;
  };
  std::optional<EntityRef> target;
  int64_t responsible = 0;
  if (decision.link_contact_id) {
    target = EntityRef{EntityKind::kContact, *decision.link_contact_id};
    responsible = responsible_of(input.contacts, *decision.link_contact_id);
  } else if (decision.link_company_id) {
    target = EntityRef{EntityKind::kCompany, *decision.link_company_id};
    responsible = responsible_of(input.companies, *decision.link_company_id);
  } else if (!input.leads.empty()) {
    const LeadCandidate& newest = *std::max_element(
        input.leads.begin(), input.leads.end(),
        [](const LeadCandidate& a, const LeadCandidate& b) { return a.id < b.id; });
    target = EntityRef{EntityKind::kLead, newest.id};
    responsible = newest.responsible_user_id;
  } else if (!input.contacts.empty()) {
    target = EntityRef{EntityKind::kContact, input.contacts.front().id};
    responsible = input.contacts.front().responsible_user_id;
  } else if (!input.companies.empty()) {
    target = EntityRef{EntityKind::kCompany, input.companies.front().id};
    responsible = input.companies.front().responsible_user_id;
  } else {
    return;  // nothing known after all: the decision stands
  }
  const std::string queue = decision.responsible.queue;
  decision.action = target->kind == EntityKind::kLead ? MatchAction::kActivityOnLead
                                                      : MatchAction::kActivityOnParty;
  decision.target = target;
  decision.increment_repeat = false;
  decision.link_contact_id.reset();
  decision.link_company_id.reset();
  decision.previous_lead_id.reset();
  decision.responsible = responsible > 0 ? Responsible{responsible, ""} : Responsible{0, queue};
  decision.reason =
      absl::StrCat("a call from a known number makes no record: on ", Describe(*target));
}

}  // namespace leadflow::crm::domain
