// ActivityService over gRPC against a real PostgreSQL: Get, Update (field masks, etags, completing
// and reopening), Delete, CreateActivity logging what is done already, the overdue list, roles and
// hostile input (docs/api.md, "ActivityService").

#include <google/protobuf/util/time_util.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "crm-core/api/common/auth.h"
#include "testing/crm.h"
#include "testing/testing.h"

namespace leadflow::crm {
namespace {

using namespace std::chrono_literals;
using google::protobuf::util::TimeUtil;

constexpr char kAdminKey[] = "test-admin-key-0123456789";
constexpr char kIntegrationKey[] = "test-integration-key-0123456789";
constexpr char kReadOnlyKey[] = "test-read-only-key-0123456789";

class ActivityApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    api_ = std::make_unique<testing::CrmApi>(
        testing::CrmApiOptions{.keys = {{kAdminKey, Role::kAdmin},
                                        {kIntegrationKey, Role::kIntegration},
                                        {kReadOnlyKey, Role::kReadOnly}}});
    activities_ = api_->Stub<v1::ActivityService>();
    deals_ = api_->Stub<v1::DealService>();
    leads_ = api_->Stub<v1::LeadService>();
    ann_ = Count("INSERT INTO users (name) VALUES ('Ann') RETURNING id");
    bob_ = Count("INSERT INTO users (name) VALUES ('Bob') RETURNING id");
  }

  static std::unique_ptr<grpc::ClientContext> Context(const char* key = kIntegrationKey) {
    return testing::CallContext(key, 30s);
  }
  int64_t Count(const std::string& sql) { return api_->Scalar(sql); }
  std::string Text(const std::string& sql) { return api_->Text(sql); }
  void Exec(const std::string& sql) { api_->Exec(sql); }
  // Every row of activities (and email_messages, activity_calls), for "nothing changed".
  std::string Rows() {
    return Text(
        "SELECT concat_ws('#', (SELECT string_agg(a::text, '|' ORDER BY id) FROM activities AS a),"
        " (SELECT string_agg(m.id || ':' || coalesce(m.activity_id, 0), '|' ORDER BY id)"
        "  FROM email_messages AS m),"
        " (SELECT string_agg(c::text, '|' ORDER BY call_id) FROM activity_calls AS c),"
        " (SELECT string_agg(d.id || ':' || d.last_activity_at, '|' ORDER BY id) FROM deals AS "
        "d))");
  }

