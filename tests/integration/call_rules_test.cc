// The telephony channel's rules in crm-core (docs/architecture.md, "Calls") against real
// PostgreSQL and the Kafka protocol (librdkafka's mock cluster, for the dead-letter topic): call
// events through the batch processor, the one-open-call-back invariant at the database, the
// call-backs through merges and conversions made over the gRPC API, the call counters, and the
// unidentified calls' retention.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <ctime>
#include <functional>
#include <map>
#include <pqxx/pqxx>
#include <thread>

#include "crm-core/api/services.h"
#include "crm-core/inbound/batch.h"
#include "crm-core/inbound/call_retention.h"
#include "crm-core/store/call_repository.h"
#include "crm-core/store/statements.h"
#include "pg/pg.h"
#include "testing/crm.h"
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
  // The number as the ingestion normalised it (E.164); empty: `number`, as given.
  std::string identity;
  CallEvent::Outcome outcome = CallEvent::MISSED;
  CallEvent::Direction direction = CallEvent::INBOUND;
  int duration = 0;
  std::string extension;
  std::string recording;
  std::string line = kLine;
  int64_t ended_unix = 0;  // the call's end as the provider timed it; 0: not given
  // Every recording the event carries (recording_urls); `recording` is the one-URL field.
  std::vector<std::string> recordings;
  // The call's start and answer as the provider timed them; 0: not given.
  int64_t started_unix = 0;
  int64_t answered_unix = 0;
  // The other party is no phone number (a SIP user): the event carries no identity.
  bool no_identity = false;
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
  for (const std::string& url : spec.recordings) call->add_recording_urls(url);
  if (spec.ended_unix != 0) call->mutable_ended_at()->set_seconds(spec.ended_unix);
  if (spec.started_unix != 0) call->mutable_started_at()->set_seconds(spec.started_unix);
  if (spec.answered_unix != 0) call->mutable_answered_at()->set_seconds(spec.answered_unix);
  const bool outbound = spec.direction == CallEvent::OUTBOUND;
  call->set_from_number(outbound ? spec.line : spec.number);
  call->set_to_number(outbound ? spec.number : spec.line);
  if (spec.number == "anonymous") {
    call->set_anonymous(true);
  } else if (!spec.no_identity) {
    Identity* identity = event.add_identities();
    identity->set_kind(Identity::PHONE);
    identity->set_value(spec.identity.empty() ? spec.number : spec.identity);
  }
  kafka::Message message;
  message.topic = kafka::kInboundTopic;
  message.partition = 0;
  static int64_t next_offset = 9000;
  message.offset = next_offset++;
  message.key = spec.identity.empty() ? spec.number : spec.identity;
  event.SerializeToString(&message.value);
  return message;
}

constexpr char kKey[] = "test-admin-key-0123456789";

// The batch processor and the API over one database (libs/testing/crm.h): call events go in as
// the consumer applies them, the records are read and changed as an API client would.
class CallRulesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    api_ =
        std::make_unique<testing::CrmApi>(testing::CrmApiOptions{.keys = {{kKey, Role::kAdmin}}});
    inbound_ = std::make_unique<testing::CrmInbound>(api_->database_url());
    processor_ = inbound_->MakeProcessor();
    alice_ = Count("INSERT INTO users (name, extension) VALUES ('Alice', '201') RETURNING id");
    bob_ = Count("INSERT INTO users (name, email) VALUES ('Bob', 'bob@example.com') RETURNING id");
  }

  static std::unique_ptr<grpc::ClientContext> Context() {
    return testing::CallContext(kKey, std::chrono::seconds(20));
  }
  int64_t Count(const std::string& sql) { return api_->Scalar(sql); }
  std::string Text(const std::string& sql) { return api_->Text(sql); }
  void Exec(const std::string& sql) { api_->Exec(sql); }
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
  // The open call-back of a record, 0: none.
  int64_t OpenCallBackOf(const std::string& owner_type, int64_t owner_id) {
    return Count(
        "SELECT coalesce(max(id), 0) FROM activities WHERE call_back AND NOT completed "
        "AND owner_type = '" +
        owner_type + "' AND owner_id = " + std::to_string(owner_id));
  }
  // A recording arriving after its call (Twilio's recording callback, AMI's MixMonitor).
  // `carried`: it came before its call settled, and the call's own event carries it too.
  kafka::Message Recording(const std::string& event, const std::string& call_id,
                           const std::string& url, bool carried = false) {
    InboundEvent late;
    kafka::Message message = Encode({.id = event, .number = "anonymous"});
    EXPECT_TRUE(late.ParseFromString(message.value));
    late.mutable_call()->set_call_id(call_id);
    late.mutable_call()->set_recording_only(true);
    late.mutable_call()->set_recording_url(url);
    late.mutable_call()->set_carried_by_call(carried);
    late.SerializeToString(&message.value);
    return message;
  }

  std::unique_ptr<testing::CrmApi> api_;
  std::unique_ptr<testing::CrmInbound> inbound_;
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

// Protects: a call-back on a known record nobody is responsible for (a contact created with no
// owner, the trial's contact 3) is assigned by the usual rules, the line's queue, as a new
// record's would be — never left with no responsible; a record with an owner keeps its owner.
TEST_F(CallRulesTest, CallBackOnARecordWithoutResponsibleGoesToTheQueue) {
  Exec("INSERT INTO assignment_queues (queue_key) VALUES ('paris')");
  Exec("INSERT INTO assignment_queue_members (queue_key, user_id) VALUES ('paris', " +
       std::to_string(alice_) + ")");
  Exec("INSERT INTO call_line_queues VALUES ('" + std::string(kLine) + "', 'paris')");
  int64_t orphan = Count(
      "INSERT INTO contacts (first_name, last_name, search_first_last, search_last_first) "
      "VALUES ('Paul', 'Nobody', 'paul nobody', 'nobody paul') RETURNING id");
  Exec("INSERT INTO contact_identities VALUES ('PHONE', '+33650000001', " + std::to_string(orphan) +
       ")");
  int64_t owned = Contact("+33650000002");  // Bob's
  Apply({Encode({.id = "o1", .number = "+33650000001"}),
         Encode({.id = "o2", .number = "+33650000002"})});
  EXPECT_EQ(Count("SELECT coalesce(max(responsible_user_id), 0) FROM activities WHERE call_back "
                  "AND owner_type = 'CONTACT' AND owner_id = " +
                  std::to_string(orphan)),
            alice_);
  EXPECT_EQ(Count("SELECT coalesce(max(responsible_user_id), 0) FROM activities WHERE call_back "
                  "AND owner_type = 'CONTACT' AND owner_id = " +
                  std::to_string(owned)),
            bob_);
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

// Protects: batch order holds for the records a completion reaches only through the phone it
// dialled. An unknown caller answered (a new lead; the call matched no record yet, so the lead
// is reached only as a holder of the phone), then the same caller's missed call in the same
// batch: its call-back on that lead stays open. Then, in one batch, a contact holding another
// number whose deal is closed (reached only through the phone too) gets a missed call and an
// answered outbound call: that call-back is completed; a missed call after it opens another.
TEST_F(CallRulesTest, CompletionByPhoneKeepsBatchOrder) {
  Apply(
      {Encode(
           {.id = "a1", .number = "+33612345678", .outcome = CallEvent::ANSWERED, .duration = 60}),
       Encode({.id = "m1", .number = "+33612345678"})});
  ASSERT_EQ(Count("SELECT count(*) FROM leads"), 1);
  const int64_t lead = Count("SELECT id FROM leads");
  EXPECT_NE(OpenCallBackOf("LEAD", lead), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM activities WHERE call_back AND NOT completed AND "
                  "origin_event_id = 'call:m1' AND missed_calls = 1"),
            1);

  const int64_t contact = Contact("+33698765432");
  const int64_t deal = OpenDeal(contact);
  Apply({Encode({.id = "m2", .number = "+33698765432"})});
  ASSERT_NE(OpenCallBackOf("DEAL", deal), 0);
  Exec("UPDATE deals SET stage_id = 'WON', stage_semantics = 'SUCCESS' WHERE id = " +
       std::to_string(deal));
  Apply({Encode({.id = "o1",
                 .number = "+33698765432",
                 .outcome = CallEvent::ANSWERED,
                 .direction = CallEvent::OUTBOUND}),
         Encode({.id = "m3", .number = "+33698765432"})});
  EXPECT_EQ(OpenCallBackOf("DEAL", deal), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM activities WHERE call_back AND completed AND "
                  "completed_by_event_id = 'call:o1' AND owner_type = 'DEAL' AND owner_id = " +
                  std::to_string(deal)),
            1);
  EXPECT_NE(OpenCallBackOf("CONTACT", contact), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM activities WHERE call_back AND NOT completed AND "
                  "origin_event_id = 'call:m3'"),
            1);
  EXPECT_EQ(OpenCallBacks(), 2);
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

