#include "telephony-ingest/service.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <future>
#include <nlohmann/json.hpp>
#include <sstream>

#include "absl/strings/str_replace.h"
#include "ingest/form_params.h"
#include "ingest/signature.h"
#include "telephony-ingest/redis_call_store.h"
#include "testing/testing.h"

namespace leadflow::telephony {
namespace {

// The default logger writes into Text() for the object's life, and is put back however the test
// ends: an ASSERT's early return left it writing into a destroyed stream, and the next test that
// logged crashed.
class CapturedLog {
 public:
  CapturedLog() : previous_(spdlog::default_logger()) {
    spdlog::set_default_logger(std::make_shared<spdlog::logger>(
        "test", std::make_shared<spdlog::sinks::ostream_sink_mt>(out_)));
  }
  ~CapturedLog() { spdlog::set_default_logger(previous_); }
  CapturedLog(const CapturedLog&) = delete;
  CapturedLog& operator=(const CapturedLog&) = delete;
  std::string Text() {
    spdlog::default_logger()->flush();
    return out_.str();
  }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> previous_;
};

using ::testing::HasSubstr;

const Clock::time_point kNow = Clock::time_point(std::chrono::seconds(1700000000));
constexpr char kSecret[] = "generic-webhook-secret";

class FakePublisher : public Publisher {
 public:
  void Publish(const std::string& key, const std::string& value,
               const std::vector<kafka::Header>& headers, Done done) override {
    if (hold) {
      // The broker has not answered yet: the test acknowledges (or refuses) later.
      held.push_back({value, std::move(done)});
      return;
    }
    kafka::DeliveryResult result;
    result.status = status;
    result.error_class = status.ok() ? kafka::ErrorClass::kNone : kafka::ErrorClass::kRetryable;
    if (status.ok()) {
      events::v1::InboundEvent event;
      event.ParseFromString(value);
      published.push_back({key, event});
    }
    done(result);
  }
  /// Answers the deliveries held so far with `with`.
  void Acknowledge(absl::Status with) {
    auto pending = std::move(held);
    held.clear();
    for (auto& [value, done] : pending) {
      kafka::DeliveryResult result;
      result.status = with;
      result.error_class = with.ok() ? kafka::ErrorClass::kNone : kafka::ErrorClass::kRetryable;
      if (with.ok()) {
        events::v1::InboundEvent event;
        event.ParseFromString(value);
        published.push_back({event.call().call_id(), event});
      }
      done(result);
    }
  }
  absl::Status status;
  bool hold = false;
  std::vector<std::pair<std::string, Done>> held;
  std::vector<std::pair<std::string, events::v1::InboundEvent>> published;
};

std::string Sign(const std::string& timestamp, const std::string& body,
                 const std::string& secret = kSecret) {
  return "sha256=" + ingest::HexEncode(ingest::Hmac(ingest::HmacAlgorithm::kSha256, secret,
                                                    timestamp + "." + body));
}

class ServiceTest : public ::testing::Test {
 protected:
  ServiceTest() {
    options_.webhook_secret = kSecret;
    options_.twilio_auth_token = "twilio-token";
    options_.twilio_public_url = "https://leads.example/telephony";
    options_.twilio_sip_domains = {"example.sip.twilio.com"};
    // Every report decides at once unless a test sets a settle window.
    options_.calls.settle_window = std::chrono::milliseconds(0);
  }
  TelephonyService& Service() {
    if (!service_) {
      service_ = std::make_unique<TelephonyService>(options_, &publisher_, &registry_,
                                                    [this] { return now_; });
    }
    return *service_;
  }
  http::Response Call(void (TelephonyService::*handler)(const http::Request&,
                                                        TelephonyService::Reply),
                      http::Request request) {
    auto answer = Start(Service(), handler, request);
    EXPECT_TRUE(answer->has_value());
    return answer->value_or(http::Response{});
  }
  /// Sends `request` without waiting: the answer appears when the service gives it.
  using Pending = std::shared_ptr<std::optional<http::Response>>;
  /// Returns once the call store has decided on the request (Redis answers on its own
  /// thread): the request is then answered, parked, or waiting for Kafka.
  Pending Start(TelephonyService& service,
                void (TelephonyService::*handler)(const http::Request&, TelephonyService::Reply),
                const http::Request& request) {
    auto answer = StartNoWait(service, handler, request);
    EXPECT_TRUE(testing::WaitFor([&service] { return service.store_waiting() == 0; },
                                 std::chrono::seconds(10)))
        << "the call store never answered";
    return answer;
  }
  /// Sends `request` and returns at once, the call store maybe still working on it.
  Pending StartNoWait(TelephonyService& service,
                      void (TelephonyService::*handler)(const http::Request&,
                                                        TelephonyService::Reply),
                      const http::Request& request) {
    auto answer = std::make_shared<std::optional<http::Response>>();
    (service.*handler)(request, [answer](http::Response response) {
      EXPECT_FALSE(answer->has_value()) << "answered twice";
      *answer = std::move(response);
    });
    return answer;
  }
  Pending StartGeneric(const std::string& body, TelephonyService* service = nullptr) {
    return Start(service ? *service : Service(), &TelephonyService::HandleGeneric,
                 GenericRequest(body));
  }
  Pending StartTwilio(const std::string& body, TelephonyService* service = nullptr) {
    return Start(service ? *service : Service(), &TelephonyService::HandleTwilioVoice,
                 TwilioRequest("/v1/twilio/voice", body));
  }
  http::Response PostGeneric(const std::string& body, std::optional<std::string> signature = {},
                             std::string timestamp = "1700000000",
                             std::string content_type = "application/json") {
    return Call(&TelephonyService::HandleGeneric,
                GenericRequest(body, signature, timestamp, content_type));
  }
  http::Request GenericRequest(const std::string& body, std::optional<std::string> signature = {},
                               std::string timestamp = "1700000000",
                               std::string content_type = "application/json") {
    http::Request request;
    request.method = "POST";
    request.target = request.path = "/v1/calls/events";
    request.body = body;
    request.remote_address = "127.0.0.1";
    request.headers = {{"Content-Type", content_type}, {"X-LeadFlow-Timestamp", timestamp}};
    request.headers.push_back({"X-LeadFlow-Signature", signature.value_or(Sign(timestamp, body))});
    return request;
  }
  http::Response PostTwilio(const std::string& path, const std::string& body,
                            std::optional<std::string> signature = {}) {
    return Call(&TelephonyService::HandleTwilioVoice, TwilioRequest(path, body, signature));
  }
  http::Request TwilioRequest(const std::string& path, const std::string& body,
                              std::optional<std::string> signature = {}) {
    http::Request request;
    request.method = "POST";
    request.target = request.path = path;
    request.body = body;
    auto params = ingest::ParseFormParams(body);
    std::string data = options_.twilio_public_url + path;
    auto sorted = params.ok() ? *params : ingest::FormParams{};
    std::stable_sort(sorted.begin(), sorted.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    for (const auto& [name, value] : sorted) {
      data += name + value;
    }
    request.headers = {{"Content-Type", "application/x-www-form-urlencoded"},
                       {"X-Twilio-Signature",
                        signature.value_or(ingest::Base64Encode(ingest::Hmac(
                            ingest::HmacAlgorithm::kSha1, options_.twilio_auth_token, data)))}};
    return request;
  }
  static nlohmann::json Json(const http::Response& response) {
    return nlohmann::json::parse(response.body, nullptr, false);
  }

  Clock::time_point now_ = kNow;
  ServiceOptions options_;
  FakePublisher publisher_;
  metrics::Registry registry_;
  std::unique_ptr<TelephonyService> service_;
};

const char kMissed[] =
    R"({"call_id":"c-42","direction":"inbound","from":"+33612345678","to":"+33187654321",)"
    R"("line":"sales","state":"missed","started_at":"2023-11-14T22:13:00Z",)"
    R"("ended_at":"2023-11-14T22:13:20Z"})";

// Protects: the legs of a ring group or a transfer reported under one call_id, each naming
// the extension it rang as our side of the call (`to` of an inbound call, `from` of an
// outbound one), are one call: a leg reported after the call was settled is answered with the
// settled call, not refused 409 call_id_reused as another call ("201" and "202" read as two
// parties). So are the line's number and an extension it rang, in either order (a PBX naming
// the number dialled, then the extension that answered: its retry, or its late recording, is
// the call's). Another caller, or another line's number, is still another call.
TEST_F(ServiceTest, RingGroupLegsAfterTheCallAreNotAReusedId) {
  auto answered =
      PostGeneric(R"({"call_id":"rg-1","direction":"inbound","from":"+33612345720","to":"202",)"
                  R"("state":"ended","duration":42})");
  ASSERT_EQ(answered.status, 202) << answered.body;
  auto leg =
      PostGeneric(R"({"call_id":"rg-1","direction":"inbound","from":"+33612345720","to":"203",)"
                  R"("state":"missed"})");
  EXPECT_EQ(leg.status, 202) << leg.body;
  EXPECT_EQ(Json(leg).value("outcome", ""), "answered") << leg.body;
  auto other =
      PostGeneric(R"({"call_id":"rg-1","direction":"inbound","from":"+33699999999","to":"203",)"
                  R"("state":"missed"})");
  EXPECT_EQ(other.status, 409) << other.body;
  auto line = PostGeneric(
      R"({"call_id":"rg-1","direction":"inbound","from":"+33612345720","to":"+33187650000",)"
      R"("state":"missed"})");
  EXPECT_EQ(line.status, 202) << line.body;  // the line that rang 202
  // An extension and something that is no phone number (a SIP user elsewhere): two parties.
  auto sip_user = PostGeneric(R"({"call_id":"rg-1","direction":"inbound","from":"+33612345720",)"
                              R"("to":"sip:sales@customer.example","state":"missed"})");
  EXPECT_EQ(sip_user.status, 409) << sip_user.body;
  // The line's number first, then the extension: a retry of the final report is the call's,
  // and so is its recording, published as the call's.
  ASSERT_EQ(PostGeneric(R"({"call_id":"rg-3","direction":"inbound","from":"+33612345722",)"
                        R"("to":"+33187654321","state":"ringing"})")
                .status,
            202);
  const std::string ended =
      R"({"call_id":"rg-3","direction":"inbound","from":"+33612345722","to":"201",)"
      R"("state":"ended","duration":33)";
  ASSERT_EQ(PostGeneric(ended + "}").status, 202);
  EXPECT_EQ(PostGeneric(ended + "}").status, 202);
  const size_t before = publisher_.published.size();
  EXPECT_EQ(
      PostGeneric(ended + R"(,"recording_url":"https://pbx.example.com/rec/rg-3.wav"})").status,
      202);
  ASSERT_EQ(publisher_.published.size(), before + 1);
  EXPECT_EQ(publisher_.published.back().second.call().recording_url(),
            "https://pbx.example.com/rec/rg-3.wav");
  // Another line's number after the call's: another call.
  auto other_line = PostGeneric(
      R"({"call_id":"rg-3","direction":"inbound","from":"+33612345722","to":"+33187650000",)"
      R"("state":"missed"})");
  EXPECT_EQ(other_line.status, 409) << other_line.body;
  // Outbound: the extension that dialled is our side.
  ASSERT_EQ(PostGeneric(R"({"call_id":"rg-2","direction":"outbound","from":"201",)"
                        R"("to":"+33612345721","state":"ended","duration":30})")
                .status,
            202);
  EXPECT_EQ(PostGeneric(R"({"call_id":"rg-2","direction":"outbound","from":"202",)"
                        R"("to":"+33612345721","state":"ended","duration":31})")
                .status,
            202);
  EXPECT_EQ(testing::MetricValue(registry_.Render(), "telephony_call_id_reused_total").value_or(-1),
            3);
}

// Protects: the answer to a settled call, written without a tree, is the bytes nlohmann dumps
// (keys sorted, its escapes) — with a call id of quotes and backslashes, with a dropped field
// (through the tree), and for a late intermediate state.
TEST_F(ServiceTest, PublishedAnswersAreTheJsonDump) {
  const std::string quoted = R"(q\"b\\1)";  // q"b\1 on the wire
  auto plain = PostGeneric(
      R"({"call_id":")" + quoted +
      R"(","direction":"inbound","from":"+33612345678","state":"ended","duration":42})");
  ASSERT_EQ(plain.status, 202) << plain.body;
  EXPECT_EQ(plain.body, Json(plain).dump());
  EXPECT_EQ(Json(plain)["call_id"], "generic:q\"b\\1");
  EXPECT_EQ(Json(plain)["status"], "published");
  auto dropped =
      PostGeneric(R"({"call_id":"d-1","direction":"inbound","from":"+33612345678","state":"ended",)"
                  R"("duration":"soon"})");
  ASSERT_EQ(dropped.status, 202) << dropped.body;
  EXPECT_EQ(dropped.body, Json(dropped).dump());
  EXPECT_TRUE(Json(dropped).contains("dropped")) << dropped.body;
  auto late = PostGeneric(R"({"call_id":"d-1","direction":"inbound","state":"ringing"})");
  ASSERT_EQ(late.status, 200) << late.body;
  EXPECT_EQ(late.body, Json(late).dump());
  EXPECT_EQ(Json(late)["status"], "already_published");
}

// Protects: a report whose operator name is Latin-1 (a PBX configured in ISO-8859-1) is
// published and answered 202, the name dropped and named in the answer, where the whole body was
// refused 400 malformed_json, which the PBX does not retry: the call was lost. Its retry is the
// same call (one event id).
TEST_F(ServiceTest, ReportWithLatin1OperatorKeepsItsCall) {
  const std::string body =
      "{\"call_id\":\"l1-1\",\"direction\":\"inbound\",\"from\":\"+33612345678\","
      "\"state\":\"ended\",\"duration\":42,\"operator\":\"H\xe9l\xe8ne\"}";
  auto answer = PostGeneric(body);
  ASSERT_EQ(answer.status, 202) << answer.body;
  EXPECT_EQ(Json(answer)["dropped"]["operator"], "must be UTF-8 text") << answer.body;
  ASSERT_EQ(publisher_.published.size(), 1u);
  const CallEvent& call = publisher_.published[0].second.call();
  EXPECT_EQ(call.outcome(), CallEvent::ANSWERED);
  EXPECT_EQ(call.operator_name(), "");
  EXPECT_EQ(publisher_.published[0].first, "+33612345678");
  auto retry = PostGeneric(body);
  ASSERT_EQ(retry.status, 202) << retry.body;
  EXPECT_EQ(Json(retry)["event_id"], Json(answer)["event_id"]);
  EXPECT_EQ(PostGeneric("{\"call_id\":\xe9}").status, 400);
}

// Protects: a generic report of a call from one internal extension to another (a colleague's
// call) is answered 200 "ignored", counted, and publishes nothing — as the Asterisk client
// drops such calls — while an extension calling a customer's number is still a call.
TEST_F(ServiceTest, GenericInternalCallIgnored) {
  auto internal = PostGeneric(
      R"({"call_id":"int-1","direction":"inbound","from":"101","to":"102","state":"missed"})");
  ASSERT_EQ(internal.status, 200) << internal.body;
  EXPECT_EQ(Json(internal)["status"], "ignored");
  EXPECT_EQ(Json(internal)["call_id"], "generic:int-1");
  now_ += std::chrono::seconds(60);
  Service().Tick();
  EXPECT_TRUE(publisher_.published.empty());
  EXPECT_THAT(registry_.Render(), HasSubstr("telephony_ignored_total{reason=\"internal_call\"} 1"));
  // Six digits are more than an extension (TELEPHONY_AMI_EXTENSION_MAX_DIGITS, 5).
  auto outside = PostGeneric(R"({"call_id":"int-2","direction":"outbound","from":"101",)"
                             R"("to":"0612345678","state":"ended","duration":30})");
  ASSERT_EQ(outside.status, 202) << outside.body;
  ASSERT_EQ(publisher_.published.size(), 1u);
  EXPECT_EQ(publisher_.published[0].second.call().outcome(), CallEvent::ANSWERED);
}

// Protects: extensions written as SIP URIs, as SIP PBXs (FreeSWITCH, a PJSIP dialplan, Kamailio)
// report them ("sip:201@pbx.local"), are extensions as their user part, the rule the numbers
// follow: a colleague's call is ignored, not listed among the unidentified calls; a feature
// code is one; the legs of a ring group reported after the call are the call, not 409
// call_id_reused. A SIP URI whose user is a customer's number is still a call.
TEST_F(ServiceTest, ExtensionsAsSipUris) {
  auto internal =
      PostGeneric(R"({"call_id":"sip-int-1","direction":"inbound",)"
                  R"("from":"sip:201@pbx.local","to":"sips:202@pbx.local;transport=tls",)"
                  R"("state":"ended","duration":30})");
  ASSERT_EQ(internal.status, 200) << internal.body;
  EXPECT_EQ(Json(internal)["status"], "ignored");
  auto feature = PostGeneric(R"({"call_id":"sip-fc-1","direction":"outbound",)"
                             R"("from":"sip:201@pbx.local","to":"sip:*97@pbx.local",)"
                             R"("state":"ended","duration":5})");
  ASSERT_EQ(feature.status, 200) << feature.body;
  EXPECT_EQ(Json(feature)["status"], "ignored");
  EXPECT_TRUE(publisher_.published.empty());

  ASSERT_EQ(PostGeneric(R"({"call_id":"sip-rg-1","direction":"inbound","from":"+33612345720",)"
                        R"("to":"sip:202@pbx.local","state":"ended","duration":42})")
                .status,
            202);
  auto leg = PostGeneric(R"({"call_id":"sip-rg-1","direction":"inbound","from":"+33612345720",)"
                         R"("to":"sip:203@pbx.local","state":"missed"})");
  EXPECT_EQ(leg.status, 202) << leg.body;
  EXPECT_EQ(Json(leg).value("outcome", ""), "answered") << leg.body;

  auto customer = PostGeneric(R"({"call_id":"sip-out-1","direction":"outbound",)"
                              R"("from":"sip:201@pbx.local","to":"sip:0612345678@pbx.local",)"
                              R"("state":"ended","duration":30})");
  ASSERT_EQ(customer.status, 202) << customer.body;
  ASSERT_EQ(publisher_.published.size(), 2u);
  EXPECT_EQ(publisher_.published[1].first, "+33612345678");

  // A short numeric user on another host is a customer's own PBX calling, not a colleague: the
  // call is published (among the unidentified calls), never dropped as internal.
  auto outside = PostGeneric(R"({"call_id":"sip-ext-1","direction":"inbound",)"
                             R"("from":"sip:1234@customer.example","to":"sip:201@pbx.local",)"
                             R"("state":"ended","duration":30})");
  ASSERT_EQ(outside.status, 202) << outside.body;
  EXPECT_EQ(Json(outside)["status"], "published");
  ASSERT_EQ(publisher_.published.size(), 3u);
  auto code = PostGeneric(R"({"call_id":"sip-fc-2","direction":"outbound",)"
                          R"("from":"sip:201@pbx.local","to":"sip:*97@elsewhere.example",)"
                          R"("state":"ended","duration":5})");
  ASSERT_EQ(code.status, 202) << code.body;
  EXPECT_EQ(publisher_.published.size(), 4u);
}

// Protects: an extension dialling a feature code (*97 voicemail, *8 pickup, #72) through the
// generic API is the PBX's own service, not an outbound call to nobody: 200 "ignored", counted
// as feature_code, nothing published (it used to land among the unidentified calls and in
// crm_calls_total{direction="outbound",outcome="missed"}).
TEST_F(ServiceTest, GenericFeatureCodeIgnored) {
  for (const char* code : {"*97", "*8", "#72"}) {
    auto response = PostGeneric(absl::StrCat(R"({"call_id":"fc-)", code + 1,
                                             R"(","direction":"outbound","from":"201","to":")",
                                             code, R"(","state":"missed"})"));
    ASSERT_EQ(response.status, 200) << response.body;
    EXPECT_EQ(Json(response)["status"], "ignored");
  }
  now_ += std::chrono::seconds(60);
  Service().Tick();
  EXPECT_TRUE(publisher_.published.empty());
  EXPECT_THAT(registry_.Render(), HasSubstr("telephony_ignored_total{reason=\"feature_code\"} 3"));
}

// Protects: a signed final state is published (key, identity, call payload), then 202 with the
// event id; a provider retrying it gets the same event id.
TEST_F(ServiceTest, GenericMissedCallPublishedThenAnswered) {
  auto response = PostGeneric(kMissed);
  ASSERT_EQ(response.status, 202) << response.body;
  ASSERT_EQ(publisher_.published.size(), 1u);
  const auto& [key, event] = publisher_.published[0];
  EXPECT_EQ(key, "+33612345678");
  EXPECT_EQ(event.event_id(), Json(response)["event_id"]);
  EXPECT_EQ(event.call().outcome(), CallEvent::MISSED);
  EXPECT_EQ(event.call().call_id(), "generic:c-42");
  EXPECT_EQ(event.call().line(), "sales");
  EXPECT_EQ(event.call().started_at().seconds(), 1699999980);  // 2023-11-14T22:13:00Z
  EXPECT_EQ(event.call().ended_at().seconds(), 1700000000);
  EXPECT_EQ(event.source().client_ip(), "127.0.0.1");
  auto again = PostGeneric(kMissed);
  EXPECT_EQ(again.status, 202);
  EXPECT_EQ(Json(again)["event_id"], Json(response)["event_id"]);
  EXPECT_THAT(registry_.Render(), HasSubstr("telephony_replays_total{provider=\"generic\"} 1"));
}

// Protects: intermediate states are 202 "pending" and publish nothing; the final state
// publishes one event with them folded in; a late intermediate state is 200 with the event id.
TEST_F(ServiceTest, GenericStatesFoldIntoOneEvent) {
  std::string ringing =
      R"({"call_id":"c-7","direction":"inbound","from":"0612345678","state":"ringing",)"
      R"("started_at":1699999900})";
  auto first = PostGeneric(ringing);
  EXPECT_EQ(first.status, 202);
  EXPECT_EQ(Json(first)["status"], "pending");
  auto answered = PostGeneric(
      R"({"call_id":"c-7","direction":"inbound","from":"0612345678","state":"answered",)"
      R"("answered_at":1699999910,"operator":"alice@example.fr"})");
  EXPECT_EQ(answered.status, 202);
  EXPECT_TRUE(publisher_.published.empty());
  auto ended =
      PostGeneric(R"({"call_id":"c-7","direction":"inbound","from":"0612345678","state":"ended",)"
                  R"("ended_at":1699999970,"recording_url":"https://rec.example/c-7.mp3"})");
  ASSERT_EQ(ended.status, 202) << ended.body;
  EXPECT_EQ(Json(ended)["outcome"], "answered");
  ASSERT_EQ(publisher_.published.size(), 1u);
  const CallEvent& call = publisher_.published[0].second.call();
  EXPECT_EQ(call.duration_seconds(), 60);
  EXPECT_EQ(call.operator_name(), "alice@example.fr");
  EXPECT_EQ(call.started_at().seconds(), 1699999900);
  EXPECT_EQ(publisher_.published[0].first, "+33612345678");
  auto late = PostGeneric(
      R"({"call_id":"c-7","direction":"inbound","from":"0612345678","state":"ringing"})");
  EXPECT_EQ(late.status, 200);
  EXPECT_EQ(Json(late)["event_id"], Json(ended)["event_id"]);
  EXPECT_EQ(publisher_.published.size(), 1u);
}

// Protects: a call's reports are bounded (TELEPHONY_MAX_UPDATES_PER_CALL): a provider replaying
// an intermediate state past the cap gets 422 too_many_updates (counted), and the list does not
// grow; a final state past the cap still settles the call over what is kept and itself
// (nothing accepted is lost); once settled, a replay is answered with the call and kept nowhere.
TEST_F(ServiceTest, ReportsPerCallAreBounded) {
  options_.calls.max_updates_per_call = 4;
  const std::string ringing =
      R"({"call_id":"c-cap","direction":"inbound","from":"0612345678","state":"ringing"})";
  const std::string answered =
      R"({"call_id":"c-cap","direction":"inbound","from":"0612345678","state":"answered",)"
      R"("answered_at":1699999910})";
  ASSERT_EQ(PostGeneric(ringing).status, 202);
  ASSERT_EQ(PostGeneric(answered).status, 202);
  ASSERT_EQ(PostGeneric(ringing).status, 202);
  ASSERT_EQ(PostGeneric(ringing).status, 202);
  auto refused = PostGeneric(ringing);
  EXPECT_EQ(refused.status, 422) << refused.body;
  EXPECT_EQ(Json(refused)["error"], "too_many_updates");
  EXPECT_THAT(registry_.Render(), HasSubstr("telephony_updates_refused_total 1"));
  EXPECT_TRUE(publisher_.published.empty());
  auto ended =
      PostGeneric(R"({"call_id":"c-cap","direction":"inbound","from":"0612345678","state":"ended",)"
                  R"("ended_at":1699999970})");
  ASSERT_EQ(ended.status, 202) << ended.body;
  EXPECT_EQ(Json(ended)["outcome"], "answered");
  ASSERT_EQ(publisher_.published.size(), 1u);
  EXPECT_EQ(publisher_.published[0].second.call().duration_seconds(), 60);
  auto late = PostGeneric(ringing);
  EXPECT_EQ(late.status, 200);
  EXPECT_EQ(Json(late)["event_id"], Json(ended)["event_id"]);
  EXPECT_THAT(registry_.Render(), HasSubstr("telephony_updates_refused_total 1"));
}

// Protects: unsigned, forged, stale and re-signed-with-another-key requests are 401 and
// publish nothing.
TEST_F(ServiceTest, GenericSignatureChecks) {
  EXPECT_EQ(PostGeneric(kMissed, "").status, 401);
  EXPECT_EQ(PostGeneric(kMissed, "sha256=00").status, 401);
  EXPECT_EQ(PostGeneric(kMissed, Sign("1700000000", kMissed, "another-secret-key")).status, 401);
  // Signed over another body.
  EXPECT_EQ(PostGeneric(kMissed, Sign("1700000000", "{}")).status, 401);
  // Signed correctly, but ten minutes old (the window is five).
  auto stale = PostGeneric(kMissed, std::nullopt, "1699999400");
  EXPECT_EQ(stale.status, 401);
  EXPECT_EQ(Json(stale)["error"], "stale_timestamp");
  EXPECT_EQ(PostGeneric(kMissed, std::nullopt, "17e8").status, 401);
  EXPECT_TRUE(publisher_.published.empty());
  // The bare hex form is accepted too.
  EXPECT_EQ(PostGeneric(kMissed, Sign("1700000000", kMissed).substr(7)).status, 202);
}

// Protects: the client errors of the contract: 415 for another media type, 400 for a body
// that is not a JSON object, 422 naming each bad field that refuses a report (call_id,
// direction, state); nothing published.
TEST_F(ServiceTest, GenericClientErrors) {
  EXPECT_EQ(PostGeneric(kMissed, std::nullopt, "1700000000", "text/plain").status, 415);
  EXPECT_EQ(PostGeneric("{not json").status, 400);
  EXPECT_EQ(PostGeneric("[1,2]").status, 400);
  auto invalid = PostGeneric(
      R"({"direction":"sideways","state":"exploded","from":"not a number","duration":-3,)"
      R"("started_at":"yesterday","recording_url":"ftp://x"})");
  ASSERT_EQ(invalid.status, 422);
  auto fields = Json(invalid)["fields"];
  for (const char* field : {"call_id", "direction", "state"}) {
    EXPECT_TRUE(fields.contains(field)) << field << " in " << invalid.body;
  }
  // Lenient where it costs nothing: a duration as text, Unix seconds with a fraction.
  auto lenient =
      PostGeneric(R"({"call_id":"len","direction":"inbound","from":"+33612345678","state":"ended",)"
                  R"("duration":"60","ended_at":1700000000.75})");
  EXPECT_EQ(lenient.status, 202) << lenient.body;
  EXPECT_EQ(Json(lenient)["outcome"], "answered");
  publisher_.published.clear();
  EXPECT_EQ(PostGeneric(R"({"call_id":"x","direction":"inbound","state":"exploded"})").status, 422);
  EXPECT_TRUE(publisher_.published.empty());
}

// Protects: anonymous callers are published flagged, with no identity, keyed by the call id.
TEST_F(ServiceTest, GenericAnonymousCaller) {
  auto response = PostGeneric(
      R"({"call_id":"anon-1","direction":"inbound","from":"anonymous","state":"missed"})");
  ASSERT_EQ(response.status, 202) << response.body;
  ASSERT_EQ(publisher_.published.size(), 1u);
  EXPECT_TRUE(publisher_.published[0].second.call().anonymous());
  EXPECT_EQ(publisher_.published[0].second.identities_size(), 0);
  EXPECT_EQ(publisher_.published[0].first, "generic:anon-1");
}

// Protects: the sender recorded in the event is the client behind the trusted proxies (a
// load balancer's X-Forwarded-For), and the TCP peer when the peer is not trusted.
TEST_F(ServiceTest, SenderBehindTrustedProxies) {
  options_.trusted_proxies = *ingest::TrustedProxies::Parse("10.0.0.0/8");
  http::Request request;
  request.method = "POST";
  request.target = request.path = "/v1/calls/events";
  request.body = kMissed;
  request.remote_address = "10.1.2.3";
  request.headers = {{"Content-Type", "application/json"},
                     {"X-LeadFlow-Timestamp", "1700000000"},
                     {"X-LeadFlow-Signature", Sign("1700000000", kMissed)},
                     {"X-Forwarded-For", "203.0.113.9, 10.0.0.5"},
                     {"User-Agent", "pbx-webhook/2.1"}};
  ASSERT_EQ(Call(&TelephonyService::HandleGeneric, request).status, 202);
  request.remote_address = "198.51.100.4";  // not a proxy: its header is not believed
  request.body = absl::StrReplaceAll(kMissed, {{"c-42", "c-43"}});  // another call
  request.headers[2].value = Sign("1700000000", request.body);
  ASSERT_EQ(Call(&TelephonyService::HandleGeneric, request).status, 202);
  ASSERT_EQ(publisher_.published.size(), 2u);
  EXPECT_EQ(publisher_.published[0].second.source().client_ip(), "203.0.113.9");
  EXPECT_EQ(publisher_.published[0].second.source().user_agent(), "pbx-webhook/2.1");
  EXPECT_EQ(publisher_.published[1].second.source().client_ip(), "198.51.100.4");
}

// Protects: Kafka refusing the event is 503 with Retry-After, never 2xx; the retry publishes
// the same event id once Kafka is back.
TEST_F(ServiceTest, KafkaRefusalIs503ThenRetrySucceeds) {
  publisher_.status = absl::UnavailableError("not enough replicas");
  auto refused = PostGeneric(kMissed);
  EXPECT_EQ(refused.status, 503);
  bool retry_after = false;
  for (const auto& header : refused.headers) {
    retry_after |= header.name == "Retry-After";
  }
  EXPECT_TRUE(retry_after);
  EXPECT_TRUE(publisher_.published.empty());
  publisher_.status = absl::OkStatus();
  auto retried = PostGeneric(kMissed);
  EXPECT_EQ(retried.status, 202);
  ASSERT_EQ(publisher_.published.size(), 1u);
}

const char kTwilioNoAnswer[] =
    "AccountSid=AC0000&ApiVersion=2010-04-01&CallSid=CA1111&CallStatus=no-answer"
    "&Called=%2B33187654321&Caller=%2B33612345678&Direction=inbound&From=%2B33612345678"
    "&Timestamp=Tue%2C+14+Nov+2023+22%3A13%3A20+%2B0000&To=%2B33187654321&CallbackSource="
    "call-progress-events&SequenceNumber=0";

// Protects: a Twilio status callback signed over the public URL is folded and published, then
// answered with TwiML; the same callback again gives the same event.
TEST_F(ServiceTest, TwilioNoAnswerIsAMissedCall) {
  auto response = PostTwilio("/v1/twilio/voice", kTwilioNoAnswer);
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_THAT(response.body, HasSubstr("<Response/>"));
  ASSERT_EQ(publisher_.published.size(), 1u);
  const events::v1::InboundEvent event = publisher_.published[0].second;
  EXPECT_EQ(event.call().outcome(), CallEvent::MISSED);
  EXPECT_EQ(event.call().call_id(), "twilio:CA1111");
  EXPECT_EQ(event.call().line(), "+33187654321");
  EXPECT_EQ(event.call().provider_status(), "no-answer");
  EXPECT_EQ(event.call().ended_at().seconds(), 1700000000);
  EXPECT_EQ(event.source().provider(), "twilio");
  // Twilio retrying it (its answer lost): answered the same, Kafka has the event already.
  EXPECT_EQ(PostTwilio("/v1/twilio/voice", kTwilioNoAnswer).status, 200);
  EXPECT_EQ(publisher_.published.size(), 1u);
  EXPECT_THAT(registry_.Render(),
              HasSubstr("telephony_retries_already_in_kafka_total{provider=\"twilio\"} 1"));
}

// Protects: a forged or missing X-Twilio-Signature is 401 and publishes nothing; a signature
// over the URL the service sees (not the public one) is refused too.
TEST_F(ServiceTest, TwilioForgedSignature) {
  EXPECT_EQ(PostTwilio("/v1/twilio/voice", kTwilioNoAnswer, "").status, 401);
  EXPECT_EQ(PostTwilio("/v1/twilio/voice", kTwilioNoAnswer, "AAAAAAAAAAAAAAAAAAAAAAAAAAA=").status,
            401);
  // Signed for the address the service sees behind the proxy, not the public one Twilio
  // uses: refused (the service was built with the public URL; only the signing changes).
  Service();
  options_.twilio_public_url = "http://10.0.0.7:8083";
  EXPECT_EQ(PostTwilio("/v1/twilio/voice", kTwilioNoAnswer).status, 401);
  EXPECT_TRUE(publisher_.published.empty());
}

// Protects: Twilio's statuses map to outcomes: completed with CallDuration is answered,
// busy/failed/canceled, answering machines are voicemail, a <Dial> action's DialCallStatus
// decides for the parent call, a child leg of a <Dial> is ignored; unknown statuses are 422.
TEST_F(ServiceTest, TwilioStatuses) {
  auto post = [&](const std::string& sid, const std::string& extra) {
    return PostTwilio("/v1/twilio/voice",
                      "CallSid=" + sid + "&From=%2B33612345678&To=%2B33187654321" + extra);
  };
  ASSERT_EQ(post("CA1", "&Direction=inbound&CallStatus=ringing").status, 200);
  ASSERT_EQ(post("CA1", "&Direction=inbound&CallStatus=in-progress").status, 200);
  EXPECT_TRUE(publisher_.published.empty());
  ASSERT_EQ(post("CA1", "&Direction=inbound&CallStatus=completed&CallDuration=42").status, 200);
  ASSERT_EQ(publisher_.published.size(), 1u);
  EXPECT_EQ(publisher_.published.back().second.call().outcome(), CallEvent::ANSWERED);
  EXPECT_EQ(publisher_.published.back().second.call().duration_seconds(), 42);
  ASSERT_EQ(post("CA2", "&Direction=outbound-api&CallStatus=busy").status, 200);
  EXPECT_EQ(publisher_.published.back().second.call().outcome(), CallEvent::BUSY);
  EXPECT_EQ(publisher_.published.back().first, "+33187654321");  // the callee, outbound
  ASSERT_EQ(post("CA3", "&Direction=outbound-api&CallStatus=failed").status, 200);
  EXPECT_EQ(publisher_.published.back().second.call().outcome(), CallEvent::FAILED);
  ASSERT_EQ(post("CA4", "&Direction=outbound-api&CallStatus=canceled").status, 200);
  EXPECT_EQ(publisher_.published.back().second.call().outcome(), CallEvent::CANCELED);
  ASSERT_EQ(post("CA5", "&Direction=outbound-api&CallStatus=completed&AnsweredBy=machine_end_beep")
                .status,
            200);
  EXPECT_EQ(publisher_.published.back().second.call().outcome(), CallEvent::VOICEMAIL);
  // The <Dial> action: Twilio answered the parent call, the agent did not answer; the call
  // goes on (another <Dial> may follow) until the parent's own "completed": one missed call.
  size_t before = publisher_.published.size();
  ASSERT_EQ(post("CA6",
                 "&Direction=inbound&CallStatus=in-progress&DialCallStatus=no-answer"
                 "&DialCallSid=CA6b&DialCallDuration=0")
                .status,
            200);
  EXPECT_EQ(publisher_.published.size(), before);
  ASSERT_EQ(post("CA6", "&Direction=inbound&CallStatus=completed&CallDuration=25").status, 200);
  ASSERT_EQ(publisher_.published.size(), before + 1);
  EXPECT_EQ(publisher_.published.back().second.call().outcome(), CallEvent::MISSED);
  EXPECT_EQ(publisher_.published.back().second.call().duration_seconds(), 0);
  before = publisher_.published.size();
  ASSERT_EQ(post("CA7", "&Direction=outbound-dial&ParentCallSid=CA6&CallStatus=no-answer").status,
            200);
  EXPECT_EQ(publisher_.published.size(), before);
  EXPECT_THAT(registry_.Render(),
              HasSubstr("telephony_ignored_total{reason=\"twilio_child_leg\"} 1"));
  EXPECT_EQ(post("CA8", "&Direction=inbound&CallStatus=exploded").status, 422);
  EXPECT_EQ(PostTwilio("/v1/twilio/voice", "From=%2B33612345678&CallStatus=busy").status, 422);
  EXPECT_EQ(PostTwilio("/v1/twilio/voice", "CallSid=%ZZ").status, 400);
}

// Protects: what a new user met with Twilio's own callbacks: the asynchronous answering machine
// detection callback (no CallStatus, no Direction) is accepted (200) and makes the call a
// voicemail; a trunking-originating call is outbound, to the customer; a Direction Twilio
// never sends is 422 naming the field, nothing published; fields past the generic API's bounds
// are dropped, counted by field and logged, the call kept; a signature over the public URL
// with its default port written out is accepted.
TEST_F(ServiceTest, TwilioAmdDirectionsBoundsAndPorts) {
  const std::string outbound =
      "AccountSid=AC1&Direction=outbound-api&From=%2B33187654321&To=%2B33641000702";
  ASSERT_EQ(PostTwilio("/v1/twilio/voice", "CallSid=CAamd8&" + outbound + "&CallStatus=in-progress")
                .status,
            200);
  auto amd = PostTwilio("/v1/twilio/voice",
                        "CallSid=CAamd8&AccountSid=AC1&AnsweredBy=machine_end_beep"
                        "&MachineDetectionDuration=4200");
  EXPECT_EQ(amd.status, 200) << amd.body;
  EXPECT_TRUE(publisher_.published.empty());
  ASSERT_EQ(PostTwilio("/v1/twilio/voice",
                       "CallSid=CAamd8&" + outbound + "&CallStatus=completed&CallDuration=30")
                .status,
            200);
  ASSERT_EQ(publisher_.published.size(), 1u);
  EXPECT_EQ(publisher_.published.back().second.call().outcome(), CallEvent::VOICEMAIL);

  ASSERT_EQ(PostTwilio("/v1/twilio/voice",
                       "CallSid=CAtrk1&AccountSid=AC1&Direction=trunking-originating"
                       "&From=%2B33187654321&To=%2B33641000801&CallStatus=completed"
                       "&CallDuration=30")
                .status,
            200);
  ASSERT_EQ(publisher_.published.size(), 2u);
  EXPECT_EQ(publisher_.published.back().second.call().direction(), CallEvent::OUTBOUND);
  EXPECT_EQ(publisher_.published.back().first, "+33641000801");
  auto sideways = PostTwilio("/v1/twilio/voice",
                             "CallSid=CAtrk3&AccountSid=AC1&Direction=sideways"
                             "&From=%2B33641000803&To=%2B33187654321&CallStatus=no-answer");
  EXPECT_EQ(sideways.status, 422);
  EXPECT_THAT(sideways.body, HasSubstr("Direction"));
  EXPECT_EQ(publisher_.published.size(), 2u);

  std::string long_from;
  for (int i = 0; i < 1000; ++i) long_from += "%C3%A9";
  ASSERT_EQ(PostTwilio("/v1/twilio/voice",
                       "CallSid=CAlong1&AccountSid=AC1&Direction=inbound&To=%2B33187654321"
                       "&CallStatus=no-answer&From=" +
                           long_from)
                .status,
            200);
  ASSERT_EQ(publisher_.published.size(), 3u);
  EXPECT_EQ(publisher_.published.back().second.call().from_number(), "");
  EXPECT_THAT(registry_.Render(), HasSubstr("telephony_fields_dropped_total{field=\"From\"} 1"));

  Service();
  // Signed over the public URL with its default port written, configured without it.
  options_.twilio_public_url = "https://leads.example:443/telephony";
  ASSERT_EQ(PostTwilio("/v1/twilio/voice", kTwilioNoAnswer).status, 200);
  EXPECT_EQ(publisher_.published.size(), 4u);
}

// Protects: an answering machine verdict is not a call. Twilio's asynchronous AMD callback
// (CallSid, AnsweredBy; no Direction, no numbers) for a call no status callback ever reports —
// a <Number amdStatusCallback> whose verdict names the <Dial>'s child leg, a call whose status
// callback points elsewhere — timed out as an "answered" inbound call without a number: a call
// nobody made, in the CRM. Its timeout publishes nothing; a call whose status callback follows
// the verdict still counts it (voicemail).
TEST_F(ServiceTest, AnAnsweringMachineVerdictAloneIsNoCall) {
  const std::string amd =
      "AccountSid=AC1&AnsweredBy=machine_start&MachineDetectionDuration=3100&CallSid=";
  ASSERT_EQ(PostTwilio("/v1/twilio/voice", amd + "CAchild7").status, 200);
  ASSERT_EQ(PostTwilio("/v1/twilio/voice", amd + "CAout7").status, 200);
  ASSERT_EQ(PostTwilio("/v1/twilio/voice",
                       "CallSid=CAout7&AccountSid=AC1&Direction=outbound-api"
                       "&From=%2B33187654321&To=%2B33641000707&CallStatus=completed"
                       "&CallDuration=20")
                .status,
            200);
  ASSERT_EQ(publisher_.published.size(), 1u);
  EXPECT_EQ(publisher_.published[0].second.call().outcome(), CallEvent::VOICEMAIL);

  now_ = kNow + options_.calls.open_ttl + std::chrono::seconds(90);
  Service().Tick();
  EXPECT_EQ(publisher_.published.size(), 1u)
      << "published: " << publisher_.published.back().second.DebugString();
  EXPECT_THAT(registry_.Render(), HasSubstr("telephony_open_calls 0"));
  EXPECT_THAT(registry_.Render(),
              HasSubstr("telephony_ignored_total{reason=\"no_call_report\"} 1"));
  Service().Tick();
  EXPECT_THAT(registry_.Render(),
              HasSubstr("telephony_ignored_total{reason=\"no_call_report\"} 1"));
}

// Protects: a recording callback is published as its own event for the call, with the URL.
TEST_F(ServiceTest, TwilioRecording) {
  ASSERT_EQ(PostTwilio("/v1/twilio/voice", kTwilioNoAnswer).status, 200);
  http::Request request;
  request.method = "POST";
  request.target = request.path = "/v1/twilio/recording";
  request.body =
      "AccountSid=AC0000&CallSid=CA1111&RecordingSid=RE2222&RecordingStatus=completed"
      "&RecordingUrl=https%3A%2F%2Fapi.twilio.com%2F2010-04-01%2FAccounts%2FAC0000%2F"
      "Recordings%2FRE2222&RecordingDuration=14&RecordingChannels=1&RecordingSource="
      "RecordVerb";
  auto params = *ingest::ParseFormParams(request.body);
  std::stable_sort(params.begin(), params.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string data = options_.twilio_public_url + request.target;
  for (const auto& [name, value] : params) data += name + value;
  request.headers = {
      {"Content-Type", "application/x-www-form-urlencoded"},
      {"X-Twilio-Signature", ingest::Base64Encode(ingest::Hmac(ingest::HmacAlgorithm::kSha1,
                                                               options_.twilio_auth_token, data))}};
  auto response = Call(&TelephonyService::HandleTwilioRecording, request);
  ASSERT_EQ(response.status, 200) << response.body;
  ASSERT_EQ(publisher_.published.size(), 2u);
  const auto& event = publisher_.published[1].second;
  EXPECT_TRUE(event.call().recording_only());
  EXPECT_EQ(event.call().outcome(), CallEvent::MISSED);
  EXPECT_THAT(event.call().recording_url(), HasSubstr("RE2222"));
  EXPECT_EQ(publisher_.published[1].first, "+33612345678");
}

// Protects: a <Conference record>'s recording callback (ConferenceSid, no CallSid: Twilio's
// form) is answered 200 and counted, nothing published; one with neither sid is still refused.
TEST_F(ServiceTest, ConferenceRecordingIsIgnoredNotRefused) {
  auto conference =
      Call(&TelephonyService::HandleTwilioRecording,
           TwilioRequest("/v1/twilio/recording",
                         "AccountSid=AC0000&ConferenceSid=CF1111&RecordingSid=RE4444"
                         "&RecordingUrl=https%3A%2F%2Fapi.twilio.com%2FRE4444"
                         "&RecordingStatus=completed&RecordingSource=StartConferenceRecording"));
  ASSERT_EQ(conference.status, 200) << conference.body;
  EXPECT_TRUE(publisher_.published.empty());
  EXPECT_THAT(registry_.Render(),
              HasSubstr("telephony_ignored_total{reason=\"conference_recording\"} 1"));
  auto neither = Call(&TelephonyService::HandleTwilioRecording,
                      TwilioRequest("/v1/twilio/recording",
                                    "AccountSid=AC0000&RecordingSid=RE5555"
                                    "&RecordingUrl=https%3A%2F%2Fapi.twilio.com%2FRE5555"
                                    "&RecordingStatus=completed"));
  EXPECT_EQ(neither.status, 422) << neither.body;
  EXPECT_TRUE(publisher_.published.empty());
}

// Protects: the background path (Asterisk, expiry): an event Kafka refused is kept and
// published by a later tick, so nothing accepted is lost; the queue is bounded and counted.
TEST_F(ServiceTest, BackgroundEventsRetriedUntilKafkaTakesThem) {
  options_.max_background_pending = 1;
  CallAssembler calls({});
  CallUpdate update;
  update.provider = "asterisk";
  update.provider_call_id = "1700000000.1";
  update.state = State::kMissed;
  update.from = "+33612345678";
  auto finished = *calls.Apply(update, kNow)->finished;
  publisher_.status = absl::UnavailableError("down");
  Service().PublishBackground(finished);
  EXPECT_EQ(Service().background_pending(), 1u);
  update.provider_call_id = "1700000000.2";
  Service().PublishBackground(*calls.Apply(update, kNow)->finished);
  EXPECT_EQ(Service().background_pending(), 1u);
  EXPECT_THAT(registry_.Render(), HasSubstr("telephony_background_dropped_total 1"));
  Service().Tick();
  EXPECT_EQ(Service().background_pending(), 1u);
  publisher_.status = absl::OkStatus();
  Service().Tick();
  EXPECT_EQ(Service().background_pending(), 0u);
  ASSERT_EQ(publisher_.published.size(), 1u);
  EXPECT_EQ(publisher_.published[0].second.event_id(), finished.event_id);
}

// The generic API's orders of one call (docs/telephony-ingest.md, "Orders").
std::string Generic(const std::string& id, const std::string& state,
                    const std::string& extra = "") {
  return R"({"call_id":")" + id + R"(","direction":"inbound","from":"+33612345678",)" +
         R"("to":"+33187654321","state":")" + state + "\"" + extra + "}";
}

// Protects: the generic API's outcome does not depend on the order of the reports: an `ended`
// without talk time first and then `answered` is one answered call; `missed` and then an
// `ended` with 42 s is one answered call of 42 s; an unanswered outcome is published after the
// settle window (by the ticker), an answered one at once; each call has one event id. A
// settling report is answered only when its call is published, with the call's outcome.
TEST_F(ServiceTest, GenericOrdersGiveOneOutcome) {
  options_.calls.settle_window = std::chrono::seconds(10);
  // ended (nothing says answered) then answered.
  auto ended = StartGeneric(Generic("o-1", "ended"));
  EXPECT_FALSE(ended->has_value());
  EXPECT_TRUE(publisher_.published.empty());
  auto answered = PostGeneric(Generic("o-1", "answered", R"(,"operator":"ann@example.fr")"));
  ASSERT_EQ(answered.status, 202) << answered.body;
  EXPECT_EQ(Json(answered)["status"], "published");
  EXPECT_EQ(Json(answered)["outcome"], "answered");
  ASSERT_TRUE(ended->has_value());
  EXPECT_EQ((*ended)->status, 202);
  EXPECT_EQ(Json(**ended)["status"], "published");
  EXPECT_EQ(Json(**ended)["outcome"], "answered");
  EXPECT_EQ(Json(answered)["event_id"], Json(**ended)["event_id"]);
  // missed then ended with a duration.
  auto missed = StartGeneric(Generic("o-2", "missed"));
  EXPECT_FALSE(missed->has_value());
  auto talked = PostGeneric(Generic("o-2", "ended", R"(,"duration":42)"));
  EXPECT_EQ(Json(talked)["outcome"], "answered");
  ASSERT_TRUE(missed->has_value());
  EXPECT_EQ(Json(**missed)["outcome"], "answered");
  // ended with answered_at: answered at once.
  auto at_once = PostGeneric(Generic("o-3", "ended", R"(,"answered_at":1699999950)"));
  EXPECT_EQ(Json(at_once)["status"], "published");
  EXPECT_EQ(Json(at_once)["outcome"], "answered");
  // A lone ended and a lone missed: published as missed once the window passed, and only then
  // answered.
  auto lone_ended = StartGeneric(Generic("o-4", "ended"));
  auto lone_missed = StartGeneric(Generic("o-5", "missed"));
  ASSERT_EQ(publisher_.published.size(), 3u);
  now_ = kNow + std::chrono::seconds(9);
  Service().Tick();
  Service().PollParked();
  EXPECT_EQ(publisher_.published.size(), 3u);
  EXPECT_FALSE(lone_ended->has_value());
  EXPECT_FALSE(lone_missed->has_value());
  now_ = kNow + std::chrono::seconds(10);
  Service().Tick();
  ASSERT_EQ(publisher_.published.size(), 5u);
  ASSERT_TRUE(lone_ended->has_value() && lone_missed->has_value());
  EXPECT_EQ(Json(**lone_ended)["status"], "published");
  EXPECT_EQ(Json(**lone_ended)["outcome"], "missed");
  EXPECT_EQ(Json(**lone_missed)["outcome"], "missed");
  EXPECT_EQ(Service().parked(), 0u);
  std::map<std::string, events::v1::InboundEvent> by_call;
  std::set<std::string> ids;
  for (const auto& [key, event] : publisher_.published) {
    EXPECT_TRUE(by_call.emplace(event.call().call_id(), event).second) << event.call().call_id();
    ids.insert(event.event_id());
  }
  EXPECT_EQ(ids.size(), 5u);
  EXPECT_EQ(by_call["generic:o-1"].call().outcome(), CallEvent::ANSWERED);
  EXPECT_EQ(by_call["generic:o-1"].call().operator_name(), "ann@example.fr");
  EXPECT_EQ(by_call["generic:o-2"].call().outcome(), CallEvent::ANSWERED);
  EXPECT_EQ(by_call["generic:o-2"].call().duration_seconds(), 42);
  EXPECT_EQ(by_call["generic:o-3"].call().outcome(), CallEvent::ANSWERED);
  EXPECT_EQ(by_call["generic:o-4"].call().outcome(), CallEvent::MISSED);
  EXPECT_EQ(by_call["generic:o-5"].call().outcome(), CallEvent::MISSED);
  EXPECT_FALSE(by_call["generic:o-5"].call().incomplete());
  // Published once: the ticker does not take them again.
  now_ = kNow + std::chrono::seconds(200);
  Service().Tick();
  EXPECT_EQ(publisher_.published.size(), 5u);
  // A late report of a settled call gets its outcome, never a second event id.
  auto late = PostGeneric(Generic("o-4", "ended", R"(,"duration":12)"));
  EXPECT_EQ(Json(late)["outcome"], "missed");
  EXPECT_EQ(Json(late)["event_id"], by_call["generic:o-4"].event_id());
}

std::string UrlEncode(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_') {
      out += static_cast<char>(c);
    } else {
      char hex[4];
      std::snprintf(hex, sizeof hex, "%%%02X", c);
      out += hex;
    }
  }
  return out;
}

// Twilio's callbacks as the trial posted them (tw.py / tw4.py).
std::string TwilioCall(const std::string& sid, const std::string& status,
                       const std::string& extra = "") {
  return "AccountSid=ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa&ApiVersion=2010-04-01&CallSid=" + sid +
         "&CallStatus=" + status +
         "&Called=%2B33187654321&Caller=%2B33611227788&Direction=inbound&From=%2B33611227788&"
         "To=%2B33187654321&Timestamp=Mon%2C+30+Nov+2026+15%3A00%3A00+%2B0000" +
         extra;
}
const std::string kDialNoAnswer = "&DialCallStatus=no-answer&DialCallSid=CAr1c&DialCallDuration=0";

// Protects: one Twilio call whose callbacks reach two replicas sharing one call store (the
// <Dial> action at one, the parent's "completed" at the other) is one event, one id, missed;
// on one replica, the parent's "completed" before the <Dial> action waits for it and the call
// is missed once the window passed (a later leg's action may still come), not "answered 35 s";
// a <Dial> action after the call was settled without one is counted and changes nothing.
TEST_F(ServiceTest, TwilioCallSplitAcrossReplicasIsOneEvent) {
  options_.calls.settle_window = std::chrono::seconds(15);
  MemoryCallStore shared(1000, 1000);
  options_.call_store = &shared;
  metrics::Registry other_registry;
  FakePublisher other_publisher;
  TelephonyService replica_b(options_, &other_publisher, &other_registry, [this] { return now_; });
  // Replica A: ringing, then the <Dial> action (no-answer).
  EXPECT_EQ(PostTwilio("/v1/twilio/voice", TwilioCall("CAr1", "ringing")).status, 200);
  EXPECT_EQ(PostTwilio("/v1/twilio/voice", TwilioCall("CAr1", "in-progress", kDialNoAnswer)).status,
            200);
  // Replica B: the parent's completed.
  http::Request completed;
  completed.method = "POST";
  completed.target = completed.path = "/v1/twilio/voice";
  completed.body = TwilioCall("CAr1", "completed", "&CallDuration=28");
  {
    auto params = *ingest::ParseFormParams(completed.body);
    std::stable_sort(params.begin(), params.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    std::string data = options_.twilio_public_url + completed.path;
    for (const auto& [name, value] : params) data += name + value;
    completed.headers = {{"Content-Type", "application/x-www-form-urlencoded"},
                         {"X-Twilio-Signature",
                          ingest::Base64Encode(ingest::Hmac(ingest::HmacAlgorithm::kSha1,
                                                            options_.twilio_auth_token, data))}};
  }
  auto answer = Start(replica_b, &TelephonyService::HandleTwilioVoice, completed);
  EXPECT_FALSE(answer->has_value());  // parked while the window runs
  now_ = kNow + std::chrono::seconds(16);
  Service().Tick();
  replica_b.Tick();
  replica_b.PollParked();  // settled by replica A: B publishes it again and answers
  ASSERT_TRUE(answer->has_value() && (*answer)->status == 200);
  std::set<std::string> ids;
  for (const auto* published : {&publisher_.published, &other_publisher.published}) {
    for (const auto& [key, event] : *published) {
      EXPECT_EQ(event.call().outcome(), CallEvent::MISSED) << event.call().call_id();
      EXPECT_EQ(event.call().duration_seconds(), 0);
      ids.insert(event.event_id());
    }
  }
  ASSERT_FALSE(publisher_.published.empty());
  EXPECT_EQ(ids.size(), 1u);

  // One replica, the parent's completed first: it waits for the <Dial> action.
  now_ = kNow;
  publisher_.published.clear();
  EXPECT_EQ(PostTwilio("/v1/twilio/voice", TwilioCall("CA22", "ringing")).status, 200);
  auto parent = StartTwilio(TwilioCall("CA22", "completed", "&CallDuration=35"));
  EXPECT_FALSE(parent->has_value());
  EXPECT_TRUE(publisher_.published.empty());
  auto action = StartTwilio(TwilioCall("CA22", "in-progress", kDialNoAnswer));
  EXPECT_TRUE(publisher_.published.empty());
  now_ = kNow + std::chrono::seconds(15);
  Service().Tick();
  ASSERT_EQ(publisher_.published.size(), 1u);
  EXPECT_EQ(publisher_.published[0].second.call().outcome(), CallEvent::MISSED);
  EXPECT_EQ(publisher_.published[0].second.call().duration_seconds(), 0);
  ASSERT_TRUE(parent->has_value() && action->has_value());
  EXPECT_EQ((*parent)->status, 200);
  EXPECT_EQ((*action)->status, 200);
  now_ = kNow;

  // A call Twilio answered without a <Dial> (an IVR): answered once the window passed; a
  // <Dial> action arriving after that is counted, and publishes nothing.
  publisher_.published.clear();
  auto ivr = StartTwilio(TwilioCall("CA33", "completed", "&CallDuration=20"));
  EXPECT_FALSE(ivr->has_value());
  now_ = kNow + std::chrono::seconds(15);
  Service().Tick();
  ASSERT_EQ(publisher_.published.size(), 1u);
  ASSERT_TRUE(ivr->has_value());
  EXPECT_EQ((*ivr)->status, 200);
  EXPECT_EQ(publisher_.published[0].second.call().outcome(), CallEvent::ANSWERED);
  EXPECT_EQ(publisher_.published[0].second.call().duration_seconds(), 20);
  EXPECT_EQ(PostTwilio("/v1/twilio/voice", TwilioCall("CA33", "in-progress", kDialNoAnswer)).status,
            200);
  EXPECT_EQ(publisher_.published.size(), 1u);
  EXPECT_THAT(registry_.Render(),
              HasSubstr("telephony_ignored_total{reason=\"twilio_dial_after_outcome\"} 1"));
}

std::string RetryAfter(const http::Response& response) {
  for (const http::HeaderField& header : response.headers) {
    if (header.name == "Retry-After") return header.value;
  }
  return "";
}

// Protects: a settling report (no answer yet) gets its 2xx only once Kafka acknowledged its
// call's event: not when the window passes, not while the broker has not answered; a refusal is
// 503 + Retry-After so that the provider retries. The parked gauge counts it meanwhile.
TEST_F(ServiceTest, SettlingReportAnsweredOnlyAfterKafkaAcknowledged) {
  options_.calls.settle_window = std::chrono::seconds(5);
  publisher_.hold = true;
  auto missed = StartGeneric(Generic("k-1", "missed"));
  auto parent = StartTwilio(TwilioCall("CAk2", "completed", "&CallDuration=12"));
  EXPECT_FALSE(missed->has_value());
  EXPECT_FALSE(parent->has_value());
  EXPECT_THAT(registry_.Render(), HasSubstr("telephony_parked_requests 2"));
  now_ = kNow + std::chrono::seconds(5);
  Service().Tick();
  Service().PollParked();
  ASSERT_EQ(publisher_.held.size(), 2u);  // published, the broker has not answered
  EXPECT_FALSE(missed->has_value());
  EXPECT_FALSE(parent->has_value());
  publisher_.Acknowledge(absl::OkStatus());
  ASSERT_TRUE(missed->has_value() && parent->has_value());
  EXPECT_EQ((*missed)->status, 202);
  EXPECT_EQ(Json(**missed)["status"], "published");
  EXPECT_EQ(Json(**missed)["outcome"], "missed");
  EXPECT_EQ(Json(**missed)["event_id"], CallEventId("generic", "k-1"));
  EXPECT_EQ((*parent)->status, 200);
  EXPECT_THAT(registry_.Render(), HasSubstr("telephony_parked_requests 0"));

  // The broker refuses: 503 + Retry-After, and the call stays due for another try.
  auto refused = StartGeneric(Generic("k-3", "missed"));
  now_ = kNow + std::chrono::seconds(10);
  Service().Tick();
  ASSERT_EQ(publisher_.held.size(), 1u);
  EXPECT_FALSE(refused->has_value());
  publisher_.Acknowledge(absl::UnavailableError("broker down"));
  ASSERT_TRUE(refused->has_value());
  EXPECT_EQ((*refused)->status, 503);
  EXPECT_EQ(RetryAfter(**refused), "5");
}

// A sender whose webhook times out before the settle window closes retries the same report
// (the trial: one retry 3 s later; curl --max-time 3 retrying six times). Run on the in-process
// store and on the real Redis shared by replicas.
class SettleRetryTest : public ServiceTest, public ::testing::WithParamInterface<bool> {
 protected:
  SettleRetryTest() {
    if (GetParam()) {
      redis_ = std::make_unique<RedisCallStore>(testing::RedisTestOptions());
      options_.call_store = redis_.get();
    }
  }
  std::unique_ptr<RedisCallStore> redis_;
};

// Protects: the settle window runs from the FIRST unanswered final report and a retry of it
// never extends it: the call is published at first + window, and every copy of the report,
// parked meanwhile, is answered 202 with the call's event once Kafka acknowledged it; a retry
// arriving after the window settles the call itself (no tick needed); a retry after the
// publication gets 202 at once. Twilio's parent "completed" retried likewise.
TEST_P(SettleRetryTest, RetriesJoinTheWaitersAndNeverExtendTheWindow) {
  options_.calls.settle_window = std::chrono::seconds(5);
  const std::string body = Generic("to-3", "missed");
  auto first = StartGeneric(body);
  now_ = kNow + std::chrono::seconds(3);
  auto retry = StartGeneric(body);
  EXPECT_FALSE(first->has_value());
  EXPECT_FALSE(retry->has_value());
  EXPECT_EQ(Service().parked(), 2u);
  now_ = kNow + std::chrono::seconds(5);
  Service().Tick();
  ASSERT_EQ(publisher_.published.size(), 1u);
  ASSERT_TRUE(first->has_value() && retry->has_value());
  for (const auto& answer : {first, retry}) {
    EXPECT_EQ((*answer)->status, 202) << (*answer)->body;
    EXPECT_EQ(Json(**answer)["status"], "published");
    EXPECT_EQ(Json(**answer)["event_id"], CallEventId("generic", "to-3"));
  }
  auto late = StartGeneric(body);
  ASSERT_TRUE(late->has_value());
  EXPECT_EQ((*late)->status, 202);
  EXPECT_EQ(Service().parked(), 0u);

  // Six retries, one a second, each given up by the sender: the call is out at first + 5 s,
  // here settled by the retry that arrives past the window, before any tick.
  publisher_.published.clear();
  now_ = kNow + std::chrono::seconds(100);
  const std::string to4 = Generic("to-4", "missed");
  std::vector<Pending> attempts;
  for (int i = 0; i < 5; ++i) {
    now_ = kNow + std::chrono::seconds(100 + i);
    attempts.push_back(StartGeneric(to4));
    EXPECT_FALSE(attempts.back()->has_value()) << i;
  }
  now_ = kNow + std::chrono::seconds(105);
  auto sixth = StartGeneric(to4);
  ASSERT_TRUE(sixth->has_value());
  EXPECT_EQ((*sixth)->status, 202) << (*sixth)->body;
  ASSERT_EQ(publisher_.published.size(), 1u);
  EXPECT_EQ(publisher_.published[0].second.call().outcome(), CallEvent::MISSED);
  for (const auto& attempt : attempts) {
    ASSERT_TRUE(attempt->has_value());
    EXPECT_EQ((*attempt)->status, 202);
  }

  // Twilio's parent "completed" retried 4 s later: published at first + 5 s.
  publisher_.published.clear();
  now_ = kNow + std::chrono::seconds(200);
  auto parent = StartTwilio(TwilioCall("CAretry", "completed", "&CallDuration=12"));
  now_ = kNow + std::chrono::seconds(204);
  auto parent_retry = StartTwilio(TwilioCall("CAretry", "completed", "&CallDuration=12"));
  now_ = kNow + std::chrono::seconds(205);
  Service().Tick();
  ASSERT_EQ(publisher_.published.size(), 1u);
  ASSERT_TRUE(parent->has_value() && parent_retry->has_value());
  EXPECT_EQ((*parent)->status, 200);
  EXPECT_EQ((*parent_retry)->status, 200);
}

INSTANTIATE_TEST_SUITE_P(Stores, SettleRetryTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Redis" : "Memory"; });

// Protects: a call_id reused for another call (a PBX whose ids restart) is never taken as a
// retry of the settled call, which would lose the new call under a 202: a report whose
// direction, from or to contradicts the settled call is refused 409 call_id_reused (fields
// named, message saying ids must be unique), counted and logged with the call id only, and
// nothing is published; a true retry (same parties, however written, times refined, a field
// left out) keeps its answer. On the in-process store and on the Redis shared by replicas.
TEST_P(SettleRetryTest, ReusedCallIdIsRefusedNotLost) {
  CapturedLog captured;
  const std::string id = testing::UniqueName("reuse");
  auto first = PostGeneric(Generic(id, "missed", R"(,"ended_at":"2023-11-14T22:13:20Z")"));
  ASSERT_EQ(first.status, 202) << first.body;
  ASSERT_EQ(publisher_.published.size(), 1u);

  // Retries of that call: the same report, its numbers written otherwise, a refined time, a
  // field left out, a late intermediate state.
  const std::vector<std::string> retries = {
      Generic(id, "missed", R"(,"ended_at":"2023-11-14T22:13:20Z")"),
      R"({"call_id":")" + id +
          R"(","direction":"in","from":"06 12 34 56 78","to":"01 87 65 43 21",)"
          R"("state":"missed","ended_at":"2023-11-14T22:13:21Z"})",
      R"({"call_id":")" + id + R"(","direction":"inbound","from":"+33612345678","state":"ended"})",
  };
  for (const std::string& body : retries) {
    auto retry = PostGeneric(body);
    EXPECT_EQ(retry.status, 202) << body << " " << retry.body;
    EXPECT_EQ(Json(retry)["status"], "published") << body;
    EXPECT_EQ(Json(retry)["event_id"], CallEventId("generic", id));
  }
  EXPECT_EQ(PostGeneric(Generic(id, "ringing")).status, 200);
  const size_t published = publisher_.published.size();

  // Other calls under the same id.
  struct Case {
    std::string body;
    std::vector<std::string> fields;
  };
  const std::vector<Case> cases = {
      {R"({"call_id":")" + id + R"(","direction":"inbound","from":"0613131313","state":"missed"})",
       {"from"}},
      {R"({"call_id":")" + id +
           R"(","direction":"outbound","from":"+33612345678","to":"+33187654321",)"
           R"("state":"answered"})",
       {"direction"}},
      {R"({"call_id":")" + id +
           R"(","direction":"inbound","from":"anonymous","to":"+33187650000","state":"ringing"})",
       {"from", "to"}},
  };
  for (const Case& c : cases) {
    auto refused = PostGeneric(c.body);
    EXPECT_EQ(refused.status, 409) << c.body << " " << refused.body;
    nlohmann::json body = Json(refused);
    EXPECT_EQ(body["error"], "call_id_reused") << refused.body;
    EXPECT_EQ(body["fields"], nlohmann::json(c.fields)) << refused.body;
    EXPECT_THAT(body.value("message", ""), HasSubstr("must be unique for 24 h"));
  }
  EXPECT_EQ(publisher_.published.size(), published);
  EXPECT_EQ(testing::MetricValue(registry_.Render(), "telephony_call_id_reused_total").value_or(-1),
            3);
  EXPECT_EQ(testing::MetricValue(registry_.Render(),
                                 "telephony_requests_rejected_total{code=\"call_id_reused\"}")
                .value_or(-1),
            3);
  const std::string log = captured.Text();
  EXPECT_THAT(log, HasSubstr("409 call_id_reused: call generic:" + id + " is settled"));
  EXPECT_THAT(log, ::testing::Not(HasSubstr("0613131313")));
  // The settled call is untouched: a retry still gets it.
  EXPECT_EQ(PostGeneric(retries[0]).status, 202);
  EXPECT_EQ(publisher_.published.back().second.call().from_number(), "+33612345678");
}

