// Fuzz target: telephony-ingest's webhook bodies — the generic call-event JSON and Twilio's
// urlencoded callbacks — and the call assembly behind them. Invariants: a body is accepted
// with a call id and a provider, or refused with a reason; an accepted final state always
// gives an event with an outcome and an event id; withheld numbers never become an identity;
// the fast JSON readers (simdjson) never read a body, or a stored update, otherwise than their
// reference (nlohmann).

#include "fuzz/fuzz.h"
#include "ingest/form_params.h"
#include "telephony-ingest/call.h"
#include "telephony-ingest/generic.h"
#include "telephony-ingest/json_fields.h"
#include "telephony-ingest/twilio.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace leadflow;
  using namespace leadflow::telephony;
  std::string_view body = fuzz::AsText(data, size);
  CallAssembler calls({.max_open_calls = 4, .max_finished_calls = 4});
  const Clock::time_point now = Clock::time_point(std::chrono::seconds(1700000000));
  auto fold = [&](const CallUpdate& update) {
    fuzz::Check(!update.provider.empty() && !update.provider_call_id.empty(),
                "accepted without a call id");
    auto result = calls.Apply(update, now);
    if (!result.ok() || !result->finished) return;
    const FinishedCall& finished = *result->finished;
    fuzz::Check(!finished.event_id.empty(), "finished without an event id");
    fuzz::Check(finished.call.outcome() != CallEvent::OUTCOME_UNSPECIFIED,
                "finished without an outcome");
    auto built = BuildEvent(finished, "FR", now, std::nullopt);
    fuzz::Check(!built.key.empty(), "no Kafka key");
    if (finished.call.anonymous()) {
      fuzz::Check(built.event.identities_size() == 0, "an anonymous caller got an identity");
    }
  };

  static constexpr std::string_view kNames[] = {"call_id", "from", "ended_at", "duration"};
  JsonField fast[std::size(kNames)];
  JsonField reference[std::size(kNames)];
  bool not_json = false;
  const bool reference_read = ReadJsonFieldsReference(body, kNames, reference, &not_json);
  if (ReadJsonFields(body, kNames, fast)) {
    fuzz::Check(reference_read, "the fast reader took a body nlohmann refuses");
    for (size_t i = 0; i < std::size(kNames); ++i) {
      fuzz::Check(
          fast[i].kind == reference[i].kind && fast[i].text == reference[i].text &&
              (fast[i].number == reference[i].number ||
               (fast[i].number != fast[i].number && reference[i].number != reference[i].number)),
          "the fast reader read a field otherwise than nlohmann");
    }
  }

  // The body read as an open call's stored update: the fast reading, when it answers, is the
  // reference's.
  if (std::optional<CallUpdate> stored = ParseUpdateFast(body)) {
    std::optional<CallUpdate> reference = ParseUpdateJson(body);
    fuzz::Check(reference.has_value(), "the fast update reader took a text nlohmann refuses");
    fuzz::Check(!reference || SerializeUpdateJson(*stored) == SerializeUpdateJson(*reference),
                "the fast update reader read an update otherwise than nlohmann");
  }

  GenericParse generic = ParseGenericEvent(body, "FR", {});
  if (generic.outcome == GenericParse::Outcome::kOk) {
    fold(generic.update);
  } else {
    fuzz::Check(!generic.reason.empty() || !generic.errors.empty(), "refused without a reason");
  }

  auto params = ingest::ParseFormParams(body, 50);
  if (params.ok()) {
    fuzz::Check(params->size() <= 50, "more parameters than the limit");
    TwilioParse twilio = ParseTwilioVoice(*params);
    if (twilio.outcome == TwilioParse::Outcome::kOk) {
      fold(twilio.update);
    } else {
      fuzz::Check(!twilio.reason.empty(), "refused without a reason");
    }
    (void)ParseTwilioRecording(*params);
  }
  return 0;
}
