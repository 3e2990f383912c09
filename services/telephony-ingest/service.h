#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "http/server.h"
#include "ingest/client_ip.h"
#include "ingest/event.h"
#include "ingest/form_params.h"
#include "ingest/publish.h"
#include "ingest/signature.h"
#include "metrics/metrics.h"
#include "telephony-ingest/call.h"

namespace leadflow::telephony {

using ingest::Publisher;

/// A phone number as a log line shows it: its last two characters only ("**72"), enough to tell
/// two calls apart and not to read whom they were with; "none" when empty.
std::string MaskedNumber(std::string_view number);
/// The one info line of a call event Kafka acknowledged: provider, call id, event id, outcome
/// ("recording" for a recording's own event), direction, talk time, the numbers masked, and
/// "withheld" / "incomplete" when so. Nothing else of the call (no operator, line, URL).
void LogPublished(const FinishedCall& call, std::string_view provider, std::string_view outcome);

struct ServiceOptions {
  /// Phone numbers without a country code are read as numbers of this region.
  std::string default_region = "FR";
  /// The PBX's time zone: the generic API's times without an offset are its local time
  /// (LocalTimes in generic.h).
  absl::TimeZone pbx_time_zone = absl::UTCTimeZone();
  /// A generic report whose from and to are both numbers this short (internal extensions,
  /// TELEPHONY_AMI_EXTENSION_MAX_DIGITS) is a colleague's call: answered, published never.
  int extension_max_digits = 5;
  /// The generic API's HMAC-SHA256 key; empty turns the generic API off (404).
  std::string webhook_secret;
  /// How far the signed timestamp may be from our clock, either side.
  std::chrono::seconds signature_window{300};
  /// Proxies whose X-Forwarded-For is believed (ingest::ClientIp); empty: the TCP peer. The
  /// client address is recorded in the event's source (who posted the callback).
  ingest::TrustedProxies trusted_proxies;
  /// Twilio's auth token and the public URL Twilio posts to (what it signs); either empty
  /// turns the Twilio routes off (404).
  std::string twilio_auth_token;
  std::string twilio_public_url;
  /// The Twilio account's SIP Domains (TELEPHONY_TWILIO_SIP_DOMAINS, lower case): a call From a
  /// user on one of them is our agent calling out; empty: no SIP caller is ours.
  std::vector<std::string> twilio_sip_domains;
  CallAssembler::Options calls;
  /// Where the state of calls lives (not owned): a RedisCallStore shared by the replicas; null:
  /// in this process only.
  CallStore* call_store = nullptr;
  /// Refusals logged per error code and second at most; the others are counted in the log
  /// line that follows.
  int refusal_logs_per_second = 1;
  /// Retry-After, in seconds, when Kafka did not take the event or we are overloaded.
  int unavailable_retry_after_seconds = 5;
  /// Signatures remembered to count replays (a replay is answered like the original: the
  /// event id is the same, so it has no second effect).
  size_t replay_cache_size = 10000;
  /// Events of calls finished outside a request (Asterisk, expiry) that Kafka refused and
  /// that are retried, at most; past it they are dropped and counted.
  size_t max_background_pending = 10000;
  /// Requests whose answer waits for their call to settle (an unanswered final report, Twilio's
  /// parent "completed"), at most; past it such reports are answered 503 + Retry-After.
  size_t max_parked = 1000;
  /// How long a parked request waits for its call's event to be acknowledged before it is
  /// answered 503 + Retry-After (the settle window, the ticker's period and Kafka's delivery
  /// timeout; main sets it).
  std::chrono::milliseconds parked_timeout{20000};
  /// Reports whose request waits for the call store's answer (Redis), at most; past it a
  /// report is answered 503 + Retry-After (call_store_busy) without touching the store.
  size_t max_store_waiting = 1024;
};

/// The telephony endpoints and the publishing of finished calls, free of HTTP plumbing so that
/// unit tests drive it directly.
class TelephonyService {
 public:
  using Reply = std::function<void(http::Response)>;
  using Now = std::function<Clock::time_point()>;

  TelephonyService(ServiceOptions options, Publisher* publisher, metrics::Registry* registry,
                   Now now = {});

  /// POST /v1/calls/events (JSON, signed). `reply` runs once, maybe on another thread.
  void HandleGeneric(const http::Request& request, Reply reply);
  /// POST /v1/twilio/voice: status and <Dial> action callbacks.
  void HandleTwilioVoice(const http::Request& request, Reply reply);
  /// POST /v1/twilio/recording: recording status callbacks.
  void HandleTwilioRecording(const http::Request& request, Reply reply);
  void Register(http::Server* server);

  /// The address of who sent `request`, behind the trusted proxies.
  std::string ClientIp(const http::Request& request) const;

  CallAssembler& calls() { return calls_; }
  const ServiceOptions& options() const { return options_; }