// Protects: a report parked on one replica is released when another replica (sharing the call
// store) settles the call with a deciding report: answered after this replica's own
// acknowledgement, with the same event id and the deciding outcome.
TEST_F(ServiceTest, ParkedReportReleasedByAnotherReplica) {
  options_.calls.settle_window = std::chrono::seconds(5);
  MemoryCallStore shared(1000, 1000);
  options_.call_store = &shared;
  metrics::Registry other_registry;
  FakePublisher other_publisher;
  TelephonyService replica_b(options_, &other_publisher, &other_registry, [this] { return now_; });
  auto ended = StartGeneric(Generic("r-1", "ended"));
  EXPECT_FALSE(ended->has_value());
  auto answered = Start(replica_b, &TelephonyService::HandleGeneric,
                        GenericRequest(Generic("r-1", "answered", R"(,"duration":30)")));
  ASSERT_TRUE(answered->has_value());
  EXPECT_EQ(Json(**answered)["status"], "published");
  EXPECT_FALSE(ended->has_value());  // replica A has not looked yet
  publisher_.hold = true;
  Service().PollParked();
  EXPECT_FALSE(ended->has_value());  // A publishes it too, the broker has not answered
  publisher_.Acknowledge(absl::OkStatus());
  ASSERT_TRUE(ended->has_value());
  EXPECT_EQ((*ended)->status, 202);
  EXPECT_EQ(Json(**ended)["status"], "published");
  EXPECT_EQ(Json(**ended)["outcome"], "answered");
  EXPECT_EQ(Json(**ended)["event_id"], Json(**answered)["event_id"]);
  EXPECT_EQ(Service().parked(), 0u);
}

