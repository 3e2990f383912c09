#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "metrics/metrics.h"
#include "telephony-ingest/call.h"

namespace leadflow::telephony {

/// One AMI message: "Key: Value" lines, in order (a key may repeat, e.g. ChanVariable).
struct AmiMessage {
  std::vector<std::pair<std::string, std::string>> fields;
  /// The first value of `key` (case-insensitive, as Asterisk's own parser); empty if absent.
  std::string Get(std::string_view key) const;
  bool Has(std::string_view key) const;
};

/// Cuts the AMI byte stream into messages: the banner line ("Asterisk Call Manager/5.0.1")
/// first, then blocks of "Key: Value" lines ended by an empty line. Lines end in CRLF (a bare
/// LF is accepted). Bytes arrive in any chunking: a message may span reads, a read may hold
/// several messages.
class AmiFramer {
 public:
  explicit AmiFramer(size_t max_message_bytes = 65536) : max_message_bytes_(max_message_bytes) {}

  /// Adds bytes; complete messages are appended to `out`. InvalidArgument when a message grows
  /// past max_message_bytes or a line is not "Key: Value" (the connection must be dropped).
  absl::Status Feed(std::string_view bytes, std::vector<AmiMessage>* out);

  /// The banner, once read ("Asterisk Call Manager/5.0.1").
  const std::optional<std::string>& banner() const { return banner_; }
  void Reset();

 private:
  const size_t max_message_bytes_;
  std::string buffer_;
  std::optional<std::string> banner_;
  AmiMessage current_;
  size_t current_bytes_ = 0;
};

struct AmiOptions {
  std::string host;
  int port = 5038;
  std::string username;
  std::string secret;
  std::chrono::milliseconds reconnect_min{500};
  std::chrono::milliseconds reconnect_max{30000};
  /// Without any byte for this long the client sends a Ping; without an answer for as long
  /// again the connection is taken for dead and re-opened.
  std::chrono::milliseconds ping_interval{15000};
  int extension_max_digits = 5;
  /// What an extension dials before a number to reach an outside line (TELEPHONY_AMI_OUTSIDE_
  /// LINE_PREFIX, e.g. "0" on many French PBXs: "00641000202" is 06 41 00 02 02). Removed once
  /// from the number of an outbound call; empty: the number is taken as dialled.
  std::string outside_line_prefix;
  std::string line;
  size_t max_frame_bytes = 65536;
  /// Calls tracked at once at most; past it the oldest is finished from what is known.
  size_t max_calls = 10000;
  /// The PBX's time zone (TELEPHONY_PBX_TIME_ZONE): a Cdr's StartTime, AnswerTime and EndTime
  /// are its local time, without a zone (see LocalTimes in generic.h).
  absl::TimeZone time_zone = absl::UTCTimeZone();
};

/// Assembles Asterisk's channel events into calls keyed by Linkedid (the Uniqueid of the
/// call's first channel, shared by every channel it spawns): Newchannel (caller, dialled
/// number, start), DialBegin/DialEnd (destinations rung, who answered, DialStatus), Newexten
/// into VoiceMail, BlindTransfer/AttendedTransfer, Hangup; Cdr only refines a call still open
/// (talk time; start, answer and end times, read in AmiOptions::time_zone). Enumerated values
/// (DialStatus, Disposition) are read in any case.
/// The call is settled when its last channel hangs up: answered, voicemail, busy, failed
/// (CHANUNAVAIL, CONGESTION) or missed, published through the CallAssembler (event id from
/// Linkedid and outcome). It lives outside the connection: a reconnect keeps it, and
/// Reconcile() settles the calls whose channels vanished while the connection was down and takes
/// up the calls that began meanwhile.
/// Calls whose caller and callee are both extensions are internal and publish nothing, and so
/// do an extension's feature codes (`*97`, `#72`: the PBX's own services, nobody's number). A
/// `Cdr`'s ANSWERED only means the caller's channel was answered — VoiceMail(), Queue() and IVRs
/// answer it themselves — so it makes a call answered only when the channel events could not
/// tell (the call lived through a reconnect) and its last application was a Dial. Not
/// thread-safe: one AMI connection thread drives it.
class AmiCallTracker {
 public:
  using Publish = std::function<void(const FinishedCall&)>;
  AmiCallTracker(const AmiOptions& options, CallAssembler* calls, Publish publish,
                 std::function<Clock::time_point()> now = {});

  void OnEvent(const AmiMessage& event);
  /// Before CoreShowChannels is sent: until Reconcile, the events of a call not followed (other
  /// than its first channel's Newchannel, which begins a new call at once) are held, and applied
  /// once Reconcile has taken up the calls listed. A call in progress when the connection came
  /// back can end while it is listed: its Hangup, before the call is taken up, would find nothing
  /// and leave the call open until its timeout. At most max_calls events are held; past that
  /// they are ignored as a call not followed's are (on_ignored "ami_listing_backlog").
  void BeginListing();
  /// After a login: `live` holds the Uniqueids CoreShowChannels listed, `listed` its
  /// CoreShowChannel events. Channels not in `live` hung up meanwhile; calls left without any
  /// channel are settled (incomplete). A call not known whose first channel (Uniqueid ==
  /// Linkedid) is listed began while nobody listened: it is begun from that channel as from its
  /// Newchannel (its start: the listing's time less the channel's Duration), followed from then
  /// on, and published incomplete. Past max_calls such a call is not taken up (on_ignored). The
  /// events held since BeginListing are then applied, in the order they came.
  void Reconcile(const std::set<std::string>& live, const std::vector<AmiMessage>& listed = {});

