// The inbound path against real PostgreSQL, Redis and Kafka protocol (librdkafka's mock cluster):
// BatchProcessor applied to Kafka messages exactly as the consumer loop hands them over.

#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <functional>
#include <pqxx/pqxx>
#include <sstream>
#include <thread>

#include "crm-core/inbound/batch.h"
#include "crm-core/store/migrations.h"
#include "kafka/consumer.h"
#include "pg/migrations.h"
#include "testing/crm.h"
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
  return testing::InboundMessage(event);
}

class InboundTest : public ::testing::Test {
 protected:
  void SetUp() override {
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

  int64_t Count(const std::string& sql) { return database_.Scalar(sql); }

  void Exec(const std::string& sql) { database_.Exec(sql); }

  // Messages in the dead-letter topic now: its high watermark (DLQ writes are awaited, so
  // everything a Process() call dead-lettered is counted once it returned).
  int64_t DeadLetterCount() {
    auto marks = testing::HighWatermarks(kafka_.bootstrap(), kafka::kInboundDlqTopic, 1);
    EXPECT_EQ(marks.size(), 1u);
    return marks.empty() ? -1 : marks[0];
  }

  // The first `expected` messages of the dead-letter topic, in order.
  std::vector<kafka::Message> ReadDeadLetters(size_t expected) {
    std::vector<kafka::Message> dead;
    EXPECT_TRUE(testing::WaitFor(
        [&] {
          auto marks = testing::HighWatermarks(kafka_.bootstrap(), kafka::kInboundDlqTopic, 1);
          return marks.size() == 1 && marks[0] >= static_cast<int64_t>(expected);
        },
        std::chrono::seconds(20)));
    dead = testing::ReadTopic(kafka_.bootstrap(), kafka::kInboundDlqTopic, 1,
                              std::chrono::seconds(20));
    return dead;
  }

  static std::string Header(const kafka::Message& message, const std::string& key) {
    for (const auto& header : message.headers) {
      if (header.key == key) {
        return header.value;
      }
    }
    return "";
  }

  testing::CrmDatabase database_;
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
  EXPECT_EQ(Count("SELECT count(*) FROM leads WHERE source_details->>'field:rooms' = '3'"
                  " AND source_details->>'utm_source' = 'google'"),
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
  int64_t bob = Count("SELECT id FROM users WHERE name = 'Bob'");
  // Bob took the lead over before it was closed: he, not the round-robin, gets the person back.
  Exec("UPDATE leads SET status = 'JUNK', responsible_user_id = " + std::to_string(bob));
  ASSERT_TRUE(processor_->Process({Encode("j2", "", "jean@example.com")}).ok());
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 2);
  EXPECT_EQ(Count("SELECT count(*) FROM leads WHERE is_returning AND previous_lead_id = " +
                  std::to_string(first) + " AND responsible_user_id = " + std::to_string(bob)),
            1);
}

// Protects: a lead closed as PROCESSED (or CONVERTED) is closed too: the person's next contact
// is a returning lead; IN_PROCESS is open: the next contact joins it.
TEST_F(InboundTest, ProcessedIsClosedInProcessIsOpen) {
  ASSERT_TRUE(processor_->Process({Encode("p1", "+33612345678", "")}).ok());
  Exec("UPDATE leads SET status = 'PROCESSED'");
  ASSERT_TRUE(processor_->Process({Encode("p2", "+33612345678", "")}).ok());
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 2);
  EXPECT_EQ(Count("SELECT count(*) FROM leads WHERE is_returning AND status = 'NEW'"), 1);
  Exec("UPDATE leads SET status = 'CONVERTED' WHERE status = 'PROCESSED'");
  Exec("UPDATE leads SET status = 'IN_PROCESS' WHERE is_returning");
  ASSERT_TRUE(processor_->Process({Encode("p3", "+33612345678", "")}).ok());
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 2);
  EXPECT_EQ(Count("SELECT repeat_count FROM leads WHERE status = 'IN_PROCESS'"), 1);
  EXPECT_EQ(Count("SELECT repeat_count FROM leads WHERE status = 'CONVERTED'"), 0);
}