  /// Publishes a call finished outside a request (Asterisk, expiry). When Kafka refuses it,
  /// it is kept and Tick() publishes it again (bounded by max_background_pending).
  void PublishBackground(const FinishedCall& call);
  /// Finishes the calls that have been quiet too long and retries refused background events;
  /// run every few seconds.
  void Tick();
  size_t background_pending() const;

  /// Parked requests (a settling report is answered only once Kafka acknowledged its call's
  /// event): releases those whose call another replica settled (seen in the call store; this
  /// replica's own publications release theirs at once), and answers 503 those past
  /// parked_timeout. Run every TELEPHONY_PARK_POLL_MS.
  void PollParked();
  /// On shutdown: parked requests whose call is settled are published and answered after the
  /// acknowledgement, the others are answered 503 + Retry-After (the provider retries), and
  /// settling reports from now on are answered 503 too. Never drops one silently.
  void StopParking();
  size_t parked() const;

  /// Reports in the call store's hands: waiting for its answer, or being answered from it
  /// (at most max_store_waiting).
  size_t store_waiting() const { return store_waiting_.load(); }

  /// Counts an Asterisk report published on its own because the call store failed (AMI cannot
  /// replay, so it is not refused as a webhook is).
  /// A report an input dropped before the service saw it (telephony_ignored_total{reason}).
  void CountIgnored(std::string_view reason);
  /// Secondary fields of a report dropped, the call kept: counted by field
  /// (telephony_fields_dropped_total) and logged (names and reasons, never values).
  void CountDropped(std::string_view call_id, const std::map<std::string, std::string>& dropped);
  void CountStoreFailureDecidedAlone();

  /// Invoked when the producer reports a fatal error through a delivery; set by main.
  std::function<void(const absl::Status&)> on_fatal;

 private:
  struct Built;
  /// `request`: the webhook that settled the call (its sender is recorded), or null.
  /// `done` gets the delivery's result and the call published.
  void Publish(FinishedCall call, const http::Request* request,
               std::function<void(const kafka::DeliveryResult&, const FinishedCall&)> done);
  /// A recording a report brings after its call was settled (CallAssembler::RecordingOfSettled),
  /// answered `success()` once Kafka has it. When the call's own publication is not confirmed
  /// (`call_confirmed` false: refused, or under way elsewhere) the call is published again
  /// first and the recording after its acknowledgement, so that the recording never reaches
  /// crm-core before its call. `recording_id` makes the recording's event id: the provider's
  /// id of the file when it has one (Twilio's RecordingSid, the one its recording callback
  /// gives), else the URL. At most TELEPHONY_MAX_LATE_RECORDINGS recordings per call, counted
  /// in the call store over every replica (a retry of one, same event id, takes no slot): past
  /// it nothing of the recording is published, the report is answered `capped()` (after the
  /// call's own publication when it is not confirmed), counted in
  /// telephony_ignored_total{reason="late_recordings_cap"} and logged (rate-limited). A failed
  /// store: 503, retried.
  void PublishLateRecording(FinishedCall settled, bool call_confirmed,
                            const std::string& recording_id, const std::string& recording_url,
                            const http::Request& request, Reply reply,
                            std::function<http::Response()> success,
                            std::function<http::Response()> capped);
  /// Counts and logs (rate-limited) a recording of `call_id` not published because the call has
  /// TELEPHONY_MAX_LATE_RECORDINGS published after it.
  void CountLateRecordingCapped(const std::string& call_id);
  /// PublishLateRecording once the recording was admitted.
  void PublishRecordingAfterCall(FinishedCall settled, bool call_confirmed, FinishedCall recording,
                                 const http::Request& request, Reply reply,
                                 std::function<http::Response()> success);
  void PublishAndAnswer(FinishedCall call, const http::Request& request, Reply reply,
                        std::function<http::Response()> success);
  /// Counts and logs (rate-limited, without personal data) a refusal: `reason` says why, for
  /// the operator reading the log.
  http::Response Reject(http::Response response, const std::string& code, const std::string& path,
                        const std::string& reason);
  /// Reject's counting and logging, for a refusal of the service or of its HTTP server (an
  /// unknown path, a body over TELEPHONY_MAX_BODY_BYTES…).
  void NoteRefusal(std::string_view method, int status, const std::string& code,
                   std::string_view path, std::string_view reason);
  /// Rate limit of the log lines about `code` (refusal_logs_per_second); `suppressed`: the
  /// lines dropped since the last one logged.
  bool LogAllowed(const std::string& code, int64_t* suppressed);
  /// Verifies X-Twilio-Signature; on failure answers 401 (logged with the URL checked) and
  /// gives false.
  bool CheckTwilioSignature(const http::Request& request, const ingest::FormParams& params,
                            Reply& reply);
  /// What a webhook does once the call store decided on its report; runs on the store's
  /// Redis thread (or the request's, for the in-process store) and must not block.
  using Decided = std::function<void(CallAssembler::Result&& result, const http::Request& request,
                                     Reply reply)>;
  /// Takes one of the max_store_waiting places of the requests waiting for the call store (give
  /// it back with store_waiting_.fetch_sub(1) once the request is answered, parked or handed
  /// to Kafka); false when none is free: `reply` then got 503 call_store_busy, the store
  /// untouched.
  bool EnterStore(const http::Request& request, Reply& reply);
  /// The decision on a webhook's `update` (CallAssembler::ApplyAsync), without holding the
  /// request's thread while the store works: `decided` gets it, or the request is answered
  /// RefuseUpdate(). At most max_store_waiting requests wait for the store at once; past it the
  /// request is answered 503 call_store_busy.
  void ApplyUpdate(const CallUpdate& update, const http::Request& request, Reply reply,
                   Decided decided);
  /// HandleGeneric once the store decided; `dropped`: the secondary fields left out.
  void AnswerGeneric(const CallUpdate& update, const nlohmann::json& dropped,
                     CallAssembler::Result&& result, const http::Request& request, Reply reply);
  /// HandleTwilioVoice once the store decided.
  void AnswerTwilioVoice(const CallUpdate& update, const std::string& recording_sid,
                         CallAssembler::Result&& result, const http::Request& request, Reply reply);
  /// The answer when ApplyUpdate failed: 503 + Retry-After for a call store failure (nothing
  /// published: deciding on one report alone could publish the wrong outcome under the call's
  /// event id) or too many open calls, 422 for a call past TELEPHONY_MAX_UPDATES_PER_CALL.
  http::Response RefuseUpdate(const absl::Status& status, const std::string& path);
  /// Counts in `replays` (the provider's series of telephony_replays_total, resolved once: a
  /// retrying provider replays every request) a signature seen within the window.
  void CountReplay(const char* provider, metrics::Counter* replays, const std::string& signature);
  /// Keeps `request` unanswered until its settling call's event is acknowledged by Kafka;
  /// `success` builds the answer from the published call.
  void Park(const CallUpdate& update, const http::Request& request, Reply reply,
            std::function<http::Response(const FinishedCall&)> success);
  /// Answers the parked requests of `call` (published: `result` OK, or refused).
  void ReleaseParked(const FinishedCall& call, const kafka::DeliveryResult& result);
  http::Response ParkedUnavailable(const std::string& path, const std::string& reason);