  size_t calls() const { return calls_.size(); }
  uint64_t internal_calls() const { return internal_; }

  /// Invoked when a report is published on its own because the call store failed; optional.
  std::function<void()> on_decided_alone;
  /// Invoked for each call settled without its end (Reconcile); optional (main counts them).
  std::function<void()> on_incomplete;
  /// Invoked for each call dropped without publishing, with the reason ("internal_call",
  /// "feature_code", "ami_calls_cap": a call begun while the connection was down not taken up,
  /// max_calls being tracked; "ami_listing_backlog": an event past the bound of those held
  /// while the channels are listed); optional (main counts them in telephony_ignored_total).
  std::function<void(const char* reason)> on_ignored;
  /// Invoked for a call's times that cannot be read (the Timestamp of its first Newchannel or
  /// last Hangup: no Unix time from 1970 to 2262, the arrival time used instead; the Duration
  /// of a call's first channel listed by Reconcile: no HH:MM:SS, the listing's time used; a Cdr's
  /// StartTime, AnswerTime, EndTime: no local time, left out), with the call's id
  /// ("asterisk:<Linkedid>") and field → why; not for internal calls; optional (main counts
  /// them in telephony_fields_dropped_total).
  std::function<void(const std::string& call_id, const std::map<std::string, std::string>& dropped)>
      on_dropped;

 private:
  struct Tracked {
    std::set<std::string> channels;
    bool internal = false;
    bool outbound = false;
    bool answered = false;
    bool voicemail = false;
    bool abandoned = false;  // the caller left a queue unanswered (QueueCallerAbandon)
    bool gap = false;        // lived through a reconnect: some of its channel events were lost
    bool taken_up = false;   // began while the connection was down: its beginning is unknown
    std::string first_answerer;
    std::string last_dial_status;
    std::string hangup_cause;
    Clock::time_point seen;
  };
  /// The event's Timestamp, else now; an unreadable one is noted in `dropped`.
  Clock::time_point EventTime(const AmiMessage& event,
                              std::map<std::string, std::string>* dropped) const;
  void ReportDropped(const std::string& linkedid,
                     const std::map<std::string, std::string>& dropped) const;
  bool IsExtension(const std::string& number) const;
  /// Begins a call from its first channel (a Newchannel, or a CoreShowChannel for a call begun
  /// while the connection was down): caller, number dialled, direction; internal calls and
  /// feature codes are ignored.
  void Begin(const std::string& linkedid, Tracked& call, const AmiMessage& channel,
             Clock::time_point at, const std::map<std::string, std::string>& dropped);
  void Ignore(Tracked& call, const char* reason);
  void Apply(const std::string& linkedid, CallUpdate update);
  void Settle(const std::string& linkedid, Tracked& call, Clock::time_point at);

  const AmiOptions options_;
  CallAssembler* assembler_;
  Publish publish_;
  std::function<Clock::time_point()> now_;
  std::map<std::string, Tracked> calls_;
  uint64_t internal_ = 0;
  bool listing_ = false;          // between BeginListing and Reconcile
  std::vector<AmiMessage> held_;  // events of calls not followed meanwhile (max_calls at most)
};

/// The AMI connection: connects, reads the banner, logs in (Events: call,cdr… on), lists the
/// live channels (CoreShowChannels) to reconcile the tracker, then feeds events to it; on any
/// error or silence it reconnects with exponential backoff (reset by a successful login) and
/// logs in again. Runs on its own thread between Start() and Stop().
class AmiClient {
 public:
  AmiClient(AmiOptions options, AmiCallTracker* tracker, metrics::Registry* registry);
  ~AmiClient();
  void Start();
  /// Closes the connection and joins the thread; safe to call twice.
  void Stop();
  bool connected() const { return connected_; }
  /// Successful logins so far.
  uint64_t logins() const { return logins_; }

 private:
  void Run();
  /// One connection, from connect to its end; OK only when Stop() ended it.
  absl::Status Session();

  const AmiOptions options_;
  AmiCallTracker* tracker_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> connected_{false};
  std::atomic<uint64_t> logins_{0};
  std::mutex mutex_;  // guards socket_fd_ and wakes the backoff wait
  std::condition_variable wake_;
  int socket_fd_ = -1;
  std::thread thread_;
  metrics::Counter* reconnects_;
  metrics::Counter* events_;
  metrics::Counter* protocol_errors_;
};

}  // namespace leadflow::telephony
