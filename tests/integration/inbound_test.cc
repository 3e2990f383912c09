// The inbound path against real PostgreSQL, Redis and Kafka protocol (librdkafka's mock cluster):
// BatchProcessor applied to Kafka messages exactly as the consumer loop hands them over.

#include <gtest/gtest.h>

#include <pqxx/pqxx>
#include <thread>

#include "crm-core/batch_processor.h"
#include "crm-core/migrations.h"
#include "kafka/consumer.h"
#include "pg/migrations.h"
#include "testing/testing.h"

namespace leadflow::crm {
namespace {

using events::v1::Identity;
using events::v1::InboundEvent;

kafka::Message Encode(const std::string& id, const std::string& phone, const std::string& email,
                      const std::string& name = "Jean") {
  InboundEvent event = testing::WebFormEvent(id, phone, email, name);
  (*event.mutable_web_form()->mutable_custom_fields())["rooms"] = "3";
  event.mutable_web_form()->mutable_utm()->set_source("google");
  kafka::Message message;
  message.topic = kafka::kInboundTopic;
  message.partition = 0;
  message.offset = 0;
  message.key = event.identities(0).value();
  event.SerializeToString(&message.value);
  return message;
}

class InboundTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(pg::ApplyMigrations(database_.url(), Migrations()).ok());
    kafka_.CreateTopic(kafka::kInboundDlqTopic, 1);
    auto producer = kafka::Producer::Create({.brokers = kafka_.bootstrap()});
    ASSERT_TRUE(producer.ok());
    producer_ = std::move(*producer);
    redis_options_ = testing::RedisTestOptions();
    redis_ = std::make_unique<redis::Client>(redis_options_);
    processor_ = MakeProcessor(redis_.get());
  }

  std::unique_ptr<BatchProcessor> MakeProcessor(redis::Client* redis) {
    return std::make_unique<BatchProcessor>(
        BatchProcessorOptions{.redis_prefix = redis_options_.key_prefix}, database_.url(), redis,
        *producer_, counters_);
  }

  int64_t Count(const std::string& sql) {
    pqxx::connection connection(database_.url());
    pqxx::read_transaction work(connection);
    return work.exec1(sql)[0].as<int64_t>();
  }

  void Exec(const std::string& sql) {
    pqxx::connection connection(database_.url());
    pqxx::work work(connection);
    work.exec0(sql);
    work.commit();
  }

  testing::TempDatabase database_;
  testing::MockKafka kafka_;
  std::unique_ptr<kafka::Producer> producer_;
  redis::Options redis_options_;
  std::unique_ptr<redis::Client> redis_;
  metrics::Registry registry_;
  InboundCounters counters_{registry_};
  std::unique_ptr<BatchProcessor> processor_;
};

// Protects: a new sender becomes one NEW web-form lead with an open task; the same person again
// (by phone) is a repeat on that lead, and their new email is attached to it.
TEST_F(InboundTest, NewLeadThenRepeat) {
  ASSERT_TRUE(processor_->Process({Encode("e1", "+33612345678", "")}).ok());
  EXPECT_EQ(Count("SELECT count(*) FROM leads WHERE status = 'NEW' AND source = 'WEB_FORM'"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM activities WHERE type = 'TASK' AND NOT completed"
                  " AND deadline IS NOT NULL"),
            1);
  EXPECT_EQ(Count("SELECT count(*) FROM leads WHERE custom_fields->>'rooms' = '3'"
                  " AND utm->>'source' = 'google'"),
            1);
  ASSERT_TRUE(processor_->Process({Encode("e2", "+33612345678", "jean@example.com")}).ok());
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 1);
  EXPECT_EQ(Count("SELECT repeat_count FROM leads"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM activities"), 2);
  ASSERT_TRUE(processor_->Process({Encode("e3", "", "jean@example.com")}).ok());
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 1);
  EXPECT_EQ(Count("SELECT repeat_count FROM leads"), 2);
}

// Protects: exactly-once effects: a redelivered event changes nothing, whether Redis remembers it
// (fast path) or not (PostgreSQL's processed_events), and a duplicate inside one batch too.
TEST_F(InboundTest, DuplicatesHaveNoEffect) {
  auto event = Encode("dup", "+33612345678", "");
  ASSERT_TRUE(processor_->Process({event, event}).ok());
  ASSERT_TRUE(processor_->Process({event}).ok());  // Redis mark
  auto without_redis = MakeProcessor(nullptr);
  ASSERT_TRUE(without_redis->Process({event}).ok());  // PostgreSQL only
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM activities"), 1);
  EXPECT_EQ(Count("SELECT repeat_count FROM leads"), 0);
  EXPECT_EQ(counters_.duplicates_in_batch.Value(), 1);
  EXPECT_EQ(counters_.duplicates_redis.Value(), 1);
  EXPECT_EQ(counters_.duplicates_database.Value(), 1);
}

