#include "telephony-ingest/ami.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>

#include "telephony-ingest/ami_peer.h"
#include "testing/testing.h"

namespace leadflow::telephony {
namespace {

using testing::AmiPeer;
using testing::LoadTranscript;

std::string Transcript(const std::string& name) {
  return std::string(LEADFLOW_AMI_TRANSCRIPTS) + "/" + name;
}

const char kBanner[] = "Asterisk Call Manager/9.0.0\r\n";

// Protects: framing whatever the chunking: the banner, then blocks ended by a blank line; a
// message cut anywhere across reads (here: byte by byte) comes out whole and once.
TEST(AmiFramerTest, PartialReads) {
  std::string stream = std::string(kBanner) +
                       "Response: Success\r\nActionID: 1\r\nMessage: Authentication accepted\r\n"
                       "\r\nEvent: Hangup\r\nUniqueid: 1.1\r\nCause-txt: Normal Clearing\r\n\r\n";
  AmiFramer framer;
  std::vector<AmiMessage> messages;
  for (char c : stream) {
    ASSERT_TRUE(framer.Feed(std::string_view(&c, 1), &messages).ok());
  }
  ASSERT_TRUE(framer.banner());
  EXPECT_EQ(*framer.banner(), "Asterisk Call Manager/9.0.0");
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[0].Get("Response"), "Success");
  EXPECT_EQ(messages[0].Get("message"), "Authentication accepted");  // keys: any case
  EXPECT_EQ(messages[1].Get("Event"), "Hangup");
  EXPECT_EQ(messages[1].Get("Cause-txt"), "Normal Clearing");
}

// Protects: several messages in one read, empty values, bare LF line ends, values holding
// colons, unknown events passed on as they are.
TEST(AmiFramerTest, SeveralMessagesInOneRead) {
  std::vector<AmiMessage> messages;
  AmiFramer framer;
  ASSERT_TRUE(framer
                  .Feed(std::string(kBanner) +
                            "Event: Newchannel\r\nAccountCode:\r\nUniqueid: 1.1\r\n\r\n"
                            "Event: SomethingNew\nAppData: PJSIP/201&PJSIP/202,20,t:x\n\n"
                            "Event: Hangup\r\nUniqueid: 1.1\r\n\r\nEvent: Part",
                        &messages)
                  .ok());
  ASSERT_EQ(messages.size(), 3u);
  EXPECT_TRUE(messages[0].Has("AccountCode"));
  EXPECT_EQ(messages[0].Get("AccountCode"), "");
  EXPECT_EQ(messages[1].Get("Event"), "SomethingNew");
  EXPECT_EQ(messages[1].Get("AppData"), "PJSIP/201&PJSIP/202,20,t:x");
  ASSERT_TRUE(framer.Feed("ial\r\n\r\n", &messages).ok());
  ASSERT_EQ(messages.size(), 4u);
  EXPECT_EQ(messages[3].Get("Event"), "Partial");
}

// Protects: hostile streams end the connection instead of growing memory or being guessed at:
// another banner, a line without "Key:", a message past the size limit (with or without line
// ends).
TEST(AmiFramerTest, RefusesHostileStreams) {
  std::vector<AmiMessage> messages;
  AmiFramer not_ami;
  EXPECT_FALSE(not_ami.Feed("SSH-2.0-OpenSSH_9.2\r\n", &messages).ok());
  AmiFramer no_colon;
  EXPECT_FALSE(no_colon.Feed(std::string(kBanner) + "Event Hangup\r\n\r\n", &messages).ok());
  AmiFramer big(1024);
  std::string huge = std::string(kBanner);
  for (int i = 0; i < 100; ++i) huge += "Variable: " + std::string(20, 'x') + "\r\n";
  EXPECT_FALSE(big.Feed(huge, &messages).ok());
  AmiFramer endless(1024);
  EXPECT_FALSE(endless.Feed(std::string(kBanner) + std::string(2000, 'x'), &messages).ok());
  EXPECT_TRUE(messages.empty());
}

// Protects: an Asterisk older than 12 (AMI 1.x: Asterisk 11's "Asterisk Call Manager/1.3") is
// refused at its banner with a message naming the version needed, instead of being read: its
// calls are told by "Dial" (SubEvent Begin/End) and "Bridge" events, which the tracker does not
// know, so every answered call was published MISSED with a call-back, without a word in the log.
// AMI 2 and later (Asterisk 12 to 22) are read.
TEST(AmiFramerTest, RefusesManagerVersionsBeforeAmi2) {
  std::vector<AmiMessage> messages;
  for (const char* old : {"Asterisk Call Manager/1.3\r\n", "Asterisk Call Manager/1.1\r\n",
                          "Asterisk Call Manager/1.0\r\n"}) {
    AmiFramer framer;
    absl::Status status = framer.Feed(old, &messages);
    EXPECT_FALSE(status.ok()) << old;
    EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr("Asterisk 12 or newer")) << old;
  }
  for (const char* current :
       {"Asterisk Call Manager/2.10.6\r\n", "Asterisk Call Manager/5.0.1\r\n",
        "Asterisk Call Manager/9.0.0\r\n", "Asterisk Call Manager/10.0.0\r\n"}) {
    AmiFramer framer;
    EXPECT_TRUE(framer.Feed(current, &messages).ok()) << current;
  }
  EXPECT_TRUE(messages.empty());
}

// One AMI message block from its fields, in order.
std::string Block(const std::vector<std::pair<std::string, std::string>>& fields) {
  std::string text;
  for (const auto& [key, value] : fields) text += key + ": " + value + "\r\n";
  return text + "\r\n";
}

class TrackerTest : public ::testing::Test {
 protected:
  TrackerTest()
      : tracker_(options_, &calls_, [this](const FinishedCall& call) {
          std::lock_guard lock(mutex_);
          published_.push_back(call);
          calls_.Published(call);  // as the service does once Kafka took it
        }) {}
  void Play(const std::vector<std::string>& blocks) {
    AmiFramer framer;
    std::vector<AmiMessage> messages;
    ASSERT_TRUE(framer.Feed(kBanner, &messages).ok());
    for (const std::string& block : blocks) {
      ASSERT_TRUE(framer.Feed(block, &messages).ok());
    }
    for (const AmiMessage& message : messages) {
      tracker_.OnEvent(message);
    }
  }
  std::vector<FinishedCall> Published() {
    std::lock_guard lock(mutex_);
    return published_;
  }

  AmiOptions options_;
  CallAssembler calls_{CallAssembler::Options{}};
  std::mutex mutex_;
  std::vector<FinishedCall> published_;
  AmiCallTracker tracker_;
};

