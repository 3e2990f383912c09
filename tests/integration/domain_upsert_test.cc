// Upsert by identity and the record guards of a second new-user pass, over gRPC against a real
// PostgreSQL: CreateLead/CreateContact/CreateCompany find the person as inbound traffic does and
// keep what the request brought; CreateLead in simple mode; activities on converted leads and
// deleted deals; deals' timelines when their contact goes; the mode switch's progress.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

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

class DomainUpsertTest : public testing::CrmApiTest {
 protected:
  grpc::Status CreateLead(const std::string& first, const std::string& last,
                          const std::vector<std::string>& phones,
                          const std::vector<std::string>& emails, const std::string& comments,
                          bool upsert, v1::Lead* out) {
    v1::CreateLeadRequest request;
    request.mutable_lead()->set_first_name(first);
    request.mutable_lead()->set_last_name(last);
    for (const std::string& phone : phones) request.mutable_lead()->add_phones(phone);
    for (const std::string& email : emails) request.mutable_lead()->add_emails(email);
    request.mutable_lead()->set_comments(comments);
    request.set_upsert_by_identity(upsert);
    return lead_stub_->CreateLead(Context().get(), request, out);
  }

  int64_t NewLead(const std::string& first, const std::string& phone) {
    v1::Lead lead;
    grpc::Status status = CreateLead(first, "Roux", {phone}, {}, "", false, &lead);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return lead.id();
  }

  v1::ConvertLeadResponse Convert(int64_t lead_id, const std::string& request_id) {
    v1::ConvertLeadRequest convert;
    convert.set_lead_id(lead_id);
    convert.set_produce(v1::CONVERSION_PRODUCE_CONTACT_DEAL);
    convert.set_request_id(request_id);
    v1::ConvertLeadResponse converted;
    grpc::Status status = lead_stub_->ConvertLead(Context().get(), convert, &converted);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return converted;
  }

  grpc::Status CreateContact(const std::string& full_name, const std::vector<std::string>& phones,
                             const std::vector<std::string>& emails, bool upsert,
                             v1::CreateContactResponse* out) {
    v1::CreateContactRequest request;
    request.mutable_contact()->set_full_name(full_name);
    for (const std::string& phone : phones) request.mutable_contact()->add_phones(phone);
    for (const std::string& email : emails) request.mutable_contact()->add_emails(email);
    request.set_upsert_by_identity(upsert);
    return contact_stub_->CreateContact(Context().get(), request, out);
  }

  int64_t NewDeal(const std::string& title, int64_t contact_id) {
    v1::CreateDealRequest request;
    request.mutable_deal()->set_title(title);
    request.mutable_deal()->set_stage_id("NEW");
    if (contact_id != 0) request.add_contact_ids(contact_id);
    v1::Deal deal;
    grpc::Status status = deal_stub_->CreateDeal(Context().get(), request, &deal);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return deal.id();
  }

  grpc::Status CreateActivity(v1::OwnerType owner_type, int64_t owner_id, v1::Activity* out) {
    v1::CreateActivityRequest request;
    request.mutable_activity()->set_type(v1::ACTIVITY_TYPE_TASK);
    request.mutable_activity()->set_owner_type(owner_type);
    request.mutable_activity()->set_owner_id(owner_id);
    request.mutable_activity()->set_subject("Call back");
    return activity_stub_->CreateActivity(Context().get(), request, out);
  }
};

// Protects: CreateLead's upsert finds a converted person through the contact and open deal the
// conversion made, as inbound traffic does: the request goes on the deal as an activity holding
// its words (outcome ACTIVITY naming the deal), no lead is made, and its new email joins the
// contact. (It used to return the converted lead as EXISTING with the comment stored nowhere.)
TEST_F(DomainUpsertTest, LeadUpsertOfAConvertedPersonReachesTheirDeal) {
  const int64_t lead_id = NewLead("Conv", "06 31 00 00 02");
  const v1::ConvertLeadResponse converted = Convert(lead_id, "u1");
  const int64_t leads_before = Count("SELECT count(*) FROM leads");

  v1::Lead answer;
  grpc::Status status = CreateLead("Conv", "Again", {"0631000002"}, {"conv@again.example"},
                                   "wants a new quote for 3 offices", true, &answer);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(answer.upsert_outcome(), v1::UPSERT_OUTCOME_ACTIVITY);
  EXPECT_EQ(answer.upsert_target().type(), v1::OWNER_TYPE_DEAL);
  EXPECT_EQ(answer.upsert_target().id(), converted.deal_id());
  EXPECT_EQ(answer.id(), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), leads_before);
  EXPECT_EQ(Count(absl::StrCat("SELECT count(*) FROM activities WHERE owner_type = 'DEAL' AND "
                               "owner_id = ",
                               converted.deal_id(), " AND id = ", answer.upsert_activity_id(),
                               " AND description LIKE 'wants a new quote for 3 offices%'")),
            1);
  EXPECT_EQ(Count(absl::StrCat("SELECT count(*) FROM contact_identities WHERE contact_id = ",
                               converted.contact_id(),
                               " AND kind = 'EMAIL' AND value = 'conv@again.example'")),
            1);
  EXPECT_EQ(Count(absl::StrCat("SELECT count(*) FROM history WHERE entity_type = 'CONTACT' AND "
                               "entity_id = ",
                               converted.contact_id(),
                               " AND kind = 'FIELD_CHANGED' AND field = 'emails'")),
            1);
}

