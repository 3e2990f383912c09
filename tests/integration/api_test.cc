// crm-core's gRPC API in process, against a real PostgreSQL: deadlines, bounded waits, error
// messages, transaction conflicts and pagination.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <pqxx/pqxx>
#include <sstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "crm-core/api/common/paging.h"
#include "crm-core/api/services.h"
#include "crm-core/store/probe.h"
#include "google/protobuf/unknown_field_set.h"
#include "testing/crm.h"
#include "testing/testing.h"

namespace leadflow::crm {
namespace {

using namespace std::chrono_literals;

constexpr char kKey[] = "test-admin-key-0123456789";

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    api_ = std::make_unique<testing::CrmApi>(testing::CrmApiOptions{.keys = {{kKey, Role::kAdmin}},
                                                                    .pool_size = 2,
                                                                    .queue_max = 64,
                                                                    .acquire_timeout = 1000ms});
    lead_stub_ = api_->Stub<v1::LeadService>();
    user_stub_ = api_->Stub<v1::UserService>();
    status_stub_ = api_->Stub<v1::StatusService>();
  }

  static std::unique_ptr<grpc::ClientContext> Context(std::chrono::milliseconds deadline) {
    return testing::CallContext(kKey, deadline);
  }

  void Exec(const std::string& sql) { api_->Exec(sql); }

  int64_t Count(const std::string& sql) { return api_->Scalar(sql); }

  std::unique_ptr<testing::CrmApi> api_;
  std::unique_ptr<v1::LeadService::Stub> lead_stub_;
  std::unique_ptr<v1::UserService::Stub> user_stub_;
  std::unique_ptr<v1::StatusService::Stub> status_stub_;
};

// Protects (defect i): nine slow ListLeads calls (the leads table is locked by another session,
// so they would wait forever) end by their deadline and release the pool: a later call is
// answered, and the database probe of /readyz answers while they hold the pool, since it never
// queues behind it.
TEST_F(ApiTest, SlowCallsDoNotHangLaterCallsOrProbes) {
  v1::CreateUserRequest create;
  create.mutable_user()->set_name("Ann");
  v1::User ann;
  ASSERT_TRUE(user_stub_->CreateUser(Context(5000ms).get(), create, &ann).ok());

  pqxx::connection locker(api_->database_url());
  auto lock = std::make_unique<pqxx::work>(locker);
  lock->exec0("LOCK TABLE leads IN ACCESS EXCLUSIVE MODE");

  std::vector<std::thread> callers;
  std::vector<grpc::StatusCode> codes(9, grpc::StatusCode::OK);
  for (int i = 0; i < 9; ++i) {
    callers.emplace_back([&, i] {
      v1::ListLeadsResponse response;
      codes[i] = lead_stub_->ListLeads(Context(1500ms).get(), {}, &response).error_code();
    });
  }
  // While the pool is held and callers queue for it, the probe still answers.
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        return Count(
                   "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                   " AND wait_event_type = 'Lock'") >= 2;
      },
      10s));
  DatabaseProbe probe(api_->database_url(), 2000ms);
  EXPECT_TRUE(probe.Check().ok());
  for (std::thread& caller : callers) {
    caller.join();
  }
  for (grpc::StatusCode code : codes) {
    EXPECT_EQ(code, grpc::StatusCode::DEADLINE_EXCEEDED);
  }
  // The lock is still held: only the calls that need it are slow, not the whole API.
  v1::GetUserRequest get;
  get.set_id(ann.id());
  v1::User user;
  grpc::Status later = user_stub_->GetUser(Context(10000ms).get(), get, &user);
  EXPECT_TRUE(later.ok()) << later.error_code() << " " << later.error_message();
  lock->abort();
}