// Protects: a ring group nobody answers (the caller gives up) is one missed call, published
// when its last channel hangs up, with both destinations counted and the real times; the Cdr
// that follows changes nothing.
TEST_F(TrackerTest, MissedCall) {
  auto blocks = LoadTranscript(Transcript("missed_call.txt"));
  ASSERT_EQ(blocks.size(), 13u);
  Play(std::vector<std::string>(blocks.begin(), blocks.end() - 2));
  EXPECT_TRUE(Published().empty());
  Play({blocks[blocks.size() - 2]});  // the caller's Hangup
  ASSERT_EQ(Published().size(), 1u);
  Play({blocks.back()});  // Cdr
  ASSERT_EQ(Published().size(), 1u);
  const CallEvent call = Published()[0].call;
  EXPECT_EQ(call.outcome(), CallEvent::MISSED);
  EXPECT_EQ(call.direction(), CallEvent::INBOUND);
  EXPECT_EQ(call.call_id(), "asterisk:1700000000.16");
  EXPECT_EQ(call.from_number(), "+33612345678");
  EXPECT_EQ(call.to_number(), "0187654321");
  EXPECT_EQ(call.line(), "0187654321");
  EXPECT_EQ(call.attempts(), 2);
  EXPECT_EQ(call.started_at().seconds(), 1700000000);
  EXPECT_EQ(call.ended_at().seconds(), 1700000020);
  EXPECT_EQ(call.provider_status(), "CANCEL");
  EXPECT_EQ(calls_.open_calls(), 0u);
  EXPECT_EQ(tracker_.calls(), 0u);
}

// Protects: an answered call carries who answered, the answer time and the talk time.
TEST_F(TrackerTest, AnsweredCall) {
  Play(LoadTranscript(Transcript("answered_call.txt")));
  ASSERT_EQ(Published().size(), 1u);
  const CallEvent call = Published()[0].call;
  EXPECT_EQ(call.outcome(), CallEvent::ANSWERED);
  EXPECT_EQ(call.extension(), "201");
  EXPECT_EQ(call.operator_name(), "201");
  EXPECT_EQ(call.answered_at().seconds(), 1700000106);
  EXPECT_EQ(call.duration_seconds(), 42);
  EXPECT_TRUE(call.transferred_to().empty());
}

// Protects: a transferred call stays one call (one event), credited to the operator who held
// it last (the transfer target who answered), with the transfer target.
TEST_F(TrackerTest, Transfer) {
  Play(LoadTranscript(Transcript("transfer.txt")));
  ASSERT_EQ(Published().size(), 1u);
  const CallEvent call = Published()[0].call;
  EXPECT_EQ(call.outcome(), CallEvent::ANSWERED);
  EXPECT_EQ(call.extension(), "202");
  EXPECT_EQ(call.operator_name(), "202");
  EXPECT_EQ(call.transferred_to(), "202");
  EXPECT_EQ(call.attempts(), 2);
  EXPECT_EQ(call.duration_seconds(), 86);
}

// Protects: the blind transfer as an Asterisk 20 PBX reports it (recorded from a trial: 201
// answers, blind-transfers to 202, who talks 195 s; the Cdr comes before the last Hangup):
// the call is credited to 202 with the Cdr's talk time, not to 201.
TEST_F(TrackerTest, BlindTransferCreditsWhoHeldTheCallLast) {
  Play(LoadTranscript(Transcript("blind_transfer_cdr.txt")));
  ASSERT_EQ(Published().size(), 1u);
  const CallEvent call = Published()[0].call;
  EXPECT_EQ(call.outcome(), CallEvent::ANSWERED);
  EXPECT_EQ(call.from_number(), "+33698765400");
  EXPECT_EQ(call.extension(), "202");
  EXPECT_EQ(call.operator_name(), "202");
  EXPECT_EQ(call.transferred_to(), "202");
  EXPECT_EQ(call.duration_seconds(), 195);
}

// Protects: an attended transfer (201 consults 203, then completes the transfer; 203 is bridged
// with the caller without a DialEnd of its own) credits 203.
TEST_F(TrackerTest, AttendedTransferCreditsTheTarget) {
  const std::string id = "1700000500.70";
  Play({Block({{"Event", "Newchannel"},
               {"CallerIDNum", "+33612349999"},
               {"Exten", "0187654321"},
               {"Uniqueid", id},
               {"Linkedid", id}}),
        Block({{"Event", "DialEnd"},
               {"Uniqueid", id},
               {"Linkedid", id},
               {"DestCallerIDNum", "201"},
               {"DestUniqueid", "1700000500.71"},
               {"DialStatus", "ANSWER"}}),
        Block({{"Event", "AttendedTransfer"},
               {"Result", "Success"},
               {"OrigTransfererCallerIDNum", "201"},
               {"OrigTransfererLinkedid", id},
               {"TransfereeLinkedid", id},
               {"TransferTargetCallerIDNum", "203"},
               {"TransferTargetUniqueid", "1700000500.73"}}),
        Block({{"Event", "BridgeEnter"},
               {"CallerIDNum", "203"},
               {"Uniqueid", "1700000500.73"},
               {"Linkedid", id}}),
        Block({{"Event", "Hangup"}, {"Uniqueid", id}, {"Linkedid", id}})});
  ASSERT_EQ(Published().size(), 1u);
  EXPECT_EQ(Published()[0].call.operator_name(), "203");
  EXPECT_EQ(Published()[0].call.transferred_to(), "203");
}

// Protects: an attended transfer to an outside number: 201 answers the caller (call L), calls a
// mobile (call M, outbound), then transfers the caller to it. Asterisk gives the mobile's channel
// L's Linkedid when it bridges it with the caller, so its Hangup comes under L: it still ends M,
// published when it hangs up (answered, to the mobile) instead of open until its timeout; L is
// published when its caller hangs up. Seen red: M never published.
TEST_F(TrackerTest, AttendedTransferToAnOutsideNumberEndsTheConsultation) {
  const std::string l = "1700000600.80";
  const std::string m = "1700000600.82";
  Play({Block({{"Event", "Newchannel"},
               {"CallerIDNum", "+33612348888"},
               {"Exten", "0187654321"},
               {"Uniqueid", l},
               {"Linkedid", l}}),
        Block({{"Event", "DialBegin"},
               {"Uniqueid", l},
               {"Linkedid", l},
               {"DestCallerIDNum", "201"},
               {"DestUniqueid", "1700000600.81"}}),
        Block({{"Event", "DialEnd"},
               {"Uniqueid", l},
               {"Linkedid", l},
               {"DestCallerIDNum", "201"},
               {"DestUniqueid", "1700000600.81"},
               {"DialStatus", "ANSWER"}}),
        Block({{"Event", "Newchannel"},
               {"CallerIDNum", "201"},
               {"Exten", "0611119999"},
               {"Uniqueid", m},
               {"Linkedid", m}}),
        Block({{"Event", "DialBegin"},
               {"Uniqueid", m},
               {"Linkedid", m},
               {"DestCallerIDNum", "0611119999"},
               {"DestUniqueid", "1700000600.83"}}),
        Block({{"Event", "DialEnd"},
               {"Uniqueid", m},
               {"Linkedid", m},
               {"DestCallerIDNum", "0611119999"},
               {"DestUniqueid", "1700000600.83"},
               {"DialStatus", "ANSWER"}}),
        Block({{"Event", "AttendedTransfer"},
               {"Result", "Success"},
               {"OrigTransfererCallerIDNum", "201"},
               {"OrigTransfererLinkedid", l},
               {"SecondTransfererLinkedid", m},
               {"TransfereeLinkedid", l},
               {"TransferTargetCallerIDNum", "0611119999"},
               {"TransferTargetUniqueid", "1700000600.83"}}),
        Block({{"Event", "Hangup"}, {"Uniqueid", "1700000600.81"}, {"Linkedid", l}}),
        Block({{"Event", "Hangup"}, {"Uniqueid", m}, {"Linkedid", m}})});
  EXPECT_TRUE(Published().empty());
  Play({Block({{"Event", "Hangup"}, {"Uniqueid", "1700000600.83"}, {"Linkedid", l}})});
  ASSERT_EQ(Published().size(), 1u);
  EXPECT_EQ(Published()[0].call.provider_call_id(), m);
  EXPECT_EQ(Published()[0].call.direction(), CallEvent::OUTBOUND);
  EXPECT_EQ(Published()[0].call.to_number(), "0611119999");
  EXPECT_EQ(Published()[0].call.outcome(), CallEvent::ANSWERED);
  EXPECT_FALSE(Published()[0].call.incomplete());
  Play({Block({{"Event", "Hangup"}, {"Uniqueid", l}, {"Linkedid", l}})});
  ASSERT_EQ(Published().size(), 2u);
  EXPECT_EQ(Published()[1].call.provider_call_id(), l);
  EXPECT_EQ(Published()[1].call.direction(), CallEvent::INBOUND);
  EXPECT_EQ(Published()[1].call.outcome(), CallEvent::ANSWERED);
}

