// A phone call: a missed one asks for a call back (open, with a deadline); an answered one is
// recorded as a completed call activity (ARCHITECTURE.md, inbound rules).
#include "absl/strings/str_cat.h"
#include "crm-core/inbound/channels/channels.h"

namespace leadflow::crm {

void FromCall(const events::v1::InboundEvent& event, ContactAttempt& attempt) {
  const events::v1::CallEvent& call = event.call();
  const bool answered = call.outcome() == events::v1::CallEvent::ANSWERED;
  const std::string number =
      call.from_number().empty() ? event.identities(0).value() : call.from_number();
  attempt.fallback_title = absl::StrCat(answered ? "Call from " : "Missed call ", number);
  attempt.activity = {.type = "CALL",
                      .subject = answered ? "Incoming call" : "Call back",
                      .repeat_subject = answered ? "Incoming call" : "Call back",
                      .description = answered ? absl::StrCat("Answered call from ", number, ", ",
                                                             call.duration_seconds(), " s")
                                              : absl::StrCat("Missed call from ", number),
                      .completed = answered,
                      .has_deadline = !answered};
  attempt.source_id = "CALL";
  auto put = [&](const std::string& key, const std::string& value) {
    if (!value.empty()) {
      attempt.source_details[key] = value;
    }
  };
  put("reference", call.to_number());
  put("call_id", call.call_id());
  put("outcome", answered ? "ANSWERED" : "MISSED");
  put("direction", events::v1::CallEvent::Direction_Name(call.direction()));
  if (call.duration_seconds() > 0) {
    put("duration_seconds", std::to_string(call.duration_seconds()));
  }
  put("recording_url", call.recording_url());
}

}  // namespace leadflow::crm