// Protects: "open" is the semantics of the lead's status, read from lead_statuses, not a list in
// code: a custom PROCESS status keeps the lead open (the next contact joins it), a custom
// FAILURE status closes it (the next contact makes a returning lead).
TEST_F(InboundTest, OpenMeansProcessSemanticsOfConfiguredStatus) {
  Exec(
      "INSERT INTO lead_statuses (id, name, sort, semantics) VALUES"
      " ('CALL_LATER', 'Call later', 25, 'PROCESS'), ('LOST', 'Lost', 55, 'FAILURE')");
  ASSERT_TRUE(processor_->Process({Encode("s1", "+33612345678", "")}).ok());
  Exec("UPDATE leads SET status = 'CALL_LATER'");
  ASSERT_TRUE(processor_->Process({Encode("s2", "+33612345678", "")}).ok());
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 1);
  EXPECT_EQ(Count("SELECT repeat_count FROM leads"), 1);
  Exec("UPDATE leads SET status = 'LOST'");
  ASSERT_TRUE(processor_->Process({Encode("s3", "+33612345678", "")}).ok());
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 2);
  EXPECT_EQ(Count("SELECT count(*) FROM leads WHERE is_returning AND status = 'NEW'"), 1);
}

// Protects: a missed call makes a CALL lead with an open call-back activity and only what the
// call told in its source details: no empty web-form fields.
TEST_F(InboundTest, MissedCallMakesLeadWithoutWebFormDetails) {
  InboundEvent event;
  event.set_event_id("call-1");
  auto* identity = event.add_identities();
  identity->set_kind(Identity::PHONE);
  identity->set_value("+33699999999");
  event.mutable_call()->set_outcome(events::v1::CallEvent::MISSED);
  event.mutable_call()->set_from_number("+33699999999");
  event.mutable_call()->set_to_number("+33100000000");
  kafka::Message message = Encode("unused", "+1", "");
  event.SerializeToString(&message.value);
  ASSERT_TRUE(processor_->Process({message}).ok());
  EXPECT_EQ(Count("SELECT count(*) FROM leads WHERE source = 'CALL'"
                  " AND title = 'Missed call +33 6 99 99 99 99'"
                  " AND source_details->>'reference' = '+33100000000'"
                  " AND NOT source_details ? 'page_url' AND NOT source_details ? 'utm_source'"),
            1);
  EXPECT_EQ(Count("SELECT count(*) FROM activities WHERE type = 'CALL' AND subject = 'Call back'"
                  " AND NOT completed AND deadline IS NOT NULL"),
            1);
}

// Protects: when several open leads share the sender's identity, the newest one gets the repeat
// and its activity; the older one is left alone.
TEST_F(InboundTest, NewestOpenLeadAmongSeveral) {
  ASSERT_TRUE(processor_->Process({Encode("n1", "+33612345678", "")}).ok());
  Exec("UPDATE leads SET status = 'JUNK'");
  ASSERT_TRUE(processor_->Process({Encode("n2", "+33612345678", "")}).ok());
  // Both open now (the old one reopened by hand), both with the phone.
  Exec("UPDATE leads SET status = 'IN_PROCESS' WHERE status = 'JUNK'");
  ASSERT_EQ(Count("SELECT count(*) FROM leads WHERE status IN ('NEW', 'IN_PROCESS')"), 2);
  int64_t older = Count("SELECT min(id) FROM leads");
  int64_t newer = Count("SELECT max(id) FROM leads");
  ASSERT_TRUE(processor_->Process({Encode("n3", "+33612345678", "")}).ok());
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 2);
  EXPECT_EQ(Count("SELECT repeat_count FROM leads WHERE id = " + std::to_string(newer)), 1);
  EXPECT_EQ(Count("SELECT repeat_count FROM leads WHERE id = " + std::to_string(older)), 0);
  EXPECT_EQ(Count("SELECT owner_id FROM activities WHERE origin_event_id = 'n3'"), newer);
}