// Protects: the outcome of an unanswered call follows the last DialStatus (BUSY, CHANUNAVAIL)
// or the voicemail; an extension calling out is outbound, and when the customer answers the
// operator stays the extension that dialled; extension to extension publishes nothing (counted:
// on_ignored, telephony_ignored_total{reason="internal_call"}), and so does an extension
// dialling a feature code (*97: reason "feature_code", never an unidentified outbound call);
// events of unknown calls and unknown events are ignored.
TEST_F(TrackerTest, OtherOutcomesAndDirections) {
  std::vector<std::string> ignored;
  tracker_.on_ignored = [&ignored](const char* reason) { ignored.emplace_back(reason); };
  auto call = [](const std::string& id, const std::string& caller, const std::string& exten,
                 const std::string& middle) {
    return std::vector<std::string>{"Event: Newchannel\r\nCallerIDNum: " + caller +
                                        "\r\nExten: " + exten + "\r\nUniqueid: " + id +
                                        "\r\nLinkedid: " + id + "\r\n\r\n",
                                    middle,
                                    "Event: Hangup\r\nUniqueid: " + id + "\r\nLinkedid: " + id +
                                        "\r\nCause-txt: User busy\r\n\r\n"};
  };
  Play(call("1.1", "+33612345678", "100",
            "Event: DialEnd\r\nLinkedid: 1.1\r\nDialStatus: BUSY\r\n\r\n"));
  Play(call("1.2", "+33612345678", "100",
            "Event: DialEnd\r\nLinkedid: 1.2\r\nDialStatus: CHANUNAVAIL\r\n\r\n"));
  Play(call("1.3", "+33612345678", "100",
            "Event: Newexten\r\nLinkedid: 1.3\r\nApplication: VoiceMail\r\nAppData: 201@default"
            "\r\n\r\n"));
  Play(call("1.4", "201", "0612345678",
            "Event: DialEnd\r\nLinkedid: 1.4\r\nDialStatus: NOANSWER\r\n\r\n"));
  Play(call("1.5", "201", "202", "Event: DialEnd\r\nLinkedid: 1.5\r\nDialStatus: ANSWER\r\n\r\n"));
  Play(call("1.6", "202", "+442079460958",
            "Event: DialEnd\r\nLinkedid: 1.6\r\nDestCallerIDNum: +442079460958\r\n"
            "DialStatus: ANSWER\r\n\r\n"));
  Play(call("1.7", "201", "*97",
            "Event: Newexten\r\nLinkedid: 1.7\r\nApplication: VoiceMailMain\r\n\r\n"));
  Play({"Event: Hangup\r\nUniqueid: 9.9\r\nLinkedid: 9.9\r\n\r\n",
        "Event: MusicOnHoldStart\r\nLinkedid: 1.1\r\n\r\n"});
  auto published = Published();
  ASSERT_EQ(published.size(), 5u);
  EXPECT_EQ(published[0].call.outcome(), CallEvent::BUSY);
  EXPECT_EQ(published[1].call.outcome(), CallEvent::FAILED);
  EXPECT_EQ(published[2].call.outcome(), CallEvent::VOICEMAIL);
  EXPECT_EQ(published[3].call.direction(), CallEvent::OUTBOUND);
  EXPECT_EQ(published[3].call.to_number(), "0612345678");
  EXPECT_EQ(published[3].call.extension(), "201");
  // An answered outbound call: the customer picked up; the operator is who dialled.
  EXPECT_EQ(published[4].call.outcome(), CallEvent::ANSWERED);
  EXPECT_EQ(published[4].call.direction(), CallEvent::OUTBOUND);
  EXPECT_EQ(published[4].call.extension(), "202");
  EXPECT_EQ(published[4].call.operator_name(), "202");
  EXPECT_EQ(tracker_.internal_calls(), 2u);
  EXPECT_EQ(ignored, (std::vector<std::string>{"internal_call", "feature_code"}));
}