// Protects: parked requests are bounded: past TELEPHONY_MAX_PARKED a settling report is 503 +
// Retry-After (counted), past its own bound a parked one is 503 (counted).
TEST_F(ServiceTest, ParkedRequestsAreBounded) {
  options_.calls.settle_window = std::chrono::seconds(10);
  options_.max_parked = 1;
  options_.parked_timeout = std::chrono::seconds(3);
  auto first = StartGeneric(Generic("b-1", "missed"));
  EXPECT_FALSE(first->has_value());
  auto second = StartGeneric(Generic("b-2", "missed"));
  ASSERT_TRUE(second->has_value());
  EXPECT_EQ((*second)->status, 503);
  EXPECT_EQ(RetryAfter(**second), "5");
  EXPECT_THAT(registry_.Render(), HasSubstr("telephony_parked_refused_total 1"));
  EXPECT_THAT(registry_.Render(), HasSubstr("telephony_parked_requests 1"));
  now_ = kNow + std::chrono::seconds(2);
  Service().PollParked();
  EXPECT_FALSE(first->has_value());
  now_ = kNow + std::chrono::seconds(3);
  Service().PollParked();
  ASSERT_TRUE(first->has_value());
  EXPECT_EQ((*first)->status, 503);
  EXPECT_THAT(registry_.Render(), HasSubstr("telephony_parked_timeouts_total 1"));
}

