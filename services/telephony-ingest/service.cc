#include "telephony-ingest/service.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "ingest/form_params.h"
#include "kafka/errors.h"
#include "telephony-ingest/generic.h"
#include "telephony-ingest/twilio.h"

namespace leadflow::telephony {
namespace {

using http::Response;

std::string Dump(const nlohmann::json& json) {
  return json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// The media type without parameters, lower-cased.
std::string MediaType(const http::Request& request) {
  std::string type = request.Header("Content-Type").value_or("");
  type = type.substr(0, type.find(';'));
  return absl::AsciiStrToLower(absl::StripAsciiWhitespace(type));
}

// What Twilio expects back: an empty TwiML document (a <Dial> action callback then hangs up,
// as the call is over).
Response Twiml() {
  Response response;
  response.status = 200;
  response.body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>";
  response.headers.push_back({"Content-Type", "text/xml"});
  return response;
}

// The answer to a report whose call is settled: {call_id, [dropped,] event_id, outcome,
// status}, the bytes nlohmann dumps (keys sorted), written directly in the common case (no
// dropped field, ASCII: every answer of the bench's load) instead of through a tree.
std::string PublishedAnswer(const std::string& call_id, const FinishedCall& finished,
                            const nlohmann::json& dropped, std::string_view status) {
  const std::string_view outcome = OutcomeName(finished.call.outcome());
  if (dropped.empty()) {
    std::string out = "{\"call_id\":";
    if (AppendAsciiJson(&out, call_id)) {
      out.append(",\"event_id\":");
      if (AppendAsciiJson(&out, finished.event_id)) {
        out.append(",\"outcome\":");
        AppendAsciiJson(&out, outcome);
        out.append(",\"status\":");
        AppendAsciiJson(&out, status);
        out.push_back('}');
        return out;
      }
    }
  }
  nlohmann::json answer = {{"call_id", call_id},
                           {"event_id", finished.event_id},
                           {"outcome", outcome},
                           {"status", status}};
  if (!dropped.empty()) {
    answer["dropped"] = dropped;
  }
  return Dump(answer);
}

// The fields in which a report about a call already settled names another call than the one
// settled under its call_id: `direction`, and `from` or `to` when both the report and the
// settled call give one and they name different parties (the same E.164 number however
// written, two withheld numbers, or the same text are one party; on our side of the call — `to`
// of an inbound call, `from` of an outbound one — so are two internal extensions: the legs of a
// ring group or a transfer; and a phone number and an internal extension: the line dialled and
// the extension that took the call). Times are never compared: providers refine them from one
// report to the next.
std::vector<std::string> Contradictions(const CallUpdate& update, const CallEvent& settled,
                                        std::string_view region, int extension_max_digits) {
  auto same_party = [region](const std::string& reported, const std::string& kept) {
    if (reported.empty() || kept.empty() || reported == kept) {
      return true;
    }
    if (IsAnonymousNumber(reported) && IsAnonymousNumber(kept)) {
      return true;
    }
    std::optional<std::string> a = CallerPhone(reported, region);
    std::optional<std::string> b = CallerPhone(kept, region);
    return a && b && *a == *b;
  };
  std::vector<std::string> fields;
  if (update.direction != CallEvent::DIRECTION_UNSPECIFIED &&
      settled.direction() != CallEvent::DIRECTION_UNSPECIFIED &&
      update.direction != settled.direction()) {
    fields.push_back("direction");
  }
  auto our_side = [extension_max_digits, region](const std::string& reported,
                                                 const std::string& kept) {
    // Extensions of one PBX rung in turn (a ring group, a transfer), or the line's number and
    // an extension it rang: a PBX names the number dialled in one report and the extension
    // that took the call in the next. Two numbers are two lines; anything else (a SIP user on
    // another host, a withheld number) is another party.
    auto extension = [extension_max_digits](const std::string& number) {
      return IsInternalExtension(UriUserPart(number), extension_max_digits);
    };
    return ExtensionsOfOnePbx(reported, kept, extension_max_digits) ||
           (extension(reported) && CallerPhone(kept, region)) ||
           (extension(kept) && CallerPhone(reported, region));
  };
  const bool outbound = settled.direction() == CallEvent::OUTBOUND;
  if (!same_party(update.from, settled.from_number()) &&
      !(outbound && our_side(update.from, settled.from_number()))) {
    fields.push_back("from");
  }
  if (!same_party(update.to, settled.to_number()) &&
      !(!outbound && our_side(update.to, settled.to_number()))) {
    fields.push_back("to");
  }
  return fields;
}

// Whether a report about a call already settled brings a recording its published event does
// not carry: a PBX posting the file once it is written, after the end it posted; Twilio's
// <Dial record> action after the parent's "completed" settled the call. Such a recording is
// published as its own event (CallAssembler::RecordingOfSettled), as a recording callback is.
bool BringsRecording(const CallUpdate& update, const CallEvent& settled) {
  if (update.recording_url.empty() || update.recording_url == settled.recording_url()) {
    return false;
  }
  const auto& urls = settled.recording_urls();
  return std::find(urls.begin(), urls.end(), update.recording_url) == urls.end();
}

}  // namespace

std::string MaskedNumber(std::string_view number) {
  if (number.empty()) {
    return "none";
  }
  if (number.size() <= 2) {
    return "**";
  }
  return "**" + std::string(number.substr(number.size() - 2));
}

void LogPublished(const FinishedCall& call, std::string_view provider, std::string_view outcome) {
  if (!spdlog::should_log(spdlog::level::info)) {
    return;  // its masked numbers are not even built
  }
  const CallEvent& event = call.call;
  const std::string_view direction = event.direction() == CallEvent::INBOUND    ? "inbound"
                                     : event.direction() == CallEvent::OUTBOUND ? "outbound"
                                                                                : "unknown";
  spdlog::info(
      "telephony: published {} call {} event {} outcome={} direction={} duration={}s "
      "from={} to={}{}{}",
      provider, event.call_id(), call.event_id, outcome, direction, event.duration_seconds(),
      MaskedNumber(event.from_number()), MaskedNumber(event.to_number()),
      event.anonymous() ? " withheld" : "", event.incomplete() ? " incomplete" : "");
}

TelephonyService::TelephonyService(ServiceOptions options, Publisher* publisher,
                                   metrics::Registry* registry, Now now)
    : options_(std::move(options)),
      webhook_key_(ingest::HmacAlgorithm::kSha256, options_.webhook_secret),
      publisher_(publisher),
      now_(now ? std::move(now) : [] { return Clock::now(); }),
      calls_(options_.calls, options_.call_store),
      replay_cache_(options_.replay_cache_size, 2 * options_.signature_window) {
  published_ = &registry->AddCounter(
      "telephony_calls_published_total",
      "Call events acknowledged by Kafka the first time, by provider and outcome (recording: a "
      "recording added "
      "to a published call).",
      {"provider", "outcome"});
  retries_in_kafka_ = &registry->AddCounter(
      "telephony_retries_already_in_kafka_total",
      "Final reports of a call whose event Kafka had already acknowledged (a provider's retry), "
      "answered as the first one was without publishing the call again, by provider.",
      {"provider"});
  republished_ = &registry->AddCounter(
      "telephony_calls_republished_total",
      "Call events of calls settled earlier published again and acknowledged by Kafka (a "
      "provider's retry, a report parked at another replica, a publication not confirmed "
      "within the lease), by provider and outcome; not in telephony_calls_published_total.",
      {"provider", "outcome"});
  rejected_ = &registry->AddCounter("telephony_requests_rejected_total",
                                    "Requests answered with an error, by error code.", {"code"});
  kafka_failures_ = &registry->AddCounter(
      "telephony_kafka_failures_total",
      "Call events Kafka did not take, by class: retryable and fatal answered 503, permanent 500.",
      {"class"});
  replays_ = &registry->AddCounter(
      "telephony_replays_total",
      "Signed requests seen again within the signature window (provider retries or replays); "
      "answered like the first, with the same event id.",
      {"provider"});
  generic_replays_ = &replays_->WithLabels({"generic"});
  twilio_replays_ = &replays_->WithLabels({"twilio"});
  fields_dropped_ = &registry->AddCounter(
      "telephony_fields_dropped_total",
      "Secondary fields of call reports that could not be read (a time, a duration, a URL…; "
      "generic API, Twilio, Asterisk): dropped, the call kept, by field.",
      {"field"});
  call_id_reused_ = &registry
                         ->AddCounter("telephony_call_id_reused_total",
                                      "Generic reports refused (409 call_id_reused) because their "
                                      "call_id is that of a call already settled whose direction, "
                                      "from or to they contradict: another call under a reused id.")
                         .WithLabels({});
  ignored_ = &registry->AddCounter("telephony_ignored_total",
                                   "Valid reports that publish nothing, by reason.", {"reason"});
  overloaded_ = &registry
                     ->AddCounter("telephony_overloaded_total",
                                  "Reports refused with 503 because too many calls are open "
                                  "(TELEPHONY_MAX_OPEN_CALLS).")
                     .WithLabels({});
  background_dropped_ = &registry
                             ->AddCounter("telephony_background_dropped_total",
                                          "Events of calls finished outside a request dropped "
                                          "because the retry queue was full.")
                             .WithLabels({});
  expired_ = &registry
                  ->AddCounter("telephony_calls_expired_total",
                               "Calls published without their final record (quiet for "
                               "TELEPHONY_CALL_TIMEOUT_S, or lost by the PBX), marked incomplete.")
                  .WithLabels({});
  store_failures_ = &registry->AddCounter(
      "telephony_call_store_failures_total",
      "Reports met by a call store (Redis) failure, by what was done: refused (a webhook "
      "answered 503 + Retry-After, nothing published; the provider retries) or decided_alone "
      "(an Asterisk report, which cannot be replayed, published from what it says).",
      {"action"});
  updates_refused_ = &registry
                          ->AddCounter("telephony_updates_refused_total",
                                       "Intermediate reports refused (422 too_many_updates) "
                                       "because their call already holds "
                                       "TELEPHONY_MAX_UPDATES_PER_CALL reports.")
                          .WithLabels({});
  settling_ = &registry
                   ->AddCounter("telephony_calls_settling_total",
                                "Final reports whose outcome waits TELEPHONY_SETTLE_MS for a "
                                "report that decides otherwise (an answer, a <Dial> action).")
                   .WithLabels({});
  parked_refused_ = &registry
                         ->AddCounter("telephony_parked_refused_total",
                                      "Settling reports answered 503 because "
                                      "TELEPHONY_MAX_PARKED requests were already waiting (or "
                                      "the service was stopping).")
                         .WithLabels({});
  parked_timeouts_ = &registry
                          ->AddCounter("telephony_parked_timeouts_total",
                                       "Parked requests answered 503 because their call's event "
                                       "was not acknowledged within their bound.")
                          .WithLabels({});
  registry->AddCallbackGauge(
      "telephony_parked_requests",
      "Requests waiting, unanswered, for their settling call's event to be acknowledged by "
      "Kafka (bounded by TELEPHONY_MAX_PARKED).",
      [this] { return static_cast<double>(parked()); });
  store_busy_ = &registry
                     ->AddCounter("telephony_call_store_busy_total",
                                  "Reports answered 503 + Retry-After without reaching the call "
                                  "store because TELEPHONY_MAX_STORE_WAITING requests were "
                                  "already waiting for it.")
                     .WithLabels({});
  registry->AddCallbackGauge(
      "telephony_call_store_waiting",
      "Requests waiting for the call store's answer (bounded by TELEPHONY_MAX_STORE_WAITING).",
      [this] { return static_cast<double>(store_waiting_.load()); });
  // Read from the call store (Redis) without waiting for it: a scrape shows the last count
  // read and asks for the next one; a slow or failed Redis leaves the count, which ages.
  registry->AddCallbackGauge("telephony_open_calls",
                             "Calls waiting for their outcome or their publication (bounded by "
                             "TELEPHONY_MAX_OPEN_CALLS), as last read from the call store (see "
                             "telephony_open_calls_age_seconds).",
                             [this] {
                               calls_.RefreshOpenCalls();
                               return static_cast<double>(calls_.open_calls_seen().count);
                             });
  registry->AddCallbackGauge(
      "telephony_open_calls_age_seconds",
      "Seconds since telephony_open_calls was read from the call store (since the start until "
      "a first read answers); grows while Redis does not answer.",
      [this] {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                             calls_.open_calls_seen().at)
            .count();
      });
  registry->AddCallbackGauge(
      "telephony_calls_overdue_seconds",
      "How long the earliest due call has waited past its time (a settle deadline, an open "
      "call's timeout, a publication's lease), as last read from the call store (see "
      "telephony_open_calls_age_seconds: while the store does not answer, the last time read "
      "ages); 0 when none is late. The tickers take due calls every second, and a publication "
      "Kafka refuses comes due again a lease (60 s) later: minutes mean no replica takes due "
      "calls, so they are not decided.",
      [this] {
        const std::optional<Clock::time_point> earliest = calls_.open_calls_seen().earliest_due;
        const Clock::time_point now = now_();
        return earliest && *earliest < now ? std::chrono::duration<double>(now - *earliest).count()
                                           : 0.0;
      });
  registry->AddCallbackGauge(
      "telephony_background_pending",
      "Finished calls waiting to be published again after Kafka refused them (bounded by "
      "TELEPHONY_MAX_BACKGROUND_PENDING).",
      [this] { return static_cast<double>(background_pending()); });
}

bool TelephonyService::LogAllowed(const std::string& code, int64_t* suppressed) {
  std::lock_guard lock(refusal_log_mutex_);
  RefusalLog& log = refusal_log_[code];
  auto now = std::chrono::steady_clock::now();
  if (now - log.window >= std::chrono::seconds(1)) {
    log.window = now;
    log.logged = 0;
  }
  if (log.logged >= options_.refusal_logs_per_second) {
    ++log.suppressed;
    return false;
  }
  ++log.logged;
  *suppressed = std::exchange(log.suppressed, 0);
  return true;
}

Response TelephonyService::Reject(Response response, const std::string& code,
                                  const std::string& path, const std::string& reason) {
  NoteRefusal("POST", response.status, code, path, reason);
  return response;
}

void TelephonyService::NoteRefusal(std::string_view method, int status, const std::string& code,
                                   std::string_view path, std::string_view reason) {
  rejected_->WithLabels({code}).Increment();
  // Rate-limited per code: a flood of forged requests must not flood the log. No body, no
  // numbers, no client address: only what lets an operator find a misconfiguration.
  int64_t suppressed = 0;
  if (!LogAllowed(code, &suppressed)) {
    return;
  }
  spdlog::warn(
      "telephony: refused {} {} with {} {}{}{}{}", ingest::CleanHeaderText(method, 16),
      ingest::CleanHeaderText(path, 128), status, code, reason.empty() ? "" : ": ", reason,
      suppressed > 0 ? fmt::format(" ({} more {} refusals not logged)", suppressed, code) : "");
}

void TelephonyService::CountReplay(const char* provider, metrics::Counter* replays,
                                   const std::string& signature) {
  if (!replay_cache_
           .CheckAndRemember(absl::StrCat(provider, ":", signature),
                             std::chrono::steady_clock::now())
           .ok()) {
    replays->Increment();
  }
}

std::string TelephonyService::ClientIp(const http::Request& request) const {
  std::vector<std::string_view> forwarded;
  if (!options_.trusted_proxies.empty()) {
    for (const http::HeaderField& header : request.headers) {
      if (absl::EqualsIgnoreCase(header.name, "X-Forwarded-For")) {
        forwarded.emplace_back(header.value);
      }
    }
  }
  return ingest::ClientIp(request.remote_address, forwarded, options_.trusted_proxies);
}

void TelephonyService::Publish(
    FinishedCall call, const http::Request* request,
    std::function<void(const kafka::DeliveryResult&, const FinishedCall&)> done) {
  ingest::EventBuilder::Built built =
      BuildEvent(call, options_.default_region, now_(),
                 request ? request->Header("traceparent") : std::nullopt);
  if (request) {
    built.event.mutable_source()->set_client_ip(ClientIp(*request));
    built.event.mutable_source()->set_user_agent(
        ingest::CleanHeaderText(request->Header("User-Agent").value_or(""), 512));
  }
  std::string provider = built.event.source().provider();
  std::string outcome =
      call.call.recording_only() ? "recording" : std::string(OutcomeName(call.call.outcome()));
  {
    std::lock_guard lock(parked_mutex_);
    ++publishing_[call.event_id];
  }
  // One copy of the call for the delivery's answer, shared by whoever it answers.
  publisher_->Publish(
      built.key, built.event.SerializeAsString(), built.headers,
      [this, provider, outcome, call = std::make_shared<const FinishedCall>(std::move(call)),
       done = std::move(done)](const kafka::DeliveryResult& result) {
        const std::string& event_id = call->event_id;
        if (result.status.ok()) {
          (call->republication ? republished_ : published_)
              ->WithLabels({provider, outcome})
              .Increment();
          if (!call->republication) {
            LogPublished(*call, provider, outcome);  // once per event; a republication: no
          }
        } else {
          spdlog::warn("telephony: event {} not acknowledged by Kafka ({}): {}", event_id,
                       kafka::ErrorClassName(result.error_class), result.status.ToString());
          kafka_failures_->WithLabels({std::string(kafka::ErrorClassName(result.error_class))})
              .Increment();
          if (result.error_class == kafka::ErrorClass::kFatal && on_fatal) {
            on_fatal(result.status);
          }
        }
        {
          std::lock_guard lock(parked_mutex_);
          if (auto it = publishing_.find(event_id); it != publishing_.end() && --it->second <= 0) {
            publishing_.erase(it);
          }
        }
        done(result, *call);
        // Whoever published the call (a deciding report, the ticker), the requests parked on
        // it are answered now, as that publication was.
        ReleaseParked(*call, result);
      });
}

Response TelephonyService::ParkedUnavailable(const std::string& path, const std::string& reason) {
  return Reject(
      Response::Error(503, "unavailable", reason)
          .WithHeader("Retry-After", std::to_string(options_.unavailable_retry_after_seconds)),
      "unavailable", path, reason);
}

void TelephonyService::Park(const CallUpdate& update, const http::Request& request, Reply reply,
                            std::function<Response(const FinishedCall&)> success) {
  bool stopping = false;
  {
    std::lock_guard lock(parked_mutex_);
    stopping = stopping_;
    if (!stopping_ && parked_.size() < options_.max_parked) {
      parked_.emplace(next_parked_++,
                      Parked{.provider = update.provider,
                             .provider_call_id = update.provider_call_id,
                             .event_id = CallEventId(update.provider, update.provider_call_id),
                             .request = request,
                             .reply = std::move(reply),
                             .success = std::move(success),
                             .deadline = now_() + options_.parked_timeout});
      return;
    }
  }
  parked_refused_->Increment();
  reply(ParkedUnavailable(request.path, stopping ? "stopping; the call is settling"
                                                 : "too many reports waiting for their call "
                                                   "to settle (TELEPHONY_MAX_PARKED)"));
}

void TelephonyService::ReleaseParked(const FinishedCall& call,
                                     const kafka::DeliveryResult& result) {
  std::vector<Parked> released;
  {
    std::lock_guard lock(parked_mutex_);
    for (auto it = parked_.begin(); it != parked_.end();) {
      if (!it->second.publishing && it->second.event_id == call.event_id) {
        released.push_back(std::move(it->second));
        it = parked_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (Parked& parked : released) {
    if (result.status.ok()) {
      parked.reply(parked.success(call));
    } else {
      parked.reply(Reject(
          ingest::AnswerForKafkaFailure(result, options_.unavailable_retry_after_seconds), "kafka",
          parked.request.path, "Kafka did not take the event: " + result.status.ToString()));
    }
  }
}

void TelephonyService::PollParked() {
  struct Waiting {
    uint64_t id;
    std::string provider;
    std::string provider_call_id;
    bool expired;
  };
  std::vector<Waiting> waiting;
  bool stopping = false;
  {
    std::lock_guard lock(parked_mutex_);
    stopping = stopping_;
    Clock::time_point now = now_();
    for (const auto& [id, parked] : parked_) {
      // Not while this replica publishes the call: its answer releases the request.
      if (!parked.publishing && (stopping_ || !publishing_.contains(parked.event_id))) {
        waiting.push_back({id, parked.provider, parked.provider_call_id, now >= parked.deadline});
      }
    }
  }
  for (const Waiting& entry : waiting) {
    // Settled by anyone (this replica, another one): published again from this request, same
    // event id, and answered after the acknowledgement (PublishAndAnswer), so that the answer
    // never runs ahead of Kafka whichever replica published first.
    std::optional<FinishedCall> settled =
        entry.expired ? std::nullopt : calls_.Settled(entry.provider, entry.provider_call_id);
    std::optional<Parked> taken;
    {
      std::lock_guard lock(parked_mutex_);
      auto it = parked_.find(entry.id);
      if (it == parked_.end() || it->second.publishing) {
        continue;  // released meanwhile
      }
      if (settled) {
        it->second.publishing = true;
        taken = it->second;
      } else if (entry.expired || stopping) {
        taken = std::move(it->second);
        parked_.erase(it);
      }
    }
    if (!taken) {
      continue;
    }
    if (!settled) {
      if (entry.expired) {
        parked_timeouts_->Increment();
      }
      taken->reply(ParkedUnavailable(taken->request.path,
                                     entry.expired ? "the call's event was not acknowledged in time"
                                                   : "stopping; the call is settling"));
      continue;
    }
    const uint64_t id = entry.id;
    PublishAndAnswer(
        *settled, taken->request,
        [this, id, reply = taken->reply](Response response) {
          {
            std::lock_guard lock(parked_mutex_);
            parked_.erase(id);
          }
          reply(std::move(response));
        },
        [success = taken->success, call = *settled] { return success(call); });
  }
}

void TelephonyService::StopParking() {
  {
    std::lock_guard lock(parked_mutex_);
    stopping_ = true;
  }
  PollParked();
}

size_t TelephonyService::parked() const {
  std::lock_guard lock(parked_mutex_);
  return parked_.size();
}

void TelephonyService::PublishAndAnswer(FinishedCall call, const http::Request& request,
                                        Reply reply, std::function<Response()> success) {
  Publish(std::move(call), &request,
          [this, path = request.path, reply = std::move(reply), success = std::move(success)](
              const kafka::DeliveryResult& result, const FinishedCall& published) {
            if (result.status.ok()) {
              calls_.Published(published);
              reply(success());
              return;
            }
            reply(Reject(
                ingest::AnswerForKafkaFailure(result, options_.unavailable_retry_after_seconds),
                "kafka", path, "Kafka did not take the event: " + result.status.ToString()));
          });
}

void TelephonyService::PublishLateRecording(FinishedCall settled, bool call_confirmed,
                                            const std::string& recording_id,
                                            const std::string& recording_url,
                                            const http::Request& request, Reply reply,
                                            std::function<Response()> success,
                                            std::function<Response()> capped) {
  FinishedCall recording =
      CallAssembler::RecordingOfSettled(settled, recording_id, recording_url, now_());
  // A waiting step of the call store like the report's own, which this request still holds
  // (within TELEPHONY_MAX_STORE_WAITING): counted until its answer is handled.
  store_waiting_.fetch_add(1);
  std::shared_ptr<const http::Request> held = request.Hold();
  auto admit = [this, held, settled = std::move(settled), call_confirmed, recording,
                reply = std::move(reply), success = std::move(success), capped = std::move(capped)](
                   absl::StatusOr<CallStore::LateRecording> admitted) mutable {
    if (!admitted.ok()) {
      reply(RefuseUpdate(admitted.status(), held->path));
    } else if (*admitted == CallStore::LateRecording::kCapped) {
      // A sender posting ever-new files for one call (or a runaway PBX): answered 2xx so that
      // it does not retry, nothing of the recording published.
      CountLateRecordingCapped(settled.call.call_id());
      if (call_confirmed) {
        reply(capped());
      } else {
        PublishAndAnswer(std::move(settled), *held, std::move(reply), std::move(capped));
      }
    } else {
      PublishRecordingAfterCall(std::move(settled), call_confirmed, std::move(recording), *held,
                                std::move(reply), std::move(success));
    }
    store_waiting_.fetch_sub(1);
  };
  calls_.AdmitLateRecordingAsync(recording, std::move(admit));
}

void TelephonyService::CountLateRecordingCapped(const std::string& call_id) {
  ignored_->WithLabels({"late_recordings_cap"}).Increment();
  if (int64_t suppressed = 0; LogAllowed("late_recordings_cap", &suppressed)) {
    spdlog::warn(
        "telephony: recording of call {} not published: the call has {} recordings published "
        "after it (TELEPHONY_MAX_LATE_RECORDINGS){}",
        call_id, options_.calls.max_late_recordings,
        suppressed > 0 ? fmt::format(" ({} more not logged)", suppressed) : "");
  }
}

void TelephonyService::PublishRecordingAfterCall(FinishedCall settled, bool call_confirmed,
                                                 FinishedCall recording,
                                                 const http::Request& request, Reply reply,
                                                 std::function<Response()> success) {
  if (call_confirmed) {
    PublishAndAnswer(std::move(recording), request, std::move(reply), std::move(success));
    return;
  }
  // Same key, so the partition keeps the call's event before its recording's.
  std::shared_ptr<const http::Request> held = request.Hold();
  Publish(
      std::move(settled), &request,
      [this, held, recording = std::move(recording), reply = std::move(reply),
       success = std::move(success)](const kafka::DeliveryResult& result,
                                     const FinishedCall& published) mutable {
        if (!result.status.ok()) {
          reply(Reject(
              ingest::AnswerForKafkaFailure(result, options_.unavailable_retry_after_seconds),
              "kafka", held->path, "Kafka did not take the event: " + result.status.ToString()));
          return;
        }
        calls_.Published(published);
        PublishAndAnswer(std::move(recording), *held, std::move(reply), std::move(success));
      });
}

bool TelephonyService::EnterStore(const http::Request& request, Reply& reply) {
  if (store_waiting_.fetch_add(1) < options_.max_store_waiting) {
    return true;
  }
  store_waiting_.fetch_sub(1);
  store_busy_->Increment();
  reply(Reject(
      Response::Error(503, "call_store_busy",
                      "too many reports waiting for the state of calls; retry")
          .WithHeader("Retry-After", std::to_string(options_.unavailable_retry_after_seconds)),
      "call_store_busy", request.path,
      "TELEPHONY_MAX_STORE_WAITING requests already wait for the call store"));
  return false;
}

void TelephonyService::ApplyUpdate(const CallUpdate& update, const http::Request& request,
                                   Reply reply, Decided decided) {
  if (!EnterStore(request, reply)) {
    return;
  }
  // The request outlives this call (answered from the store's callback): held, not copied.
  std::shared_ptr<const http::Request> held = request.Hold();
  // The results are taken by rvalue reference here and in the Decided callbacks (std::function
  // passes them on as such): a parameter by value would move their FinishedCall once more.
  calls_.ApplyAsync(update, now_(),
                    [this, held, reply = std::move(reply), decided = std::move(decided)](
                        absl::StatusOr<CallAssembler::Result>&& result) mutable {
                      if (!result.ok()) {
                        reply(RefuseUpdate(result.status(), held->path));
                      } else {
                        if (result->settling) {
                          settling_->Increment();
                        }
                        decided(std::move(*result), *held, std::move(reply));
                      }
                      // Once answered, parked or handed to Kafka: a test (or an operator
                      // reading the gauge) seeing 0 sees every report's fate decided.
                      store_waiting_.fetch_sub(1);
                    });
}

Response TelephonyService::RefuseUpdate(const absl::Status& status, const std::string& path) {
  const std::string message(status.message());
  const std::string retry_after = std::to_string(options_.unavailable_retry_after_seconds);
  if (status.code() == absl::StatusCode::kUnavailable) {
    // The call's other reports are out of reach: deciding on this one alone could publish the
    // wrong outcome under the call's one event id, and crm-core would then drop the right one
    // as a duplicate. Nothing is published; the provider retries once Redis is back.
    store_failures_->WithLabels({"refused"}).Increment();
    return Reject(
        Response::Error(503, "call_store_unavailable", "the state of calls is unreachable; retry")
            .WithHeader("Retry-After", retry_after),
        "call_store_unavailable", path, "call store failed: " + message);
  }
  if (status.code() == absl::StatusCode::kFailedPrecondition) {
    updates_refused_->Increment();
    return Reject(Response::Error(422, "too_many_updates", message), "too_many_updates", path,
                  message);
  }
  overloaded_->Increment();
  return Reject(Response::Error(503, "overloaded", message).WithHeader("Retry-After", retry_after),
                "overloaded", path, message);
}

void TelephonyService::CountStoreFailureDecidedAlone() {
  store_failures_->WithLabels({"decided_alone"}).Increment();
}

void TelephonyService::CountDropped(std::string_view call_id,
                                    const std::map<std::string, std::string>& dropped) {
  std::string fields;
  for (const auto& [field, why] : dropped) {
    fields_dropped_->WithLabels({field}).Increment();
    absl::StrAppend(&fields, fields.empty() ? "" : "; ", field, ": ", why);
  }
  if (int64_t suppressed = 0; LogAllowed("dropped_fields", &suppressed)) {
    spdlog::warn(
        "telephony: call {} kept without unreadable fields ({}){}", call_id, fields,
        suppressed > 0 ? absl::StrCat(" (", suppressed, " similar lines dropped)") : std::string());
  }
}

void TelephonyService::CountIgnored(std::string_view reason) {
  ignored_->WithLabels({std::string(reason)}).Increment();
}

void TelephonyService::HandleGeneric(const http::Request& request, Reply reply) {
  const std::string& path = request.path;
  if (MediaType(request) != "application/json") {
    reply(Reject(Response::Error(415, "unsupported_media_type", "send application/json"),
                 "unsupported_media_type", path, "Content-Type is not application/json"));
    return;
  }
  // Signature first: an unsigned request learns nothing about the body's validity.
  std::string timestamp = request.Header("X-LeadFlow-Timestamp").value_or("");
  std::string signature = request.Header("X-LeadFlow-Signature").value_or("");
  if (absl::StartsWith(signature, "sha256=")) {
    signature.erase(0, 7);
  }
  int64_t seconds = 0;
  if (timestamp.empty() || signature.empty()) {
    reply(Reject(Response::Error(401, "missing_signature",
                                 "X-LeadFlow-Timestamp and X-LeadFlow-Signature are required"),
                 "missing_signature", path,
                 "X-LeadFlow-Timestamp or X-LeadFlow-Signature missing"));
    return;
  }
  if (timestamp.size() > 12 || !absl::SimpleAtoi(timestamp, &seconds)) {
    reply(Reject(Response::Error(401, "bad_signature", "X-LeadFlow-Timestamp: Unix seconds"),
                 "bad_signature", path, "X-LeadFlow-Timestamp is not Unix seconds"));
    return;
  }
  if (!webhook_key_.VerifyHex({timestamp, ".", request.body}, signature).ok()) {
    reply(Reject(Response::Error(401, "bad_signature"), "bad_signature", path,
                 "X-LeadFlow-Signature is not the HMAC-SHA256 of \"<timestamp>.<body>\" under "
                 "TELEPHONY_WEBHOOK_SECRET"));
    return;
  }
  if (!ingest::CheckTimestampWindow(seconds, now_(), options_.signature_window).ok()) {
    int64_t now_seconds =
        std::chrono::duration_cast<std::chrono::seconds>(now_().time_since_epoch()).count();
    reply(Reject(
        Response::Error(401, "stale_timestamp",
                        "the signed timestamp is outside the accepted window"),
        "stale_timestamp", path,
        absl::StrCat("X-LeadFlow-Timestamp is ", seconds - now_seconds,
                     " s from this clock (window ", options_.signature_window.count(), " s)")));
    return;
  }
  CountReplay("generic", generic_replays_, signature);

  GenericParse parse =
      ParseGenericEvent(request.body, {.zone = options_.pbx_time_zone, .now = now_()});
  if (parse.outcome == GenericParse::Outcome::kMalformed) {
    reply(Reject(Response::Error(400, "malformed_json", parse.reason), "malformed_json", path,
                 parse.reason));
    return;
  }
  if (parse.outcome == GenericParse::Outcome::kInvalid) {
    nlohmann::json body = {{"error", "invalid_fields"}, {"fields", parse.errors}};
    std::string fields;
    for (const auto& [field, error] : parse.errors) {
      absl::StrAppend(&fields, fields.empty() ? "" : "; ", field, ": ", error);
    }
    reply(Reject(Response::Json(422, Dump(body)), "invalid_fields", path, fields));
    return;
  }
  // Colleague to colleague (both numbers internal extensions): not a customer's call, and
  // nobody's identity. The Asterisk client drops these calls too. Answered 200 so that the
  // sender does not retry; counted.
  // An extension dialling a feature code (*97, #72) is the PBX's own service: the same.
  const bool feature =
      FeatureCodeOfPbx(parse.update.from, parse.update.to, options_.extension_max_digits);
  if (feature ||
      ExtensionsOfOnePbx(parse.update.from, parse.update.to, options_.extension_max_digits)) {
    ignored_->WithLabels({feature ? "feature_code" : "internal_call"}).Increment();
    nlohmann::json answer = {
        {"call_id", absl::StrCat("generic:", parse.update.provider_call_id)},
        {"status", "ignored"},
        {"reason", feature ? "feature code: an extension dialled a PBX service, not a number"
                           : "internal call: from and to are both extensions"}};
    reply(Response::Json(200, Dump(answer)));
    return;
  }
  // Secondary fields that could not be read are dropped, the call kept: counted, logged (names
  // and reasons, never values) and named in the answer so that the sender can fix them.
  nlohmann::json dropped = nlohmann::json::object();
  if (!parse.dropped.empty()) {
    dropped = parse.dropped;
    CountDropped(absl::StrCat("generic:", parse.update.provider_call_id), parse.dropped);
  }
  // Shared with the answer's callback rather than copied into it (a CallUpdate is some twenty
  // strings).
  auto update = std::make_shared<const CallUpdate>(std::move(parse.update));
  ApplyUpdate(*update, request, std::move(reply),
              [this, update, dropped = std::move(dropped)](
                  CallAssembler::Result&& result, const http::Request& request, Reply reply) {
                AnswerGeneric(*update, dropped, std::move(result), request, std::move(reply));
              });
}

void TelephonyService::AnswerGeneric(const CallUpdate& update, const nlohmann::json& dropped,
                                     CallAssembler::Result&& result, const http::Request& request,
                                     Reply reply) {
  std::string call_id = "generic:" + update.provider_call_id;
  if (!result.finished && result.settling) {
    // Unanswered so far: published as this outcome after the settle window unless an answer
    // report comes first. Not answered before Kafka has the call's event, whichever report or
    // replica publishes it: a 2xx before that could lose a call the sender never resends.
    Park(update, request, std::move(reply), [call_id, dropped](const FinishedCall& finished) {
      nlohmann::json answer = {{"call_id", call_id},
                               {"event_id", finished.event_id},
                               {"outcome", OutcomeName(finished.call.outcome())},
                               {"status", "published"}};
      if (!dropped.empty()) {
        answer["dropped"] = dropped;
      }
      return Response::Json(202, Dump(answer));
    });
    return;
  }
  if (!result.finished) {
    nlohmann::json answer = {{"call_id", call_id}, {"status", "pending"}};
    if (!dropped.empty()) {
      answer["dropped"] = dropped;
    }
    reply(Response::Json(202, Dump(answer)));
    return;
  }
  const FinishedCall& finished = *result.finished;
  if (result.repeated) {
    // Another call under the id of a settled one (a PBX whose ids restart after a reboot or
    // every day): taking it as a retry would lose it silently. Refused so that the sender sees
    // it; nothing recorded (a settled call takes no more reports).
    if (std::vector<std::string> fields = Contradictions(
            update, finished.call, options_.default_region, options_.extension_max_digits);
        !fields.empty()) {
      call_id_reused_->Increment();
      const std::string names = absl::StrJoin(fields, ", ");
      nlohmann::json body = {
          {"error", "call_id_reused"},
          {"message", absl::StrCat("call_id ", update.provider_call_id,
                                   " is that of a call already settled whose ", names,
                                   " this report contradicts; call ids must be unique for ",
                                   options_.calls.finished_ttl.count() / 3600,
                                   " h (the call store's retention of settled calls)")},
          {"call_id", call_id},
          {"event_id", finished.event_id},
          {"fields", fields}};
      reply(Reject(Response::Json(409, Dump(body)), "call_id_reused", request.path,
                   absl::StrCat("call ", call_id, " is settled and this report's ", names,
                                " differ: another call under a reused call_id")));
      return;
    }
  }
  bool final_state = update.state != State::kRinging && update.state != State::kAnswered;
  if (result.repeated && BringsRecording(update, finished.call)) {
    // The file of a call already settled (written once the call ended): its own event,
    // answered as the report would be once Kafka has it (and the call's, when its publication
    // is not confirmed yet).
    const int status = final_state ? 202 : 200;
    std::string body = PublishedAnswer(call_id, finished, dropped,
                                       final_state ? "published" : "already_published");
    // Past TELEPHONY_MAX_LATE_RECORDINGS: the same code and call, a status saying the
    // recording was not published.
    std::string capped_body =
        PublishedAnswer(call_id, finished, dropped, "recording_not_published");
    PublishLateRecording(
        finished, result.published, update.recording_url, update.recording_url, request,
        std::move(reply), [status, body = std::move(body)] { return Response::Json(status, body); },
        [status, body = std::move(capped_body)] { return Response::Json(status, body); });
    return;
  }
  if (result.repeated && !final_state) {
    // A late intermediate state of a call already settled: nothing to add.
    ignored_->WithLabels({"after_outcome"}).Increment();
    reply(Response::Json(200, PublishedAnswer(call_id, finished, dropped, "already_published")));
    return;
  }
  std::string body = PublishedAnswer(call_id, finished, dropped, "published");
  if (result.published) {
    // A retry of a report whose answer was lost: Kafka has the call's event already (its
    // publication was confirmed), so the answer is the first one's, nothing published again.
    retries_in_kafka_->WithLabels({"generic"}).Increment();
    reply(Response::Json(202, std::move(body)));
    return;
  }
  // A repeated final state whose publication was not confirmed is published again (the first
  // try may have been refused or be still under way): same event id, one effect.
  PublishAndAnswer(std::move(*result.finished), request, std::move(reply),
                   [body = std::move(body)] { return Response::Json(202, body); });
}

void TelephonyService::HandleTwilioVoice(const http::Request& request, Reply reply) {
  const std::string& path = request.path;
  if (MediaType(request) != "application/x-www-form-urlencoded") {
    reply(Reject(
        Response::Error(415, "unsupported_media_type", "send application/x-www-form-urlencoded"),
        "unsupported_media_type", path, "Content-Type is not application/x-www-form-urlencoded"));
    return;
  }
  auto params = ingest::ParseFormParams(request.body);
  if (!params.ok()) {
    reply(Reject(Response::Error(400, "malformed_body", std::string(params.status().message())),
                 "malformed_body", path, std::string(params.status().message())));
    return;
  }
  if (!CheckTwilioSignature(request, *params, reply)) {
    return;
  }
  TwilioParse parse = ParseTwilioVoice(*params, request.target, options_.twilio_sip_domains);
  if (parse.outcome == TwilioParse::Outcome::kInvalid) {
    reply(Reject(Response::Error(422, "invalid_callback", parse.reason), "invalid_callback", path,
                 parse.reason));
    return;
  }
  if (!parse.dropped.empty()) {
    CountDropped(absl::StrCat("twilio:", parse.update.provider_call_id), parse.dropped);
  }
  // Shared with the answer's callback rather than copied into it, as for a generic report.
  auto update = std::make_shared<const CallUpdate>(std::move(parse.update));
  ApplyUpdate(*update, request, std::move(reply),
              [this, update, recording_sid = parse.recording_sid](
                  CallAssembler::Result&& result, const http::Request& request, Reply reply) {
                AnswerTwilioVoice(*update, recording_sid, std::move(result), request,
                                  std::move(reply));
              });
}

void TelephonyService::AnswerTwilioVoice(const CallUpdate& update, const std::string& recording_sid,
                                         CallAssembler::Result&& result,
                                         const http::Request& request, Reply reply) {
  bool final_state =
      update.dial_result || (update.state != State::kRinging && update.state != State::kAnswered);
  if (!result.finished && result.settling) {
    // The parent's "completed" waiting for a <Dial> action: answered once Kafka has the call.
    Park(update, request, std::move(reply), [](const FinishedCall&) { return Twiml(); });
    return;
  }
  if (!result.finished || (result.repeated && !final_state)) {
    if (result.finished) {
      ignored_->WithLabels({"after_outcome"}).Increment();
    }
    reply(Twiml());
    return;
  }
  // A <Dial record> action (or a status callback) after the call was published brings its
  // recording: published as the recording callback's would be, under the same event id (the
  // RecordingSid: one event for one file, whichever of the two comes first); the call stands
  // as published.
  const bool late_recording =
      result.repeated && !update.child_leg && BringsRecording(update, result.finished->call);
  auto publish_recording = [&] {
    PublishLateRecording(
        *result.finished, result.published,
        recording_sid.empty() ? update.recording_url : recording_sid, update.recording_url, request,
        std::move(reply), [] { return Twiml(); }, [] { return Twiml(); });
  };
  if (result.repeated && update.child_leg) {
    // A <Dial>'s leg reported after its call was published: an inbound call's legs never
    // count (its <Dial> action decides), an outbound one's came too late.
    ignored_
        ->WithLabels({result.finished->call.direction() == CallEvent::OUTBOUND
                          ? "after_outcome"
                          : "twilio_child_leg"})
        .Increment();
    reply(Twiml());
    return;
  }
  if (result.repeated && update.dial_result) {
    auto alone = CallAssembler::ApplyAlone(update, now_());
    if (alone && alone->call.outcome() != result.finished->call.outcome()) {
      // The parent's "completed" settled the call (no <Dial> action within the settle window)
      // and this <Dial> action says otherwise: the published call stands.
      ignored_->WithLabels({"twilio_dial_after_outcome"}).Increment();
      spdlog::warn(
          "telephony: <Dial> action of twilio:{} ({}) came after the call was published as {}; "
          "kept as published (raise TELEPHONY_SETTLE_MS if this recurs)",
          update.provider_call_id, update.provider_status,
          OutcomeName(result.finished->call.outcome()));
      if (late_recording) {
        publish_recording();
        return;
      }
      reply(Twiml());
      return;
    }
  }
  if (late_recording) {
    publish_recording();
    return;
  }
  if (result.published) {
    // Twilio retrying a callback whose answer it did not get: Kafka has the call's event.
    retries_in_kafka_->WithLabels({"twilio"}).Increment();
    reply(Twiml());
    return;
  }
  PublishAndAnswer(std::move(*result.finished), request, std::move(reply), [] { return Twiml(); });
}

bool TelephonyService::CheckTwilioSignature(const http::Request& request,
                                            const ingest::FormParams& params, Reply& reply) {
  std::string signature = request.Header("X-Twilio-Signature").value_or("");
  if (ingest::VerifyTwilioRequest(options_.twilio_auth_token, options_.twilio_public_url,
                                  request.target, params, signature)
          .ok()) {
    CountReplay("twilio", twilio_replays_, signature);
    return true;
  }
  // What an operator needs to find a wrong TELEPHONY_TWILIO_PUBLIC_URL (or auth token): the URL
  // the signature was checked against and the one the request arrived for.
  std::string url = options_.twilio_public_url;
  while (!url.empty() && url.back() == '/') {
    url.pop_back();
  }
  url += request.target;
  std::string reason =
      signature.empty()
          ? "no X-Twilio-Signature header"
          : absl::StrCat(
                "X-Twilio-Signature does not match the URL ", ingest::CleanHeaderText(url, 512),
                " (TELEPHONY_TWILIO_PUBLIC_URL + path) with TELEPHONY_TWILIO_AUTH_TOKEN; "
                "the request came for Host ",
                ingest::CleanHeaderText(request.Header("Host").value_or("-"), 256),
                ", X-Forwarded-Proto ",
                ingest::CleanHeaderText(request.Header("X-Forwarded-Proto").value_or("-"), 16),
                ", X-Forwarded-Host ",
                ingest::CleanHeaderText(request.Header("X-Forwarded-Host").value_or("-"), 256));
  std::string code = signature.empty() ? "missing_signature" : "bad_signature";
  reply(Reject(Response::Error(401, code), code, request.path, reason));
  return false;
}

void TelephonyService::HandleTwilioRecording(const http::Request& request, Reply reply) {
  const std::string& path = request.path;
  if (MediaType(request) != "application/x-www-form-urlencoded") {
    reply(Reject(
        Response::Error(415, "unsupported_media_type", "send application/x-www-form-urlencoded"),
        "unsupported_media_type", path, "Content-Type is not application/x-www-form-urlencoded"));
    return;
  }
  auto params = ingest::ParseFormParams(request.body);
  if (!params.ok()) {
    reply(Reject(Response::Error(400, "malformed_body", std::string(params.status().message())),
                 "malformed_body", path, std::string(params.status().message())));
    return;
  }
  if (!CheckTwilioSignature(request, *params, reply)) {
    return;
  }
  auto recording = ParseTwilioRecording(*params);
  if (!recording.ok()) {
    reply(
        Reject(Response::Error(422, "invalid_callback", std::string(recording.status().message())),
               "invalid_callback", path, std::string(recording.status().message())));
    return;
  }
  if (recording->conference) {
    // A conference's recording names no call (Twilio sends ConferenceSid, no CallSid): nothing
    // to attach it to. Answered 200 so that Twilio does not report a failed callback; counted.
    ignored_->WithLabels({"conference_recording"}).Increment();
    reply(Twiml());
    return;
  }
  if (!recording->completed) {
    ignored_->WithLabels({"recording_not_completed"}).Increment();
    reply(Twiml());
    return;
  }
  // The call's settlement is read from the store without holding the request's thread, within
  // the same bound as the reports: a failed store is answered 503 (Twilio retries).
  if (!EnterStore(request, reply)) {
    return;
  }
  std::shared_ptr<const http::Request> held = request.Hold();
  calls_.RecordingAsync(
      "twilio", recording->call_sid, recording->recording_sid, recording->recording_url, now_(),
      [this, held, reply = std::move(reply)](absl::StatusOr<FinishedCall> call) mutable {
        if (!call.ok()) {
          reply(RefuseUpdate(call.status(), held->path));
        } else if (call->call.carried_by_call()) {
          // Kept with the call's reports: its event carries the file too.
          PublishAndAnswer(std::move(*call), *held, std::move(reply), [] { return Twiml(); });
        } else {
          // A file of a call settled already (or holding all the reports it takes): counted
          // with the recordings reports bring after it (the same event id for the same file),
          // at most TELEPHONY_MAX_LATE_RECORDINGS per call; the store step stays counted.
          FinishedCall recording = std::move(*call);
          calls_.AdmitLateRecordingAsync(
              recording, [this, held, recording, reply = std::move(reply)](
                             absl::StatusOr<CallStore::LateRecording> admitted) mutable {
                if (!admitted.ok()) {
                  reply(RefuseUpdate(admitted.status(), held->path));
                } else if (*admitted == CallStore::LateRecording::kCapped) {
                  CountLateRecordingCapped(recording.call.call_id());
                  reply(Twiml());  // 200: Twilio does not retry it
                } else {
                  PublishAndAnswer(std::move(recording), *held, std::move(reply),
                                   [] { return Twiml(); });
                }
                store_waiting_.fetch_sub(1);
              });
          return;
        }
        store_waiting_.fetch_sub(1);
      });
}

void TelephonyService::PublishBackground(const FinishedCall& call) {
  Publish(call, nullptr, [this](const kafka::DeliveryResult& result, const FinishedCall& call) {
    if (result.status.ok()) {
      calls_.Published(call);
      return;
    }
    std::lock_guard lock(background_mutex_);
    if (background_.size() >= options_.max_background_pending) {
      background_dropped_->Increment();
      spdlog::error("telephony: retry queue full; event {} of call {} dropped", call.event_id,
                    call.call.call_id());
      return;
    }
    background_.push_back(call);
  });
}

void TelephonyService::Tick() {
  calls_.RefreshOpenCalls();
  for (const FinishedCall& call : calls_.Due(now_())) {
    if (call.call.incomplete()) {
      expired_->Increment();
    }
    if (call.call.incomplete() && !call.republication) {
      // A call without its final report for TELEPHONY_CALL_TIMEOUT_S: what an operator needs
      // to tell a stuck call from traffic (telephony_open_calls only counts them).
      spdlog::warn(
          "telephony: call {} had no final report for {} s; published as {} (incomplete) "
          "from its states {}",
          call.call.call_id(), options_.calls.open_ttl.count(), OutcomeName(call.call.outcome()),
          absl::StrJoin(call.call.states(), ","));
    }
    PublishBackground(call);
  }
  // Calls timed out with only recordings, <Dial> legs or answering machine verdicts: no call
  // to publish (an AMD verdict of a leg, a call whose status callback points elsewhere).
  if (const uint64_t dropped = calls_.TakeDroppedWithoutCallReport(); dropped > 0) {
    ignored_->WithLabels({"no_call_report"}).Increment(static_cast<double>(dropped));
    spdlog::warn(
        "telephony: {} call(s) timed out after {} s with only reports that say nothing of the "
        "call (recordings, <Dial> legs, answering machine verdicts); dropped, nothing published",
        dropped, options_.calls.open_ttl.count());
  }
  std::deque<FinishedCall> retry;
  {
    std::lock_guard lock(background_mutex_);
    retry.swap(background_);
  }
  for (const FinishedCall& call : retry) {
    PublishBackground(call);
  }
}

size_t TelephonyService::background_pending() const {
  std::lock_guard lock(background_mutex_);
  return background_.size();
}

void TelephonyService::Register(http::Server* server) {
  // What the server refuses itself (an unknown path, a body too large) is counted and logged
  // with the service's own refusals. The path is the client's: its runs of digits (a number a
  // PBX put in its URL) are not logged.
  server->SetRefusalObserver([this](const http::Refusal& refusal) {
    std::string path;
    for (char c : refusal.path) {
      if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) {
        path += c;
      } else if (path.empty() || path.back() != '#') {
        path += '#';
      }
    }
    NoteRefusal(refusal.method, refusal.status, std::string(refusal.code), path, refusal.reason);
  });
  auto route = [this, server](const char* path,
                              void (TelephonyService::*handler)(const http::Request&, Reply)) {
    server->Route("POST", path,
                  [this, handler](const http::Request& request, http::Responder responder) {
                    (this->*handler)(request, [responder](http::Response response) {
                      responder.Send(std::move(response));
                    });
                  });
  };
  if (!options_.webhook_secret.empty()) {
    route("/v1/calls/events", &TelephonyService::HandleGeneric);
  }
  if (!options_.twilio_auth_token.empty() && !options_.twilio_public_url.empty()) {
    route("/v1/twilio/voice", &TelephonyService::HandleTwilioVoice);
    route("/v1/twilio/recording", &TelephonyService::HandleTwilioRecording);
  }
}

}  // namespace leadflow::telephony