// Protects (defect i): a caller never reads PostgreSQL's text (constraint names, DETAIL lines
// with the row); the message and the "request-id" trailer carry an id under which the log has
// the details, without the row's contents.
TEST_F(ApiTest, DatabaseErrorsAreCleanAndCarryARequestId) {
  Exec(
      "ALTER TABLE users ADD CONSTRAINT users_not_blocked"
      " CHECK (email NOT LIKE '%@blocked.example')");
  std::ostringstream logs;
  auto previous = spdlog::default_logger();
  auto logger = std::make_shared<spdlog::logger>(
      "test", std::make_shared<spdlog::sinks::ostream_sink_mt>(logs));
  spdlog::set_default_logger(logger);
  v1::CreateUserRequest create;
  create.mutable_user()->set_name("Ann Secret");
  create.mutable_user()->set_email("ann@blocked.example");
  v1::User user;
  auto context = Context(5000ms);
  grpc::Status status = user_stub_->CreateUser(context.get(), create, &user);
  spdlog::default_logger()->flush();
  spdlog::set_default_logger(previous);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  const std::string& message = status.error_message();
  EXPECT_EQ(message.find("users_not_blocked"), std::string::npos) << message;
  EXPECT_EQ(message.find("DETAIL"), std::string::npos) << message;
  EXPECT_EQ(message.find("Ann Secret"), std::string::npos) << message;
  auto trailer = context->GetServerTrailingMetadata().find("request-id");
  ASSERT_NE(trailer, context->GetServerTrailingMetadata().end());
  const std::string request_id(trailer->second.data(), trailer->second.size());
  EXPECT_FALSE(request_id.empty());
  EXPECT_NE(message.find(request_id), std::string::npos) << message;
  EXPECT_NE(logs.str().find(request_id), std::string::npos) << logs.str();
  EXPECT_NE(logs.str().find("users_not_blocked"), std::string::npos) << logs.str();
  EXPECT_EQ(logs.str().find("Ann Secret"), std::string::npos) << logs.str();
}

// Protects (defect i): a deadlock (40P01) between CreateLead and a consumer is retried inside
// the server, not returned as ABORTED (which tells callers "stale etag"). PostgreSQL raises it
// on the first attempt here; a sequence counts the attempts across the rollback.
TEST_F(ApiTest, DeadlockIsRetriedInside) {
  Exec("CREATE SEQUENCE insert_attempts");
  Exec(
      "CREATE FUNCTION deadlock_once() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
      " IF nextval('insert_attempts') = 1 THEN"
      " RAISE EXCEPTION 'deadlock detected' USING ERRCODE = '40P01'; END IF;"
      " RETURN NEW; END $$");
  Exec(
      "CREATE TRIGGER deadlock_once BEFORE INSERT ON leads FOR EACH ROW"
      " EXECUTE FUNCTION deadlock_once()");
  v1::CreateLeadRequest create;
  create.mutable_lead()->set_first_name("Walk");
  create.mutable_lead()->add_phones("06 12 34 56 78");
  v1::Lead lead;
  grpc::Status status = lead_stub_->CreateLead(Context(5000ms).get(), create, &lead);
  ASSERT_TRUE(status.ok()) << status.error_code() << " " << status.error_message();
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 1);
  EXPECT_EQ(Count("SELECT last_value FROM insert_attempts"), 2);
  ASSERT_EQ(lead.phones_size(), 1);
  EXPECT_EQ(lead.phones(0), "+33612345678");
}