// Protects: a junk lead is not an "existing" open lead: CreateLead's upsert makes a returning
// lead linked to it (outcome RETURNING_LEAD), as a form from that person would; a contact with
// nothing open gets a returning lead linked to the contact (A4: contacts were ignored).
TEST_F(DomainUpsertTest, LeadUpsertOfAClosedLeadOrAContactMakesAReturningLead) {
  const int64_t junk = NewLead("Junk", "06 31 00 00 03");
  Exec(absl::StrCat("UPDATE leads SET status = 'JUNK' WHERE id = ", junk));
  v1::Lead answer;
  grpc::Status status = CreateLead("Junk", "Back", {"0631000003"}, {}, "", true, &answer);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(answer.upsert_outcome(), v1::UPSERT_OUTCOME_RETURNING_LEAD);
  EXPECT_NE(answer.id(), junk);
  EXPECT_TRUE(answer.returning());
  EXPECT_EQ(answer.previous_lead_id(), junk);
  EXPECT_EQ(answer.status_id(), "NEW");

  v1::CreateContactResponse contact;
  status = CreateContact("Seq Upsert", {"06 31 00 00 01"}, {}, false, &contact);
  ASSERT_TRUE(status.ok()) << status.error_message();
  v1::Lead again;
  status = CreateLead("Seq", "Again", {"0631000001"}, {}, "", true, &again);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(again.upsert_outcome(), v1::UPSERT_OUTCOME_RETURNING_LEAD);
  EXPECT_EQ(
      Count(absl::StrCat("SELECT coalesce(contact_id, 0) FROM leads WHERE id = ", again.id())),
      contact.contact().id());
}

// Protects: CreateLead's upsert of an open lead returns it (EXISTING) and keeps what the request
// brought: its new email on the lead (with history), its words as an activity, one more repeat.
TEST_F(DomainUpsertTest, LeadUpsertOfAnOpenLeadKeepsTheRequest) {
  const int64_t lead_id = NewLead("Open", "06 31 00 00 04");
  v1::Lead answer;
  grpc::Status status = CreateLead("Open", "Roux", {"0631000004"}, {"open@roux.example"},
                                   "second visit", true, &answer);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(answer.upsert_outcome(), v1::UPSERT_OUTCOME_EXISTING);
  EXPECT_EQ(answer.id(), lead_id);
  EXPECT_EQ(answer.repeat_count(), 1);
  ASSERT_EQ(answer.emails_size(), 1);
  EXPECT_EQ(answer.emails(0), "open@roux.example");
  EXPECT_EQ(Count(absl::StrCat("SELECT count(*) FROM activities WHERE owner_type = 'LEAD' AND "
                               "owner_id = ",
                               lead_id, " AND description LIKE 'second visit%'")),
            1);
}

// Protects: CreateContact's upsert adds the request's phones and emails the existing contact
// lacks (A2: they were dropped), with a FIELD_CHANGED entry and a new etag; CreateCompany's too.
TEST_F(DomainUpsertTest, ContactAndCompanyUpsertKeepTheRequestsIdentities) {
  v1::CreateContactResponse first;
  grpc::Status status = CreateContact("Seq Upsert", {"06 31 00 00 01"}, {}, false, &first);
  ASSERT_TRUE(status.ok()) << status.error_message();
  v1::CreateContactResponse second;
  status = CreateContact("Seq Other", {"06 31 00 00 01"}, {"seq@new.example"}, true, &second);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(second.outcome(), v1::UPSERT_OUTCOME_EXISTING);
  EXPECT_EQ(second.contact().id(), first.contact().id());
  ASSERT_EQ(second.contact().emails_size(), 1);
  EXPECT_EQ(second.contact().emails(0), "seq@new.example");
  EXPECT_NE(second.contact().etag(), first.contact().etag());
  EXPECT_EQ(Count(absl::StrCat("SELECT count(*) FROM history WHERE entity_type = 'CONTACT' AND "
                               "entity_id = ",
                               first.contact().id(),
                               " AND kind = 'FIELD_CHANGED' AND field = 'emails' AND new_value "
                               "= 'seq@new.example'")),
            1);

  v1::CreateCompanyRequest company;
  company.mutable_company()->set_name("Atelier Seq");
  company.mutable_company()->add_emails("office@seq.example");
  v1::CreateCompanyResponse made;
  status = company_stub_->CreateCompany(Context().get(), company, &made);
  ASSERT_TRUE(status.ok()) << status.error_message();
  company.mutable_company()->add_phones("01 44 27 00 00");
  company.set_upsert_by_identity(true);
  v1::CreateCompanyResponse found;
  status = company_stub_->CreateCompany(Context().get(), company, &found);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(found.outcome(), v1::UPSERT_OUTCOME_EXISTING);
  EXPECT_EQ(found.company().id(), made.company().id());
  EXPECT_EQ(found.company().phones_size(), 1);
}