  int64_t NewDeal(int64_t responsible = 0) {
    v1::CreateDealRequest request;
    request.mutable_deal()->set_title("Kitchen");
    request.mutable_deal()->set_responsible_user_id(responsible);
    v1::Deal deal;
    grpc::Status status = deals_->CreateDeal(Context().get(), request, &deal);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return deal.id();
  }
  int64_t NewLead() {
    v1::CreateLeadRequest request;
    request.mutable_lead()->set_title("Walk-in");
    request.mutable_lead()->set_first_name("Léa");
    v1::Lead lead;
    grpc::Status status = leads_->CreateLead(Context().get(), request, &lead);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return lead.id();
  }
  grpc::Status Create(v1::OwnerType owner_type, int64_t owner_id, const std::string& subject,
                      v1::Activity* out, int64_t deadline_seconds = 4102444800,
                      const std::function<void(v1::Activity&)>& more = {}) {
    v1::CreateActivityRequest request;
    v1::Activity* activity = request.mutable_activity();
    activity->set_type(v1::ACTIVITY_TYPE_TASK);
    activity->set_owner_type(owner_type);
    activity->set_owner_id(owner_id);
    activity->set_subject(subject);
    activity->mutable_deadline()->set_seconds(deadline_seconds);
    if (more) more(*activity);
    return activities_->CreateActivity(Context().get(), request, out);
  }
  v1::Activity MustCreate(v1::OwnerType owner_type, int64_t owner_id,
                          int64_t deadline_seconds = 4102444800) {
    v1::Activity activity;
    grpc::Status status = Create(owner_type, owner_id, "Call back", &activity, deadline_seconds);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return activity;
  }
  grpc::Status Update(const v1::Activity& activity, const std::vector<std::string>& paths,
                      v1::Activity* out, const char* key = kIntegrationKey) {
    v1::UpdateActivityRequest request;
    *request.mutable_activity() = activity;
    for (const std::string& path : paths) request.mutable_update_mask()->add_paths(path);
    return activities_->UpdateActivity(Context(key).get(), request, out);
  }
  grpc::Status Get(int64_t id, v1::Activity* out, const char* key = kIntegrationKey) {
    v1::GetActivityRequest request;
    request.set_id(id);
    return activities_->GetActivity(Context(key).get(), request, out);
  }
  grpc::Status Delete(int64_t id, const std::string& etag = "", const char* key = kIntegrationKey) {
    v1::DeleteActivityRequest request;
    request.set_id(id);
    request.set_etag(etag);
    google::protobuf::Empty empty;
    return activities_->DeleteActivity(Context(key).get(), request, &empty);
  }
  std::vector<int64_t> Overdue(int64_t responsible = 0) {
    v1::ListActivitiesRequest request;
    request.set_overdue_only(true);
    request.set_responsible_user_id(responsible);
    request.set_page_size(1000);
    v1::ListActivitiesResponse response;
    grpc::Status status = activities_->ListActivities(Context().get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    std::vector<int64_t> ids;
    for (const v1::Activity& activity : response.activities()) ids.push_back(activity.id());
    return ids;
  }
  // The deal's last activity time, set far back first by SetDealIdleSince.
  std::string LastActivity(int64_t deal) {
    return Text(absl::StrCat("SELECT last_activity_at FROM deals WHERE id = ", deal));
  }
  void SetDealIdleSince2020(int64_t deal) {
    Exec(absl::StrCat("UPDATE deals SET last_activity_at = '2020-01-01T00:00:00Z' WHERE id = ",
                      deal));
  }

  std::unique_ptr<testing::CrmApi> api_;
  std::unique_ptr<v1::ActivityService::Stub> activities_;
  std::unique_ptr<v1::DealService::Stub> deals_;
  std::unique_ptr<v1::LeadService::Stub> leads_;
  int64_t ann_ = 0;
  int64_t bob_ = 0;
};

// Protects (B2): a manager fixes what they planned — subject, description, deadline (moved, then
// cleared), responsible (handed to a colleague; 0: the owner's responsible, as on creation) —
// each field of the mask and only those; every write gives a new etag, and a write with the etag
// read before another is ABORTED and changes nothing. An inactive colleague is refused with the
// message CreateActivity gives.
TEST_F(ActivityApiTest, UpdateChangesTheFieldsOfItsMask) {
  const int64_t deal = NewDeal(ann_);
  v1::Activity created = MustCreate(v1::OWNER_TYPE_DEAL, deal);
  EXPECT_EQ(created.etag(), "1");
  EXPECT_EQ(created.responsible_user_id(), ann_);

  v1::Activity change;
  change.set_id(created.id());
  change.set_etag(created.etag());
  change.set_subject("Call back about the quote");
  change.set_description("Ask for the\nfloor plan");
  change.mutable_deadline()->set_seconds(4102531200);
  change.set_responsible_user_id(bob_);
  v1::Activity updated;
  grpc::Status status = Update(change, {"subject", "description", "deadline"}, &updated);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(updated.subject(), "Call back about the quote");
  EXPECT_EQ(updated.description(), "Ask for the\nfloor plan");
  EXPECT_EQ(updated.deadline().seconds(), 4102531200);
  EXPECT_EQ(updated.responsible_user_id(), ann_);  // not in the mask
  EXPECT_NE(updated.etag(), created.etag());

  // The etag read before that write is stale now.
  const std::string before = Rows();
  v1::Activity stale = change;
  stale.set_subject("Overwritten");
  v1::Activity ignored;
  EXPECT_EQ(Update(stale, {"subject"}, &ignored).error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(Delete(created.id(), created.etag()).error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(Rows(), before);

  // Handed to Bob, then the deadline cleared (in the mask, absent from the activity).
  v1::Activity handover;
  handover.set_id(created.id());
  handover.set_etag(updated.etag());
  handover.set_responsible_user_id(bob_);
  ASSERT_TRUE(Update(handover, {"responsible_user_id", "deadline"}, &updated).ok());
  EXPECT_EQ(updated.responsible_user_id(), bob_);
  EXPECT_FALSE(updated.has_deadline());
  v1::Activity got;
  ASSERT_TRUE(Get(created.id(), &got, kReadOnlyKey).ok());
  EXPECT_EQ(got.SerializeAsString(), updated.SerializeAsString());

  // Back to the deal's responsible with 0.
  handover.set_etag("");
  handover.set_responsible_user_id(0);
  ASSERT_TRUE(Update(handover, {"responsible_user_id"}, &updated).ok());
  EXPECT_EQ(updated.responsible_user_id(), ann_);

  Exec(absl::StrCat("UPDATE users SET active = false WHERE id = ", bob_));
  const std::string rows = Rows();
  handover.set_responsible_user_id(bob_);
  status = Update(handover, {"responsible_user_id"}, &ignored);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(testing::StatusMessage(status),
            absl::StrCat("responsible_user_id: user ", bob_, " not found or not active"));
  EXPECT_EQ(Rows(), rows);
}

// Protects (B2): completed in the mask completes (complete_time set) or reopens (complete_time
// cleared); either one on a deal's activity is activity on the deal (its last activity time
// moves, as CompleteActivity moves it); a completion that changes nothing leaves the deal alone.
TEST_F(ActivityApiTest, CompletedCompletesAndReopens) {
  const int64_t deal = NewDeal();
  v1::Activity created = MustCreate(v1::OWNER_TYPE_DEAL, deal);
  SetDealIdleSince2020(deal);
  const std::string idle = LastActivity(deal);

  v1::Activity change;
  change.set_id(created.id());
  change.set_completed(true);
  v1::Activity done;
  ASSERT_TRUE(Update(change, {"completed"}, &done).ok());
  EXPECT_TRUE(done.completed());
  EXPECT_TRUE(done.has_complete_time());
  EXPECT_NE(LastActivity(deal), idle);

  SetDealIdleSince2020(deal);
  v1::Activity again;
  ASSERT_TRUE(Update(change, {"completed"}, &again).ok());  // done already: nothing changes
  EXPECT_EQ(again.complete_time().seconds(), done.complete_time().seconds());
  EXPECT_EQ(again.complete_time().nanos(), done.complete_time().nanos());
  EXPECT_EQ(LastActivity(deal), idle);

  change.set_completed(false);
  v1::Activity reopened;
  ASSERT_TRUE(Update(change, {"completed"}, &reopened).ok());
  EXPECT_FALSE(reopened.completed());
  EXPECT_FALSE(reopened.has_complete_time());
  EXPECT_NE(LastActivity(deal), idle);
  EXPECT_EQ(Count(absl::StrCat("SELECT count(*) FROM activities WHERE completed_at IS NULL AND "
                               "NOT completed AND id = ",
                               created.id())),
            1);
}

// Protects: bad requests get INVALID_ARGUMENT (or NOT_FOUND, PERMISSION_DENIED) saying what is
// accepted, and change nothing: an empty mask, a path the activity does not have, "*", output-only
// or fixed fields, a missing or negative id, an id nobody has, text past 10,000 bytes, control
// characters, a blank subject, a deadline outside 1900–2200, an etag this server never issued.
// A read-only key reads but every write is PERMISSION_DENIED.
TEST_F(ActivityApiTest, HostileRequestsAreRefusedAndChangeNothing) {
  const int64_t deal = NewDeal();
  v1::Activity created = MustCreate(v1::OWNER_TYPE_DEAL, deal);
  const std::string before = Rows();
  struct Case {
    std::string name;
    std::function<void(v1::Activity&)> set;
    std::vector<std::string> paths;
    grpc::StatusCode code;
    std::string message;  // a part of it
  };
  const std::vector<Case> cases = {
      {"empty mask",
       [](v1::Activity&) {},
       {},
       grpc::INVALID_ARGUMENT,
       "update_mask names no field"},
      {"unknown path",
       [](v1::Activity& a) { a.set_subject("x"); },
       {"subjet"},
       grpc::INVALID_ARGUMENT,
       "unknown field \"subjet\""},
      {"every field", [](v1::Activity&) {}, {"*"}, grpc::INVALID_ARGUMENT, "not supported"},
      {"type",
       [](v1::Activity& a) { a.set_type(v1::ACTIVITY_TYPE_CALL); },
       {"type"},
       grpc::INVALID_ARGUMENT,
       "field \"type\" cannot be updated"},
      {"owner",
       [](v1::Activity& a) { a.set_owner_id(99); },
       {"owner_id"},
       grpc::INVALID_ARGUMENT,
       "field \"owner_id\" cannot be updated"},
      {"origin",
       [](v1::Activity& a) { a.set_origin_event_id("forged"); },
       {"origin_event_id"},
       grpc::INVALID_ARGUMENT,
       "cannot be updated"},
      {"create_time",
       [](v1::Activity& a) { a.mutable_create_time()->set_seconds(1); },
       {"create_time"},
       grpc::INVALID_ARGUMENT,
       "cannot be updated"},
      {"one good path, one bad",
       [](v1::Activity& a) { a.set_subject("ok"); },
       {"subject", "call"},
       grpc::INVALID_ARGUMENT,
       "field \"call\" cannot be updated"},
      {"missing id",
       [](v1::Activity& a) { a.set_id(0); },
       {"subject"},
       grpc::INVALID_ARGUMENT,
       "activity.id is required"},
      {"negative id",
       [](v1::Activity& a) { a.set_id(-7); },
       {"subject"},
       grpc::INVALID_ARGUMENT,
       "activity.id must be positive"},
      {"nobody's id",
       [](v1::Activity& a) {
         a.set_id(987654);
         a.set_subject("x");
       },
       {"subject"},
       grpc::NOT_FOUND,
       "activity 987654 not found"},
      {"huge subject",
       [](v1::Activity& a) { a.set_subject(std::string(10001, 'a')); },
       {"subject"},
       grpc::INVALID_ARGUMENT,
       "subject is longer than 10000"},
      {"huge description",
       [](v1::Activity& a) { a.set_description(std::string(1 << 20, 'a')); },
       {"description"},
       grpc::INVALID_ARGUMENT,
       "description is longer than 10000"},
      {"blank subject",
       [](v1::Activity& a) { a.set_subject(""); },
       {"subject"},
       grpc::INVALID_ARGUMENT,
       "subject cannot be blank"},
      {"invisible subject",
       [](v1::Activity& a) { a.set_subject("\u200b "); },
       {"subject"},
       grpc::INVALID_ARGUMENT,
       "subject is blank"},
      {"control character",
       [](v1::Activity& a) { a.set_subject("Call\x1b[31m"); },
       {"subject"},
       grpc::INVALID_ARGUMENT,
       "subject"},
      {"bidi override",
       [](v1::Activity& a) { a.set_subject("Call \u202e"); },
       {"subject"},
       grpc::INVALID_ARGUMENT,
       "subject"},
      {"deadline year 9999",
       [](v1::Activity& a) { a.mutable_deadline()->set_seconds(253402214400); },
       {"deadline"},
       grpc::INVALID_ARGUMENT,
       "deadline"},
      {"forged etag",
       [](v1::Activity& a) {
         a.set_etag("01");
         a.set_subject("x");
       },
       {"subject"},
       grpc::INVALID_ARGUMENT,
       "etag is not one this server issued"},
  };
  for (const Case& each : cases) {
    SCOPED_TRACE(each.name);
    v1::Activity change;
    change.set_id(created.id());
    each.set(change);
    v1::Activity ignored;
    grpc::Status status = Update(change, each.paths, &ignored);
    EXPECT_EQ(status.error_code(), each.code) << status.error_message();
    EXPECT_NE(status.error_message().find(each.message), std::string::npos)
        << status.error_message();
  }
  EXPECT_EQ(Rows(), before);

  // Get and Delete name their id alike.
  v1::Activity got;
  EXPECT_EQ(Get(0, &got).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Get(-1, &got).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  grpc::Status missing = Get(987654, &got);
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(testing::StatusMessage(missing), "activity 987654 not found");
  EXPECT_EQ(Delete(0).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Delete(-3).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Delete(987654).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Delete(created.id(), "x").error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  // A read-only key reads, and writes nothing.
  EXPECT_TRUE(Get(created.id(), &got, kReadOnlyKey).ok());
  v1::Activity change;
  change.set_id(created.id());
  change.set_subject("Read-only was here");
  change.set_completed(true);
  v1::Activity ignored;
  EXPECT_EQ(Update(change, {"subject"}, &ignored, kReadOnlyKey).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Update(change, {"completed"}, &ignored, kReadOnlyKey).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Delete(created.id(), "", kReadOnlyKey).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  v1::CreateActivityRequest create;
  *create.mutable_activity() = created;
  EXPECT_EQ(activities_->CreateActivity(Context(kReadOnlyKey).get(), create, &ignored).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  v1::CompleteActivityRequest complete;
  complete.set_id(created.id());
  EXPECT_EQ(
      activities_->CompleteActivity(Context(kReadOnlyKey).get(), complete, &ignored).error_code(),
      grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Rows(), before);
}

// Protects (B2): a wrong activity is deleted: Get answers NOT_FOUND, a second delete too; its
// received emails stay on the record with activity_id 0 (ListEmailMessages shows them), the calls
// it held go with it.
TEST_F(ActivityApiTest, DeleteRemovesTheActivityAndKeepsItsMail) {
  const int64_t deal = NewDeal();
  v1::Activity wrong = MustCreate(v1::OWNER_TYPE_DEAL, deal);
  v1::Activity kept = MustCreate(v1::OWNER_TYPE_DEAL, deal);
  Exec(
      absl::StrCat("INSERT INTO email_messages (message_id, event_id, thread_key, owner_type, "
                   "owner_id, activity_id, subject) VALUES ('m1@example.org', 'email:1', "
                   "'m1@example.org', 'DEAL', ",
                   deal, ", ", wrong.id(), ", 'Devis')"));
  Exec(absl::StrCat("INSERT INTO activity_calls (call_id, activity_id) VALUES ('generic:c1', ",
                    wrong.id(), ")"));

  ASSERT_TRUE(Delete(wrong.id(), wrong.etag()).ok());
  v1::Activity got;
  EXPECT_EQ(Get(wrong.id(), &got).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Delete(wrong.id()).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(Get(kept.id(), &got).ok());
  EXPECT_EQ(Count("SELECT count(*) FROM activity_calls"), 0);

  v1::ListEmailMessagesRequest list;
  list.set_owner_type(v1::OWNER_TYPE_DEAL);
  list.set_owner_id(deal);
  v1::ListEmailMessagesResponse messages;
  ASSERT_TRUE(activities_->ListEmailMessages(Context().get(), list, &messages).ok());
  ASSERT_EQ(messages.messages_size(), 1);
  EXPECT_EQ(messages.messages(0).activity_id(), 0);
  EXPECT_EQ(messages.messages(0).subject(), "Devis");
}

// Protects (B3): CreateActivity with completed true logs what happened: stored completed, with
// complete_time now or as given (a time not later than the server's clock); a completion time
// in the future, or without completed, is INVALID_ARGUMENT and creates nothing. Output-only fields
// (id, create_time, origin_event_id, call, etag) are ignored as CreateDeal ignores its own: a
// client cannot pass an activity off as an inbound event's, which the inbound rules look up.
TEST_F(ActivityApiTest, CreateLogsWhatIsDoneAlready) {
  const int64_t deal = NewDeal();
  SetDealIdleSince2020(deal);
  const std::string idle = LastActivity(deal);
  const google::protobuf::Timestamp start = TimeUtil::GetCurrentTime();
  v1::Activity now_done;
  grpc::Status status =
      Create(v1::OWNER_TYPE_DEAL, deal, "Met at the showroom", &now_done, 0, [](v1::Activity& a) {
        a.clear_deadline();
        a.set_type(v1::ACTIVITY_TYPE_MEETING);
        a.set_completed(true);
      });
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(now_done.completed());
  ASSERT_TRUE(now_done.has_complete_time());
  EXPECT_GE(now_done.complete_time().seconds(), start.seconds() - 1);
  EXPECT_NE(LastActivity(deal), idle);
  EXPECT_EQ(Count(absl::StrCat("SELECT count(*) FROM activities WHERE completed AND "
                               "completed_at IS NOT NULL AND id = ",
                               now_done.id())),
            1);

  v1::Activity yesterday;
  const int64_t at = start.seconds() - 86400;
  status =
      Create(v1::OWNER_TYPE_DEAL, deal, "Called the client", &yesterday, 0, [at](v1::Activity& a) {
        a.clear_deadline();
        a.set_type(v1::ACTIVITY_TYPE_CALL);
        a.set_completed(true);
        a.mutable_complete_time()->set_seconds(at);
      });
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(yesterday.completed());
  EXPECT_EQ(yesterday.complete_time().seconds(), at);

  const int64_t activities = Count("SELECT count(*) FROM activities");
  v1::Activity ignored;
  status = Create(v1::OWNER_TYPE_DEAL, deal, "Tomorrow's call", &ignored, 0, [&](v1::Activity& a) {
    a.set_completed(true);
    a.mutable_complete_time()->set_seconds(start.seconds() + 86400);
  });
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("complete_time"), std::string::npos);
  EXPECT_NE(status.error_message().find("in the future"), std::string::npos);
  status = Create(v1::OWNER_TYPE_DEAL, deal, "Open with a time", &ignored, 0,
                  [&](v1::Activity& a) { a.mutable_complete_time()->set_seconds(at); });
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("completed: true"), std::string::npos);
  status = Create(v1::OWNER_TYPE_DEAL, deal, "Year 1", &ignored, 0, [&](v1::Activity& a) {
    a.set_completed(true);
    a.mutable_complete_time()->set_seconds(-62135596800);
  });
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Count("SELECT count(*) FROM activities"), activities);

  v1::Activity forged;
  status = Create(v1::OWNER_TYPE_DEAL, deal, "Planned", &forged, 4102444800, [](v1::Activity& a) {
    a.set_id(424242);
    a.set_origin_event_id("email:forged");
    a.set_etag("77");
    a.mutable_create_time()->set_seconds(946684800);
    a.mutable_call()->set_call_id("generic:forged");
    a.mutable_call()->set_call_back(true);
  });
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_NE(forged.id(), 424242);
  EXPECT_EQ(forged.origin_event_id(), "");
  EXPECT_EQ(forged.etag(), "1");
  EXPECT_FALSE(forged.has_call());
  EXPECT_GE(forged.create_time().seconds(), start.seconds() - 1);
  EXPECT_FALSE(forged.completed());
  EXPECT_EQ(Count("SELECT count(*) FROM activities WHERE origin_event_id IS NOT NULL OR "
                  "call_id IS NOT NULL OR call_back"),
            0);
}

// Protects (B4): the overdue list is open activities whose deadline passed on records still open:
// not those of a won or lost deal, nor of a lead in a closed status (junk) or converted (its
// activities move to what it produced; one left on it is not listed either). Those of open
// deals and leads, contacts and companies are listed; activities with a future deadline or
// done are not. The other lists are unchanged.
TEST_F(ActivityApiTest, OverdueListLeavesClosedRecordsOut) {
  constexpr int64_t k2020 = 1577836800;
  auto deal_in = [&](const std::string& stage) {
    const int64_t deal = NewDeal(ann_);
    if (!stage.empty()) {
      v1::MoveDealRequest move;
      move.set_deal_id(deal);
      move.set_stage_id(stage);
      v1::Deal moved;
      grpc::Status status = deals_->MoveDeal(Context().get(), move, &moved);
      EXPECT_TRUE(status.ok()) << status.error_message();
    }
    return deal;
  };
  const int64_t open_deal = deal_in("");
  const int64_t won = deal_in("WON");
  const int64_t lost = deal_in("LOSE");
  const int64_t open_lead = NewLead();
  const int64_t junk = NewLead();
  const int64_t converted = NewLead();
  const int64_t contact = Count(
      "INSERT INTO contacts (first_name, last_name, search_first_last, search_last_first) VALUES "
      "('Marie', 'Curie', 'marie curie', 'curie marie') RETURNING id");
  const int64_t company =
      Count("INSERT INTO companies (name, search_name) VALUES ('Acme', 'acme') RETURNING id");

  const int64_t on_open_deal = MustCreate(v1::OWNER_TYPE_DEAL, open_deal, k2020).id();
  const int64_t on_open_lead = MustCreate(v1::OWNER_TYPE_LEAD, open_lead, k2020).id();
  const int64_t on_contact = MustCreate(v1::OWNER_TYPE_CONTACT, contact, k2020).id();
  const int64_t on_company = MustCreate(v1::OWNER_TYPE_COMPANY, company, k2020).id();
  const int64_t on_won = MustCreate(v1::OWNER_TYPE_DEAL, won, k2020).id();
  const int64_t on_lost = MustCreate(v1::OWNER_TYPE_DEAL, lost, k2020).id();
  const int64_t on_junk = MustCreate(v1::OWNER_TYPE_LEAD, junk, k2020).id();
  MustCreate(v1::OWNER_TYPE_DEAL, open_deal);  // due in 2100
  v1::Activity done = MustCreate(v1::OWNER_TYPE_DEAL, open_deal, k2020);
  v1::CompleteActivityRequest complete;
  complete.set_id(done.id());
  ASSERT_TRUE(activities_->CompleteActivity(Context().get(), complete, &done).ok());

  v1::UpdateLeadRequest to_junk;
  to_junk.mutable_lead()->set_id(junk);
  to_junk.mutable_lead()->set_status_id("JUNK");
  to_junk.mutable_update_mask()->add_paths("status_id");
  v1::Lead lead;
  ASSERT_TRUE(leads_->UpdateLead(Context().get(), to_junk, &lead).ok());

  const int64_t moved = MustCreate(v1::OWNER_TYPE_LEAD, converted, k2020).id();
  v1::ConvertLeadRequest convert;
  convert.set_lead_id(converted);
  convert.set_produce(v1::CONVERSION_PRODUCE_CONTACT);
  convert.set_request_id("convert-1");
  v1::ConvertLeadResponse conversion;
  grpc::Status status = leads_->ConvertLead(Context().get(), convert, &conversion);
  ASSERT_TRUE(status.ok()) << status.error_message();
  // Conversion moved it to the contact, which is open: still overdue, there.
  EXPECT_EQ(Text(absl::StrCat("SELECT owner_type FROM activities WHERE id = ", moved)), "CONTACT");
  // One left on the converted lead (written before conversions moved them) is dead work.
  const int64_t left = Count(absl::StrCat(
      "INSERT INTO activities (type, owner_type, owner_id, subject, deadline) VALUES ('TASK', "
      "'LEAD', ",
      converted, ", 'Left behind', '2020-01-01T00:00:00Z') RETURNING id"));

  EXPECT_EQ(Overdue(),
            (std::vector<int64_t>{moved, on_company, on_contact, on_open_lead, on_open_deal}))
      << "won " << on_won << ", lost " << on_lost << ", junk " << on_junk << ", left " << left;
  // With a responsible filter too (the deals are Ann's; the leads went round the users).
  const std::vector<int64_t> anns = Overdue(ann_);
  EXPECT_NE(std::find(anns.begin(), anns.end(), on_open_deal), anns.end());
  for (int64_t dead : {on_won, on_lost, on_junk, left}) {
    EXPECT_EQ(std::find(anns.begin(), anns.end(), dead), anns.end()) << dead;
  }

  // Open activities of closed records are still listed as open (not overdue).
  v1::ListActivitiesRequest open;
  open.set_completion(v1::ListActivitiesRequest::COMPLETION_OPEN);
  open.set_owner_type(v1::OWNER_TYPE_DEAL);
  open.set_owner_id(won);
  v1::ListActivitiesResponse listed;
  ASSERT_TRUE(activities_->ListActivities(Context().get(), open, &listed).ok());
  ASSERT_EQ(listed.activities_size(), 1);
  EXPECT_EQ(listed.activities(0).id(), on_won);
}

// Protects (the fifth new-user pass): CompleteActivity on a completed activity changes nothing —
// no new etag, and its deal's last activity time stays, so a repeated click does not make an idle
// deal look worked on; a bad id is INVALID_ARGUMENT as in Get/Update/Delete. A subject of ASCII
// spaces is blank like one of invisible characters. An activity left to its record's responsible
// goes, once that user is deactivated, to the user who plans it, or to nobody without one.
TEST_F(ActivityApiTest, RepeatedCompletionBlankSubjectsAndDeactivatedResponsibles) {
  const int64_t deal = NewDeal(ann_);
  const v1::Activity open = MustCreate(v1::OWNER_TYPE_DEAL, deal);
  v1::CompleteActivityRequest complete;
  complete.set_id(open.id());
  v1::Activity done;
  ASSERT_TRUE(activities_->CompleteActivity(Context().get(), complete, &done).ok());
  SetDealIdleSince2020(deal);
  const std::string rows = Rows();
  v1::Activity again;
  grpc::Status status = activities_->CompleteActivity(Context().get(), complete, &again);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(again.etag(), done.etag());
  EXPECT_EQ(again.complete_time().seconds(), done.complete_time().seconds());
  EXPECT_EQ(Rows(), rows);
  complete.set_id(-1);
  EXPECT_EQ(activities_->CompleteActivity(Context().get(), complete, &again).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  complete.set_id(987654);
  EXPECT_EQ(activities_->CompleteActivity(Context().get(), complete, &again).error_code(),
            grpc::StatusCode::NOT_FOUND);

  v1::Activity blank;
  for (const std::string subject : {" ", "   ", "\t \n"}) {
    EXPECT_EQ(Create(v1::OWNER_TYPE_DEAL, deal, subject, &blank).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT)
        << "\"" << subject << "\"";
    v1::Activity edit = open;
    edit.set_subject(subject);
    edit.clear_etag();
    EXPECT_EQ(Update(edit, {"subject"}, &blank).error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << "\"" << subject << "\"";
  }
  EXPECT_EQ(Rows(), rows);

  Exec(absl::StrCat("UPDATE users SET active = false WHERE id = ", ann_));
  v1::CreateActivityRequest request;
  request.mutable_activity()->set_type(v1::ACTIVITY_TYPE_TASK);
  request.mutable_activity()->set_owner_type(v1::OWNER_TYPE_DEAL);
  request.mutable_activity()->set_owner_id(deal);
  request.mutable_activity()->set_subject("After Ann left");
  v1::Activity by_bob;
  status = activities_->CreateActivity(testing::CallContext(kIntegrationKey, 30s, bob_).get(),
                                       request, &by_bob);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(by_bob.responsible_user_id(), bob_);
  v1::Activity by_nobody;
  ASSERT_TRUE(activities_->CreateActivity(Context().get(), request, &by_nobody).ok());
  EXPECT_EQ(by_nobody.responsible_user_id(), 0);
  v1::Activity handed = by_bob;
  handed.set_responsible_user_id(0);
  handed.clear_etag();
  v1::Activity updated;
  ASSERT_TRUE(Update(handed, {"responsible_user_id"}, &updated).ok());
  EXPECT_EQ(updated.responsible_user_id(), 0);
}

}  // namespace
}  // namespace leadflow::crm
