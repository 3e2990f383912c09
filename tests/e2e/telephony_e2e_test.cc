// telephony-ingest seen from outside: the built binary, real HTTP with curl (the provider's own
// formats), a scripted Asterisk peer over TCP, the Kafka protocol (librdkafka's mock cluster in
// this process, so that produce requests can be made to fail). Needs LEADFLOW_BUILD_DIR.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "ingest/form_params.h"
#include "ingest/signature.h"
#include "kafka/types.h"
#include "leadflow/events/v1/inbound_event.pb.h"
#include "telephony-ingest/ami_peer.h"
#include "testing/testing.h"

namespace leadflow {
namespace {

using events::v1::CallEvent;
using events::v1::InboundEvent;
using ::testing::HasSubstr;
using testing::ShellQuote;

constexpr char kSecret[] = "e2e-webhook-secret-0123456789";
constexpr char kTwilioToken[] = "e2e-twilio-auth-token";
constexpr char kPublicUrl[] = "https://leads.example.com/telephony";

struct CurlResult {
  int status = 0;
  std::string headers;
  std::string body;
  nlohmann::json Json() const { return nlohmann::json::parse(body, nullptr, false); }
};

CurlResult Curl(const std::string& args) {
  std::string output = testing::Shell("curl -s -i -H 'Expect:' --max-time 30 " + args);
  CurlResult result;
  size_t end = output.find("\r\n\r\n");
  result.headers = output.substr(0, end);
  result.body = end == std::string::npos ? "" : output.substr(end + 4);
  if (output.rfind("HTTP/1.1 ", 0) == 0) {
    result.status = std::stoi(output.substr(9, 3));
  }
  return result;
}

class Telephony {
 public:
  Telephony(const std::string& brokers, std::map<std::string, std::string> extra = {}) {
    port_ = testing::FreePort();
    ops_port_ = testing::FreePort();
    std::map<std::string, std::string> env = {
        {"TELEPHONY_KAFKA_BROKERS", brokers},
        {"TELEPHONY_HTTP_PORT", std::to_string(port_)},
        {"TELEPHONY_OPS_PORT", std::to_string(ops_port_)},
        {"TELEPHONY_WEBHOOK_SECRET", kSecret},
        {"TELEPHONY_TWILIO_AUTH_TOKEN", kTwilioToken},
        {"TELEPHONY_TWILIO_PUBLIC_URL", kPublicUrl},
        {"TELEPHONY_DELIVERY_TIMEOUT_MS", "2000"},
        {"TELEPHONY_MAX_BODY_BYTES", "4096"},
        // Unanswered generic outcomes and Twilio's parent "completed" wait this long for a
        // deciding report, then the ticker (every second) publishes them.
        {"TELEPHONY_SETTLE_MS", "1000"},
        {"LOG_LEVEL", "debug"},
    };
    for (auto& [name, value] : extra) env[name] = value;
    process_ = std::make_unique<testing::Process>(
        std::vector<std::string>{testing::BuildDir() +
                                 "/services/telephony-ingest/telephony-ingest"},
        env, "telephony-ingest");
    bool ready =
        testing::WaitFor([&] { return Ops("/readyz").status == 200 || !process_->Running(); },
                         std::chrono::seconds(30));
    if (!ready || !process_->Running()) {
      throw std::runtime_error("telephony-ingest did not start: " + process_->Log());
    }
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  CurlResult Ops(const std::string& path) const {
    return Curl(ShellQuote("http://127.0.0.1:" + std::to_string(ops_port_) + path));
  }
  /// A generic call event signed as documented.
  CurlResult PostGeneric(const std::string& body, const std::string& secret = kSecret,
                         int64_t timestamp = 0, const std::string& curl_args = "") const {
    if (timestamp == 0) {
      timestamp = std::chrono::duration_cast<std::chrono::seconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
    }
    std::string ts = std::to_string(timestamp);
    std::string signature =
        ingest::HexEncode(ingest::Hmac(ingest::HmacAlgorithm::kSha256, secret, ts + "." + body));
    return Curl(curl_args +
                " -X POST -H 'Content-Type: application/json' -H 'X-LeadFlow-Timestamp: " + ts +
                "' -H 'X-LeadFlow-Signature: sha256=" + signature + "' --data-binary " +
                ShellQuote(body) + " " + ShellQuote(url() + "/v1/calls/events"));
  }
  /// A Twilio callback as Twilio sends it: urlencoded, signed over the public URL; the proxy
  /// in front forwards /telephony/v1/... to the service's /v1/....
  CurlResult PostTwilio(const std::string& path, const std::string& body,
                        const std::string& token = kTwilioToken) const {
    auto params = *ingest::ParseFormParams(body);
    std::stable_sort(params.begin(), params.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    std::string data = std::string(kPublicUrl) + path;
    for (const auto& [name, value] : params) data += name + value;
    std::string signature =
        ingest::Base64Encode(ingest::Hmac(ingest::HmacAlgorithm::kSha1, token, data));
    return Curl(
        "-X POST -H 'Content-Type: application/x-www-form-urlencoded' "
        "-H 'User-Agent: TwilioProxy/1.1' -H 'X-Twilio-Signature: " +
        signature + "' --data-binary " + ShellQuote(body) + " " + ShellQuote(url() + path));
  }
  testing::Process& process() { return *process_; }

 private:
  int port_ = 0;
  int ops_port_ = 0;
  std::unique_ptr<testing::Process> process_;
};

class TelephonyE2eTest : public ::testing::Test {
 protected:
  TelephonyE2eTest() { kafka_.CreateTopic(kafka::kInboundTopic, 3); }

  std::vector<InboundEvent> Events() {
    std::vector<InboundEvent> events;
    for (const auto& message : testing::ReadTopic(kafka_.bootstrap(), kafka::kInboundTopic, 3,
                                                  std::chrono::seconds(20))) {
      InboundEvent event;
      if (event.ParseFromString(message.value)) events.push_back(event);
    }
    return events;
  }
  // Events of one call (by call_id), and the distinct event ids among them.
  std::vector<InboundEvent> EventsOf(const std::string& call_id) {
    std::vector<InboundEvent> of;
    for (auto& event : Events()) {
      if (event.call().call_id() == call_id) of.push_back(event);
    }
    return of;
  }
  static std::set<std::string> Ids(const std::vector<InboundEvent>& events) {
    std::set<std::string> ids;
    for (const auto& event : events) ids.insert(event.event_id());
    return ids;
  }
  bool WaitForCalls(size_t count) {
    return testing::WaitFor(
        [&] {
          std::set<std::string> calls;
          for (auto& event : Events()) calls.insert(event.call().call_id());
          return calls.size() >= count;
        },
        std::chrono::seconds(30));
  }

  testing::MockKafka kafka_;
};

std::string DocumentedScript() {
  std::ifstream file(std::string(LEADFLOW_SOURCE_DIR) + "/docs/telephony-ingest.md");
  std::stringstream text;
  text << file.rdbuf();
  std::string doc = text.str();
  size_t begin = doc.find("<!-- signing-example -->");
  size_t end = doc.find("<!-- /signing-example -->");
  if (begin == std::string::npos || end == std::string::npos) return "";
  std::string block = doc.substr(begin, end - begin);
  size_t code = block.find("```sh\n");
  size_t code_end = block.rfind("```");
  return block.substr(code + 6, code_end - code - 6);
}

// Protects: the documented shell example (openssl dgst + curl) works as written: the missed call
// is acknowledged only once in Kafka, keyed by the caller's E.164 number; sending it again
// gives the same event id (one effect in crm-core).
TEST_F(TelephonyE2eTest, DocumentedSigningExample) {
  Telephony telephony(kafka_.bootstrap());
  std::string script = DocumentedScript();
  ASSERT_THAT(script, HasSubstr("openssl dgst -sha256 -hmac"));
  std::string path = testing::UniqueName("/tmp/post-call") + ".sh";
  std::ofstream(path) << script;
  std::string env = "TELEPHONY_URL=" + ShellQuote(telephony.url()) +
                    " TELEPHONY_WEBHOOK_SECRET=" + ShellQuote(kSecret) + " sh " + path;
  int exit_code = -1;
  nlohmann::json first = nlohmann::json::parse(testing::Shell(env, &exit_code), nullptr, false);
  ASSERT_EQ(exit_code, 0);
  ASSERT_TRUE(first.is_object()) << telephony.process().Log();
  // Unanswered: kept for the settle window (an answer report could still come), then published
  // and only then answered.
  EXPECT_EQ(first["status"], "published");
  EXPECT_EQ(first["outcome"], "missed");
  nlohmann::json again = nlohmann::json::parse(testing::Shell(env), nullptr, false);
  EXPECT_EQ(again["event_id"], first["event_id"]);
  ASSERT_TRUE(testing::WaitFor([&] { return !EventsOf("generic:demo-1").empty(); },
                               std::chrono::seconds(30)));
  auto events = EventsOf("generic:demo-1");
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(Ids(events).size(), 1u);
  EXPECT_EQ(*Ids(events).begin(), first["event_id"]);
  EXPECT_EQ(events[0].identities(0).value(), "+33612345678");
  EXPECT_EQ(events[0].call().line(), "sales");
  std::remove(path.c_str());
}

// Protects: one event per call through the generic API whatever the states posted; forged,
// unsigned, oversized and wrongly typed requests are refused with their status and publish
// nothing.
TEST_F(TelephonyE2eTest, GenericApiContract) {
  Telephony telephony(kafka_.bootstrap());
  std::string base =
      R"("call_id":"g-1","direction":"inbound","from":"06 98 76 54 32","line":"support")";
  auto ringing = telephony.PostGeneric("{" + base + R"(,"state":"ringing"})");
  EXPECT_EQ(ringing.status, 202);
  EXPECT_EQ(ringing.Json()["status"], "pending");
  EXPECT_EQ(
      telephony.PostGeneric("{" + base + R"(,"state":"answered","operator":"bob@example.fr"})")
          .status,
      202);
  auto ended = telephony.PostGeneric("{" + base + R"(,"state":"ended","duration":95})");
  ASSERT_EQ(ended.status, 202) << ended.body;
  EXPECT_EQ(ended.Json()["outcome"], "answered");

  auto forged = telephony.PostGeneric("{" + base + R"(,"state":"missed","call_id":"g-2"})",
                                      "not-the-secret-at-all");
  EXPECT_EQ(forged.status, 401);
  auto stale = telephony.PostGeneric(R"({"call_id":"g-3","direction":"inbound","state":"missed"})",
                                     kSecret, 1600000000);
  EXPECT_EQ(stale.status, 401);
  EXPECT_EQ(Curl("-X POST -H 'Content-Type: application/json' --data-binary '{}' " +
                 ShellQuote(telephony.url() + "/v1/calls/events"))
                .status,
            401);
  EXPECT_EQ(telephony.PostGeneric(std::string(5000, ' ') + "{}").status, 413);
  EXPECT_EQ(Curl("-X POST -H 'Content-Type: text/plain' --data-binary x " +
                 ShellQuote(telephony.url() + "/v1/calls/events"))
                .status,
            415);
  EXPECT_EQ(telephony.PostGeneric("{oops").status, 400);
  EXPECT_EQ(telephony.PostGeneric(R"({"call_id":"g-4","direction":"up","state":"missed"})").status,
            422);

  auto events = EventsOf("generic:g-1");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].call().outcome(), CallEvent::ANSWERED);
  EXPECT_EQ(events[0].call().duration_seconds(), 95);
  EXPECT_EQ(events[0].call().operator_name(), "bob@example.fr");
  EXPECT_EQ(events[0].identities(0).value(), "+33698765432");
  for (const auto& event : Events()) {
    EXPECT_THAT(event.call().call_id(), ::testing::AnyOf("generic:g-1"));
  }
  EXPECT_EQ(testing::MetricValue(telephony.Ops("/metrics").body,
                                 "telephony_requests_rejected_total{code=\"bad_signature\"}"),
            1.0);
  // Refused by the HTTP server before the service reads the request: counted (and logged) with
  // the service's own refusals.
  EXPECT_EQ(testing::MetricValue(telephony.Ops("/metrics").body,
                                 "telephony_requests_rejected_total{code=\"body_too_large\"}"),
            1.0);
  // An unknown path is logged without the digits a PBX may have put in it.
  EXPECT_EQ(Curl("-X POST --data-binary x " + ShellQuote(telephony.url() + "/v1/calls/0612345678"))
                .status,
            404);
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        return telephony.process().Log().find("refused POST /v#/calls/# with 404 not_found") !=
               std::string::npos;
      },
      std::chrono::seconds(5)))
      << telephony.process().Log();
  EXPECT_EQ(telephony.process().Log().find("0612345678"), std::string::npos);
}

