// The telephony channel end to end: the built telephony-ingest (curl in each provider's own
// format, a scripted Asterisk peer over TCP), the dev broker, the built crm-core, and the results
// read over gRPC with crmctl (docs/architecture.md, "Calls").

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <pqxx/pqxx>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "e2e/stack.h"
#include "ingest/form_params.h"
#include "ingest/signature.h"
#include "telephony-ingest/ami_peer.h"

namespace leadflow::e2e {
namespace {

using testing::ShellQuote;

constexpr char kSecret[] = "e2e-webhook-secret-0123456789";
constexpr char kTwilioToken[] = "e2e-twilio-auth-token";
constexpr char kPublicUrl[] = "https://leads.example.com/telephony";

int CurlStatus(const std::string& args) {
  std::string output =
      testing::Shell("curl -s -o /dev/null -w '%{http_code}' -H 'Expect:' --max-time 30 " + args);
  return output.empty() ? 0 : std::stoi(output);
}

class TelephonyIngest {
 public:
  /// `extra`: more settings, over the ones below.
  TelephonyIngest(const std::string& brokers, int ami_port,
                  std::map<std::string, std::string> extra = {}) {
    port_ = testing::FreePort();
    ops_port_ = testing::FreePort();
    extra.merge(std::map<std::string, std::string>{
        {"TELEPHONY_KAFKA_BROKERS", brokers},
        {"TELEPHONY_HTTP_PORT", std::to_string(port_)},
        {"TELEPHONY_OPS_PORT", std::to_string(ops_port_)},
        {"TELEPHONY_WEBHOOK_SECRET", kSecret},
        {"TELEPHONY_TWILIO_AUTH_TOKEN", kTwilioToken},
        {"TELEPHONY_TWILIO_PUBLIC_URL", kPublicUrl},
        // Unanswered calls wait this long for an answer report before they are published.
        {"TELEPHONY_SETTLE_MS", "500"},
        {"TELEPHONY_AMI_HOST", "127.0.0.1"},
        {"TELEPHONY_AMI_PORT", std::to_string(ami_port)},
        {"TELEPHONY_AMI_USERNAME", "leadflow"},
        {"TELEPHONY_AMI_SECRET", "s3cret"},
        {"TELEPHONY_AMI_RECONNECT_MIN_MS", "50"},
    });
    process_ = std::make_unique<testing::Process>(
        std::vector<std::string>{testing::BuildDir() +
                                 "/services/telephony-ingest/telephony-ingest"},
        extra, "telephony-ingest");
    const std::string ready =
        ShellQuote("http://127.0.0.1:" + std::to_string(ops_port_) + "/readyz");
    if (!testing::WaitFor([&] { return CurlStatus(ready) == 200 || !process_->Running(); },
                          std::chrono::seconds(30)) ||
        !process_->Running()) {
      throw std::runtime_error("telephony-ingest did not start: " + process_->Log());
    }
  }
  /// The generic API, signed as docs/telephony-ingest.md shows.
  int PostGeneric(const std::string& body, const std::string& secret = kSecret) const {
    const std::string ts = std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                              std::chrono::system_clock::now().time_since_epoch())
                                              .count());
    const std::string signature =
        ingest::HexEncode(ingest::Hmac(ingest::HmacAlgorithm::kSha256, secret, ts + "." + body));
    return CurlStatus("-X POST -H 'Content-Type: application/json' -H 'X-LeadFlow-Timestamp: " +
                      ts + "' -H 'X-LeadFlow-Signature: sha256=" + signature + "' --data-binary " +
                      ShellQuote(body) + " " + ShellQuote(url() + "/v1/calls/events"));
  }
  /// A Twilio status callback, urlencoded and signed over the public URL as Twilio does.
  int PostTwilio(const std::string& body, const std::string& token = kTwilioToken,
                 const std::string& path = "/v1/twilio/voice") const {
    auto params = *ingest::ParseFormParams(body);
    std::stable_sort(params.begin(), params.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    std::string data = std::string(kPublicUrl) + path;
    for (const auto& [name, value] : params) data += name + value;
    const std::string signature =
        ingest::Base64Encode(ingest::Hmac(ingest::HmacAlgorithm::kSha1, token, data));
    return CurlStatus(
        "-X POST -H 'Content-Type: application/x-www-form-urlencoded' -H 'X-Twilio-Signature: " +
        signature + "' --data-binary " + ShellQuote(body) + " " + ShellQuote(url() + path));
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  testing::Process& process() { return *process_; }

 private:
  int port_ = 0;
  int ops_port_ = 0;
  std::unique_ptr<testing::Process> process_;
};

// Twilio's status callback for one call, every parameter Twilio sends.
std::string TwilioStatus(const std::string& sid, const std::string& direction,
                         const std::string& from, const std::string& to, const std::string& status,
                         const std::string& extra = "") {
  return "Called=" + to + "&ToState=&CallerCountry=FR&Direction=" + direction +
         "&Timestamp=Tue%2C+14+Nov+2023+22%3A13%3A20+%2B0000&CallbackSource=call-progress-events"
         "&CallerState=&ToZip=&SequenceNumber=0&CallSid=" +
         sid + "&To=" + to + "&CallerZip=&ToCountry=FR&CalledZip=&ApiVersion=2010-04-01&" +
         "CalledCity=&CallStatus=" + status + "&From=" + from +
         "&AccountSid=AC00000000000000000000000000000000&CalledCountry=FR&CallerCity=&ToCity=&"
         "FromCountry=FR&Caller=" +
         from + "&FromCity=&CalledState=&FromZip=&FromState=" + extra;
}

std::string Generic(const std::string& id, const std::string& direction, const std::string& from,
                    const std::string& to, const std::string& state,
                    const std::string& extra = "") {
  return R"({"call_id":")" + id + R"(","direction":")" + direction + R"(","from":")" + from +
         R"(","to":")" + to + R"(","line":"+33187654321","state":")" + state + "\"" + extra + "}";
}

class TelephonyCrmE2eTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(Migrate(database_.url())); }

  int64_t Sql(const std::string& sql) { return Count(database_.url(), sql); }

  // The activities of a lead found by its title, over gRPC.
  nlohmann::json LeadsTitled(const std::string& api, const std::string& title) {
    nlohmann::json found = nlohmann::json::array();
    nlohmann::json leads = Call(api, "LeadService/ListLeads", {{"page_size", 1000}}, kReaderKey);
    for (const auto& lead : leads.value("leads", nlohmann::json::array())) {
      if (lead.value("title", "") == title) found.push_back(lead);
    }
    return found;
  }
  nlohmann::json Activities(const std::string& api, const std::string& owner_type, int64_t id) {
    return Call(api, "ActivityService/ListActivities",
                {{"owner_type", owner_type}, {"owner_id", id}}, kReaderKey)
        .value("activities", nlohmann::json::array());
  }
  // Waits until crm-core has applied `count` events (processed_events), bounded.
  bool WaitApplied(int64_t count) {
    return testing::WaitFor([&] { return Sql("SELECT count(*) FROM processed_events") >= count; },
                            std::chrono::seconds(60));
  }

  testing::TempDatabase database_;
  DevBroker broker_;
};