// Protects: a Cdr's ANSWERED is the caller's channel being answered, which VoiceMail() and
// Queue() do themselves. Arriving before the caller's Hangup (cdr_manager's order on many
// PBXs) it must not turn a voicemail or a caller who left the queue into an answered call —
// that would close nobody's call-back and lose the call. The channel events decide; the Cdr
// still gives the talk time of a call they say was answered (AmiTimeZoneTest), and is believed
// for a call that lived through a reconnect (its DialEnd may be lost), below.
TEST_F(TrackerTest, CdrAnsweredByAnApplicationIsNoPersonAnswering) {
  auto cdr = [](const std::string& id, const std::string& application) {
    return Block({{"Event", "Cdr"},
                  {"UniqueID", id},
                  {"LastApplication", application},
                  {"Duration", "46"},
                  {"BillableSeconds", "45"},
                  {"Disposition", "ANSWERED"}});
  };
  const std::string voicemail = "1796000007.1";
  Play({Block({{"Event", "Newchannel"},
               {"CallerIDNum", "0641000207"},
               {"Exten", "0187654321"},
               {"Uniqueid", voicemail},
               {"Linkedid", voicemail}}),
        Block({{"Event", "DialBegin"}, {"Linkedid", voicemail}, {"DestUniqueid", "1796000007.2"}}),
        Block({{"Event", "DialEnd"},
               {"Linkedid", voicemail},
               {"DestCallerIDNum", "201"},
               {"DialStatus", "NOANSWER"}}),
        Block({{"Event", "Hangup"}, {"Uniqueid", "1796000007.2"}, {"Linkedid", voicemail}}),
        Block({{"Event", "Newexten"}, {"Linkedid", voicemail}, {"Application", "VoiceMail"}}),
        cdr(voicemail, "Dial"),  // as a trial's transcript had it; real PBXs say VoiceMail
        Block({{"Event", "Hangup"}, {"Uniqueid", voicemail}, {"Linkedid", voicemail}})});
  const std::string queue = "1796000008.1";
  Play({Block({{"Event", "Newchannel"},
               {"CallerIDNum", "0641000208"},
               {"Exten", "0187654321"},
               {"Uniqueid", queue},
               {"Linkedid", queue}}),
        Block({{"Event", "Newexten"}, {"Linkedid", queue}, {"Application", "Queue"}}),
        Block({{"Event", "QueueCallerJoin"}, {"Linkedid", queue}, {"Queue", "sales"}}),
        Block({{"Event", "QueueCallerAbandon"},
               {"Linkedid", queue},
               {"Queue", "sales"},
               {"HoldTime", "45"}}),
        cdr(queue, "Queue"),
        Block({{"Event", "Hangup"}, {"Uniqueid", queue}, {"Linkedid", queue}})});
  // An IVR that answered and played a message to a caller who hung up: LastApplication
  // Playback, no dial at all.
  const std::string ivr = "1796000009.1";
  Play({Block({{"Event", "Newchannel"},
               {"CallerIDNum", "0641000209"},
               {"Exten", "0187654321"},
               {"Uniqueid", ivr},
               {"Linkedid", ivr}}),
        cdr(ivr, "Playback"), Block({{"Event", "Hangup"}, {"Uniqueid", ivr}, {"Linkedid", ivr}})});
  auto published = Published();
  ASSERT_EQ(published.size(), 3u);
  EXPECT_EQ(published[0].call.outcome(), CallEvent::VOICEMAIL);
  EXPECT_EQ(published[0].call.duration_seconds(), 0);
  EXPECT_EQ(published[1].call.outcome(), CallEvent::MISSED);
  EXPECT_EQ(published[2].call.outcome(), CallEvent::MISSED);

  // The same Cdr for a call whose DialEnd went missing in a reconnect: it is the only word
  // that someone took the call, and its last application was a Dial.
  const std::string gap = "1796000010.1";
  Play({Block({{"Event", "Newchannel"},
               {"CallerIDNum", "0641000210"},
               {"Exten", "0187654321"},
               {"Uniqueid", gap},
               {"Linkedid", gap}})});
  tracker_.Reconcile({gap});
  Play({cdr(gap, "Dial"), Block({{"Event", "Hangup"}, {"Uniqueid", gap}, {"Linkedid", gap}})});
  published = Published();
  ASSERT_EQ(published.size(), 4u);
  EXPECT_EQ(published[3].call.outcome(), CallEvent::ANSWERED);
  EXPECT_EQ(published[3].call.duration_seconds(), 45);
}

// Protects: what happened while disconnected. A call whose channels are still up goes on
// (one event at its real end); a call whose channels all vanished is published from what was
// known, marked incomplete, and counted (on_incomplete: telephony_ami_calls_incomplete_total).
TEST_F(TrackerTest, ReconcileAfterReconnect) {
  int incomplete = 0;
  tracker_.on_incomplete = [&incomplete] { ++incomplete; };
  auto answered = LoadTranscript(Transcript("answered_call.txt"));
  auto missed = LoadTranscript(Transcript("missed_call.txt"));
  Play(std::vector<std::string>(answered.begin(), answered.begin() + 5));  // up to the answer
  Play(std::vector<std::string>(missed.begin(), missed.begin() + 6));      // ringing
  EXPECT_EQ(tracker_.calls(), 2u);
  tracker_.Reconcile({"1700000100.32", "1700000100.33"});
  auto published = Published();
  ASSERT_EQ(published.size(), 1u);
  EXPECT_EQ(published[0].call.call_id(), "asterisk:1700000000.16");
  EXPECT_EQ(published[0].call.outcome(), CallEvent::MISSED);
  EXPECT_TRUE(published[0].call.incomplete());
  EXPECT_EQ(incomplete, 1);
  Play(std::vector<std::string>(answered.begin() + 5, answered.end()));
  published = Published();
  ASSERT_EQ(published.size(), 2u);
  EXPECT_EQ(published[1].call.outcome(), CallEvent::ANSWERED);
  EXPECT_FALSE(published[1].call.incomplete());
  EXPECT_EQ(published[1].call.duration_seconds(), 42);
  EXPECT_EQ(incomplete, 1);
}

// A CoreShowChannel of a channel in conversation: uniqueid, linkedid, CallerIDNum, Exten,
// ConnectedLineNum, BridgeId (empty: not bridged).
std::string BridgedChannel(const std::vector<std::string>& channel) {
  return "Event: CoreShowChannel\r\nActionID: leadflow-channels\r\nUniqueid: " + channel[0] +
         "\r\nLinkedid: " + channel[1] + "\r\nCallerIDNum: " + channel[2] +
         "\r\nExten: " + channel[3] + "\r\nConnectedLineNum: " + channel[4] +
         "\r\nBridgeId: " + channel[5] + "\r\nChannelStateDesc: Up\r\nDuration: 00:01:00\r\n\r\n";
}

std::string HangupOf(const std::string& uniqueid, const std::string& linkedid) {
  return "Event: Hangup\r\nUniqueid: " + uniqueid + "\r\nLinkedid: " + linkedid + "\r\n\r\n";
}

// CoreShowChannels' answer as the client reads it: the CoreShowChannel events of `channels`
// (Uniqueid, Linkedid, CallerIDNum, Exten, Duration each), framed from AMI text.
std::vector<AmiMessage> Listing(const std::vector<std::vector<std::string>>& channels) {
  AmiFramer framer;
  std::vector<AmiMessage> messages;
  EXPECT_TRUE(framer.Feed(kBanner, &messages).ok());
  for (const auto& channel : channels) {
    EXPECT_TRUE(framer
                    .Feed("Event: CoreShowChannel\r\nActionID: leadflow-channels\r\n"
                          "ChannelStateDesc: Ring\r\nUniqueid: " +
                              channel[0] + "\r\nLinkedid: " + channel[1] +
                              "\r\nCallerIDNum: " + channel[2] + "\r\nExten: " + channel[3] +
                              "\r\nApplication: Dial\r\nDuration: " + channel[4] + "\r\n\r\n",
                          &messages)
                    .ok());
  }
  return messages;
}

