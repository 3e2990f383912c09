// webform-ingest seen from outside: real HTTP with curl, real Kafka protocol (dev-broker),
// real Redis. Needs LEADFLOW_BUILD_DIR and LEADFLOW_TEST_REDIS_HOST/PORT (deploy/test.sh).

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "e2e/stack.h"
#include "kafka/consumer.h"
#include "kafka/types.h"
#include "leadflow/events/v1/inbound_event.pb.h"
#include "testing/testing.h"

namespace leadflow {
namespace {

using events::v1::Identity;
using events::v1::InboundEvent;
using ::testing::HasSubstr;

struct CurlResult {
  int status = 0;
  std::string headers;
  std::string body;
  nlohmann::json Json() const {
    return nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  }
};

using testing::ShellQuote;
using Broker = testing::DevBroker;

class Webform {
 public:
  Webform(const std::string& brokers, std::map<std::string, std::string> extra = {})
      : ingest_(brokers, WithDefaults(std::move(extra))) {
    if (!testing::WaitFor(
            [&] { return Ops("/healthz").status == 200 || !ingest_.process().Running(); },
            std::chrono::seconds(30)) ||
        !ingest_.process().Running()) {
      throw std::runtime_error("webform-ingest did not start: " + ingest_.process().Log());
    }
  }

  CurlResult Curl(const std::string& args, const std::string& path) const {
    return CurlUrl(args, ingest_.url() + path);
  }
  /// The operations port.
  CurlResult Ops(const std::string& path) const { return CurlUrl("", ingest_.ops_url() + path); }
  static CurlResult CurlUrl(const std::string& args, const std::string& url) {
    std::string output =
        testing::Shell("curl -s -i -H 'Expect:' --max-time 30 " + args + " " + ShellQuote(url));
    CurlResult result;
    size_t end = output.find("\r\n\r\n");
    result.headers = output.substr(0, end);
    result.body = end == std::string::npos ? "" : output.substr(end + 4);
    if (output.rfind("HTTP/1.1 ", 0) == 0) {
      result.status = std::stoi(output.substr(9, 3));
    }
    return result;
  }
  CurlResult Get(const std::string& path) const { return Curl("", path); }
  std::string Url(const std::string& path) const { return ingest_.url() + path; }
  CurlResult PostJson(const std::string& json, const std::string& extra = "",
                      const std::string& form = "contact") const {
    return Curl("-X POST -H 'Content-Type: application/json' --data-binary " + ShellQuote(json) +
                    " " + extra,
                "/v1/forms/" + form + "/submissions");
  }
  testing::Process& process() { return ingest_.process(); }

 private:
  // A short delivery timeout keeps the Kafka-down case quick; debug logs help when one fails.
  static std::map<std::string, std::string> WithDefaults(std::map<std::string, std::string> extra) {
    extra.try_emplace("WEBFORM_DELIVERY_TIMEOUT_MS", "2000");
    extra.try_emplace("LOG_LEVEL", "debug");
    return extra;
  }