// Protects: a person whose lead was closed as junk comes back as a new returning lead linked to
// the old one, with the previous responsible user.
TEST_F(InboundTest, JunkLeadReturns) {
  Exec("INSERT INTO users (name) VALUES ('Ann'), ('Bob')");
  ASSERT_TRUE(processor_->Process({Encode("j1", "", "jean@example.com")}).ok());
  int64_t first = Count("SELECT id FROM leads");
  int64_t owner = Count("SELECT responsible_user_id FROM leads");
  Exec("UPDATE leads SET status = 'JUNK'");
  ASSERT_TRUE(processor_->Process({Encode("j2", "", "jean@example.com")}).ok());
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 2);
  EXPECT_EQ(Count("SELECT count(*) FROM leads WHERE is_returning AND previous_lead_id = " +
                  std::to_string(first) + " AND responsible_user_id = " + std::to_string(owner)),
            1);
}

// Protects: new leads are spread round-robin over active users; inactive users get none.
TEST_F(InboundTest, RoundRobinOverActiveUsers) {
  Exec("INSERT INTO users (name, active) VALUES ('Ann', true), ('Bob', true), ('Zed', false)");
  std::vector<kafka::Message> batch;
  for (int i = 0; i < 6; ++i) {
    batch.push_back(Encode("rr" + std::to_string(i), "+3361234567" + std::to_string(i), ""));
  }
  ASSERT_TRUE(processor_->Process(batch).ok());
  EXPECT_EQ(Count("SELECT count(DISTINCT responsible_user_id) FROM leads"), 2);
  EXPECT_EQ(Count("SELECT max(c) - min(c) FROM (SELECT count(*) c FROM leads"
                  " GROUP BY responsible_user_id) s"),
            0);
  EXPECT_EQ(Count("SELECT count(*) FROM leads l JOIN users u ON u.id = l.responsible_user_id"
                  " WHERE NOT u.active"),
            0);
  EXPECT_EQ(Count("SELECT count(*) FROM activities a JOIN leads l ON l.id = a.owner_id"
                  " WHERE a.responsible_user_id IS DISTINCT FROM l.responsible_user_id"),
            0);
}

// Protects: undecodable and invalid messages go to the DLQ with the error in a header, the rest
// of the batch is applied, and nothing is half-written.
TEST_F(InboundTest, BadMessagesAreDeadLettered) {
  kafka::Message garbage;
  garbage.topic = kafka::kInboundTopic;
  garbage.partition = 2;
  garbage.offset = 41;
  garbage.key = "k";
  garbage.value = std::string("\xff\xff\xff\x0f garbage", 12);
  kafka::Message no_identity = Encode("noid", "+1", "");
  InboundEvent event;
  event.ParseFromString(no_identity.value);
  event.clear_identities();
  event.SerializeToString(&no_identity.value);
  ASSERT_TRUE(processor_->Process({garbage, Encode("ok", "+33612345678", ""), no_identity}).ok());
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 1);
  EXPECT_EQ(counters_.dead_lettered.Value(), 2);

  auto consumer = kafka::Consumer::Create({.brokers = kafka_.bootstrap(),
                                           .group_id = testing::UniqueName("dlq"),
                                           .topics = {kafka::kInboundDlqTopic}});
  ASSERT_TRUE(consumer.ok());
  std::vector<kafka::Message> dead;
  testing::WaitFor(
      [&] {
        for (auto& message : (*consumer)->PollBatch(10, std::chrono::milliseconds(200))) {
          dead.push_back(message);
        }
        return dead.size() >= 2;
      },
      std::chrono::seconds(20));
  ASSERT_EQ(dead.size(), 2u);
  EXPECT_EQ(dead[0].value, garbage.value);
  std::map<std::string, std::string> headers;
  for (const auto& header : dead[0].headers) {
    headers[header.key] = header.value;
  }
  EXPECT_EQ(headers["source-offset"], "41");
  EXPECT_EQ(headers["source-topic"], kafka::kInboundTopic);
  EXPECT_FALSE(headers["error"].empty());
}

// Protects: hostile text (NUL bytes, invalid UTF-8, quotes, braces) is stored cleanly instead of
// failing the batch.
TEST_F(InboundTest, HostileTextIsStored) {
  InboundEvent event;
  event.set_event_id("hostile");
  auto* identity = event.add_identities();
  identity->set_kind(Identity::EMAIL);
  identity->set_value("a@b.co");
  event.mutable_person()->set_first_name(std::string("Je\0an \"{}\\", 10));
  event.mutable_web_form()->set_message("\xc3\x28 bad utf8");
  (*event.mutable_web_form()->mutable_custom_fields())["k\"ey"] = "\xff";
  kafka::Message message = Encode("x", "+1", "");
  event.SerializeToString(&message.value);
  ASSERT_TRUE(processor_->Process({message}).ok());
  // Either stored (cleaned) or dead-lettered, never lost and never blocking.
  EXPECT_EQ(Count("SELECT count(*) FROM leads") + counters_.dead_lettered.Value(), 1);
}