// Protects: in simple mode CreateLead is FAILED_PRECONDITION naming the mode, and makes nothing
// (B6: it made open leads that then took the customer's messages away from contacts and deals).
TEST_F(DomainUpsertTest, CreateLeadIsRefusedInSimpleMode) {
  Exec("UPDATE crm_settings SET mode = 'SIMPLE'");
  for (bool upsert : {false, true}) {
    v1::Lead answer;
    grpc::Status status = CreateLead("Simple", "Mode", {"0631000005"}, {}, "", upsert, &answer);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << upsert;
    EXPECT_NE(testing::StatusMessage(status).find("simple mode"), std::string::npos)
        << testing::StatusMessage(status);
  }
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 0);
}

// Protects: a converted lead takes no new activity: FAILED_PRECONDITION naming what it was
// converted into (D22), nothing written.
TEST_F(DomainUpsertTest, ConvertedLeadTakesNoActivity) {
  const int64_t lead_id = NewLead("Conv", "06 31 00 00 06");
  const v1::ConvertLeadResponse converted = Convert(lead_id, "u6");
  const int64_t activities = Count("SELECT count(*) FROM activities");
  v1::Activity activity;
  grpc::Status status = CreateActivity(v1::OWNER_TYPE_LEAD, lead_id, &activity);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(testing::StatusMessage(status),
            absl::StrCat("lead ", lead_id, " is converted into contact ", converted.contact_id(),
                         ", deal ", converted.deal_id(),
                         ": plan the activity on one of them (owner_type CONTACT, COMPANY or "
                         "DEAL)"));
  EXPECT_EQ(Count("SELECT count(*) FROM activities"), activities);
}

// Protects: deleting a contact leaves UNLINKED (the contact) on each deal it was on (B7), and
// deleting a deal deletes its activities (B8: they stayed open and overdue for ever).
TEST_F(DomainUpsertTest, DeletesLeaveNoOrphans) {
  v1::CreateContactResponse contact;
  grpc::Status status = CreateContact("Del Person", {"06 31 00 00 07"}, {}, false, &contact);
  ASSERT_TRUE(status.ok()) << status.error_message();
  const int64_t deal_id = NewDeal("Kitchen", contact.contact().id());
  v1::DeleteContactRequest remove;
  remove.set_id(contact.contact().id());
  google::protobuf::Empty empty;
  status = contact_stub_->DeleteContact(Context().get(), remove, &empty);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(Count(absl::StrCat("SELECT count(*) FROM history WHERE entity_type = 'DEAL' AND "
                               "entity_id = ",
                               deal_id, " AND kind = 'UNLINKED' AND related_type = 'CONTACT' AND ",
                               "related_id = ", contact.contact().id())),
            1);

  v1::Activity activity;
  status = CreateActivity(v1::OWNER_TYPE_DEAL, deal_id, &activity);
  ASSERT_TRUE(status.ok()) << status.error_message();
  v1::DeleteDealRequest drop;
  drop.set_id(deal_id);
  status = deal_stub_->DeleteDeal(Context().get(), drop, &empty);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(Count(absl::StrCat("SELECT count(*) FROM activities WHERE owner_type = 'DEAL' AND "
                               "owner_id = ",
                               deal_id)),
            0);
}