  struct Parked {
    std::string provider;
    std::string provider_call_id;
    std::string event_id;
    http::Request request;
    Reply reply;
    std::function<http::Response(const FinishedCall&)> success;
    Clock::time_point deadline;
    /// Publishing the settled call itself (seen in the store): answered by that publication.
    bool publishing = false;
  };
  mutable std::mutex parked_mutex_;
  /// Event ids being published by this replica: their parked requests wait for that answer
  /// instead of publishing the call again.
  std::map<std::string, int> publishing_;
  std::map<uint64_t, Parked> parked_;
  uint64_t next_parked_ = 0;
  bool stopping_ = false;

  const ServiceOptions options_;
  const ingest::HmacKey webhook_key_;  // options_.webhook_secret, set up once
  Publisher* publisher_;
  Now now_;
  CallAssembler calls_;
  ingest::ReplayCache replay_cache_;
  mutable std::mutex background_mutex_;
  std::deque<FinishedCall> background_;
  std::mutex refusal_log_mutex_;
  struct RefusalLog {
    std::chrono::steady_clock::time_point window;
    int logged = 0;
    int64_t suppressed = 0;
  };
  std::map<std::string, RefusalLog> refusal_log_;

  metrics::Family<metrics::Counter>* published_;
  metrics::Family<metrics::Counter>* retries_in_kafka_;
  metrics::Family<metrics::Counter>* republished_;
  metrics::Family<metrics::Counter>* rejected_;
  metrics::Family<metrics::Counter>* kafka_failures_;
  metrics::Family<metrics::Counter>* replays_;
  metrics::Counter* generic_replays_;
  metrics::Counter* twilio_replays_;
  metrics::Family<metrics::Counter>* ignored_;
  metrics::Counter* call_id_reused_;
  metrics::Family<metrics::Counter>* fields_dropped_;
  metrics::Counter* overloaded_;
  metrics::Counter* background_dropped_;
  metrics::Counter* expired_;
  metrics::Family<metrics::Counter>* store_failures_;
  metrics::Counter* updates_refused_;
  metrics::Counter* settling_;
  metrics::Counter* parked_refused_;
  metrics::Counter* parked_timeouts_;
  metrics::Counter* store_busy_;
  /// Requests waiting for the call store's answer (telephony_call_store_waiting).
  std::atomic<size_t> store_waiting_{0};
};

}  // namespace leadflow::telephony
