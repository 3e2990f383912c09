#pragma once

// The telephony channel's rules (docs/architecture.md, "Calls"), as plain C++: what a call does
// to the CRM once matched against the records holding its number. No I/O; the inbound planner
// applies it (inbound/call_rules.h).
//
//  - Inbound, not answered (missed, busy, failed, voicemail, the caller hung up): an open CALL
//    activity "Call back", due the call-back SLA after the call. An unknown number also makes a
//    lead (classic) or a contact and a deal (simple). At most one open call-back per record:
//    further missed calls raise its missed-call count and last attempt time.
//  - Inbound, answered: a CALL activity created completed, with duration, operator and
//    recording. An unknown number makes a lead / contact + deal (source CALL); a known one never.
//  - Outbound: a completed CALL activity on the matched record; an unknown number makes a record
//    only when the setting says so, else the call is listed as unidentified. An answered
//    outbound call completes the open call-backs of the records it reached.
//  - Withheld number, or none (a SIP user): listed as unidentified, never a lead.
//  - A recording that arrives after its call: added to that call's activity.
// A known number never makes a record: a call attaches to the person's open lead, else their
// newest open deal, else their contact (or company), else their newest lead, open or not.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "crm-core/domain/matching/matching.h"

namespace leadflow::crm::domain {

enum class CallDirection { kInbound, kOutbound };
enum class CallOutcome { kMissed, kAnswered, kBusy, kFailed, kVoicemail, kCanceled };

/// "INBOUND", "OUTBOUND" / "MISSED", "ANSWERED", … (the activities.call_* spellings).
std::string_view ToString(CallDirection direction);
std::string_view ToString(CallOutcome outcome);
std::optional<CallDirection> ParseCallDirection(std::string_view text);
std::optional<CallOutcome> ParseCallOutcome(std::string_view text);

/// What the channel tells about one finished call.
struct CallFacts {
  std::string call_id;  // "<provider>:<provider call id>"
  CallDirection direction = CallDirection::kInbound;
  CallOutcome outcome = CallOutcome::kMissed;
  /// The caller withheld their number, or it is no phone number (the event has no identity):
  /// nobody to match.
  bool anonymous = false;
  std::string from_number;
  std::string to_number;
  std::string line;  // the company's number or line name
  int64_t duration_seconds = 0;
  std::string operator_name;  // a user name or e-mail, as the provider gave it
  std::string extension;      // the PBX extension that took or made it
  /// The call's latest recording (the one URL earlier events carried); recording_urls holds
  /// every one, oldest first.
  std::string recording_url;
  std::vector<std::string> recording_urls;
  /// Only adds a recording to a call published before under the same call_id.
  bool recording_only = false;
  /// A recording_only event's recording came before its call was settled: the call's own event
  /// carries it too (a recording that finds no call yet is deferred, not lost).
  bool carried_by_call = false;
  /// When the call ended (else started, else the event occurred), seconds since the epoch; 0:
  /// unknown. A call-back is due this long after the call, not after crm-core read it.
  int64_t at_unix = 0;
  /// The call's own times as the provider gave them, seconds since the epoch; 0: not given.
  int64_t started_unix = 0;
  int64_t answered_unix = 0;
  int64_t ended_unix = 0;
  /// The caller withheld their number (the event's `anonymous`); `anonymous` without it: the
  /// other party is no phone number (a SIP or app user).
  bool withheld = false;

  /// The other party: the caller of an inbound call, the callee of an outbound one.
  const std::string& Counterpart() const {
    return direction == CallDirection::kOutbound ? to_number : from_number;
  }
};

/// Recordings kept per CALL activity or unidentified call at most (each URL once); further ones
/// are dropped and counted (crm_call_recordings_total{result="dropped"}).
inline constexpr int kMaxRecordingsPerCall = 20;

/// crm_settings' call part.
struct CallSettings {
  static constexpr int kMinSlaMinutes = 1;
  static constexpr int kMaxSlaMinutes = 7 * 24 * 60;
  std::chrono::minutes call_back_sla{15};
  bool outbound_creates_lead = false;
  std::map<std::string, std::string> line_queues;  // line → queue key
};

/// Checks settings an admin gives: the SLA within [1 min, 7 days], each line 1–100 of
/// A-Z a-z 0-9 + _ : . @ -.
absl::Status ValidateCallSettings(int64_t sla_minutes,
                                  const std::map<std::string, std::string>& line_queues);

/// A user's phone extension: 1–32 of A-Z a-z 0-9 * # _ . - (users.extension).
bool IsValidExtension(std::string_view extension);

enum class CallAction {
  kCallBack,       // an open call-back activity (or one more missed call on it)
  kCompletedCall,  // a completed CALL activity
  kUnidentified,   // the unidentified calls list; nothing else
  kAddRecording,   // the recording goes on the call's activity; nothing else
};

struct CallPolicy {
  CallAction action = CallAction::kCallBack;
  /// An unknown number may make a lead / contact + deal.
  bool may_create_record = false;
  /// The call reached the person: their open call-backs are done.
  bool completes_call_backs = false;
};

/// Why a call is listed as unidentified (unidentified_calls.reason): withheld, no phone number,
/// or an outbound call to a number nobody holds.
enum class UnidentifiedReason { kWithheld, kNotAPhoneNumber, kOutboundUnknownNumber };

/// "WITHHELD", "NOT_A_PHONE_NUMBER", "OUTBOUND_UNKNOWN_NUMBER".
std::string_view ToString(UnidentifiedReason reason);
std::optional<UnidentifiedReason> ParseUnidentifiedReason(std::string_view text);

/// Why `call`, which DecideCall listed as unidentified, is: an anonymous call is withheld or no
/// phone number, any other one is an outbound call to an unknown number.
UnidentifiedReason ReasonUnidentified(const CallFacts& call);

/// What a call does; `known`: a lead, contact or company holds its number.
CallPolicy DecideCall(const CallFacts& call, bool known, const CallSettings& settings);

/// The queue new records of a call rotate over: the line's, else `channel_queue` (the CALL
/// channel's setting, possibly empty: "channel:CALL").
std::string CallQueue(const CallSettings& settings, const std::string& line,
                      const std::string& channel_queue);

/// A known number never makes a record: a decision that would make one (a returning lead, a deal
/// for a returning customer, a new contact over closed leads) becomes an activity on the record
/// the person already has — the contact (or company) it would link to, else the newest matched
/// lead. Other decisions are left as they are.
void KeepOnKnownRecord(const MatchInput& input, MatchDecision& decision);

}  // namespace leadflow::crm::domain
