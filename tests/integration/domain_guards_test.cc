// The CRM domain's guards over gRPC, against a real PostgreSQL: what a converted lead keeps, the
// classic → simple switch with a lead it cannot convert, status semantics while leads hold the
// status, and filters that are applied or refused, never dropped.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <functional>
#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "crm-core/api/deal_services.h"
#include "crm-core/api/people_services.h"
#include "crm-core/api/services.h"
#include "crm-core/inbound/mode_switch.h"
#include "crm-core/store/statements.h"
#include "pg/pg.h"
#include "testing/crm.h"
#include "testing/testing.h"

namespace leadflow::crm {
namespace {

using namespace std::chrono_literals;

class DomainGuardsTest : public testing::CrmApiTest {
 protected:
  int64_t CreateLead(const std::string& first, const std::string& email) {
    v1::CreateLeadRequest request;
    request.mutable_lead()->set_first_name(first);
    request.mutable_lead()->set_last_name("Kowalski");
    request.mutable_lead()->add_emails(email);
    v1::Lead lead;
    grpc::Status status = lead_stub_->CreateLead(Context().get(), request, &lead);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return lead.id();
  }

  grpc::Status SetStatus(int64_t lead_id, const std::string& status_id, v1::Lead* updated) {
    v1::UpdateLeadRequest request;
    request.mutable_lead()->set_id(lead_id);
    request.mutable_lead()->set_status_id(status_id);
    request.mutable_update_mask()->add_paths("status_id");
    return lead_stub_->UpdateLead(Context().get(), request, updated);
  }
};

// Protects: a converted lead keeps its status. Leaving CONVERTED through UpdateLead (to an open
// status, or a closed one) is FAILED_PRECONDITION naming what the lead produced, and changes
// nothing: the lead stays converted, no STATUS_CHANGED entry, same etag. (Reopened, the person's
// later messages went to the lead instead of their deal, and it could never convert again.)
TEST_F(DomainGuardsTest, ConvertedLeadKeepsItsStatus) {
  const int64_t lead_id = CreateLead("Anna", "anna@kow.example");
  v1::ConvertLeadRequest convert;
  convert.set_lead_id(lead_id);
  convert.set_produce(v1::CONVERSION_PRODUCE_CONTACT_DEAL);
  convert.set_request_id("r4");
  v1::ConvertLeadResponse converted;
  grpc::Status status = lead_stub_->ConvertLead(Context().get(), convert, &converted);
  ASSERT_TRUE(status.ok()) << status.error_message();
  v1::GetLeadRequest get;
  get.set_id(lead_id);
  v1::Lead before;
  ASSERT_TRUE(lead_stub_->GetLead(Context().get(), get, &before).ok());
  ASSERT_EQ(before.status_id(), "CONVERTED");
  const int64_t history = Count("SELECT count(*) FROM history");

  for (const std::string target : {"IN_PROCESS", "NEW", "JUNK"}) {
    v1::Lead updated;
    grpc::Status refused = SetStatus(lead_id, target, &updated);
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << target;
    EXPECT_EQ(testing::StatusMessage(refused),
              absl::StrCat("lead ", lead_id, " is converted into contact ", converted.contact_id(),
                           ", deal ", converted.deal_id(),
                           "; its status cannot change: work on what it produced instead"))
        << target;
  }
  v1::Lead after;
  ASSERT_TRUE(lead_stub_->GetLead(Context().get(), get, &after).ok());
  EXPECT_EQ(after.status_id(), "CONVERTED");
  EXPECT_EQ(after.etag(), before.etag());
  EXPECT_EQ(Count("SELECT count(*) FROM history"), history);

  // Its other fields still change, and a mask naming the status it has already is no change.
  v1::UpdateLeadRequest retitle;
  retitle.mutable_lead()->set_id(lead_id);
  retitle.mutable_lead()->set_title("Anna, kitchen");
  retitle.mutable_lead()->set_status_id("CONVERTED");
  retitle.mutable_update_mask()->add_paths("title");
  retitle.mutable_update_mask()->add_paths("status_id");
  v1::Lead retitled;
  status = lead_stub_->UpdateLead(Context().get(), retitle, &retitled);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(retitled.title(), "Anna, kitchen");
  EXPECT_EQ(retitled.status_id(), "CONVERTED");
}

// Protects: the classic → simple switch never loops on a lead it cannot convert. A lead reopened
// after an earlier conversion (as the previous release allowed: its conversions row is there)
// is skipped: the job converts every other lead, finishes, and GetSettings shows the count,
// which lead and why; no retried step burns ids (the contact sequence moved once per lead).
// Without the per-lead savepoint the step fails on conversions_lead_id_key for ever, rolling back
// the other leads of its batch.
TEST_F(DomainGuardsTest, ModeSwitchSkipsALeadItCannotConvertAndFinishes) {
  constexpr int kLeads = 7;
  Exec(absl::StrCat(
      "INSERT INTO leads (title, first_name, last_name, source, status) SELECT 'Lead ' || i, "
      "'First' || i, 'Last', 'WEB_FORM', 'IN_PROCESS' FROM generate_series(1, ",
      kLeads,
      ") AS i;"
      "INSERT INTO lead_identities (kind, value, lead_id) "
      "SELECT 'PHONE', '+3361' || (4000000 + id), id FROM leads;"
      "INSERT INTO activities (type, owner_type, owner_id, subject) "
      "SELECT 'TASK', 'LEAD', id, 'Call back' FROM leads;"));
  const int64_t reopened = Count("SELECT id FROM leads ORDER BY id OFFSET 3 LIMIT 1");
  Exec(absl::StrCat("INSERT INTO conversions (lead_id, produce) VALUES (", reopened,
                    ", 'CONTACT');"
                    "UPDATE crm_settings SET mode = 'SIMPLE';"
                    "INSERT INTO mode_switch_jobs (to_mode) VALUES ('SIMPLE')"));
  const int64_t contacts_before = Count("SELECT nextval('contacts_id_seq')");

  pqxx::connection connection(api_->database_url());
  pg::PrepareAll(connection, Statements());
  metrics::Registry registry;
  ModeSwitchCounters counters(registry);
  bool finished = false;
  for (int step = 0; step < 20 && !finished; ++step) {  // bounded: 3 steps of 3, then the end
    absl::StatusOr<bool> worked;
    try {
      worked = RunModeSwitchStep(connection, 3, counters);
    } catch (const pqxx::sql_error& error) {
      worked = absl::InternalError(error.what());
    }
    EXPECT_TRUE(worked.ok()) << worked.status();
    finished = Count("SELECT count(*) FROM mode_switch_jobs WHERE state = 'DONE'") == 1;
  }
  ASSERT_TRUE(finished);
  EXPECT_EQ(counters.leads_skipped.Value(), 1);
  EXPECT_EQ(counters.leads_converted.Value(), kLeads - 1);
  EXPECT_EQ(Count("SELECT count(*) FROM leads WHERE status = 'CONVERTED'"), kLeads - 1);
  EXPECT_EQ(Text(absl::StrCat("SELECT status FROM leads WHERE id = ", reopened)), "IN_PROCESS");
  EXPECT_EQ(Count("SELECT count(*) FROM deals"), kLeads - 1);
  EXPECT_EQ(Count(absl::StrCat("SELECT count(*) FROM activities WHERE owner_type = 'LEAD' AND ",
                               "owner_id = ", reopened)),
            1);
  // One contact id per lead at most, the skipped one's included: nothing was retried.
  EXPECT_LE(Count("SELECT last_value FROM contacts_id_seq"), contacts_before + kLeads);

  v1::CrmSettings settings;
  ASSERT_TRUE(
      settings_stub_->GetSettings(Context().get(), v1::GetSettingsRequest(), &settings).ok());
  const v1::ModeSwitchJob& job = settings.mode_switch();
  EXPECT_EQ(job.state(), v1::ModeSwitchJob::STATE_DONE);
  EXPECT_EQ(job.total(), kLeads);
  EXPECT_EQ(job.done(), kLeads - 1);
  EXPECT_EQ(job.failed(), 1);
  ASSERT_EQ(job.failed_lead_ids_size(), 1);
  EXPECT_EQ(job.failed_lead_ids(0), reopened);
  EXPECT_NE(job.failure().find(absl::StrCat("lead ", reopened, ": ")), std::string::npos)
      << job.failure();
  EXPECT_NE(job.failure().find("conversions_lead_id_key"), std::string::npos) << job.failure();

  // Each converted lead's timeline says what ConvertLead's says: its status change and both
  // records it became.
  EXPECT_EQ(Count("SELECT count(*) FROM history WHERE entity_type = 'LEAD' AND kind = "
                  "'STATUS_CHANGED' AND old_value = 'IN_PROCESS' AND new_value = 'CONVERTED'"),
            kLeads - 1);
  EXPECT_EQ(Count("SELECT count(*) FROM history WHERE entity_type = 'LEAD' AND kind = "
                  "'CONVERTED' AND related_type = 'CONTACT'"),
            kLeads - 1);
  EXPECT_EQ(Count("SELECT count(*) FROM history WHERE entity_type = 'LEAD' AND kind = "
                  "'CONVERTED' AND related_type = 'DEAL'"),
            kLeads - 1);
}

// Protects: a lead status's semantics do not change while leads hold it (it would open or close
// them all silently: no history, same etag): FAILED_PRECONDITION "in use by N record(s)", as
// DeleteStatus; once no lead holds it, the change goes through.
TEST_F(DomainGuardsTest, StatusSemanticsDoNotChangeUnderLeads) {
  v1::CreateStatusRequest create;
  create.set_kind(v1::STATUS_KIND_LEAD_STATUS);
  create.mutable_status()->set_id("SAMESORT");
  create.mutable_status()->set_name("Same sort");
  create.mutable_status()->set_semantics(v1::SEMANTICS_PROCESS);
  v1::Status created;
  grpc::Status status = status_stub_->CreateStatus(Context().get(), create, &created);
  ASSERT_TRUE(status.ok()) << status.error_message();
  const int64_t lead_id = CreateLead("Anna", "anna@kow.example");
  v1::Lead lead;
  ASSERT_TRUE(SetStatus(lead_id, "SAMESORT", &lead).ok());

  v1::UpdateStatusRequest update;
  update.set_kind(v1::STATUS_KIND_LEAD_STATUS);
  update.mutable_status()->set_id("SAMESORT");
  update.mutable_status()->set_semantics(v1::SEMANTICS_FAILURE);
  update.mutable_update_mask()->add_paths("semantics");
  v1::Status updated;
  grpc::Status refused = status_stub_->UpdateStatus(Context().get(), update, &updated);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(testing::StatusMessage(refused),
            "\"SAMESORT\" is in use by 1 record(s): its semantics cannot change while leads hold "
            "it; move them first");
  EXPECT_EQ(Text("SELECT semantics FROM lead_statuses WHERE id = 'SAMESORT'"), "PROCESS");

  // A rename is no semantics change: allowed while in use.
  v1::UpdateStatusRequest rename;
  rename.set_kind(v1::STATUS_KIND_LEAD_STATUS);
  rename.mutable_status()->set_id("SAMESORT");
  rename.mutable_status()->set_name("Same sort, renamed");
  rename.mutable_update_mask()->add_paths("name");
  status = status_stub_->UpdateStatus(Context().get(), rename, &updated);
  EXPECT_TRUE(status.ok()) << status.error_message();

  ASSERT_TRUE(SetStatus(lead_id, "IN_PROCESS", &lead).ok());
  status = status_stub_->UpdateStatus(Context().get(), update, &updated);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(updated.semantics(), v1::SEMANTICS_FAILURE);
}

// Protects: ListActivities applies every filter it is given or refuses it: owner_id without
// owner_type, an owner_type or completion this server does not know (sent by number, as a
// reflection client may) are INVALID_ARGUMENT, never a list of everyone's activities.
TEST_F(DomainGuardsTest, ListActivitiesRefusesFiltersItCannotApply) {
  const int64_t first = CreateLead("Anna", "anna@kow.example");
  const int64_t second = CreateLead("Rita", "rita@kow.example");
  Exec(absl::StrCat("INSERT INTO activities (type, owner_type, owner_id, subject) VALUES ",
                    "('TASK', 'LEAD', ", first, ", 'a'), ('TASK', 'LEAD', ", second, ", 'b')"));
  struct Case {
    int owner_type;
    int64_t owner_id;
    int completion;
    std::string message;
  };
  for (const Case& c :
       {Case{0, first, 0, "owner_type (LEAD, CONTACT, COMPANY or DEAL) is needed with owner_id"},
        Case{99, first, 0, "owner_type 99 is not LEAD, CONTACT, COMPANY or DEAL"},
        Case{v1::OWNER_TYPE_LEAD, first, 7, "completion 7 is not ANY, OPEN or COMPLETED"},
        Case{v1::OWNER_TYPE_DEAL, 0, 0, "owner_id is needed with owner_type"}}) {
    v1::ListActivitiesRequest request;
    request.set_owner_type(static_cast<v1::OwnerType>(c.owner_type));
    request.set_owner_id(c.owner_id);
    request.set_completion(static_cast<v1::ListActivitiesRequest::Completion>(c.completion));
    v1::ListActivitiesResponse response;
    grpc::Status refused = activity_stub_->ListActivities(Context().get(), request, &response);
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.message;
    EXPECT_EQ(testing::StatusMessage(refused), c.message);
    EXPECT_EQ(response.activities_size(), 0);
  }
  v1::ListActivitiesRequest request;
  request.set_owner_type(v1::OWNER_TYPE_LEAD);
  request.set_owner_id(second);
  v1::ListActivitiesResponse response;
  ASSERT_TRUE(activity_stub_->ListActivities(Context().get(), request, &response).ok());
  ASSERT_EQ(response.activities_size(), 1);
  EXPECT_EQ(response.activities(0).subject(), "b");
}

// Protects: a conversion's request id names one request. The same request again is replayed
// (one effect); the id reused with another produce, contact_id or pipeline_id is INVALID_ARGUMENT
// naming both requests, and changes nothing.
TEST_F(DomainGuardsTest, ConversionRequestIdNamesOneRequest) {
  const int64_t lead_id = CreateLead("Anna", "anna@kow.example");
  auto convert = [&](v1::ConversionProduce produce, int64_t pipeline_id, int64_t contact_id,
                     v1::ConvertLeadResponse* response) {
    v1::ConvertLeadRequest request;
    request.set_lead_id(lead_id);
    request.set_produce(produce);
    request.set_pipeline_id(pipeline_id);
    request.set_contact_id(contact_id);
    request.set_request_id("r4");
    return lead_stub_->ConvertLead(Context().get(), request, response);
  };
  v1::ConvertLeadResponse first;
  grpc::Status status = convert(v1::CONVERSION_PRODUCE_CONTACT_DEAL, 0, 0, &first);
  ASSERT_TRUE(status.ok()) << status.error_message();
  v1::ConvertLeadResponse again;
  status = convert(v1::CONVERSION_PRODUCE_CONTACT_DEAL, 0, 0, &again);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(again.replayed());
  EXPECT_EQ(again.deal_id(), first.deal_id());
  const int64_t effects = Count(
      "SELECT (SELECT count(*) FROM contacts) + (SELECT count(*) FROM deals) + "
      "(SELECT count(*) FROM companies) + (SELECT count(*) FROM history)");
  struct Case {
    v1::ConversionProduce produce;
    int64_t pipeline_id;
    int64_t contact_id;
    std::string now;
  };
  for (const Case& c : {Case{v1::CONVERSION_PRODUCE_CONTACT, 0, 0,
                             "CONTACT contact_id=0 company_id=0 pipeline_id=0"},
                        Case{v1::CONVERSION_PRODUCE_CONTACT_DEAL, 1, 0,
                             "CONTACT_DEAL contact_id=0 company_id=0 pipeline_id=1"},
                        Case{v1::CONVERSION_PRODUCE_CONTACT_DEAL, 0, first.contact_id(),
                             absl::StrCat("CONTACT_DEAL contact_id=", first.contact_id(),
                                          " company_id=0 pipeline_id=0")}}) {
    v1::ConvertLeadResponse response;
    grpc::Status refused = convert(c.produce, c.pipeline_id, c.contact_id, &response);
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.now;
    EXPECT_EQ(testing::StatusMessage(refused),
              absl::StrCat("request_id \"r4\" was used for another conversion of lead ", lead_id,
                           " (CONTACT_DEAL contact_id=0 company_id=0 pipeline_id=0, not ", c.now,
                           "); use a new request id"));
    EXPECT_FALSE(response.replayed());
  }
  EXPECT_EQ(Count("SELECT (SELECT count(*) FROM contacts) + (SELECT count(*) FROM deals) + "
                  "(SELECT count(*) FROM companies) + (SELECT count(*) FROM history)"),
            effects);
}

// Protects: the dates and times a caller sets are bounded (years 1900 to 2200: 0001-01-01 and
// 9999-12-31 are typing slips) with INVALID_ARGUMENT, and a deadline is present or absent by
// field presence: 1970-01-01T00:00:00Z (a Timestamp of 0 seconds) is kept, not dropped.
TEST_F(DomainGuardsTest, DatesAreBoundedAndAZeroDeadlineIsKept) {
  const int64_t lead_id = CreateLead("Anna", "anna@kow.example");
  auto create = [&](int64_t seconds, v1::Activity* created) {
    v1::CreateActivityRequest request;
    request.mutable_activity()->set_type(v1::ACTIVITY_TYPE_CALL);
    request.mutable_activity()->set_owner_type(v1::OWNER_TYPE_LEAD);
    request.mutable_activity()->set_owner_id(lead_id);
    request.mutable_activity()->set_subject("Call back");
    request.mutable_activity()->mutable_deadline()->set_seconds(seconds);
    return activity_stub_->CreateActivity(Context().get(), request, created);
  };
  for (int64_t seconds : {-62135596800LL /* 0001-01-01 */, 253402300799LL /* 9999-12-31 */,
                          -2208988801LL /* 1899-12-31T23:59:59Z */}) {
    v1::Activity created;
    grpc::Status refused = create(seconds, &created);
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << seconds;
    EXPECT_EQ(testing::StatusMessage(refused), "deadline must be a time in the years 1900 to 2200");
  }
  EXPECT_EQ(Count("SELECT count(*) FROM activities"), 0);

  v1::Activity epoch;
  grpc::Status status = create(0, &epoch);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(epoch.has_deadline());
  EXPECT_EQ(epoch.deadline().seconds(), 0);
  EXPECT_EQ(Text("SELECT deadline AT TIME ZONE 'UTC' FROM activities"), "1970-01-01 00:00:00");
  v1::ListActivitiesRequest list;
  list.set_owner_type(v1::OWNER_TYPE_LEAD);
  list.set_owner_id(lead_id);
  list.set_overdue_only(true);
  v1::ListActivitiesResponse listed;
  ASSERT_TRUE(activity_stub_->ListActivities(Context().get(), list, &listed).ok());
  ASSERT_EQ(listed.activities_size(), 1);
  EXPECT_TRUE(listed.activities(0).has_deadline());

  for (const std::string date : {"0001-01-01", "1850-01-01", "2201-01-01"}) {
    v1::CreateDealRequest request;
    request.mutable_deal()->set_title("Kitchen");
    request.mutable_deal()->set_expected_close_date(date);
    v1::Deal deal;
    grpc::Status refused = deal_stub_->CreateDeal(Context().get(), request, &deal);
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << date;
    EXPECT_EQ(testing::StatusMessage(refused),
              absl::StrCat("expected_close_date ", date, " is not in the years 1900 to 2200"));
  }
  EXPECT_EQ(Count("SELECT count(*) FROM deals"), 0);
  v1::CreateDealRequest request;
  request.mutable_deal()->set_title("Kitchen");
  request.mutable_deal()->set_expected_close_date("1900-01-01");
  v1::Deal deal;
  status = deal_stub_->CreateDeal(Context().get(), request, &deal);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(deal.expected_close_date(), "1900-01-01");
}

// Protects: UpdateContact does not blank a first name ("  " is INVALID_ARGUMENT, nothing
// changes), as UpdateCompany does not blank a name.
TEST_F(DomainGuardsTest, ContactFirstNameIsNotBlanked) {
  v1::CreateContactRequest create;
  create.mutable_contact()->set_first_name("Marie");
  create.mutable_contact()->set_last_name("Curie");
  v1::CreateContactResponse created;
  ASSERT_TRUE(contact_stub_->CreateContact(Context().get(), create, &created).ok());
  v1::UpdateContactRequest update;
  update.mutable_contact()->set_id(created.contact().id());
  update.mutable_contact()->set_first_name("  ");
  update.mutable_update_mask()->add_paths("first_name");
  v1::Contact updated;
  grpc::Status refused = contact_stub_->UpdateContact(Context().get(), update, &updated);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(testing::StatusMessage(refused), "first_name cannot be blank");
  EXPECT_EQ(
      Text(absl::StrCat("SELECT first_name FROM contacts WHERE id = ", created.contact().id())),
      "Marie");
  update.mutable_contact()->set_first_name("Maria");
  ASSERT_TRUE(contact_stub_->UpdateContact(Context().get(), update, &updated).ok());
  EXPECT_EQ(updated.first_name(), "Maria");
}

// Protects: text a person reads is stored only when it reads as given: control characters (ESC,
// BEL; tab and line breaks outside multi-line comments), bidirectional overrides and names of
// only invisible characters are INVALID_ARGUMENT naming the field; a website is an http(s)
// address. Nothing is stored for a refused call; line breaks in comments are kept.
TEST_F(DomainGuardsTest, TextIsRefusedWhenItWouldNotReadAsGiven) {
  struct Case {
    std::string what;
    std::function<grpc::Status()> call;
    std::string message;
  };
  auto deal = [&](const std::string& title) {
    v1::CreateDealRequest request;
    request.mutable_deal()->set_title(title);
    v1::Deal created;
    return deal_stub_->CreateDeal(Context().get(), request, &created);
  };
  auto company = [&](const std::string& name, const std::string& website) {
    v1::CreateCompanyRequest request;
    request.mutable_company()->set_name(name);
    request.mutable_company()->set_website(website);
    v1::CreateCompanyResponse created;
    return company_stub_->CreateCompany(Context().get(), request, &created);
  };
  auto contact = [&](const std::string& first, const std::string& last) {
    v1::CreateContactRequest request;
    request.mutable_contact()->set_first_name(first);
    request.mutable_contact()->set_last_name(last);
    v1::CreateContactResponse created;
    return contact_stub_->CreateContact(Context().get(), request, &created);
  };
  const std::vector<Case> cases = {
      {"ESC", [&] { return deal("Kitchen \x1b[31m"); },
       "deal.title contains a control character (U+001B)"},
      {"BEL", [&] { return deal("Kitchen\a"); },
       "deal.title contains a control character (U+0007)"},
      {"C1", [&] { return deal("Kitchen \xc2\x9b"); },
       "deal.title contains a control character (U+009B)"},
      {"newline", [&] { return company("Acme\nSARL", ""); },
       "name contains a control character (U+000A): it is one line"},
      {"tab", [&] { return company("Acme\tSARL", ""); },
       "name contains a control character (U+0009): it is one line"},
      {"zero-width", [&] { return contact("Marie", "\u200b"); },
       "last_name is blank: it holds only invisible characters"},
      {"RLO", [&] { return contact("\u202eeiraM", "Curie"); },
       "first_name contains a bidirectional formatting character (U+202E)"},
      {"javascript", [&] { return company("Acme", "javascript:alert(1)"); },
       "website must be an http:// or https:// address"},
      {"no host", [&] { return company("Acme", "https:///path"); },
       "website must be an http:// or https:// address"},
  };
  for (const Case& c : cases) {
    grpc::Status refused = c.call();
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.what;
    EXPECT_EQ(testing::StatusMessage(refused), c.message) << c.what;
  }
  EXPECT_EQ(Count("SELECT (SELECT count(*) FROM deals) + (SELECT count(*) FROM companies) + "
                  "(SELECT count(*) FROM contacts)"),
            0);

  grpc::Status status = company("Acme SARL", "HTTPS://acme.example/about");
  EXPECT_TRUE(status.ok()) << status.error_message();
  status = contact("Léa", "Martin\u200d");  // a joiner beside visible letters is text
  EXPECT_TRUE(status.ok()) << status.error_message();
  v1::CreateLeadRequest lead;
  lead.mutable_lead()->set_first_name("Anna");
  lead.mutable_lead()->set_comments("Call after 6 pm.\r\nAsk for the quote.\tThanks");
  v1::Lead created;
  status = lead_stub_->CreateLead(Context().get(), lead, &created);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(created.comments(), "Call after 6 pm.\r\nAsk for the quote.\tThanks");
}

// Protects: an update mask path is refused saying which kind of wrong it is: a field the
// resource does not have (a typo, "*") apart from one it has that cannot be updated.
TEST_F(DomainGuardsTest, UpdateMaskSaysUnknownApartFromImmutable) {
  v1::CreateCompanyRequest create;
  create.mutable_company()->set_name("Acme");
  v1::CreateCompanyResponse created;
  ASSERT_TRUE(company_stub_->CreateCompany(Context().get(), create, &created).ok());
  for (const auto& [path, message] : std::vector<std::pair<std::string, std::string>>{
           {"nmae", R"(unknown field "nmae" in update_mask: Company has no such field)"},
           {"*", "update_mask '*' (every field) is not supported: name the fields to change"},
           {"id", R"(field "id" cannot be updated)"}}) {
    v1::UpdateCompanyRequest update;
    update.mutable_company()->set_id(created.company().id());
    update.mutable_company()->set_name("Acme SARL");
    update.mutable_update_mask()->add_paths(path);
    v1::Company updated;
    grpc::Status refused = company_stub_->UpdateCompany(Context().get(), update, &updated);
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << path;
    EXPECT_EQ(testing::StatusMessage(refused), message);
  }
  EXPECT_EQ(Text("SELECT name FROM companies"), "Acme");
}

// Protects: stage edits over gRPC: idle_days on the SUCCESS or a FAILURE stage is refused (a
// closed deal is never idle); a rename to another stage's name is ALREADY_EXISTS naming that
// stage, not a description of the pipeline the refused rename would have made.
TEST_F(DomainGuardsTest, StageEditsSayWhatIsWrong) {
  auto update = [&](const std::string& stage_id, const std::string& name, int idle_days,
                    const std::string& path) {
    v1::UpdateStageRequest request;
    request.set_pipeline_id(1);
    request.mutable_stage()->set_id(stage_id);
    request.mutable_stage()->set_name(name);
    request.mutable_stage()->set_idle_days(idle_days);
    request.mutable_update_mask()->add_paths(path);
    v1::Pipeline pipeline;
    return pipeline_stub_->UpdateStage(Context().get(), request, &pipeline);
  };
  grpc::Status refused = update("WON", "", 5, "idle_days");
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(testing::StatusMessage(refused),
            "stage \"WON\" is a SUCCESS stage: idle_days is for PROCESS stages only (a closed deal "
            "is never idle)");
  refused = update("LOSE", "", 5, "idle_days");
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  refused = update("EXECUTING", "Won", 0, "name");
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(testing::StatusMessage(refused), "pipeline 1 has a stage named \"Won\" (WON) already");
  EXPECT_EQ(Count("SELECT count(*) FROM pipeline_stages WHERE idle_days IS NOT NULL"), 0);
  grpc::Status status = update("EXECUTING", "", 5, "idle_days");
  EXPECT_TRUE(status.ok()) << status.error_message();
}

// Protects: lead statuses keep an order and unique names, as stages do: an open status moved
// after the closed ones, or a closed one moved before an open one, is FAILED_PRECONDITION naming
// both; a name another status has ("new" beside "New") is ALREADY_EXISTS; an open status created
// without a sort lands among the open ones.
TEST_F(DomainGuardsTest, LeadStatusesKeepOrderAndUniqueNames) {
  v1::UpdateStatusRequest move;
  move.set_kind(v1::STATUS_KIND_LEAD_STATUS);
  move.mutable_status()->set_id("NEW");
  move.mutable_status()->set_sort(999);
  move.mutable_update_mask()->add_paths("sort");
  v1::Status updated;
  grpc::Status refused = status_stub_->UpdateStatus(Context().get(), move, &updated);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(testing::StatusMessage(refused),
            "\"NEW\" (PROCESS, sort 999) would not come before \"PROCESSED\" (FAILURE, sort 30): "
            "open statuses come first, then the closed ones");
  EXPECT_EQ(Count("SELECT sort FROM lead_statuses WHERE id = 'NEW'"), 10);

  v1::CreateStatusRequest create;
  create.set_kind(v1::STATUS_KIND_LEAD_STATUS);
  create.mutable_status()->set_id("NEW_AGAIN");
  create.mutable_status()->set_name("new");
  create.mutable_status()->set_semantics(v1::SEMANTICS_PROCESS);
  v1::Status created;
  refused = status_stub_->CreateStatus(Context().get(), create, &created);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(testing::StatusMessage(refused), R"("NEW" is named "New" already)");

  create.mutable_status()->set_name("Call later");
  grpc::Status status = status_stub_->CreateStatus(Context().get(), create, &created);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(created.sort(), 25);  // between IN_PROCESS (20) and PROCESSED (30)

  v1::UpdateStatusRequest rename;
  rename.set_kind(v1::STATUS_KIND_LEAD_STATUS);
  rename.mutable_status()->set_id("NEW_AGAIN");
  rename.mutable_status()->set_name("JUNK ");
  rename.mutable_update_mask()->add_paths("name");
  refused = status_stub_->UpdateStatus(Context().get(), rename, &updated);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(testing::StatusMessage(refused), R"("JUNK" is named "Junk" already)");
}

}  // namespace
}  // namespace leadflow::crm
