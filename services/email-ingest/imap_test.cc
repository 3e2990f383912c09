// IMAP polling against a real Dovecot that the test starts itself (free port, throw-away
// maildir and configuration), publishing to librdkafka's mock cluster through the real producer.

#include "email-ingest/imap.h"
#include "email-ingest/message.h"

#include <gmock/gmock.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "ingest/event_id.h"
#include "ingest/publish.h"
#include "kafka/producer.h"
#include "kafka/types.h"
#include "leadflow/events/v1/inbound_event.pb.h"
#include "testing/dovecot.h"
#include "testing/testing.h"

namespace leadflow::email {
namespace {

namespace fs = std::filesystem;

using testing::Dovecot;

std::string Mail(const std::string& id, const std::string& from = "lead@example.org") {
  return "Message-ID: <" + id + ">\r\nFrom: " + from +
         "\r\nTo: leads@acme.test\r\nSubject: Devis\r\n\r\nBonjour " + id + "\r\n";
}

class ImapTest : public ::testing::Test {
 protected:
  ImapTest() {
    kafka_.CreateTopic(kafka::kInboundTopic, 1);
    producer_ = *kafka::Producer::Create(
        {.brokers = kafka_.bootstrap(), .delivery_timeout = std::chrono::milliseconds(1500)});
    publisher_ = std::make_unique<ingest::KafkaPublisher>(producer_.get(), kafka::kInboundTopic);
    intake_ = std::make_unique<Intake>(publisher_.get(), &registry_);
    options_.url = dovecot_.url();
    options_.user = "leads";
    options_.password = "secret";
    options_.address = "leads@acme.test";
  }
  /// The event ids on the topic, in order.
  std::vector<std::string> EventIds() {
    std::vector<std::string> ids;
    for (const kafka::Message& message : testing::ReadTopic(
             kafka_.bootstrap(), kafka::kInboundTopic, 1, std::chrono::seconds(30))) {
      events::v1::InboundEvent event;
      if (event.ParseFromString(message.value)) ids.push_back(event.event_id());
    }
    return ids;
  }

