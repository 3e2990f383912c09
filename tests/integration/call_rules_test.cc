// The telephony channel's rules in crm-core (docs/architecture.md, "Calls") against real
// PostgreSQL and the Kafka protocol (librdkafka's mock cluster, for the dead-letter topic): call
// events through the batch processor, and the one-open-call-back invariant at the database.

#include <gtest/gtest.h>

#include <pqxx/pqxx>
#include <thread>

#include "crm-core/inbound/batch.h"
#include "crm-core/store/call_repository.h"
#include "crm-core/store/migrations.h"
#include "crm-core/store/statements.h"
#include "pg/migrations.h"
#include "pg/pg.h"
#include "testing/testing.h"

namespace leadflow::crm {
namespace {

using events::v1::CallEvent;
using events::v1::Identity;
using events::v1::InboundEvent;

constexpr char kLine[] = "+33187654321";

struct CallSpec {
  std::string id;
  std::string number;  // the other party; "anonymous": withheld
  CallEvent::Outcome outcome = CallEvent::MISSED;
  CallEvent::Direction direction = CallEvent::INBOUND;
  int duration = 0;
  std::string extension;
  std::string recording;
  std::string line = kLine;
};

kafka::Message Encode(const CallSpec& spec) {
  InboundEvent event;
  event.set_event_id("call:" + spec.id);
  CallEvent* call = event.mutable_call();
  call->set_call_id("generic:" + spec.id);
  call->set_provider_call_id(spec.id);
  call->set_direction(spec.direction);
  call->set_outcome(spec.outcome);
  call->set_line(spec.line);
  call->set_duration_seconds(spec.duration);
  call->set_extension(spec.extension);
  call->set_recording_url(spec.recording);
  const bool outbound = spec.direction == CallEvent::OUTBOUND;
  call->set_from_number(outbound ? spec.line : spec.number);
  call->set_to_number(outbound ? spec.number : spec.line);
  if (spec.number == "anonymous") {
    call->set_anonymous(true);
  } else {
    Identity* identity = event.add_identities();
    identity->set_kind(Identity::PHONE);
    identity->set_value(spec.number);
  }
  kafka::Message message;
  message.topic = kafka::kInboundTopic;
  message.partition = 0;
  static int64_t next_offset = 9000;
  message.offset = next_offset++;
  message.key = spec.number;
  event.SerializeToString(&message.value);
  return message;
}

class CallRulesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(pg::ApplyMigrations(database_.url(), Migrations()).ok());
    kafka_.CreateTopic(kafka::kInboundDlqTopic, 1);
    auto producer = kafka::Producer::Create({.brokers = kafka_.bootstrap()});
    ASSERT_TRUE(producer.ok());
    producer_ = std::move(*producer);
    processor_ = MakeProcessor();
    alice_ = Count("INSERT INTO users (name, extension) VALUES ('Alice', '201') RETURNING id");
    bob_ = Count("INSERT INTO users (name, email) VALUES ('Bob', 'bob@example.com') RETURNING id");
  }

  std::unique_ptr<BatchProcessor> MakeProcessor() {
    return std::make_unique<BatchProcessor>(BatchProcessorOptions{}, database_.url(), nullptr,
                                            *producer_, counters_);
  }