  e2e::WebformIngest ingest_;
};

// Reads leadflow.inbound.v1 from the beginning until `count` events came or time is up.
std::vector<kafka::Message> ReadInbound(const std::string& brokers, size_t count,
                                        std::chrono::milliseconds wait) {
  auto consumer = kafka::Consumer::Create({.brokers = brokers,
                                           .group_id = testing::UniqueName("e2e"),
                                           .topics = {kafka::kInboundTopic}});
  if (!consumer.ok()) {
    throw std::runtime_error(std::string(consumer.status().message()));
  }
  std::vector<kafka::Message> messages;
  testing::WaitFor(
      [&] {
        for (auto& message : (*consumer)->PollBatch(100, std::chrono::milliseconds(200))) {
          messages.push_back(std::move(message));
        }
        return messages.size() >= count;
      },
      wait);
  return messages;
}

const kafka::Message* FindEvent(const std::vector<kafka::Message>& messages,
                                const std::string& event_id, InboundEvent* event) {
  for (const kafka::Message& message : messages) {
    if (event->ParseFromString(message.value) && event->event_id() == event_id) {
      return &message;
    }
  }
  return nullptr;
}

class WebformE2eTest : public ::testing::Test {
 protected:
  Broker broker_;
};

// Protects: JSON, urlencoded and multipart submissions are 202 with an event id only once the
// event is in Kafka, normalised, keyed by the primary identity, with the event-type header.
TEST_F(WebformE2eTest, ThreeContentTypesReachKafka) {
  Webform webform(broker_.bootstrap());
  CurlResult json = webform.PostJson(
      R"({"name":"Jean","last_name":"Dupont","email":" Jean@Example.FR","phone":"06 12 34 56 78",)"
      R"("city":"Lyon","message":"Need a quote","utm_source":"google","budget":"5000"})",
      "-H 'traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'");
  ASSERT_EQ(json.status, 202) << json.body;
  CurlResult urlencoded = webform.Curl(
      "--data-urlencode 'email=marie@example.fr' --data-urlencode 'message=Bonjour & merci'",
      "/v1/forms/contact/submissions");
  ASSERT_EQ(urlencoded.status, 202) << urlencoded.body;
  CurlResult multipart =
      webform.Curl("-F 'phone=+44 20 7946 0958' -F 'company=ACME'", "/v1/forms/quote/submissions");
  ASSERT_EQ(multipart.status, 202) << multipart.body;

  auto messages = ReadInbound(broker_.bootstrap(), 3, std::chrono::seconds(30));
  InboundEvent event;
  const kafka::Message* first = FindEvent(messages, json.Json()["event_id"], &event);
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->key, "+33612345678");
  ASSERT_EQ(event.identities_size(), 2);
  EXPECT_EQ(event.identities(0).kind(), Identity::PHONE);
  EXPECT_EQ(event.identities(1).value(), "jean@example.fr");
  EXPECT_EQ(event.person().first_name(), "Jean");
  EXPECT_EQ(event.person().city(), "Lyon");
  EXPECT_EQ(event.web_form().form_id(), "contact");
  EXPECT_EQ(event.web_form().utm().source(), "google");
  EXPECT_EQ(event.web_form().custom_fields().at("budget"), "5000");
  EXPECT_EQ(event.source().service(), "webform-ingest");
  EXPECT_EQ(event.source().client_ip(), "127.0.0.1");
  std::map<std::string, std::string> headers;
  for (const auto& header : first->headers) {
    headers[header.key] = header.value;
  }
  EXPECT_EQ(headers["event-type"], "web_form");
  EXPECT_EQ(headers["traceparent"], "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");

  const kafka::Message* second = FindEvent(messages, urlencoded.Json()["event_id"], &event);
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(second->key, "marie@example.fr");
  EXPECT_EQ(event.web_form().message(), "Bonjour & merci");

