#pragma once

#include <string>

#include "ingest/form_params.h"
#include "telephony-ingest/call.h"

namespace leadflow::telephony {

/// What a Twilio voice callback says about its call.
struct TwilioParse {
  enum class Outcome {
    kOk,
    kInvalid,  // no CallSid, or a CallStatus or QueueResult we do not know: `reason`
    kIgnored,  // nothing to fold (a <Dial> child leg: the parent's callbacks carry the outcome)
  };
  Outcome outcome = Outcome::kOk;
  std::string reason;
  CallUpdate update;
};

/// A voice status callback (CallStatus queued, ringing, in-progress, completed, busy, failed,
/// no-answer, canceled), a <Dial> action callback (DialCallStatus, DialCallDuration) or an
/// <Enqueue> action callback (QueueResult, QueueSid: the caller taken or not), with
/// Direction, From, To, CallDuration, Timestamp, AnsweredBy, RecordingUrl. `target`: the
/// request's path and query; a <Dial> action's leg is credited to the `operator` (a user's
/// e-mail or name, at most 256 bytes) and `extension` (1–32 of A-Z a-z 0-9 * # _ . -) query
/// parameters of its action URL, which Twilio signs with the rest: a malformed one is kInvalid.
TwilioParse ParseTwilioVoice(const ingest::FormParams& params, std::string_view target = {});

/// A recording status callback: CallSid, RecordingSid, RecordingUrl, RecordingStatus.
struct TwilioRecording {
  bool completed = false;  // RecordingStatus completed (absent, failed: nothing to attach)
  std::string call_sid;
  std::string recording_sid;
  std::string recording_url;
};
absl::StatusOr<TwilioRecording> ParseTwilioRecording(const ingest::FormParams& params);

/// Twilio's Timestamp parameter, RFC 2822 ("Mon, 16 Aug 2010 03:45:01 +0000").
std::optional<Clock::time_point> ParseRfc2822(const std::string& text);

}  // namespace leadflow::telephony