// Protects: with no active user, new leads and their tasks are left unassigned (not given to an
// inactive user, not refused).
TEST_F(InboundTest, NoActiveUserLeavesLeadsUnassigned) {
  Exec("INSERT INTO users (name, active) VALUES ('Gone', false)");
  ASSERT_TRUE(
      processor_->Process({Encode("u1", "+33612345678", ""), Encode("u2", "+33698765432", "")})
          .ok());
  EXPECT_EQ(Count("SELECT count(*) FROM leads WHERE responsible_user_id IS NULL"), 2);
  EXPECT_EQ(Count("SELECT count(*) FROM activities WHERE responsible_user_id IS NULL"), 2);
}

// Protects: round-robin carries on across batches (the cursor is in the database, not per
// batch): consecutive leads alternate between the two active users over a batch boundary.
TEST_F(InboundTest, RoundRobinAcrossBatches) {
  Exec("INSERT INTO users (name, active) VALUES ('Ann', true), ('Bob', true)");
  for (int batch = 0; batch < 2; ++batch) {
    std::vector<kafka::Message> messages;
    for (int i = 0; i < 3; ++i) {
      std::string n = std::to_string(batch * 3 + i);
      messages.push_back(Encode("rb" + n, "+3361234560" + n, ""));
    }
    ASSERT_TRUE(processor_->Process(messages).ok());
  }
  // Three leads each, and never the same user twice in a row (by lead id).
  EXPECT_EQ(Count("SELECT max(c) - min(c) FROM (SELECT count(*) c FROM leads"
                  " GROUP BY responsible_user_id) s"),
            0);
  EXPECT_EQ(Count("SELECT count(*) FROM (SELECT responsible_user_id, lag(responsible_user_id)"
                  " OVER (ORDER BY id) AS previous FROM leads) s"
                  " WHERE responsible_user_id = previous"),
            0);
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

// Protects: hostile but valid text (NUL bytes, quotes, braces, backslashes, a quote in a custom
// field's name) is stored cleanly, not dead-lettered; invalid UTF-8 (which protobuf refuses to
// decode in a string field) dead-letters that event alone, and the rest of the batch is applied.
TEST_F(InboundTest, HostileTextIsStoredInvalidUtf8IsRejectedAlone) {
  InboundEvent event;
  event.set_event_id("hostile");
  auto* identity = event.add_identities();
  identity->set_kind(Identity::EMAIL);
  identity->set_value("a@b.co");
  event.mutable_person()->set_first_name(std::string("Je\0an \"{}\\", 10));
  event.mutable_web_form()->set_message("it's {fine} \\ \"quoted\"");
  (*event.mutable_web_form()->mutable_custom_fields())["k\"ey"] = "{\"v\"}";
  kafka::Message hostile = Encode("x", "+1", "");
  event.SerializeToString(&hostile.value);
  event.set_event_id("bad-utf8");
  event.mutable_identities(0)->set_value("c@d.co");
  event.mutable_web_form()->set_message("\xc3\x28 bad utf8");
  kafka::Message bad_utf8 = Encode("y", "+1", "");
  event.SerializeToString(&bad_utf8.value);
  ASSERT_TRUE(processor_->Process({hostile, bad_utf8, Encode("good", "+33612345678", "")}).ok());
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 2);
  EXPECT_EQ(Count("SELECT count(*) FROM leads WHERE first_name = 'Jean \"{}\\'"
                  " AND comments = 'it''s {fine} \\ \"quoted\"'"
                  " AND source_details->>'field:k\"ey' = '{\"v\"}'"),
            1);
  EXPECT_EQ(Count("SELECT count(*) FROM processed_events WHERE event_id = 'bad-utf8'"), 0);
  EXPECT_EQ(counters_.dead_lettered.Value(), 1);
  std::vector<kafka::Message> dead = ReadDeadLetters(1);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].value, bad_utf8.value);
  EXPECT_EQ(Header(dead[0], "error"), "undecodable InboundEvent protobuf");
}