// Protects: on shutdown no parked report is dropped: one whose call is not settled is 503 (the
// provider retries), one whose call is settled is published and answered after the
// acknowledgement, and settling reports from then on are refused with 503.
TEST_F(ServiceTest, ParkedRequestsAnsweredOnShutdown) {
  options_.calls.settle_window = std::chrono::seconds(10);
  auto settles = StartGeneric(Generic("s-2", "missed"));
  now_ = kNow + std::chrono::seconds(5);
  auto unsettled = StartGeneric(Generic("s-1", "missed"));
  EXPECT_FALSE(Service().calls().Settled("generic", "s-2").has_value());
  // s-2's window passed: settled in the store (as by a replica's ticker that then stopped)
  // but not published yet; s-1 is still settling.
  now_ = kNow + std::chrono::seconds(10);
  auto due = Service().calls().Due(now_);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_TRUE(Service().calls().Settled("generic", "s-2").has_value());
  size_t before = publisher_.published.size();
  Service().StopParking();
  ASSERT_TRUE(unsettled->has_value() && settles->has_value());
  EXPECT_EQ((*unsettled)->status, 503);
  EXPECT_EQ((*settles)->status, 202);
  EXPECT_EQ(Json(**settles)["outcome"], "missed");
  EXPECT_GT(publisher_.published.size(), before);
  EXPECT_EQ(Service().parked(), 0u);
  auto late = StartGeneric(Generic("s-3", "missed"));
  ASSERT_TRUE(late->has_value());
  EXPECT_EQ((*late)->status, 503);
}