  const kafka::Message* third = FindEvent(messages, multipart.Json()["event_id"], &event);
  ASSERT_NE(third, nullptr);
  EXPECT_EQ(third->key, "+442079460958");
  EXPECT_EQ(event.person().company(), "ACME");
  EXPECT_EQ(event.web_form().form_id(), "quote");
}

// Protects: retries with the same Idempotency-Key, and identical double submits without one,
// get the same event id (crm-core then applies them once).
TEST_F(WebformE2eTest, SameEventIdForRetriesAndDoubleSubmits) {
  Webform webform(broker_.bootstrap());
  std::string body = R"({"email":"retry@example.fr","message":"once"})";
  CurlResult a = webform.PostJson(body, "-H 'Idempotency-Key: order-42'");
  CurlResult b = webform.PostJson(body, "-H 'Idempotency-Key: order-42'");
  ASSERT_EQ(a.status, 202);
  ASSERT_EQ(b.status, 202);
  EXPECT_EQ(a.Json()["event_id"], b.Json()["event_id"]);
  std::string unique = R"({"email":")" + testing::UniqueName("double") + R"(@example.fr"})";
  CurlResult c = webform.PostJson(unique);
  CurlResult d = webform.PostJson(unique);
  ASSERT_EQ(c.status, 202);
  ASSERT_EQ(d.status, 202);
  EXPECT_EQ(c.Json()["event_id"], d.Json()["event_id"]);
  EXPECT_NE(c.Json()["event_id"], a.Json()["event_id"]);
  // Exactly the one double submit (the keyed retry is not a fingerprint duplicate).
  EXPECT_EQ(testing::MetricValue(webform.Ops("/metrics").body, "webform_duplicates_total"), 1.0);
}

// Protects: every client error of the contract, by status code and error code.
TEST_F(WebformE2eTest, ClientErrors) {
  Webform webform(broker_.bootstrap(), {{"WEBFORM_MAX_BODY_BYTES", "2048"}});
  std::string big = R"({"email":"a@b.fr","message":")" + std::string(3000, 'x') + "\"}";
  EXPECT_EQ(webform.PostJson(big).status, 413);
  EXPECT_EQ(webform
                .Curl("-X POST -H 'Content-Type: text/plain' --data-binary hi",
                      "/v1/forms/contact/submissions")
                .status,
            415);
  CurlResult malformed = webform.PostJson("{\"email\":");
  EXPECT_EQ(malformed.status, 400);
  EXPECT_EQ(malformed.Json()["error"], "malformed_json");
  CurlResult invalid = webform.PostJson(R"({"email":"not-an-email","phone":"12"})");
  EXPECT_EQ(invalid.status, 422);
  EXPECT_EQ(invalid.Json()["error"], "invalid_fields");
  EXPECT_TRUE(invalid.Json()["fields"].contains("email"));
  EXPECT_TRUE(invalid.Json()["fields"].contains("phone"));
  EXPECT_EQ(webform.Get("/v1/forms/contact/submissions").status, 405);
  EXPECT_EQ(webform.Curl("-X DELETE", "/v1/forms/contact/submissions").status, 405);
  EXPECT_EQ(webform.Get("/nothing/here").status, 404);
  CurlResult multipart = webform.Curl(
      "-X POST -H 'Content-Type: multipart/form-data; boundary=zz' --data-binary 'garbage'",
      "/v1/forms/contact/submissions");
  EXPECT_EQ(multipart.status, 400);
  EXPECT_EQ(multipart.Json()["error"], "malformed_multipart");
  // Undeclared Latin-1 bytes are not UTF-8: 400 invalid_text.
  CurlResult latin = webform.Curl(
      "-X POST -H 'Content-Type: application/x-www-form-urlencoded' --data-binary "
      "'email=a%40b.fr&name=Ren%E9'",
      "/v1/forms/contact/submissions");
  EXPECT_EQ(latin.status, 400);
  EXPECT_EQ(latin.Json()["error"], "invalid_text");
}