// Protects: every dead-letter reason of docs/architecture.md: undecodable bytes, no event id, no
// identity, an identity of unknown kind, no payload this crm-core handles. Each goes to
// the DLQ with its reason in the `error` header; the good event of the batch is applied.
TEST_F(InboundTest, DeadLetterReasons) {
  kafka::Message garbage = Encode("garbage", "+1", "");
  garbage.value = std::string("\xff\xff\xff\x0f garbage", 12);
  auto variant = [](const std::string& id, const std::function<void(InboundEvent&)>& change) {
    kafka::Message message = Encode(id, "+33611111111", "");
    InboundEvent event;
    event.ParseFromString(message.value);
    change(event);
    event.SerializeToString(&message.value);
    return message;
  };
  std::vector<kafka::Message> batch = {
      garbage,
      variant("no-id", [](InboundEvent& event) { event.clear_event_id(); }),
      variant("no-identity", [](InboundEvent& event) { event.clear_identities(); }),
      variant("bad-kind",
              [](InboundEvent& event) {
                event.mutable_identities(0)->set_kind(Identity::KIND_UNSPECIFIED);
              }),
      variant("no-payload", [](InboundEvent& event) { event.clear_web_form(); }),
      Encode("good", "+33612345678", ""),
  };
  ASSERT_TRUE(processor_->Process(batch).ok());
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM processed_events"), 1);
  std::vector<kafka::Message> dead = ReadDeadLetters(5);
  ASSERT_EQ(dead.size(), 5u);
  std::vector<std::string> errors;
  for (const kafka::Message& message : dead) {
    errors.push_back(Header(message, "error"));
  }
  EXPECT_EQ(errors[0], "undecodable InboundEvent protobuf");
  EXPECT_EQ(errors[1], "event has no event_id");
  EXPECT_EQ(errors[2], "event has no identity of its sender");
  EXPECT_EQ(errors[3], "identity of unknown kind");
  EXPECT_EQ(errors[4], "payload not handled by this crm-core version");
  EXPECT_EQ(dead[4].value, batch[4].value);
}

// Protects: an event the database refuses for its data (SQLSTATE class 23, here a check a
// trigger enforces) is found by applying the batch one event at a time and dead-lettered alone,
// with "rejected by the database" and the reason; the other events of the batch are applied.
TEST_F(InboundTest, DatabaseRefusalDeadLettersThatEventAlone) {
  Exec(
      "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
      " IF NEW.first_name = 'Poison' THEN RAISE EXCEPTION 'poison lead' USING ERRCODE = '23514';"
      " END IF; RETURN NEW; END $$;"
      " CREATE TRIGGER refuse_poison BEFORE INSERT ON leads FOR EACH ROW"
      " EXECUTE FUNCTION refuse_poison()");
  kafka::Message poison = Encode("poison", "+33622222222", "", "Poison");
  ASSERT_TRUE(processor_
                  ->Process({Encode("before", "+33611111111", ""), poison,
                             Encode("after", "+33633333333", "")})
                  .ok());
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 2);
  EXPECT_EQ(Count("SELECT count(*) FROM processed_events WHERE event_id IN ('before', 'after')"),
            2);
  EXPECT_EQ(Count("SELECT count(*) FROM processed_events WHERE event_id = 'poison'"), 0);
  std::vector<kafka::Message> dead = ReadDeadLetters(1);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].value, poison.value);
  EXPECT_EQ(Header(dead[0], "error").rfind("rejected by the database: ", 0), 0u)
      << Header(dead[0], "error");
  EXPECT_NE(Header(dead[0], "error").find("poison lead"), std::string::npos);
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
  testing::RaceBatches(*processor_, phone_only, *other, email_and_phone, 20);
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
  testing::RaceBatches(*processor_, by_phone, other, by_email, 10);
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

kafka::Message At(kafka::Message message, int64_t offset) {
  message.offset = offset;
  return message;
}