// Twilio's status callbacks for one inbound call, as Twilio posts them (every parameter it
// sends, in its order).
std::string TwilioStatus(const std::string& sid, const std::string& status,
                         const std::string& extra = "") {
  return "Called=%2B33187654321&ToState=&CallerCountry=FR&Direction=inbound&Timestamp=Tue%2C+14"
         "+Nov+2023+22%3A13%3A20+%2B0000&CallbackSource=call-progress-events&CallerState=&"
         "ToZip=&SequenceNumber=0&CallSid=" +
         sid +
         "&To=%2B33187654321&CallerZip=&ToCountry=FR&CalledZip=&ApiVersion=2010-04-01&"
         "CalledCity=&CallStatus=" +
         status +
         "&From=%2B33612345678&AccountSid=AC00000000000000000000000000000000&CalledCountry=FR&"
         "CallerCity=&ToCity=&FromCountry=FR&Caller=%2B33612345678&FromCity=&CalledState=&"
         "FromZip=&FromState=" +
         extra;
}

// Protects: Twilio's real callbacks: a ringing/in-progress/completed sequence is one answered
// call, a no-answer call is missed, a recording callback adds the recording, a retried
// callback gives the same event id, and a forged signature is 401 with nothing published.
TEST_F(TelephonyE2eTest, TwilioCallbacks) {
  Telephony telephony(kafka_.bootstrap());
  ASSERT_EQ(telephony.PostTwilio("/v1/twilio/voice", TwilioStatus("CA0001", "ringing")).status,
            200);
  ASSERT_EQ(telephony.PostTwilio("/v1/twilio/voice", TwilioStatus("CA0001", "in-progress")).status,
            200);
  // Answered by Twilio itself: waits the settle window for a <Dial> action, and is answered
  // once published.
  auto completed = telephony.PostTwilio("/v1/twilio/voice",
                                        TwilioStatus("CA0001", "completed", "&CallDuration=61"));
  ASSERT_EQ(completed.status, 200) << completed.body;
  EXPECT_THAT(completed.body, HasSubstr("<Response/>"));
  auto missed = TwilioStatus("CA0002", "no-answer");
  ASSERT_EQ(telephony.PostTwilio("/v1/twilio/voice", missed).status, 200);
  ASSERT_EQ(telephony.PostTwilio("/v1/twilio/voice", missed).status, 200);  // Twilio's retry
  EXPECT_EQ(testing::MetricValue(telephony.Ops("/metrics").body,
                                 "telephony_retries_already_in_kafka_total{provider=\"twilio\"}"),
            1.0);
  auto recording = telephony.PostTwilio(
      "/v1/twilio/recording",
      "AccountSid=AC00000000000000000000000000000000&CallSid=CA0002&RecordingSid=RE0002&"
      "RecordingUrl=https%3A%2F%2Fapi.twilio.com%2F2010-04-01%2FAccounts%2FAC00000000000000000000"
      "000000000000%2FRecordings%2FRE0002&RecordingStatus=completed&RecordingDuration=12&"
      "RecordingChannels=1&RecordingStartTime=Tue%2C+14+Nov+2023+22%3A13%3A25+%2B0000&"
      "RecordingSource=RecordVerb&RecordingTrack=both");
  EXPECT_EQ(recording.status, 200);
  auto forged = telephony.PostTwilio("/v1/twilio/voice", TwilioStatus("CA0003", "no-answer"),
                                     "someone-elses-token");
  EXPECT_EQ(forged.status, 401);
  // CA0001's "completed" waited the settle window for a <Dial> action that never came.
  ASSERT_TRUE(testing::WaitFor([&] { return !EventsOf("twilio:CA0001").empty(); },
                               std::chrono::seconds(30)));

  auto answered = EventsOf("twilio:CA0001");
  ASSERT_EQ(answered.size(), 1u);
  EXPECT_EQ(answered[0].call().outcome(), CallEvent::ANSWERED);
  EXPECT_EQ(answered[0].call().duration_seconds(), 61);
  EXPECT_EQ(answered[0].source().provider(), "twilio");
  auto no_answer = EventsOf("twilio:CA0002");
  // The call once (Twilio's retry came after Kafka had it: answered, not published again) and
  // the recording.
  ASSERT_EQ(no_answer.size(), 2u);
  std::set<std::string> ids = Ids(no_answer);
  EXPECT_EQ(ids.size(), 2u);
  int recordings = 0;
  for (const auto& event : no_answer) {
    if (event.call().recording_only()) {
      ++recordings;
      EXPECT_THAT(event.call().recording_url(), HasSubstr("RE0002"));
    } else {
      EXPECT_EQ(event.call().outcome(), CallEvent::MISSED);
    }
  }
  EXPECT_EQ(recordings, 1);
  EXPECT_TRUE(EventsOf("twilio:CA0003").empty());
}