// Protects (defect e): every oversized body is answered 413 — a declared Content-Length over
// the limit before the body is read, a chunked one once it passes the limit — and
// `Expect: 100-continue` is answered (202 after 100 Continue; 413 without sending the body).
// Before: the connection was closed without an answer above about twice the limit, and curl
// waited a second for a 100 Continue that never came.
TEST_F(WebformE2eTest, OversizedBodiesAnswered) {
  Webform webform(broker_.bootstrap(), {{"WEBFORM_MAX_BODY_BYTES", "2048"}});
  std::string file = "/tmp/" + testing::UniqueName("e2e-body");
  std::string json_file = file + ".json";
  {
    std::ofstream big(file);
    big << "{\"email\":\"big@example.fr\",\"message\":\"" << std::string(3 << 20, 'x') << "\"}";
    std::ofstream small(json_file);
    small << R"({"email":"expect@example.fr","message":"hi"})";
  }
  auto curl = [&](const std::string& args) {
    return testing::Shell(
        "curl -s -o /dev/null -w '%{http_code} %{size_upload} %{time_total}' --max-time 30 "
        "-X POST -H 'Content-Type: application/json' " +
        args + " " + ShellQuote(webform.Url("/v1/forms/contact/submissions")));
  };
  auto field = [](const std::string& output, int index) {
    std::istringstream in(output);
    std::string value;
    for (int i = 0; i <= index; ++i) {
      in >> value;
    }
    return value;
  };
  // A declared Content-Length of 100 MB, of which the client sends one byte: answered at once.
  std::string declared = curl("-H 'Expect:' -H 'Content-Length: 100000000' --data-binary x");
  EXPECT_EQ(field(declared, 0), "413") << declared;
  // 3 MB sent without waiting: answered 413 before the server read it all.
  std::string sent = curl("-H 'Expect:' --data-binary @" + file);
  EXPECT_EQ(field(sent, 0), "413") << sent;
  // Chunked, no declared length.
  std::string chunked = curl("-H 'Expect:' -H 'Transfer-Encoding: chunked' --data-binary @" + file);
  EXPECT_EQ(field(chunked, 0), "413") << chunked;
  // Expect: 100-continue, small: 100 Continue at once (curl would wait 1 s without it), then 202.
  std::string expect_small = curl("-H 'Expect: 100-continue' --data-binary @" + json_file);
  EXPECT_EQ(field(expect_small, 0), "202") << expect_small;
  EXPECT_LT(std::stod(field(expect_small, 2)), 0.9) << expect_small;
  // Expect: 100-continue, oversized: the final 413, and curl sends none of the body.
  std::string expect_big = curl("-H 'Expect: 100-continue' --data-binary @" + file);
  EXPECT_EQ(field(expect_big, 0), "413") << expect_big;
  EXPECT_EQ(field(expect_big, 1), "0") << expect_big;
  std::remove(file.c_str());
  std::remove(json_file.c_str());
  EXPECT_EQ(webform.PostJson(R"({"email":"after@example.fr"})").status, 202);
}