// Protects: the client calling again and being answered completes their open call-back (the
// conversation it asked for happened): one open call-back before, none after, completed by the
// answered call's event, which is itself a completed call activity on the same record.
TEST_F(CallRulesTest, AnsweredInboundCompletesTheCallBack) {
  const int64_t contact = Contact("+33612345678");
  Apply({Encode({.id = "m1", .number = "+33612345678"})});
  ASSERT_NE(OpenCallBackOf("CONTACT", contact), 0);
  Apply({Encode({.id = "a1",
                 .number = "0612345678",
                 .identity = "+33612345678",
                 .outcome = CallEvent::ANSWERED,
                 .duration = 240})});
  EXPECT_EQ(OpenCallBacks(), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM activities WHERE call_back AND completed AND "
                  "completed_by_event_id = 'call:a1' AND owner_type = 'CONTACT' AND owner_id = " +
                  std::to_string(contact)),
            1);
  EXPECT_EQ(Count("SELECT count(*) FROM activities WHERE NOT call_back AND completed AND "
                  "call_duration_seconds = 240 AND owner_type = 'CONTACT'"),
            1);
  EXPECT_EQ(inbound_->counters().calls.call_backs_completed.Value(), 1);
}

// Protects: a missed call whose event comes after a later answered call of the same person (a
// PBX posting its reports late or in batches, a call published at its expiry, a provider's
// retry minutes later) asks for no call-back: the person was reached after it. It is kept on
// the record as a call-back completed by the answered call (its call id held, so that a late
// recording still finds it), never folded into the open call-back of a missed call that came
// after the answer, and counted apart (`already_reached`). A missed call after the answer, or one
// whose time is unknown, still opens a call-back.
TEST_F(CallRulesTest, MissedCallOlderThanTheAnswerAsksForNoCallBack) {
  CallCounters& calls = inbound_->counters().calls;
  const int64_t contact = Contact("+33612345678");
  const int64_t now = Count("SELECT extract(epoch FROM now())::bigint");
  Apply({Encode({.id = "m1", .number = "+33612345678", .ended_unix = now - 3600})});
  Apply({Encode({.id = "o1",
                 .number = "+33612345678",
                 .outcome = CallEvent::ANSWERED,
                 .direction = CallEvent::OUTBOUND,
                 .duration = 100,
                 .ended_unix = now - 1700,
                 .started_unix = now - 1820,
                 .answered_unix = now - 1800})});
  ASSERT_EQ(OpenCallBacks(), 0);
  // Missed at -40 min, published after the call-back at -30 min.
  Apply({Encode({.id = "m0",
                 .number = "+33612345678",
                 .ended_unix = now - 2400,
                 .started_unix = now - 2430})});
  EXPECT_EQ(OpenCallBacks(), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM activities WHERE call_back AND completed AND "
                  "completed_at IS NOT NULL AND completed_by_event_id = 'call:o1' AND "
                  "origin_event_id = 'call:m0' AND missed_calls = 1 AND owner_type = 'CONTACT' "
                  "AND owner_id = " +
                  std::to_string(contact)),
            1);
  EXPECT_EQ(Count("SELECT count(*) FROM activity_calls AS c JOIN activities AS a ON a.id = "
                  "c.activity_id WHERE c.call_id = 'generic:m0' AND a.origin_event_id = "
                  "'call:m0'"),
            1);

  // Missed after the answer: a call-back to make. A late one from before the answer does not
  // join it.
  Apply({Encode({.id = "m2", .number = "+33612345678", .ended_unix = now - 600})});
  ASSERT_NE(OpenCallBackOf("CONTACT", contact), 0);
  Apply({Encode({.id = "m00", .number = "+33612345678", .ended_unix = now - 2000})});
  EXPECT_EQ(OpenCallBacks(), 1);
  EXPECT_EQ(Count("SELECT missed_calls FROM activities WHERE call_back AND NOT completed"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM activities WHERE call_back AND completed AND "
                  "completed_by_event_id = 'call:o1' AND origin_event_id = 'call:m00'"),
            1);

  // The person called in and was answered (-5 min): the open call-back is done, and a missed
  // call from before that, arriving now, is done by that call too.
  Apply({Encode({.id = "a1",
                 .number = "+33612345678",
                 .outcome = CallEvent::ANSWERED,
                 .duration = 60,
                 .ended_unix = now - 240,
                 .answered_unix = now - 300})});
  ASSERT_EQ(OpenCallBacks(), 0);
  Apply({Encode({.id = "m3", .number = "+33612345678", .ended_unix = now - 400})});
  EXPECT_EQ(OpenCallBacks(), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM activities WHERE call_back AND completed AND "
                  "completed_by_event_id = 'call:a1' AND origin_event_id = 'call:m3'"),
            1);

  // A missed call without a time of its own is taken as now: after every answer.
  Apply({Encode({.id = "m4", .number = "+33612345678"})});
  EXPECT_EQ(OpenCallBacks(), 1);
  EXPECT_EQ(
      Count("SELECT sum(missed_calls) FROM activities WHERE call_back"),
      static_cast<int64_t>(calls.call_backs_created.Value() + calls.call_backs_updated.Value() +
                           calls.call_backs_already_reached.Value()));
}

// Protects: a missed call that an answered call already on its record made moot (its event came
// late) is a call-back nobody has to make: on a record without a responsible it takes no turn of
// the queue (the next call-back to make still goes to the member whose turn it is) and goes to
// whoever the answered call went to; it is counted once, apart from the call-backs made and
// completed, so created + updated + already_reached is still the missed calls.
TEST_F(CallRulesTest, CallBackMootOnArrivalTakesNoTurnAndIsCountedApart) {
  CallCounters& calls = inbound_->counters().calls;
  Exec("INSERT INTO assignment_queues (queue_key) VALUES ('paris')");
  Exec("INSERT INTO assignment_queue_members (queue_key, user_id) VALUES ('paris', " +
       std::to_string(alice_) + "), ('paris', " + std::to_string(bob_) + ")");
  Exec("INSERT INTO call_line_queues VALUES ('" + std::string(kLine) + "', 'paris')");
  const int64_t orphan = Count(
      "INSERT INTO contacts (first_name, last_name, search_first_last, search_last_first) "
      "VALUES ('Paul', 'Nobody', 'paul nobody', 'nobody paul') RETURNING id");
  Exec("INSERT INTO contact_identities VALUES ('PHONE', '+33650000001', " + std::to_string(orphan) +
       ")");
  const int64_t now = Count("SELECT extract(epoch FROM now())::bigint");
  // Alice (extension 201) took the person's call half an hour ago.
  Apply({Encode({.id = "a1",
                 .number = "+33650000001",
                 .outcome = CallEvent::ANSWERED,
                 .duration = 60,
                 .extension = "201",
                 .ended_unix = now - 1740,
                 .answered_unix = now - 1800})});
  ASSERT_EQ(Count("SELECT coalesce(max(responsible_user_id), 0) FROM activities WHERE "
                  "origin_event_id = 'call:a1'"),
            alice_);
  auto position = [&] {
    return Count(
        "SELECT coalesce(max(position), 0) FROM assignment_queues WHERE queue_key = "
        "'paris'");
  };
  const int64_t before = position();

  // Missed 40 minutes ago, published now, alone and then with a second one of the same time.
  Apply({Encode({.id = "m0", .number = "+33650000001", .ended_unix = now - 2400})});
  Apply({Encode({.id = "m1", .number = "+33650000001", .ended_unix = now - 2300}),
         Encode({.id = "m2", .number = "+33650000001", .ended_unix = now - 2200})});
  EXPECT_EQ(OpenCallBacks(), 0);
  EXPECT_EQ(position(), before) << "a call-back nobody has to make took a turn of the queue";
  EXPECT_EQ(Count("SELECT count(*) FROM activities WHERE call_back AND completed AND "
                  "completed_by_event_id = 'call:a1' AND responsible_user_id = " +
                  std::to_string(alice_)),
            2);
  EXPECT_EQ(calls.call_backs_created.Value(), 0);
  EXPECT_EQ(calls.call_backs_updated.Value(), 0);
  EXPECT_EQ(calls.call_backs_completed.Value(), 0);
  EXPECT_EQ(calls.call_backs_already_reached.Value(), 3);

  // Missed after the answer: a call-back to make, the queue's next turn.
  Apply({Encode({.id = "m3", .number = "+33650000001", .ended_unix = now - 600})});
  EXPECT_EQ(position(), before + 1);
  EXPECT_EQ(Count("SELECT count(*) FROM activities WHERE call_back AND NOT completed AND "
                  "responsible_user_id IS NOT NULL AND owner_id = " +
                  std::to_string(orphan)),
            1);
  EXPECT_EQ(calls.call_backs_created.Value(), 1);
  EXPECT_EQ(calls.call_backs_completed.Value(), 0);
  const int64_t holder = Count(
      "SELECT responsible_user_id FROM activities WHERE call_back AND NOT completed AND "
      "owner_id = " +
      std::to_string(orphan));

  // Missed again: folded into that open call-back, which keeps its responsible; no turn taken.
  Apply({Encode({.id = "m4", .number = "+33650000001", .ended_unix = now - 300})});
  EXPECT_EQ(position(), before + 1) << "a missed call folded into the open call-back took a turn";
  EXPECT_EQ(Count("SELECT responsible_user_id FROM activities WHERE call_back AND NOT completed "
                  "AND missed_calls = 2 AND owner_id = " +
                  std::to_string(orphan)),
            holder);
  EXPECT_EQ(calls.call_backs_created.Value(), 1);
  EXPECT_EQ(calls.call_backs_updated.Value(), 1);
  EXPECT_EQ(
      Count("SELECT sum(missed_calls) FROM activities WHERE call_back"),
      static_cast<int64_t>(calls.call_backs_created.Value() + calls.call_backs_updated.Value() +
                           calls.call_backs_already_reached.Value()));
}

