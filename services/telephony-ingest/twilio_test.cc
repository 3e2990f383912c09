#include "telephony-ingest/twilio.h"

#include <gtest/gtest.h>

namespace leadflow::telephony {
namespace {

TwilioParse Parse(const std::string& body, std::string_view target = {}) {
  auto params = ingest::ParseFormParams(body);
  EXPECT_TRUE(params.ok()) << body;
  return ParseTwilioVoice(params.ok() ? *params : ingest::FormParams{}, target);
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
  // A <Dial>'s child leg, whatever the case of its Direction.
  EXPECT_EQ(Parse("CallSid=CA5&Direction=Outbound-Dial&ParentCallSid=CA3&CallStatus=busy").outcome,
            TwilioParse::Outcome::kIgnored);
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

}  // namespace
}  // namespace leadflow::telephony