// Protects: one person, one lead under concurrency: two processors (two consumers) receive the
// same people's events in different orders and identity mixes at once.
TEST_F(InboundTest, ConcurrentConsumersMakeOneLeadPerPerson) {
  constexpr int kPeople = 300;
  std::vector<kafka::Message> phone_only;
  std::vector<kafka::Message> email_and_phone;
  for (int i = 0; i < kPeople; ++i) {
    std::string phone = "+3361" + std::to_string(1000000 + i);
    std::string email = "p" + std::to_string(i) + "@example.com";
    phone_only.push_back(Encode("a" + std::to_string(i), phone, ""));
    email_and_phone.push_back(Encode("b" + std::to_string(i), phone, email));
  }
  std::reverse(email_and_phone.begin(), email_and_phone.end());
  metrics::Registry other_registry;
  InboundCounters other_counters(other_registry);
  auto other = std::make_unique<BatchProcessor>(
      BatchProcessorOptions{.redis_prefix = redis_options_.key_prefix}, database_.url(), nullptr,
      *producer_, other_counters);
  auto run = [](BatchProcessor& processor, const std::vector<kafka::Message>& events) {
    for (size_t i = 0; i < events.size(); i += 20) {
      std::vector<kafka::Message> batch(events.begin() + i,
                                        events.begin() + std::min(events.size(), i + 20));
      while (!processor.Process(batch).ok()) {
      }
    }
  };
  std::thread first([&] { run(*processor_, phone_only); });
  std::thread second([&] { run(*other, email_and_phone); });
  first.join();
  second.join();
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), kPeople);
  EXPECT_EQ(Count("SELECT count(*) FROM activities"), 2 * kPeople);
  EXPECT_EQ(Count("SELECT sum(repeat_count) FROM leads"), kPeople);
  EXPECT_EQ(Count("SELECT count(*) FROM lead_identities"), 2 * kPeople);
}

// Protects: one person, one lead when a person's identities arrive apart: the person's lead
// (phone and email) was closed as junk; one consumer gets their phone, another their email, at
// the same time. Both must lock the lead's other identities too, so only one returning lead is
// made.
TEST_F(InboundTest, ClosedLeadIdentitiesArrivingApartMakeOneReturningLead) {
  constexpr int kPeople = 200;
  std::vector<kafka::Message> first_contact;
  std::vector<kafka::Message> by_phone;
  std::vector<kafka::Message> by_email;
  for (int i = 0; i < kPeople; ++i) {
    std::string phone = "+3361" + std::to_string(2000000 + i);
    std::string email = "back" + std::to_string(i) + "@example.com";
    first_contact.push_back(Encode("first" + std::to_string(i), phone, email));
    by_phone.push_back(Encode("phone" + std::to_string(i), phone, ""));
    by_email.push_back(Encode("email" + std::to_string(i), "", email));
  }
  ASSERT_TRUE(processor_->Process(first_contact).ok());
  Exec("UPDATE leads SET status = 'JUNK'");
  metrics::Registry other_registry;
  InboundCounters other_counters(other_registry);
  BatchProcessor other(BatchProcessorOptions{.redis_prefix = redis_options_.key_prefix},
                       database_.url(), nullptr, *producer_, other_counters);
  auto run = [](BatchProcessor& processor, const std::vector<kafka::Message>& events) {
    for (size_t i = 0; i < events.size(); i += 10) {
      std::vector<kafka::Message> batch(events.begin() + i,
                                        events.begin() + std::min(events.size(), i + 10));
      while (!processor.Process(batch).ok()) {
      }
    }
  };
  std::thread phones([&] { run(*processor_, by_phone); });
  std::thread emails([&] { run(other, by_email); });
  phones.join();
  emails.join();
  EXPECT_EQ(Count("SELECT count(*) FROM leads WHERE status = 'JUNK'"), kPeople);
  EXPECT_EQ(Count("SELECT count(*) FROM leads WHERE is_returning"), kPeople);
  EXPECT_EQ(Count("SELECT sum(repeat_count) FROM leads WHERE is_returning"), kPeople);
}

// Protects: when the database fails for reasons of its own (here a bad deploy: a column is
// missing), good events are retried, never dead-lettered; once fixed, they are applied.
TEST_F(InboundTest, DatabaseFaultsAreRetriedNotDeadLettered) {
  Exec("ALTER TABLE leads RENAME COLUMN city TO city_moved");
  absl::Status status = processor_->Process({Encode("fault", "+33612345678", "")});
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(counters_.dead_lettered.Value(), 0);
  Exec("ALTER TABLE leads RENAME COLUMN city_moved TO city");
  auto fresh = MakeProcessor(redis_.get());  // new connection: statements prepared anew
  ASSERT_TRUE(fresh->Process({Encode("fault", "+33612345678", "")}).ok());
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 1);
  EXPECT_EQ(counters_.dead_lettered.Value(), 0);
}

}  // namespace
}  // namespace leadflow::crm