// Protects: calls listed in conversation (the service started, or the link came back, while
// they were going on): the first channel bridged with another channel of the call is an
// answered call — no DialEnd ANSWER comes after the listing — credited to the bridged party;
// an extension calling out, listed in the dial-out macro at "s", is an outbound call to the
// party it is bridged with, not an internal call; an inbound call waiting in an IVR ("s", not
// bridged) is not answered, and its "s" is not its number. Seen red: the answered calls
// published MISSED (a call-back for a customer in conversation), the outbound one ignored as
// internal_call.
TEST_F(TrackerTest, CallsListedInConversationAreAnswered) {
  std::vector<std::string> ignored;
  tracker_.on_ignored = [&ignored](const char* reason) { ignored.emplace_back(reason); };
  const std::string in = "1800000010.10";
  const std::string out = "1800000010.20";
  const std::string ivr = "1800000010.30";
  AmiFramer framer;
  std::vector<AmiMessage> listed;
  ASSERT_TRUE(framer.Feed(kBanner, &listed).ok());
  for (const auto& channel : std::vector<std::vector<std::string>>{
           {in, in, "+33612340300", "0187654321", "202", "b-1"},
           {"1800000010.11", in, "202", "s", "+33612340300", "b-1"},
           {out, out, "201", "s", "0611110000", "b-2"},
           {"1800000010.21", out, "0611110000", "0611110000", "201", "b-2"},
           {ivr, ivr, "+33612340301", "s", "", ""}}) {
    ASSERT_TRUE(framer.Feed(BridgedChannel(channel), &listed).ok());
  }
  tracker_.Reconcile({in, "1800000010.11", out, "1800000010.21", ivr}, listed);
  EXPECT_EQ(tracker_.calls(), 3u);
  EXPECT_TRUE(ignored.empty());
  Play({HangupOf("1800000010.11", in), HangupOf(in, in), HangupOf("1800000010.21", out),
        HangupOf(out, out), HangupOf(ivr, ivr)});
  ASSERT_EQ(Published().size(), 3u);
  EXPECT_EQ(Published()[0].call.outcome(), CallEvent::ANSWERED);
  EXPECT_EQ(Published()[0].call.direction(), CallEvent::INBOUND);
  EXPECT_EQ(Published()[0].call.extension(), "202");
  EXPECT_TRUE(Published()[0].call.incomplete());
  EXPECT_EQ(Published()[1].call.outcome(), CallEvent::ANSWERED);
  EXPECT_EQ(Published()[1].call.direction(), CallEvent::OUTBOUND);
  EXPECT_EQ(Published()[1].call.to_number(), "0611110000");
  EXPECT_EQ(Published()[1].call.extension(), "201");
  EXPECT_EQ(Published()[2].call.outcome(), CallEvent::MISSED);
  EXPECT_EQ(Published()[2].call.from_number(), "+33612340301");
  EXPECT_EQ(Published()[2].call.to_number(), "");
  EXPECT_TRUE(ignored.empty());
}

// Protects: a call in progress when the connection came back that ends while it is being
// listed (its Hangups between CoreShowChannels and its Complete, before Reconcile takes it up)
// is published at once with its end, not left open until its timeout; a new call beginning
// meanwhile is followed from its Newchannel, and the events held stay within max_calls.
// Seen red: nothing published, the call still followed after the listing.
TEST_F(TrackerTest, CallEndingWhileListedIsPublished) {
  std::vector<std::string> ignored;
  tracker_.on_ignored = [&ignored](const char* reason) { ignored.emplace_back(reason); };
  const std::string in = "1800000012.10";
  const std::string agent = "1800000012.11";
  const std::string fresh = "1800000012.20";
  AmiFramer framer;
  std::vector<AmiMessage> listed;
  ASSERT_TRUE(framer.Feed(kBanner, &listed).ok());
  for (const auto& channel :
       std::vector<std::vector<std::string>>{{in, in, "+33612340400", "0187654321", "202", "b-7"},
                                             {agent, in, "202", "s", "+33612340400", "b-7"}}) {
    ASSERT_TRUE(framer.Feed(BridgedChannel(channel), &listed).ok());
  }
  tracker_.BeginListing();
  Play({HangupOf(agent, in), HangupOf(in, in),
        "Event: Newchannel\r\nCallerIDNum: +33612340401\r\nExten: 0187654321\r\nUniqueid: " +
            fresh + "\r\nLinkedid: " + fresh + "\r\n\r\n"});
  EXPECT_EQ(tracker_.calls(), 1u);  // the new call, followed at once
  tracker_.Reconcile({in, agent, fresh}, listed);
  ASSERT_EQ(Published().size(), 1u);
  EXPECT_EQ(Published()[0].call.outcome(), CallEvent::ANSWERED);
  EXPECT_EQ(Published()[0].call.from_number(), "+33612340400");
  EXPECT_EQ(Published()[0].call.extension(), "202");
  EXPECT_TRUE(Published()[0].call.incomplete());
  EXPECT_EQ(tracker_.calls(), 1u);
  Play({HangupOf(fresh, fresh)});
  ASSERT_EQ(Published().size(), 2u);
  EXPECT_EQ(Published()[1].call.outcome(), CallEvent::MISSED);
  EXPECT_EQ(tracker_.calls(), 0u);
  EXPECT_TRUE(ignored.empty());

  // Bounded: past max_calls events held, the rest are ignored and counted.
  AmiOptions small;
  small.max_calls = 2;
  CallAssembler calls{CallAssembler::Options{}};
  AmiCallTracker bounded(small, &calls, [](const FinishedCall&) {});
  bounded.on_ignored = [&ignored](const char* reason) { ignored.emplace_back(reason); };
  bounded.BeginListing();
  std::vector<AmiMessage> events;
  ASSERT_TRUE(framer
                  .Feed(HangupOf("1800000013.1", "1800000013.1") +
                            HangupOf("1800000014.1", "1800000014.1") +
                            HangupOf("1800000015.1", "1800000015.1"),
                        &events)
                  .ok());
  for (const AmiMessage& event : events) bounded.OnEvent(event);
  EXPECT_EQ(ignored, (std::vector<std::string>{"ami_listing_backlog"}));
  bounded.Reconcile({});
  EXPECT_EQ(bounded.calls(), 0u);

  // A listing the connection did not complete: what it held is older than the next listing,
  // which takes the call up as it is now; the stale Hangup is not applied after it.
  const std::string again = "1800000012.40";
  tracker_.BeginListing();
  Play({HangupOf(again, again)});
  tracker_.BeginListing();  // the connection dropped and came back
  tracker_.Reconcile({again}, Listing({{again, again, "+33612340402", "0187654321", "00:00:09"}}));
  EXPECT_EQ(tracker_.calls(), 1u);
  EXPECT_EQ(Published().size(), 2u);
}

// Protects: a call listed at a login that is extension to extension (201 dialling 202, begun
// while the connection was down) stays ignored as its Newchannel would have made it — counted
// once as internal_call, nothing published when it is answered and hangs up — and leaves the
// tracker at its last Hangup.
TEST_F(TrackerTest, InternalCallBegunWhileDisconnectedStaysIgnored) {
  std::vector<std::string> ignored;
  tracker_.on_ignored = [&ignored](const char* reason) { ignored.emplace_back(reason); };
  const std::string id = "1800000009.90";
  tracker_.Reconcile(
      {id, "1800000009.91"},
      Listing({{id, id, "201", "202", "00:00:05"}, {"1800000009.91", id, "202", "s", "00:00:05"}}));
  EXPECT_EQ(tracker_.calls(), 1u);
  Play({"Event: DialEnd\r\nUniqueid: " + id + "\r\nLinkedid: " + id +
            "\r\nDestCallerIDNum: 202\r\nDestUniqueid: 1800000009.91\r\nDialStatus: ANSWER"
            "\r\n\r\n",
        "Event: Hangup\r\nUniqueid: 1800000009.91\r\nLinkedid: " + id + "\r\n\r\n",
        "Event: Hangup\r\nUniqueid: " + id + "\r\nLinkedid: " + id + "\r\n\r\n"});
  EXPECT_TRUE(Published().empty());
  EXPECT_EQ(calls_.open_calls(), 0u);
  EXPECT_EQ(tracker_.calls(), 0u);
  EXPECT_EQ(tracker_.internal_calls(), 1u);
  EXPECT_EQ(ignored, (std::vector<std::string>{"internal_call"}));
}