// Protects: the look-up of the answered call that makes a call-back moot reads a partial index
// of the records' answered calls (migration 0031), in the order it wants, not every activity of
// the record through activities_owner: on a busy record (thousands of activities) each missed
// call would read them all. The plan is asked of PostgreSQL on such a record; no time is asserted.
TEST_F(CallRulesTest, MootCallBackLookUpReadsTheAnsweredCallsIndex) {
  Exec(
      "INSERT INTO activities (type, owner_type, owner_id, subject, completed, origin_event_id, "
      "call_back, call_id, call_direction, call_outcome, call_answered_at, missed_calls) "
      "SELECT 'CALL', 'CONTACT', 1, 'Call', true, 'call:a' || g, false, 'generic:a' || g, "
      "'INBOUND', 'ANSWERED', now() - interval '1 hour' - g * interval '20 minutes', 0 "
      "FROM generate_series(1, 3000) AS g");
  Exec(
      "INSERT INTO activities (type, owner_type, owner_id, subject, completed, origin_event_id) "
      "SELECT 'TASK', 'CONTACT', 1, 'Repeated request', true, 'web:' || g "
      "FROM generate_series(1, 3000) AS g");
  Exec(
      "INSERT INTO activities (type, owner_type, owner_id, subject, completed, origin_event_id, "
      "call_back, call_id, call_direction, call_outcome, call_answered_at, missed_calls) "
      "VALUES ('CALL', 'CONTACT', 1, 'Call', true, 'call:recent', false, 'generic:recent', "
      "'OUTBOUND', 'ANSWERED', now() - interval '30 minutes', 0)");
  Exec("ANALYZE activities");
  pqxx::connection connection(api_->database_url());
  pqxx::nontransaction work(connection);
  for (const pg::Statement& statement : Statements()) {
    if (statement.name == "reached_call_backs") {
      work.exec0(std::string("PREPARE reached_call_backs AS ") + statement.sql);
    }
  }
  const int64_t now = Count("SELECT extract(epoch FROM now())::bigint");
  // A missed call 40 minutes ago, reached by the answer 30 minutes ago; one 5 minutes ago, not.
  for (const auto& [missed, reached_by] :
       std::vector<std::pair<int64_t, std::string>>{{now - 2400, "call:recent"}, {now - 300, ""}}) {
    const std::string execute =
        "EXECUTE reached_call_backs('{CONTACT}', '{1}', '{" + std::to_string(missed) + "}')";
    std::string plan;
    for (const auto& row : work.exec("EXPLAIN " + execute)) {
      plan += row[0].as<std::string>() + "\n";
    }
    // An index scan that stops at its first entry (a bitmap scan would read the whole range).
    EXPECT_NE(plan.find("Index Scan using activities_answered_calls"), std::string::npos) << plan;
    EXPECT_NE(plan.find("Limit"), std::string::npos) << plan;
    EXPECT_NE(plan.find("activities_one_open_call_back"), std::string::npos) << plan;
    const pqxx::result answer = work.exec(execute);
    ASSERT_EQ(answer.size(), 1u);
    EXPECT_EQ(answer[0][1].as<std::string>(), reached_by) << missed;
    EXPECT_FALSE(answer[0][3].as<bool>());  // no open call-back on the record
  }
}

// Protects: in one batch, publication order is not the calls' order: a missed call after the
// answer, published before a late one from before it, still opens its call-back (the fold's last
// attempt is the latest missed call, not the batch's last), due from the earliest.
TEST_F(CallRulesTest, LateMissedCallInTheSameBatchKeepsTheNewerCallBack) {
  const int64_t now = Count("SELECT extract(epoch FROM now())::bigint");
  Contact("+33612345678");
  Apply({Encode({.id = "o1",
                 .number = "+33612345678",
                 .outcome = CallEvent::ANSWERED,
                 .direction = CallEvent::OUTBOUND,
                 .duration = 100,
                 .ended_unix = now - 1700,
                 .answered_unix = now - 1800})});
  Apply({Encode({.id = "m2", .number = "+33612345678", .ended_unix = now - 600}),
         Encode({.id = "m1", .number = "+33612345678", .ended_unix = now - 2400})});
  EXPECT_EQ(OpenCallBacks(), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM activities WHERE call_back AND NOT completed AND "
                  "missed_calls = 2 AND last_attempt_at = to_timestamp(" +
                  std::to_string(now - 600) + ") AND deadline = to_timestamp(" +
                  std::to_string(now - 2400) + ") + interval '15 minutes'"),
            1);
}