// Protects: the telephony channel's guarantees through the built binaries: one lead per unknown
// caller; one open call-back per person whatever the number of missed calls (with the count),
// from any provider; a replayed callback → one effect; a forged signature → 401 and nothing; the
// call-back completed by the answered outbound call; anonymous callers in the unidentified list
// and no lead; an answered call's operator (a user's extension) responsible; the call settings
// admin-settable and validated.
TEST_F(TelephonyCrmE2eTest, CallsBecomeCallBacksAndActivities) {
  CrmCore core(database_.url(), broker_.bootstrap(), testing::UniqueName("tel"));
  ASSERT_TRUE(core.WaitReady()) << core.process().Log();
  const std::string& api = core.grpc_address();
  telephony::testing::AmiPeer peer;
  TelephonyIngest telephony(broker_.bootstrap(), peer.port());

  // Settings and users over gRPC: an SLA out of bounds is refused; Alice answers on 201.
  auto refused =
      Call(api, "SettingsService/UpdateSettings",
           {{"settings", {{"calls", {{"call_back_sla_minutes", 0}}}}}, {"update_mask", "calls"}});
  EXPECT_EQ(refused.value("code", 0), 3) << refused.dump();  // INVALID_ARGUMENT
  auto settings = Call(
      api, "SettingsService/UpdateSettings",
      {{"settings",
        {{"calls", {{"call_back_sla_minutes", 30}, {"line_queues", {{"+33187654321", "paris"}}}}}}},
       {"update_mask", "calls"}});
  ASSERT_EQ(settings["calls"].value("call_back_sla_minutes", 0), 30) << settings.dump();
  auto alice =
      Call(api, "UserService/CreateUser", {{"user", {{"name", "Alice"}, {"extension", "201"}}}});
  ASSERT_EQ(alice.value("extension", ""), "201") << alice.dump();
  const int64_t alice_id = std::stoll(alice["id"].get<std::string>());

  // Three missed calls from one unknown number through the generic API, the first posted twice
  // (the provider's retry), and a forged one.
  const std::string first = Generic("g-1", "inbound", "06 12 34 56 78", "+33187654321", "missed");
  EXPECT_EQ(telephony.PostGeneric(first), 202);
  EXPECT_EQ(telephony.PostGeneric(first), 202);
  EXPECT_EQ(
      telephony.PostGeneric(Generic("g-2", "inbound", "+33612345678", "+33187654321", "missed")),
      202);
  EXPECT_EQ(
      telephony.PostGeneric(Generic("g-3", "inbound", "+33612345678", "+33187654321", "voicemail",
                                    R"(,"recording_url":"https://rec.example.com/g3.mp3")")),
      202);
  EXPECT_EQ(
      telephony.PostGeneric(Generic("g-4", "inbound", "+33677777777", "+33187654321", "missed"),
                            "not-the-secret-at-all"),
      401);
  // Twilio: a no-answer call from another unknown number, Twilio's retry of it.
  const std::string twilio_missed =
      TwilioStatus("CA0001", "inbound", "%2B33699999999", "%2B33187654321", "no-answer");
  EXPECT_EQ(telephony.PostTwilio(twilio_missed), 200);
  EXPECT_EQ(telephony.PostTwilio(twilio_missed), 200);
  EXPECT_EQ(telephony.PostTwilio(
                TwilioStatus("CA0009", "inbound", "%2B33677777777", "%2B33187654321", "no-answer"),
                "someone-elses-token"),
            401);
  // Asterisk: the recorded missed call (from +33612345678) and the answered one (from
  // +33698765432, taken on extension 201).
  ASSERT_TRUE(peer.WaitLoggedIn(1, std::chrono::seconds(10))) << telephony.process().Log();
  const std::string dir =
      std::string(LEADFLOW_SOURCE_DIR) + "/services/telephony-ingest/testdata/ami/";
  ASSERT_TRUE(peer.SendAll(telephony::testing::LoadTranscript(dir + "missed_call.txt")));
  ASSERT_TRUE(peer.SendAll(telephony::testing::LoadTranscript(dir + "answered_call.txt")));
  // A withheld number.
  EXPECT_EQ(telephony.PostGeneric(Generic("g-5", "inbound", "anonymous", "+33187654321", "missed")),
            202);

  // 3 generic + 1 Twilio + 2 Asterisk + 1 anonymous events.
  ASSERT_TRUE(WaitApplied(7)) << core.process().Log() << telephony.process().Log();
  auto paris = LeadsTitled(api, "Missed call +33 6 12 34 56 78");
  ASSERT_EQ(paris.size(), 1u) << paris.dump();
  EXPECT_EQ(paris[0].value("source_id", ""), "CALL");
  const int64_t paris_id = std::stoll(paris[0]["id"].get<std::string>());
  auto callbacks = Activities(api, "OWNER_TYPE_LEAD", paris_id);
  ASSERT_EQ(callbacks.size(), 1u) << callbacks.dump();
  EXPECT_EQ(callbacks[0].value("subject", ""), "Call back");
  EXPECT_FALSE(callbacks[0].value("completed", false));
  EXPECT_TRUE(callbacks[0].contains("deadline"));
  EXPECT_TRUE(callbacks[0]["call"].value("call_back", false));
  EXPECT_EQ(callbacks[0]["call"].value("missed_calls", 0), 4);  // 3 generic (1 replayed) + AMI
  EXPECT_EQ(callbacks[0]["call"].value("recording_url", ""), "https://rec.example.com/g3.mp3");
  auto lyon = LeadsTitled(api, "Missed call +33 6 99 99 99 99");
  ASSERT_EQ(lyon.size(), 1u);
  const int64_t lyon_id = std::stoll(lyon[0]["id"].get<std::string>());
  ASSERT_EQ(Activities(api, "OWNER_TYPE_LEAD", lyon_id).size(), 1u);
  auto answered = LeadsTitled(api, "Call from +33 6 98 76 54 32");
  ASSERT_EQ(answered.size(), 1u);
  EXPECT_EQ(std::stoll(answered[0]["responsible_user_id"].get<std::string>()), alice_id);
  auto talk = Activities(api, "OWNER_TYPE_LEAD", std::stoll(answered[0]["id"].get<std::string>()));
  ASSERT_EQ(talk.size(), 1u);
  EXPECT_TRUE(talk[0].value("completed", false));
  EXPECT_EQ(talk[0]["call"].value("duration_seconds", 0), 42);
  // When the call happened, as the PBX timed it, in crmctl's output.
  for (const char* time : {"start_time", "answer_time", "end_time"}) {
    EXPECT_TRUE(talk[0]["call"].contains(time)) << time << ": " << talk.dump();
  }
  // Nothing from the forged requests; the anonymous call listed, not a lead.
  EXPECT_EQ(Sql("SELECT count(*) FROM leads"), 3);
  EXPECT_EQ(Sql("SELECT count(*) FROM activities WHERE call_number = '+33677777777'"), 0);
  auto unidentified =
      Call(api, "CallService/ListUnidentifiedCalls", {{"page_size", 10}}, kReaderKey);
  ASSERT_EQ(unidentified.value("calls", nlohmann::json::array()).size(), 1u) << unidentified.dump();
  EXPECT_EQ(unidentified["calls"][0].value("call_id", ""), "generic:g-5");
  EXPECT_EQ(unidentified["calls"][0].value("reason", ""), "UNIDENTIFIED_REASON_WITHHELD");

  // The managers call back: Twilio's outbound call answered (the Lyon caller), the generic API's
  // answered outbound call (the Paris caller), and one not answered that completes nothing.
  EXPECT_EQ(telephony.PostTwilio(TwilioStatus("CA0002", "outbound-api", "%2B33187654321",
                                              "%2B33699999999", "completed", "&CallDuration=61")),
            200);
  EXPECT_EQ(
      telephony.PostGeneric(Generic("o-1", "outbound", "+33187654321", "+33612345678", "missed")),
      202);
  ASSERT_TRUE(WaitApplied(9));
  int open_call_backs = 0;
  for (const auto& activity : Activities(api, "OWNER_TYPE_LEAD", paris_id)) {
    if (activity["call"].value("call_back", false) && !activity.value("completed", false)) {
      ++open_call_backs;
    }
  }
  EXPECT_EQ(open_call_backs, 1);  // the unanswered outbound call completed nothing
  EXPECT_EQ(telephony.PostGeneric(Generic("o-2", "outbound", "+33187654321", "+33612345678",
                                          "ended", R"(,"duration":30,"extension":"201")")),
            202);
  ASSERT_TRUE(WaitApplied(10));
  for (int64_t lead : {paris_id, lyon_id}) {
    auto activities = Activities(api, "OWNER_TYPE_LEAD", lead);
    int completed_call_backs = 0;
    for (const auto& activity : activities) {
      if (activity["call"].value("call_back", false) && activity.value("completed", false)) {
        ++completed_call_backs;
      }
    }
    EXPECT_EQ(completed_call_backs, 1) << activities.dump();
  }
  EXPECT_EQ(Sql("SELECT count(*) FROM activities WHERE call_back AND NOT completed"), 0);
  EXPECT_EQ(Sql("SELECT count(*) FROM leads"), 3);  // the call backs made no lead

  // A later missed call opens a new call-back (count 1) on the same lead, no new lead.
  EXPECT_EQ(
      telephony.PostGeneric(Generic("g-6", "inbound", "+33612345678", "+33187654321", "missed")),
      202);
  ASSERT_TRUE(WaitApplied(11));
  EXPECT_EQ(Sql("SELECT count(*) FROM activities WHERE call_back AND NOT completed AND "
                "missed_calls = 1 AND owner_id = " +
                std::to_string(paris_id)),
            1);
  EXPECT_EQ(Sql("SELECT count(*) FROM leads"), 3);
}

// Twilio's recording status callback for one recording of a call.
std::string TwilioRecording(const std::string& call_sid, const std::string& recording_sid) {
  return "AccountSid=AC00000000000000000000000000000000&CallSid=" + call_sid +
         "&RecordingSid=" + recording_sid +
         "&RecordingUrl=https%3A%2F%2Fapi.twilio.com%2F2010-04-01%2FAccounts%2FAC0000%2F"
         "Recordings%2F" +
         recording_sid +
         "&RecordingStatus=completed&RecordingDuration=14&RecordingChannels=1"
         "&RecordingSource=DialVerb&RecordingStartTime=Tue%2C+14+Nov+2023+22%3A12%3A00+%2B0000";
}

// Protects, through the built binaries with Twilio's own formats: a call's recordings are all
// kept (a status callback then two recording callbacks, one per recorded leg: the activity shows
// both over gRPC, the deprecated one-URL field the latest); a hunt — a first <Dial> unanswered,
// the second answered, in Twilio's order and with the parent's "completed" first — is an answered
// call, not a call-back, credited to the agent the answered <Dial>'s action URL names (Alice, by
// her extension: responsible for the new lead).
TEST_F(TelephonyCrmE2eTest, TwilioRecordingsHuntsAndTransfers) {
  CrmCore core(database_.url(), broker_.bootstrap(), testing::UniqueName("tel"));
  ASSERT_TRUE(core.WaitReady()) << core.process().Log();
  const std::string& api = core.grpc_address();
  telephony::testing::AmiPeer peer;
  TelephonyIngest telephony(broker_.bootstrap(), peer.port());
  auto alice =
      Call(api, "UserService/CreateUser", {{"user", {{"name", "Alice"}, {"extension", "201"}}}});
  ASSERT_EQ(alice.value("extension", ""), "201") << alice.dump();
  const int64_t alice_id = std::stoll(alice["id"].get<std::string>());

  // An answered call (Twilio answered it, no <Dial> action), then its two recordings.
  EXPECT_EQ(telephony.PostTwilio(TwilioStatus("CArec1", "inbound", "%2B33655443322",
                                              "%2B33187654321", "completed", "&CallDuration=30")),
            200);
  EXPECT_EQ(telephony.PostTwilio(TwilioRecording("CArec1", "RE0000000000000000000000000000001"),
                                 kTwilioToken, "/v1/twilio/recording"),
            200);
  EXPECT_EQ(telephony.PostTwilio(TwilioRecording("CArec1", "RE0000000000000000000000000000002"),
                                 kTwilioToken, "/v1/twilio/recording"),
            200);
  ASSERT_TRUE(WaitApplied(3)) << core.process().Log() << telephony.process().Log();
  auto lead = LeadsTitled(api, "Call from +33 6 55 44 33 22");
  ASSERT_EQ(lead.size(), 1u) << lead.dump();
  auto talk = Activities(api, "OWNER_TYPE_LEAD", std::stoll(lead[0]["id"].get<std::string>()));
  ASSERT_EQ(talk.size(), 1u) << talk.dump();
  const std::string base = "https://api.twilio.com/2010-04-01/Accounts/AC0000/Recordings/";
  EXPECT_EQ(talk[0]["call"].value("recording_urls", nlohmann::json::array()),
            nlohmann::json::array({base + "RE0000000000000000000000000000001",
                                   base + "RE0000000000000000000000000000002"}))
      << talk.dump();
  EXPECT_EQ(talk[0]["call"].value("recording_url", ""), base + "RE0000000000000000000000000000002");

  // A hunt in Twilio's order: the first <Dial>'s action (no-answer), the second's (answered by
  // the agent its action URL names), the parent's completed.
  const std::string from = "%2B33655443311";
  const std::string to = "%2B33187654321";
  const std::string first = "&DialCallStatus=no-answer&DialCallSid=CAhuntleg1&DialCallDuration=0";
  const std::string second = "&DialCallStatus=completed&DialCallSid=CAhuntleg2&DialCallDuration=75";
  EXPECT_EQ(
      telephony.PostTwilio(TwilioStatus("CAhunt1", "inbound", from, to, "in-progress", first)),
      200);
  EXPECT_EQ(
      telephony.PostTwilio(TwilioStatus("CAhunt1", "inbound", from, to, "in-progress", second),
                           kTwilioToken, "/v1/twilio/voice?extension=201"),
      200);
  EXPECT_EQ(telephony.PostTwilio(
                TwilioStatus("CAhunt1", "inbound", from, to, "completed", "&CallDuration=110")),
            200);
  // The same, the parent's completed first (parked while the settle window runs).
  const std::string from2 = "%2B33655443312";
  auto parent = std::async(std::launch::async, [&] {
    return telephony.PostTwilio(
        TwilioStatus("CAhunt2", "inbound", from2, to, "completed", "&CallDuration=110"));
  });
  EXPECT_EQ(
      telephony.PostTwilio(TwilioStatus("CAhunt2", "inbound", from2, to, "in-progress", second),
                           kTwilioToken, "/v1/twilio/voice?extension=201"),
      200);
  EXPECT_EQ(
      telephony.PostTwilio(TwilioStatus("CAhunt2", "inbound", from2, to, "in-progress", first)),
      200);
  EXPECT_EQ(parent.get(), 200);
  ASSERT_TRUE(WaitApplied(5)) << core.process().Log() << telephony.process().Log();
  for (const std::string title : {"Call from +33 6 55 44 33 11", "Call from +33 6 55 44 33 12"}) {
    auto hunted = LeadsTitled(api, title);
    ASSERT_EQ(hunted.size(), 1u) << title << " " << hunted.dump();
    EXPECT_EQ(std::stoll(hunted[0]["responsible_user_id"].get<std::string>()), alice_id);
    auto activities =
        Activities(api, "OWNER_TYPE_LEAD", std::stoll(hunted[0]["id"].get<std::string>()));
    ASSERT_EQ(activities.size(), 1u) << activities.dump();
    EXPECT_TRUE(activities[0].value("completed", false));
    EXPECT_FALSE(activities[0]["call"].value("call_back", false));
    EXPECT_EQ(activities[0]["call"].value("duration_seconds", 0), 75);
    EXPECT_EQ(activities[0]["call"].value("outcome", ""), "CALL_OUTCOME_ANSWERED");
  }
  EXPECT_EQ(Sql("SELECT count(*) FROM activities WHERE call_back"), 0);
}

// Protects, through the built binaries with Twilio's own formats: click-to-call — Twilio calls
// the agent (the outbound-api parent, To = the agent's phone), then <Dial>s the customer (the
// child leg, outbound-dial with ParentCallSid); the customer hangs up first: the <Dial> action
// with the parent still in-progress, then the parent's completed — is published at the parent's
// completed (not held until the open-call timeout) as the answered outbound call to the
// customer, which completes the customer's open call-back over gRPC; the agent's phone is no
// unidentified call.
TEST_F(TelephonyCrmE2eTest, TwilioClickToCallCompletesTheCallBack) {
  CrmCore core(database_.url(), broker_.bootstrap(), testing::UniqueName("tel"));
  ASSERT_TRUE(core.WaitReady()) << core.process().Log();
  const std::string& api = core.grpc_address();
  telephony::testing::AmiPeer peer;
  TelephonyIngest telephony(broker_.bootstrap(), peer.port());
  auto bob =
      Call(api, "UserService/CreateUser", {{"user", {{"name", "Bob"}, {"extension", "202"}}}});
  ASSERT_EQ(bob.value("extension", ""), "202") << bob.dump();

  // The customer's missed call: a lead and an open call-back.
  EXPECT_EQ(
      telephony.PostGeneric(Generic("g-c2c", "inbound", "+33641000101", "+33187654321", "missed")),
      202);
  ASSERT_TRUE(WaitApplied(1)) << core.process().Log() << telephony.process().Log();
  auto lead = LeadsTitled(api, "Missed call +33 6 41 00 01 01");
  ASSERT_EQ(lead.size(), 1u) << lead.dump();
  const int64_t lead_id = std::stoll(lead[0]["id"].get<std::string>());
  ASSERT_EQ(Sql("SELECT count(*) FROM activities WHERE call_back AND NOT completed"), 1);

  // Bob calls the customer back with click-to-call, in Twilio's order.
  const std::string company = "%2B33187654321";
  const std::string agent = "%2B33612000202";
  const std::string customer = "%2B33641000101";
  const std::string leg_of = "&ParentCallSid=CApar3&CallSid=CAchd3";
  EXPECT_EQ(
      telephony.PostTwilio(TwilioStatus("CApar3", "outbound-api", company, agent, "initiated")),
      200);
  EXPECT_EQ(
      telephony.PostTwilio(TwilioStatus("CApar3", "outbound-api", company, agent, "in-progress")),
      200);
  // The child leg's own status callbacks (the <Number statusCallback> docs/telephony-ingest.md
  // shows): its CallSid, its parent's, the customer as To.
  auto leg = [&](const std::string& status, const std::string& extra) {
    std::string body = "Called=" + customer + "&Direction=outbound-dial&CallStatus=" + status +
                       "&From=" + company + "&To=" + customer +
                       "&AccountSid=AC00000000000000000000000000000000&ApiVersion=2010-04-01"
                       "&Timestamp=Tue%2C+14+Nov+2023+22%3A13%3A20+%2B0000" +
                       leg_of + extra;
    return telephony.PostTwilio(body);
  };
  EXPECT_EQ(leg("ringing", ""), 200);
  EXPECT_EQ(leg("in-progress", ""), 200);
  EXPECT_EQ(leg("completed", "&CallDuration=20"), 200);
  EXPECT_EQ(telephony.PostTwilio(
                TwilioStatus("CApar3", "outbound-api", company, agent, "in-progress",
                             "&DialCallStatus=completed&DialCallSid=CAchd3&DialCallDuration=20"),
                kTwilioToken, "/v1/twilio/voice?extension=202"),
            200);
  EXPECT_EQ(telephony.PostTwilio(TwilioStatus("CApar3", "outbound-api", company, agent, "completed",
                                              "&CallDuration=25")),
            200);
  ASSERT_TRUE(WaitApplied(2)) << "the click-to-call was not published: "
                              << telephony.process().Log();
  int completed_call_backs = 0;
  bool outbound_answered = false;
  auto activities = Activities(api, "OWNER_TYPE_LEAD", lead_id);
  for (const auto& activity : activities) {
    if (activity["call"].value("call_back", false) && activity.value("completed", false)) {
      ++completed_call_backs;
    }
    if (activity["call"].value("outcome", "") == "CALL_OUTCOME_ANSWERED" &&
        activity["call"].value("duration_seconds", 0) == 20) {
      outbound_answered = true;
    }
  }
  EXPECT_EQ(completed_call_backs, 1) << activities.dump();
  EXPECT_TRUE(outbound_answered) << activities.dump();
  EXPECT_EQ(Sql("SELECT count(*) FROM activities WHERE call_back AND NOT completed"), 0);
  auto unidentified =
      Call(api, "CallService/ListUnidentifiedCalls", {{"page_size", 10}}, kReaderKey);
  EXPECT_TRUE(unidentified.value("calls", nlohmann::json::array()).empty()) << unidentified.dump();
  EXPECT_EQ(Sql("SELECT count(*) FROM leads"), 1);
}

// Protects, through the built binaries, what a new user met with numbers and times from abroad:
// a caller id without '+' in international form (a SIP trunk's "447911123456", Asterisk's
// CallerIDNum "12125551234") makes a lead and a call-back like any number, found by
// FindByCommunication with the same digits; a PBX in New York posting its local time without
// an offset (TELEPHONY_PBX_TIME_ZONE=America/New_York) gets a call-back due SLA minutes after
// the real end of the call, not five hours overdue; Twilio's CallStatus "Completed" capitalised
// is the answered outbound call it names, completing that call-back.
TEST_F(TelephonyCrmE2eTest, ForeignCallerIdsAndLocalTimes) {
  CrmCore core(database_.url(), broker_.bootstrap(), testing::UniqueName("tel"));
  ASSERT_TRUE(core.WaitReady()) << core.process().Log();
  const std::string& api = core.grpc_address();
  telephony::testing::AmiPeer peer;
  TelephonyIngest telephony(broker_.bootstrap(), peer.port(),
                            {{"TELEPHONY_PBX_TIME_ZONE", "America/New_York"}});
  absl::TimeZone new_york;
  ASSERT_TRUE(absl::LoadTimeZone("America/New_York", &new_york));

  // A missed call from a UK mobile as the trunk gives it, ended two minutes ago by the PBX's
  // clock, written in its local time without an offset.
  const absl::Time ended = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()) - 120);
  const std::string local_end = absl::FormatTime("%Y-%m-%d %H:%M:%S", ended, new_york);
  EXPECT_EQ(telephony.PostGeneric(Generic("uk-1", "inbound", "447911123456", "+33187654321",
                                          "missed", R"(,"ended_at":")" + local_end + "\"")),
            202);
  ASSERT_TRUE(WaitApplied(1)) << core.process().Log() << telephony.process().Log();
  auto uk = LeadsTitled(api, "Missed call +44 7911 123456");
  ASSERT_EQ(uk.size(), 1u) << uk.dump() << telephony.process().Log();
  const std::string uk_id = uk[0]["id"].get<std::string>();
  auto callbacks = Activities(api, "OWNER_TYPE_LEAD", std::stoll(uk_id));
  ASSERT_EQ(callbacks.size(), 1u) << callbacks.dump();
  EXPECT_TRUE(callbacks[0]["call"].value("call_back", false));
  absl::Time deadline;
  std::string error;
  ASSERT_TRUE(
      absl::ParseTime(absl::RFC3339_full, callbacks[0].value("deadline", ""), &deadline, &error))
      << callbacks.dump();
  // calls.call_back_sla_minutes: 15 by default, counted from the call's end.
  EXPECT_EQ(absl::ToUnixSeconds(deadline), absl::ToUnixSeconds(ended + absl::Minutes(15)))
      << "deadline " << callbacks[0].value("deadline", "") << ", call ended at "
      << absl::FormatTime(ended) << " (" << local_end << " in New York)";
  // Found with the digits the caller id had.
  auto found =
      Call(api, "SearchService/FindByCommunication", {{"phone", "447911123456"}}, kReaderKey);
  EXPECT_EQ(found.value("normalized", ""), "+447911123456") << found.dump();
  ASSERT_EQ(found.value("matches", nlohmann::json::array()).size(), 1u) << found.dump();
  EXPECT_EQ(found["matches"][0]["entity"].value("id", ""), uk_id) << found.dump();

  // The manager calls back through Twilio, whose callback says "Completed".
  EXPECT_EQ(telephony.PostTwilio(TwilioStatus("CAuk1", "outbound-api", "%2B33187654321",
                                              "%2B447911123456", "Completed", "&CallDuration=61")),
            200);
  ASSERT_TRUE(WaitApplied(2)) << core.process().Log() << telephony.process().Log();
  EXPECT_EQ(
      Sql("SELECT count(*) FROM activities WHERE call_back AND completed AND owner_id = " + uk_id),
      1);

  // Asterisk: a missed call whose CallerIDNum is a US number without '+'.
  ASSERT_TRUE(peer.WaitLoggedIn(1, std::chrono::seconds(10))) << telephony.process().Log();
  const std::string id = "1796050900.90";
  ASSERT_TRUE(peer.SendAll(
      {"Event: Newchannel\r\nChannel: PJSIP/trunk-00000090\r\nCallerIDNum: 12125551234\r\n"
       "Exten: 0187654321\r\nUniqueid: " +
           id + "\r\nLinkedid: " + id + "\r\n\r\n",
       "Event: DialEnd\r\nLinkedid: " + id + "\r\nDialStatus: NOANSWER\r\n\r\n",
       "Event: Hangup\r\nUniqueid: " + id + "\r\nLinkedid: " + id +
           "\r\nCause-txt: Normal Clearing\r\n\r\n"}));
  ASSERT_TRUE(WaitApplied(3)) << core.process().Log() << telephony.process().Log();
  auto us = LeadsTitled(api, "Missed call +1 212-555-1234");
  ASSERT_EQ(us.size(), 1u) << us.dump();
  EXPECT_EQ(Activities(api, "OWNER_TYPE_LEAD", std::stoll(us[0]["id"].get<std::string>())).size(),
            1u);
  auto unidentified =
      Call(api, "CallService/ListUnidentifiedCalls", {{"page_size", 10}}, kReaderKey);
  EXPECT_TRUE(unidentified.value("calls", nlohmann::json::array()).empty()) << unidentified.dump();
}