// Protects: the calls followed stay within max_calls: a new call past it settles the one heard
// of least recently — never itself, whatever the times (all equal here: one clock reading) —
// and a later channel of a call not followed (its first channel never seen) creates nothing.
// Seen red: the new call evicted in its own place (a dangling entry), and the tracker growing
// one entry per unknown call's channel.
TEST(AmiBoundTest, CallsFollowedStayWithinTheBound) {
  AmiOptions options;
  options.max_calls = 2;
  CallAssembler calls{CallAssembler::Options{}};
  std::vector<FinishedCall> published;
  const Clock::time_point now = Clock::time_point(std::chrono::seconds(1800000100));
  AmiCallTracker tracker(
      options, &calls,
      [&](const FinishedCall& call) {
        published.push_back(call);
        calls.Published(call);
      },
      [now] { return now; });
  AmiFramer framer;
  std::vector<AmiMessage> messages;
  ASSERT_TRUE(framer.Feed(kBanner, &messages).ok());
  auto newchannel = [](const std::string& uniqueid, const std::string& linkedid,
                       const std::string& caller) {
    return "Event: Newchannel\r\nCallerIDNum: " + caller +
           "\r\nExten: 0187654321\r\nUniqueid: " + uniqueid + "\r\nLinkedid: " + linkedid +
           "\r\n\r\n";
  };
  // Map order puts the newest call first: evicting by the smallest time among equals would
  // pick it.
  for (const auto& [uniqueid, caller] :
       std::vector<std::pair<std::string, std::string>>{{"1800000050.3", "0641000301"},
                                                        {"1800000050.2", "0641000302"},
                                                        {"1800000050.1", "0641000303"}}) {
    ASSERT_TRUE(framer.Feed(newchannel(uniqueid, uniqueid, caller), &messages).ok());
  }
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(framer
                    .Feed(newchannel("1800000060." + std::to_string(i + 1),
                                     "1800000060." + std::to_string(i), "201"),
                          &messages)
                    .ok());
  }
  for (const AmiMessage& message : messages) {
    tracker.OnEvent(message);
  }
  EXPECT_EQ(tracker.calls(), 2u);
  ASSERT_EQ(published.size(), 1u);  // one call settled to make room, not the newest
  EXPECT_NE(published[0].call.from_number(), "0641000303");
  messages.clear();
  ASSERT_TRUE(framer
                  .Feed("Event: Hangup\r\nUniqueid: 1800000050.1\r\nLinkedid: 1800000050.1"
                        "\r\n\r\n",
                        &messages)
                  .ok());
  tracker.OnEvent(messages[0]);
  ASSERT_EQ(published.size(), 2u);
  EXPECT_EQ(published[1].call.from_number(), "0641000303");
  EXPECT_EQ(tracker.calls(), 1u);
}

// Protects: taking up calls at a login is bounded by max_calls: past it a call listed is not
// tracked (the calls followed since their Newchannel are not settled early to make room),
// counted as ignored (telephony_ignored_total{reason="ami_calls_cap"}). A call listed without
// its first channel says nobody's number and is not taken up; a Duration that is no HH:MM:SS
// starts the call at the listing, reported as a dropped field.
TEST(AmiTakeUpTest, CallsBegunWhileDisconnectedAreBounded) {
  AmiOptions options;
  options.max_calls = 2;
  CallAssembler calls{CallAssembler::Options{}};
  std::vector<FinishedCall> published;
  const Clock::time_point now = Clock::time_point(std::chrono::seconds(1800000100));
  AmiCallTracker tracker(
      options, &calls,
      [&](const FinishedCall& call) {
        published.push_back(call);
        calls.Published(call);
      },
      [now] { return now; });
  std::vector<std::string> ignored;
  tracker.on_ignored = [&ignored](const char* reason) { ignored.emplace_back(reason); };
  std::vector<std::string> dropped;
  tracker.on_dropped = [&dropped](const std::string& call_id,
                                  const std::map<std::string, std::string>& fields) {
    for (const auto& [field, why] : fields) dropped.push_back(call_id + " " + field);
  };
  AmiFramer framer;
  std::vector<AmiMessage> messages;
  ASSERT_TRUE(framer.Feed(kBanner, &messages).ok());
  ASSERT_TRUE(framer
                  .Feed("Event: Newchannel\r\nCallerIDNum: 0641000201\r\nExten: 0187654321\r\n"
                        "Uniqueid: 1800000090.1\r\nLinkedid: 1800000090.1\r\n\r\n",
                        &messages)
                  .ok());
  tracker.OnEvent(messages[0]);
  tracker.Reconcile(
      {"1800000090.1", "1800000091.1", "1800000092.1", "1800000093.2"},
      Listing({{"1800000090.1", "1800000090.1", "0641000201", "0187654321", "0:01:40"},
               {"1800000091.1", "1800000091.1", "0641000202", "0187654321", "soon"},
               {"1800000092.1", "1800000092.1", "0641000203", "0187654321", "00:00:08"},
               {"1800000093.2", "1800000093.1", "201", "s", "00:00:07"}}));
  EXPECT_EQ(tracker.calls(), 2u);
  EXPECT_EQ(ignored, (std::vector<std::string>{"ami_calls_cap"}));
  EXPECT_EQ(dropped, (std::vector<std::string>{"asterisk:1800000091.1 Duration"}));
  // The one taken up is followed to its end, from the listing's time.
  messages.clear();
  ASSERT_TRUE(framer
                  .Feed("Event: Hangup\r\nUniqueid: 1800000091.1\r\nLinkedid: 1800000091.1\r\n\r\n"
                        "Event: Hangup\r\nUniqueid: 1800000092.1\r\nLinkedid: 1800000092.1\r\n\r\n",
                        &messages)
                  .ok());
  for (const AmiMessage& message : messages) {
    tracker.OnEvent(message);
  }
  ASSERT_EQ(published.size(), 1u);
  EXPECT_EQ(published[0].call.call_id(), "asterisk:1800000091.1");
  EXPECT_EQ(published[0].call.from_number(), "0641000202");
  EXPECT_EQ(published[0].call.started_at().seconds(), 1800000100);
  EXPECT_TRUE(published[0].call.incomplete());
  EXPECT_EQ(tracker.calls(), 1u);
}

