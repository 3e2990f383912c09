// A phone call: its facts for the call rules (domain/call/call.h), and the activity the usual
// rules would give it — a missed call asks for a call back (open, with a deadline), an answered
// one is recorded as a completed call activity. inbound/call_rules.cc refines both.
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "crm-core/inbound/channels/channels.h"
#include "identity/identity.h"

namespace leadflow::crm {
namespace {

using events::v1::CallEvent;

domain::CallOutcome Outcome(CallEvent::Outcome outcome) {
  switch (outcome) {
    case CallEvent::ANSWERED:
      return domain::CallOutcome::kAnswered;
    case CallEvent::BUSY:
      return domain::CallOutcome::kBusy;
    case CallEvent::FAILED:
      return domain::CallOutcome::kFailed;
    case CallEvent::VOICEMAIL:
      return domain::CallOutcome::kVoicemail;
    case CallEvent::CANCELED:
      return domain::CallOutcome::kCanceled;
    case CallEvent::MISSED:
    case CallEvent::OUTCOME_UNSPECIFIED:
    default:
      return domain::CallOutcome::kMissed;
  }
}

}  // namespace

void FromCall(const events::v1::InboundEvent& event, ContactAttempt& attempt) {
  const CallEvent& call = event.call();
  domain::CallFacts facts;
  facts.call_id = call.call_id();
  facts.direction = call.direction() == CallEvent::OUTBOUND ? domain::CallDirection::kOutbound
                                                            : domain::CallDirection::kInbound;
  facts.outcome = Outcome(call.outcome());
  facts.anonymous = call.anonymous() || event.identities().empty();
  facts.withheld = call.anonymous();
  facts.from_number = call.from_number();
  facts.to_number = call.to_number();
  facts.line = call.line();
  facts.duration_seconds = call.duration_seconds() > 0 ? call.duration_seconds() : 0;
  facts.operator_name = call.operator_name();
  facts.extension = call.extension();
  facts.recording_url = call.recording_url();
  // Every recording, oldest first; an event of an earlier telephony-ingest carries one URL.
  facts.recording_urls.assign(call.recording_urls().begin(), call.recording_urls().end());
  if (facts.recording_urls.empty() && !facts.recording_url.empty()) {
    facts.recording_urls.push_back(facts.recording_url);
  } else if (facts.recording_url.empty() && !facts.recording_urls.empty()) {
    facts.recording_url = facts.recording_urls.back();
  }
  facts.recording_only = call.recording_only();
  facts.carried_by_call = call.carried_by_call();
  facts.started_unix = call.has_started_at() ? call.started_at().seconds() : 0;
  facts.answered_unix = call.has_answered_at() ? call.answered_at().seconds() : 0;
  facts.ended_unix = call.has_ended_at() ? call.ended_at().seconds() : 0;
  if (call.has_ended_at()) {
    facts.at_unix = call.ended_at().seconds();
  } else if (call.has_started_at()) {
    facts.at_unix = call.started_at().seconds();
  } else if (event.has_occurred_at()) {
    facts.at_unix = event.occurred_at().seconds();
  }

  const bool answered = facts.outcome == domain::CallOutcome::kAnswered;
  const bool outbound = facts.direction == domain::CallDirection::kOutbound;
  // The number as the person's identity holds it (E.164), written for reading.
  const std::string number = identity::FormatPhoneForReading(
      event.identities().empty() ? facts.Counterpart() : event.identities(0).value());
  const std::string outcome(domain::ToString(facts.outcome));
  if (outbound) {
    attempt.fallback_title = absl::StrCat("Call to ", number);
  } else {
    attempt.fallback_title = absl::StrCat(answered ? "Call from " : "Missed call ", number);
  }
  std::string description;
  if (outbound) {
    description =
        answered ? absl::StrCat("Outgoing call to ", number, ", ", facts.duration_seconds, " s")
                 : absl::StrCat("Outgoing call to ", number, ", not answered (",
                                absl::AsciiStrToLower(outcome), ")");
  } else if (answered) {
    description = absl::StrCat("Answered call from ", number, ", ", facts.duration_seconds, " s");
  } else if (facts.outcome == domain::CallOutcome::kVoicemail) {
    description = absl::StrCat("Voicemail from ", number);
  } else {
    description = absl::StrCat("Missed call from ", number);
  }
  if (call.incomplete()) {
    // The call's end never reached us (the PBX link was down when it hung up): its outcome is
    // what the earlier states showed, and a talk time of 0 means unknown, not a 0 s call.
    if (answered && facts.duration_seconds == 0) {
      absl::StrReplaceAll({{", 0 s", ", talk time unknown"}}, &description);
    }
    absl::StrAppend(&description,
                    "; its end was not reported (the link to the phone system was down)");
  }
  if (!facts.operator_name.empty() || !facts.extension.empty()) {
    absl::StrAppend(&description, "; operator ",
                    facts.operator_name.empty() ? facts.extension : facts.operator_name);
  }
  if (!facts.recording_url.empty()) {
    absl::StrAppend(&description, "; recording ", facts.recording_url);
  }
  const std::string subject =
      outbound ? "Outgoing call" : (answered ? "Incoming call" : "Call back");
  attempt.activity = {.type = "CALL",
                      .subject = subject,
                      .repeat_subject = subject,
                      .description = description,
                      .completed = outbound || answered,
                      .has_deadline = !outbound && !answered};
  attempt.source_id = "CALL";
  auto put = [&](const std::string& key, const std::string& value) {
    if (!value.empty()) {
      attempt.source_details[key] = value;
    }
  };
  put("reference", call.line().empty() ? call.to_number() : call.line());
  put("call_id", call.call_id());
  put("outcome", outcome);
  put("direction", std::string(domain::ToString(facts.direction)));
  if (facts.duration_seconds > 0) {
    put("duration_seconds", std::to_string(facts.duration_seconds));
  }
  put("recording_url", facts.recording_url);
  if (call.incomplete()) {
    put("incomplete", "true");
  }
  attempt.call = std::move(facts);
}

}  // namespace leadflow::crm