// Protects: a call-back is due the SLA after the missed call, as the provider timed it, not after
// crm-core read the event (a consumer catching up on a backlog must not push deadlines out): the
// first missed call sets the deadline, the latest the last attempt; a call time in the future is
// taken as now, so a skewed or forged clock cannot postpone a deadline.
TEST_F(CallRulesTest, CallBackIsDueAfterTheCallNotAfterItsProcessing) {
  const int64_t now = Count("SELECT extract(epoch FROM now())::bigint");
  Apply({Encode({.id = "m1", .number = "+33612345678", .ended_unix = now - 7200})});
  Apply({Encode({.id = "m2", .number = "+33612345678", .ended_unix = now - 3600})});
  EXPECT_EQ(Count("SELECT count(*) FROM activities WHERE call_back AND NOT completed AND "
                  "missed_calls = 2 AND deadline = to_timestamp(" +
                  std::to_string(now - 7200) +
                  ") + interval '15 minutes' AND last_attempt_at = to_timestamp(" +
                  std::to_string(now - 3600) + ")"),
            1);
  Apply({Encode({.id = "m3", .number = "+33698765432", .ended_unix = now + 86400})});
  EXPECT_EQ(Count("SELECT count(*) FROM activities WHERE call_back AND call_number = "
                  "'+33698765432' AND deadline <= now() + interval '15 minutes' AND "
                  "last_attempt_at <= now()"),
            1);
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

  Apply({Recording("x1-rec", "generic:x1", "https://rec.example.com/x1.mp3")});
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
  pqxx::connection first(api_->database_url());
  pqxx::connection second(api_->database_url());
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

// Protects: MergeLeads over the API folds the folded lead's open call-back into the kept lead's
// (fold_moved_call_back): one open call-back on the kept lead counting every missed call of
// both, the earlier deadline and the later attempt kept; the folded one completed, saying into
// which. A late recording of the folded lead's call then finds the kept call-back.
TEST_F(CallRulesTest, MergeLeadsFoldsTheirCallBacks) {
  Apply({Encode({.id = "m1", .number = "+33612345678"}),
         Encode({.id = "m2", .number = "+33699999999"})});
  Apply({Encode({.id = "m3", .number = "+33699999999"})});
  const int64_t kept = Count("SELECT lead_id FROM lead_identities WHERE value = '+33612345678'");
  const int64_t folded = Count("SELECT lead_id FROM lead_identities WHERE value = '+33699999999'");
  const int64_t kept_call_back = OpenCallBackOf("LEAD", kept);
  const int64_t folded_call_back = OpenCallBackOf("LEAD", folded);
  ASSERT_NE(kept_call_back, 0);
  ASSERT_NE(folded_call_back, 0);
  // The folded one is due first: its deadline is the one kept.
  Exec("UPDATE activities SET deadline = now() - interval '1 hour' WHERE id = " +
       std::to_string(folded_call_back));
  const std::string earliest =
      Text("SELECT deadline::text FROM activities WHERE id = " + std::to_string(folded_call_back));

  v1::MergeLeadsRequest merge;
  merge.set_kept_id(kept);
  merge.add_folded_ids(folded);
  v1::MergeLeadsResponse merged;
  auto leads = api_->Stub<v1::LeadService>();
  ASSERT_TRUE(leads->MergeLeads(Context().get(), merge, &merged).ok());

  EXPECT_EQ(OpenCallBacks(), 1);
  EXPECT_EQ(OpenCallBackOf("LEAD", kept), kept_call_back);
  EXPECT_EQ(
      Count("SELECT missed_calls FROM activities WHERE id = " + std::to_string(kept_call_back)), 3);
  EXPECT_EQ(
      Text("SELECT deadline::text FROM activities WHERE id = " + std::to_string(kept_call_back)),
      earliest);
  EXPECT_EQ(Count("SELECT count(*) FROM activities WHERE id = " + std::to_string(folded_call_back) +
                  " AND completed AND owner_id = " + std::to_string(kept) +
                  " AND description LIKE '%(folded into call-back " +
                  std::to_string(kept_call_back) + ")'"),
            1);

  Apply({Recording("m2-rec", "generic:m2", "https://rec.example.com/m2.mp3")});
  EXPECT_EQ(Text("SELECT coalesce(call_recording_url, '') FROM activities WHERE id = " +
                 std::to_string(kept_call_back)),
            "https://rec.example.com/m2.mp3");
  EXPECT_EQ(inbound_->counters().calls.recordings_unmatched.Value(), 0);
}

// Protects: MergeContacts over the API: each contact's open call-back (known numbers, nothing
// open: the call-back is on the contact) becomes one on the kept contact counting both.
TEST_F(CallRulesTest, MergeContactsFoldsTheirCallBacks) {
  const int64_t kept = Contact("+33612345678");
  const int64_t folded = Contact("+33699999999");
  Apply({Encode({.id = "m1", .number = "+33612345678"}),
         Encode({.id = "m2", .number = "+33699999999"})});
  ASSERT_NE(OpenCallBackOf("CONTACT", kept), 0);
  ASSERT_NE(OpenCallBackOf("CONTACT", folded), 0);
  const int64_t kept_call_back = OpenCallBackOf("CONTACT", kept);

  v1::MergeContactsRequest merge;
  merge.set_kept_id(kept);
  merge.add_folded_ids(folded);
  v1::MergeContactsResponse merged;
  auto contacts = api_->Stub<v1::ContactService>();
  ASSERT_TRUE(contacts->MergeContacts(Context().get(), merge, &merged).ok());

  EXPECT_EQ(OpenCallBacks(), 1);
  EXPECT_EQ(OpenCallBackOf("CONTACT", kept), kept_call_back);
  EXPECT_EQ(
      Count("SELECT missed_calls FROM activities WHERE id = " + std::to_string(kept_call_back)), 2);
  EXPECT_EQ(Count("SELECT count(*) FROM activities WHERE call_back AND completed AND "
                  "owner_type = 'CONTACT' AND owner_id = " +
                  std::to_string(kept)),
            1);
  // The person's next missed call, by either number, raises the one call-back.
  Apply({Encode({.id = "m3", .number = "+33699999999"})});
  EXPECT_EQ(OpenCallBacks(), 1);
  EXPECT_EQ(
      Count("SELECT missed_calls FROM activities WHERE id = " + std::to_string(kept_call_back)), 3);
}

// Protects: ConvertLead over the API onto an existing contact that has an open call-back: the
// lead's call-back moves to the contact and is folded into the contact's, one open call-back
// counting both.
TEST_F(CallRulesTest, ConvertLeadOntoAContactFoldsTheCallBacks) {
  const int64_t contact = Contact("+33612345678");
  Apply({Encode({.id = "m1", .number = "+33612345678"}),
         Encode({.id = "m2", .number = "+33699999999"}),
         Encode({.id = "m3", .number = "+33699999999"})});
  const int64_t lead = Count("SELECT lead_id FROM lead_identities WHERE value = '+33699999999'");
  const int64_t contact_call_back = OpenCallBackOf("CONTACT", contact);
  ASSERT_NE(contact_call_back, 0);
  ASSERT_NE(OpenCallBackOf("LEAD", lead), 0);

  v1::ConvertLeadRequest convert;
  convert.set_lead_id(lead);
  convert.set_produce(v1::CONVERSION_PRODUCE_CONTACT);
  convert.set_contact_id(contact);
  v1::ConvertLeadResponse converted;
  auto leads = api_->Stub<v1::LeadService>();
  grpc::Status status = leads->ConvertLead(Context().get(), convert, &converted);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(converted.contact_id(), contact);

  EXPECT_EQ(OpenCallBacks(), 1);
  EXPECT_EQ(OpenCallBackOf("CONTACT", contact), contact_call_back);
  EXPECT_EQ(
      Count("SELECT missed_calls FROM activities WHERE id = " + std::to_string(contact_call_back)),
      3);
  EXPECT_EQ(Count("SELECT count(*) FROM activities WHERE owner_type = 'LEAD'"), 0);
}

// Protects: two consumers applying one person's missed calls at once (their own transactions,
// the identity locks between them) leave one lead and one open call-back counting every call.
TEST_F(CallRulesTest, TwoConsumersOneCallBack) {
  auto other = inbound_->MakeProcessor();
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

// Protects: an answered outbound call completes call-backs by the person's normalised identity,
// not by the number as the provider spelled it: a call-back opened by a call from "+33612345678"
// on a deal since closed (the planner only reaches open deals) is completed by a call dialled as
// "0612345678" (the same E.164 identity).
TEST_F(CallRulesTest, CompletionMatchesTheIdentityNotTheRawNumber) {
  const int64_t contact = Contact("+33612345678");
  const int64_t deal = OpenDeal(contact);
  Apply({Encode({.id = "m1", .number = "+33612345678"})});
  ASSERT_NE(OpenCallBackOf("DEAL", deal), 0);
  Exec("UPDATE deals SET stage_id = 'WON', stage_semantics = 'SUCCESS' WHERE id = " +
       std::to_string(deal));
  Apply({Encode({.id = "o1",
                 .number = "0612345678",
                 .identity = "+33612345678",
                 .outcome = CallEvent::ANSWERED,
                 .direction = CallEvent::OUTBOUND,
                 .duration = 30})});
  EXPECT_EQ(OpenCallBacks(), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM activities WHERE call_back AND completed AND "
                  "completed_by_event_id = 'call:o1' AND owner_type = 'DEAL' AND owner_id = " +
                  std::to_string(deal)),
            1);
  EXPECT_EQ(inbound_->counters().calls.call_backs_completed.Value(), 1);
}

// Protects: a call-back is completed only for the records holding the dialled identity: a
// contact that held the number once (its call-back carries the same number string) but no longer
// does keeps its call-back open when the number's new holder is called back.
TEST_F(CallRulesTest, CompletionLeavesOtherRecordsCallBacksOpen) {
  const int64_t former = Contact("+33612345678");
  Apply({Encode({.id = "m1", .number = "+33612345678"})});
  ASSERT_NE(OpenCallBackOf("CONTACT", former), 0);
  // The number was reassigned: the former holder's phone is now another.
  Exec("UPDATE contact_identities SET value = '+33611111111' WHERE contact_id = " +
       std::to_string(former));
  const int64_t holder = Contact("+33612345678");
  Apply({Encode({.id = "m2", .number = "+33612345678"})});
  ASSERT_NE(OpenCallBackOf("CONTACT", holder), 0);
  ASSERT_EQ(Count("SELECT count(DISTINCT call_number) FROM activities WHERE call_back"), 1);

  Apply({Encode({.id = "o1",
                 .number = "+33612345678",
                 .outcome = CallEvent::ANSWERED,
                 .direction = CallEvent::OUTBOUND})});
  EXPECT_EQ(OpenCallBackOf("CONTACT", holder), 0);
  EXPECT_NE(OpenCallBackOf("CONTACT", former), 0);
  EXPECT_EQ(OpenCallBacks(), 1);
}

// Protects: a recording arriving late for an earlier missed call of a call-back (later missed
// calls replaced the call-back's latest call id) is attached to that call-back and kept with its
// call, not lost; a recording whose call nothing holds changes nothing and is counted.
TEST_F(CallRulesTest, LateRecordingOfAnEarlierMissedCallIsKept) {
  Apply({Encode({.id = "m1", .number = "+33612345678"}),
         Encode({.id = "m2", .number = "+33612345678"})});
  Apply({Encode({.id = "m3", .number = "+33612345678"})});
  ASSERT_EQ(OpenCallBacks(), 1);
  ASSERT_EQ(Text("SELECT call_id FROM activities WHERE call_back"), "generic:m3");
  const int64_t call_back = Count("SELECT id FROM activities WHERE call_back");
  EXPECT_EQ(
      Count("SELECT count(*) FROM activity_calls WHERE activity_id = " + std::to_string(call_back)),
      3);

  Apply({Recording("m1-rec", "generic:m1", "https://rec.example.com/m1.mp3")});
  EXPECT_EQ(Text("SELECT coalesce(call_recording_url, '') FROM activities WHERE id = " +
                 std::to_string(call_back)),
            "https://rec.example.com/m1.mp3");
  EXPECT_EQ(Text("SELECT recording_url FROM activity_calls WHERE call_id = 'generic:m1'"),
            "https://rec.example.com/m1.mp3");
  EXPECT_EQ(inbound_->counters().calls.recordings_attached.Value(), 1);

  // The latest call's own recording is what the activity shows; m1's stays with m1.
  Apply({Recording("m3-rec", "generic:m3", "https://rec.example.com/m3.mp3")});
  EXPECT_EQ(
      Text("SELECT call_recording_url FROM activities WHERE id = " + std::to_string(call_back)),
      "https://rec.example.com/m3.mp3");
  EXPECT_EQ(Text("SELECT recording_url FROM activity_calls WHERE call_id = 'generic:m1'"),
            "https://rec.example.com/m1.mp3");

  const int64_t activities = Count("SELECT count(*) FROM activities");
  Apply({Recording("x-rec", "generic:never-seen", "https://rec.example.com/x.mp3")});
  EXPECT_EQ(inbound_->counters().calls.recordings_unmatched.Value(), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM activities"), activities);
  EXPECT_EQ(Count("SELECT count(*) FROM activity_calls WHERE recording_url LIKE '%/x.mp3'"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM processed_events WHERE event_id = 'call:x-rec'"), 1);
}

// Protects: every recording of a call is kept on its activity and shown over gRPC
// (CallDetails.recording_urls, oldest first, each URL once): the event's own (several), late
// ones (two of one call in one batch, none lost), repeats once; a call-back keeps each folded
// voicemail's; an unidentified call its own and late ones (ListUnidentifiedCalls); a row an
// earlier release wrote with one URL reads as that URL and grows from it; past 20 per activity
// the rest are dropped and counted in crm_call_recordings_total{result="dropped"}.
TEST_F(CallRulesTest, EveryRecordingOfACallIsKeptAndShown) {
  const int64_t contact = Contact("+33612345678");
  auto rec = [](const std::string& name) { return "https://rec.example.com/" + name + ".mp3"; };
  Apply({Encode({.id = "a1",
                 .number = "+33612345678",
                 .outcome = CallEvent::ANSWERED,
                 .duration = 42,
                 .recording = rec("r2"),
                 .recordings = {rec("r1"), rec("r2")}})});
  Apply({Recording("a1-r3", "generic:a1", rec("r3")), Recording("a1-r4", "generic:a1", rec("r4")),
         Recording("a1-r1", "generic:a1", rec("r1"))});
  Apply({Recording("a1-r3b", "generic:a1", rec("r3"))});

  auto activities = api_->Stub<v1::ActivityService>();
  auto call_of = [&](int64_t owner) {
    v1::ListActivitiesRequest request;
    request.set_owner_type(v1::OWNER_TYPE_CONTACT);
    request.set_owner_id(owner);
    v1::ListActivitiesResponse response;
    EXPECT_TRUE(activities->ListActivities(Context().get(), request, &response).ok());
    EXPECT_EQ(response.activities_size(), 1);
    return response.activities_size() == 1 ? response.activities(0).call() : v1::CallDetails();
  };
  v1::CallDetails call = call_of(contact);
  EXPECT_EQ(std::vector<std::string>(call.recording_urls().begin(), call.recording_urls().end()),
            (std::vector<std::string>{rec("r1"), rec("r2"), rec("r3"), rec("r4")}));
  EXPECT_EQ(call.recording_url(), rec("r3"));  // the latest received
  EXPECT_EQ(inbound_->counters().calls.recordings_attached.Value(), 4);

  // A call-back of two voicemails, each with its recording, in two batches.
  const int64_t other = Contact("+33611111111");
  Apply({Encode({.id = "v1",
                 .number = "+33611111111",
                 .outcome = CallEvent::VOICEMAIL,
                 .recordings = {rec("v1")}})});
  Apply({Encode({.id = "v2",
                 .number = "+33611111111",
                 .outcome = CallEvent::VOICEMAIL,
                 .recording = rec("v2")})});  // an earlier producer: the one URL
  call = call_of(other);
  EXPECT_TRUE(call.call_back());
  EXPECT_EQ(call.missed_calls(), 2);
  EXPECT_EQ(std::vector<std::string>(call.recording_urls().begin(), call.recording_urls().end()),
            (std::vector<std::string>{rec("v1"), rec("v2")}));

  // An unidentified call: its own recordings and a late one.
  Apply({Encode({.id = "x1", .number = "anonymous", .recordings = {rec("x1"), rec("x2")}})});
  Apply({Recording("x1-r3", "generic:x1", rec("x3"))});
  auto calls = api_->Stub<v1::CallService>();
  v1::ListUnidentifiedCallsRequest list;
  v1::ListUnidentifiedCallsResponse listed;
  ASSERT_TRUE(calls->ListUnidentifiedCalls(Context().get(), list, &listed).ok());
  ASSERT_EQ(listed.calls_size(), 1);
  EXPECT_EQ(std::vector<std::string>(listed.calls(0).recording_urls().begin(),
                                     listed.calls(0).recording_urls().end()),
            (std::vector<std::string>{rec("x1"), rec("x2"), rec("x3")}));
  EXPECT_EQ(listed.calls(0).recording_url(), rec("x3"));

  // A row an earlier release wrote: one URL, no list.
  Exec("UPDATE activities SET call_recording_urls = '{}', call_recording_url = '" + rec("old") +
       "' WHERE owner_id = " + std::to_string(other));
  call = call_of(other);
  EXPECT_EQ(std::vector<std::string>(call.recording_urls().begin(), call.recording_urls().end()),
            std::vector<std::string>{rec("old")});
  Apply({Recording("v2-r", "generic:v2", rec("v2b"))});
  call = call_of(other);
  EXPECT_EQ(std::vector<std::string>(call.recording_urls().begin(), call.recording_urls().end()),
            (std::vector<std::string>{rec("old"), rec("v2b")}));

  // The cap: 4 kept, 25 more offered in one batch (one twice): 16 kept, 9 dropped and counted.
  std::vector<kafka::Message> many;
  for (int i = 0; i < 25; ++i) {
    many.push_back(
        Recording("many-" + std::to_string(i), "generic:a1", rec("m" + std::to_string(i))));
  }
  many.push_back(Recording("many-again", "generic:a1", rec("m0")));
  Apply(many);
  call = call_of(contact);
  ASSERT_EQ(call.recording_urls_size(), 20);
  EXPECT_EQ(call.recording_urls(4), rec("m0"));
  EXPECT_EQ(call.recording_urls(19), rec("m15"));
  EXPECT_EQ(inbound_->counters().calls.recordings_dropped.Value(), 9);
}

// Protects: the call counters count what the batches committed: calls by direction and
// outcome, call-backs created, updated (folded) and completed, unidentified calls; a replayed
// event counts nothing again.
TEST_F(CallRulesTest, CallCountersCountWhatWasCommitted) {
  CallCounters& calls = inbound_->counters().calls;
  Apply({Encode({.id = "m1", .number = "+33612345678"}),
         Encode({.id = "m2", .number = "+33612345678", .outcome = CallEvent::BUSY})});
  Apply({Encode({.id = "m3", .number = "+33612345678"})});
  Apply({Encode({.id = "m3", .number = "+33612345678"})});  // replayed
  Apply({Encode({.id = "o1",
                 .number = "+33612345678",
                 .outcome = CallEvent::ANSWERED,
                 .direction = CallEvent::OUTBOUND})});
  Apply({Encode({.id = "x1", .number = "anonymous"})});
  EXPECT_EQ(calls.calls.WithLabels({"inbound", "missed"}).Value(), 3);  // m1, m3, x1
  EXPECT_EQ(calls.calls.WithLabels({"inbound", "busy"}).Value(), 1);
  EXPECT_EQ(calls.calls.WithLabels({"outbound", "answered"}).Value(), 1);
  EXPECT_EQ(calls.call_backs_created.Value(), 1);
  EXPECT_EQ(calls.call_backs_updated.Value(), 2);  // m2 (folded within its batch) and m3
  EXPECT_EQ(calls.call_backs_completed.Value(), 1);
  EXPECT_EQ(calls.unidentified.Value(), 1);
  const std::string rendered = inbound_->registry().Render();
  EXPECT_NE(rendered.find("crm_calls_total{direction=\"outbound\",outcome=\"answered\"} 1"),
            std::string::npos)
      << rendered;
  EXPECT_NE(rendered.find("crm_call_backs_total{change=\"completed\"} 1"), std::string::npos);
}

// Protects: unidentified calls are kept CRM_UNIDENTIFIED_CALLS_RETENTION_DAYS, then deleted
// oldest first in statements of at most the batch size, a pass running a bounded number of them
// (the rest at the next pass); recent ones stay; every deletion is counted.
TEST_F(CallRulesTest, UnidentifiedCallsArePrunedInBoundedBatches) {
  for (int i = 0; i < 7; ++i) {
    Apply({Encode({.id = "x" + std::to_string(i), .number = "anonymous"})});
  }
  Exec(
      "UPDATE unidentified_calls SET created_at = now() - interval '91 days' WHERE call_id IN "
      "('generic:x0', 'generic:x1', 'generic:x2', 'generic:x3', 'generic:x4')");
  metrics::Registry registry;
  CallRetentionCounters counters(registry);
  pqxx::connection connection(api_->database_url());
  pg::PrepareAll(connection, Statements());
  const CallRetentionOptions options{.retention_days = 90, .batch = 2, .max_batches_per_pass = 2};
  auto first = PruneUnidentifiedCalls(connection, options, counters);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(*first, 4u);  // two statements of two: the pass's bound
  auto second = PruneUnidentifiedCalls(connection, options, counters);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(*second, 1u);
  EXPECT_EQ(Count("SELECT count(*) FROM unidentified_calls"), 2);
  EXPECT_EQ(Count("SELECT count(*) FROM unidentified_calls WHERE call_id IN ('generic:x5', "
                  "'generic:x6')"),
            2);
  EXPECT_EQ(counters.pruned.Value(), 5);
  auto third = PruneUnidentifiedCalls(connection, options, counters);
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(*third, 0u);
}

// Protects: a phone extension is one user's; another user asking for it (created or updated) is
// ALREADY_EXISTS naming the extension and its user, not a bare conflict; the holder may keep it.
TEST_F(CallRulesTest, DuplicateExtensionNamesItsUser) {
  auto users = api_->Stub<v1::UserService>();
  v1::CreateUserRequest create;
  create.mutable_user()->set_name("Carol");
  create.mutable_user()->set_extension("201");
  v1::User user;
  grpc::Status status = users->CreateUser(Context().get(), create, &user);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  const std::string named = "extension 201 is already used by user " + std::to_string(alice_);
  EXPECT_NE(status.error_message().find(named), std::string::npos) << status.error_message();
  EXPECT_EQ(Count("SELECT count(*) FROM users WHERE name = 'Carol'"), 0);

  v1::UpdateUserRequest update;
  update.mutable_user()->set_id(bob_);
  update.mutable_user()->set_extension("201");
  update.mutable_update_mask()->add_paths("extension");
  status = users->UpdateUser(Context().get(), update, &user);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_NE(status.error_message().find(named), std::string::npos) << status.error_message();
  EXPECT_EQ(Count("SELECT count(*) FROM users WHERE extension IS NOT NULL"), 1);

  update.mutable_user()->set_id(alice_);  // the holder keeps it
  status = users->UpdateUser(Context().get(), update, &user);
  EXPECT_TRUE(status.ok()) << status.error_message();
}

// Protects: crm_call_backs_total{change="updated"} counts every missed call folded into an
// existing call-back, whatever the batching: three missed calls of one number in one batch make
// one call-back (created 1, updated 2); three more in one batch onto that open call-back update
// it three times; the sum of created and updated is the call-back's missed-call count.
TEST_F(CallRulesTest, CallBackCountersCountEveryMissedCallOfABatch) {
  CallCounters& calls = inbound_->counters().calls;
  Apply({Encode({.id = "b1", .number = "+33612345678"}),
         Encode({.id = "b2", .number = "+33612345678"}),
         Encode({.id = "b3", .number = "+33612345678", .outcome = CallEvent::BUSY})});
  EXPECT_EQ(calls.call_backs_created.Value(), 1);
  EXPECT_EQ(calls.call_backs_updated.Value(), 2);
  Apply({Encode({.id = "b4", .number = "+33612345678"}),
         Encode({.id = "b5", .number = "+33612345678"}),
         Encode({.id = "b6", .number = "+33612345678"})});
  EXPECT_EQ(OpenCallBacks(), 1);
  EXPECT_EQ(Count("SELECT missed_calls FROM activities WHERE call_back"), 6);
  EXPECT_EQ(calls.call_backs_created.Value(), 1);
  EXPECT_EQ(calls.call_backs_updated.Value(), 5);
  // A known contact: a batch folding two missed calls, an answered outbound call, then two more
  // (a new call-back after the completion, in the same batch).
  Contact("+33611111111");
  Apply({Encode({.id = "k1", .number = "+33611111111"}),
         Encode({.id = "k2", .number = "+33611111111"}),
         Encode({.id = "k3",
                 .number = "+33611111111",
                 .outcome = CallEvent::ANSWERED,
                 .direction = CallEvent::OUTBOUND,
                 .duration = 30}),
         Encode({.id = "k4", .number = "+33611111111"}),
         Encode({.id = "k5", .number = "+33611111111"})});
  EXPECT_EQ(calls.call_backs_created.Value(), 3);
  EXPECT_EQ(calls.call_backs_updated.Value(), 7);
  EXPECT_EQ(calls.call_backs_completed.Value(), 1);
  EXPECT_EQ(
      Count("SELECT sum(missed_calls) FROM activities WHERE call_back"),
      static_cast<int64_t>(calls.call_backs_created.Value() + calls.call_backs_updated.Value() +
                           calls.call_backs_already_reached.Value()));
  EXPECT_NE(inbound_->registry().Render().find("crm_call_backs_total{change=\"updated\"} 7"),
            std::string::npos);
}

// Protects: a call activity shows when the call happened, as the provider timed it, over gRPC
// (CallDetails start_time, answer_time, end_time), not only when crm-core applied it: an answered
// call its start, answer and end; a call-back its latest missed call's start and end (no
// answer); an unidentified call its own; a time more than a day ahead of the server's clock is
// left unset, and the event is still applied.
TEST_F(CallRulesTest, CallActivitiesShowWhenTheCallHappened) {
  const int64_t contact = Contact("+33612345678");
  const int64_t start = 1767225600;  // 2026-01-01T00:00:00Z
  Apply({Encode({.id = "a1",
                 .number = "+33612345678",
                 .outcome = CallEvent::ANSWERED,
                 .duration = 50,
                 .ended_unix = start + 60,
                 .started_unix = start,
                 .answered_unix = start + 10})});
  const int64_t other = Contact("+33611111111");
  Apply({Encode({.id = "m1",
                 .number = "+33611111111",
                 .ended_unix = start + 100,
                 .started_unix = start + 80})});
  Apply({Encode({.id = "m2",
                 .number = "+33611111111",
                 .ended_unix = start + 300,
                 .started_unix = start + 280})});
  const int64_t future = std::time(nullptr) + 3 * 86400;
  Apply({Encode({.id = "f1",
                 .number = "+33622222222",
                 .outcome = CallEvent::ANSWERED,
                 .duration = 5,
                 .ended_unix = future + 5,
                 .started_unix = future})});
  Apply({Encode(
      {.id = "x1", .number = "anonymous", .ended_unix = start + 20, .started_unix = start})});

  auto activities = api_->Stub<v1::ActivityService>();
  auto call_of = [&](v1::OwnerType type, int64_t owner) {
    v1::ListActivitiesRequest request;
    request.set_owner_type(type);
    request.set_owner_id(owner);
    v1::ListActivitiesResponse response;
    EXPECT_TRUE(activities->ListActivities(Context().get(), request, &response).ok());
    EXPECT_EQ(response.activities_size(), 1);
    return response.activities_size() == 1 ? response.activities(0).call() : v1::CallDetails();
  };
  v1::CallDetails answered = call_of(v1::OWNER_TYPE_CONTACT, contact);
  EXPECT_EQ(answered.start_time().seconds(), start);
  EXPECT_EQ(answered.answer_time().seconds(), start + 10);
  EXPECT_EQ(answered.end_time().seconds(), start + 60);

  v1::CallDetails call_back = call_of(v1::OWNER_TYPE_CONTACT, other);
  EXPECT_TRUE(call_back.call_back());
  EXPECT_EQ(call_back.missed_calls(), 2);
  EXPECT_EQ(call_back.start_time().seconds(), start + 280);  // the latest missed call
  EXPECT_EQ(call_back.end_time().seconds(), start + 300);
  EXPECT_FALSE(call_back.has_answer_time());
  EXPECT_EQ(call_back.last_attempt_time().seconds(), start + 300);

  const int64_t lead = Count("SELECT lead_id FROM lead_identities WHERE value = '+33622222222'");
  v1::CallDetails skewed = call_of(v1::OWNER_TYPE_LEAD, lead);
  EXPECT_EQ(skewed.duration_seconds(), 5);
  EXPECT_FALSE(skewed.has_start_time());
  EXPECT_FALSE(skewed.has_end_time());

  auto calls = api_->Stub<v1::CallService>();
  v1::ListUnidentifiedCallsRequest list;
  v1::ListUnidentifiedCallsResponse listed;
  ASSERT_TRUE(calls->ListUnidentifiedCalls(Context().get(), list, &listed).ok());
  ASSERT_EQ(listed.calls_size(), 1);
  EXPECT_EQ(listed.calls(0).start_time().seconds(), start);
  EXPECT_EQ(listed.calls(0).end_time().seconds(), start + 20);
  EXPECT_FALSE(listed.calls(0).has_answer_time());
}

// Protects: each unidentified call says why it is listed, over gRPC: a withheld caller
// WITHHELD, a SIP user (no phone number) NOT_A_PHONE_NUMBER, an outbound call to a number no
// record holds OUTBOUND_UNKNOWN_NUMBER; a row an earlier release wrote (no reason) reads from
// its direction; the list filters by reason (pages too), and an unknown reason value is
// INVALID_ARGUMENT.
TEST_F(CallRulesTest, UnidentifiedCallsSayWhy) {
  Apply({Encode({.id = "w1", .number = "anonymous"}),
         Encode({.id = "s1", .number = "sip:alice@pbx.example.com", .no_identity = true}),
         Encode({.id = "o1",
                 .number = "+33633333333",
                 .outcome = CallEvent::ANSWERED,
                 .direction = CallEvent::OUTBOUND,
                 .duration = 12}),
         Encode({.id = "o2",
                 .number = "+33644444444",
                 .outcome = CallEvent::BUSY,
                 .direction = CallEvent::OUTBOUND})});
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 0);
  EXPECT_EQ(Text("SELECT string_agg(call_id || '=' || reason, ',' ORDER BY call_id) FROM "
                 "unidentified_calls"),
            "generic:o1=OUTBOUND_UNKNOWN_NUMBER,generic:o2=OUTBOUND_UNKNOWN_NUMBER,"
            "generic:s1=NOT_A_PHONE_NUMBER,generic:w1=WITHHELD");
  // Two rows as an earlier release wrote them.
  Exec(
      "INSERT INTO unidentified_calls (call_id, direction, outcome, from_number, to_number, "
      "origin_event_id) VALUES ('generic:old-out', 'OUTBOUND', 'ANSWERED', '" +
      std::string(kLine) +
      "', '+33655555555', 'call:old-out'), ('generic:old-in', 'INBOUND', 'MISSED', "
      "'anonymous', '" +
      std::string(kLine) + "', 'call:old-in')");

  auto calls = api_->Stub<v1::CallService>();
  auto list = [&](v1::UnidentifiedReason reason) {
    std::map<std::string, v1::UnidentifiedReason> seen;
    v1::ListUnidentifiedCallsRequest request;
    request.set_reason(reason);
    request.set_page_size(1);
    for (int page = 0; page < 10; ++page) {
      v1::ListUnidentifiedCallsResponse response;
      grpc::Status status = calls->ListUnidentifiedCalls(Context().get(), request, &response);
      EXPECT_TRUE(status.ok()) << status.error_message();
      for (const v1::UnidentifiedCall& call : response.calls())
        seen[call.call_id()] = call.reason();
      if (response.next_page_token().empty()) break;
      request.set_page_token(response.next_page_token());
    }
    return seen;
  };
  const auto all = list(v1::UNIDENTIFIED_REASON_UNSPECIFIED);
  EXPECT_EQ(all, (std::map<std::string, v1::UnidentifiedReason>{
                     {"generic:w1", v1::UNIDENTIFIED_REASON_WITHHELD},
                     {"generic:s1", v1::UNIDENTIFIED_REASON_NOT_A_PHONE_NUMBER},
                     {"generic:o1", v1::UNIDENTIFIED_REASON_OUTBOUND_UNKNOWN_NUMBER},
                     {"generic:o2", v1::UNIDENTIFIED_REASON_OUTBOUND_UNKNOWN_NUMBER},
                     {"generic:old-out", v1::UNIDENTIFIED_REASON_OUTBOUND_UNKNOWN_NUMBER},
                     {"generic:old-in", v1::UNIDENTIFIED_REASON_WITHHELD}}));
  EXPECT_EQ(list(v1::UNIDENTIFIED_REASON_OUTBOUND_UNKNOWN_NUMBER),
            (std::map<std::string, v1::UnidentifiedReason>{
                {"generic:o1", v1::UNIDENTIFIED_REASON_OUTBOUND_UNKNOWN_NUMBER},
                {"generic:o2", v1::UNIDENTIFIED_REASON_OUTBOUND_UNKNOWN_NUMBER},
                {"generic:old-out", v1::UNIDENTIFIED_REASON_OUTBOUND_UNKNOWN_NUMBER}}));
  EXPECT_EQ(list(v1::UNIDENTIFIED_REASON_NOT_A_PHONE_NUMBER),
            (std::map<std::string, v1::UnidentifiedReason>{
                {"generic:s1", v1::UNIDENTIFIED_REASON_NOT_A_PHONE_NUMBER}}));

  v1::ListUnidentifiedCallsRequest bad;
  bad.set_reason(static_cast<v1::UnidentifiedReason>(42));
  v1::ListUnidentifiedCallsResponse none;
  EXPECT_EQ(calls->ListUnidentifiedCalls(Context().get(), bad, &none).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

// Protects: MergeContacts of two contacts that both had an open call-back folds them into one in
// the merge's transaction: the kept call-back holds the missed calls and every recording of both
// (each URL once, the kept one's first), the folded one is completed, and the kept contact's
// timeline (ListHistory) has a MERGED "call_back" line saying which went into which. A merge
// whose kept record had no call-back moves the folded one over and writes no such line.
TEST_F(CallRulesTest, MergeFoldsCallBacksWithTheirRecordings) {
  auto rec = [](const std::string& name) { return "https://rec.example.com/" + name + ".mp3"; };
  const int64_t kept = Contact("+33612345678");
  const int64_t folded = Contact("+33699999999");
  const int64_t third = Contact("+33688888888");
  Apply({Encode({.id = "v1",
                 .number = "+33612345678",
                 .outcome = CallEvent::VOICEMAIL,
                 .recordings = {rec("v1")}}),
         Encode({.id = "v2",
                 .number = "+33699999999",
                 .outcome = CallEvent::VOICEMAIL,
                 .recordings = {rec("v2")}})});
  Apply({Encode({.id = "v3",
                 .number = "+33699999999",
                 .outcome = CallEvent::VOICEMAIL,
                 .recordings = {rec("v3"), rec("v1")}})});
  const int64_t kept_call_back = OpenCallBackOf("CONTACT", kept);
  const int64_t folded_call_back = OpenCallBackOf("CONTACT", folded);
  ASSERT_NE(kept_call_back, 0);
  ASSERT_NE(folded_call_back, 0);

  auto contacts = api_->Stub<v1::ContactService>();
  v1::MergeContactsRequest merge;
  merge.set_kept_id(kept);
  merge.add_folded_ids(folded);
  v1::MergeContactsResponse merged;
  ASSERT_TRUE(contacts->MergeContacts(Context().get(), merge, &merged).ok());

  EXPECT_EQ(OpenCallBacks(), 1);
  auto activities = api_->Stub<v1::ActivityService>();
  v1::ListActivitiesRequest request;
  request.set_owner_type(v1::OWNER_TYPE_CONTACT);
  request.set_owner_id(kept);
  v1::ListActivitiesResponse listed;
  ASSERT_TRUE(activities->ListActivities(Context().get(), request, &listed).ok());
  std::map<int64_t, v1::Activity> by_id;
  for (const v1::Activity& each : listed.activities()) by_id[each.id()] = each;
  ASSERT_EQ(by_id.size(), 2u);
  const v1::Activity& kept_one = by_id[kept_call_back];
  EXPECT_FALSE(kept_one.completed());
  EXPECT_EQ(kept_one.call().missed_calls(), 3);
  EXPECT_EQ(std::vector<std::string>(kept_one.call().recording_urls().begin(),
                                     kept_one.call().recording_urls().end()),
            (std::vector<std::string>{rec("v1"), rec("v2"), rec("v3")}));
  EXPECT_TRUE(by_id[folded_call_back].completed());

  auto history = api_->Stub<v1::HistoryService>();
  auto call_back_lines = [&](int64_t contact) {
    v1::ListHistoryRequest timeline;
    timeline.mutable_entity()->set_type(v1::OWNER_TYPE_CONTACT);
    timeline.mutable_entity()->set_id(contact);
    v1::ListHistoryResponse entries;
    EXPECT_TRUE(history->ListHistory(Context().get(), timeline, &entries).ok());
    std::vector<v1::HistoryEntry> lines;
    for (const v1::HistoryEntry& entry : entries.entries()) {
      if (entry.kind() == "MERGED" && entry.field() == "call_back") lines.push_back(entry);
    }
    return lines;
  };
  std::vector<v1::HistoryEntry> lines = call_back_lines(kept);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].related().id(), folded);
  EXPECT_EQ(lines[0].old_value(),
            "activity " + std::to_string(folded_call_back) + ": 2 missed calls, 3 recordings");
  EXPECT_EQ(lines[0].new_value(),
            "activity " + std::to_string(kept_call_back) + ": 3 missed calls, 3 recordings");

  // The third contact has no call-back: merging the kept one into it moves the call-back over.
  v1::MergeContactsRequest again;
  again.set_kept_id(third);
  again.add_folded_ids(kept);
  ASSERT_TRUE(contacts->MergeContacts(Context().get(), again, &merged).ok());
  EXPECT_EQ(OpenCallBackOf("CONTACT", third), kept_call_back);
  EXPECT_TRUE(call_back_lines(third).empty());
}

// Protects: recordings that come before their call was settled (Twilio's voicemail: both
// recording callbacks before the parent's "completed", each published as its own event marked
// carried_by_call) find no call yet and are counted deferred, not unmatched; the call's event,
// which carries them, puts both on its call-back; only a recording no call holds and no call
// carries is unmatched (trial 89c #6: every such voicemail read "unmatched 2, attached 0" with
// two warnings).
TEST_F(CallRulesTest, RecordingsBeforeTheirCallAreDeferredNotUnmatched) {
  auto rec = [](const std::string& name) { return "https://api.twilio.com/rec/" + name; };
  Apply({Recording("vm-rec1", "generic:vm", rec("RE1"), /*carried=*/true)});
  Apply({Recording("vm-rec2", "generic:vm", rec("RE2"), /*carried=*/true)});
  const auto& counters = inbound_->counters().calls;
  EXPECT_EQ(counters.recordings_deferred.Value(), 2);
  EXPECT_EQ(counters.recordings_unmatched.Value(), 0);
  EXPECT_EQ(counters.recordings_attached.Value(), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM activities"), 0);

  Apply({Encode({.id = "vm",
                 .number = "+33641000072",
                 .outcome = CallEvent::VOICEMAIL,
                 .recordings = {rec("RE1"), rec("RE2")}})});
  EXPECT_EQ(OpenCallBacks(), 1);
  EXPECT_EQ(Text("SELECT array_to_string(call_recording_urls, ',') FROM activities WHERE "
                 "call_back"),
            rec("RE1") + "," + rec("RE2"));
  EXPECT_EQ(counters.recordings_deferred.Value(), 2);
  EXPECT_EQ(counters.recordings_unmatched.Value(), 0);

  // No call holds it and none carries it: lost, and said so.
  Apply({Recording("lost-rec", "generic:never-seen", rec("RE9"))});
  EXPECT_EQ(counters.recordings_unmatched.Value(), 1);
  EXPECT_EQ(counters.recordings_deferred.Value(), 2);
}

// Protects: the recordings a call-back fold leaves out past the cap (20 per call-back) are
// counted, by a merge and by a conversion: MergeContacts of a contact whose call-back holds 15
// recordings with one whose call-back holds 10 (one of them the kept one's too) keeps 20 and
// counts 4 dropped (the shared URL is kept, not dropped); ConvertLead of a lead with 3 new
// recordings onto that contact keeps 20 and counts 3 more. The counter moves only for what a
// committed fold left out (a merge without a cut adds nothing).
TEST_F(CallRulesTest, FoldedCallBackRecordingsPastTheCapAreCounted) {
  auto urls = [](const std::string& prefix, int count) {
    std::vector<std::string> list;
    for (int i = 0; i < count; ++i) {
      list.push_back("https://rec.example.com/" + prefix + std::to_string(i) + ".mp3");
    }
    return list;
  };
  auto dropped = [this] {
    return testing::MetricValue(api_->registry().Render(),
                                "crm_call_back_fold_recordings_dropped_total")
        .value_or(-1);
  };
  const int64_t kept = Contact("+33612345678");
  const int64_t folded = Contact("+33699999999");
  std::vector<std::string> folded_urls = urls("f", 9);
  folded_urls.push_back("https://rec.example.com/k0.mp3");  // the kept one's too
  Apply({Encode({.id = "c1",
                 .number = "+33612345678",
                 .outcome = CallEvent::VOICEMAIL,
                 .recordings = urls("k", 15)}),
         Encode({.id = "c2",
                 .number = "+33699999999",
                 .outcome = CallEvent::VOICEMAIL,
                 .recordings = folded_urls})});
  const int64_t kept_call_back = OpenCallBackOf("CONTACT", kept);
  ASSERT_NE(kept_call_back, 0);
  EXPECT_EQ(dropped(), 0);

  auto contacts = api_->Stub<v1::ContactService>();
  v1::MergeContactsRequest merge;
  merge.set_kept_id(kept);
  merge.add_folded_ids(folded);
  v1::MergeContactsResponse merged;
  ASSERT_TRUE(contacts->MergeContacts(Context().get(), merge, &merged).ok());
  EXPECT_EQ(OpenCallBacks(), 1);
  EXPECT_EQ(Count("SELECT cardinality(call_recording_urls) FROM activities WHERE id = " +
                  std::to_string(kept_call_back)),
            20);
  EXPECT_EQ(dropped(), 4);

  // A lead (unknown number) with three recordings, converted onto the full contact.
  Apply({Encode({.id = "c3",
                 .number = "+33677777777",
                 .outcome = CallEvent::VOICEMAIL,
                 .recordings = urls("l", 3)})});
  const int64_t lead = Count("SELECT lead_id FROM lead_identities WHERE value = '+33677777777'");
  ASSERT_NE(OpenCallBackOf("LEAD", lead), 0);
  v1::ConvertLeadRequest convert;
  convert.set_lead_id(lead);
  convert.set_produce(v1::CONVERSION_PRODUCE_CONTACT);
  convert.set_contact_id(kept);
  v1::ConvertLeadResponse converted;
  auto leads = api_->Stub<v1::LeadService>();
  grpc::Status status = leads->ConvertLead(Context().get(), convert, &converted);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(OpenCallBacks(), 1);
  EXPECT_EQ(dropped(), 7);

  // A merge with nothing to cut counts nothing.
  const int64_t third = Contact("+33688888888");
  v1::MergeContactsRequest again;
  again.set_kept_id(third);
  again.add_folded_ids(kept);
  ASSERT_TRUE(contacts->MergeContacts(Context().get(), again, &merged).ok());
  EXPECT_EQ(dropped(), 7);
}

// Protects: what ActivityService's Update and Delete may do to a call-back without breaking the
// telephony rules. Its subject and description stay as the calls wrote them (each further missed
// call rewrites the description: an edit would be lost), FAILED_PRECONDITION and nothing changed;
// its deadline and responsible change. Completed over UpdateActivity, a further missed call opens
// a new one; reopening the first while that one is open is FAILED_PRECONDITION naming it (one
// open call-back per record, never an index violation); once the new one is deleted (its calls
// with it), the first reopens and folds the next missed call.
TEST_F(CallRulesTest, CallBacksEditedCompletedReopenedAndDeletedOverTheApi) {
  const int64_t contact = Contact("+33612345678");
  Apply({Encode({.id = "e1", .number = "+33612345678"})});
  const int64_t first = OpenCallBackOf("CONTACT", contact);
  ASSERT_NE(first, 0);
  auto stub = api_->Stub<v1::ActivityService>();
  auto update = [&](int64_t id, const std::function<void(v1::Activity&)>& set,
                    const std::string& path) {
    v1::UpdateActivityRequest request;
    request.mutable_activity()->set_id(id);
    set(*request.mutable_activity());
    request.mutable_update_mask()->add_paths(path);
    v1::Activity response;
    return stub->UpdateActivity(Context().get(), request, &response);
  };
  const std::string before =
      Text("SELECT a::text FROM activities AS a WHERE id = " + std::to_string(first));
  for (const char* path : {"subject", "description"}) {
    grpc::Status refused = update(
        first,
        [](v1::Activity& a) {
          a.set_subject("Done");
          a.set_description("Edited");
        },
        path);
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << path;
    EXPECT_NE(refused.error_message().find("inbound event call:e1"), std::string::npos)
        << refused.error_message();
  }
  EXPECT_EQ(Text("SELECT a::text FROM activities AS a WHERE id = " + std::to_string(first)),
            before);
  ASSERT_TRUE(
      update(
          first, [](v1::Activity& a) { a.mutable_deadline()->set_seconds(4102444800); }, "deadline")
          .ok());
  ASSERT_TRUE(
      update(
          first, [&](v1::Activity& a) { a.set_responsible_user_id(alice_); }, "responsible_user_id")
          .ok());
  ASSERT_TRUE(update(
                  first, [](v1::Activity& a) { a.set_completed(true); }, "completed")
                  .ok());
  EXPECT_EQ(OpenCallBacks(), 0);

  Apply({Encode({.id = "e2", .number = "+33612345678"})});
  const int64_t second = OpenCallBackOf("CONTACT", contact);
  ASSERT_NE(second, 0);
  ASSERT_NE(second, first);
  grpc::Status refused = update(
      first, [](v1::Activity& a) { a.set_completed(false); }, "completed");
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(refused.error_message().find("activity " + std::to_string(second)), std::string::npos)
      << refused.error_message();
  EXPECT_EQ(OpenCallBackOf("CONTACT", contact), second);

  v1::DeleteActivityRequest remove;
  remove.set_id(second);
  google::protobuf::Empty empty;
  ASSERT_TRUE(stub->DeleteActivity(Context().get(), remove, &empty).ok());
  EXPECT_EQ(Count("SELECT count(*) FROM activity_calls WHERE call_id = 'generic:e2'"), 0);
  ASSERT_TRUE(update(
                  first, [](v1::Activity& a) { a.set_completed(false); }, "completed")
                  .ok());
  EXPECT_EQ(Count("SELECT count(*) FROM activities WHERE completed_at IS NULL AND id = " +
                  std::to_string(first)),
            1);

  Apply({Encode({.id = "e3", .number = "+33612345678"})});
  EXPECT_EQ(OpenCallBacks(), 1);
  EXPECT_EQ(OpenCallBackOf("CONTACT", contact), first);
  EXPECT_EQ(Count("SELECT missed_calls FROM activities WHERE id = " + std::to_string(first)), 2);
  EXPECT_EQ(Count("SELECT activity_id FROM activity_calls WHERE call_id = 'generic:e3'"), first);
  EXPECT_EQ(Count("SELECT responsible_user_id FROM activities WHERE id = " + std::to_string(first)),
            alice_);
}

}  // namespace
}  // namespace leadflow::crm
