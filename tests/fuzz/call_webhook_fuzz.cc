// Fuzz target: telephony-ingest's webhook bodies — the generic call-event JSON and Twilio's
// urlencoded callbacks — and the call assembly behind them. Invariants: a body is accepted
// with a call id and a provider, or refused with a reason; an accepted final state always
// gives an event with an outcome and an event id; withheld numbers never become an identity;
// the fast JSON readers (simdjson) never read a body, a stored update or a stored settlement
// otherwise than their reference (nlohmann); a settlement read is written back to a text that
// reads the same.

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

  // The body read as a settled call kept in the store (a retry of a settled call reads one):
  // the fast reading is the reference's, and what is read is written back to a text that
  // reads the same (nothing of a settled call is lost between two replicas).
  std::optional<FinishedCall> settled = ParseFinished(body);
  std::optional<FinishedCall> settled_reference = ParseFinishedJson(body);
  fuzz::Check(settled.has_value() == settled_reference.has_value(),
              "the fast settlement reader and nlohmann disagree on taking a text");
  if (settled) {
    fuzz::Check(
        settled->event_id == settled_reference->event_id &&
            settled->counterpart_e164 == settled_reference->counterpart_e164 &&
            settled->occurred == settled_reference->occurred &&
            settled->call.SerializeAsString() == settled_reference->call.SerializeAsString() &&
            settled->republication && settled_reference->republication,
        "the fast settlement reader read a settlement otherwise than nlohmann");
    const std::string stored = SerializeFinished(*settled);
    fuzz::Check(stored == SerializeFinishedJson(*settled),
                "a settlement written directly is not nlohmann's text");
    std::optional<FinishedCall> again = ParseFinished(stored);
    fuzz::Check(again.has_value(), "a written settlement does not read back");
    fuzz::Check(again->event_id == settled->event_id &&
                    again->counterpart_e164 == settled->counterpart_e164 &&
                    again->occurred == settled->occurred && SerializeFinished(*again) == stored,
                "a settlement read back is not the one written");
  }

  GenericParse generic = ParseGenericEvent(body, {});
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