// Protects: a call is never lost for a secondary field (a PBX does not retry a 422): the
// trial's PBX formats are read — a duration with a fraction, "12s", "00:01:05"; times in Unix
// milliseconds, in ISO 8601 without a zone (UTC), with a space for the "T"; a field that still
// cannot be read is dropped, named in the answer and counted, and the call published without
// it. Only call_id, direction and state refuse a report.
TEST_F(ServiceTest, SecondaryFieldsNeverLoseTheCall) {
  struct Case {
    std::string extra;
    int32_t duration;
    int64_t answered_at;  // 0: not checked
  };
  const int64_t at = 1796029200;  // 2026-11-30T09:00:00Z
  std::vector<Case> cases = {
      {R"(,"duration":10.5)", 11, 0},
      {R"(,"duration":"12s")", 12, 0},
      {R"(,"duration":"00:01:05")", 65, 0},
      {R"(,"duration":"7.25")", 7, 0},
      {R"(,"duration":30,"answered_at":"1796029200000")", 30, at},
      {R"(,"duration":30,"answered_at":1796029200000)", 30, at},
      {R"(,"duration":30,"answered_at":"1796029200.75")", 30, at},
      {R"(,"duration":30,"answered_at":"2026-11-30T09:00:00")", 30, at},
      {R"(,"duration":30,"answered_at":"2026-11-30 09:00:00.250")", 30, at},
      {R"(,"duration":30,"answered_at":"2026-11-30 10:00:00+01:00")", 30, at},
  };
  int n = 0;
  for (const Case& c : cases) {
    std::string id = "fmt-" + std::to_string(n++);
    publisher_.published.clear();
    auto response = PostGeneric(Generic(id, "ended", c.extra));
    ASSERT_EQ(response.status, 202) << c.extra << " " << response.body;
    EXPECT_FALSE(Json(response).contains("dropped")) << c.extra;
    ASSERT_EQ(publisher_.published.size(), 1u) << c.extra;
    const CallEvent& call = publisher_.published[0].second.call();
    EXPECT_EQ(call.outcome(), CallEvent::ANSWERED) << c.extra;
    EXPECT_EQ(call.duration_seconds(), c.duration) << c.extra;
    if (c.answered_at != 0) {
      EXPECT_EQ(call.answered_at().seconds(), c.answered_at) << c.extra;
    }
  }
  // Unreadable: dropped and counted, the call kept.
  publisher_.published.clear();
  auto kept = PostGeneric(
      Generic("fmt-bad", "missed",
              R"(,"duration":"about a minute","started_at":"yesterday","ended_at":{"t":1},)"
              R"("recording_url":"ftp://pbx/rec.wav","line":["sales"],"from":33612345678)"));
  ASSERT_EQ(kept.status, 202) << kept.body;
  for (const char* field : {"duration", "started_at", "ended_at", "recording_url", "line"}) {
    EXPECT_TRUE(Json(kept)["dropped"].contains(field)) << field << " " << kept.body;
    EXPECT_THAT(registry_.Render(), HasSubstr("telephony_fields_dropped_total{field=\"" +
                                              std::string(field) + "\"} 1"));
  }
  ASSERT_EQ(publisher_.published.size(), 1u);
  EXPECT_EQ(publisher_.published[0].second.call().outcome(), CallEvent::MISSED);
  EXPECT_EQ(publisher_.published[0].second.call().from_number(), "33612345678");
  // What no call can do without.
  EXPECT_EQ(PostGeneric(R"({"direction":"inbound","state":"missed"})").status, 422);
  EXPECT_EQ(PostGeneric(R"({"call_id":"x","direction":"inbound","state":"hung"})").status, 422);
  EXPECT_EQ(PostGeneric(R"({"call_id":"x","direction":"sideways","state":"missed"})").status, 422);
  EXPECT_EQ(PostGeneric(R"({"call_id":"x","direction":"IN","state":"Missed"})").status, 202);
}

// Protects: times that contradict each other are dropped like unreadable ones, the call kept:
// an ended_at before started_at (the call-back deadline would be overdue on arrival) or before
// answered_at is dropped, named in the answer and counted; an answered_at before started_at is
// dropped but the call stays answered; consistent times are all kept.
TEST_F(ServiceTest, ContradictoryTimesAreDropped) {
  auto seconds = [](const google::protobuf::Timestamp& t) { return t.seconds(); };
  const int64_t t20 = 1796068800;  // 2026-11-30T20:00:00Z
  struct Case {
    std::string state;
    std::string times;
    std::vector<std::string> dropped;
    CallEvent::Outcome outcome;
    int64_t started, answered, ended;  // 0: unset
  };
  const std::vector<Case> cases = {
      {"missed",
       R"(,"started_at":"2026-11-30T21:00:00Z","ended_at":"2026-11-30T20:00:00Z")",
       {"ended_at"},
       CallEvent::MISSED,
       t20 + 3600,
       0,
       0},
      {"ended",
       R"(,"answered_at":"2026-11-30T20:05:10Z","ended_at":"2026-11-30T20:00:00Z")",
       {"ended_at"},
       CallEvent::ANSWERED,
       0,
       t20 + 310,
       0},
      {"ended",
       R"(,"started_at":"2026-11-30T20:10:00Z","answered_at":"2026-11-30T20:05:00Z",)"
       R"("ended_at":"2026-11-30T20:12:00Z")",
       {"answered_at"},
       CallEvent::ANSWERED,
       t20 + 600,
       0,
       t20 + 720},
      {"ended",
       R"(,"started_at":"2026-11-30T20:00:00Z","answered_at":"2026-11-30T20:00:00Z",)"
       R"("ended_at":"2026-11-30T20:01:00Z")",
       {},
       CallEvent::ANSWERED,
       t20,
       t20,
       t20 + 60},
  };
  int n = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.times);
    publisher_.published.clear();
    auto response = PostGeneric(Generic("times-" + std::to_string(n++), c.state, c.times));
    ASSERT_EQ(response.status, 202) << response.body;
    nlohmann::json dropped = Json(response).value("dropped", nlohmann::json::object());
    EXPECT_EQ(dropped.size(), c.dropped.size()) << response.body;
    for (const std::string& field : c.dropped) {
      EXPECT_THAT(dropped.value(field, ""), HasSubstr("before")) << response.body;
    }
    ASSERT_EQ(publisher_.published.size(), 1u);
    const CallEvent& call = publisher_.published[0].second.call();
    EXPECT_EQ(call.outcome(), c.outcome);
    EXPECT_EQ(seconds(call.started_at()), c.started);
    EXPECT_EQ(seconds(call.answered_at()), c.answered);
    EXPECT_EQ(seconds(call.ended_at()), c.ended);
  }
  EXPECT_EQ(
      testing::MetricValue(registry_.Render(), "telephony_fields_dropped_total{field=\"ended_at\"}")
          .value_or(-1),
      2);
  EXPECT_EQ(testing::MetricValue(registry_.Render(),
                                 "telephony_fields_dropped_total{field=\"answered_at\"}")
                .value_or(-1),
            1);
}

// Protects: a recording's own event, acknowledged, says nothing of its call's: a call whose
// publication Kafka refused stays scheduled, so Twilio's retry of the final callback publishes
// it (it is not answered as already in Kafka), and the ticker would too.
TEST_F(ServiceTest, RecordingAcknowledgedLeavesItsRefusedCallToBePublished) {
  publisher_.status = absl::UnavailableError("not enough replicas");
  EXPECT_EQ(PostTwilio("/v1/twilio/voice", kTwilioNoAnswer).status, 503);
  publisher_.status = absl::OkStatus();
  auto recorded = Call(&TelephonyService::HandleTwilioRecording,
                       TwilioRequest("/v1/twilio/recording",
                                     "AccountSid=AC0000&CallSid=CA1111&RecordingSid=RE3333&"
                                     "RecordingUrl=https%3A%2F%2Fapi.twilio.com%2FRE3333&"
                                     "RecordingStatus=completed"));
  ASSERT_EQ(recorded.status, 200) << recorded.body;
  ASSERT_EQ(publisher_.published.size(), 1u);
  EXPECT_TRUE(publisher_.published[0].second.call().recording_only());
  EXPECT_EQ(PostTwilio("/v1/twilio/voice", kTwilioNoAnswer).status, 200);
  ASSERT_EQ(publisher_.published.size(), 2u);
  EXPECT_FALSE(publisher_.published[1].second.call().recording_only());
  EXPECT_EQ(publisher_.published[1].second.call().call_id(), "twilio:CA1111");
  EXPECT_EQ(publisher_.published[1].second.call().outcome(), CallEvent::MISSED);
}

