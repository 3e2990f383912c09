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
               const std::vector<kafka::Header>& headers,
               std::function<void(absl::Status)> done) override {
    published.push_back({key, value, headers});
    done(status);
  }
  absl::Status status;
  std::vector<Published> published;
};

class FakeStore : public Store {
 public:
  // Answers inline, as if Redis had answered at once.
  void CountRequest(const std::string& client, int64_t window, CountDone done) override {
    if (!up) {
      done(absl::UnavailableError("down"));
      return;
    }
    done(++counts[client + ":" + std::to_string(window)]);
  }
  void ClaimFingerprint(const std::string& fingerprint, const std::string& event_id,
                        std::chrono::seconds, ClaimDone done) override {
    if (!up) {
      done(absl::UnavailableError("down"));
      return;
    }
    auto [it, inserted] = fingerprints.emplace(fingerprint, event_id);
    done(inserted ? std::nullopt : std::optional<std::string>(it->second));
  }
  bool up = true;
  std::map<std::string, int64_t> counts;
  std::map<std::string, std::string> fingerprints;
};

class ServiceTest : public ::testing::Test {
 protected:
  WebformService& Service() {
    if (!service_) {
      service_ = std::make_unique<WebformService>(options_, &publisher_, &store_, &registry_, [] {
        return std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));
      });
    }
    return *service_;
  }
  http::Response Post(const std::string& body, std::vector<http::HeaderField> headers = {},
                      const std::string& content_type = "application/json",
                      const std::string& form = "contact") {
    http::Request request;
    request.method = "POST";
    request.params["form_id"] = form;
    request.remote_address = "127.0.0.1";
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

  ServiceOptions options_;
  FakePublisher publisher_;
  FakeStore store_;
  metrics::Registry registry_;
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

// Protects: Kafka failure is 503 with Retry-After, never 202.
TEST_F(ServiceTest, KafkaFailureIs503) {
  publisher_.status = absl::UnavailableError("timed out");
  auto response = Post(R"({"email":"a@b.fr"})");
  EXPECT_EQ(response.status, 503);
  EXPECT_FALSE(Header(response, "Retry-After").empty());
  EXPECT_THAT(registry_.Render(), HasSubstr("webform_kafka_failures_total 1"));
}

// Protects: idempotency keys (header or field) and fingerprints give stable event ids.
TEST_F(ServiceTest, EventIdsForRetriesAndDoubleSubmits) {
  std::string body = R"({"email":"a@b.fr","message":"hi"})";
  auto first = Post(body, {{"Idempotency-Key", "abc"}});
  auto second = Post(body, {{"Idempotency-Key", "abc"}});
  EXPECT_EQ(EventId(first), EventId(second));
  auto field_key = Post(R"({"email":"a@b.fr","_idempotency_key":"abc"})");
  EXPECT_EQ(EventId(field_key), EventId(first));
  auto a = Post(body);
  auto b = Post(body);
  EXPECT_EQ(EventId(a), EventId(b));
  EXPECT_NE(EventId(a), EventId(first));
  EXPECT_THAT(registry_.Render(), HasSubstr("webform_duplicates_total 1"));
  EXPECT_EQ(publisher_.published.size(), 5u);  // duplicates are still published
  EXPECT_EQ(Post(body, {{"Idempotency-Key", std::string(300, 'k')}}).status, 400);
}

// Protects: without Redis, identical submissions still share an id (time bucket), and the
// rate limit fails open; both are counted.
TEST_F(ServiceTest, RedisDownDegrades) {
  options_.rate_limit_per_minute = 1;
  store_.up = false;
  std::string body = R"({"email":"a@b.fr"})";
  auto a = Post(body);
  auto b = Post(body);
  EXPECT_EQ(a.status, 202);
  EXPECT_EQ(b.status, 202);
  EXPECT_EQ(EventId(a), EventId(b));
  std::string text = registry_.Render();
  EXPECT_THAT(text, HasSubstr("webform_redis_failures_total{operation=\"fingerprint\"} 2"));
  EXPECT_THAT(text, HasSubstr("webform_redis_failures_total{operation=\"rate_limit\"} 2"));
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
  EXPECT_THAT(registry_.Render(), HasSubstr("webform_submissions_rejected_total{code=\"422\"} 2"));
}

// Protects: the honeypot gets a plausible 202 and nothing is published.
TEST_F(ServiceTest, HoneypotNotPublished) {
  auto response = Post(R"({"email":"a@b.fr","_hp":"x"})");
  EXPECT_EQ(response.status, 202);
  EXPECT_EQ(EventId(response).rfind("wf:", 0), 0u);
  EXPECT_TRUE(publisher_.published.empty());
  EXPECT_THAT(registry_.Render(), HasSubstr("webform_spam_total{reason=\"honeypot\"} 1"));
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

// Protects: X-Forwarded-For is only believed when configured, and only its last entry.
TEST_F(ServiceTest, ClientIpFromForwardedFor) {
  http::Request request;
  request.remote_address = "10.0.0.1";
  request.headers = {{"X-Forwarded-For", "1.1.1.1, 203.0.113.9"}};
  EXPECT_EQ(Service().ClientIp(request), "10.0.0.1");
  options_.trust_forwarded_for = true;
  service_.reset();
  EXPECT_EQ(Service().ClientIp(request), "203.0.113.9");
  request.headers = {{"X-Forwarded-For", "<script>"}};
  EXPECT_EQ(Service().ClientIp(request), "10.0.0.1");
}

}  // namespace
}  // namespace leadflow::webform