// Protects: the Asterisk side of the built binary against a peer speaking AMI over TCP: a
// missed call, an answered call, a transfer, and a call cut by a reconnect mid-call each give
// exactly one event.
TEST_F(TelephonyE2eTest, AsteriskCalls) {
  telephony::testing::AmiPeer peer;
  Telephony telephony(kafka_.bootstrap(), {{"TELEPHONY_AMI_HOST", "127.0.0.1"},
                                           {"TELEPHONY_AMI_PORT", std::to_string(peer.port())},
                                           {"TELEPHONY_AMI_USERNAME", "leadflow"},
                                           {"TELEPHONY_AMI_SECRET", "s3cret"},
                                           {"TELEPHONY_AMI_RECONNECT_MIN_MS", "50"}});
  ASSERT_TRUE(peer.WaitLoggedIn(1, std::chrono::seconds(10))) << telephony.process().Log();
  std::string dir = std::string(LEADFLOW_SOURCE_DIR) + "/services/telephony-ingest/testdata/ami/";
  ASSERT_TRUE(peer.SendAll(telephony::testing::LoadTranscript(dir + "missed_call.txt")));
  ASSERT_TRUE(peer.SendAll(telephony::testing::LoadTranscript(dir + "transfer.txt")));
  auto answered = telephony::testing::LoadTranscript(dir + "answered_call.txt");
  ASSERT_TRUE(peer.SendAll(std::vector<std::string>(answered.begin(), answered.begin() + 5)));
  ASSERT_TRUE(WaitForCalls(2));
  peer.SetLiveChannels({{"1700000100.32", "1700000100.32"}, {"1700000100.33", "1700000100.32"}});
  peer.Cut();
  ASSERT_TRUE(peer.WaitLoggedIn(2, std::chrono::seconds(10)));
  ASSERT_TRUE(peer.SendAll(std::vector<std::string>(answered.begin() + 5, answered.end())));
  ASSERT_TRUE(WaitForCalls(3));

  auto missed = EventsOf("asterisk:1700000000.16");
  ASSERT_EQ(missed.size(), 1u);
  EXPECT_EQ(missed[0].call().outcome(), CallEvent::MISSED);
  EXPECT_EQ(missed[0].identities(0).value(), "+33612345678");
  auto transfer = EventsOf("asterisk:1700000200.48");
  ASSERT_EQ(transfer.size(), 1u);
  EXPECT_EQ(transfer[0].call().transferred_to(), "202");
  auto across = EventsOf("asterisk:1700000100.32");
  ASSERT_EQ(across.size(), 1u);
  EXPECT_EQ(across[0].call().outcome(), CallEvent::ANSWERED);
  EXPECT_EQ(across[0].call().duration_seconds(), 42);
  EXPECT_FALSE(across[0].call().incomplete());
  EXPECT_EQ(testing::MetricValue(telephony.Ops("/metrics").body, "telephony_ami_connected"), 1.0);
}