// Protects (defect h): the public port serves only the form API; health, readiness and
// metrics are on the operations port.
TEST_F(WebformE2eTest, OperationsOnTheirOwnPort) {
  Webform webform(broker_.bootstrap());
  EXPECT_EQ(webform.Get("/healthz").status, 404);
  EXPECT_EQ(webform.Get("/readyz").status, 404);
  EXPECT_EQ(webform.Get("/metrics").status, 404);
  EXPECT_EQ(webform.Ops("/healthz").status, 200);
  EXPECT_EQ(webform.Ops("/readyz").status, 200);
  CurlResult metrics = webform.Ops("/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_THAT(metrics.body, HasSubstr("http_connections_open"));
  EXPECT_THAT(metrics.body, HasSubstr("webform_redis_pending"));
}

// Protects (defect d): an Idempotency-Key reused with other content is 422
// idempotency_key_reused (as Stripe answers), not a 202 crm-core then drops.
TEST_F(WebformE2eTest, IdempotencyKeyReusedIs422) {
  Webform webform(broker_.bootstrap());
  std::string key = "-H 'Idempotency-Key: " + testing::UniqueName("order") + "'";
  CurlResult first = webform.PostJson(R"({"email":"first@example.fr"})", key);
  ASSERT_EQ(first.status, 202);
  CurlResult retry = webform.PostJson(R"({"email":"first@example.fr"})", key);
  ASSERT_EQ(retry.status, 202);
  EXPECT_EQ(first.Json()["event_id"], retry.Json()["event_id"]);
  CurlResult other = webform.PostJson(R"({"email":"second@example.fr"})", key);
  EXPECT_EQ(other.status, 422);
  EXPECT_EQ(other.Json()["error"], "idempotency_key_reused");
}

// Protects (defect l): a form posted as ISO-8859-1 (older French sites) is accepted and its
// text reaches Kafka as UTF-8.
TEST_F(WebformE2eTest, Latin1FormAccepted) {
  Webform webform(broker_.bootstrap());
  CurlResult latin = webform.Curl(
      "-X POST -H 'Content-Type: application/x-www-form-urlencoded; charset=ISO-8859-1' "
      "--data-binary 'email=latin1%40example.fr&name=H%E9l%E8ne&city=Besan%E7on'",
      "/v1/forms/contact/submissions");
  ASSERT_EQ(latin.status, 202) << latin.body;
  auto messages = ReadInbound(broker_.bootstrap(), 1, std::chrono::seconds(30));
  InboundEvent event;
  ASSERT_NE(FindEvent(messages, latin.Json()["event_id"], &event), nullptr);
  EXPECT_EQ(event.person().first_name(), "H\xc3\xa9l\xc3\xa8ne");
  EXPECT_EQ(event.person().city(), "Besan\xc3\xa7on");
}

// Protects (defect m): a plain HTML form's visitor is redirected (303) to the form's pages; a
// form without pages shows a small page in the visitor's language; API clients keep JSON.
TEST_F(WebformE2eTest, BrowserNavigationGetsRedirectOrPage) {
  std::string path = testing::BuildDir() + "/test-logs/" + testing::UniqueName("forms") + ".json";
  std::ofstream(path) << R"({"forms": {"contact": {"success_url": "https://shop.example/merci",
      "error_url": "https://shop.example/erreur"}, "plain": {}}})";
  Webform webform(broker_.bootstrap(), {{"WEBFORM_FORMS_FILE", path}});
  std::string navigate =
      "-H 'Accept: text/html,application/xhtml+xml' -H 'Content-Type: "
      "application/x-www-form-urlencoded' ";
  CurlResult ok = webform.Curl("-X POST " + navigate + "--data-binary 'email=nav%40example.fr'",
                               "/v1/forms/contact/submissions");
  EXPECT_EQ(ok.status, 303);
  EXPECT_THAT(ok.headers, HasSubstr("Location: https://shop.example/merci"));
  CurlResult bad = webform.Curl("-X POST " + navigate + "--data-binary 'email=nope'",
                                "/v1/forms/contact/submissions");
  EXPECT_EQ(bad.status, 303);
  EXPECT_THAT(bad.headers, HasSubstr("Location: https://shop.example/erreur?error=invalid_fields"));
  CurlResult page = webform.Curl("-X POST " + navigate +
                                     "-H 'Accept-Language: fr-FR,fr;q=0.9' --data-binary "
                                     "'email=nav2%40example.fr'",
                                 "/v1/forms/plain/submissions");
  EXPECT_EQ(page.status, 202);
  EXPECT_THAT(page.headers, HasSubstr("Content-Type: text/html"));
  EXPECT_THAT(page.body, HasSubstr("Merci"));
  CurlResult api = webform.PostJson(R"({"email":"api@example.fr"})");
  EXPECT_EQ(api.status, 202);
  EXPECT_TRUE(api.Json().contains("event_id"));
}

// Protects (defect f): behind a trusted proxy the client is the rightmost untrusted
// X-Forwarded-For entry across headers; garbage gives the peer, never the garbage.
TEST_F(WebformE2eTest, ClientIpBehindTrustedProxy) {
  Webform webform(broker_.bootstrap(), {{"WEBFORM_TRUSTED_PROXIES", "127.0.0.0/8"}});
  CurlResult spoofed =
      webform.PostJson(R"({"email":"xff1@example.fr"})",
                       "-H 'X-Forwarded-For: 6.6.6.6' -H 'X-Forwarded-For: 198.51.100.4'");
  ASSERT_EQ(spoofed.status, 202);
  CurlResult garbage =
      webform.PostJson(R"({"email":"xff2@example.fr"})", "-H 'X-Forwarded-For: 1.2.3.4:5678'");
  ASSERT_EQ(garbage.status, 202);
  auto messages = ReadInbound(broker_.bootstrap(), 2, std::chrono::seconds(30));
  InboundEvent event;
  ASSERT_NE(FindEvent(messages, spoofed.Json()["event_id"], &event), nullptr);
  EXPECT_EQ(event.source().client_ip(), "198.51.100.4");
  ASSERT_NE(FindEvent(messages, garbage.Json()["event_id"], &event), nullptr);
  EXPECT_EQ(event.source().client_ip(), "127.0.0.1");
}

