#include "webform-ingest/service.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "ingest/event.h"
#include "kafka/errors.h"
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
  // Event ids are "<channel>:<hex>", which need no escaping: no JSON library on the hot path.
  bool plain = std::all_of(event_id.begin(), event_id.end(),
                           [](char c) { return absl::ascii_isalnum(c) || c == ':'; });
  if (!plain) {
    return Response::Json(202, Dump({{"event_id", event_id}}));
  }
  return Response::Json(202, absl::StrCat("{\"event_id\":\"", event_id, "\"}"));
}

// Printable ASCII, bounded: it is hashed, logged and echoed.
bool ValidIdempotencyKey(const std::string& key) {
  return !key.empty() && key.size() <= 255 &&
         std::all_of(key.begin(), key.end(), [](char c) { return c >= 0x21 && c <= 0x7e; });
}

// What a browser shows instead of JSON when a plain HTML form was posted without script.
bool IsNavigation(const http::Request& request) {
  if (auto mode = request.Header("Sec-Fetch-Mode")) {
    return *mode == "navigate";
  }
  auto accept = request.Header("Accept");
  return accept && accept->find("text/html") != std::string::npos;
}

bool PrefersFrench(const http::Request& request) {
  // The first language listed wins; browsers list by preference. Enough for two languages.
  auto languages = request.Header("Accept-Language");
  if (!languages) {
    return false;
  }
  std::string first = absl::AsciiStrToLower(
      absl::StripAsciiWhitespace(languages->substr(0, languages->find_first_of(",;"))));
  return first == "fr" || first.rfind("fr-", 0) == 0;
}

std::string HtmlPage(bool french, int status) {
  bool success = status >= 200 && status < 300;
  std::string title;
  std::string text;
  if (success) {
    title = french ? "Merci !" : "Thank you!";
    text = french ? "Votre demande a bien été reçue. Nous vous répondrons rapidement."
                  : "Your request was received. We will get back to you soon.";
  } else if (status >= 500 || status == 429) {
    // Our fault or a pause (Kafka refused, overload, an internal error, the rate limit): the
    // fields are fine and sending again later works; "check the fields" would mislead.
    title = french ? "Réessayez dans un instant" : "Please try again in a moment";
    text = french ? "Votre demande n'a pas pu être enregistrée. Revenez en arrière et renvoyez-la."
                  : "Your request could not be stored. Go back and send it again.";
  } else {
    title = french ? "Demande non envoyée" : "Request not sent";
    text = french ? "Le formulaire contient une erreur. Revenez en arrière et vérifiez les champs."
                  : "The form has an error. Go back and check the fields.";
  }
  // Nothing from the request is echoed.
  return absl::StrCat("<!DOCTYPE html><html lang=\"", french ? "fr" : "en",
                      "\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" "
                      "content=\"width=device-width\"><title>",
                      title, "</title></head><body><h1>", title, "</h1><p>", text,
                      "</p></body></html>");
}

std::string ErrorCodeOf(const Response& response) {
  nlohmann::json body = nlohmann::json::parse(response.body, nullptr, false);
  if (body.is_object() && body.contains("error") && body["error"].is_string()) {
    return body["error"].get<std::string>();
  }
  return "error";
}

}  // namespace

WebformService::WebformService(ServiceOptions options, Publisher* publisher, Store* store,
                               metrics::Registry* registry, Clock clock)
    : options_(std::move(options)),
      publisher_(publisher),
      store_(store),
      rate_limiter_(store, options_.rate_limit_per_minute),
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
  kafka_failures_ = &registry->AddCounter(
      "webform_kafka_failures_total",
      "Events Kafka did not take, by class: retryable and fatal answered 503, permanent 500.",
      {"class"});
  redis_failures_ = &registry->AddCounter(
      "webform_redis_failures_total",
      "Redis calls that failed; the request went on degraded (rate limit open, time-bucket id, "
      "idempotency key not checked against the content, or not released after Kafka refused).",
      {"operation"});
  overloaded_ = &registry
                     ->AddCounter("webform_overloaded_total",
                                  "Requests answered 503 because the queue towards Redis was full.")
                     .WithLabels({});
  idempotency_reused_ =
      &registry
           ->AddCounter("webform_idempotency_key_reused_total",
                        "Submissions refused (422) for reusing an Idempotency-Key with other "
                        "content.")
           .WithLabels({});
  // Read at scrape time, so that it falls to 0 when the minute rolls over, requests or not.
  registry->AddCallbackGauge(
      "webform_rate_limited_clients",
      "Clients (IPv6: /64s) refused by the rate limit this minute, whose later requests are "
      "checked before their body is parsed (at most 10000).",
      [limited = limited_, clock = clock_] {
        int64_t minute =
            std::chrono::duration_cast<std::chrono::minutes>(clock().time_since_epoch()).count();
        std::lock_guard lock(limited->mutex);
        return limited->minute == minute ? static_cast<double>(limited->subjects.size()) : 0.0;
      });
  limited_untracked_ =
      &registry
           ->AddCounter("webform_rate_limited_clients_untracked_total",
                        "Rate-limit refusals of a client the full set of refused clients could "
                        "not hold; its next requests are checked with their claim instead.")
           .WithLabels({});
}