// Protects: the classic → simple switch's total grows with the leads opened after it counted
// them, so done never passes total (D17: 16606 of 16005).
TEST_F(DomainUpsertTest, ModeSwitchTotalGrowsWithLateLeads) {
  auto add_leads = [&](int count) {
    Exec(absl::StrCat(
        "INSERT INTO leads (title, first_name, last_name, source, status) SELECT 'Lead ' || i, "
        "'First' || i, 'Last', 'WEB_FORM', 'NEW' FROM generate_series(1, ",
        count, ") AS i"));
  };
  add_leads(3);
  Exec(
      "UPDATE crm_settings SET mode = 'SIMPLE'; "
      "INSERT INTO mode_switch_jobs (to_mode) VALUES ('SIMPLE')");
  pqxx::connection connection(api_->database_url());
  pg::PrepareAll(connection, Statements());
  metrics::Registry registry;
  ModeSwitchCounters counters(registry);
  auto step = [&] {
    absl::StatusOr<bool> worked = RunModeSwitchStep(connection, 2, counters);
    EXPECT_TRUE(worked.ok()) << worked.status();
  };
  step();  // counts 3, converts 2
  EXPECT_EQ(Count("SELECT total FROM mode_switch_jobs"), 3);
  add_leads(4);  // opened during the switch
  bool finished = false;
  for (int i = 0; i < 10 && !finished; ++i) {  // bounded: 3 more steps, then the end
    step();
    EXPECT_LE(Count("SELECT done FROM mode_switch_jobs"),
              Count("SELECT total FROM mode_switch_jobs"));
    finished = Count("SELECT count(*) FROM mode_switch_jobs WHERE state = 'DONE'") == 1;
  }
  ASSERT_TRUE(finished);
  EXPECT_EQ(Count("SELECT done FROM mode_switch_jobs"), 7);
  EXPECT_EQ(Count("SELECT total FROM mode_switch_jobs"), 7);
}

// Protects: ConvertLead does not make a second contact for a person who is one already (A5):
// FAILED_PRECONDITION naming the contact holding the lead's phone, nothing written; with that
// contact_id the conversion goes through into it.
TEST_F(DomainUpsertTest, ConvertLeadRefusesASecondContactForThePerson) {
  v1::CreateContactResponse contact;
  grpc::Status status = CreateContact("Seq Upsert", {"06 31 00 00 08"}, {}, false, &contact);
  ASSERT_TRUE(status.ok()) << status.error_message();
  const int64_t lead_id = NewLead("Seq", "06 31 00 00 08");
  const int64_t contacts = Count("SELECT count(*) FROM contacts");
  v1::ConvertLeadRequest convert;
  convert.set_lead_id(lead_id);
  convert.set_produce(v1::CONVERSION_PRODUCE_CONTACT_DEAL);
  convert.set_request_id("u8");
  v1::ConvertLeadResponse converted;
  status = lead_stub_->ConvertLead(Context().get(), convert, &converted);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(testing::StatusMessage(status),
            absl::StrCat("lead ", lead_id, " shares a phone or email with contact ",
                         contact.contact().id(), ": convert it into that contact (contact_id ",
                         contact.contact().id(),
                         ") instead of creating a second one for the same person"));
  EXPECT_EQ(Count("SELECT count(*) FROM contacts"), contacts);
  EXPECT_EQ(Count("SELECT count(*) FROM deals"), 0);

  convert.set_contact_id(contact.contact().id());
  convert.set_request_id("u8b");
  status = lead_stub_->ConvertLead(Context().get(), convert, &converted);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(converted.contact_id(), contact.contact().id());
}

// Protects: the classic → simple switch converts a lead whose phone a contact holds into a deal
// of that contact, not into a second contact with the same phone (A3).
TEST_F(DomainUpsertTest, ModeSwitchConvertsIntoTheExistingContact) {
  v1::CreateContactResponse contact;
  grpc::Status status = CreateContact("Seq Upsert", {"06 31 00 00 09"}, {}, false, &contact);
  ASSERT_TRUE(status.ok()) << status.error_message();
  const int64_t lead_id = NewLead("Seq", "06 31 00 00 09");
  NewLead("Other", "06 31 00 00 10");
  Exec(
      "UPDATE crm_settings SET mode = 'SIMPLE'; "
      "INSERT INTO mode_switch_jobs (to_mode) VALUES ('SIMPLE')");
  pqxx::connection connection(api_->database_url());
  pg::PrepareAll(connection, Statements());
  metrics::Registry registry;
  ModeSwitchCounters counters(registry);
  bool finished = false;
  for (int i = 0; i < 10 && !finished; ++i) {  // bounded: one step, then the end
    absl::StatusOr<bool> worked = RunModeSwitchStep(connection, 10, counters);
    EXPECT_TRUE(worked.ok()) << worked.status();
    finished = Count("SELECT count(*) FROM mode_switch_jobs WHERE state = 'DONE'") == 1;
  }
  ASSERT_TRUE(finished);
  EXPECT_EQ(Count("SELECT count(*) FROM contacts"), 2);  // the existing one, the other lead's
  EXPECT_EQ(Count("SELECT count(*) FROM contact_identities WHERE value = '+33631000009'"), 1);
  EXPECT_EQ(Count(absl::StrCat("SELECT count(*) FROM deals AS d JOIN deal_contacts AS dc ON ",
                               "dc.deal_id = d.id WHERE d.lead_id = ", lead_id,
                               " AND dc.contact_id = ", contact.contact().id())),
            1);
}

}  // namespace
}  // namespace leadflow::crm