// Protects (defect a): a lead gains at most CRM_LEAD_MAX_INBOUND_IDENTITIES (20) identities from
// inbound traffic. One phone number with a fresh email each time (anyone who knows the phone
// could do it) still makes one activity per event on the one lead, but its identities stop at
// the cap, and the refused ones are counted; later batches then lock a bounded set.
TEST_F(InboundTest, InboundIdentityGrowthIsCapped) {
  ASSERT_TRUE(processor_->Process({Encode("grow0", "+33612345678", "")}).ok());
  int64_t offset = 100;
  for (int batch = 0; batch < 8; ++batch) {
    std::vector<kafka::Message> messages;
    for (int i = 0; i < 5; ++i) {
      std::string n = std::to_string(batch * 5 + i);
      messages.push_back(
          At(Encode("grow" + n + "x", "+33612345678", "fresh" + n + "@example.com"), offset++));
    }
    ASSERT_TRUE(processor_->Process(messages).ok());
  }
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM activities"), 41);
  EXPECT_EQ(Count("SELECT repeat_count FROM leads"), 40);
  EXPECT_EQ(Count("SELECT count(*) FROM lead_identities"), 20);
  EXPECT_EQ(counters_.identities_capped.Value(), 21);
}

// Protects (defect n): the identity-lock closure is bounded. A lead that holds more identities
// than a batch may lock (here a legacy lead of 100, with a budget of 50 locks) makes the batch
// fail as retryable and counted, never silently decided on a partial snapshot; after the bounded
// attempts the event alone is dead-lettered with the reason, so the partition moves on.
TEST_F(InboundTest, IdentityLockClosureIsBounded) {
  Exec("INSERT INTO leads (title, source) VALUES ('legacy', 'WEB_FORM')");
  Exec(
      "INSERT INTO lead_identities (kind, value, lead_id) SELECT 'EMAIL', 'old' || g ||"
      " '@example.com', (SELECT id FROM leads) FROM generate_series(1, 99) AS g");
  Exec("INSERT INTO lead_identities VALUES ('PHONE', '+33612345678', (SELECT id FROM leads))");
  BatchProcessor bounded(BatchProcessorOptions{.redis_prefix = redis_options_.key_prefix,
                                               .max_identity_locks = 50,
                                               .attempts_before_split = 2,
                                               .attempts_alone = 2},
                         database_.url(), nullptr, *producer_, counters_);
  std::vector<kafka::Message> batch = {At(Encode("wide", "+33612345678", ""), 7)};
  absl::Status first = bounded.Process(batch);
  EXPECT_EQ(first.code(), absl::StatusCode::kResourceExhausted) << first;
  EXPECT_EQ(counters_.lock_closure_exhausted.Value(), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM activities"), 0);
  ASSERT_TRUE(bounded.Process(batch).ok());
  EXPECT_EQ(counters_.lock_closure_exhausted.Value(), 2);
  EXPECT_EQ(DeadLetterCount(), 1);
  auto dead = ReadDeadLetters(1);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_NE(Header(dead[0], "error").find("identity lock closure"), std::string::npos);
}

// A trigger that makes PostgreSQL raise `sqlstate` for one person's lead, as a corrupt index
// (XX000), a program limit (54000) or an exhausted lock table (53200) would, every time.
void InstallPoison(const std::function<void(const std::string&)>& exec, const std::string& state) {
  exec(
      "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
      " IF NEW.first_name = 'Poison' THEN RAISE EXCEPTION 'poisoned row' USING ERRCODE = '" +
      state + "'; END IF; RETURN NEW; END $$");
  exec("CREATE TRIGGER poison BEFORE INSERT ON leads FOR EACH ROW EXECUTE FUNCTION poison()");
}

class DeterministicFailureTest : public InboundTest,
                                 public ::testing::WithParamInterface<const char*> {};

// Protects (defect b): a failure that is not about the data's validity but fails every time
// (XX000, 54000, 53200) no longer stops the partition: after a bounded number of attempts the
// batch is split, its good events are applied, and the one event that still fails alone is
// dead-lettered with its SQLSTATE.
TEST_P(DeterministicFailureTest, IsIsolatedAndDeadLettered) {
  InstallPoison([&](const std::string& sql) { Exec(sql); }, GetParam());
  std::vector<kafka::Message> batch = {At(Encode("good1", "+33611111111", ""), 20),
                                       At(Encode("bad", "+33622222222", "", "Poison"), 21),
                                       At(Encode("good2", "+33633333333", ""), 22),
                                       At(Encode("good3", "+33644444444", ""), 23)};
  int attempts = 0;
  absl::Status status;
  do {
    status = processor_->Process(batch);
    ++attempts;
  } while (!status.ok() && attempts < 10);
  ASSERT_TRUE(status.ok()) << status;
  // attempts_before_split (3) for the batch, the third ending in the split that isolates the
  // event; then attempts_alone (3) for the event alone.
  EXPECT_EQ(attempts, 5);
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 3);
  EXPECT_EQ(DeadLetterCount(), 1);
  auto dead = ReadDeadLetters(1);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(Header(dead[0], "source-offset"), "21");
  EXPECT_NE(Header(dead[0], "error").find(GetParam()), std::string::npos);
  EXPECT_GE(counters_.batch_splits.Value(), 1);
}