// Protects: publish then answer. While the broker fails every produce request the callback is
// answered 503 with Retry-After (never 2xx); the provider's retry once the broker is back is
// 202, and the topic holds that call under one event id only.
TEST_F(TelephonyE2eTest, KafkaFailingThenRetry) {
  Telephony telephony(kafka_.bootstrap());
  // Answered: published before the answer (an unanswered outcome waits the settle window).
  std::string body =
      R"({"call_id":"k-1","direction":"inbound","from":"+33611111111","state":"ended",)"
      R"("duration":30})";
  kafka_.FailProduceRequests();
  auto refused = telephony.PostGeneric(body);
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_THAT(refused.headers, HasSubstr("Retry-After"));
  kafka_.RestoreProduceRequests();
  auto retried = telephony.PostGeneric(body);
  ASSERT_EQ(retried.status, 202) << retried.body;

  // A settling report (unanswered: missed) is not answered 2xx while the broker refuses: once
  // the settle window passed, the ticker's publication is refused and the report gets 503 +
  // Retry-After; retried with the broker back, it is 202 "published".
  std::string missed =
      R"({"call_id":"k-2","direction":"inbound","from":"+33611111112","state":"missed"})";
  kafka_.FailProduceRequests();
  auto settling = telephony.PostGeneric(missed);
  EXPECT_EQ(settling.status, 503) << settling.body;
  EXPECT_THAT(settling.headers, HasSubstr("Retry-After"));
  EXPECT_TRUE(EventsOf("generic:k-2").empty());
  kafka_.RestoreProduceRequests();
  auto settled = telephony.PostGeneric(missed);
  ASSERT_EQ(settled.status, 202) << settled.body;
  EXPECT_EQ(settled.Json()["status"], "published");
  EXPECT_EQ(settled.Json()["outcome"], "missed");
  ASSERT_FALSE(EventsOf("generic:k-2").empty());
  // A message librdkafka reported as timed out may still have been written by a retry in
  // flight when the broker came back (at least once): whatever reached the topic carries the
  // one event id, so crm-core applies the call once.
  auto events = EventsOf("generic:k-1");
  ASSERT_GE(events.size(), 1u);
  EXPECT_EQ(Ids(events), std::set<std::string>{retried.Json()["event_id"].get<std::string>()});
}