// Protects: with a forms file, unknown forms are 404, origins are enforced per form, and the
// CORS preflight answers 204 with the allowed origin.
TEST_F(WebformE2eTest, FormsFileAndCors) {
  std::string path = testing::BuildDir() + "/test-logs/" + testing::UniqueName("forms") + ".json";
  std::ofstream(path) << R"({"forms": {"contact": {"allowed_origins": ["https://shop.example"]}}})";
  Webform webform(broker_.bootstrap(), {{"WEBFORM_FORMS_FILE", path}});
  std::string body = R"({"email":"cors@example.fr"})";
  EXPECT_EQ(webform.PostJson(body, "", "unknown").status, 404);
  EXPECT_EQ(webform.PostJson(body, "-H 'Origin: https://evil.example'").status, 403);
  CurlResult allowed = webform.PostJson(body, "-H 'Origin: https://shop.example'");
  EXPECT_EQ(allowed.status, 202);
  EXPECT_THAT(allowed.headers, HasSubstr("Access-Control-Allow-Origin: https://shop.example"));
  CurlResult preflight = webform.Curl(
      "-X OPTIONS -H 'Origin: https://shop.example' -H 'Access-Control-Request-Method: POST'",
      "/v1/forms/contact/submissions");
  EXPECT_EQ(preflight.status, 204);
  EXPECT_THAT(preflight.headers, HasSubstr("Access-Control-Allow-Origin: https://shop.example"));
  EXPECT_THAT(preflight.headers, HasSubstr("Access-Control-Allow-Methods: POST"));
  EXPECT_THAT(preflight.headers, HasSubstr("Idempotency-Key"));
  EXPECT_THAT(preflight.headers, HasSubstr("Access-Control-Max-Age: 600"));
  EXPECT_THAT(preflight.headers, HasSubstr("Vary: Origin"));
  EXPECT_THAT(allowed.headers, HasSubstr("Vary: Origin"));
  CurlResult forbidden = webform.PostJson(body, "-H 'Origin: https://evil.example'");
  EXPECT_EQ(forbidden.Json()["error"], "origin_not_allowed");
  EXPECT_EQ(webform.PostJson(body, "", "unknown").Json()["error"], "unknown_form");
}