INSTANTIATE_TEST_SUITE_P(Sqlstates, DeterministicFailureTest,
                         ::testing::Values("XX000", "54000", "53200"));

std::vector<kafka::Message> FourPeople(int64_t first_offset) {
  return {At(Encode("p1", "+33611111111", ""), first_offset),
          At(Encode("p2", "+33622222222", ""), first_offset + 1),
          At(Encode("p3", "+33633333333", ""), first_offset + 2),
          At(Encode("p4", "+33644444444", ""), first_offset + 3)};
}

// Protects (review finding 1): a database that refuses every write for a while (read-only: a
// failover landing on a standby, or default_transaction_read_only during maintenance: SQLSTATE
// 25006) is an outage: the batch is retried as it is, nothing goes to the DLQ, and once the
// database is writable again every event is applied once.
TEST_F(InboundTest, ReadOnlyDatabaseIsAnOutageNotBadEvents) {
  auto admin = [&](const std::string& sql) {
    pqxx::connection connection(std::getenv("LEADFLOW_TEST_PG_URL"));
    pqxx::nontransaction work(connection);
    work.exec0(sql);
  };
  admin("ALTER DATABASE " + database_.name() + " SET default_transaction_read_only = on");
  std::vector<kafka::Message> batch = FourPeople(60);
  for (int attempt = 0; attempt < 8; ++attempt) {
    absl::Status status = processor_->Process(batch);
    EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  }
  EXPECT_EQ(counters_.dead_lettered.Value(), 0);
  admin("ALTER DATABASE " + database_.name() + " RESET default_transaction_read_only");
  ASSERT_TRUE(processor_->Process(batch).ok());
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 4);
  EXPECT_EQ(Count("SELECT count(*) FROM processed_events"), 4);
  EXPECT_EQ(Count("SELECT count(*) FROM activities"), 4);
  EXPECT_EQ(DeadLetterCount(), 0);
}

// Protects (review finding 1): a deterministic failure that every event meets alike (here a
// trigger raising P0001 on every new lead, as a maintenance guard would) is judged the
// database's, not the events': both halves of the split fail with the same SQLSTATE class, so
// the batch is retried as an outage instead of being bisected into the DLQ event by event.
// Once the trigger is gone every event is applied once, and nothing was dead-lettered.
TEST_F(InboundTest, EveryEventFailingAlikeIsAnOutageNotBadEvents) {
  Exec(
      "CREATE FUNCTION closed() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
      " RAISE EXCEPTION 'closed for maintenance' USING ERRCODE = 'P0001'; END $$;"
      " CREATE TRIGGER closed BEFORE INSERT ON leads FOR EACH ROW EXECUTE FUNCTION closed()");
  std::vector<kafka::Message> batch = FourPeople(70);
  for (int attempt = 0; attempt < 8; ++attempt) {
    absl::Status status = processor_->Process(batch);
    EXPECT_FALSE(status.ok());
    EXPECT_EQ(pg::SqlState(status).value_or(""), "P0001") << status;
  }
  EXPECT_EQ(counters_.dead_lettered.Value(), 0);
  EXPECT_GE(counters_.batch_splits.Value(), 1);  // it was tried in halves
  Exec("DROP TRIGGER closed ON leads");
  ASSERT_TRUE(processor_->Process(batch).ok());
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 4);
  EXPECT_EQ(Count("SELECT count(*) FROM processed_events"), 4);
  EXPECT_EQ(DeadLetterCount(), 0);
}