// Twilio's callbacks of one inbound call as the trial's tw.py/tw4.py posted them.
std::string TrialTwilio(const std::string& sid, const std::string& status,
                        const std::string& extra = "") {
  return "AccountSid=ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa&ApiVersion=2010-04-01&CallSid=" + sid +
         "&CallStatus=" + status +
         "&Called=%2B33187654321&CalledCountry=FR&Caller=%2B33611227788&Direction=inbound&"
         "From=%2B33611227788&FromCountry=FR&To=%2B33187654321&ToCountry=FR&"
         "Timestamp=Mon%2C+30+Nov+2026+15%3A00%3A00+%2B0000&"
         "CallbackSource=call-progress-events&SequenceNumber=0" +
         extra;
}

// Protects: two telephony-ingest replicas behind one load balancer share the state of calls in
// one Redis: a Twilio call whose ringing and <Dial> action (no-answer) reach one replica and
// whose parent "completed" (CallDuration 28) reaches the other is one missed call under one
// event id, in either order; a generic call whose `ended` reaches one replica and `answered`
// the other is one answered call.
TEST_F(TelephonyE2eTest, TwoReplicasShareOneRedis) {
  redis::Options redis = testing::RedisTestOptions();
  std::map<std::string, std::string> shared = {{"TELEPHONY_REDIS_HOST", redis.host},
                                               {"TELEPHONY_REDIS_PORT", std::to_string(redis.port)},
                                               {"TELEPHONY_REDIS_PREFIX", redis.key_prefix},
                                               {"TELEPHONY_SETTLE_MS", "3000"}};
  Telephony a(kafka_.bootstrap(), shared);
  Telephony b(kafka_.bootstrap(), shared);
  const std::string no_answer = "&DialCallStatus=no-answer&DialCallSid=CAr1c&DialCallDuration=0";
  // tw.py R1 at A, tw4.py R2 at B.
  ASSERT_EQ(a.PostTwilio("/v1/twilio/voice", TrialTwilio("CAr1", "ringing")).status, 200);
  ASSERT_EQ(a.PostTwilio("/v1/twilio/voice", TrialTwilio("CAr1", "in-progress", no_answer)).status,
            200);
  ASSERT_EQ(b.PostTwilio("/v1/twilio/voice",
                         TrialTwilio("CAr1", "completed", "&CallDuration=28&SequenceNumber=2"))
                .status,
            200);
  // The other order: the parent's completed at B first (parked, unanswered, while it settles),
  // the <Dial> action at A meanwhile.
  auto parent = std::async(std::launch::async, [&] {
    return b.PostTwilio("/v1/twilio/voice",
                        TrialTwilio("CAr2", "completed", "&CallDuration=35&SequenceNumber=2"));
  });
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        return testing::MetricValue(b.Ops("/metrics").body, "telephony_parked_requests") == 1.0;
      },
      std::chrono::seconds(10)));
  ASSERT_EQ(a.PostTwilio("/v1/twilio/voice", TrialTwilio("CAr2", "in-progress", no_answer)).status,
            200);
  EXPECT_EQ(parent.get().status, 200);
  // Generic: ended (no talk time) at A, parked; answered at B releases it with B's event id and
  // outcome.
  auto ended = std::async(std::launch::async, [&] {
    return a.PostGeneric(
        R"({"call_id":"split-1","direction":"inbound","from":"+33611227799","state":"ended"})");
  });
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        return testing::MetricValue(a.Ops("/metrics").body, "telephony_parked_requests") == 1.0;
      },
      std::chrono::seconds(10)));
  auto answered = b.PostGeneric(
      R"({"call_id":"split-1","direction":"inbound","from":"+33611227799","state":"answered",)"
      R"("operator":"ann@example.fr"})");
  ASSERT_EQ(answered.status, 202) << answered.body;
  EXPECT_EQ(answered.Json()["outcome"], "answered");
  CurlResult released = ended.get();
  ASSERT_EQ(released.status, 202) << released.body;
  EXPECT_EQ(released.Json()["status"], "published");
  EXPECT_EQ(released.Json()["outcome"], "answered");
  EXPECT_EQ(released.Json()["event_id"], answered.Json()["event_id"]);
  ASSERT_TRUE(WaitForCalls(3)) << a.process().Log() << b.process().Log();
  // Past both replicas' settle windows and ticks: whatever either would still publish is out.
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        return testing::MetricValue(a.Ops("/metrics").body, "telephony_open_calls") == 0.0 &&
               testing::MetricValue(b.Ops("/metrics").body, "telephony_open_calls") == 0.0;
      },
      std::chrono::seconds(30)));
  for (const char* sid : {"twilio:CAr1", "twilio:CAr2"}) {
    auto events = EventsOf(sid);
    ASSERT_FALSE(events.empty()) << sid;
    EXPECT_EQ(Ids(events).size(), 1u) << sid;
    for (const auto& event : events) {
      EXPECT_EQ(event.call().outcome(), CallEvent::MISSED) << sid;
      EXPECT_EQ(event.call().duration_seconds(), 0) << sid;
    }
  }
  auto generic = EventsOf("generic:split-1");
  ASSERT_FALSE(generic.empty());
  EXPECT_EQ(Ids(generic).size(), 1u);
  for (const auto& event : generic) {
    EXPECT_EQ(event.call().outcome(), CallEvent::ANSWERED);
    EXPECT_EQ(event.call().operator_name(), "ann@example.fr");
  }
}