std::string WebformService::ClientIp(const http::Request& request) const {
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

// What a submission carries from one asynchronous step to the next: only what the answer and
// the publication still need, not the request (its body is parsed before the first Redis step).
struct WebformService::Pending {
  Reply reply;
  std::vector<http::HeaderField> cors;
  std::string form_id;
  std::string client_ip;
  std::chrono::system_clock::time_point now;
  bool navigation = false;
  bool french = false;        // the visitor's language, for a navigation's HTML page
  std::string traceparent;    // valid, or empty
  bool rate_checked = false;  // the rate limit already counted this request
};

// Every answer to a submission goes through here: JSON for API clients, a redirect or a page
// for a browser navigation.
void WebformService::Answer(const Pending& pending, Response response) {
  if (!pending.navigation) {
    pending.reply(WithHeaders(std::move(response), pending.cors));
    return;
  }
  bool success = response.status >= 200 && response.status < 300;
  std::string code = success ? "" : ErrorCodeOf(response);
  const FormPages* pages = options_.forms.Pages(pending.form_id);
  std::string target;
  if (pages != nullptr) {
    if (success) {
      target = pages->success_url;
    } else if (!pages->error_url.empty()) {
      target =
          absl::StrCat(pages->error_url,
                       pages->error_url.find('?') == std::string::npos ? "?" : "&", "error=", code);
    }
  }
  Response page;
  if (!target.empty()) {
    page.status = 303;
    page.headers.push_back({"Location", target});
  } else {
    page.status = response.status;
    page.headers.push_back({"Content-Type", "text/html; charset=utf-8"});
    page.body = HtmlPage(pending.french, response.status);
  }
  page.headers.push_back({"Vary", "Accept, Accept-Language"});
  for (const http::HeaderField& header : response.headers) {
    if (header.name == "Retry-After") {
      page.headers.push_back(header);
    }
  }
  pending.reply(std::move(page));
}

void WebformService::Fail(const Pending& pending, Response response, const std::string& code) {
  Answer(pending, Reject(std::move(response), code));
}

void WebformService::HandleSubmission(const http::Request& request, Reply reply) {
  std::string form_id = request.params.count("form_id") ? request.params.at("form_id") : "";
  auto pending = std::make_shared<Pending>();
  pending->reply = std::move(reply);
  pending->form_id = form_id;
  pending->client_ip = ClientIp(request);
  pending->now = clock_();
  pending->navigation = IsNavigation(request);
  pending->french = pending->navigation && PrefersFrench(request);
  if (auto traceparent = request.Header("traceparent");
      traceparent && ingest::ValidTraceparent(*traceparent)) {
    pending->traceparent = std::move(*traceparent);
  }
  if (!ValidFormId(form_id) || !options_.forms.Known(form_id)) {
    Fail(*pending, Response::Error(404, "unknown_form"), "unknown_form");
    return;
  }
  auto origin = request.Header("Origin");
  switch (DecideOrigin(options_.forms, form_id, origin)) {
    case OriginDecision::kForbidden:
      Fail(*pending, Response::Error(403, "origin_not_allowed"), "origin_not_allowed");
      return;
    case OriginDecision::kAllowed:
      pending->cors = {{"Access-Control-Allow-Origin", *origin}, {"Vary", "Origin"}};
      break;
    case OriginDecision::kNoOrigin:
      break;
  }
  if (rate_limiter_.enabled() && LimitedThisMinute(pending->client_ip, pending->now)) {
    // Over its limit already this minute: the rate limit decides before anything is spent on
    // the body (a flood costs a Redis round trip per request, no parsing).
    std::shared_ptr<const http::Request> held = request.Hold();
    AfterRateLimit(pending, [this, pending, held] {
      pending->rate_checked = true;
      Process(pending, *held);
    });
    return;
  }
  Process(pending, request);
}

bool WebformService::LimitedThisMinute(const std::string& client_ip,
                                       std::chrono::system_clock::time_point now) {
  int64_t minute = std::chrono::duration_cast<std::chrono::minutes>(now.time_since_epoch()).count();
  {
    std::lock_guard lock(limited_->mutex);
    if (minute != limited_->minute || limited_->subjects.empty()) {
      return false;  // the common case: no address to parse
    }
  }
  std::string subject = ingest::RateLimitSubject(client_ip);
  std::lock_guard lock(limited_->mutex);
  return minute == limited_->minute && limited_->subjects.count(subject) > 0;
}

bool WebformService::Admit(const Pending& pending, ingest::RateLimiter::Decision decision) {
  switch (decision.verdict) {
    case ingest::RateLimiter::Verdict::kAllowed:
      return true;
    case ingest::RateLimiter::Verdict::kFailedOpen:
      redis_failures_->WithLabels({"rate_limit"}).Increment();
      return true;
    case ingest::RateLimiter::Verdict::kLimited: {
      int64_t minute =
          std::chrono::duration_cast<std::chrono::minutes>(pending.now.time_since_epoch()).count();
      // Keyed as the limit counts: another address of a refused IPv6 /64 is refused too.
      std::string subject = ingest::RateLimitSubject(pending.client_ip);
      bool untracked = false;
      {
        std::lock_guard lock(limited_->mutex);
        if (minute > limited_->minute) {
          limited_->minute = minute;
          limited_->subjects.clear();
        }
        if (minute == limited_->minute && !limited_->subjects.count(subject)) {
          if (limited_->subjects.size() < options_.max_limited_clients) {
            limited_->subjects.insert(std::move(subject));
          } else {
            untracked = true;
          }
        }
      }
      if (untracked) {
        limited_untracked_->Increment();
      }
      spam_->WithLabels({"rate_limit"}).Increment();
      Fail(pending,
           Response::Error(429, "rate_limited")
               .WithHeader("Retry-After", std::to_string(decision.retry_after_seconds)),
           "rate_limited");
      return false;
    }
    case ingest::RateLimiter::Verdict::kOverloaded:
      overloaded_->Increment();
      Fail(pending,
           Response::Error(503, "overloaded", "too many requests in progress; retry")
               .WithHeader("Retry-After", std::to_string(decision.retry_after_seconds)),
           "overloaded");
      return false;
  }
  return false;
}

void WebformService::AfterRateLimit(const std::shared_ptr<Pending>& pending,
                                    std::function<void()> then) {
  if (pending->rate_checked || !rate_limiter_.enabled()) {
    then();
    return;
  }
  rate_limiter_.Check(pending->client_ip, pending->now,
                      [this, pending, then = std::move(then)](ingest::RateLimiter::Decision d) {
                        pending->rate_checked = true;
                        if (Admit(*pending, d)) {
                          then();
                        }
                      });
}

void WebformService::Refuse(const std::shared_ptr<Pending>& pending, Response response,
                            const std::string& code) {
  // Counted by the rate limit all the same: a client over its limit gets 429, whatever it sent.
  AfterRateLimit(pending, [this, pending, response = std::move(response), code]() mutable {
    Fail(*pending, std::move(response), code);
  });
}

void WebformService::Process(const std::shared_ptr<Pending>& pending,
                             const http::Request& request) {
  BodyResult body =
      ParseBody(request.Header("Content-Type").value_or(""), request.body, options_.body_limits);
  switch (body.outcome) {
    case BodyResult::Outcome::kOk:
      break;
    case BodyResult::Outcome::kUnsupportedMediaType:
      Refuse(pending, Response::Error(415, body.code, body.reason), body.code);
      return;
    case BodyResult::Outcome::kMalformed:
      Refuse(pending, Response::Error(400, body.code, body.reason), body.code);
      return;
    case BodyResult::Outcome::kWrongType:
      Refuse(pending, InvalidFields({{body.field, body.reason}}), body.code);
      return;
  }

  RequestInfo info{pending->form_id, pending->client_ip, request.Header("User-Agent").value_or(""),
                   request.Header("Referer").value_or(""), pending->now};
  auto submission =
      std::make_shared<Submission>(BuildSubmission(body.fields, info, options_.submission));
  if (submission->honeypot) {
    // Looks accepted to the bot (once the rate limit let it through); nothing is published.
    AfterRateLimit(pending, [this, pending] {
      spam_->WithLabels({"honeypot"}).Increment();
      Answer(*pending, Accepted(RandomEventId()));
    });
    return;
  }
  if (!submission->errors.empty()) {
    Refuse(pending, InvalidFields(submission->errors), "invalid_fields");
    return;
  }

  std::string idempotency_key =
      request.Header("Idempotency-Key").value_or(submission->idempotency_key);
  if (!idempotency_key.empty() && !ValidIdempotencyKey(idempotency_key)) {
    Refuse(pending,
           Response::Error(400, "invalid_idempotency_key", "1 to 255 printable ASCII characters"),
           "invalid_idempotency_key");
    return;
  }
  std::string fingerprint = Fingerprint(submission->event);
  ingest::RateLimiter::ClaimRequest claim;
  std::function<void(ingest::RateLimiter::ClaimResult)> on_claim;
  if (!idempotency_key.empty()) {
    // The event id derives from the form, the key and the content, so a retry (same content)
    // is one event in crm-core and other content under the same key is another event: it can
    // never be deduplicated away, whatever Redis knows. Redis only binds the key to the first
    // content for a while (as Stripe does), so that reusing it is answered 422 rather than
    // quietly making a second lead.
    std::string binding = IdempotencyBinding(pending->form_id, idempotency_key);
    submission->event.set_event_id(
        EventIdFromIdempotencyKey(pending->form_id, idempotency_key, fingerprint));
    claim = {"idem", binding, fingerprint, options_.idempotency_window};
    on_claim = [this, pending, submission, binding,
                fingerprint](absl::StatusOr<std::optional<std::string>> earlier) {
      std::function<void()> on_refused;
      if (!earlier.ok()) {
        if (!ingest::FailsOpen(earlier.status())) {
          overloaded_->Increment();
          Fail(*pending,
               Response::Error(503, "overloaded", "too many requests in progress; retry")
                   .WithHeader("Retry-After", "1"),
               "overloaded");
          return;
        }
        // Fail open: the id still makes retries one event; only the 422 is lost.
        redis_failures_->WithLabels({"idempotency_key"}).Increment();
      } else if (earlier->has_value() && **earlier != fingerprint) {
        idempotency_reused_->Increment();
        Fail(*pending,
             Response::Error(422, "idempotency_key_reused",
                             "this Idempotency-Key was used with other content"),
             "idempotency_key_reused");
        return;
      } else if (!earlier->has_value()) {
        // We bound the key: if Kafka does not take the event, nothing was stored under
        // it, so it is freed for the client's next try (only if still bound to this
        // content). A concurrent retry of the same content that succeeds may lose its
        // binding this way; then a later reuse is accepted as another event instead of
        // 422 — never lost.
        on_refused = [this, binding, fingerprint] {
          store_->Release("idem", binding, fingerprint, [this](absl::Status status) {
            if (!status.ok()) {
              redis_failures_->WithLabels({"idempotency_release"}).Increment();
            }
          });
        };
      }
      Publish(pending, std::move(submission->event), submission->key, std::move(on_refused));
    };
  } else {
    std::string candidate = RandomEventId();
    claim = {"fp", fingerprint, candidate, options_.duplicate_window};
    on_claim = [this, pending, submission, fingerprint,
                candidate](absl::StatusOr<std::optional<std::string>> earlier) {
      std::string event_id;
      if (!earlier.ok() && !ingest::FailsOpen(earlier.status())) {
        overloaded_->Increment();
        Fail(*pending,
             Response::Error(503, "overloaded", "too many requests in progress; retry")
                 .WithHeader("Retry-After", "1"),
             "overloaded");
        return;
      }
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
      Publish(pending, std::move(submission->event), submission->key);
    };
  }
  if (pending->rate_checked) {
    store_->Claim(claim.kind, claim.key, claim.value, claim.ttl, std::move(on_claim));
    return;
  }
  // One Redis step for the rate limit and the claim. For a request the limit refuses, the claim
  // does not count (RedisStore leaves what it recorded: see Store::CountAndClaim).
  rate_limiter_.CheckAndClaim(
      pending->client_ip, pending->now, std::move(claim),
      [this, pending, on_claim = std::move(on_claim)](ingest::RateLimiter::Decision decision,
                                                      ingest::RateLimiter::ClaimResult earlier) {
        pending->rate_checked = true;
        if (Admit(*pending, decision)) {
          on_claim(std::move(earlier));
        }
      });
}

void WebformService::Publish(const std::shared_ptr<Pending>& pending,
                             events::v1::InboundEvent event, const std::string& key,
                             std::function<void()> on_refused) {
  std::vector<kafka::Header> headers = {{"event-type", "web_form"}};
  if (!pending->traceparent.empty()) {
    headers.push_back({"traceparent", pending->traceparent});
  }
  std::string value = event.SerializeAsString();
  publisher_->Publish(
      key, value, headers,
      [this, pending, event_id = event.event_id(),
       on_refused = std::move(on_refused)](const kafka::DeliveryResult& result) {
        if (result.status.ok()) {
          accepted_->Increment();
          Answer(*pending, Accepted(event_id));
          return;
        }
        if (on_refused) {
          on_refused();
        }
        spdlog::warn("webform: event {} not acknowledged by Kafka ({}): {}", event_id,
                     kafka::ErrorClassName(result.error_class), result.status.ToString());
        kafka_failures_->WithLabels({std::string(kafka::ErrorClassName(result.error_class))})
            .Increment();
        if (result.error_class == kafka::ErrorClass::kFatal && on_fatal) {
          on_fatal(result.status);
        }
        Fail(*pending,
             ingest::AnswerForKafkaFailure(result, options_.unavailable_retry_after_seconds),
             "kafka");
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