  int64_t Count(const std::string& sql) {
    pqxx::connection connection(database_.url());
    pqxx::work work(connection);
    int64_t value = work.exec1(sql)[0].as<int64_t>(0);
    work.commit();
    return value;
  }
  std::string Text(const std::string& sql) {
    pqxx::connection connection(database_.url());
    pqxx::read_transaction work(connection);
    return work.exec1(sql)[0].as<std::string>();
  }
  void Exec(const std::string& sql) {
    pqxx::connection connection(database_.url());
    pqxx::work work(connection);
    work.exec0(sql);
    work.commit();
  }
  void Apply(const std::vector<kafka::Message>& batch) {
    ASSERT_TRUE(processor_->Process(batch).ok());
  }
  int64_t Contact(const std::string& phone) {
    int64_t id = Count(
        "INSERT INTO contacts (first_name, last_name, search_first_last, search_last_first, "
        "responsible_user_id) VALUES ('Marie', 'Curie', 'marie curie', 'curie marie', " +
        std::to_string(bob_) + ") RETURNING id");
    Exec("INSERT INTO contact_identities VALUES ('PHONE', '" + phone + "', " + std::to_string(id) +
         ")");
    return id;
  }
  int64_t OpenDeal(int64_t contact) {
    int64_t id = Count(
        "INSERT INTO deals (title, pipeline_id, stage_id, stage_semantics, responsible_user_id) "
        "VALUES ('Kitchen', 1, 'NEW', 'PROCESS', " +
        std::to_string(bob_) + ") RETURNING id");
    Exec("INSERT INTO deal_contacts (deal_id, contact_id) VALUES (" + std::to_string(id) + ", " +
         std::to_string(contact) + ")");
    return id;
  }
  int64_t OpenCallBacks() {
    return Count("SELECT count(*) FROM activities WHERE call_back AND NOT completed");
  }

  testing::TempDatabase database_;
  testing::MockKafka kafka_;
  std::unique_ptr<kafka::Producer> producer_;
  metrics::Registry registry_;
  InboundCounters counters_{registry_};
  std::unique_ptr<BatchProcessor> processor_;
  int64_t alice_ = 0;
  int64_t bob_ = 0;
};

// Protects: a missed call from an unknown number (classic) → one lead "Missed call <number>"
// (source CALL) and one open CALL call-back due the SLA setting, assigned over the line's queue.
TEST_F(CallRulesTest, MissedUnknownMakesLeadAndCallBackDueTheSla) {
  Exec("UPDATE crm_settings SET call_back_sla_minutes = 20");
  Exec("INSERT INTO assignment_queues (queue_key) VALUES ('paris')");
  Exec("INSERT INTO assignment_queue_members (queue_key, user_id) VALUES ('paris', " +
       std::to_string(bob_) + ")");
  Exec("INSERT INTO call_line_queues VALUES ('" + std::string(kLine) + "', 'paris')");
  Apply({Encode({.id = "m1", .number = "+33612345678"})});
  EXPECT_EQ(Count("SELECT count(*) FROM leads WHERE source = 'CALL' AND title = "
                  "'Missed call +33 6 12 34 56 78' AND responsible_user_id = " +
                  std::to_string(bob_)),
            1);
  EXPECT_EQ(Count("SELECT count(*) FROM activities WHERE type = 'CALL' AND call_back AND NOT "
                  "completed AND owner_type = 'LEAD' AND subject = 'Call back' AND missed_calls = 1"
                  " AND call_outcome = 'MISSED' AND call_number = '+33612345678'"
                  " AND responsible_user_id = " +
                  std::to_string(bob_) + " AND deadline - created_at = interval '20 minutes'"),
            1);
}

// Protects: simple mode: a missed call from an unknown number → a contact and a deal, the
// call-back on the deal.
TEST_F(CallRulesTest, SimpleModeMissedUnknownMakesContactAndDeal) {
  Exec("UPDATE crm_settings SET mode = 'SIMPLE'");
  Apply({Encode({.id = "m1", .number = "+33612345678"})});
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM contacts"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM deals WHERE source_id = 'CALL'"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM activities WHERE call_back AND NOT completed AND "
                  "owner_type = 'DEAL'"),
            1);
}