// Protects: the per-IP rate limit lets exactly its quota of a minute through and answers the
// next request 429 rate_limited with Retry-After (seconds to the next minute, 1 to 60).
TEST_F(WebformE2eTest, RateLimit) {
  constexpr int kLimit = 3;
  // The quota is per clock minute (webform-ingest keys its counter by the minute of the epoch on
  // this machine's clock). A run that a minute boundary cuts counts in two windows and proves
  // nothing: it is redone from fresh counters (a new webform-ingest, a new Redis prefix). A run
  // takes well under a minute, so a second boundary cannot cut the next run too.
  auto minute = [] {
    return std::chrono::duration_cast<std::chrono::minutes>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  std::vector<CurlResult> answers;
  bool one_window = false;
  for (int run = 0; run < 3 && !one_window; ++run) {
    Webform webform(broker_.bootstrap(),
                    {{"WEBFORM_RATE_LIMIT_PER_MINUTE", std::to_string(kLimit)}});
    answers.clear();
    auto first_minute = minute();
    for (int i = 0; i <= kLimit; ++i) {
      answers.push_back(
          webform.PostJson(R"({"email":"r)" + std::to_string(i) + R"(@example.fr"})"));
    }
    one_window = minute() == first_minute;
  }
  ASSERT_TRUE(one_window) << "every run was cut by a minute boundary";
  for (int i = 0; i < kLimit; ++i) {
    EXPECT_EQ(answers[static_cast<size_t>(i)].status, 202) << "post " << i + 1 << " of the quota";
  }
  const CurlResult& over = answers[kLimit];
  EXPECT_EQ(over.status, 429) << "post " << kLimit + 1 << ", one over the quota";
  EXPECT_EQ(over.Json()["error"], "rate_limited");
  const std::string retry_after = "Retry-After: ";
  auto at = over.headers.find(retry_after);
  ASSERT_NE(at, std::string::npos) << over.headers;
  int seconds = std::atoi(over.headers.c_str() + at + retry_after.size());
  EXPECT_GE(seconds, 1) << over.headers;
  EXPECT_LE(seconds, 60) << over.headers;
}

// Protects: a filled honeypot gets a 202 and an event id, and nothing reaches Kafka.
TEST_F(WebformE2eTest, HoneypotNotPublished) {
  Webform webform(broker_.bootstrap());
  // Same identity, so same key and partition: had the spam been published, it would be read
  // before the genuine submission that follows it.
  CurlResult spam = webform.PostJson(R"({"email":"human@example.fr","_hp":"http://spam"})");
  ASSERT_EQ(spam.status, 202);
  ASSERT_TRUE(spam.Json().contains("event_id"));
  CurlResult real = webform.PostJson(R"({"email":"human@example.fr"})");
  ASSERT_EQ(real.status, 202);
  // The whole topic as it stands after the genuine 202 (which comes once Kafka has the event).
  auto messages = testing::ReadTopic(broker_.bootstrap(), kafka::kInboundTopic, /*partitions=*/6,
                                     std::chrono::seconds(30));
  InboundEvent event;
  ASSERT_NE(FindEvent(messages, real.Json()["event_id"], &event), nullptr);
  EXPECT_EQ(FindEvent(messages, spam.Json()["event_id"], &event), nullptr);
  EXPECT_EQ(messages.size(), 1u);
  EXPECT_EQ(testing::MetricValue(webform.Ops("/metrics").body,
                                 R"(webform_spam_total{reason="honeypot"})"),
            1.0);
}

// Protects: when Kafka cannot take the event, the answer is 503 with Retry-After (never 202),
// and readiness reports it.
TEST_F(WebformE2eTest, KafkaDownIs503) {
  Webform webform(broker_.bootstrap());
  broker_.Kill();
  CurlResult down = webform.PostJson(R"({"email":"down@example.fr"})");
  EXPECT_EQ(down.status, 503);
  EXPECT_THAT(down.headers, HasSubstr("Retry-After: "));
  // Readiness is checked off the HTTP threads, every 2 s: it turns within a few checks.
  EXPECT_TRUE(testing::WaitFor([&] { return webform.Ops("/readyz").status == 503; },
                               std::chrono::seconds(30)));
  EXPECT_EQ(testing::MetricValue(webform.Ops("/metrics").body,
                                 R"(webform_kafka_failures_total{class="retryable"})"),
            1.0);
}

// Protects: SIGTERM stops the service cleanly (exit 0) after flushing the producer.
TEST_F(WebformE2eTest, SigtermExitsZero) {
  Webform webform(broker_.bootstrap());
  ASSERT_EQ(webform.PostJson(R"({"email":"last@example.fr"})").status, 202);
  webform.process().Signal(SIGTERM);
  int status = webform.process().Wait(std::chrono::seconds(30));
  ASSERT_NE(status, -1) << "still running after SIGTERM";
  EXPECT_TRUE(WIFEXITED(status)) << webform.process().Log();
  EXPECT_EQ(WEXITSTATUS(status), 0) << webform.process().Log();
}

// Protects: start-up fails fast (non-zero exit) on bad configuration.
TEST_F(WebformE2eTest, BadConfigurationExitsNonZero) {
  testing::Process bad({testing::BuildDir() + "/services/webform-ingest/webform-ingest"},
                       {{"WEBFORM_KAFKA_BROKERS", broker_.bootstrap()},
                        {"WEBFORM_DEFAULT_REGION", "XX"},
                        {"WEBFORM_TYPO", "1"}},
                       "webform-bad-config");
  int status = bad.Wait(std::chrono::seconds(30));
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2);
  EXPECT_THAT(bad.Log(), HasSubstr("WEBFORM_DEFAULT_REGION"));
  EXPECT_THAT(bad.Log(), HasSubstr("WEBFORM_TYPO"));
}

}  // namespace
}  // namespace leadflow