  Dovecot dovecot_;
  testing::MockKafka kafka_;
  metrics::Registry registry_;
  std::unique_ptr<kafka::Producer> producer_;
  std::unique_ptr<ingest::KafkaPublisher> publisher_;
  std::unique_ptr<Intake> intake_;
  ImapOptions options_;
};

// Protects: unmarked messages are published and then marked with $LeadFlowImported in the
// mailbox (seen by another client); a second round publishes nothing again; an auto-reply is
// marked without an event.
TEST_F(ImapTest, PublishesThenMarks) {
  dovecot_.Deliver("1.eml", Mail("imap-1@example.org"));
  dovecot_.Deliver("2.eml", Mail("imap-2@example.org"));
  dovecot_.Deliver("3.eml",
                   "Message-ID: <ooo@example.org>\r\nFrom: bob@example.org\r\n"
                   "Auto-Submitted: auto-replied\r\n\r\nOut of office\r\n");
  ImapClient client(options_);
  ImapPoller poller(options_, &client, intake_.get(), &registry_);
  auto round = poller.PollOnce();
  ASSERT_TRUE(round.ok()) << round.status();
  EXPECT_EQ(round->published, 2u);
  EXPECT_EQ(round->dropped, 1u);
  EXPECT_EQ(dovecot_.Search("UNKEYWORD $LeadFlowImported"), "* SEARCH");
  EXPECT_EQ(dovecot_.Search("KEYWORD $LeadFlowImported"), "* SEARCH 1 2 3");
  auto again = poller.PollOnce();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->published, 0u);
  EXPECT_THAT(
      EventIds(),
      ::testing::ElementsAre(
          ingest::EventId("email", MessageIdKey("imap-1@example.org", "lead@example.org")),
          ingest::EventId("email", MessageIdKey("imap-2@example.org", "lead@example.org"))));
}

// Protects: a message Kafka did not take stays unmarked (never skipped) and is published and
// marked on a later round once Kafka is back.
TEST_F(ImapTest, KafkaFailureLeavesMessageUnmarked) {
  dovecot_.Deliver("1.eml", Mail("imap-retry@example.org"));
  ImapClient client(options_);
  ImapPoller poller(options_, &client, intake_.get(), &registry_);
  kafka_.FailProduceRequests();
  auto failed = poller.PollOnce();
  ASSERT_TRUE(failed.ok()) << failed.status();
  EXPECT_TRUE(failed->kafka_failed);
  EXPECT_EQ(dovecot_.Search("UNKEYWORD $LeadFlowImported"), "* SEARCH 1");
  ASSERT_TRUE(
      testing::WaitFor([&] { return producer_->InFlight() == 0; }, std::chrono::seconds(30)));
  kafka_.RestoreProduceRequests();
  auto round = poller.PollOnce();
  ASSERT_TRUE(round.ok());
  EXPECT_EQ(round->published, 1u);
  EXPECT_EQ(dovecot_.Search("UNKEYWORD $LeadFlowImported"), "* SEARCH");
  EXPECT_EQ(EventIds(), std::vector<std::string>{ingest::EventId(
                            "email", MessageIdKey("imap-retry@example.org", "lead@example.org"))});
}

/// A client that dies (as the process would) right before marking.
class CrashBeforeMark : public ImapClient {
 public:
  using ImapClient::ImapClient;
  absl::Status Mark(uint32_t, uint32_t) override {
    return absl::AbortedError("crashed between publish and mark");
  }
};

// Protects: a crash between the publish and the mark never skips the message: the restarted
// poller publishes it again (same event id, so crm-core applies it once) and marks it.
TEST_F(ImapTest, CrashBetweenPublishAndMarkPublishesAgain) {
  dovecot_.Deliver("1.eml", Mail("imap-crash@example.org"));
  {
    CrashBeforeMark crashing(options_);
    ImapPoller poller(options_, &crashing, intake_.get(), &registry_);
    EXPECT_FALSE(poller.PollOnce().ok());
  }
  EXPECT_EQ(dovecot_.Search("UNKEYWORD $LeadFlowImported"), "* SEARCH 1");
  ImapClient client(options_);
  ImapPoller restarted(options_, &client, intake_.get(), &registry_);
  auto round = restarted.PollOnce();
  ASSERT_TRUE(round.ok()) << round.status();
  EXPECT_EQ(round->published, 1u);
  EXPECT_EQ(dovecot_.Search("UNKEYWORD $LeadFlowImported"), "* SEARCH");
  std::string id =
      ingest::EventId("email", MessageIdKey("imap-crash@example.org", "lead@example.org"));
  EXPECT_EQ(EventIds(), (std::vector<std::string>{id, id}));
}

// Protects: EMAIL_IMAP_SINCE_DAYS: a message the server received long ago (a mailbox with its
// history, trial M13: a 2023 mail became a lead due in 1 h) is neither published nor marked,
// while a recent one is; with 0, every message is imported.
TEST_F(ImapTest, OnlyRecentMessagesImported) {
  dovecot_.Deliver("old.eml", Mail("old-2023@example.org"),
                   fs::file_time_type::clock::now() - std::chrono::hours(24 * 700));
  dovecot_.Deliver("new.eml", Mail("recent@example.org"));
  options_.since_days = 30;
  ImapClient client(options_);
  ImapPoller poller(options_, &client, intake_.get(), &registry_);
  auto round = poller.PollOnce();
  ASSERT_TRUE(round.ok()) << round.status();
  EXPECT_EQ(round->published, 1u);
  EXPECT_THAT(EventIds(), ::testing::ElementsAre(ingest::EventId(
                              "email", MessageIdKey("recent@example.org", "lead@example.org"))));
  // Left as it was: the old one, without the keyword.
  EXPECT_NE(dovecot_.Search("UNKEYWORD $LeadFlowImported"), "* SEARCH");
  EXPECT_EQ(dovecot_.Search("UNKEYWORD $LeadFlowImported"), dovecot_.Search("BEFORE 1-Jan-2026"));
  options_.since_days = 0;
  ImapClient all_client(options_);
  ImapPoller all(options_, &all_client, intake_.get(), &registry_);
  auto everything = all.PollOnce();
  ASSERT_TRUE(everything.ok()) << everything.status();
  EXPECT_EQ(everything->published, 1u);
  EXPECT_EQ(dovecot_.Search("UNKEYWORD $LeadFlowImported"), "* SEARCH");
}

// Protects: a recreated folder (new UIDVALIDITY) is noticed and counted, and its unmarked
// messages are imported (the ones seen before come again with their same event ids).
TEST_F(ImapTest, UidValidityChange) {
  dovecot_.Deliver("1.eml", Mail("uv-1@example.org"));
  ImapClient client(options_);
  ImapPoller poller(options_, &client, intake_.get(), &registry_);
  ASSERT_TRUE(poller.PollOnce().ok());
  std::string before = dovecot_.Imap("", "STATUS INBOX (UIDVALIDITY)");
  dovecot_.RecreateFolder(
      {{"1.eml", Mail("uv-1@example.org")}, {"2.eml", Mail("uv-2@example.org")}});
  ASSERT_NE(dovecot_.Imap("", "STATUS INBOX (UIDVALIDITY)"), before);
  auto round = poller.PollOnce();
  ASSERT_TRUE(round.ok()) << round.status();
  EXPECT_EQ(round->published, 2u);
  EXPECT_THAT(registry_.Render(), ::testing::HasSubstr("email_imap_uidvalidity_changes_total 1"));
  EXPECT_EQ(dovecot_.Search("UNKEYWORD $LeadFlowImported"), "* SEARCH");
  std::vector<std::string> ids = EventIds();
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()),
            (std::set<std::string>{
                ingest::EventId("email", MessageIdKey("uv-1@example.org", "lead@example.org")),
                ingest::EventId("email", MessageIdKey("uv-2@example.org", "lead@example.org"))}));
}

}  // namespace
}  // namespace leadflow::email