// Protects: at most one open call-back per record: five missed calls — two in one batch, the
// others in later batches, one of them replayed — make one lead and one open call-back whose
// count is 4 (the replay counts once), its last attempt time set.
TEST_F(CallRulesTest, RepeatedMissedCallsRaiseOneCallBack) {
  Apply({Encode({.id = "m1", .number = "+33612345678"}),
         Encode({.id = "m2", .number = "+33612345678", .outcome = CallEvent::BUSY})});
  Apply({Encode({.id = "m3", .number = "+33612345678"})});
  Apply({Encode({.id = "m3", .number = "+33612345678"})});  // the provider retried
  Apply({Encode({.id = "m4",
                 .number = "+33612345678",
                 .outcome = CallEvent::VOICEMAIL,
                 .recording = "https://rec.example.com/m4.mp3"})});
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM activities"), 1);
  EXPECT_EQ(OpenCallBacks(), 1);
  EXPECT_EQ(Count("SELECT missed_calls FROM activities"), 4);
  EXPECT_EQ(Count("SELECT count(*) FROM activities WHERE last_attempt_at IS NOT NULL AND "
                  "call_outcome = 'VOICEMAIL' AND call_recording_url = "
                  "'https://rec.example.com/m4.mp3'"),
            1);
}

// Protects: a known number's missed call goes on the person's open deal; an answered outbound
// call to that number completes it (naming the call that did); a later missed call opens a new
// one. Nothing makes a lead.
TEST_F(CallRulesTest, AnsweredOutboundCompletesTheCallBack) {
  const int64_t contact = Contact("+33612345678");
  const int64_t deal = OpenDeal(contact);
  Apply({Encode({.id = "m1", .number = "+33612345678"})});
  ASSERT_EQ(Count("SELECT count(*) FROM activities WHERE call_back AND NOT completed AND "
                  "owner_type = 'DEAL' AND owner_id = " +
                  std::to_string(deal) + " AND responsible_user_id = " + std::to_string(bob_)),
            1);
  // Not answered: nothing completed, a completed activity for the attempt.
  Apply({Encode({.id = "o1", .number = "+33612345678", .direction = CallEvent::OUTBOUND})});
  EXPECT_EQ(OpenCallBacks(), 1);
  Apply({Encode({.id = "o2",
                 .number = "+33612345678",
                 .outcome = CallEvent::ANSWERED,
                 .direction = CallEvent::OUTBOUND,
                 .duration = 95,
                 .extension = "201"})});
  EXPECT_EQ(OpenCallBacks(), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM activities WHERE call_back AND completed AND "
                  "completed_by_event_id = 'call:o2' AND completed_at IS NOT NULL"),
            1);
  EXPECT_EQ(Count("SELECT count(*) FROM activities WHERE NOT call_back AND completed AND "
                  "call_direction = 'OUTBOUND' AND call_outcome = 'ANSWERED' AND "
                  "call_duration_seconds = 95 AND responsible_user_id = " +
                  std::to_string(alice_)),
            1);
  Apply({Encode({.id = "m2", .number = "+33612345678"})});
  EXPECT_EQ(OpenCallBacks(), 1);
  EXPECT_EQ(Count("SELECT missed_calls FROM activities WHERE call_back AND NOT completed"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM deals"), 1);
}

// Protects: batch order holds inside one batch: missed, answered outbound, missed → the first
// call-back completed, a second one open, each counting one missed call.
TEST_F(CallRulesTest, OrderInsideOneBatch) {
  Contact("+33612345678");
  Apply({Encode({.id = "m1", .number = "+33612345678"}),
         Encode({.id = "o1",
                 .number = "+33612345678",
                 .outcome = CallEvent::ANSWERED,
                 .direction = CallEvent::OUTBOUND}),
         Encode({.id = "m2", .number = "+33612345678"})});
  EXPECT_EQ(Count("SELECT count(*) FROM activities WHERE call_back AND completed AND "
                  "missed_calls = 1 AND completed_by_event_id = 'call:o1'"),
            1);
  EXPECT_EQ(Count("SELECT count(*) FROM activities WHERE call_back AND NOT completed AND "
                  "missed_calls = 1 AND origin_event_id = 'call:m2'"),
            1);
}

// Protects: an answered inbound call from a known number → a completed CALL activity with the
// duration, the operator (a user's extension → responsible) and the recording; no lead. From an
// unknown number → a lead (source CALL) whose responsible is the operator (by e-mail).
TEST_F(CallRulesTest, AnsweredInboundCompletedActivity) {
  const int64_t contact = Contact("+33612345678");
  Apply({Encode({.id = "a1",
                 .number = "+33612345678",
                 .outcome = CallEvent::ANSWERED,
                 .duration = 42,
                 .extension = "201",
                 .recording = "https://rec.example.com/a1.mp3"})});
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM activities WHERE completed AND NOT call_back AND "
                  "owner_type = 'CONTACT' AND owner_id = " +
                  std::to_string(contact) +
                  " AND call_duration_seconds = 42 AND call_operator = '201' AND "
                  "call_recording_url = 'https://rec.example.com/a1.mp3' AND "
                  "responsible_user_id = " +
                  std::to_string(alice_)),
            1);

  InboundEvent event;
  kafka::Message message = Encode(
      {.id = "a2", .number = "+33699999999", .outcome = CallEvent::ANSWERED, .duration = 10});
  ASSERT_TRUE(event.ParseFromString(message.value));
  event.mutable_call()->set_operator_name("Bob@Example.com");
  event.SerializeToString(&message.value);
  Apply({message});
  EXPECT_EQ(Count("SELECT count(*) FROM leads WHERE source = 'CALL' AND title = "
                  "'Call from +33 6 99 99 99 99' AND responsible_user_id = " +
                  std::to_string(bob_)),
            1);
  EXPECT_EQ(Count("SELECT count(*) FROM activities WHERE completed AND owner_type = 'LEAD'"), 1);
}