// Protects (review finding 4): the memory of what a batch dead-lettered already tells messages
// apart by their bytes too, not by coordinates alone: two different bad messages at the same
// coordinates (here offset 0, as messages built without a broker have) are both dead-lettered;
// before, the second was taken for the first, never dead-lettered, and its offset stored.
TEST_F(InboundTest, DeadLetterMemoryTellsMessagesApart) {
  kafka::Message first = Encode("x1", "+1", "");
  first.value = "not a protobuf \xff\xff";
  kafka::Message second = Encode("x2", "+1", "");
  second.value = "not one either \xff\xff";
  std::vector<kafka::Message> batch = {first, second};
  ASSERT_TRUE(processor_->Process(batch).ok());
  EXPECT_EQ(counters_.dead_lettered.Value(), 2);
  EXPECT_EQ(DeadLetterCount(), 2);
}

// Protects (defect c): a bad message is dead-lettered once, not again on every retry of its
// batch while the database is unreachable (it refuses connections for three attempts).
TEST_F(InboundTest, DeadLetteredOnceAcrossRetries) {
  kafka::Message garbage = At(Encode("g", "+1", ""), 30);
  garbage.value = "not a protobuf \xff\xff";
  std::vector<kafka::Message> batch = {garbage, At(Encode("okay", "+33612345678", ""), 31)};
  auto admin = [&](const std::string& sql) {
    pqxx::connection connection(std::getenv("LEADFLOW_TEST_PG_URL"));
    pqxx::nontransaction work(connection);
    work.exec0(sql);
  };
  admin("ALTER DATABASE " + database_.name() + " ALLOW_CONNECTIONS false");
  for (int attempt = 0; attempt < 3; ++attempt) {
    absl::Status status = processor_->Process(batch);
    EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  }
  admin("ALTER DATABASE " + database_.name() + " ALLOW_CONNECTIONS true");
  ASSERT_TRUE(processor_->Process(batch).ok());
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 1);
  EXPECT_EQ(DeadLetterCount(), 1);
  EXPECT_EQ(counters_.dead_lettered.Value(), 1);
}

// Protects (defect j): what the database says about a refused row reaches neither the logs nor
// the DLQ's error header with the row's contents (PostgreSQL's "DETAIL: Failing row contains").
TEST_F(InboundTest, NoRowContentsInLogsOrDeadLetters) {
  Exec("ALTER TABLE leads ADD CONSTRAINT no_secret CHECK (first_name <> 'Secret Bob')");
  std::ostringstream logs;
  auto previous = spdlog::default_logger();
  auto logger = std::make_shared<spdlog::logger>(
      "test", std::make_shared<spdlog::sinks::ostream_sink_mt>(logs));
  logger->set_level(spdlog::level::trace);
  spdlog::set_default_logger(logger);
  absl::Status status = processor_->Process(
      {At(Encode("fine", "+33611111111", ""), 40),
       At(Encode("secret", "+33622222222", "secret@example.com", "Secret Bob"), 41)});
  spdlog::set_default_logger(previous);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 1);
  auto dead = ReadDeadLetters(1);
  ASSERT_EQ(dead.size(), 1u);
  const std::string error = Header(dead[0], "error");
  EXPECT_NE(error.find("23514"), std::string::npos) << error;
  EXPECT_EQ(error.find("Secret Bob"), std::string::npos) << error;
  EXPECT_EQ(error.find("Failing row"), std::string::npos) << error;
  EXPECT_FALSE(logs.str().empty());
  EXPECT_EQ(logs.str().find("Secret Bob"), std::string::npos) << logs.str();
  EXPECT_EQ(logs.str().find("secret@example.com"), std::string::npos) << logs.str();
}

}  // namespace
}  // namespace leadflow::crm