// A Redis of the test's own (deploy/local/services.sh, a temporary directory, a free port),
// because the test freezes it: the test command's Redis is shared by the other tests.
class PrivateRedis {
 public:
  PrivateRedis() {
    char pattern[] = "/tmp/leadflow-tel-redis.XXXXXX";
    dir_ = mkdtemp(pattern);
    port_ = testing::FreePort();
    int code = 0;
    std::string output = testing::Shell(
        Script() + " redis-start " + dir_ + " " + std::to_string(port_) + " 2>&1", &code);
    if (code != 0) throw std::runtime_error("redis-start failed: " + output);
    std::ifstream pid_file(dir_ + "/redis.pid");
    pid_file >> pid_;
    if (pid_ <= 0) throw std::runtime_error("no redis.pid in " + dir_);
  }
  ~PrivateRedis() {
    Resume();
    testing::Shell(Script() + " redis-stop " + dir_ + " >/dev/null 2>&1");
    std::filesystem::remove_all(dir_);
  }
  int port() const { return port_; }
  /// Frozen (SIGSTOP): connections open, nothing answered, so every round trip times out; the
  /// data stay for when it is resumed.
  void Pause() { kill(pid_, SIGSTOP); }
  void Resume() { kill(pid_, SIGCONT); }

 private:
  static std::string Script() {
    return std::string(LEADFLOW_SOURCE_DIR) + "/deploy/local/services.sh";
  }
  std::string dir_;
  int port_ = 0;
  pid_t pid_ = 0;
};