// Protects: a recording callback that comes before the call is settled (before any status
// callback, as in the trial) is not lost: it is published at once as its own event (accepted
// means in Kafka) and the call's event, published later, carries its URL, so crm-core attaches
// it even when it reads the recording's own event first and finds no call.
TEST_F(ServiceTest, TwilioRecordingBeforeTheCallRidesInTheCallsEvent) {
  options_.calls.settle_window = std::chrono::seconds(5);
  http::Request request;
  request.method = "POST";
  request.target = request.path = "/v1/twilio/recording";
  request.body =
      "CallSid=CA0006&AccountSid=ACx&RecordingSid=RE0006&RecordingUrl=https%3A%2F%2F"
      "api.twilio.com%2FRecordings%2FRE0006&RecordingStatus=completed&RecordingDuration=9";
  auto params = *ingest::ParseFormParams(request.body);
  std::stable_sort(params.begin(), params.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string data = options_.twilio_public_url + request.target;
  for (const auto& [name, value] : params) data += name + value;
  request.headers = {
      {"Content-Type", "application/x-www-form-urlencoded"},
      {"X-Twilio-Signature", ingest::Base64Encode(ingest::Hmac(ingest::HmacAlgorithm::kSha1,
                                                               options_.twilio_auth_token, data))}};
  auto recorded = Call(&TelephonyService::HandleTwilioRecording, request);
  ASSERT_EQ(recorded.status, 200) << recorded.body;
  ASSERT_EQ(publisher_.published.size(), 1u);
  EXPECT_TRUE(publisher_.published[0].second.call().recording_only());
  // Kept with the call's reports: crm-core is told the call's own event will carry it.
  EXPECT_TRUE(publisher_.published[0].second.call().carried_by_call());
  EXPECT_EQ(Service().calls().open_calls(), 0u);  // a recording alone opens no call
  EXPECT_EQ(
      PostTwilio("/v1/twilio/voice", TwilioCall("CA0006", "in-progress", kDialNoAnswer)).status,
      200);
  auto parent = StartTwilio(TwilioCall("CA0006", "completed", "&CallDuration=30"));
  now_ += std::chrono::seconds(5);
  Service().Tick();
  ASSERT_TRUE(parent->has_value());
  EXPECT_EQ((*parent)->status, 200);
  // The parent's completed settled the call once the window passed; a retry of it is answered
  // the same, the call already in Kafka.
  EXPECT_EQ(
      PostTwilio("/v1/twilio/voice", TwilioCall("CA0006", "completed", "&CallDuration=30")).status,
      200);
  ASSERT_EQ(publisher_.published.size(), 2u);
  const CallEvent& call = publisher_.published[1].second.call();
  EXPECT_FALSE(call.recording_only());
  EXPECT_EQ(call.outcome(), CallEvent::MISSED);
  EXPECT_THAT(call.recording_url(), HasSubstr("RE0006"));
  EXPECT_EQ(std::count(call.states().begin(), call.states().end(), "ringing"), 0);

  // A recording after the call settled rides in its own event only: not carried by the call.
  request.body =
      "CallSid=CA0006&AccountSid=ACx&RecordingSid=RE0007&RecordingUrl=https%3A%2F%2F"
      "api.twilio.com%2FRecordings%2FRE0007&RecordingStatus=completed&RecordingDuration=4";
  auto late = Call(&TelephonyService::HandleTwilioRecording,
                   TwilioRequest("/v1/twilio/recording", request.body));
  ASSERT_EQ(late.status, 200) << late.body;
  ASSERT_EQ(publisher_.published.size(), 3u);
  EXPECT_TRUE(publisher_.published[2].second.call().recording_only());
  EXPECT_FALSE(publisher_.published[2].second.call().carried_by_call());
  EXPECT_EQ(publisher_.published[2].second.call().outcome(), CallEvent::MISSED);
}

// Protects: a Twilio call with several <Dial>s (a transfer: an action per leg) is one answered
// call whose talk time is the answered legs' together (20 s + 40 s), a retried action counted
// once: an answered <Dial> action waits for the parent's "completed" instead of settling the
// call on the first leg. A leg unanswered after an answered one leaves the call answered.
TEST_F(ServiceTest, TwilioTransferAddsTheAnsweredLegs) {
  options_.calls.settle_window = std::chrono::seconds(5);
  const std::string leg1 = "&DialCallStatus=completed&DialCallSid=CAleg1&DialCallDuration=20";
  const std::string leg2 = "&DialCallStatus=completed&DialCallSid=CAleg2&DialCallDuration=40";
  EXPECT_EQ(PostTwilio("/v1/twilio/voice", TwilioCall("CA0008", "in-progress", leg1)).status, 200);
  EXPECT_EQ(PostTwilio("/v1/twilio/voice", TwilioCall("CA0008", "in-progress", leg1)).status, 200);
  EXPECT_EQ(PostTwilio("/v1/twilio/voice", TwilioCall("CA0008", "in-progress", leg2)).status, 200);
  EXPECT_TRUE(publisher_.published.empty());
  EXPECT_EQ(
      PostTwilio("/v1/twilio/voice", TwilioCall("CA0008", "completed", "&CallDuration=65")).status,
      200);
  ASSERT_EQ(publisher_.published.size(), 1u);
  const CallEvent& call = publisher_.published[0].second.call();
  EXPECT_EQ(call.outcome(), CallEvent::ANSWERED);
  EXPECT_EQ(call.duration_seconds(), 60);
  EXPECT_EQ(call.provider_status(), "dial:completed");

  // The transfer's second <Dial> unanswered: answered all the same, with the first leg's time.
  publisher_.published.clear();
  EXPECT_EQ(PostTwilio("/v1/twilio/voice", TwilioCall("CA0009", "in-progress", leg1)).status, 200);
  EXPECT_EQ(
      PostTwilio("/v1/twilio/voice",
                 TwilioCall("CA0009", "in-progress",
                            "&DialCallStatus=no-answer&DialCallSid=CAleg3&DialCallDuration=0"))
          .status,
      200);
  ASSERT_EQ(publisher_.published.size(), 1u);
  EXPECT_EQ(publisher_.published[0].second.call().outcome(), CallEvent::ANSWERED);
  EXPECT_EQ(publisher_.published[0].second.call().duration_seconds(), 20);
}

// Protects: a Twilio hunt — a first <Dial> unanswered, a second one answered — is one ANSWERED
// call (talk time and operator the answered leg's), whatever the order its callbacks arrive in:
// the actions then the parent's "completed" (as Twilio posts them), the answered action first,
// the parent's "completed" first (parked while its window runs). A hunt nobody answered is
// missed, once the parent's "completed" came; an action saying the parent is over (the caller
// hung up during the <Dial>) starts the window itself.
TEST_F(ServiceTest, TwilioHuntAnsweredByTheSecondDialIsAnswered) {
  options_.calls.settle_window = std::chrono::seconds(5);
  const std::string first = "&DialCallStatus=no-answer&DialCallSid=CAhunt1&DialCallDuration=0";
  const std::string busy = "&DialCallStatus=busy&DialCallSid=CAhunt1&DialCallDuration=0";
  const std::string second = "&DialCallStatus=completed&DialCallSid=CAhunt2&DialCallDuration=50";
  const std::string voice = "/v1/twilio/voice";
  const std::string bob = voice + "?operator=bob%40example.fr";
  // Published at least once (a report after the settlement publishes it again), always the
  // same answered call under one event id.
  auto expect_answered = [&](const std::string& sid) {
    ASSERT_FALSE(publisher_.published.empty()) << sid;
    std::set<std::string> ids;
    for (const auto& [key, event] : publisher_.published) {
      const CallEvent& call = event.call();
      EXPECT_EQ(call.call_id(), "twilio:" + sid);
      EXPECT_EQ(call.outcome(), CallEvent::ANSWERED) << sid;
      EXPECT_EQ(call.duration_seconds(), 50) << sid;
      EXPECT_EQ(call.operator_name(), "bob@example.fr") << sid;
      ids.insert(event.event_id());
    }
    EXPECT_EQ(ids.size(), 1u) << sid;
    publisher_.published.clear();
  };
  // As Twilio posts them: ringing, the first action, the second, the parent's completed.
  EXPECT_EQ(PostTwilio(voice, TwilioCall("CAh1", "ringing")).status, 200);
  EXPECT_EQ(PostTwilio(voice, TwilioCall("CAh1", "in-progress", first)).status, 200);
  EXPECT_EQ(PostTwilio(bob, TwilioCall("CAh1", "in-progress", second)).status, 200);
  EXPECT_TRUE(publisher_.published.empty());
  EXPECT_EQ(PostTwilio(voice, TwilioCall("CAh1", "completed", "&CallDuration=80")).status, 200);
  expect_answered("CAh1");
  // The answered action first, then the unanswered one (a delayed retry), then the parent.
  EXPECT_EQ(PostTwilio(bob, TwilioCall("CAh2", "in-progress", second)).status, 200);
  EXPECT_EQ(PostTwilio(voice, TwilioCall("CAh2", "in-progress", busy)).status, 200);
  EXPECT_EQ(PostTwilio(voice, TwilioCall("CAh2", "completed", "&CallDuration=80")).status, 200);
  expect_answered("CAh2");
  // The parent's completed first (parked), the unanswered action (parked too: a later leg may
  // still say otherwise), the answered one within the window: answered at once.
  auto parent = StartTwilio(TwilioCall("CAh3", "completed", "&CallDuration=80"));
  auto action = StartTwilio(TwilioCall("CAh3", "in-progress", first));
  EXPECT_FALSE(parent->has_value() || action->has_value());
  EXPECT_TRUE(publisher_.published.empty());
  EXPECT_EQ(PostTwilio(bob, TwilioCall("CAh3", "in-progress", second)).status, 200);
  ASSERT_TRUE(parent->has_value() && action->has_value());
  EXPECT_EQ((*parent)->status, 200);
  EXPECT_EQ((*action)->status, 200);
  expect_answered("CAh3");

  // Nobody answered either <Dial>: missed, settle window after the parent's completed.
  EXPECT_EQ(PostTwilio(voice, TwilioCall("CAh4", "in-progress", first)).status, 200);
  EXPECT_EQ(PostTwilio(voice, TwilioCall("CAh4", "in-progress",
                                         "&DialCallStatus=no-answer&DialCallSid=CAhunt4b"))
                .status,
            200);
  auto over = StartTwilio(TwilioCall("CAh4", "completed", "&CallDuration=60"));
  EXPECT_TRUE(publisher_.published.empty());
  now_ += std::chrono::seconds(5);
  Service().Tick();
  ASSERT_EQ(publisher_.published.size(), 1u);
  EXPECT_EQ(publisher_.published[0].second.call().outcome(), CallEvent::MISSED);
  EXPECT_EQ(publisher_.published[0].second.call().provider_status(), "dial:no-answer");
  ASSERT_TRUE(over->has_value());
  EXPECT_EQ((*over)->status, 200);
  publisher_.published.clear();
  // The caller hung up during the only <Dial>: its action (CallStatus completed) is the end.
  auto hung_up = StartTwilio(TwilioCall("CAh5", "completed", first));
  EXPECT_FALSE(hung_up->has_value());
  now_ += std::chrono::seconds(5);
  Service().Tick();
  ASSERT_EQ(publisher_.published.size(), 1u);
  EXPECT_EQ(publisher_.published[0].second.call().outcome(), CallEvent::MISSED);
  ASSERT_TRUE(hung_up->has_value());
}

// Protects: a Twilio queue caller who hangs up before an agent takes the call is a MISSED call
// (a call-back), although the parent's "completed" reports the minutes spent in the queue as
// talk time: the <Enqueue> action's QueueResult says nobody took it. The same for <Leave>, in
// either order of the two callbacks; a caller an agent took (bridged) is ANSWERED, with the
// parent's duration; a queue left unanswered and then a <Dial> an agent answered is ANSWERED;
// an unknown QueueResult or a malformed QueueSid is 422 and changes nothing.
TEST_F(ServiceTest, TwilioQueueCallerWhoHangsUpIsMissed) {
  options_.calls.settle_window = std::chrono::seconds(5);
  const std::string voice = "/v1/twilio/voice";
  const std::string hangup = "&QueueResult=hangup&QueueSid=QU1&QueueTime=45";
  auto settle = [&](const std::string& sid, CallEvent::Outcome outcome,
                    const std::string& provider_status) {
    now_ += std::chrono::seconds(5);
    Service().Tick();
    ASSERT_FALSE(publisher_.published.empty()) << sid;
    for (const auto& [key, event] : publisher_.published) {
      EXPECT_EQ(event.call().call_id(), "twilio:" + sid);
      EXPECT_EQ(event.call().outcome(), outcome) << sid;
      EXPECT_EQ(event.call().provider_status(), provider_status) << sid;
    }
    publisher_.published.clear();
  };
  // As the trial posted it: the action (the parent still in progress), then the parent.
  EXPECT_EQ(PostTwilio(voice, TwilioCall("CAq1", "in-progress", hangup)).status, 200);
  auto parent = StartTwilio(TwilioCall("CAq1", "completed", "&CallDuration=50"));
  EXPECT_TRUE(publisher_.published.empty());
  settle("CAq1", CallEvent::MISSED, "queue:hangup");
  ASSERT_TRUE(parent->has_value());
  EXPECT_EQ((*parent)->status, 200);
  // The parent first, then the action saying the caller hung up (CallStatus completed).
  auto first = StartTwilio(TwilioCall("CAq2", "completed", "&CallDuration=50"));
  auto action = StartTwilio(TwilioCall("CAq2", "completed", hangup));
  settle("CAq2", CallEvent::MISSED, "queue:hangup");
  ASSERT_TRUE(first->has_value() && action->has_value());
  EXPECT_EQ((*first)->status, 200);
  // <Leave> (the line closed): nobody served the caller.
  EXPECT_EQ(PostTwilio(voice, TwilioCall("CAq3", "in-progress",
                                         "&QueueResult=Leave&QueueSid=QU1&QueueTime=12"))
                .status,
            200);
  auto left = StartTwilio(TwilioCall("CAq3", "completed", "&CallDuration=20"));
  settle("CAq3", CallEvent::MISSED, "queue:leave");
  ASSERT_TRUE(left->has_value());
  // An agent took the caller: answered, the parent's duration.
  EXPECT_EQ(PostTwilio(voice, TwilioCall("CAq4", "in-progress",
                                         "&QueueResult=bridged&QueueSid=QU1&QueueTime=30"))
                .status,
            200);
  auto bridged = StartTwilio(TwilioCall("CAq4", "completed", "&CallDuration=90"));
  now_ += std::chrono::seconds(5);
  Service().Tick();
  ASSERT_FALSE(publisher_.published.empty());
  EXPECT_EQ(publisher_.published.back().second.call().outcome(), CallEvent::ANSWERED);
  EXPECT_EQ(publisher_.published.back().second.call().duration_seconds(), 90);
  ASSERT_TRUE(bridged->has_value());
  publisher_.published.clear();
  // Out of the queue unanswered, then a <Dial> to a mobile an agent answered.
  EXPECT_EQ(PostTwilio(voice, TwilioCall("CAq5", "in-progress",
                                         "&QueueResult=redirected&QueueSid=QU1&QueueTime=60"))
                .status,
            200);
  EXPECT_EQ(
      PostTwilio(voice + "?operator=bob%40example.fr",
                 TwilioCall("CAq5", "in-progress",
                            "&DialCallStatus=completed&DialCallSid=CAq5d&DialCallDuration=40"))
          .status,
      200);
  EXPECT_EQ(PostTwilio(voice, TwilioCall("CAq5", "completed", "&CallDuration=110")).status, 200);
  ASSERT_FALSE(publisher_.published.empty());
  EXPECT_EQ(publisher_.published.back().second.call().outcome(), CallEvent::ANSWERED);
  EXPECT_EQ(publisher_.published.back().second.call().operator_name(), "bob@example.fr");
  publisher_.published.clear();
  // Hostile or unknown values: refused, nothing kept.
  auto unknown = PostTwilio(voice, TwilioCall("CAq6", "in-progress", "&QueueResult=teleported"));
  EXPECT_EQ(unknown.status, 422);
  EXPECT_THAT(unknown.body, HasSubstr("QueueResult"));
  EXPECT_EQ(
      PostTwilio(voice, TwilioCall("CAq6", "in-progress", "&QueueResult=hangup&QueueSid=QU%3B1"))
          .status,
      422);
  now_ += std::chrono::seconds(60);
  Service().Tick();
  EXPECT_TRUE(publisher_.published.empty());
}

// Protects: Twilio transfers credit the operator of the last answered <Dial> leg that names one
// (the action URL's operator / extension, signed by Twilio with the rest): a retried action of
// the first leg after the second takes nothing back, an unanswered later leg is credited with
// nothing, and the call says where it was transferred to. A malformed operator or extension in
// the action URL is 422 and changes nothing.
TEST_F(ServiceTest, TwilioTransferCreditsTheLastAnsweredLeg) {
  const std::string alice = "/v1/twilio/voice?operator=alice%40example.fr";
  const std::string bob = "/v1/twilio/voice?operator=Bob+Martin&extension=202";
  const std::string carol = "/v1/twilio/voice?operator=carol%40example.fr";
  const std::string leg1 = "&DialCallStatus=completed&DialCallSid=CAleg1&DialCallDuration=20";
  const std::string leg2 = "&DialCallStatus=completed&DialCallSid=CAleg2&DialCallDuration=40";
  const std::string leg3 = "&DialCallStatus=no-answer&DialCallSid=CAleg3&DialCallDuration=0";
  EXPECT_EQ(PostTwilio(alice, TwilioCall("CAt1", "in-progress", leg1)).status, 200);
  EXPECT_EQ(PostTwilio(bob, TwilioCall("CAt1", "in-progress", leg2)).status, 200);
  EXPECT_EQ(PostTwilio(alice, TwilioCall("CAt1", "in-progress", leg1)).status, 200);
  EXPECT_EQ(
      PostTwilio("/v1/twilio/voice", TwilioCall("CAt1", "completed", "&CallDuration=65")).status,
      200);
  ASSERT_EQ(publisher_.published.size(), 1u);
  const CallEvent& call = publisher_.published[0].second.call();
  EXPECT_EQ(call.outcome(), CallEvent::ANSWERED);
  EXPECT_EQ(call.duration_seconds(), 60);
  EXPECT_EQ(call.operator_name(), "Bob Martin");
  EXPECT_EQ(call.extension(), "202");
  EXPECT_EQ(call.transferred_to(), "202");
  // One answered leg then an unanswered one naming carol: alice's call, not transferred.
  publisher_.published.clear();
  EXPECT_EQ(PostTwilio(alice, TwilioCall("CAt2", "in-progress", leg1)).status, 200);
  EXPECT_EQ(PostTwilio(carol, TwilioCall("CAt2", "in-progress", leg3)).status, 200);
  ASSERT_EQ(publisher_.published.size(), 1u);
  EXPECT_EQ(publisher_.published[0].second.call().operator_name(), "alice@example.fr");
  EXPECT_EQ(publisher_.published[0].second.call().transferred_to(), "");
  // Refused, nothing kept.
  publisher_.published.clear();
  EXPECT_EQ(PostTwilio("/v1/twilio/voice?operator=eve%01", TwilioCall("CAt3", "in-progress", leg1))
                .status,
            422);
  EXPECT_EQ(PostTwilio("/v1/twilio/voice?extension=" + std::string(33, '1'),
                       TwilioCall("CAt3", "in-progress", leg1))
                .status,
            422);
  EXPECT_EQ(
      PostTwilio("/v1/twilio/voice?operator=", TwilioCall("CAt3", "in-progress", leg1)).status,
      422);
  EXPECT_EQ(
      PostTwilio("/v1/twilio/voice", TwilioCall("CAt3", "completed", "&CallDuration=9")).status,
      200);
  ASSERT_EQ(publisher_.published.size(), 1u);
  EXPECT_EQ(publisher_.published[0].second.call().operator_name(), "");
  EXPECT_EQ(publisher_.published[0].second.call().duration_seconds(), 9);
}

// Protects: every recording of a call rides in its event (recording_urls, oldest first, each URL
// once), the deprecated recording_url the latest: a generic report with a recording then
// another, the same URL again; Twilio's status callback with one and a recording callback
// before the call settled.
TEST_F(ServiceTest, EveryRecordingOfACallInItsEvent) {
  ASSERT_EQ(PostGeneric(
                Generic("rec-1", "answered", R"(,"recording_url":"https://rec.example.com/a.mp3")"))
                .status,
            202);
  ASSERT_EQ(PostGeneric(
                Generic("rec-1", "answered", R"(,"recording_url":"https://rec.example.com/b.mp3")"),
                std::nullopt, "1700000001")
                .status,
            202);
  ASSERT_EQ(
      PostGeneric(Generic("rec-1", "ended",
                          R"(,"duration":30,"recording_url":"https://rec.example.com/a.mp3")"))
          .status,
      202);
  ASSERT_EQ(publisher_.published.size(), 1u);
  const CallEvent& call = publisher_.published[0].second.call();
  ASSERT_EQ(call.recording_urls_size(), 2) << call.DebugString();
  EXPECT_EQ(call.recording_urls(0), "https://rec.example.com/a.mp3");
  EXPECT_EQ(call.recording_urls(1), "https://rec.example.com/b.mp3");
  EXPECT_EQ(call.recording_url(), "https://rec.example.com/a.mp3");
}

// Protects: a recording brought after its call was settled, while Kafka has not taken the
// call's own event (refused): the call's event is published first, under its own id, and the
// recording after its acknowledgement, then the answer — never the recording alone, which
// crm-core would find no call for. Kafka refusing again: 503, nothing published.
TEST_F(ServiceTest, LateRecordingOfACallNotInKafkaFollowsTheCall) {
  publisher_.status = absl::UnavailableError("not enough replicas");
  EXPECT_EQ(PostGeneric(Generic("late-rec3", "voicemail")).status, 503);
  const std::string with_file =
      Generic("late-rec3", "voicemail", R"(,"recording_url":"https://pbx.example.com/vm/3.wav")");
  EXPECT_EQ(PostGeneric(with_file, std::nullopt, "1700000001").status, 503);
  EXPECT_TRUE(publisher_.published.empty());

  publisher_.status = absl::OkStatus();
  auto late = PostGeneric(with_file, std::nullopt, "1700000002");
  ASSERT_EQ(late.status, 202) << late.body;
  ASSERT_EQ(publisher_.published.size(), 2u);
  EXPECT_FALSE(publisher_.published[0].second.call().recording_only());
  EXPECT_EQ(publisher_.published[0].second.event_id(), Json(late)["event_id"]);
  EXPECT_TRUE(publisher_.published[1].second.call().recording_only());
  EXPECT_EQ(publisher_.published[1].second.call().recording_url(),
            "https://pbx.example.com/vm/3.wav");
  EXPECT_EQ(publisher_.published[1].first, publisher_.published[0].first);  // one partition
}

// Protects: a recording URL reported after its call was published — a PBX posting the
// voicemail's or the conversation's file once it is written, after the end it already posted;
// Twilio's <Dial record> action coming after the parent's "completed" settled the call — is
// published as the call's recording (recording_only, the call's outcome and number, its own
// event id, the same for a retry of that report), as Twilio's recording callback is, instead
// of being answered "published" and dropped. A URL the call's event already carries publishes
// nothing more.
TEST_F(ServiceTest, RecordingReportedAfterTheCallIsPublished) {
  ASSERT_EQ(PostGeneric(Generic("late-rec", "voicemail")).status, 202);
  ASSERT_EQ(publisher_.published.size(), 1u);
  const std::string call_event = publisher_.published[0].second.event_id();
  const std::string with_file =
      Generic("late-rec", "voicemail", R"(,"recording_url":"https://pbx.example.com/vm/1.wav")");
  auto late = PostGeneric(with_file, std::nullopt, "1700000001");
  EXPECT_EQ(late.status, 202) << late.body;
  EXPECT_EQ(Json(late)["event_id"], call_event);
  ASSERT_EQ(publisher_.published.size(), 2u);
  const auto [key, recording] = publisher_.published[1];  // a copy: the vector grows
  EXPECT_EQ(key, "+33612345678");
  EXPECT_NE(recording.event_id(), call_event);
  EXPECT_TRUE(recording.call().recording_only());
  EXPECT_FALSE(recording.call().carried_by_call());
  EXPECT_EQ(recording.call().call_id(), "generic:late-rec");
  EXPECT_EQ(recording.call().outcome(), CallEvent::VOICEMAIL);
  EXPECT_EQ(recording.call().recording_url(), "https://pbx.example.com/vm/1.wav");
  ASSERT_EQ(recording.call().recording_urls_size(), 1);

  // The sender's retry: the same event, applied once by crm-core.
  ASSERT_EQ(PostGeneric(with_file, std::nullopt, "1700000002").status, 202);
  ASSERT_EQ(publisher_.published.size(), 3u);
  EXPECT_EQ(publisher_.published[2].second.event_id(), recording.event_id());

  // An intermediate state bringing another file: answered as before, the file published.
  auto other = PostGeneric(
      Generic("late-rec", "answered", R"(,"recording_url":"https://pbx.example.com/vm/2.wav")"));
  EXPECT_EQ(other.status, 200) << other.body;
  EXPECT_EQ(Json(other)["status"], "already_published");
  ASSERT_EQ(publisher_.published.size(), 4u);
  EXPECT_EQ(publisher_.published[3].second.call().recording_url(),
            "https://pbx.example.com/vm/2.wav");
  EXPECT_NE(publisher_.published[3].second.event_id(), recording.event_id());

  // The file the call's own event carries: nothing more.
  ASSERT_EQ(
      PostGeneric(Generic("late-rec2", "ended",
                          R"(,"duration":30,"recording_url":"https://pbx.example.com/c.wav")"))
          .status,
      202);
  ASSERT_EQ(publisher_.published.size(), 5u);
  ASSERT_EQ(
      PostGeneric(Generic("late-rec2", "ended",
                          R"(,"duration":30,"recording_url":"https://pbx.example.com/c.wav")"),
                  std::nullopt, "1700000003")
          .status,
      202);
  EXPECT_EQ(publisher_.published.size(), 5u);

  // Twilio: the parent's "completed" settled the call; the <Dial record> action, late, brings
  // the recording.
  const std::string parent =
      "CallSid=CAlate1&AccountSid=AC1&From=%2B33612345679&To=%2B33187654321&Direction=inbound";
  ASSERT_EQ(PostTwilio("/v1/twilio/voice", parent + "&CallStatus=completed&CallDuration=40").status,
            200);
  ASSERT_EQ(publisher_.published.size(), 6u);
  auto action = PostTwilio(
      "/v1/twilio/voice",
      parent +
          "&CallStatus=completed&DialCallStatus=completed&DialCallSid=CAleg1"
          "&DialCallDuration=35&RecordingUrl=https%3A%2F%2Fapi.twilio.com%2F2010-04-01%2F"
          "Accounts%2FAC1%2FRecordings%2FRElate1&RecordingSid=RElate1");
  EXPECT_EQ(action.status, 200) << action.body;
  ASSERT_EQ(publisher_.published.size(), 7u);
  const CallEvent& twilio = publisher_.published[6].second.call();
  EXPECT_TRUE(twilio.recording_only());
  EXPECT_EQ(twilio.call_id(), "twilio:CAlate1");
  EXPECT_THAT(twilio.recording_url(), HasSubstr("RElate1"));
}

// Protects: telephony_calls_published_total counts each call once; a provider's retry of a
// settled call, published again, is counted in telephony_calls_republished_total.
TEST_F(ServiceTest, RepublicationsCountedApart) {
  const std::string report = Generic("rp-1", "ended", R"(,"duration":12)");
  publisher_.hold = true;  // Kafka has not answered the first publication yet
  auto first = StartGeneric(report);
  auto retry = Start(Service(), &TelephonyService::HandleGeneric,
                     GenericRequest(report, std::nullopt, "1700000001"));
  EXPECT_EQ(publisher_.held.size(), 2u);  // not confirmed: the retry publishes it again
  publisher_.hold = false;
  publisher_.Acknowledge(absl::OkStatus());
  ASSERT_TRUE(first->has_value() && retry->has_value());
  EXPECT_EQ((*first)->status, 202);
  EXPECT_EQ((*retry)->status, 202);
  ASSERT_EQ(publisher_.published.size(), 2u);
  std::string metrics = registry_.Render();
  EXPECT_THAT(metrics, HasSubstr("telephony_calls_published_total{outcome=\"answered\","
                                 "provider=\"generic\"} 1"));
  EXPECT_THAT(metrics, HasSubstr("telephony_calls_republished_total{outcome=\"answered\","
                                 "provider=\"generic\"} 1"));
}

// Protects: a retry of a final report whose call Kafka acknowledged is answered as the first
// report was (same body: call, event id, outcome) without a publication of its own, and
// counted; a retry whose first publication Kafka refused is published (the memory store here,
// StoreWaitTest.RetriesAfterTheAcknowledgementAreNotPublishedAgain with Redis).
TEST_F(ServiceTest, RetriesAfterTheAcknowledgementAreNotPublishedAgain) {
  const std::string report = Generic("ack-1", "ended", R"(,"duration":12)");
  auto first = PostGeneric(report);
  ASSERT_EQ(first.status, 202) << first.body;
  ASSERT_EQ(publisher_.published.size(), 1u);
  for (const char* timestamp : {"1700000001", "1700000002"}) {
    auto retry = PostGeneric(report, std::nullopt, timestamp);
    EXPECT_EQ(retry.status, 202);
    EXPECT_EQ(retry.body, first.body);
  }
  EXPECT_EQ(publisher_.published.size(), 1u);
  EXPECT_THAT(registry_.Render(),
              HasSubstr("telephony_retries_already_in_kafka_total{provider=\"generic\"} 2"));

  publisher_.status = absl::UnavailableError("not enough replicas");
  const std::string refused = Generic("ack-2", "ended", R"(,"duration":7)");
  EXPECT_EQ(PostGeneric(refused).status, 503);
  publisher_.status = absl::OkStatus();
  EXPECT_EQ(PostGeneric(refused, std::nullopt, "1700000001").status, 202);
  ASSERT_EQ(publisher_.published.size(), 2u);
  EXPECT_EQ(publisher_.published[1].second.call().call_id(), "generic:ack-2");
}

// Protects: a call is never refused for its numbers (a PBX does not retry a 422): real caller
// ids that are no phone number are published as unidentified callers (no identity, keyed by
// the call id), and a SIP URI's user part is the caller's number.
TEST_F(ServiceTest, CallerIdsAreNeverRefused) {
  struct Case {
    const char* from;
    const char* identity;  // "" when unidentified
  };
  const Case cases[] = {{"sip:+33612340003@trunk.example.com", "+33612340003"},
                        {"3010", ""},
                        {"CLIP_NO_SCREENING", ""},
                        {"0000000000", ""},
                        {"+33000000000", ""},
                        {"tel:+33612340004;phone-context=example.com", "+33612340004"}};
  int n = 0;
  for (const Case& c : cases) {
    std::string id = "cid-" + std::to_string(n++);
    nlohmann::json body = {{"call_id", id},
                           {"direction", "inbound"},
                           {"from", c.from},
                           {"state", "ended"},
                           {"duration", 30}};
    auto response = PostGeneric(body.dump());
    ASSERT_EQ(response.status, 202) << c.from << " " << response.body;
    const auto& [key, event] = publisher_.published.back();
    EXPECT_EQ(event.call().from_number(), c.from);
    if (*c.identity) {
      ASSERT_EQ(event.identities_size(), 1) << c.from;
      EXPECT_EQ(event.identities(0).value(), c.identity);
    } else {
      EXPECT_EQ(event.identities_size(), 0) << c.from;
      EXPECT_EQ(key, "generic:" + id);
    }
  }
  // Twilio's From values. A Twilio Client and a SIP Domain's user are our own endpoints calling
  // out: the callee is the identity (TwilioFoldTest.OwnEndpointCallingOutIsOutbound); another
  // account's SIP Domain is an unidentified caller (TwilioFoldTest.OtherAccountsSipUserIsACaller).
  const Case twilio[] = {{"client:alice", "+33187654321"},
                         {"sip:bob@example.sip.twilio.com", "+33187654321"},
                         {"sip:carol@othercorp.sip.twilio.com", ""},
                         {"sip:+33612340005@example.sip.twilio.com", "+33612340005"},
                         {"anonymous", ""},
                         {"+266696687", ""}};
  for (const Case& c : twilio) {
    std::string sid = "CA9" + std::to_string(n++);
    std::string body = "CallSid=" + sid +
                       "&CallStatus=no-answer&Direction=inbound&From=" + UrlEncode(c.from) +
                       "&To=%2B33187654321";
    auto response = PostTwilio("/v1/twilio/voice", body);
    ASSERT_EQ(response.status, 200) << c.from << " " << response.body;
    const auto& [key, event] = publisher_.published.back();
    EXPECT_EQ(event.call().call_id(), "twilio:" + sid);
    EXPECT_EQ(event.identities_size(), *c.identity ? 1 : 0) << c.from;
  }
}

// Protects: every refusal is logged with its reason (rate-limited per code, no body, no
// numbers): a wrong TELEPHONY_TWILIO_PUBLIC_URL shows the URL the signature was checked
// against; a 422 names its fields.
TEST_F(ServiceTest, RefusalsAreLogged) {
  CapturedLog captured;
  Service();
  // Twilio signed the URL it called; the service is configured with another one.
  options_.twilio_public_url = "https://calls.example.org/hooks";
  EXPECT_EQ(PostTwilio("/v1/twilio/voice", TwilioCall("CA44", "no-answer")).status, 401);
  EXPECT_EQ(PostTwilio("/v1/twilio/voice", TwilioCall("CA45", "no-answer")).status, 401);
  EXPECT_EQ(PostGeneric(R"({"call_id":"x","direction":"up","state":"nope"})").status, 422);
  const std::string log = captured.Text();
  EXPECT_THAT(log, HasSubstr("refused POST /v1/twilio/voice with 401 bad_signature"));
  EXPECT_THAT(log, HasSubstr("https://leads.example/telephony/v1/twilio/voice"));
  EXPECT_THAT(log, HasSubstr("TELEPHONY_TWILIO_PUBLIC_URL"));
  // The second bad signature within the second is not logged.
  size_t first = log.find("bad_signature");
  EXPECT_EQ(log.find("refused POST /v1/twilio/voice", first + 1), std::string::npos);
  EXPECT_THAT(log, HasSubstr("422 invalid_fields: direction: must be inbound or outbound; state:"));
  EXPECT_THAT(log, ::testing::Not(HasSubstr("+33611227788")));
}

/// The lines logged so far that contain `word`.
std::vector<std::string> LinesWith(const std::string& log, const std::string& word) {
  std::vector<std::string> lines;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    if (line.find(word) != std::string::npos) lines.push_back(line);
  }
  return lines;
}

// Protects: each call event Kafka acknowledged leaves one info line — provider, call id, event
// id, outcome, direction, talk time — with the numbers masked to their last two digits and
// nothing else of the call (operator, line, recording URL); a provider's retry of the settled
// call (a republication) adds no second line; an event Kafka did not take has none (its warning
// instead); a recording's own event has its line (trial 89c #8: published calls left no log
// line).
TEST_F(ServiceTest, OneLinePerPublishedCallWithoutNumbers) {
  CapturedLog captured;
  const std::string answered =
      R"({"call_id":"log-1","direction":"inbound","from":"+33611227788","to":"+33187654321",)"
      R"("line":"sales-line","state":"ended","duration":42,"operator":"alice@example.org",)"
      R"("recording_url":"https://pbx.example/rec/secret-1.mp3"})";
  auto first = PostGeneric(answered);
  ASSERT_EQ(first.status, 202) << first.body;
  // The provider's retry, a second later (another signature): answered, not published again.
  ASSERT_EQ(PostGeneric(answered, std::nullopt, "1700000001").status, 202);
  ASSERT_EQ(publisher_.published.size(), 1u);

  publisher_.status = absl::UnavailableError("not enough replicas");
  EXPECT_EQ(PostGeneric(Generic("log-2", "missed", "")).status, 503);
  publisher_.status = absl::OkStatus();

  auto recorded = Call(&TelephonyService::HandleTwilioRecording,
                       TwilioRequest("/v1/twilio/recording",
                                     "CallSid=CA0077&AccountSid=ACx&RecordingSid=RE0077&"
                                     "RecordingUrl=https%3A%2F%2Fapi.twilio.com%2FRE0077&"
                                     "RecordingStatus=completed"));
  ASSERT_EQ(recorded.status, 200) << recorded.body;
  const std::string log = captured.Text();

  std::vector<std::string> published = LinesWith(log, "telephony: published");
  ASSERT_EQ(published.size(), 2u) << log;
  EXPECT_THAT(published[0], HasSubstr("[info]"));
  EXPECT_THAT(published[0],
              HasSubstr("published generic call generic:log-1 event " +
                        Json(first)["event_id"].get<std::string>() +
                        " outcome=answered direction=inbound duration=42s from=**88 to=**21"));
  EXPECT_THAT(published[1], HasSubstr("published twilio call twilio:CA0077 event "));
  EXPECT_THAT(published[1], HasSubstr("outcome=recording"));
  EXPECT_TRUE(LinesWith(log, "call generic:log-2").empty());
  EXPECT_EQ(LinesWith(log, "not acknowledged by Kafka").size(), 1u);
  for (const char* secret :
       {"611227788", "187654321", "alice", "sales-line", "secret-1", "RE0077"}) {
    EXPECT_THAT(log, ::testing::Not(HasSubstr(secret))) << secret;
  }
}

TEST(MaskedNumberTest, KeepsTheLastTwoCharactersOnly) {
  EXPECT_EQ(MaskedNumber("+33611227788"), "**88");
  EXPECT_EQ(MaskedNumber("201"), "**01");
  EXPECT_EQ(MaskedNumber("7"), "**");
  EXPECT_EQ(MaskedNumber(""), "none");
}

}  // namespace
}  // namespace leadflow::telephony

namespace leadflow::telephony {
namespace {

// A Redis server of the test's own (the test command's is shared by every test: pausing or
// killing it would disturb the others), on a free port; killed at the end.
class PrivateRedis {
 public:
  PrivateRedis() : port_(testing::FreePort()) {
    process_ = std::make_unique<testing::Process>(
        std::vector<std::string>{"/usr/bin/redis-server", "--port", std::to_string(port_), "--bind",
                                 "127.0.0.1", "--save", "", "--appendonly", "no"},
        std::map<std::string, std::string>{}, testing::UniqueName("private-redis") + ".log");
    redis::Client probe(options());
    EXPECT_TRUE(
        testing::WaitFor([&probe] { return probe.Run({"PING"}).ok(); }, std::chrono::seconds(10)))
        << process_->Log();
  }
  redis::Options options() const {
    redis::Options options;
    options.port = port_;
    options.key_prefix = "t:";
    return options;
  }
  testing::Process& process() { return *process_; }

 private:
  int port_;
  std::unique_ptr<testing::Process> process_;
};

class StoreWaitTest : public ServiceTest {
 protected:
  double Metric(const std::string& series) {
    return testing::MetricValue(registry_.Render(), series).value_or(-1);
  }
};

// Protects: the requests waiting for the call store (Redis) are bounded: with Redis holding
// its answer, TELEPHONY_MAX_STORE_WAITING requests wait (the gauge says so) and the next one is
// answered at once 503 call_store_busy + Retry-After, counted, the store untouched; once Redis
// answers, the waiting request is published and answered 202, and the gauge is back to 0.
TEST_F(StoreWaitTest, WaitingForTheStoreIsBounded) {
  PrivateRedis redis;
  redis::Options options = redis.options();
  options.timeout = std::chrono::seconds(20);  // Redis's pause holds the request, no timeout
  RedisCallStore store(options);
  options_.call_store = &store;
  options_.max_store_waiting = 1;
  redis::Client admin(redis.options());
  // Write commands (the Lua steps) wait; reads and CLIENT UNPAUSE go through.
  ASSERT_TRUE(admin.Run({"CLIENT", "PAUSE", "20000", "WRITE"}).ok());
  auto first = StartNoWait(Service(), &TelephonyService::HandleGeneric,
                           GenericRequest(Generic("w-1", "ended", R"(,"duration":42)")));
  EXPECT_EQ(Service().store_waiting(), 1u);
  EXPECT_EQ(Metric("telephony_call_store_waiting"), 1);
  auto second = StartNoWait(Service(), &TelephonyService::HandleGeneric,
                            GenericRequest(Generic("w-2", "ended", R"(,"duration":42)")));
  ASSERT_TRUE(second->has_value());
  EXPECT_EQ((*second)->status, 503);
  EXPECT_EQ(Json(**second)["error"], "call_store_busy");
  EXPECT_EQ(RetryAfter(**second), "5");
  EXPECT_FALSE(first->has_value());

  ASSERT_TRUE(admin.Run({"CLIENT", "UNPAUSE"}).ok());
  ASSERT_TRUE(
      testing::WaitFor([&] { return Service().store_waiting() == 0; }, std::chrono::seconds(10)));
  ASSERT_TRUE(first->has_value());
  EXPECT_EQ((*first)->status, 202) << (*first)->body;
  EXPECT_EQ(Json(**first)["status"], "published");
  ASSERT_EQ(publisher_.published.size(), 1u);
  EXPECT_EQ(publisher_.published[0].second.call().call_id(), "generic:w-1");
  EXPECT_EQ(Metric("telephony_call_store_waiting"), 0);
  EXPECT_EQ(Metric("telephony_call_store_busy_total"), 1);
  // The refused report touched nothing: its call is unknown to the store.
  auto keys = admin.Run({"KEYS", std::string("t:") + RedisCallStore::kFormat + "call:*w-2*"});
  ASSERT_TRUE(keys.ok());
  EXPECT_TRUE(keys->elements.empty());
}

// Protects: a request waiting on Redis is answered 503 call_store_unavailable + Retry-After,
// never left hanging, when Redis stalls past TELEPHONY_REDIS_TIMEOUT_MS and when Redis dies
// under it; nothing is published, the failure is counted, and the gauge is back to 0.
TEST_F(StoreWaitTest, RedisFailingMidFlightAnswers503) {
  PrivateRedis redis;
  redis::Client admin(redis.options());

  // Stalled: the pause outlasts the round-trip timeout.
  {
    redis::Options options = redis.options();
    options.timeout = std::chrono::milliseconds(300);
    RedisCallStore store(options);
    options_.call_store = &store;
    TelephonyService service(options_, &publisher_, &registry_, [this] { return now_; });
    ASSERT_TRUE(admin.Run({"CLIENT", "PAUSE", "20000", "WRITE"}).ok());
    auto stalled = StartNoWait(service, &TelephonyService::HandleGeneric,
                               GenericRequest(Generic("m-1", "ended", R"(,"duration":42)")));
    ASSERT_TRUE(
        testing::WaitFor([&] { return service.store_waiting() == 0; }, std::chrono::seconds(10)));
    ASSERT_TRUE(stalled->has_value());
    EXPECT_EQ((*stalled)->status, 503);
    EXPECT_EQ(Json(**stalled)["error"], "call_store_unavailable");
    EXPECT_EQ(RetryAfter(**stalled), "5");
    ASSERT_TRUE(admin.Run({"CLIENT", "UNPAUSE"}).ok());
    store.Shutdown();
  }

  // Dead: Redis is killed while the request waits for its answer.
  redis::Options options = redis.options();
  options.timeout = std::chrono::seconds(20);
  RedisCallStore store(options);
  options_.call_store = &store;
  metrics::Registry registry;
  TelephonyService service(options_, &publisher_, &registry, [this] { return now_; });
  ASSERT_TRUE(admin.Run({"CLIENT", "PAUSE", "20000", "WRITE"}).ok());
  auto waiting = StartNoWait(service, &TelephonyService::HandleGeneric,
                             GenericRequest(Generic("m-2", "ended", R"(,"duration":42)")));
  EXPECT_EQ(service.store_waiting(), 1u);
  EXPECT_FALSE(waiting->has_value());
  redis.process().Signal(SIGKILL);
  ASSERT_TRUE(
      testing::WaitFor([&] { return service.store_waiting() == 0; }, std::chrono::seconds(10)))
      << "a request waiting on a dead Redis was never answered";
  ASSERT_TRUE(waiting->has_value());
  EXPECT_EQ((*waiting)->status, 503);
  EXPECT_EQ(Json(**waiting)["error"], "call_store_unavailable");
  EXPECT_EQ(RetryAfter(**waiting), "5");
  // Redis still down: the next report is refused too, at once.
  auto next = Start(service, &TelephonyService::HandleGeneric,
                    GenericRequest(Generic("m-3", "ended", R"(,"duration":42)")));
  ASSERT_TRUE(next->has_value());
  EXPECT_EQ((*next)->status, 503);
  EXPECT_TRUE(publisher_.published.empty());
  EXPECT_EQ(testing::MetricValue(registry.Render(),
                                 "telephony_call_store_failures_total{action=\"refused\"}")
                .value_or(-1),
            2);
  EXPECT_EQ(testing::MetricValue(registry.Render(), "telephony_call_store_waiting").value_or(-1),
            0);
}

std::string Recording(const std::string& call_sid, const std::string& recording_sid) {
  return "AccountSid=AC0000&CallSid=" + call_sid + "&RecordingSid=" + recording_sid +
         "&RecordingStatus=completed&RecordingUrl=https%3A%2F%2Fapi.twilio.com%2F2010-04-01%2F"
         "Accounts%2FAC0000%2FRecordings%2F" +
         recording_sid + "&RecordingDuration=14&RecordingChannels=1&RecordingSource=RecordVerb";
}

// Protects: a Twilio recording callback never holds the request's thread on Redis: it waits for
// the call store's answer like a report (the gauge counts it, within
// TELEPHONY_MAX_STORE_WAITING: past it 503 call_store_busy), and when Redis dies under it, it is
// answered 503 call_store_unavailable + Retry-After, never left hanging, nothing published.
// With Redis back, the recording is published with its call's outcome.
TEST_F(StoreWaitTest, RecordingCallbackWaitsForRedisOffTheRequestThread) {
  {
    PrivateRedis redis;
    redis::Options options = redis.options();
    options.timeout = std::chrono::seconds(20);  // Redis's pause holds the request, no timeout
    RedisCallStore store(options);
    options_.call_store = &store;
    options_.max_store_waiting = 1;
    metrics::Registry registry;
    TelephonyService service(options_, &publisher_, &registry, [this] { return now_; });
    redis::Client admin(redis.options());
    ASSERT_TRUE(admin.Run({"CLIENT", "PAUSE", "20000", "WRITE"}).ok());
    auto waiting =
        StartNoWait(service, &TelephonyService::HandleTwilioRecording,
                    TwilioRequest("/v1/twilio/recording", Recording("CA7001", "RE7001")));
    EXPECT_EQ(service.store_waiting(), 1u);
    EXPECT_FALSE(waiting->has_value());
    auto busy = StartNoWait(service, &TelephonyService::HandleTwilioRecording,
                            TwilioRequest("/v1/twilio/recording", Recording("CA7002", "RE7002")));
    ASSERT_TRUE(busy->has_value());
    EXPECT_EQ((*busy)->status, 503);
    EXPECT_EQ(Json(**busy)["error"], "call_store_busy");

    redis.process().Signal(SIGKILL);
    ASSERT_TRUE(
        testing::WaitFor([&] { return service.store_waiting() == 0; }, std::chrono::seconds(10)))
        << "a recording callback waiting on a dead Redis was never answered";
    ASSERT_TRUE(waiting->has_value());
    EXPECT_EQ((*waiting)->status, 503) << (*waiting)->body;
    EXPECT_EQ(Json(**waiting)["error"], "call_store_unavailable");
    EXPECT_EQ(RetryAfter(**waiting), "5");
    EXPECT_TRUE(publisher_.published.empty());
    EXPECT_EQ(testing::MetricValue(registry.Render(),
                                   "telephony_call_store_failures_total{action=\"refused\"}")
                  .value_or(-1),
              1);
    store.Shutdown();
  }

  // Redis back (a new one): the call is settled, then its recording carries its outcome.
  PrivateRedis redis;
  RedisCallStore store(redis.options());
  options_.call_store = &store;
  TelephonyService service(options_, &publisher_, &registry_, [this] { return now_; });
  auto settled = Start(service, &TelephonyService::HandleTwilioVoice,
                       TwilioRequest("/v1/twilio/voice", kTwilioNoAnswer));
  ASSERT_TRUE(settled->has_value());
  ASSERT_EQ((*settled)->status, 200) << (*settled)->body;
  auto recorded = Start(service, &TelephonyService::HandleTwilioRecording,
                        TwilioRequest("/v1/twilio/recording", Recording("CA1111", "RE2222")));
  ASSERT_TRUE(recorded->has_value());
  EXPECT_EQ((*recorded)->status, 200) << (*recorded)->body;
  ASSERT_EQ(publisher_.published.size(), 2u);
  const auto& event = publisher_.published[1].second;
  EXPECT_TRUE(event.call().recording_only());
  EXPECT_EQ(event.call().outcome(), CallEvent::MISSED);
  EXPECT_EQ(event.call().from_number(), "+33612345678");
  EXPECT_THAT(event.call().recording_url(), HasSubstr("RE2222"));
  store.Shutdown();
}

// Protects: a /metrics scrape never waits for Redis: with Redis stopped (SIGSTOP) and a
// round-trip timeout far longer than the wait below, the scrape answers with the open calls as
// last read and their age, which grows; once Redis answers again, scrapes show the new count.
TEST_F(StoreWaitTest, MetricsScrapeNeverWaitsForRedis) {
  PrivateRedis redis;
  redis::Options options = redis.options();
  options.timeout = std::chrono::seconds(60);
  RedisCallStore store(options);
  options_.call_store = &store;
  auto ringing = StartGeneric(Generic("s-1", "ringing"));
  ASSERT_TRUE(ringing->has_value());
  ASSERT_EQ((*ringing)->status, 202) << (*ringing)->body;
  // Each scrape asks Redis for the next count without waiting: a later scrape shows it.
  ASSERT_TRUE(testing::WaitFor([&] { return Metric("telephony_open_calls") == 1; },
                               std::chrono::seconds(10)));

  redis.process().Signal(SIGSTOP);
  auto scrape = std::async(std::launch::async, [this] { return registry_.Render(); });
  bool answered = scrape.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  if (!answered) {
    redis.process().Signal(SIGCONT);
  }
  ASSERT_TRUE(answered) << "a scrape waited for a stopped Redis";
  const std::string text = scrape.get();
  EXPECT_EQ(testing::MetricValue(text, "telephony_open_calls"), 1);
  const double age = testing::MetricValue(text, "telephony_open_calls_age_seconds").value_or(-1);
  EXPECT_GE(age, 0);
  EXPECT_TRUE(testing::WaitFor([&] { return Metric("telephony_open_calls_age_seconds") > age; },
                               std::chrono::seconds(10)))
      << "the age of the count does not grow while Redis does not answer";

  redis.process().Signal(SIGCONT);
  auto second = StartGeneric(Generic("s-2", "ringing"));
  ASSERT_TRUE(second->has_value());
  ASSERT_EQ((*second)->status, 202) << (*second)->body;
  EXPECT_TRUE(testing::WaitFor([&] { return Metric("telephony_open_calls") == 2; },
                               std::chrono::seconds(10)));
  store.Shutdown();
}

// Protects: telephony_calls_overdue_seconds, what tells an operator that due calls are not
// being decided (no ticker running) before a sales team misses a call-back. A call scheduled
// for its timeout is not late until then; past it, the gauge says by how long (as last read
// from Redis); once the ticker has decided and published it, nothing is late.
TEST_F(StoreWaitTest, OverdueCallsAreMeasured) {
  PrivateRedis redis;
  RedisCallStore store(redis.options());
  options_.call_store = &store;
  auto ringing = StartGeneric(Generic("late-1", "ringing"));
  ASSERT_TRUE(ringing->has_value());
  ASSERT_EQ((*ringing)->status, 202) << (*ringing)->body;
  ASSERT_TRUE(testing::WaitFor([&] { return Metric("telephony_open_calls") == 1; },
                               std::chrono::seconds(10)));
  EXPECT_EQ(Metric("telephony_calls_overdue_seconds"), 0);
  now_ = kNow + options_.calls.open_ttl - std::chrono::seconds(1);
  EXPECT_EQ(Metric("telephony_calls_overdue_seconds"), 0);
  now_ = kNow + options_.calls.open_ttl + std::chrono::seconds(90);
  EXPECT_EQ(Metric("telephony_calls_overdue_seconds"), 90);
  Service().Tick();
  ASSERT_EQ(publisher_.published.size(), 1u);
  EXPECT_TRUE(publisher_.published[0].second.call().incomplete());
  EXPECT_TRUE(testing::WaitFor([&] { return Metric("telephony_calls_overdue_seconds") == 0; },
                               std::chrono::seconds(10)));
  EXPECT_EQ(Metric("telephony_open_calls"), 0);
  store.Shutdown();
}

// Protects: with the state of calls in Redis (shared by the replicas), a final report's retry
// is published again while Kafka has not acknowledged the call (the first publication held or
// refused), and once it has, answered as the first report was without a publication, at
// another replica too.
TEST_F(StoreWaitTest, RetriesAfterTheAcknowledgementAreNotPublishedAgain) {
  RedisCallStore store(testing::RedisTestOptions());
  options_.call_store = &store;
  metrics::Registry other_registry;
  TelephonyService other(options_, &publisher_, &other_registry, [this] { return now_; });
  const std::string report = Generic("rack-1", "ended", R"(,"duration":42)");
  publisher_.hold = true;
  auto first = StartGeneric(report);
  auto retry = Start(Service(), &TelephonyService::HandleGeneric,
                     GenericRequest(report, std::nullopt, "1700000001"));
  EXPECT_EQ(publisher_.held.size(), 2u);
  publisher_.hold = false;
  publisher_.Acknowledge(absl::OkStatus());
  ASSERT_TRUE(first->has_value() && retry->has_value());
  EXPECT_EQ((*first)->status, 202);
  ASSERT_TRUE(testing::WaitFor(
      [&store] { return store.pending() == 0 && store.unschedules_waiting() == 0; },
      std::chrono::seconds(10)));
  auto late = Start(other, &TelephonyService::HandleGeneric,
                    GenericRequest(report, std::nullopt, "1700000002"));
  ASSERT_TRUE(late->has_value());
  EXPECT_EQ((*late)->status, 202);
  EXPECT_EQ((*late)->body, (*first)->body);
  EXPECT_EQ(publisher_.published.size(), 2u);
  EXPECT_EQ(testing::MetricValue(other_registry.Render(),
                                 "telephony_retries_already_in_kafka_total{provider=\"generic\"}"),
            1);

  publisher_.status = absl::UnavailableError("not enough replicas");
  const std::string refused = Generic("rack-2", "ended", R"(,"duration":7)");
  EXPECT_EQ(PostGeneric(refused).status, 503);
  publisher_.status = absl::OkStatus();
  auto again = Start(other, &TelephonyService::HandleGeneric,
                     GenericRequest(refused, std::nullopt, "1700000001"));
  ASSERT_TRUE(again->has_value());
  EXPECT_EQ((*again)->status, 202);
  ASSERT_EQ(publisher_.published.size(), 3u);
  EXPECT_EQ(publisher_.published[2].second.call().call_id(), "generic:rack-2");
  store.Shutdown();
}

// Late recordings (a report bringing a recording after its call was settled), on the in-process
// store and on the Redis shared by replicas.
class LateRecordingTest : public ServiceTest, public ::testing::WithParamInterface<bool> {
 protected:
  LateRecordingTest() {
    if (GetParam()) {
      redis_ = std::make_unique<RedisCallStore>(testing::RedisTestOptions());
      options_.call_store = redis_.get();
    }
  }
  ~LateRecordingTest() override {
    if (redis_) {
      redis_->Shutdown();
    }
  }
  /// Returns once the store took every step submitted (Kafka's confirmations included), so
  /// that a call's publication reads as confirmed.
  void Quiet() {
    if (redis_) {
      ASSERT_TRUE(testing::WaitFor(
          [this] { return redis_->pending() == 0 && redis_->unschedules_waiting() == 0; },
          std::chrono::seconds(10)));
    }
  }
  /// The event ids of the recordings published, in order.
  std::vector<std::string> Recordings() const {
    std::vector<std::string> ids;
    for (const auto& [key, event] : publisher_.published) {
      if (event.call().recording_only()) {
        ids.push_back(event.event_id());
      }
    }
    return ids;
  }
  std::unique_ptr<RedisCallStore> redis_;
};

// Protects: a sender posting ever-new recording URLs for one settled call publishes at most
// TELEPHONY_MAX_LATE_RECORDINGS (20, crm-core's cap per activity) of them, counted over every
// replica sharing the call store; past it the report is answered 2xx (no retry) with the status
// "recording_not_published", nothing published, counted in
// telephony_ignored_total{reason="late_recordings_cap"}. A retry of a recording published is
// answered and published as before (same event id) and takes no slot.
TEST_P(LateRecordingTest, LateRecordingsPerCallAreCapped) {
  metrics::Registry other_registry;
  std::optional<TelephonyService> other;
  if (GetParam()) {
    other.emplace(options_, &publisher_, &other_registry, [this] { return now_; });
  }
  TelephonyService& replica_b = other ? *other : Service();
  ASSERT_EQ(PostGeneric(Generic("cap-rec", "voicemail")).status, 202);
  Quiet();
  const std::string call_event = CallEventId("generic", "cap-rec");
  int timestamp = 1700000001;
  auto post = [&](int file, const std::string& state = "voicemail") {
    const std::string body = Generic(
        "cap-rec", state,
        R"(,"recording_url":"https://pbx.example.com/vm/)" + std::to_string(file) + R"(.wav")");
    // Every other report at the other replica.
    TelephonyService& replica = file % 2 == 0 ? Service() : replica_b;
    auto answer = Start(replica, &TelephonyService::HandleGeneric,
                        GenericRequest(body, std::nullopt, std::to_string(timestamp++)));
    Quiet();
    EXPECT_TRUE(answer->has_value());
    return answer->value_or(http::Response{});
  };
  for (int file = 0; file < 20; ++file) {
    auto answer = post(file);
    ASSERT_EQ(answer.status, 202) << answer.body;
    EXPECT_EQ(Json(answer)["status"], "published");
  }
  ASSERT_EQ(Recordings().size(), 20u);
  const std::string fifth = Recordings()[4];

  auto past = post(20);
  EXPECT_EQ(past.status, 202) << past.body;
  EXPECT_EQ(Json(past)["status"], "recording_not_published");
  EXPECT_EQ(Json(past)["event_id"], call_event);
  EXPECT_EQ(Recordings().size(), 20u);
  auto intermediate = post(21, "answered");
  EXPECT_EQ(intermediate.status, 200) << intermediate.body;
  EXPECT_EQ(Json(intermediate)["status"], "recording_not_published");
  EXPECT_EQ(Recordings().size(), 20u);
  const std::string capped = "telephony_ignored_total{reason=\"late_recordings_cap\"}";
  EXPECT_EQ(testing::MetricValue(registry_.Render(), capped).value_or(0) +
                testing::MetricValue(other_registry.Render(), capped).value_or(0),
            2);

  // The sender's retry of a recording published: as before, and no slot taken.
  auto retry = post(4);
  EXPECT_EQ(retry.status, 202) << retry.body;
  EXPECT_EQ(Json(retry)["status"], "published");
  ASSERT_EQ(Recordings().size(), 21u);
  EXPECT_EQ(Recordings()[20], fifth);
  EXPECT_EQ(Json(post(22))["status"], "recording_not_published");
  EXPECT_EQ(Recordings().size(), 21u);

  // Another call has its own count.
  ASSERT_EQ(PostGeneric(Generic("cap-rec-2", "voicemail",
                                R"(,"recording_url":"https://pbx.example.com/vm/x.wav")"))
                .status,
            202);
  Quiet();
  auto own = PostGeneric(
      Generic("cap-rec-2", "voicemail", R"(,"recording_url":"https://pbx.example.com/vm/y.wav")"),
      std::nullopt, "1700000100");
  EXPECT_EQ(Json(own)["status"], "published");
  EXPECT_EQ(Recordings().size(), 22u);
}

// Protects: Twilio's <Dial record> action bringing its recording after the call was published
// and the recording status callback of the same file are one event (one event id: the
// RecordingSid, which the action carries, or its recording URL names), in either order, so
// that crm-core counts the file once.
TEST_P(LateRecordingTest, TwilioDialRecordAndRecordingCallbackAreOneEvent) {
  auto action = [](const std::string& sid, const std::string& recording, bool with_sid) {
    return TwilioCall(sid, "completed",
                      "&DialCallStatus=completed&DialCallSid=CAleg" + sid +
                          "&DialCallDuration=35&RecordingUrl=https%3A%2F%2Fapi.twilio.com%2F"
                          "2010-04-01%2FAccounts%2FAC0000%2FRecordings%2F" +
                          recording + (with_sid ? "&RecordingSid=" + recording : ""));
  };
  auto callback = [this](const std::string& sid, const std::string& recording) {
    auto answer = Start(Service(), &TelephonyService::HandleTwilioRecording,
                        TwilioRequest("/v1/twilio/recording", Recording(sid, recording)));
    Quiet();
    EXPECT_TRUE(answer->has_value());
    return answer->value_or(http::Response{}).status;
  };
  auto voice = [this](const std::string& body) {
    auto answer = StartTwilio(body);
    Quiet();
    EXPECT_TRUE(answer->has_value());
    return answer->value_or(http::Response{}).status;
  };
  struct Case {
    const char* sid;
    const char* recording;
    bool action_first;
    bool with_sid;  // the action carries RecordingSid
  };
  const Case cases[] = {{"CAone1", "RE00000000000000000000000000000001", true, true},
                        {"CAone2", "RE00000000000000000000000000000002", false, true},
                        {"CAone3", "RE00000000000000000000000000000003", true, false},
                        {"CAone4", "RE00000000000000000000000000000004", false, false}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.sid);
    publisher_.published.clear();
    ASSERT_EQ(voice(TwilioCall(c.sid, "completed", "&CallDuration=40")), 200);
    ASSERT_EQ(publisher_.published.size(), 1u);
    if (c.action_first) {
      ASSERT_EQ(voice(action(c.sid, c.recording, c.with_sid)), 200);
      ASSERT_EQ(callback(c.sid, c.recording), 200);
    } else {
      ASSERT_EQ(callback(c.sid, c.recording), 200);
      ASSERT_EQ(voice(action(c.sid, c.recording, c.with_sid)), 200);
    }
    std::vector<std::string> ids = Recordings();
    ASSERT_EQ(ids.size(), 2u);
    EXPECT_EQ(ids[0], ids[1]) << "one file, two events";
  }
}

// Protects: Twilio's recording status callbacks of a settled call count against the same cap as
// the late recordings reports bring (TELEPHONY_MAX_LATE_RECORDINGS), the file of an action and
// of its callback once: a signed sender posting ever-new RecordingSids for one call published
// one event each, without bound. Past the cap the callback is answered 200 (TwiML: Twilio does
// not retry), nothing published; a retry of a published one is published again.
TEST_P(LateRecordingTest, TwilioRecordingCallbacksOfASettledCallAreCapped) {
  auto callback = [this](const std::string& recording) {
    auto answer = Start(Service(), &TelephonyService::HandleTwilioRecording,
                        TwilioRequest("/v1/twilio/recording", Recording("CAcap", recording)));
    Quiet();
    EXPECT_TRUE(answer->has_value());
    return answer->value_or(http::Response{}).status;
  };
  auto sid = [](int n) {
    std::string digits = std::to_string(n);
    return "RE" + std::string(32 - digits.size(), '0') + digits;
  };
  auto completed = StartTwilio(TwilioCall("CAcap", "completed", "&CallDuration=40"));
  Quiet();
  ASSERT_EQ(completed->value_or(http::Response{}).status, 200);
  for (int n = 1; n <= 20; ++n) {
    ASSERT_EQ(callback(sid(n)), 200) << n;
  }
  ASSERT_EQ(Recordings().size(), 20u);
  EXPECT_EQ(callback(sid(21)), 200);
  EXPECT_EQ(Recordings().size(), 20u) << "a 21st file of one settled call was published";
  EXPECT_EQ(testing::MetricValue(registry_.Render(),
                                 "telephony_ignored_total{reason=\"late_recordings_cap\"}")
                .value_or(0),
            1);
  EXPECT_EQ(callback(sid(3)), 200);  // Twilio's retry of a published one
  ASSERT_EQ(Recordings().size(), 21u);
  EXPECT_EQ(Recordings()[20], Recordings()[2]);
}

INSTANTIATE_TEST_SUITE_P(Stores, LateRecordingTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Redis" : "Memory"; });

}  // namespace
}  // namespace leadflow::telephony
