#include "webform-ingest/service.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace leadflow::webform {
namespace {

using ::testing::HasSubstr;

struct Published {
  std::string key;
  std::string value;
  std::vector<kafka::Header> headers;
};

class FakePublisher : public Publisher {
 public:
  void Publish(const std::string& key, const std::string& value,
               const std::vector<kafka::Header>& headers, Done done) override {
    published.push_back({key, value, headers});
    kafka::DeliveryResult result;
    result.status = status;
    result.error_class = status.ok() ? kafka::ErrorClass::kNone : error_class;
    done(result);
  }
  absl::Status status;
  kafka::ErrorClass error_class = kafka::ErrorClass::kRetryable;
  std::vector<Published> published;
};

class FakeStore : public Store {
 public:
  // Answers inline, as if Redis had answered at once.
  void CountRequest(const std::string& client, int64_t window, CountDone done) override {
    if (!failure.ok()) {
      done(failure);
      return;
    }
    done(++counts[client + ":" + std::to_string(window)]);
  }
  void Claim(const std::string& kind, const std::string& key, const std::string& value,
             std::chrono::seconds, ClaimDone done) override {
    if (!failure.ok() || !claim_failure.ok()) {
      done(!failure.ok() ? failure : claim_failure);
      return;
    }
    auto [it, inserted] = claims.emplace(kind + ":" + key, value);
    done(inserted ? std::nullopt : std::optional<std::string>(it->second));
  }
  void Release(const std::string& kind, const std::string& key, const std::string& value,
               std::function<void(absl::Status)> done) override {
    if (!failure.ok()) {
      done(failure);
      return;
    }
    if (auto it = claims.find(kind + ":" + key); it != claims.end() && it->second == value) {
      claims.erase(it);
    }
    done(absl::OkStatus());
  }
  void CountAndClaim(const std::string& client, int64_t window, int64_t limit,
                     const std::string& kind, const std::string& key, const std::string& value,
                     std::chrono::seconds ttl, CountClaimDone done) override {
    ++count_and_claims;
    Store::CountAndClaim(client, window, limit, kind, key, value, ttl, std::move(done));
  }
  // OK: up. Unavailable: Redis down. ResourceExhausted: our queue towards Redis is full.
  absl::Status failure;
  // Claims alone fail with this (counting works), as SET NX GET on a Redis older than 7.0.
  absl::Status claim_failure;
  int count_and_claims = 0;
  std::map<std::string, int64_t> counts;
  std::map<std::string, std::string> claims;
};

class ServiceTest : public ::testing::Test {
 protected:
  WebformService& Service() {
    if (!service_) {
      // One service per registry, as in the process (its gauges read it at scrape time).
      registry_ = std::make_unique<metrics::Registry>();
      service_ = std::make_unique<WebformService>(options_, &publisher_, &store_, registry_.get(),
                                                  [this] { return now_; });
    }
    return *service_;
  }
  http::Response Post(const std::string& body, std::vector<http::HeaderField> headers = {},
                      const std::string& content_type = "application/json",
                      const std::string& form = "contact",
                      const std::string& remote_address = "127.0.0.1") {
    http::Request request;
    request.method = "POST";
    request.params["form_id"] = form;
    request.remote_address = remote_address;
    request.body = body;
    request.headers = std::move(headers);
    request.headers.push_back({"Content-Type", content_type});
    std::optional<http::Response> answer;
    Service().HandleSubmission(request, [&](http::Response response) { answer = response; });
    EXPECT_TRUE(answer.has_value());
    return answer.value_or(http::Response{});
  }
  static std::string EventId(const http::Response& response) {
    return nlohmann::json::parse(response.body).at("event_id").get<std::string>();
  }
  static std::string Header(const http::Response& response, const std::string& name) {
    for (const auto& header : response.headers) {
      if (header.name == name) {
        return header.value;
      }
    }
    return "";
  }

  http::Response PostFrom(const std::string& remote_address, const std::string& body) {
    return Post(body, {}, "application/json", "contact", remote_address);
  }

