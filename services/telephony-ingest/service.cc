#include "telephony-ingest/service.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
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

}  // namespace

TelephonyService::TelephonyService(ServiceOptions options, Publisher* publisher,
                                   metrics::Registry* registry, Now now)
    : options_(std::move(options)),
      publisher_(publisher),
      now_(now ? std::move(now) : [] { return Clock::now(); }),
      calls_(options_.calls),
      replay_cache_(options_.replay_cache_size, 2 * options_.signature_window) {
  published_ = &registry->AddCounter(
      "telephony_calls_published_total",
      "Call events acknowledged by Kafka, by provider and outcome (recording: a recording added "
      "to a published call).",
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
  registry->AddCallbackGauge(
      "telephony_open_calls",
      "Calls waiting for their outcome (bounded by TELEPHONY_MAX_OPEN_CALLS).",
      [this] { return static_cast<double>(calls_.open_calls()); });
  registry->AddCallbackGauge(
      "telephony_background_pending",
      "Finished calls waiting to be published again after Kafka refused them (bounded by "
      "TELEPHONY_MAX_BACKGROUND_PENDING).",
      [this] { return static_cast<double>(background_pending()); });
}

Response TelephonyService::Reject(Response response, const std::string& code) {
  rejected_->WithLabels({code}).Increment();
  return response;
}

void TelephonyService::CountReplay(const std::string& provider, const std::string& signature) {
  if (!replay_cache_.CheckAndRemember(provider + ":" + signature, std::chrono::steady_clock::now())
           .ok()) {
    replays_->WithLabels({provider}).Increment();
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

void TelephonyService::Publish(const FinishedCall& call, const http::Request* request,
                               std::function<void(const kafka::DeliveryResult&)> done) {
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
  publisher_->Publish(
      built.key, built.event.SerializeAsString(), built.headers,
      [this, provider, outcome, event_id = call.event_id,
       done = std::move(done)](const kafka::DeliveryResult& result) {
        if (result.status.ok()) {
          published_->WithLabels({provider, outcome}).Increment();
        } else {
          spdlog::warn("telephony: event {} not acknowledged by Kafka ({}): {}", event_id,
                       kafka::ErrorClassName(result.error_class), result.status.ToString());
          kafka_failures_->WithLabels({std::string(kafka::ErrorClassName(result.error_class))})
              .Increment();
          if (result.error_class == kafka::ErrorClass::kFatal && on_fatal) {
            on_fatal(result.status);
          }
        }
        done(result);
      });
}

void TelephonyService::PublishAndAnswer(const FinishedCall& call, const http::Request& request,
                                        Reply reply, std::function<Response()> success) {
  Publish(call, &request,
          [this, reply = std::move(reply),
           success = std::move(success)](const kafka::DeliveryResult& result) {
            if (result.status.ok()) {
              reply(success());
              return;
            }
            reply(Reject(
                ingest::AnswerForKafkaFailure(result, options_.unavailable_retry_after_seconds),
                "kafka"));
          });
}

void TelephonyService::HandleGeneric(const http::Request& request, Reply reply) {
  if (MediaType(request) != "application/json") {
    reply(Reject(Response::Error(415, "unsupported_media_type", "send application/json"),
                 "unsupported_media_type"));
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
                 "missing_signature"));
    return;
  }
  if (timestamp.size() > 12 || !absl::SimpleAtoi(timestamp, &seconds)) {
    reply(Reject(Response::Error(401, "bad_signature", "X-LeadFlow-Timestamp: Unix seconds"),
                 "bad_signature"));
    return;
  }
  if (!ingest::VerifyHexHmac(ingest::HmacAlgorithm::kSha256, options_.webhook_secret,
                             timestamp + "." + request.body, signature)
           .ok()) {
    reply(Reject(Response::Error(401, "bad_signature"), "bad_signature"));
    return;
  }
  if (!ingest::CheckTimestampWindow(seconds, now_(), options_.signature_window).ok()) {
    reply(Reject(Response::Error(401, "stale_timestamp",
                                 "the signed timestamp is outside the accepted window"),
                 "stale_timestamp"));
    return;
  }
  CountReplay("generic", signature);

  GenericParse parse = ParseGenericEvent(request.body, options_.default_region);
  if (parse.outcome == GenericParse::Outcome::kMalformed) {
    reply(Reject(Response::Error(400, "malformed_json", parse.reason), "malformed_json"));
    return;
  }
  if (parse.outcome == GenericParse::Outcome::kInvalid) {
    nlohmann::json body = {{"error", "invalid_fields"}, {"fields", parse.errors}};
    reply(Reject(Response::Json(422, Dump(body)), "invalid_fields"));
    return;
  }
  auto result = calls_.Apply(parse.update, now_());
  if (!result.ok()) {
    overloaded_->Increment();
    reply(Reject(
        Response::Error(503, "overloaded", std::string(result.status().message()))
            .WithHeader("Retry-After", std::to_string(options_.unavailable_retry_after_seconds)),
        "overloaded"));
    return;
  }
  std::string call_id = "generic:" + parse.update.provider_call_id;
  if (!result->finished) {
    reply(Response::Json(202, Dump({{"call_id", call_id}, {"status", "pending"}})));
    return;
  }
  const FinishedCall& finished = *result->finished;
  nlohmann::json answer = {{"call_id", call_id},
                           {"event_id", finished.event_id},
                           {"outcome", OutcomeName(finished.call.outcome())}};
  bool final_state =
      parse.update.state != State::kRinging && parse.update.state != State::kAnswered;
  if (result->repeated && !final_state) {
    // A late intermediate state of a call already settled: nothing to add.
    ignored_->WithLabels({"after_outcome"}).Increment();
    answer["status"] = "already_published";
    reply(Response::Json(200, Dump(answer)));
    return;
  }
  // A repeated final state is published again (the first try may have been refused): same
  // event id, one effect.
  answer["status"] = "published";
  PublishAndAnswer(finished, request, std::move(reply),
                   [answer] { return Response::Json(202, Dump(answer)); });
}

void TelephonyService::HandleTwilioVoice(const http::Request& request, Reply reply) {
  if (MediaType(request) != "application/x-www-form-urlencoded") {
    reply(Reject(
        Response::Error(415, "unsupported_media_type", "send application/x-www-form-urlencoded"),
        "unsupported_media_type"));
    return;
  }
  auto params = ingest::ParseFormParams(request.body);
  if (!params.ok()) {
    reply(Reject(Response::Error(400, "malformed_body", std::string(params.status().message())),
                 "malformed_body"));
    return;
  }
  std::string signature = request.Header("X-Twilio-Signature").value_or("");
  if (!ingest::VerifyTwilioRequest(options_.twilio_auth_token, options_.twilio_public_url,
                                   request.target, *params, signature)
           .ok()) {
    reply(Reject(Response::Error(401, signature.empty() ? "missing_signature" : "bad_signature"),
                 signature.empty() ? "missing_signature" : "bad_signature"));
    return;
  }
  CountReplay("twilio", signature);
  TwilioParse parse = ParseTwilioVoice(*params);
  if (parse.outcome == TwilioParse::Outcome::kInvalid) {
    reply(Reject(Response::Error(422, "invalid_callback", parse.reason), "invalid_callback"));
    return;
  }
  if (parse.outcome == TwilioParse::Outcome::kIgnored) {
    ignored_->WithLabels({"twilio_child_leg"}).Increment();
    reply(Twiml());
    return;
  }
  auto result = calls_.Apply(parse.update, now_());
  if (!result.ok()) {
    overloaded_->Increment();
    reply(Reject(
        Response::Error(503, "overloaded", std::string(result.status().message()))
            .WithHeader("Retry-After", std::to_string(options_.unavailable_retry_after_seconds)),
        "overloaded"));
    return;
  }
  bool final_state =
      parse.update.state != State::kRinging && parse.update.state != State::kAnswered;
  if (!result->finished || (result->repeated && !final_state)) {
    if (result->finished) {
      ignored_->WithLabels({"after_outcome"}).Increment();
    }
    reply(Twiml());
    return;
  }
  PublishAndAnswer(*result->finished, request, std::move(reply), [] { return Twiml(); });
}

void TelephonyService::HandleTwilioRecording(const http::Request& request, Reply reply) {
  if (MediaType(request) != "application/x-www-form-urlencoded") {
    reply(Reject(
        Response::Error(415, "unsupported_media_type", "send application/x-www-form-urlencoded"),
        "unsupported_media_type"));
    return;
  }
  auto params = ingest::ParseFormParams(request.body);
  if (!params.ok()) {
    reply(Reject(Response::Error(400, "malformed_body", std::string(params.status().message())),
                 "malformed_body"));
    return;
  }
  std::string signature = request.Header("X-Twilio-Signature").value_or("");
  if (!ingest::VerifyTwilioRequest(options_.twilio_auth_token, options_.twilio_public_url,
                                   request.target, *params, signature)
           .ok()) {
    reply(Reject(Response::Error(401, signature.empty() ? "missing_signature" : "bad_signature"),
                 signature.empty() ? "missing_signature" : "bad_signature"));
    return;
  }
  CountReplay("twilio", signature);
  auto recording = ParseTwilioRecording(*params);
  if (!recording.ok()) {
    reply(
        Reject(Response::Error(422, "invalid_callback", std::string(recording.status().message())),
               "invalid_callback"));
    return;
  }
  if (!recording->completed) {
    ignored_->WithLabels({"recording_not_completed"}).Increment();
    reply(Twiml());
    return;
  }
  PublishAndAnswer(calls_.Recording("twilio", recording->call_sid, recording->recording_sid,
                                    recording->recording_url, now_()),
                   request, std::move(reply), [] { return Twiml(); });
}

void TelephonyService::PublishBackground(const FinishedCall& call) {
  Publish(call, nullptr, [this, call](const kafka::DeliveryResult& result) {
    if (result.status.ok()) {
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
  for (const FinishedCall& call : calls_.Expire(now_())) {
    expired_->Increment();
    PublishBackground(call);
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