// Protects: a Cdr's StartTime, AnswerTime and EndTime are the PBX's local time
// (TELEPHONY_PBX_TIME_ZONE), not UTC: a New York PBX without timestampevents whose Cdr comes
// before the last Hangup gives the call its real start and answer (read as UTC they would be
// five hours early, and the call-back's deadline with them); DialStatus and Disposition in any
// case.
TEST(AmiTimeZoneTest, CdrTimesAreThePbxsLocalTime) {
  AmiOptions options;
  ASSERT_TRUE(absl::LoadTimeZone("America/New_York", &options.time_zone));
  CallAssembler calls{CallAssembler::Options{}};
  std::vector<FinishedCall> published;
  // No Timestamp fields: the channel events happen "now", the hang-up at 10:05:00 local.
  const Clock::time_point now = Clock::time_point(std::chrono::seconds(1796051100));
  AmiCallTracker tracker(
      options, &calls,
      [&](const FinishedCall& call) {
        published.push_back(call);
        calls.Published(call);
      },
      [now] { return now; });
  const std::string id = "1796050900.80";
  AmiFramer framer;
  std::vector<AmiMessage> messages;
  ASSERT_TRUE(framer.Feed(kBanner, &messages).ok());
  for (const std::string& text :
       {Block({{"Event", "Newchannel"},
               {"CallerIDNum", "12125551234"},
               {"Exten", "2125550000"},
               {"Uniqueid", id},
               {"Linkedid", id}}),
        Block({{"Event", "DialEnd"},
               {"Linkedid", id},
               {"DestCallerIDNum", "201"},
               {"DialStatus", "answer"}}),
        Block({{"Event", "Cdr"},
               {"UniqueID", id},
               {"StartTime", "2026-11-30 10:01:40"},
               {"AnswerTime", "2026-11-30 10:01:45"},
               {"EndTime", "2026-11-30 10:05:00"},
               {"Duration", "200"},
               {"BillableSeconds", "195"},
               {"Disposition", "Answered"}}),
        Block({{"Event", "Hangup"}, {"Uniqueid", id}, {"Linkedid", id}})}) {
    ASSERT_TRUE(framer.Feed(text, &messages).ok());
  }
  for (const AmiMessage& message : messages) {
    tracker.OnEvent(message);
  }
  ASSERT_EQ(published.size(), 1u);
  const CallEvent& call = published[0].call;
  EXPECT_EQ(call.outcome(), CallEvent::ANSWERED);
  EXPECT_EQ(call.extension(), "201");
  EXPECT_EQ(call.duration_seconds(), 195);
  EXPECT_EQ(call.started_at().seconds(), 1796050900);  // 2026-11-30T15:01:40Z
  EXPECT_EQ(call.ended_at().seconds(), 1796051100);    // 15:05:00Z
  EXPECT_EQ(call.provider_status(), "ANSWER");
  auto built = BuildEvent(published[0], "FR", now, std::nullopt);
  ASSERT_EQ(built.event.identities_size(), 1);
  EXPECT_EQ(built.event.identities(0).value(), "+12125551234");  // CallerIDNum without '+'
}

// Protects: an event's Timestamp past what the clock holds (2262) is not taken as its time (the
// conversion overflowed: undefined behaviour); the event happens "now", as without a Timestamp.
// Each unreadable time the call takes is reported (telephony_fields_dropped_total): its first
// channel's start, its last channel's end, a Cdr's times; not other events' (the DialEnd's),
// nor a missing Timestamp (timestampevents=no).
TEST(AmiEventTimeTest, TimestampsPastTheClocksRangeAreNow) {
  CallAssembler calls{CallAssembler::Options{}};
  std::vector<FinishedCall> published;
  const Clock::time_point now = Clock::time_point(std::chrono::seconds(1796050900));
  AmiCallTracker tracker(
      AmiOptions{}, &calls,
      [&](const FinishedCall& call) {
        published.push_back(call);
        calls.Published(call);
      },
      [now] { return now; });
  std::vector<std::string> dropped;
  tracker.on_dropped = [&dropped](const std::string& call_id,
                                  const std::map<std::string, std::string>& fields) {
    for (const auto& [field, why] : fields) {
      dropped.push_back(call_id + " " + field);
    }
  };
  AmiFramer framer;
  std::vector<AmiMessage> messages;
  ASSERT_TRUE(framer.Feed(kBanner, &messages).ok());
  const std::string far = "Timestamp: 17644905151.5\r\n";
  ASSERT_TRUE(framer
                  .Feed("Event: Newchannel\r\n" + far +
                            "CallerIDNum: 0612345678\r\nExten: 201\r\nUniqueid: 9.1\r\n"
                            "Linkedid: 9.1\r\n\r\nEvent: DialEnd\r\nTimestamp: soon\r\n"
                            "Linkedid: 9.1\r\nDialStatus: ANSWER\r\n\r\nEvent: Cdr\r\n"
                            "UniqueID: 9.1\r\nStartTime: yesterday\r\nDisposition: ANSWERED\r\n"
                            "\r\nEvent: Hangup\r\n" +
                            far + "Uniqueid: 9.1\r\nLinkedid: 9.1\r\n\r\n",
                        &messages)
                  .ok());
  for (const AmiMessage& message : messages) {
    tracker.OnEvent(message);
  }
  ASSERT_EQ(published.size(), 1u);
  EXPECT_EQ(published[0].call.started_at().seconds(), 1796050900);
  EXPECT_EQ(published[0].call.ended_at().seconds(), 1796050900);
  EXPECT_EQ(dropped, (std::vector<std::string>{"asterisk:9.1 Timestamp", "asterisk:9.1 StartTime",
                                               "asterisk:9.1 Timestamp"}));
}

// Protects: TELEPHONY_AMI_OUTSIDE_LINE_PREFIX. An extension calling a customer back through
// "0 for an outside line" dials 00641000202: without the prefix removed the number is nobody's,
// the call lands among the unidentified calls and the customer's call-back stays open. Only
// outbound calls lose it, once; a number no longer than the prefix is kept as dialled.
TEST(AmiOutsideLineTest, PrefixRemovedFromOutboundNumbers) {
  AmiOptions options;
  options.outside_line_prefix = "0";
  CallAssembler calls{CallAssembler::Options{}};
  std::vector<FinishedCall> published;
  AmiCallTracker tracker(options, &calls, [&](const FinishedCall& call) {
    published.push_back(call);
    calls.Published(call);
  });
  AmiFramer framer;
  std::vector<AmiMessage> messages;
  ASSERT_TRUE(framer.Feed(kBanner, &messages).ok());
  auto call = [](const std::string& id, const std::string& caller, const std::string& exten) {
    return "Event: Newchannel\r\nCallerIDNum: " + caller + "\r\nExten: " + exten +
           "\r\nUniqueid: " + id + "\r\nLinkedid: " + id +
           "\r\n\r\nEvent: DialEnd\r\nLinkedid: " + id +
           "\r\nDialStatus: ANSWER\r\n\r\nEvent: Hangup\r\nUniqueid: " + id +
           "\r\nLinkedid: " + id + "\r\n\r\n";
  };
  ASSERT_TRUE(framer.Feed(call("2.1", "201", "00641000202"), &messages).ok());
  ASSERT_TRUE(framer.Feed(call("2.2", "201", "000441632960961"), &messages).ok());
  ASSERT_TRUE(framer.Feed(call("2.3", "0641000203", "0187654321"), &messages).ok());
  for (const AmiMessage& message : messages) {
    tracker.OnEvent(message);
  }
  ASSERT_EQ(published.size(), 3u);
  EXPECT_EQ(published[0].call.to_number(), "0641000202");
  EXPECT_EQ(published[1].call.to_number(), "00441632960961");  // "0", then 00 44 …
  EXPECT_EQ(published[2].call.direction(), CallEvent::INBOUND);
  EXPECT_EQ(published[2].call.to_number(), "0187654321");  // inbound: as the PBX gives it
  auto built = BuildEvent(published[0], "FR", Clock::now(), std::nullopt);
  ASSERT_EQ(built.event.identities_size(), 1);
  EXPECT_EQ(built.event.identities(0).value(), "+33641000202");
}