// Protects: a webhook report is never decided on its own when the call store (Redis) is out of
// reach: it is answered 503 + Retry-After (counted), nothing is published, and the provider's
// retry once Redis is back settles the call over all its reports. Generic: `answered` kept,
// Redis frozen, `ended` (no talk time; alone it reads as missed) → 503; retried → answered.
// Twilio: Redis frozen, the parent's `completed` (CallDuration 28; alone it reads as answered)
// → 503; the <Dial> action (no-answer) with Redis back and the parent's retry settle the call
// missed (after the settle window: a later leg's action could still have said answered). Deciding
// alone published the wrong outcome under the call's one event id, and crm-core then dropped the
// right one as a duplicate.
TEST_F(TelephonyE2eTest, CallStoreDownIs503ThenRetrySettles) {
  PrivateRedis redis;
  Telephony telephony(kafka_.bootstrap(),
                      {{"TELEPHONY_REDIS_HOST", "127.0.0.1"},
                       {"TELEPHONY_REDIS_PORT", std::to_string(redis.port())},
                       {"TELEPHONY_REDIS_PREFIX", testing::UniqueName("tel") + ":"},
                       {"TELEPHONY_REDIS_TIMEOUT_MS", "200"}});
  const std::string from = R"("direction":"inbound","from":"+33611227701")";
  auto answered = telephony.PostGeneric(R"({"call_id":"down-1",)" + from +
                                        R"(,"state":"answered","operator":"ann@example.fr"})");
  ASSERT_EQ(answered.status, 202) << answered.body;
  ASSERT_EQ(telephony.PostTwilio("/v1/twilio/voice", TrialTwilio("CAdown1", "ringing")).status,
            200);

  redis.Pause();
  const std::string ended = R"({"call_id":"down-1",)" + from + R"(,"state":"ended"})";
  auto refused = telephony.PostGeneric(ended);
  const std::string parent_completed =
      TrialTwilio("CAdown1", "completed", "&CallDuration=28&SequenceNumber=2");
  auto refused_twilio = telephony.PostTwilio("/v1/twilio/voice", parent_completed);
  redis.Resume();
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_THAT(refused.headers, HasSubstr("Retry-After"));
  EXPECT_EQ(refused.Json()["error"], "call_store_unavailable");
  EXPECT_EQ(refused_twilio.status, 503) << refused_twilio.body;
  EXPECT_THAT(refused_twilio.headers, HasSubstr("Retry-After"));
  EXPECT_EQ(testing::MetricValue(telephony.Ops("/metrics").body,
                                 "telephony_call_store_failures_total{action=\"refused\"}"),
            2.0);

  auto retried = telephony.PostGeneric(ended);
  ASSERT_EQ(retried.status, 202) << retried.body << telephony.process().Log();
  EXPECT_EQ(retried.Json()["outcome"], "answered");
  const std::string no_answer = "&DialCallStatus=no-answer&DialCallSid=CAdown1c&DialCallDuration=0";
  ASSERT_EQ(
      telephony.PostTwilio("/v1/twilio/voice", TrialTwilio("CAdown1", "in-progress", no_answer))
          .status,
      200);
  ASSERT_EQ(telephony.PostTwilio("/v1/twilio/voice", parent_completed).status, 200);

  ASSERT_TRUE(WaitForCalls(2));
  auto generic = EventsOf("generic:down-1");
  ASSERT_FALSE(generic.empty());
  EXPECT_EQ(Ids(generic).size(), 1u);
  for (const auto& event : generic) {
    EXPECT_EQ(event.call().outcome(), CallEvent::ANSWERED);
    EXPECT_EQ(event.call().operator_name(), "ann@example.fr");
  }
  auto twilio = EventsOf("twilio:CAdown1");
  ASSERT_FALSE(twilio.empty());
  EXPECT_EQ(Ids(twilio).size(), 1u);
  for (const auto& event : twilio) {
    EXPECT_EQ(event.call().outcome(), CallEvent::MISSED);
    EXPECT_EQ(event.call().duration_seconds(), 0);
  }
}

