#include "telephony-ingest/twilio.h"

#include <gtest/gtest.h>

#include <string>

#include "absl/strings/str_cat.h"

#include "telephony-ingest/generic.h"

namespace leadflow::telephony {
namespace {

using std::chrono::seconds;

TwilioParse Parse(const std::string& body, std::string_view target = {},
                  const std::vector<std::string>& sip_domains = {}) {
  auto params = ingest::ParseFormParams(body);
  EXPECT_TRUE(params.ok()) << body;
  return ParseTwilioVoice(params.ok() ? *params : ingest::FormParams{}, target, sip_domains);
}

// Protects: Twilio's enumerated values are read in any case, as the generic API reads its
// direction and state: a "Completed" (a relay or a hand-written test that capitalises it) is
// the answered call "completed" is, not a 422 "unknown CallStatus"; likewise Direction,
// DialCallStatus, AnsweredBy and RecordingStatus. An unknown status is still refused.
TEST(TwilioParseTest, EnumeratedValuesInAnyCase) {
  for (const char* status : {"completed", "Completed", "COMPLETED"}) {
    TwilioParse parse =
        Parse(std::string("CallSid=CA1&Direction=Inbound&CallDuration=42&CallStatus=") + status);
    ASSERT_EQ(parse.outcome, TwilioParse::Outcome::kOk) << status << ": " << parse.reason;
    EXPECT_EQ(parse.update.state, State::kEnded) << status;
    EXPECT_TRUE(parse.update.answered) << status;
    EXPECT_EQ(parse.update.duration_seconds, 42) << status;
    EXPECT_EQ(parse.update.direction, CallEvent::INBOUND) << status;
    EXPECT_TRUE(parse.update.awaits_dial) << status;
    EXPECT_EQ(parse.update.provider_status, "completed") << status;
  }
  const std::pair<const char*, State> statuses[] = {
      {"No-Answer", State::kMissed}, {"BUSY", State::kBusy},
      {"Failed", State::kFailed},    {"Canceled", State::kCanceled},
      {"Ringing", State::kRinging},  {"In-Progress", State::kAnswered},
      {"Queued", State::kRinging},   {"INITIATED", State::kRinging},
  };
  for (const auto& [status, state] : statuses) {
    TwilioParse parse =
        Parse(std::string("CallSid=CA2&Direction=OUTBOUND-API&CallStatus=") + status);
    ASSERT_EQ(parse.outcome, TwilioParse::Outcome::kOk) << status << ": " << parse.reason;
    EXPECT_EQ(parse.update.state, state) << status;
    EXPECT_EQ(parse.update.direction, CallEvent::OUTBOUND) << status;
  }
  // A <Dial> action: its DialCallStatus decides; the parent's CallStatus says whether the
  // caller hung up during it.
  TwilioParse dial = Parse(
      "CallSid=CA3&Direction=inbound&CallStatus=Completed&DialCallStatus=No-Answer"
      "&DialCallSid=CA3b");
  ASSERT_EQ(dial.outcome, TwilioParse::Outcome::kOk) << dial.reason;
  EXPECT_TRUE(dial.update.dial_result);
  EXPECT_EQ(dial.update.state, State::kMissed);
  EXPECT_TRUE(dial.update.parent_over);
  EXPECT_EQ(dial.update.provider_status, "dial:no-answer");
  // Answering machine detection.
  TwilioParse machine =
      Parse("CallSid=CA4&Direction=outbound-api&CallStatus=completed&AnsweredBy=Machine_End_Beep");
  ASSERT_EQ(machine.outcome, TwilioParse::Outcome::kOk);
  EXPECT_EQ(machine.update.state, State::kVoicemail);
  // A <Dial>'s child leg, whatever the case of its Direction: reported as its parent's.
  TwilioParse leg = Parse("CallSid=CA5&Direction=Outbound-Dial&ParentCallSid=CA3&CallStatus=busy");
  ASSERT_EQ(leg.outcome, TwilioParse::Outcome::kOk) << leg.reason;
  EXPECT_TRUE(leg.update.child_leg);
  EXPECT_EQ(leg.update.provider_call_id, "CA3");
  EXPECT_EQ(leg.update.dial_leg, "CA5");
  TwilioParse unknown = Parse("CallSid=CA6&Direction=inbound&CallStatus=Exploded");
  EXPECT_EQ(unknown.outcome, TwilioParse::Outcome::kInvalid);
  EXPECT_EQ(unknown.reason, "unknown CallStatus");
}

// Protects: a recording callback's RecordingStatus in any case: "Completed" is a recording to
// attach, "Failed" is not.
TEST(TwilioParseTest, RecordingStatusInAnyCase) {
  const std::string base =
      "CallSid=CA7&RecordingSid=RE7&RecordingUrl=https%3A%2F%2Fapi.twilio.com%2Frec%2FRE7";
  auto params = ingest::ParseFormParams(base + "&RecordingStatus=Completed");
  ASSERT_TRUE(params.ok());
  auto completed = ParseTwilioRecording(*params);
  ASSERT_TRUE(completed.ok()) << completed.status();
  EXPECT_TRUE(completed->completed);
  params = ingest::ParseFormParams(base + "&RecordingStatus=FAILED");
  ASSERT_TRUE(params.ok());
  auto failed = ParseTwilioRecording(*params);
  ASSERT_TRUE(failed.ok()) << failed.status();
  EXPECT_FALSE(failed->completed);
}

// Protects: the id of the recording a voice callback brings (a <Dial record> action's
// RecordingUrl) is the one its recording status callback gives, RecordingSid: the action's own
// RecordingSid, else the "/Recordings/RE…" its Twilio URL names; none for another URL.
TEST(TwilioParseTest, RecordingSidOfAnAction) {
  const std::string action =
      "CallSid=CA8&Direction=inbound&CallStatus=completed&DialCallStatus=completed"
      "&RecordingUrl=https%3A%2F%2Fapi.twilio.com%2F2010-04-01%2FAccounts%2FAC1%2FRecordings%2F"
      "RE0123456789abcdef0123456789abcdef";
  EXPECT_EQ(Parse(action + "&RecordingSid=RE0123456789abcdef0123456789abcdef").recording_sid,
            "RE0123456789abcdef0123456789abcdef");
  EXPECT_EQ(Parse(action).recording_sid, "RE0123456789abcdef0123456789abcdef");
  EXPECT_EQ(Parse(action + ".mp3").recording_sid, "RE0123456789abcdef0123456789abcdef");
  EXPECT_EQ(Parse("CallSid=CA8&Direction=inbound&CallStatus=completed"
                  "&RecordingUrl=https%3A%2F%2Fpbx.example.com%2Fvm%2F1.wav")
                .recording_sid,
            "");
  EXPECT_EQ(Parse("CallSid=CA8&Direction=inbound&CallStatus=completed").recording_sid, "");
  EXPECT_EQ(RecordingSidOfUrl("https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/"), "");
  EXPECT_EQ(RecordingSidOfUrl("https://x.example/Recordings/CA1"), "");
}

// Protects: Twilio's five Direction values: a PBX calling out through an Elastic SIP Trunk
// (trunking-originating) is an outbound call whose callee is the customer, never an inbound
// one from our own number; trunking-terminating is inbound. A Direction Twilio never sends, or
// none, is refused naming the field instead of being guessed inbound.
TEST(TwilioParseTest, Directions) {
  const std::pair<const char*, CallEvent::Direction> directions[] = {
      {"inbound", CallEvent::INBOUND},
      {"trunking-terminating", CallEvent::INBOUND},
      {"outbound-api", CallEvent::OUTBOUND},
      {"outbound-dial", CallEvent::OUTBOUND},
      {"trunking-originating", CallEvent::OUTBOUND}};
  for (const auto& [direction, expected] : directions) {
    TwilioParse parse = Parse(std::string("CallSid=CAtrk1&From=%2B33187654321&To=%2B33641000801"
                                          "&CallStatus=completed&CallDuration=30&Direction=") +
                              direction);
    ASSERT_EQ(parse.outcome, TwilioParse::Outcome::kOk) << direction << ": " << parse.reason;
    EXPECT_EQ(parse.update.direction, expected) << direction;
    EXPECT_EQ(parse.update.line, expected == CallEvent::OUTBOUND ? "+33187654321" : "+33641000801")
        << direction;
  }
  TwilioParse sideways =
      Parse("CallSid=CAtrk3&Direction=sideways&From=%2B33641000803&CallStatus=no-answer");
  EXPECT_EQ(sideways.outcome, TwilioParse::Outcome::kInvalid);
  EXPECT_NE(sideways.reason.find("Direction"), std::string::npos) << sideways.reason;
  TwilioParse none = Parse("CallSid=CAtrk4&From=%2B33641000803&CallStatus=no-answer");
  EXPECT_EQ(none.outcome, TwilioParse::Outcome::kInvalid);
  EXPECT_EQ(none.reason, "Direction missing");
}

// Protects: Twilio callbacks are held to the generic API's bounds, through the same checks:
// a From or To over 256 bytes, a RecordingUrl over 2048 bytes, a CallDuration past a week are
// dropped and named (the service counts them in telephony_fields_dropped_total), the call kept.
TEST(TwilioParseTest, BoundsOfTheGenericApi) {
  std::string long_from;
  for (int i = 0; i < 1000; ++i) long_from += "%C3%A9";  // "é" × 1000: 2000 bytes
  TwilioParse from = Parse(
      "CallSid=CAlong1&Direction=inbound&To=%2B33187654321"
      "&CallStatus=no-answer&From=" +
      long_from);
  ASSERT_EQ(from.outcome, TwilioParse::Outcome::kOk) << from.reason;
  EXPECT_EQ(from.update.from, "");
  ASSERT_EQ(from.dropped.count("From"), 1u);
  EXPECT_EQ(from.dropped.at("From"), "too long (at most 256 bytes)");
  EXPECT_EQ(from.update.state, State::kMissed);

  TwilioParse url = Parse(
      "CallSid=CAlong2&Direction=inbound&From=%2B33641000902&To=%2B33187654321"
      "&CallStatus=no-answer&RecordingUrl=https%3A%2F%2Fx.example%2F" +
      std::string(5000, 'a'));
  ASSERT_EQ(url.outcome, TwilioParse::Outcome::kOk) << url.reason;
  EXPECT_EQ(url.update.recording_url, "");
  EXPECT_EQ(url.dropped.count("RecordingUrl"), 1u);
  EXPECT_EQ(url.update.from, "+33641000902");

  TwilioParse talk = Parse(
      "CallSid=CAlong3&Direction=inbound&From=%2B33641000903&To=%2B33187654321"
      "&CallStatus=completed&CallDuration=999999999");
  ASSERT_EQ(talk.outcome, TwilioParse::Outcome::kOk) << talk.reason;
  EXPECT_EQ(talk.update.duration_seconds, 0);
  EXPECT_EQ(talk.dropped.at("CallDuration"), kDurationProblem);
  TwilioParse dial = Parse(
      "CallSid=CAlong4&Direction=inbound&CallStatus=in-progress&DialCallStatus=completed"
      "&DialCallSid=CAlong4b&DialCallDuration=604801");
  EXPECT_EQ(dial.dropped.count("DialCallDuration"), 1u);
  // A Timestamp that is no RFC 2822 time, or past what the clock holds: no time from it (the
  // call is timed by its callbacks' arrival), the call kept, the field named.
  for (const char* stamp : {"yesterday", "Fri,+01+Jan+2300+00:00:00+%2B0000"}) {
    TwilioParse late = Parse(
        "CallSid=CAlong6&Direction=inbound&From=%2B33641000903&CallStatus=completed"
        "&CallDuration=30&Timestamp=" +
        std::string(stamp));
    ASSERT_EQ(late.outcome, TwilioParse::Outcome::kOk) << late.reason;
    EXPECT_EQ(late.dropped.count("Timestamp"), 1u) << stamp;
    EXPECT_FALSE(late.update.ended_at) << stamp;
  }
  TwilioParse stamped = Parse(
      "CallSid=CAlong7&Direction=inbound&From=%2B33641000903&CallStatus=completed"
      "&CallDuration=30&Timestamp=Mon,+30+Nov+2026+10:00:00+%2B0000");
  EXPECT_TRUE(stamped.dropped.empty());
  EXPECT_TRUE(stamped.update.ended_at);
  // At the bounds: kept.
  TwilioParse week = Parse(
      "CallSid=CAlong5&Direction=inbound&From=%2B33641000903&CallStatus=completed"
      "&CallDuration=604800&RecordingUrl=https%3A%2F%2Fx.example%2F" +
      std::string(2048 - 18, 'a'));
  EXPECT_TRUE(week.dropped.empty());
  EXPECT_EQ(week.update.duration_seconds, 604800);
  EXPECT_EQ(week.update.recording_url.size(), 2048u);
}

// Twilio's callbacks folded by the assembler, as the service does.
class TwilioFoldTest : public ::testing::Test {
 protected:
  TwilioFoldTest() { options_.settle_window = std::chrono::milliseconds(15000); }
  CallAssembler::Result Post(const std::string& body, Clock::time_point now,
                             std::string_view target = {}) {
    TwilioParse parse = Parse(body, target, sip_domains_);
    EXPECT_EQ(parse.outcome, TwilioParse::Outcome::kOk) << body << ": " << parse.reason;
    auto result = assembler_.Apply(parse.update, now);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : CallAssembler::Result{};
  }
  CallAssembler::Options options_;
  CallAssembler assembler_{options_};
  // TELEPHONY_TWILIO_SIP_DOMAINS: the account's own SIP Domain.
  std::vector<std::string> sip_domains_ = {"acme.sip.twilio.com"};
  const Clock::time_point t0_ = Clock::time_point(seconds(1700000000));
};

const std::string kClickToCall =
    "AccountSid=AC1&ApiVersion=2010-04-01&Direction=outbound-api&From=%2B33187654321"
    "&To=%2B33612000202";  // the agent's phone, which Twilio calls first

// Protects: click-to-call whose customer hangs up first — the <Dial> action (the parent still
// in-progress) then the parent's "completed" — is published at the parent's "completed" as an
// answered outbound call, not held until TELEPHONY_CALL_TIMEOUT_S and published incomplete.
TEST_F(TwilioFoldTest, ClickToCallSettlesAtTheParentsCompleted) {
  EXPECT_FALSE(Post("CallSid=CApar3&" + kClickToCall + "&CallStatus=initiated", t0_).finished);
  EXPECT_FALSE(Post("CallSid=CApar3&" + kClickToCall + "&CallStatus=in-progress", t0_).finished);
  auto action = Post("CallSid=CApar3&" + kClickToCall +
                         "&CallStatus=in-progress&DialCallStatus=completed&DialCallSid=CAchd3"
                         "&DialCallDuration=20",
                     t0_ + seconds(30));
  EXPECT_FALSE(action.finished);
  auto completed = Post("CallSid=CApar3&" + kClickToCall + "&CallStatus=completed&CallDuration=25",
                        t0_ + seconds(31));
  ASSERT_TRUE(completed.finished) << "held: the call would wait for the open-call timeout";
  EXPECT_FALSE(completed.repeated);
  EXPECT_EQ(completed.finished->call.outcome(), CallEvent::ANSWERED);
  EXPECT_EQ(completed.finished->call.duration_seconds(), 20);
  EXPECT_EQ(completed.finished->call.direction(), CallEvent::OUTBOUND);
  EXPECT_FALSE(completed.finished->call.incomplete());
  // The inbound call in the same order settles the same way.
  const std::string inbound =
      "AccountSid=AC1&Direction=inbound&From=%2B33641000404&To=%2B33187654321";
  EXPECT_FALSE(Post("CallSid=CAin4&" + inbound +
                        "&CallStatus=in-progress&DialCallStatus=completed&DialCallSid=CAin4b"
                        "&DialCallDuration=20",
                    t0_)
                   .finished);
  auto in = Post("CallSid=CAin4&" + inbound + "&CallStatus=completed&CallDuration=25", t0_);
  ASSERT_TRUE(in.finished);
  EXPECT_EQ(in.finished->call.outcome(), CallEvent::ANSWERED);
}

// Protects: a click-to-call's agent, named in its <Dial> action URL (?extension=201), is
// credited with the call whichever of the customer's leg status callback and the action comes
// first. The leg's "completed" (it names nobody) usually reaches us first; it used to take the
// leg's place, and the action of that same leg (same DialCallSid) was then read as a retry that
// credits nobody: the answered call-back went to no one.
TEST_F(TwilioFoldTest, ClickToCallCreditsTheAgentWhicheverCallbackComesFirst) {
  const std::string leg =
      "AccountSid=AC1&Direction=outbound-dial&ParentCallSid=CApar9&From=%2B33187654321"
      "&To=%2B33641000109&CallSid=CAchd9";
  EXPECT_FALSE(Post(leg + "&CallStatus=in-progress", t0_).finished);
  EXPECT_FALSE(Post(leg + "&CallStatus=completed&CallDuration=40", t0_ + seconds(40)).finished);
  // The action (the parent over: the customer hung up) settles the call once the leg ended.
  std::optional<FinishedCall> call =
      Post("CallSid=CApar9&" + kClickToCall +
               "&CallStatus=completed&DialCallStatus=completed&DialCallSid=CAchd9"
               "&DialCallDuration=40",
           t0_ + seconds(40), "/v1/twilio/voice?extension=201")
          .finished;
  auto parent = Post("CallSid=CApar9&" + kClickToCall + "&CallStatus=completed&CallDuration=55",
                     t0_ + seconds(41));
  if (!call) {
    call = parent.finished;
  }
  if (!call) {
    auto due = assembler_.Due(t0_ + seconds(60));
    ASSERT_EQ(due.size(), 1u);
    call = due[0];
  }
  EXPECT_EQ(call->call.to_number(), "+33641000109");
  EXPECT_EQ(call->call.outcome(), CallEvent::ANSWERED);
  EXPECT_EQ(call->call.duration_seconds(), 40);
  EXPECT_EQ(call->call.extension(), "201");
  EXPECT_EQ(call->call.transferred_to(), "");
}

// Protects: an inbound call whose callbacks carry no Timestamp is timed by their arrival, the
// agent's talk time (DialCallDuration) ending when the <Dial> action came: answered that many
// seconds before, not when the action came (0 s between answer and end for a 40 s talk).
// Seen red: answered at the action's arrival.
TEST_F(TwilioFoldTest, UntimedDialIsAnsweredItsTalkTimeBeforeItsEnd) {
  const std::string call =
      "AccountSid=AC1&CallSid=CAut1&Direction=inbound&From=%2B33641000111&To=%2B33187654321";
  EXPECT_FALSE(Post(call + "&CallStatus=ringing", t0_).finished);
  CallAssembler::Result action =
      Post(call +
               "&CallStatus=in-progress&DialCallStatus=completed&DialCallSid=CAut1b"
               "&DialCallDuration=40",
           t0_ + seconds(100), "/v1/twilio/voice?extension=202");
  std::optional<FinishedCall> finished = action.finished;
  if (!finished) {
    finished = Post(call + "&CallStatus=completed&CallDuration=101", t0_ + seconds(101)).finished;
  }
  ASSERT_TRUE(finished);
  EXPECT_EQ(finished->call.outcome(), CallEvent::ANSWERED);
  EXPECT_EQ(finished->call.duration_seconds(), 40);
  EXPECT_EQ(finished->call.started_at().seconds(), 1700000000);
  EXPECT_EQ(finished->call.ended_at().seconds(), 1700000100);
  EXPECT_EQ(finished->call.answered_at().seconds(), 1700000060);
}

// Protects: click-to-call is the customer's call: Twilio calls the agent (the outbound-api
// parent, To = the agent's phone) then <Dial>s the customer, whom only the child leg
// (outbound-dial, ParentCallSid) names. The call's callee — its identity, its Kafka key — is
// the child leg's To, its outcome and talk time the leg's, in either order of the leg's and the
// parent's final callbacks; an inbound call's <Dial> legs change nothing.
TEST_F(TwilioFoldTest, ClickToCallIsTheCustomersCall) {
  const std::string leg =
      "AccountSid=AC1&ApiVersion=2010-04-01&Direction=outbound-dial&ParentCallSid=CApar5"
      "&From=%2B33187654321&To=%2B33641000101&CallSid=CAchd5";
  EXPECT_FALSE(Post(leg + "&CallStatus=in-progress", t0_).finished);
  EXPECT_FALSE(Post(leg + "&CallStatus=completed&CallDuration=45", t0_ + seconds(45)).finished);
  auto parent = Post("CallSid=CApar5&" + kClickToCall + "&CallStatus=completed&CallDuration=50",
                     t0_ + seconds(46));
  std::optional<FinishedCall> call = parent.finished;
  if (!call) {
    ASSERT_TRUE(parent.settling);
    auto due = assembler_.Due(t0_ + seconds(62));
    ASSERT_EQ(due.size(), 1u);
    call = due[0];
  }
  EXPECT_EQ(call->call.to_number(), "+33641000101");
  EXPECT_EQ(call->call.from_number(), "+33187654321");
  EXPECT_EQ(call->call.outcome(), CallEvent::ANSWERED);
  EXPECT_EQ(call->call.duration_seconds(), 45);
  EXPECT_EQ(call->call.call_id(), "twilio:CApar5");
  auto built = BuildEvent(*call, "FR", t0_, std::nullopt);
  EXPECT_EQ(built.key, "+33641000101");
  ASSERT_EQ(built.event.identities_size(), 1);
  EXPECT_EQ(built.event.identities(0).value(), "+33641000101");

  // The parent's "completed" first (the agent hung up): it waits the settle window for the leg.
  const std::string leg6 =
      "AccountSid=AC1&Direction=outbound-dial&ParentCallSid=CApar6&From=%2B33187654321"
      "&To=%2B33641000102&CallSid=CAchd6";
  auto first =
      Post("CallSid=CApar6&" + kClickToCall + "&CallStatus=completed&CallDuration=50", t0_);
  EXPECT_FALSE(first.finished);
  EXPECT_TRUE(first.settling);
  auto late = Post(leg6 + "&CallStatus=completed&CallDuration=40", t0_ + seconds(1));
  ASSERT_TRUE(late.finished);
  EXPECT_EQ(late.finished->call.to_number(), "+33641000102");
  EXPECT_EQ(late.finished->call.outcome(), CallEvent::ANSWERED);
  EXPECT_EQ(late.finished->call.duration_seconds(), 40);

  // The customer did not answer: the call is the customer's, not answered (his call-back
  // stays open), although the agent's leg talked 30 s.
  const std::string leg7 =
      "AccountSid=AC1&Direction=outbound-dial&ParentCallSid=CApar7&From=%2B33187654321"
      "&To=%2B33641000103&CallSid=CAchd7";
  EXPECT_FALSE(Post(leg7 + "&CallStatus=no-answer", t0_).finished);
  auto unanswered =
      Post("CallSid=CApar7&" + kClickToCall + "&CallStatus=completed&CallDuration=30", t0_);
  std::optional<FinishedCall> missed = unanswered.finished;
  if (!missed) {
    auto due = assembler_.Due(t0_ + seconds(16));
    ASSERT_EQ(due.size(), 1u);
    missed = due[0];
  }
  EXPECT_EQ(missed->call.to_number(), "+33641000103");
  EXPECT_NE(missed->call.outcome(), CallEvent::ANSWERED);

  // An inbound call's <Dial> leg (to the agent's phone) changes neither callee nor outcome.
  const std::string inbound =
      "AccountSid=AC1&Direction=inbound&From=%2B33641000104&To=%2B33187654321&CallSid=CAin8";
  EXPECT_FALSE(Post("AccountSid=AC1&Direction=outbound-dial&ParentCallSid=CAin8"
                    "&From=%2B33187654321&To=%2B33612000201&CallSid=CAin8b&CallStatus=no-answer",
                    t0_)
                   .finished);
  auto in = Post(inbound + "&CallStatus=completed&CallDuration=30", t0_);
  std::optional<FinishedCall> answered = in.finished;
  if (!answered) {
    auto due = assembler_.Due(t0_ + seconds(16));
    ASSERT_EQ(due.size(), 1u);
    answered = due[0];
  }
  EXPECT_EQ(answered->call.to_number(), "+33187654321");
  EXPECT_EQ(answered->call.from_number(), "+33641000104");
  EXPECT_EQ(answered->call.outcome(), CallEvent::ANSWERED);
  EXPECT_EQ(answered->call.duration_seconds(), 30);
  // A child leg alone never makes a call of its own, even past the open-call timeout.
  EXPECT_FALSE(Post("AccountSid=AC1&Direction=outbound-dial&ParentCallSid=CAlone"
                    "&To=%2B33612000201&CallSid=CAlone2&CallStatus=completed&CallDuration=5",
                    t0_)
                   .finished);
  for (const FinishedCall& due : assembler_.Due(t0_ + std::chrono::hours(5))) {
    EXPECT_NE(due.call.call_id(), "twilio:CAlone") << "a child leg made a call of its own";
  }
}

// Protects: answering machine detection counts from whichever report carries it: AnsweredBy
// machine_* on the "answered" progress callback, or on the asynchronous AMD callback (CallSid,
// AccountSid, AnsweredBy, MachineDetectionDuration: no CallStatus, no Direction), makes the
// call a voicemail although its "completed" says nothing of it — the customer's call-back is
// not closed as if he had been reached; "human" leaves it answered.
TEST_F(TwilioFoldTest, AnsweringMachineFromAnyReport) {
  const std::string call =
      "AccountSid=AC1&ApiVersion=2010-04-01&Direction=outbound-api&From=%2B33187654321";
  auto settle = [&](CallAssembler::Result result) {
    if (result.finished) return *result.finished;
    EXPECT_TRUE(result.settling);
    auto due = assembler_.Due(t0_ + seconds(60));
    EXPECT_EQ(due.size(), 1u);
    return due.empty() ? FinishedCall{} : due[0];
  };
  // (a) On the progress callback.
  EXPECT_FALSE(Post("CallSid=CAamd7&" + call +
                        "&To=%2B33641000701&CallStatus=in-progress&AnsweredBy=machine_start",
                    t0_)
                   .finished);
  FinishedCall a = settle(Post(
      "CallSid=CAamd7&" + call + "&To=%2B33641000701&CallStatus=completed&CallDuration=25", t0_));
  EXPECT_EQ(a.call.outcome(), CallEvent::VOICEMAIL);
  // (b) The asynchronous callback.
  EXPECT_FALSE(
      Post("CallSid=CAamd8&" + call + "&To=%2B33641000702&CallStatus=in-progress", t0_).finished);
  TwilioParse amd = Parse(
      "CallSid=CAamd8&AccountSid=AC1&AnsweredBy=machine_end_beep"
      "&MachineDetectionDuration=4200");
  ASSERT_EQ(amd.outcome, TwilioParse::Outcome::kOk) << amd.reason;
  EXPECT_TRUE(amd.update.machine);
  EXPECT_EQ(amd.update.state, State::kAnswered);
  EXPECT_EQ(amd.update.provider_status, "amd:machine_end_beep");
  EXPECT_FALSE(Post("CallSid=CAamd8&AccountSid=AC1&AnsweredBy=machine_end_beep"
                    "&MachineDetectionDuration=4200",
                    t0_)
                   .finished);
  FinishedCall b = settle(Post(
      "CallSid=CAamd8&" + call + "&To=%2B33641000702&CallStatus=completed&CallDuration=30", t0_));
  EXPECT_EQ(b.call.outcome(), CallEvent::VOICEMAIL);
  EXPECT_EQ(b.call.to_number(), "+33641000702");
  // A fax is no person either; a human is.
  EXPECT_TRUE(Parse("CallSid=CAamd9&AccountSid=AC1&AnsweredBy=fax").update.machine);
  EXPECT_FALSE(Parse("CallSid=CAamd9&AccountSid=AC1&AnsweredBy=unknown").update.machine);
  EXPECT_FALSE(
      Post("CallSid=CAamd10&" + call + "&To=%2B33641000703&CallStatus=in-progress", t0_).finished);
  EXPECT_FALSE(Post("CallSid=CAamd10&AccountSid=AC1&AnsweredBy=human", t0_).finished);
  FinishedCall human = settle(Post(
      "CallSid=CAamd10&" + call + "&To=%2B33641000703&CallStatus=completed&CallDuration=30", t0_));
  EXPECT_EQ(human.call.outcome(), CallEvent::ANSWERED);
  EXPECT_EQ(human.call.duration_seconds(), 30);
}

// Protects: a call placed by one of our own endpoints — a phone registered on a Twilio SIP
// Domain ("sip:201@acme.sip.twilio.com") or the Voice SDK ("client:alice@example.com"), which
// Twilio reports "inbound" since it came into Twilio — is our agent's outbound call to the
// customer: its callee (the <Dial>'s leg's To, else the parent's To, a SIP URI's user part) is
// the identity, the endpoint's user its operator (and extension). Before, the agent calling a
// customer back from a desk phone was an inbound call from "sip:201@…" among the unidentified
// calls, and the customer's call-back stayed open. A number on the SIP Domain, another SIP host
// and a withheld caller stay inbound callers. The SIP Domain is ours by
// TELEPHONY_TWILIO_SIP_DOMAINS (OtherAccountsSipUserIsACaller).
TEST_F(TwilioFoldTest, OwnEndpointCallingOutIsOutbound) {
  const std::string desk =
      "AccountSid=AC1&ApiVersion=2010-04-01&Direction=inbound&From=sip%3A201%40acme.sip.twilio.com"
      "&To=sip%3A%2B33612345601%40acme.sip.twilio.com&SipDomain=acme.sip.twilio.com";
  EXPECT_FALSE(Post("CallSid=CAsip1&" + desk + "&CallStatus=ringing", t0_).finished);
  const std::string leg =
      "AccountSid=AC1&Direction=outbound-dial&ParentCallSid=CAsip1&From=%2B33187654321"
      "&To=%2B33612345601&CallSid=CAsip1leg";
  EXPECT_FALSE(Post(leg + "&CallStatus=in-progress", t0_ + seconds(5)).finished);
  EXPECT_FALSE(Post(leg + "&CallStatus=completed&CallDuration=65", t0_ + seconds(70)).finished);
  auto desk_done =
      Post("CallSid=CAsip1&" + desk + "&CallStatus=completed&CallDuration=70", t0_ + seconds(70));
  ASSERT_TRUE(desk_done.finished);
  const CallEvent& call = desk_done.finished->call;
  EXPECT_EQ(call.direction(), CallEvent::OUTBOUND);
  EXPECT_EQ(call.outcome(), CallEvent::ANSWERED);
  EXPECT_EQ(call.duration_seconds(), 65);
  EXPECT_EQ(call.to_number(), "+33612345601");
  EXPECT_EQ(call.extension(), "201");
  EXPECT_EQ(call.operator_name(), "201");
  EXPECT_EQ(call.line(), "");
  auto built = BuildEvent(*desk_done.finished, "FR", t0_, std::nullopt);
  EXPECT_EQ(built.key, "+33612345601");
  ASSERT_EQ(built.event.identities_size(), 1);
  EXPECT_EQ(built.event.identities(0).value(), "+33612345601");

  // The Voice SDK, the customer's number passed as To, no <Dial> leg reported.
  auto sdk = Post(
      "CallSid=CAsdk1&AccountSid=AC1&Direction=inbound&From=client%3Aalice%40example.com"
      "&To=%2B33612345602&CallStatus=completed&CallDuration=30",
      t0_);
  EXPECT_FALSE(sdk.finished);
  std::optional<FinishedCall> sdk_call;
  for (const FinishedCall& due : assembler_.Due(t0_ + seconds(16))) {
    if (due.call.call_id() == "twilio:CAsdk1") sdk_call = due;
  }
  ASSERT_TRUE(sdk_call);
  EXPECT_EQ(sdk_call->call.direction(), CallEvent::OUTBOUND);
  EXPECT_EQ(sdk_call->call.operator_name(), "alice@example.com");
  EXPECT_EQ(sdk_call->call.extension(), "");
  EXPECT_EQ(BuildEvent(*sdk_call, "FR", t0_, std::nullopt).key, "+33612345602");

  // Callers that are not ours stay inbound: a number on the SIP Domain (a PBX passing the
  // caller's), another SIP host, a withheld caller.
  const std::pair<const char*, const char*> callers[] = {
      {"sip%3A%2B33612345603%40acme.sip.twilio.com", "+33612345603"},
      {"sip%3A0612345604%40acme.sip.twilio.com", "+33612345604"},
      {"sip%3Abob%40customer.example", ""},
      {"sip%3Aanonymous%40acme.sip.twilio.com", ""}};
  int n = 0;
  for (const auto& [from, identity] : callers) {
    std::string sid = "CAin" + std::to_string(n++);
    auto missed = Post("CallSid=" + sid + "&AccountSid=AC1&Direction=inbound&From=" + from +
                           "&To=%2B33187654321&CallStatus=no-answer",
                       t0_);
    ASSERT_TRUE(missed.finished) << from;
    EXPECT_EQ(missed.finished->call.direction(), CallEvent::INBOUND) << from;
    EXPECT_EQ(missed.finished->call.operator_name(), "") << from;
    auto event = BuildEvent(*missed.finished, "FR", t0_, std::nullopt).event;
    EXPECT_EQ(event.identities_size(), *identity ? 1 : 0) << from;
    if (*identity && event.identities_size() == 1) {
      EXPECT_EQ(event.identities(0).value(), identity);
    }
  }
}

// Protects: only the account's own SIP Domains (TELEPHONY_TWILIO_SIP_DOMAINS) are our
// endpoints. A customer calling from another Twilio account's SIP user
// ("sip:alice@othercorp.sip.twilio.com", regional or any case alike) is an inbound call from an
// unidentified caller, missed when nobody answered, so its call-back stays open: not our agent
// "alice" calling out (direction flipped, an operator that may match a real user, no
// call-back). With no domain configured, no SIP user is ours; a Twilio Client still is.
TEST_F(TwilioFoldTest, OtherAccountsSipUserIsACaller) {
  int n = 0;
  auto missed = [&](const std::string& from) {
    std::string sid = "CAother" + std::to_string(n++);
    auto result = Post("CallSid=" + sid + "&AccountSid=AC1&Direction=inbound&From=" + from +
                           "&To=%2B33187654321&CallStatus=no-answer",
                       t0_);
    EXPECT_TRUE(result.finished) << from;
    return result.finished.value_or(FinishedCall{});
  };
  for (const char* from :
       {"sip%3Aalice%40othercorp.sip.twilio.com", "sip%3A201%40othercorp.sip.ie1.twilio.com",
        "sips%3Aalice%40OTHERCORP.sip.twilio.com%3Btransport%3Dtls",
        "sip%3Aalice%40acme.sip.twilio.com.evil.example"}) {
    const FinishedCall finished = missed(from);
    const CallEvent& call = finished.call;
    EXPECT_EQ(call.direction(), CallEvent::INBOUND) << from;
    EXPECT_EQ(call.outcome(), CallEvent::MISSED) << from;
    EXPECT_EQ(call.operator_name(), "") << from;
    EXPECT_EQ(call.extension(), "") << from;
    EXPECT_EQ(BuildEvent(finished, "FR", t0_, std::nullopt).event.identities_size(), 0) << from;
  }
  // Nothing configured: no SIP user is ours, the account's own included; "client:" still is.
  sip_domains_.clear();
  const CallEvent desk = missed("sip%3A201%40acme.sip.twilio.com").call;
  EXPECT_EQ(desk.direction(), CallEvent::INBOUND);
  EXPECT_EQ(desk.operator_name(), "");
  auto sdk = Parse(
      "CallSid=CAsdk2&AccountSid=AC1&Direction=inbound&From=client%3Aalice&To=%2B33612345602"
      "&CallStatus=ringing");
  EXPECT_EQ(sdk.update.direction, CallEvent::OUTBOUND);
  EXPECT_EQ(sdk.update.operator_name, "alice");
}

// Protects: a <Dial><Conference> is answered with the caller's time in it. Twilio's <Dial>
// action after a conference carries DialCallStatus "answered" and neither DialCallSid nor
// DialCallDuration, so the parent's CallDuration is the talk time, in either order of the two
// callbacks (the action waits the settle window for it): the call was published at the action,
// answered with 0 s. A <Dial> action that gives its DialCallDuration still decides at once.
TEST_F(TwilioFoldTest, ConferenceTalkTimeIsTheParentsDuration) {
  const std::string in = "AccountSid=AC1&Direction=inbound&From=%2B33612345701&To=%2B33187654321";
  auto action =
      Post("CallSid=CAconf1&" + in + "&CallStatus=completed&DialCallStatus=answered", t0_);
  EXPECT_FALSE(action.finished);
  EXPECT_TRUE(action.settling);
  auto done = Post("CallSid=CAconf1&" + in + "&CallStatus=completed&CallDuration=300", t0_);
  ASSERT_TRUE(done.finished);
  EXPECT_EQ(done.finished->call.outcome(), CallEvent::ANSWERED);
  EXPECT_EQ(done.finished->call.duration_seconds(), 300);
  // The parent's "completed" first.
  EXPECT_FALSE(
      Post("CallSid=CAconf2&" + in + "&CallStatus=completed&CallDuration=120", t0_).finished);
  auto late = Post("CallSid=CAconf2&" + in + "&CallStatus=completed&DialCallStatus=answered", t0_);
  ASSERT_TRUE(late.finished);
  EXPECT_EQ(late.finished->call.duration_seconds(), 120);
  // No parent's "completed" (its status callback not sent to LeadFlow): answered after the
  // window, talk time unknown.
  EXPECT_FALSE(Post("CallSid=CAconf3&" + in + "&CallStatus=completed&DialCallStatus=answered", t0_)
                   .finished);
  std::optional<FinishedCall> alone;
  for (const FinishedCall& due : assembler_.Due(t0_ + seconds(16))) {
    if (due.call.call_id() == "twilio:CAconf3") alone = due;
  }
  ASSERT_TRUE(alone);
  EXPECT_EQ(alone->call.outcome(), CallEvent::ANSWERED);
  EXPECT_EQ(alone->call.duration_seconds(), 0);
  // A <Dial><Number> gives its own talk time, and settles the call at once.
  auto number = Post("CallSid=CAnum4&" + in +
                         "&CallStatus=completed&DialCallStatus=completed&DialCallSid=CAleg4"
                         "&DialCallDuration=40",
                     t0_);
  ASSERT_TRUE(number.finished);
  EXPECT_EQ(number.finished->call.duration_seconds(), 40);
}

// Protects: the legs of an inbound call's <Dial> (a simultaneous ring of many numbers, each leg
// posting its status callbacks) never settle the call, even once its reports fill
// TELEPHONY_MAX_UPDATES_PER_CALL: the parent's <Dial> action decides. A leg's final status past
// the cap was taken as the call's own final report, and the call was published at once from
// the legs' states (missed, a call-back for a caller an agent was talking to).
TEST(TwilioCapTest, InboundDialLegsPastTheCapDoNotSettleTheCall) {
  CallAssembler::Options options;
  options.settle_window = std::chrono::milliseconds(15000);
  options.max_updates_per_call = 4;
  CallAssembler assembler(options);
  const Clock::time_point t0 = Clock::time_point(seconds(1700000000));
  auto post = [&](const std::string& body, Clock::time_point now) {
    TwilioParse parse = Parse(body, {});
    EXPECT_EQ(parse.outcome, TwilioParse::Outcome::kOk) << body << ": " << parse.reason;
    return assembler.Apply(parse.update, now);
  };
  const std::string parent =
      "CallSid=CAring1&AccountSid=AC1&Direction=inbound&From=%2B33641000505&To=%2B33187654321";
  auto leg = [](int i) {
    return absl::StrCat("CallSid=CAleg", i,
                        "&ParentCallSid=CAring1&AccountSid=AC1&Direction=outbound-dial"
                        "&From=%2B33187654321&To=%2B3318765430",
                        i);
  };
  ASSERT_TRUE(post(parent + "&CallStatus=ringing", t0).ok());
  ASSERT_TRUE(post(parent + "&CallStatus=in-progress", t0).ok());
  ASSERT_TRUE(post(leg(1) + "&CallStatus=ringing", t0).ok());
  ASSERT_TRUE(post(leg(2) + "&CallStatus=ringing", t0).ok());  // 4 reports: the cap
  for (int i = 3; i <= 5; ++i) {
    auto result = post(leg(i) + "&CallStatus=no-answer", t0 + seconds(i));
    EXPECT_FALSE(result.ok() && result->finished)
        << "leg " << i << " settled the call as "
        << CallEvent::Outcome_Name(result->finished->call.outcome());
  }
  auto action = post(parent +
                         "&CallStatus=in-progress&DialCallStatus=completed&DialCallSid=CAleg1"
                         "&DialCallDuration=30",
                     t0 + seconds(40));
  ASSERT_TRUE(action.ok()) << action.status();
  ASSERT_TRUE(action->finished);
  EXPECT_FALSE(action->repeated);
  EXPECT_EQ(action->finished->call.outcome(), CallEvent::ANSWERED);
  EXPECT_EQ(action->finished->call.duration_seconds(), 30);

  // Click-to-call's leg is the customer's: past the cap its final status still settles the call.
  const std::string click =
      "CallSid=CAclick1&AccountSid=AC1&Direction=outbound-api&From=%2B33187654321"
      "&To=%2B33612000202";
  const std::string customer =
      "CallSid=CAcust1&ParentCallSid=CAclick1&AccountSid=AC1&Direction=outbound-dial"
      "&From=%2B33187654321&To=%2B33641000606";
  ASSERT_TRUE(post(click + "&CallStatus=initiated", t0).ok());
  ASSERT_TRUE(post(click + "&CallStatus=ringing", t0).ok());
  ASSERT_TRUE(post(click + "&CallStatus=in-progress", t0).ok());
  ASSERT_TRUE(post(customer + "&CallStatus=ringing", t0).ok());  // 4 reports: the cap
  auto answered = post(customer + "&CallStatus=completed&CallDuration=50", t0 + seconds(60));
  ASSERT_TRUE(answered.ok()) << answered.status();
  ASSERT_TRUE(answered->finished);
  EXPECT_EQ(answered->finished->call.outcome(), CallEvent::ANSWERED);
  EXPECT_EQ(answered->finished->call.to_number(), "+33641000606");
}

}  // namespace
}  // namespace leadflow::telephony