class ClientTest : public TrackerTest {
 protected:
  AmiOptions ClientOptions() {
    AmiOptions options;
    options.host = "127.0.0.1";
    options.port = peer_.port();
    options.username = "leadflow";
    options.secret = "s3cret";
    options.reconnect_min = std::chrono::milliseconds(20);
    options.reconnect_max = std::chrono::milliseconds(200);
    return options;
  }
  bool WaitPublished(size_t count) {
    for (int i = 0; i < 500; ++i) {
      if (Published().size() >= count) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  AmiPeer peer_;
  metrics::Registry registry_;
};

// Protects: against a peer speaking AMI over TCP: login, channel listing, events; the
// connection cut mid-call is re-opened (backoff, login again) and the call assembled across
// both connections is published once, answered, with its full talk time.
TEST_F(ClientTest, ReconnectMidCall) {
  AmiClient client(ClientOptions(), &tracker_, &registry_);
  client.Start();
  ASSERT_TRUE(peer_.WaitLoggedIn(1, std::chrono::seconds(5)));
  auto answered = LoadTranscript(Transcript("answered_call.txt"));
  ASSERT_TRUE(peer_.SendAll(std::vector<std::string>(answered.begin(), answered.begin() + 5)));
  peer_.SetLiveChannels({{"1700000100.32", "1700000100.32"}, {"1700000100.33", "1700000100.32"}});
  // Wait until the client has read the blocks before the cut and the call store holds the call
  // (the tracker counts the call before its report reaches the store).
  ASSERT_TRUE(leadflow::testing::WaitFor([this] { return calls_.open_calls() == 1; },
                                         std::chrono::seconds(5)));
  peer_.Cut();
  ASSERT_TRUE(peer_.WaitLoggedIn(2, std::chrono::seconds(5)));
  EXPECT_EQ(client.logins(), 2u);
  ASSERT_TRUE(peer_.SendAll(std::vector<std::string>(answered.begin() + 5, answered.end())));
  ASSERT_TRUE(WaitPublished(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  auto published = Published();
  ASSERT_EQ(published.size(), 1u);
  EXPECT_EQ(published[0].call.outcome(), CallEvent::ANSWERED);
  EXPECT_EQ(published[0].call.duration_seconds(), 42);
  EXPECT_FALSE(published[0].call.incomplete());
  client.Stop();
}

// Protects: a call that ended while the connection was down is published at the re-login
// (incomplete), not left open forever.
TEST_F(ClientTest, CallEndedWhileDisconnected) {
  AmiClient client(ClientOptions(), &tracker_, &registry_);
  client.Start();
  ASSERT_TRUE(peer_.WaitLoggedIn(1, std::chrono::seconds(5)));
  auto missed = LoadTranscript(Transcript("missed_call.txt"));
  ASSERT_TRUE(peer_.SendAll(std::vector<std::string>(missed.begin(), missed.begin() + 6)));
  for (int i = 0; i < 500 && tracker_.calls() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  peer_.SetLiveChannels({});
  peer_.Cut();
  ASSERT_TRUE(WaitPublished(1));
  EXPECT_EQ(Published()[0].call.outcome(), CallEvent::MISSED);
  EXPECT_TRUE(Published()[0].call.incomplete());
  client.Stop();
}

// Protects: a call that began while the connection was down is not lost. No Newchannel reached
// the client: after the re-login CoreShowChannels lists the call's channels (the caller's, and
// the extension it rings), and the call is taken up from its first channel as Newchannel would
// have begun it (caller, DID, start from the listing's Duration), then assembled from the events
// that follow: the caller gives up (DialEnd CANCEL, both Hangups) → one missed call, marked
// incomplete (its beginning was not seen), which crm-core turns into a call-back.
TEST_F(ClientTest, CallBegunWhileDisconnectedIsTakenUp) {
  // The listing comes 12 s after the call began (Duration: 00:00:12).
  const Clock::time_point listed_at = Clock::time_point(std::chrono::seconds(1800000020));
  AmiCallTracker tracker(
      options_, &calls_,
      [this](const FinishedCall& call) {
        std::lock_guard lock(mutex_);
        published_.push_back(call);
        calls_.Published(call);
      },
      [listed_at] { return listed_at; });
  // A colleague's call sent after the transcript: once it is ignored, every event before it
  // (the Cdr after the hangups) was read and applied.
  std::atomic<int> ignored{0};
  tracker.on_ignored = [&ignored](const char*) { ++ignored; };
  AmiClient client(ClientOptions(), &tracker, &registry_);
  client.Start();
  ASSERT_TRUE(peer_.WaitLoggedIn(1, std::chrono::seconds(5)));
  std::vector<std::string> listed;
  std::vector<std::string> after;
  for (const std::string& block : LoadTranscript(Transcript("call_begun_during_cut.txt"))) {
    (block.starts_with("Event: CoreShowChannel\r\n") ? listed : after).push_back(block);
  }
  ASSERT_EQ(listed.size(), 2u);
  peer_.SetListedChannels(listed);
  peer_.Cut();
  ASSERT_TRUE(peer_.WaitLoggedIn(2, std::chrono::seconds(5)));
  after.push_back(Block({{"Event", "Newchannel"},
                         {"CallerIDNum", "201"},
                         {"Exten", "202"},
                         {"Uniqueid", "1800000099.1"},
                         {"Linkedid", "1800000099.1"}}));
  ASSERT_TRUE(peer_.SendAll(after));
  ASSERT_TRUE(leadflow::testing::WaitFor([&ignored] { return ignored.load() == 1; },
                                         std::chrono::seconds(5)));
  client.Stop();
  auto published = Published();
  ASSERT_EQ(published.size(), 1u);
  const CallEvent& call = published[0].call;
  EXPECT_EQ(call.call_id(), "asterisk:1800000008.80");
  EXPECT_EQ(call.outcome(), CallEvent::MISSED);
  EXPECT_EQ(call.direction(), CallEvent::INBOUND);
  EXPECT_EQ(call.from_number(), "+33612340208");
  EXPECT_EQ(call.to_number(), "0187654321");
  EXPECT_EQ(call.line(), "0187654321");
  EXPECT_TRUE(call.incomplete());
  EXPECT_EQ(call.started_at().seconds(), 1800000008);
  EXPECT_EQ(call.ended_at().seconds(), 1800000031);
  EXPECT_EQ(call.provider_status(), "CANCEL");
  EXPECT_EQ(tracker.calls(), 1u);  // the colleague's call only: the taken-up one has left
}

// Protects: a refused login is not taken for a connection: the client keeps retrying with
// backoff, counted, and stops cleanly.
TEST_F(ClientTest, RefusedLoginRetries) {
  AmiOptions options = ClientOptions();
  options.secret = "wrong";
  AmiClient client(options, &tracker_, &registry_);
  client.Start();
  for (int i = 0; i < 500 && peer_.refused_logins() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_GE(peer_.refused_logins(), 2);
  EXPECT_FALSE(client.connected());
  EXPECT_EQ(client.logins(), 0u);
  client.Stop();
}

}  // namespace
}  // namespace leadflow::telephony