// Protects: a sender whose webhook timeout is at or under the settle window (the trial, with
// the window then 5 s and Kafka's timeout 3 s): (A) the same signed missed call posted twice
// 3 s apart — both requests are answered 202 with the call's event, neither gets an empty reply
// from the server's own timeout; (B) a sender retrying with curl --max-time 2 until the call is
// in Kafka — the call is published while it is still retrying (a retry never restarts the
// window), and its next retry gets 202.
TEST_F(TelephonyE2eTest, SenderRetryingWithinTheSettleWindow) {
  Telephony telephony(kafka_.bootstrap(),
                      {{"TELEPHONY_SETTLE_MS", "5000"}, {"TELEPHONY_DELIVERY_TIMEOUT_MS", "3000"}});
  const std::string to3 =
      R"({"call_id":"to-3","direction":"inbound","from":"+33611220003","state":"missed"})";
  auto first = std::async(std::launch::async, [&] { return telephony.PostGeneric(to3); });
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        return testing::MetricValue(telephony.Ops("/metrics").body, "telephony_parked_requests") ==
               1.0;
      },
      std::chrono::seconds(10)));
  std::this_thread::sleep_for(std::chrono::seconds(3));  // the sender's retry, as in the trial
  CurlResult retry = telephony.PostGeneric(to3);
  CurlResult original = first.get();
  for (const CurlResult* answer : {&original, &retry}) {
    ASSERT_EQ(answer->status, 202) << answer->headers << answer->body << telephony.process().Log();
    EXPECT_EQ(answer->Json()["status"], "published");
  }
  EXPECT_EQ(original.Json()["event_id"], retry.Json()["event_id"]);
  EXPECT_EQ(testing::MetricValue(telephony.Ops("/metrics").body, "telephony_parked_timeouts_total"),
            0.0);

  const std::string to4 =
      R"({"call_id":"to-4","direction":"inbound","from":"+33611220004","state":"missed"})";
  bool published = false;
  int attempts = 0;
  for (; attempts < 8 && !published; ++attempts) {
    telephony.PostGeneric(to4, kSecret, 0, "--max-time 2");
    published = !EventsOf("generic:to-4").empty();
  }
  ASSERT_TRUE(published) << "still held back after " << attempts << " retries";
  CurlResult after = telephony.PostGeneric(to4);
  EXPECT_EQ(after.status, 202) << after.body;
  EXPECT_EQ(Ids(EventsOf("generic:to-4")).size(), 1u);
}

}  // namespace
}  // namespace leadflow