  std::chrono::system_clock::time_point now_{std::chrono::seconds(1700000000)};
  ServiceOptions options_;
  FakePublisher publisher_;
  FakeStore store_;
  std::unique_ptr<metrics::Registry> registry_;
  std::unique_ptr<WebformService> service_;
};

// Protects: an accepted submission is published with key, headers and event id, then 202.
TEST_F(ServiceTest, AcceptedAfterPublish) {
  auto response =
      Post(R"({"email":"A@b.fr","phone":"0612345678"})",
           {{"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}});
  EXPECT_EQ(response.status, 202);
  ASSERT_EQ(publisher_.published.size(), 1u);
  EXPECT_EQ(publisher_.published[0].key, "+33612345678");
  events::v1::InboundEvent event;
  ASSERT_TRUE(event.ParseFromString(publisher_.published[0].value));
  EXPECT_EQ(event.event_id(), EventId(response));
  ASSERT_EQ(publisher_.published[0].headers.size(), 2u);
  EXPECT_EQ(publisher_.published[0].headers[0].key, "event-type");
  EXPECT_EQ(publisher_.published[0].headers[0].value, "web_form");
  EXPECT_EQ(publisher_.published[0].headers[1].key, "traceparent");
}

// Protects: a retryable Kafka failure is 503 with Retry-After, never 202.
TEST_F(ServiceTest, KafkaFailureIs503) {
  publisher_.status = absl::UnavailableError("timed out");
  auto response = Post(R"({"email":"a@b.fr"})");
  EXPECT_EQ(response.status, 503);
  EXPECT_FALSE(Header(response, "Retry-After").empty());
  EXPECT_THAT(registry_->Render(),
              HasSubstr("webform_kafka_failures_total{class=\"retryable\"} 1"));
}

// Protects: a permanent refusal is a 500 (retrying will not help), and a fatal producer error
// is a 503 that also reaches on_fatal — which turns readiness false and stops the process;
// before, a fenced producer answered 503 forever while /readyz said 200.
TEST_F(ServiceTest, KafkaPermanentIs500AndFatalIsReported) {
  std::vector<absl::Status> fatal;
  Service().on_fatal = [&](const absl::Status& status) { fatal.push_back(status); };
  publisher_.status = absl::UnavailableError("too large");
  publisher_.error_class = kafka::ErrorClass::kPermanent;
  EXPECT_EQ(Post(R"({"email":"a@b.fr"})").status, 500);
  EXPECT_TRUE(fatal.empty());
  publisher_.status = absl::UnavailableError("fenced");
  publisher_.error_class = kafka::ErrorClass::kFatal;
  auto response = Post(R"({"email":"b@b.fr"})");
  EXPECT_EQ(response.status, 503);
  EXPECT_FALSE(Header(response, "Retry-After").empty());
  EXPECT_EQ(fatal.size(), 1u);
}

// Protects: idempotency keys (header or field) and fingerprints give stable event ids.
TEST_F(ServiceTest, EventIdsForRetriesAndDoubleSubmits) {
  std::string body = R"({"email":"a@b.fr","message":"hi"})";
  auto first = Post(body, {{"Idempotency-Key", "abc"}});
  auto second = Post(body, {{"Idempotency-Key", "abc"}});
  EXPECT_EQ(EventId(first), EventId(second));
  auto field_key = Post(R"({"email":"a@b.fr","message":"hi","_idempotency_key":"abc"})");
  EXPECT_EQ(EventId(field_key), EventId(first));
  auto a = Post(body);
  auto b = Post(body);
  EXPECT_EQ(EventId(a), EventId(b));
  EXPECT_NE(EventId(a), EventId(first));
  EXPECT_THAT(registry_->Render(), HasSubstr("webform_duplicates_total 1"));
  EXPECT_EQ(publisher_.published.size(), 5u);  // duplicates are still published
  EXPECT_EQ(Post(body, {{"Idempotency-Key", std::string(300, 'k')}}).status, 400);
}

// Protects: without Redis, identical submissions still share an id (time bucket), and the
// rate limit fails open; both are counted.
TEST_F(ServiceTest, RedisDownDegrades) {
  options_.rate_limit_per_minute = 1;
  store_.failure = absl::UnavailableError("down");
  std::string body = R"({"email":"a@b.fr"})";
  auto a = Post(body);
  auto b = Post(body);
  EXPECT_EQ(a.status, 202);
  EXPECT_EQ(b.status, 202);
  EXPECT_EQ(EventId(a), EventId(b));
  std::string text = registry_->Render();
  EXPECT_THAT(text, HasSubstr("webform_redis_failures_total{operation=\"fingerprint\"} 2"));
  EXPECT_THAT(text, HasSubstr("webform_redis_failures_total{operation=\"rate_limit\"} 2"));
  // With a key: still accepted (fail open), same id, content unchecked but counted.
  auto c = Post(body, {{"Idempotency-Key", "k1"}});
  auto d = Post(R"({"email":"other@b.fr"})", {{"Idempotency-Key", "k1"}});
  EXPECT_EQ(c.status, 202);
  EXPECT_EQ(d.status, 202);
  EXPECT_NE(EventId(c), EventId(d));  // other content: another event, not a dropped duplicate
  EXPECT_EQ(EventId(Post(body, {{"Idempotency-Key", "k1"}})), EventId(c));  // a retry
  EXPECT_THAT(registry_->Render(),
              HasSubstr("webform_redis_failures_total{operation=\"idempotency_key\"} 3"));
}

// Protects (defect d): an Idempotency-Key is bound to the content first sent with it: the same
// key and content is the same event; the same key with other content is 422
// idempotency_key_reused and nothing is published (before: 202, then dropped by crm-core).
TEST_F(ServiceTest, IdempotencyKeyBoundToContent) {
  auto first = Post(R"({"email":"a@b.fr","message":"order"})", {{"Idempotency-Key", "order-123"}});
  auto retry = Post(R"({"email":"a@b.fr","message":"order"})", {{"Idempotency-Key", "order-123"}});
  EXPECT_EQ(first.status, 202);
  EXPECT_EQ(retry.status, 202);
  EXPECT_EQ(EventId(first), EventId(retry));
  auto other =
      Post(R"({"email":"b@b.fr","message":"another order"})", {{"Idempotency-Key", "order-123"}});
  EXPECT_EQ(other.status, 422);
  EXPECT_EQ(nlohmann::json::parse(other.body)["error"], "idempotency_key_reused");
  EXPECT_EQ(publisher_.published.size(), 2u);
  // Keys are per form: the same key on another form is another submission.
  EXPECT_EQ(Post(R"({"email":"b@b.fr"})", {{"Idempotency-Key", "order-123"}}, "application/json",
                 "other-form")
                .status,
            202);
}

// Protects (defect d, for good): the event id derives from the key AND the content, so a
// different body under a reused key is never deduplicated away by crm-core, even when Redis
// cannot say it was reused: after the binding's 24 h, or while Redis is down (before: the id
// came from the key alone, the body got 202 and crm-core dropped it as a duplicate).
TEST_F(ServiceTest, ReusedKeyNeverDeduplicatesOtherContent) {
  auto first = Post(R"({"email":"a@b.fr","message":"order 1"})", {{"Idempotency-Key", "order-1"}});
  ASSERT_EQ(first.status, 202);
  store_.claims.clear();  // the binding expired
  auto later = Post(R"({"email":"a@b.fr","message":"order 2"})", {{"Idempotency-Key", "order-1"}});
  EXPECT_EQ(later.status, 202);
  EXPECT_NE(EventId(later), EventId(first));
  store_.failure = absl::UnavailableError("down");
  auto degraded =
      Post(R"({"email":"a@b.fr","message":"order 3"})", {{"Idempotency-Key", "order-1"}});
  EXPECT_EQ(degraded.status, 202);
  EXPECT_NE(EventId(degraded), EventId(first));
  EXPECT_NE(EventId(degraded), EventId(later));
  // A retry of the first is still the first event, with or without Redis.
  auto retry = Post(R"({"email":"a@b.fr","message":"order 1"})", {{"Idempotency-Key", "order-1"}});
  EXPECT_EQ(EventId(retry), EventId(first));
}

// Protects: a submission Kafka did not take does not keep its key bound: the client may send
// it again, corrected, with the same key (before: 422 idempotency_key_reused for 24 h for a
// key under which nothing was ever stored). A binding by other content is never released.
TEST_F(ServiceTest, KafkaRefusalReleasesTheKey) {
  publisher_.status = absl::UnavailableError("brokers down");
  auto refused = Post(R"({"email":"a@b.fr","message":"v1"})", {{"Idempotency-Key", "k"}});
  EXPECT_EQ(refused.status, 503);
  EXPECT_TRUE(store_.claims.empty());
  publisher_.status = absl::OkStatus();
  auto corrected = Post(R"({"email":"a@b.fr","message":"v2"})", {{"Idempotency-Key", "k"}});
  EXPECT_EQ(corrected.status, 202);
  // Now bound to v2; a refused retry of v1 under the same key (422 before Kafka) frees nothing.
  EXPECT_EQ(Post(R"({"email":"a@b.fr","message":"v1"})", {{"Idempotency-Key", "k"}}).status, 422);
  publisher_.status = absl::UnavailableError("brokers down");
  EXPECT_EQ(Post(R"({"email":"a@b.fr","message":"v2"})", {{"Idempotency-Key", "k"}}).status,
            503);  // a retry of v2 that fails: it did not bind the key, so it does not free it
  EXPECT_EQ(store_.claims.size(), 1u);
}

// Protects (defect g): a full queue towards Redis is overload: 503 with Retry-After, and the
// rate limit is NOT switched off (before, queue-full was treated as Redis down: fail open).
TEST_F(ServiceTest, QueueFullIsOverloadNotFailOpen) {
  options_.rate_limit_per_minute = 1;
  store_.failure = absl::ResourceExhaustedError("queue full");
  auto response = Post(R"({"email":"a@b.fr"})");
  EXPECT_EQ(response.status, 503);
  EXPECT_EQ(nlohmann::json::parse(response.body)["error"], "overloaded");
  EXPECT_FALSE(Header(response, "Retry-After").empty());
  EXPECT_TRUE(publisher_.published.empty());
  EXPECT_THAT(registry_->Render(), HasSubstr("webform_overloaded_total 1"));
  // Without a rate limit, the double-submit claim meets the same full queue: 503 too.
  options_.rate_limit_per_minute = 0;
  service_.reset();
  EXPECT_EQ(Post(R"({"email":"a@b.fr"})").status, 503);
  EXPECT_TRUE(publisher_.published.empty());
}

// Protects (defect k): a JSON honeypot sent as false or 0 (a default checkbox or counter) is
// not spam: the submission is published. Before, every such submission got 202 and was dropped.
TEST_F(ServiceTest, HoneypotFalseOrZeroIsNotSpam) {
  EXPECT_EQ(Post(R"({"email":"a@b.fr","_hp":false})").status, 202);
  EXPECT_EQ(Post(R"({"email":"b@b.fr","_hp":0})").status, 202);
  EXPECT_EQ(Post(R"({"email":"c@b.fr","_hp":""})").status, 202);
  EXPECT_EQ(publisher_.published.size(), 3u);
  EXPECT_EQ(Post(R"({"email":"d@b.fr","_hp":true})").status, 202);
  EXPECT_EQ(Post(R"({"email":"e@b.fr","_hp":"http://spam"})").status, 202);
  EXPECT_EQ(publisher_.published.size(), 3u);
}

// Protects (defect m): a plain HTML form's visitor is sent (303) to the form's success page
// once the event is durable, to its error page with the code otherwise; API clients keep JSON.
TEST_F(ServiceTest, BrowserNavigationRedirectsToFormPages) {
  options_.forms = *FormsConfig::Parse(R"({"forms": {"contact": {
      "success_url": "https://shop.example/thanks",
      "error_url": "https://shop.example/oops?lang=fr"}}})");
  http::HeaderField html = {"Accept", "text/html,application/xhtml+xml,*/*;q=0.8"};
  auto ok = Post("email=a%40b.fr", {html}, "application/x-www-form-urlencoded");
  EXPECT_EQ(ok.status, 303);
  EXPECT_EQ(Header(ok, "Location"), "https://shop.example/thanks");
  EXPECT_EQ(publisher_.published.size(), 1u);
  auto bad = Post("email=nope", {html}, "application/x-www-form-urlencoded");
  EXPECT_EQ(bad.status, 303);
  EXPECT_EQ(Header(bad, "Location"), "https://shop.example/oops?lang=fr&error=invalid_fields");
  publisher_.status = absl::UnavailableError("down");
  auto down =
      Post("email=c%40b.fr", {{"Sec-Fetch-Mode", "navigate"}}, "application/x-www-form-urlencoded");
  EXPECT_EQ(down.status, 303);
  EXPECT_EQ(Header(down, "Location"), "https://shop.example/oops?lang=fr&error=unavailable");
  // fetch() from a script: JSON as before.
  publisher_.status = absl::OkStatus();
  auto api = Post(R"({"email":"d@b.fr"})", {{"Sec-Fetch-Mode", "cors"}, html});
  EXPECT_EQ(api.status, 202);
  EXPECT_EQ(Header(api, "Content-Type"), "application/json");
}

// Protects (defect m): without configured pages, a navigation gets a small HTML page in the
// visitor's language (French or English), with the status of the outcome.
TEST_F(ServiceTest, BrowserNavigationWithoutPagesGetsHtmlInVisitorsLanguage) {
  http::HeaderField html = {"Accept", "text/html"};
  auto french = Post("email=a%40b.fr", {html, {"Accept-Language", "fr-FR,fr;q=0.9,en;q=0.8"}},
                     "application/x-www-form-urlencoded");
  EXPECT_EQ(french.status, 202);
  EXPECT_EQ(Header(french, "Content-Type"), "text/html; charset=utf-8");
  EXPECT_THAT(french.body, HasSubstr("lang=\"fr\""));
  EXPECT_THAT(french.body, HasSubstr("Merci"));
  auto english = Post("email=nope", {html, {"Accept-Language", "en-GB,en;q=0.9"}},
                      "application/x-www-form-urlencoded");
  EXPECT_EQ(english.status, 422);
  EXPECT_THAT(english.body, HasSubstr("lang=\"en\""));
  EXPECT_THAT(english.body, ::testing::Not(HasSubstr("nope")));
  // Refused before the body is looked at (unknown form): a page too, not JSON.
  options_.forms = *FormsConfig::Parse(R"({"forms": {"contact": {}}})");
  service_.reset();
  auto unknown = Post("email=a%40b.fr", {html}, "application/x-www-form-urlencoded", "gone");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(Header(unknown, "Content-Type"), "text/html; charset=utf-8");
}

// Protects: a browser whose submission failed on our side (Kafka refused it for good: 500;
// or Kafka unavailable: 503) is told to try again, not that the form has an error (before: the
// 500 page said "check the fields", sending the visitor hunting for a mistake that is ours).
TEST_F(ServiceTest, BrowserNavigationInternalFaultSaysTryAgain) {
  http::HeaderField html = {"Accept", "text/html"};
  publisher_.status = absl::UnavailableError("refused");
  publisher_.error_class = kafka::ErrorClass::kPermanent;
  auto internal = Post("email=a%40b.fr", {html}, "application/x-www-form-urlencoded");
  EXPECT_EQ(internal.status, 500);
  EXPECT_THAT(internal.body, HasSubstr("try again"));
  EXPECT_THAT(internal.body, ::testing::Not(HasSubstr("check the fields")));
  publisher_.error_class = kafka::ErrorClass::kRetryable;
  auto unavailable = Post("email=b%40b.fr", {html}, "application/x-www-form-urlencoded");
  EXPECT_EQ(unavailable.status, 503);
  EXPECT_THAT(unavailable.body, HasSubstr("try again"));
  // A real mistake in the fields still says so.
  publisher_.status = absl::OkStatus();
  auto invalid = Post("email=nope", {html}, "application/x-www-form-urlencoded");
  EXPECT_EQ(invalid.status, 422);
  EXPECT_THAT(invalid.body, HasSubstr("check the fields"));
}

// Protects: the per-IP rate limit answers 429 with Retry-After.
TEST_F(ServiceTest, RateLimit) {
  options_.rate_limit_per_minute = 2;
  EXPECT_EQ(Post(R"({"email":"a@b.fr"})").status, 202);
  EXPECT_EQ(Post(R"({"email":"b@b.fr"})").status, 202);
  auto limited = Post(R"({"email":"c@b.fr"})");
  EXPECT_EQ(limited.status, 429);
  EXPECT_EQ(Header(limited, "Retry-After"), "40");  // 1700000000 % 60 == 20
}

// Protects: a request the rate limit refuses is not published and the store's default
// CountAndClaim claims nothing for it, and a client over its limit gets 429 whatever it sends, a
// malformed body included, also once the service checks it before parsing its body.
TEST_F(ServiceTest, RateLimitedRequestClaimsNothing) {
  options_.rate_limit_per_minute = 1;
  EXPECT_EQ(Post(R"({"email":"a@b.fr"})", {{"Idempotency-Key", "k1"}}).status, 202);
  EXPECT_EQ(store_.claims.size(), 1u);
  EXPECT_EQ(Post(R"({"email":"b@b.fr"})", {{"Idempotency-Key", "k2"}}).status, 429);
  EXPECT_EQ(store_.claims.size(), 1u);
  EXPECT_THAT(registry_->Render(), HasSubstr("webform_rate_limited_clients 1"));
  EXPECT_EQ(Post("{not json").status, 429);
  EXPECT_EQ(Post(R"({"email":"nope"})").status, 429);
  EXPECT_EQ(Post(R"({"email":"c@b.fr"})", {{"Idempotency-Key", "k3"}}).status, 429);
  EXPECT_EQ(store_.claims.size(), 1u);
  EXPECT_EQ(publisher_.published.size(), 1u);
  // Another client is not held back by this one's refusals.
  http::Request request;
  request.method = "POST";
  request.params["form_id"] = "contact";
  request.remote_address = "10.0.0.2";
  request.body = R"({"email":"d@b.fr"})";
  request.headers = {{"Content-Type", "application/json"}};
  std::optional<http::Response> answer;
  Service().HandleSubmission(request, [&](http::Response response) { answer = response; });
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(answer->status, 202);
}

// Protects (review of the one-step claim, finding 2): a claim that fails while the count came
// back (SET NX GET refused, as by Redis < 7.0) does not switch the rate limit off: the request
// goes on without its claim, counted as the claim's failure, and the next one over the limit is
// refused.
TEST_F(ServiceTest, ClaimFailureKeepsTheRateLimit) {
  options_.rate_limit_per_minute = 1;
  store_.claim_failure = absl::InternalError("redis: ERR syntax error");
  EXPECT_EQ(Post(R"({"email":"a@b.fr"})").status, 202);
  EXPECT_EQ(Post(R"({"email":"b@b.fr"})").status, 429);
  EXPECT_EQ(Post(R"({"email":"c@b.fr"})", {{"Idempotency-Key", "k1"}}).status, 429);
  EXPECT_EQ(publisher_.published.size(), 1u);
  std::string text = registry_->Render();
  EXPECT_THAT(text, HasSubstr("webform_redis_failures_total{operation=\"fingerprint\"} 1"));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("operation=\"rate_limit\"")));
}

// Protects (finding 3): the clients refused this minute are remembered by what the limit counts
// (an IPv6 client by its /64), so another address of a refused /64 is checked before its body
// is parsed, and the gauge counts subjects, not addresses.
TEST_F(ServiceTest, LimitedClientsBySubject) {
  options_.rate_limit_per_minute = 1;
  std::string body = R"({"email":"a@b.fr"})";
  EXPECT_EQ(PostFrom("2001:db8:1:2::1", body).status, 202);
  EXPECT_EQ(PostFrom("2001:db8:1:2::2", body).status, 429);
  EXPECT_EQ(store_.count_and_claims, 2);
  EXPECT_EQ(PostFrom("2001:db8:1:2:ffff::3", body).status, 429);
  // Checked by the rate limit alone, before the body: no claim attempted.
  EXPECT_EQ(store_.count_and_claims, 2);
  EXPECT_THAT(registry_->Render(), HasSubstr("webform_rate_limited_clients 1\n"));
}

// Protects (finding 3): the set of refused clients is bounded, and a refusal it cannot hold is
// counted.
TEST_F(ServiceTest, LimitedClientsSetFullIsCounted) {
  options_.rate_limit_per_minute = 1;
  options_.max_limited_clients = 1;
  std::string body = R"({"email":"a@b.fr"})";
  for (const char* client : {"10.0.0.1", "10.0.0.2"}) {
    EXPECT_EQ(PostFrom(client, body).status, 202);
    EXPECT_EQ(PostFrom(client, body).status, 429);
  }
  std::string text = registry_->Render();
  EXPECT_THAT(text, HasSubstr("webform_rate_limited_clients 1\n"));
  EXPECT_THAT(text, HasSubstr("webform_rate_limited_clients_untracked_total 1\n"));
}

// Protects (finding 4): webform_rate_limited_clients is the number of clients refused in the
// current minute, also when no request has come since the minute rolled over.
TEST_F(ServiceTest, LimitedClientsGaugeFollowsTheMinute) {
  options_.rate_limit_per_minute = 1;
  EXPECT_EQ(Post(R"({"email":"a@b.fr"})").status, 202);
  EXPECT_EQ(Post(R"({"email":"a@b.fr"})").status, 429);
  EXPECT_THAT(registry_->Render(), HasSubstr("webform_rate_limited_clients 1\n"));
  now_ += std::chrono::seconds(60);
  EXPECT_THAT(registry_->Render(), HasSubstr("webform_rate_limited_clients 0\n"));
  // The new minute's refusals count again.
  EXPECT_EQ(Post(R"({"email":"b@b.fr"})").status, 202);
  EXPECT_EQ(Post(R"({"email":"b@b.fr"})").status, 429);
  EXPECT_THAT(registry_->Render(), HasSubstr("webform_rate_limited_clients 1\n"));
}

// Protects: a client within its limit still gets the 4xx its body deserves (the limit counted
// it all the same).
TEST_F(ServiceTest, RateLimitCountsRefusedBodies) {
  options_.rate_limit_per_minute = 2;
  EXPECT_EQ(Post("{not json").status, 400);
  EXPECT_EQ(Post(R"({"email":"a@b.fr"})").status, 202);
  EXPECT_EQ(Post(R"({"email":"b@b.fr"})").status, 429);
}

// Protects: every 4xx of the contract, by status and error code.
TEST_F(ServiceTest, ClientErrors) {
  EXPECT_EQ(Post("{}", {}, "text/plain").status, 415);
  auto malformed = Post("{not json");
  EXPECT_EQ(malformed.status, 400);
  EXPECT_EQ(nlohmann::json::parse(malformed.body)["error"], "malformed_json");
  auto invalid = Post(R"({"email":"nope","phone":"12"})");
  EXPECT_EQ(invalid.status, 422);
  auto fields = nlohmann::json::parse(invalid.body)["fields"];
  EXPECT_TRUE(fields.contains("email"));
  EXPECT_TRUE(fields.contains("phone"));
  auto wrong_type = Post(R"({"email":"a@b.fr","phone":{"n":1}})");
  EXPECT_EQ(wrong_type.status, 422);
  EXPECT_TRUE(nlohmann::json::parse(wrong_type.body)["fields"].contains("phone"));
  EXPECT_EQ(Post(R"({"email":"a@b.fr"})", {}, "application/json", "bad/id").status, 404);
  EXPECT_TRUE(publisher_.published.empty());
  EXPECT_THAT(registry_->Render(), HasSubstr("webform_submissions_rejected_total{code=\"422\"} 2"));
}

// Protects: the honeypot gets a plausible 202 and nothing is published.
TEST_F(ServiceTest, HoneypotNotPublished) {
  auto response = Post(R"({"email":"a@b.fr","_hp":"x"})");
  EXPECT_EQ(response.status, 202);
  EXPECT_EQ(EventId(response).rfind("wf:", 0), 0u);
  EXPECT_TRUE(publisher_.published.empty());
  EXPECT_THAT(registry_->Render(), HasSubstr("webform_spam_total{reason=\"honeypot\"} 1"));
}

// Protects: CORS per form — allowed origin echoed, others 403, unknown forms 404, preflight.
TEST_F(ServiceTest, CorsWithFormsFile) {
  options_.forms = *FormsConfig::Parse(
      R"({"forms": {"contact": {"allowed_origins": ["https://shop.example"]}}})");
  auto allowed = Post(R"({"email":"a@b.fr"})", {{"Origin", "https://shop.example"}});
  EXPECT_EQ(allowed.status, 202);
  EXPECT_EQ(Header(allowed, "Access-Control-Allow-Origin"), "https://shop.example");
  EXPECT_EQ(Post(R"({"email":"a@b.fr"})", {{"Origin", "https://evil.example"}}).status, 403);
  EXPECT_EQ(Post(R"({"email":"a@b.fr"})", {}, "application/json", "unknown").status, 404);
  auto bad = Post(R"({"email":"nope"})", {{"Origin", "https://shop.example"}});
  EXPECT_EQ(bad.status, 422);
  EXPECT_EQ(Header(bad, "Access-Control-Allow-Origin"), "https://shop.example");

  http::Request preflight;
  preflight.method = "OPTIONS";
  preflight.params["form_id"] = "contact";
  preflight.headers = {{"Origin", "https://shop.example"}};
  auto ok = Service().HandlePreflight(preflight);
  EXPECT_EQ(ok.status, 204);
  EXPECT_EQ(Header(ok, "Access-Control-Allow-Origin"), "https://shop.example");
  EXPECT_EQ(Header(ok, "Access-Control-Allow-Methods"), "POST");
  EXPECT_THAT(Header(ok, "Access-Control-Allow-Headers"), HasSubstr("Idempotency-Key"));
  preflight.headers = {{"Origin", "https://evil.example"}};
  EXPECT_EQ(Service().HandlePreflight(preflight).status, 403);
  preflight.params["form_id"] = "unknown";
  EXPECT_EQ(Service().HandlePreflight(preflight).status, 404);
}

// Protects (defect f): X-Forwarded-For is only believed from trusted proxies, across all its
// headers, rightmost untrusted entry first; garbage gives the peer. Before: the first header's
// last entry, any hex-and-colons text ("1.2.3.4:5678") accepted.
TEST_F(ServiceTest, ClientIpFromForwardedFor) {
  http::Request request;
  request.remote_address = "10.0.0.1";
  request.headers = {{"X-Forwarded-For", "1.1.1.1, 203.0.113.9"}};
  EXPECT_EQ(Service().ClientIp(request), "10.0.0.1");
  options_.trusted_proxies = *ingest::TrustedProxies::Parse("10.0.0.0/8");
  service_.reset();
  EXPECT_EQ(Service().ClientIp(request), "203.0.113.9");
  request.headers = {{"X-Forwarded-For", "203.0.113.9"}, {"x-forwarded-for", "198.51.100.7"}};
  EXPECT_EQ(Service().ClientIp(request), "198.51.100.7");
  request.headers = {{"X-Forwarded-For", "1.2.3.4:5678"}};
  EXPECT_EQ(Service().ClientIp(request), "10.0.0.1");
  request.headers = {{"X-Forwarded-For", "<script>"}};
  EXPECT_EQ(Service().ClientIp(request), "10.0.0.1");
}

}  // namespace
}  // namespace leadflow::webform
