#include "webform-ingest/service.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "kafka/types.h"

namespace leadflow::webform {
namespace {

using http::Response;

std::string Dump(const nlohmann::json& json) {
  return json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Response WithHeaders(Response response, const std::vector<http::HeaderField>& headers) {
  for (const http::HeaderField& header : headers) {
    response.headers.push_back(header);
  }
  return response;
}

Response InvalidFields(const std::map<std::string, std::string>& errors) {
  nlohmann::json body = {{"error", "invalid_fields"}, {"fields", nlohmann::json::object()}};
  for (const auto& [field, reason] : errors) {
    body["fields"][field] = reason;
  }
  return Response::Json(422, Dump(body));
}

Response Accepted(const std::string& event_id) {
  return Response::Json(202, Dump({{"event_id", event_id}}));
}

// Printable ASCII, bounded: it is hashed, logged and echoed.
bool ValidIdempotencyKey(const std::string& key) {
  return !key.empty() && key.size() <= 255 &&
         std::all_of(key.begin(), key.end(), [](char c) { return c >= 0x21 && c <= 0x7e; });
}

// W3C trace context: "00-<32 hex>-<16 hex>-<2 hex>"; anything else is not passed on.
bool ValidTraceparent(const std::string& value) {
  if (value.size() != 55) {
    return false;
  }
  for (size_t i = 0; i < value.size(); ++i) {
    bool dash = i == 2 || i == 35 || i == 52;
    if (dash ? value[i] != '-' : !absl::ascii_isxdigit(value[i])) {
      return false;
    }
  }
  return true;
}

bool LooksLikeIp(const std::string& text) {
  return !text.empty() && text.size() <= 45 && std::all_of(text.begin(), text.end(), [](char c) {
    return absl::ascii_isxdigit(c) || c == '.' || c == ':';
  });
}

}  // namespace

WebformService::WebformService(ServiceOptions options, Publisher* publisher, Store* store,
                               metrics::Registry* registry, Clock clock)
    : options_(std::move(options)),
      publisher_(publisher),
      store_(store),
      clock_(clock ? std::move(clock) : [] { return std::chrono::system_clock::now(); }) {
  accepted_ = &registry
                   ->AddCounter("webform_submissions_accepted_total",
                                "Submissions acknowledged by Kafka and answered 202.")
                   .WithLabels({});
  rejected_ =
      &registry->AddCounter("webform_submissions_rejected_total",
                            "Submissions answered with an error, by HTTP status.", {"code"});
  spam_ = &registry->AddCounter(
      "webform_spam_total", "Submissions taken for spam (honeypot) or rate-limited.", {"reason"});
  duplicates_ = &registry
                     ->AddCounter("webform_duplicates_total",
                                  "Double submits recognised by fingerprint; they reuse the "
                                  "first event id.")
                     .WithLabels({});
  kafka_failures_ = &registry
                         ->AddCounter("webform_kafka_failures_total",
                                      "Events Kafka did not acknowledge in time (answered 503).")
                         .WithLabels({});
  redis_failures_ = &registry->AddCounter(
      "webform_redis_failures_total",
      "Redis calls that failed; the request went on degraded (rate limit open, time-bucket id).",
      {"operation"});
}

std::string WebformService::ClientIp(const http::Request& request) const {
  if (options_.trust_forwarded_for) {
    if (auto forwarded = request.Header("X-Forwarded-For")) {
      size_t comma = forwarded->rfind(',');
      std::string last(absl::StripAsciiWhitespace(
          comma == std::string::npos ? *forwarded : forwarded->substr(comma + 1)));
      if (LooksLikeIp(last)) {
        return last;
      }
    }
  }
  return request.remote_address;
}

Response WebformService::Reject(Response response, const std::string& code) {
  rejected_->WithLabels({std::to_string(response.status)}).Increment();
  spdlog::debug("webform: rejected {} ({})", response.status, code);
  return response;
}

Response WebformService::HandlePreflight(const http::Request& request) const {
  std::string form_id = request.params.count("form_id") ? request.params.at("form_id") : "";
  if (!ValidFormId(form_id) || !options_.forms.Known(form_id)) {
    return Response::Error(404, "unknown_form");
  }
  auto origin = request.Header("Origin");
  switch (DecideOrigin(options_.forms, form_id, origin)) {
    case OriginDecision::kForbidden:
      return Response::Error(403, "origin_not_allowed");
    case OriginDecision::kNoOrigin:
      return Response{204, {{"Allow", "OPTIONS, POST"}}, ""};
    case OriginDecision::kAllowed:
      return Response{204,
                      {{"Access-Control-Allow-Origin", *origin},
                       {"Access-Control-Allow-Methods", "POST"},
                       {"Access-Control-Allow-Headers", "Content-Type, Idempotency-Key"},
                       {"Access-Control-Max-Age", "600"},
                       {"Vary", "Origin"}},
                      ""};
  }
  return Response::Error(500, "internal");
}

// What a submission carries from one asynchronous step to the next.
struct WebformService::Pending {
  http::Request request;
  Reply reply;
  std::vector<http::HeaderField> cors;
  std::string form_id;
  std::string client_ip;
  std::chrono::system_clock::time_point now;
};

void WebformService::Fail(const Pending& pending, Response response, const std::string& code) {
  pending.reply(WithHeaders(Reject(std::move(response), code), pending.cors));
}

void WebformService::HandleSubmission(const http::Request& request, Reply reply) {
  std::string form_id = request.params.count("form_id") ? request.params.at("form_id") : "";
  if (!ValidFormId(form_id) || !options_.forms.Known(form_id)) {
    reply(Reject(Response::Error(404, "unknown_form"), "unknown_form"));
    return;
  }
  auto origin = request.Header("Origin");
  std::vector<http::HeaderField> cors;
  switch (DecideOrigin(options_.forms, form_id, origin)) {
    case OriginDecision::kForbidden:
      reply(Reject(Response::Error(403, "origin_not_allowed"), "origin_not_allowed"));
      return;
    case OriginDecision::kAllowed:
      cors = {{"Access-Control-Allow-Origin", *origin}, {"Vary", "Origin"}};
      break;
    case OriginDecision::kNoOrigin:
      break;
  }
  auto pending = std::make_shared<Pending>(
      Pending{request, std::move(reply), std::move(cors), form_id, ClientIp(request), clock_()});

  if (options_.rate_limit_per_minute <= 0) {
    AfterRateLimit(pending);
    return;
  }
  int64_t seconds =
      std::chrono::duration_cast<std::chrono::seconds>(pending->now.time_since_epoch()).count();
  store_->CountRequest(pending->client_ip, seconds / 60,
                       [this, pending, seconds](absl::StatusOr<int64_t> count) {
                         if (!count.ok()) {
                           redis_failures_->WithLabels({"rate_limit"}).Increment();  // fail open
                         } else if (*count > options_.rate_limit_per_minute) {
                           spam_->WithLabels({"rate_limit"}).Increment();
                           Fail(*pending,
                                Response::Error(429, "rate_limited")
                                    .WithHeader("Retry-After", std::to_string(60 - seconds % 60)),
                                "rate_limited");
                           return;
                         }
                         AfterRateLimit(pending);
                       });
}

void WebformService::AfterRateLimit(const std::shared_ptr<Pending>& pending) {
  const http::Request& request = pending->request;
  BodyResult body =
      ParseBody(request.Header("Content-Type").value_or(""), request.body, options_.body_limits);
  switch (body.outcome) {
    case BodyResult::Outcome::kOk:
      break;
    case BodyResult::Outcome::kUnsupportedMediaType:
      Fail(*pending, Response::Error(415, body.code, body.reason), body.code);
      return;
    case BodyResult::Outcome::kMalformed:
      Fail(*pending, Response::Error(400, body.code, body.reason), body.code);
      return;
    case BodyResult::Outcome::kWrongType:
      Fail(*pending, InvalidFields({{body.field, body.reason}}), body.code);
      return;
  }

  RequestInfo info{pending->form_id, pending->client_ip, request.Header("User-Agent").value_or(""),
                   request.Header("Referer").value_or(""), pending->now};
  auto submission =
      std::make_shared<Submission>(BuildSubmission(body.fields, info, options_.submission));
  if (submission->honeypot) {
    // Looks accepted to the bot; nothing is published.
    spam_->WithLabels({"honeypot"}).Increment();
    pending->reply(WithHeaders(Accepted(RandomEventId()), pending->cors));
    return;
  }
  if (!submission->errors.empty()) {
    Fail(*pending, InvalidFields(submission->errors), "invalid_fields");
    return;
  }

  std::string idempotency_key =
      request.Header("Idempotency-Key").value_or(submission->idempotency_key);
  if (!idempotency_key.empty()) {
    if (!ValidIdempotencyKey(idempotency_key)) {
      Fail(*pending,
           Response::Error(400, "invalid_idempotency_key", "1 to 255 printable ASCII characters"),
           "invalid_idempotency_key");
      return;
    }
    submission->event.set_event_id(EventIdFromIdempotencyKey(pending->form_id, idempotency_key));
    Publish(std::move(submission->event), submission->key, request.Header("traceparent"),
            std::move(pending->cors), std::move(pending->reply));
    return;
  }
  std::string fingerprint = Fingerprint(submission->event);
  std::string candidate = RandomEventId();
  store_->ClaimFingerprint(
      fingerprint, candidate, options_.duplicate_window,
      [this, pending, submission, fingerprint,
       candidate](absl::StatusOr<std::optional<std::string>> earlier) {
        std::string event_id;
        if (!earlier.ok()) {
          redis_failures_->WithLabels({"fingerprint"}).Increment();
          event_id = EventIdFromFingerprintBucket(fingerprint, pending->now);
        } else if (earlier->has_value()) {
          duplicates_->Increment();
          event_id = **earlier;  // crm-core already has (or will have) this one: no new lead
        } else {
          event_id = candidate;
        }
        submission->event.set_event_id(event_id);
        Publish(std::move(submission->event), submission->key,
                pending->request.Header("traceparent"), std::move(pending->cors),
                std::move(pending->reply));
      });
}

void WebformService::Publish(events::v1::InboundEvent event, const std::string& key,
                             const std::optional<std::string>& traceparent,
                             std::vector<http::HeaderField> cors, Reply reply) {
  std::vector<kafka::Header> headers = {{"event-type", "web_form"}};
  if (traceparent && ValidTraceparent(*traceparent)) {
    headers.push_back({"traceparent", *traceparent});
  }
  std::string value = event.SerializeAsString();
  publisher_->Publish(
      key, value, headers,
      [this, event_id = event.event_id(), cors = std::move(cors),
       reply = std::move(reply)](absl::Status status) {
        if (status.ok()) {
          accepted_->Increment();
          reply(WithHeaders(Accepted(event_id), cors));
          return;
        }
        spdlog::warn("webform: event {} not acknowledged by Kafka: {}", event_id,
                     status.ToString());
        kafka_failures_->Increment();
        reply(WithHeaders(
            Reject(Response::Error(503, "unavailable", "the event could not be stored; retry")
                       .WithHeader("Retry-After",
                                   std::to_string(options_.unavailable_retry_after_seconds)),
                   "kafka"),
            cors));
      });
}

void WebformService::Register(http::Server* server) {
  const std::string path = "/v1/forms/:form_id/submissions";
  server->Route("POST", path, [this](const http::Request& request, http::Responder responder) {
    HandleSubmission(request,
                     [responder](http::Response response) { responder.Send(std::move(response)); });
  });
  server->Route("OPTIONS", path, [this](const http::Request& request, http::Responder responder) {
    responder.Send(HandlePreflight(request));
  });
}

}  // namespace leadflow::webform
