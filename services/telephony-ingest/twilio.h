#pragma once

#include <map>
#include <string>
#include <vector>

#include "ingest/form_params.h"
#include "telephony-ingest/call.h"

namespace leadflow::telephony {

/// What a Twilio voice callback says about its call.
struct TwilioParse {
  enum class Outcome {
    kOk,
    kInvalid,  // no CallSid, a Direction, CallStatus or QueueResult we do not know: `reason`
  };
  Outcome outcome = Outcome::kOk;
  std::string reason;
  /// Secondary fields past the generic API's bounds (From, To over 256 bytes or not UTF-8, a
  /// RecordingUrl over 2048 bytes or no http(s) URL, a CallDuration or DialCallDuration that
  /// is no number of seconds from 0 to 604800, a Timestamp that is no RFC 2822 time from 1970
  /// to 2262): dropped, the call kept (field → why).
  std::map<std::string, std::string> dropped;
  CallUpdate update;
  /// The id of the recording `update.recording_url` names, the one its recording status
  /// callback gives (RecordingSid): the callback's own RecordingSid (a <Dial record> action
  /// carries it), else the "/Recordings/RE…" of a Twilio recording URL; empty for another URL.
  /// A recording published after its call (CallAssembler::RecordingOfSettled) takes its event id
  /// from it, so that the action's and the callback's events of one file are one.
  std::string recording_sid;
};

/// A voice status callback (CallStatus queued, ringing, in-progress, completed, busy, failed,
/// no-answer, canceled), a <Dial> action callback (DialCallStatus, DialCallDuration), an
/// <Enqueue> action callback (QueueResult, QueueSid: the caller taken or not) or an
/// asynchronous answering machine detection callback (AnsweredBy without CallStatus), with
/// Direction (inbound, trunking-terminating; outbound-api, outbound-dial,
/// trunking-originating; required but on the AMD callback), From, To, CallDuration,
/// Timestamp, AnsweredBy, RecordingUrl. A <Dial>'s child leg (outbound-dial with
/// ParentCallSid) is reported as its parent's (CallUpdate::child_leg). `target`: the request's
/// path and query; a <Dial> action's leg is credited to the `operator` (a user's e-mail or
/// name, at most 256 bytes) and `extension` (1–32 of A-Z a-z 0-9 * # _ . -) query parameters
/// of its action URL, which Twilio signs with the rest: a malformed one is kInvalid.
/// `sip_domains`: the account's own SIP Domains (ParseTwilioSipDomains, lower case); an
/// inbound call From a user on one of them, or from a Twilio Client ("client:"), is our agent
/// calling out. A SIP user on any other host, another account's SIP Domain included, is a
/// caller.
TwilioParse ParseTwilioVoice(const ingest::FormParams& params, std::string_view target = {},
                             const std::vector<std::string>& sip_domains = {});

/// At most this many SIP Domains in TELEPHONY_TWILIO_SIP_DOMAINS.
inline constexpr size_t kMaxTwilioSipDomains = 64;

/// TELEPHONY_TWILIO_SIP_DOMAINS: comma-separated SIP Domains of the Twilio account
/// ("acme.sip.twilio.com", regional "acme.sip.ie1.twilio.com"), read in any case, returned in
/// lower case; empty: none. InvalidArgument names what is accepted.
absl::StatusOr<std::vector<std::string>> ParseTwilioSipDomains(const std::string& text);

/// A recording status callback: CallSid, RecordingSid, RecordingUrl, RecordingStatus.
struct TwilioRecording {
  bool completed = false;  // RecordingStatus completed (absent, failed: nothing to attach)
  /// A <Conference record>'s recording: a ConferenceSid and no CallSid, no call to attach it to.
  bool conference = false;
  std::string call_sid;
  std::string recording_sid;
  std::string recording_url;
};
absl::StatusOr<TwilioRecording> ParseTwilioRecording(const ingest::FormParams& params);

/// The RecordingSid a Twilio recording URL names
/// ("https://api.twilio.com/2010-04-01/Accounts/AC…/Recordings/RE…", with or without a media
/// extension); empty for any other URL.
std::string RecordingSidOfUrl(std::string_view url);

/// Twilio's Timestamp parameter, RFC 2822 ("Mon, 16 Aug 2010 03:45:01 +0000").
std::optional<Clock::time_point> ParseRfc2822(const std::string& text);

}  // namespace leadflow::telephony