// Protects, through the built binaries in the report's own order (trial 89c #6): a Twilio
// voicemail whose two recording callbacks come before the parent's "completed" (the documented
// normal order) puts both recordings on the call-back, and crm-core tells the truth about it:
// crm_call_recordings_total counts them deferred (their call's own event carried them), never
// unmatched, and no "matches no call" warning is logged. telephony-ingest logs one line per
// event Kafka took (the two recordings and the call), the caller's number masked (#8).
TEST_F(TelephonyCrmE2eTest, TwilioVoicemailRecordingsBeforeTheCallAreNoAlarm) {
  CrmCore core(database_.url(), broker_.bootstrap(), testing::UniqueName("tel"));
  ASSERT_TRUE(core.WaitReady()) << core.process().Log();
  const std::string& api = core.grpc_address();
  telephony::testing::AmiPeer peer;
  TelephonyIngest telephony(broker_.bootstrap(), peer.port());
  const std::string from = "%2B33641000072";
  const std::string to = "%2B33187654321";
  EXPECT_EQ(telephony.PostTwilio(
                TwilioStatus("CA9vm", "inbound", from, to, "in-progress",
                             "&DialCallSid=CAv1&DialCallStatus=no-answer&DialCallDuration=0")),
            200);
  EXPECT_EQ(telephony.PostTwilio(TwilioRecording("CA9vm", "RE0000000000000000000000000000071"),
                                 kTwilioToken, "/v1/twilio/recording"),
            200);
  EXPECT_EQ(telephony.PostTwilio(TwilioRecording("CA9vm", "RE0000000000000000000000000000072"),
                                 kTwilioToken, "/v1/twilio/recording"),
            200);
  EXPECT_EQ(telephony.PostTwilio(
                TwilioStatus("CA9vm", "inbound", from, to, "completed", "&CallDuration=40")),
            200);
  ASSERT_TRUE(WaitApplied(3)) << core.process().Log() << telephony.process().Log();

  auto lead = LeadsTitled(api, "Missed call +33 6 41 00 00 72");
  ASSERT_EQ(lead.size(), 1u) << lead.dump();
  auto call_back = Activities(api, "OWNER_TYPE_LEAD", std::stoll(lead[0]["id"].get<std::string>()));
  ASSERT_EQ(call_back.size(), 1u) << call_back.dump();
  EXPECT_TRUE(call_back[0]["call"].value("call_back", false));
  const std::string base = "https://api.twilio.com/2010-04-01/Accounts/AC0000/Recordings/";
  EXPECT_EQ(call_back[0]["call"].value("recording_urls", nlohmann::json::array()),
            nlohmann::json::array({base + "RE0000000000000000000000000000071",
                                   base + "RE0000000000000000000000000000072"}))
      << call_back.dump();

  // Read before their call (deferred) or, had crm-core read the call's partition first, after
  // it (attached): never unmatched. The counters move once the batch committed.
  std::string metrics;
  auto series = [&metrics](const std::string& result) {
    return testing::MetricValue(metrics, "crm_call_recordings_total{result=\"" + result + "\"}")
        .value_or(-1);
  };
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        metrics = testing::Shell("curl -s http://127.0.0.1:" + std::to_string(core.http_port()) +
                                 "/metrics");
        return series("deferred") + series("attached") + series("unmatched") >= 2.0;
      },
      std::chrono::seconds(30)))
      << metrics;
  EXPECT_EQ(series("deferred") + series("attached"), 2.0) << metrics;
  EXPECT_EQ(series("unmatched"), 0.0) << metrics;
  EXPECT_EQ(core.process().Log().find("matches no call"), std::string::npos)
      << core.process().Log();

  // One line per event Kafka took, none with the caller's number.
  std::string log;
  auto lines = [&log] {
    size_t count = 0;
    const std::string line = "telephony: published twilio call twilio:CA9vm";
    for (size_t at = log.find(line); at != std::string::npos; at = log.find(line, at + 1)) {
      ++count;
    }
    return count;
  };
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        log = telephony.process().Log();
        return lines() >= 3;
      },
      std::chrono::seconds(10)));
  EXPECT_EQ(lines(), 3u) << log;
  EXPECT_NE(log.find("direction=inbound duration=0s from=**72 to=**21"), std::string::npos) << log;
  EXPECT_EQ(log.find("41000072"), std::string::npos) << log;
}

}  // namespace
}  // namespace leadflow::e2e