// Protects: an outbound call to an unknown number makes no lead (listed as unidentified) unless
// the setting says so; then it makes one.
TEST_F(CallRulesTest, OutboundToStrangerMakesLeadOnlyWhenSet) {
  Apply({Encode({.id = "o1",
                 .number = "+33611111111",
                 .outcome = CallEvent::ANSWERED,
                 .direction = CallEvent::OUTBOUND})});
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM unidentified_calls WHERE direction = 'OUTBOUND'"), 1);
  Exec("UPDATE crm_settings SET outbound_call_creates_lead = true");
  Apply({Encode({.id = "o2",
                 .number = "+33611111111",
                 .outcome = CallEvent::ANSWERED,
                 .direction = CallEvent::OUTBOUND})});
  EXPECT_EQ(Count("SELECT count(*) FROM leads WHERE title = 'Call to +33 6 11 11 11 11'"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM activities WHERE completed AND call_back = false"), 1);
}

// Protects: anonymous callers → one row in the unidentified calls (a replay adds none), no lead,
// no activity; the event is applied, not dead-lettered. A late recording for it lands there.
TEST_F(CallRulesTest, AnonymousGoesToUnidentifiedCalls) {
  Apply({Encode({.id = "x1", .number = "anonymous"})});
  Apply({Encode({.id = "x1", .number = "anonymous"})});
  EXPECT_EQ(Count("SELECT count(*) FROM unidentified_calls WHERE call_id = 'generic:x1' AND "
                  "outcome = 'MISSED' AND direction = 'INBOUND'"),
            1);
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM activities"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM processed_events WHERE event_id = 'call:x1'"), 1);

  InboundEvent late;
  kafka::Message message = Encode({.id = "x1-rec", .number = "anonymous"});
  ASSERT_TRUE(late.ParseFromString(message.value));
  late.mutable_call()->set_call_id("generic:x1");
  late.mutable_call()->set_recording_only(true);
  late.mutable_call()->set_recording_url("https://rec.example.com/x1.mp3");
  late.SerializeToString(&message.value);
  Apply({message});
  EXPECT_EQ(Count("SELECT count(*) FROM unidentified_calls"), 1);
  EXPECT_EQ(Text("SELECT recording_url FROM unidentified_calls"), "https://rec.example.com/x1.mp3");
}