// Protects: a user is someone managers pick and the round-robin hands leads to, so UserService
// refuses what would make one nobody can see or tell apart: a name of spaces or invisible
// characters, an email that is no address, an email another user has (any case: call operators
// are matched by it) — on create and on update; the email is stored as NormalizeEmail gives it;
// a user keeps their own email through an update. Nothing is written by a refused call.
TEST_F(ApiTest, UserNamesAndEmailsAreChecked) {
  auto create = [&](const std::string& name, const std::string& email, v1::User* out) {
    v1::CreateUserRequest request;
    request.mutable_user()->set_name(name);
    request.mutable_user()->set_email(email);
    return user_stub_->CreateUser(Context(5000ms).get(), request, out);
  };
  v1::User sam;
  ASSERT_TRUE(create("Sam", " Sam@T7D.example", &sam).ok());
  EXPECT_EQ(sam.email(), "sam@t7d.example");
  v1::User other;
  grpc::Status blank = create("   ", "", &other);
  EXPECT_EQ(blank.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << blank.error_message();
  grpc::Status invisible = create("\u200b\u200b", "", &other);
  EXPECT_EQ(invisible.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  grpc::Status not_mail = create("Nat", "not-mail", &other);
  EXPECT_EQ(not_mail.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(not_mail.error_message().find("email"), std::string::npos) << not_mail.error_message();
  grpc::Status twice = create("Sam Two", "SAM@t7d.example", &other);
  EXPECT_EQ(twice.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_NE(twice.error_message().find("already used by user " + std::to_string(sam.id())),
            std::string::npos)
      << twice.error_message();
  EXPECT_EQ(Count("SELECT count(*) FROM users WHERE name IN ('   ', 'Nat', 'Sam Two') OR "
                  "name LIKE '%' || chr(8203) || '%'"),
            0);

  v1::User kim;
  ASSERT_TRUE(create("Kim", "kim@t7d.example", &kim).ok());
  auto update = [&](int64_t id, const std::string& name, const std::string& email,
                    const std::string& paths) {
    v1::UpdateUserRequest request;
    request.mutable_user()->set_id(id);
    request.mutable_user()->set_name(name);
    request.mutable_user()->set_email(email);
    request.mutable_update_mask()->add_paths(paths);
    v1::User out;
    return user_stub_->UpdateUser(Context(5000ms).get(), request, &out);
  };
  EXPECT_EQ(update(kim.id(), "", "Sam@t7d.example", "email").error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(update(kim.id(), " ", "", "name").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(update(sam.id(), "", "sam@T7D.example", "email").ok());
  EXPECT_EQ(Count("SELECT count(*) FROM users WHERE email = 'kim@t7d.example' AND name = 'Kim'"),
            1);
}

// Protects: UpdateUser checks only the fields its update_mask names: a request changing `active`
// or `email` is not refused for a name (or extension) it leaves alone, as a client sending the
// whole form read before with one field masked does; a masked field is still checked, and a
// field left out is not written.
TEST_F(ApiTest, UpdateUserChecksOnlyMaskedFields) {
  v1::CreateUserRequest create;
  create.mutable_user()->set_name("Masked Max");
  create.mutable_user()->set_email("max@t7m.example");
  v1::User max;
  ASSERT_TRUE(user_stub_->CreateUser(Context(5000ms).get(), create, &max).ok());
  auto update = [&](const std::string& name, const std::string& email, const std::string& extension,
                    const std::string& path) {
    v1::UpdateUserRequest request;
    request.mutable_user()->set_id(max.id());
    request.mutable_user()->set_name(name);
    request.mutable_user()->set_email(email);
    request.mutable_user()->set_extension(extension);
    request.mutable_user()->set_active(true);
    request.mutable_update_mask()->add_paths(path);
    v1::User out;
    return user_stub_->UpdateUser(Context(5000ms).get(), request, &out);
  };
  grpc::Status email = update("   ", "max.new@t7m.example", "", "email");
  EXPECT_TRUE(email.ok()) << email.error_message();
  grpc::Status active = update(std::string(300, 'x'), "not-mail", "bad ext!", "active");
  EXPECT_TRUE(active.ok()) << active.error_message();
  grpc::Status name = update("Max Masked", "not-mail", "bad ext!", "name");
  EXPECT_TRUE(name.ok()) << name.error_message();
  EXPECT_EQ(Count(absl::StrCat("SELECT count(*) FROM users WHERE id = ", max.id(),
                               " AND name = 'Max Masked' AND email = 'max.new@t7m.example'"
                               " AND coalesce(extension, '') = ''")),
            1);
  // A masked field is checked.
  EXPECT_EQ(update(" ", "", "", "name").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(update("", "not-mail", "", "email").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(update("", "", "bad ext!", "extension").error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

// Protects: two writes racing with one email in different cases leave exactly one user holding it
// — two CreateUser calls, or an UpdateUser and a CreateUser; the other is ALREADY_EXISTS naming
// the holder and writes nothing. The check and the write run under one advisory lock
// (UserRepository::LockEmails; users.email has no unique index). Each round holds the users
// table until both calls wait inside their transactions (past the advisory lock, on it or on the
// table), then lets them go together: without the lock both see the email free and both write it.
TEST_F(ApiTest, UsersRacingForOneEmailLeaveOneHolder) {
  auto create = [&](const std::string& name, const std::string& email, v1::User* out) {
    v1::CreateUserRequest request;
    request.mutable_user()->set_name(name);
    request.mutable_user()->set_email(email);
    return user_stub_->CreateUser(Context(30000ms).get(), request, out);
  };
  auto update = [&](int64_t id, const std::string& email, v1::User* out) {
    v1::UpdateUserRequest request;
    request.mutable_user()->set_id(id);
    request.mutable_user()->set_email(email);
    request.mutable_update_mask()->add_paths("email");
    return user_stub_->UpdateUser(Context(30000ms).get(), request, out);
  };
  constexpr int kRounds = 20;
  int broken_rounds = 0;
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    const std::string email = absl::StrCat("race", round, "@t7d.example");
    // Odd rounds: a user without an email takes it by UpdateUser while another is created.
    const bool with_update = round % 2 == 1;
    v1::User existing;
    if (with_update) {
      ASSERT_TRUE(create(absl::StrCat("Kim ", round), "", &existing).ok());
    }
    pqxx::connection locker(api_->database_url());
    pqxx::work hold(locker);
    hold.exec0("LOCK TABLE users IN ACCESS EXCLUSIVE MODE");
    v1::User first_user;
    v1::User second_user;
    grpc::Status first;
    grpc::Status second;
    std::thread first_call([&] {
      first = with_update
                  ? update(existing.id(), absl::AsciiStrToUpper(email), &first_user)
                  : create(absl::StrCat("Ann ", round), absl::AsciiStrToUpper(email), &first_user);
    });
    std::thread second_call(
        [&] { second = create(absl::StrCat("Bob ", round), email, &second_user); });
    // Both at their email statements: the advisory lock (lock_user_emails.sql) or the check
    // (user_with_email.sql), the one holding the advisory lock waiting on the table.
    const bool both_waiting = testing::WaitFor(
        [&] {
          return Count(
                     "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                     " AND wait_event_type = 'Lock' AND (query LIKE '%user-emails%'"
                     " OR query LIKE '%lower(email)%')") >= 2;
        },
        20s);
    hold.commit();
    first_call.join();
    second_call.join();
    EXPECT_TRUE(both_waiting) << "the calls did not both reach the users table";
    const int64_t holders =
        Count("SELECT count(*) FROM users WHERE lower(email) = '" + email + "'");
    if (holders != 1 || first.ok() == second.ok()) {
      ++broken_rounds;
      ADD_FAILURE() << holders << " users hold " << email << "; first: " << first.error_code()
                    << " " << first.error_message() << "; second: " << second.error_code() << " "
                    << second.error_message();
      continue;
    }
    const grpc::Status& refused = first.ok() ? second : first;
    const int64_t holder = first.ok() ? first_user.id() : second_user.id();
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::ALREADY_EXISTS) << refused.error_message();
    EXPECT_NE(refused.error_message().find(
                  absl::StrCat("email ", email, " is already used by user ", holder)),
              std::string::npos)
        << refused.error_message();
    // The refused create wrote no user: one made this round, none when the update won.
    EXPECT_EQ(Count("SELECT count(*) FROM users WHERE name IN ('Ann " + std::to_string(round) +
                    "', 'Bob " + std::to_string(round) + "')"),
              second.ok() || !with_update ? 1 : 0);
  }
  EXPECT_EQ(broken_rounds, 0) << "rounds of " << kRounds << " leaving the email on two users";
}

// Protects (defect i): ListUsers is paginated (page_size, page_token) like the other lists.
TEST_F(ApiTest, ListUsersIsPaginated) {
  for (int i = 0; i < 5; ++i) {
    v1::CreateUserRequest create;
    create.mutable_user()->set_name("User " + std::to_string(i));
    v1::User user;
    ASSERT_TRUE(user_stub_->CreateUser(Context(5000ms).get(), create, &user).ok());
  }
  std::vector<std::string> names;
  std::string token;
  int pages = 0;
  do {
    v1::ListUsersRequest request;
    request.set_page_size(2);
    request.set_page_token(token);
    v1::ListUsersResponse response;
    ASSERT_TRUE(user_stub_->ListUsers(Context(5000ms).get(), request, &response).ok());
    EXPECT_LE(response.users_size(), 2);
    for (const v1::User& user : response.users()) {
      names.push_back(user.name());
    }
    token = response.next_page_token();
  } while (!token.empty() && ++pages < 10);
  EXPECT_EQ(names, (std::vector<std::string>{"User 0", "User 1", "User 2", "User 3", "User 4"}));
}

// Protects (defect i): ListLeads reads a page in one query, identities included; pages chain
// by their token, newest first.
TEST_F(ApiTest, ListLeadsPagesCarryIdentities) {
  for (int i = 0; i < 3; ++i) {
    v1::CreateLeadRequest create;
    create.mutable_lead()->set_first_name("Lead " + std::to_string(i));
    create.mutable_lead()->add_phones("06 12 34 56 7" + std::to_string(i));
    create.mutable_lead()->add_emails("lead" + std::to_string(i) + "@example.com");
    v1::Lead lead;
    ASSERT_TRUE(lead_stub_->CreateLead(Context(5000ms).get(), create, &lead).ok());
  }
  v1::ListLeadsRequest request;
  request.set_page_size(2);
  v1::ListLeadsResponse first;
  ASSERT_TRUE(lead_stub_->ListLeads(Context(5000ms).get(), request, &first).ok());
  ASSERT_EQ(first.leads_size(), 2);
  EXPECT_EQ(first.leads(0).first_name(), "Lead 2");
  ASSERT_EQ(first.leads(0).phones_size(), 1);
  EXPECT_EQ(first.leads(0).phones(0), "+33612345672");
  ASSERT_EQ(first.leads(0).emails_size(), 1);
  EXPECT_EQ(first.leads(0).emails(0), "lead2@example.com");
  ASSERT_FALSE(first.next_page_token().empty());
  request.set_page_token(first.next_page_token());
  v1::ListLeadsResponse second;
  ASSERT_TRUE(lead_stub_->ListLeads(Context(5000ms).get(), request, &second).ok());
  ASSERT_EQ(second.leads_size(), 1);
  EXPECT_EQ(second.leads(0).first_name(), "Lead 0");
  EXPECT_TRUE(second.next_page_token().empty());
}

// Protects: a client built when Lead's status and source were enums on fields 3 and 4 (now
// reserved) gets INVALID_ARGUMENT naming the fields, not a lead filed as NEW or an unfiltered list.
TEST_F(ApiTest, RetiredStatusAndSourceFieldsAreRefused) {
  v1::CreateLeadRequest create;
  create.mutable_lead()->set_title("Sent by an old client");
  create.mutable_lead()
      ->GetReflection()
      ->MutableUnknownFields(create.mutable_lead())
      ->AddVarint(3, 2);  // LeadStatus IN_PROCESS, as the old client encodes it
  v1::Lead lead;
  grpc::Status refused = lead_stub_->CreateLead(Context(5000ms).get(), create, &lead);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(refused.error_message().find("status_id"), std::string::npos)
      << refused.error_message();
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 0);

  v1::ListLeadsRequest filter;
  filter.GetReflection()->MutableUnknownFields(&filter)->AddVarint(4, 1);  // LeadSource WEB_FORM
  v1::ListLeadsResponse leads;
  grpc::Status listed = lead_stub_->ListLeads(Context(5000ms).get(), filter, &leads);
  EXPECT_EQ(listed.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(listed.error_message().find("source_id"), std::string::npos) << listed.error_message();

  // The same requests without the retired fields are served.
  create.mutable_lead()->GetReflection()->MutableUnknownFields(create.mutable_lead())->Clear();
  ASSERT_TRUE(lead_stub_->CreateLead(Context(5000ms).get(), create, &lead).ok());
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 1);
}

// Protects: lead statuses are configured over StatusService with their invariants: a custom
// status goes between the seeded ones by sort and leads can take it; an unknown status in a
// request is refused naming it (never read as NEW); a second SUCCESS status, deleting a system
// status and deleting a status in use are FAILED_PRECONDITION; an unused custom one is deleted.
TEST_F(ApiTest, ConfigurableLeadStatuses) {
  v1::CreateStatusRequest create;
  create.set_kind(v1::STATUS_KIND_LEAD_STATUS);
  create.mutable_status()->set_id("CALL_LATER");
  create.mutable_status()->set_name("Call later");
  create.mutable_status()->set_sort(25);
  create.mutable_status()->set_semantics(v1::SEMANTICS_PROCESS);
  v1::Status created;
  ASSERT_TRUE(status_stub_->CreateStatus(Context(5000ms).get(), create, &created).ok());
  EXPECT_FALSE(created.system());

  v1::ListStatusesRequest list;
  list.set_kind(v1::STATUS_KIND_LEAD_STATUS);
  v1::ListStatusesResponse listed;
  ASSERT_TRUE(status_stub_->ListStatuses(Context(5000ms).get(), list, &listed).ok());
  std::vector<std::string> ids;
  for (const v1::Status& status : listed.statuses()) {
    ids.push_back(status.id());
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"NEW", "IN_PROCESS", "CALL_LATER", "PROCESSED",
                                           "CONVERTED", "JUNK"}));

  v1::CreateLeadRequest lead_request;
  lead_request.mutable_lead()->set_title("Visitor");
  lead_request.mutable_lead()->set_status_id("NO_SUCH_STATUS");
  v1::Lead lead;
  grpc::Status unknown = lead_stub_->CreateLead(Context(5000ms).get(), lead_request, &lead);
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(unknown.error_message().find("NO_SUCH_STATUS"), std::string::npos)
      << unknown.error_message();
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 0);
  v1::ListLeadsRequest filter;
  filter.set_source_id("NO_SUCH_SOURCE");
  v1::ListLeadsResponse leads;
  EXPECT_EQ(lead_stub_->ListLeads(Context(5000ms).get(), filter, &leads).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  lead_request.mutable_lead()->set_status_id("CALL_LATER");
  ASSERT_TRUE(lead_stub_->CreateLead(Context(5000ms).get(), lead_request, &lead).ok());
  EXPECT_EQ(lead.status_id(), "CALL_LATER");
  EXPECT_EQ(lead.source_id(), "WALK_IN");

  v1::CreateStatusRequest won = create;
  won.mutable_status()->set_id("WON");
  won.mutable_status()->set_semantics(v1::SEMANTICS_SUCCESS);
  grpc::Status second = status_stub_->CreateStatus(Context(5000ms).get(), won, &created);
  EXPECT_EQ(second.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(second.error_message().find("CONVERTED"), std::string::npos);

  v1::DeleteStatusRequest remove;
  remove.set_kind(v1::STATUS_KIND_LEAD_STATUS);
  v1::DeleteStatusResponse removed;
  remove.set_id("JUNK");
  EXPECT_EQ(status_stub_->DeleteStatus(Context(5000ms).get(), remove, &removed).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  remove.set_id("CALL_LATER");
  grpc::Status in_use = status_stub_->DeleteStatus(Context(5000ms).get(), remove, &removed);
  EXPECT_EQ(in_use.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(in_use.error_message().find("in use"), std::string::npos) << in_use.error_message();
  Exec("UPDATE leads SET status = 'NEW'");
  EXPECT_TRUE(status_stub_->DeleteStatus(Context(5000ms).get(), remove, &removed).ok());
  EXPECT_EQ(Count("SELECT count(*) FROM lead_statuses WHERE id = 'CALL_LATER'"), 0);
  remove.set_id("CALL_LATER");
  EXPECT_EQ(status_stub_->DeleteStatus(Context(5000ms).get(), remove, &removed).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace leadflow::crm