// Protects: the one-open-call-back invariant is the database's, not only the consumer's: two
// transactions upserting a call-back for one record at once, with no advisory lock between
// them, end with one open call-back counting both. The second waits on the unique index until the
// first commits, then folds into it. (With activities_one_open_call_back dropped, two rows.)
TEST_F(CallRulesTest, OneOpenCallBackUnderConcurrentWriters) {
  const int64_t contact = Contact("+33612345678");
  CallActivityRow row{.owner = domain::EntityKind::kContact,
                      .owner_id = contact,
                      .subject = "Call back",
                      .deadline_minutes = 15,
                      .call_back = true,
                      .missed_calls = 1};
  row.call.from_number = "+33612345678";
  pqxx::connection first(database_.url());
  pqxx::connection second(database_.url());
  pg::PrepareAll(first, Statements());
  pg::PrepareAll(second, Statements());
  const int second_pid = second.backendpid();
  pqxx::work first_work(first);
  row.origin_event_id = "e1";
  CallRepository(first_work).UpsertActivities({row});
  std::thread other([&] {
    pqxx::work work(second);
    CallActivityRow mine = row;
    mine.origin_event_id = "e2";
    CallRepository(work).UpsertActivities({mine});
    work.commit();
  });
  // The second writer is blocked by the first's uncommitted row.
  const bool blocked = testing::WaitFor(
      [&] {
        return Count("SELECT count(*) FROM pg_stat_activity WHERE pid = " +
                     std::to_string(second_pid) + " AND wait_event_type = 'Lock'") == 1;
      },
      std::chrono::seconds(20));
  first_work.commit();
  other.join();
  EXPECT_TRUE(blocked);
  EXPECT_EQ(OpenCallBacks(), 1);
  EXPECT_EQ(Count("SELECT missed_calls FROM activities WHERE call_back AND NOT completed"), 2);
}

// Protects: a merge (or a conversion, or the mode switch) moving a record's open call-back onto a
// record that has one folds it in: one open call-back, the missed calls added; the move never
// fails on the invariant.
TEST_F(CallRulesTest, MovedCallBackIsFoldedIntoTheKeptOne) {
  Apply({Encode({.id = "m1", .number = "+33612345678"}),
         Encode({.id = "m2", .number = "+33699999999"}),
         Encode({.id = "m3", .number = "+33699999999"})});
  ASSERT_EQ(OpenCallBacks(), 2);
  const int64_t kept = Count("SELECT owner_id FROM activities WHERE call_number = '+33612345678'");
  const int64_t folded =
      Count("SELECT owner_id FROM activities WHERE call_number = '+33699999999'");
  // What merges/fold_lead.sql does to the folded lead's activities.
  Exec("UPDATE activities SET owner_id = " + std::to_string(kept) +
       " WHERE owner_type = 'LEAD' AND owner_id = " + std::to_string(folded));
  EXPECT_EQ(OpenCallBacks(), 1);
  EXPECT_EQ(Count("SELECT missed_calls FROM activities WHERE call_back AND NOT completed AND "
                  "owner_id = " +
                  std::to_string(kept)),
            3);
  EXPECT_EQ(Count("SELECT count(*) FROM activities WHERE completed AND description LIKE "
                  "'%(folded into call-back %'"),
            1);
}

// Protects: two consumers applying one person's missed calls at once (their own transactions,
// the identity locks between them) leave one lead and one open call-back counting every call.
TEST_F(CallRulesTest, TwoConsumersOneCallBack) {
  auto other = MakeProcessor();
  std::vector<kafka::Message> mine, theirs;
  for (int i = 0; i < 20; ++i) {
    mine.push_back(Encode({.id = "p" + std::to_string(i), .number = "+33612345678"}));
    theirs.push_back(Encode({.id = "q" + std::to_string(i), .number = "+33612345678"}));
  }
  std::thread racer([&] {
    for (const auto& message : theirs) EXPECT_TRUE(other->Process({message}).ok());
  });
  for (const auto& message : mine) EXPECT_TRUE(processor_->Process({message}).ok());
  racer.join();
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 1);
  EXPECT_EQ(OpenCallBacks(), 1);
  EXPECT_EQ(Count("SELECT missed_calls FROM activities"), 40);
}

}  // namespace
}  // namespace leadflow::crm
