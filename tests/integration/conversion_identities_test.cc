// One person, one record when identities are added to an existing contact or company
// (docs/domain.md, "One person, one record"), against a real PostgreSQL over crm-core's gRPC
// services in process and its inbound path (librdkafka's mock cluster): ConvertLead into an
// existing record, inbound traffic attaching a new email, and the classic → simple switch. Each
// path refuses or leaves a phone or email another record of the kind holds, and what it adds
// gives the record a new etag, update time and FIELD_CHANGED entry.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <google/protobuf/util/time_util.h>

#include <pqxx/pqxx>

#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "crm-core/inbound/mode_switch.h"
#include "crm-core/store/statements.h"
#include "pg/pg.h"
#include "testing/crm.h"
#include "testing/testing.h"

namespace leadflow::crm {
namespace {

using namespace std::chrono_literals;

class ConversionIdentitiesTest : public testing::CrmApiTest {
 protected:
  v1::Contact GetContact(int64_t id) {
    v1::GetContactRequest request;
    request.set_id(id);
    v1::Contact contact;
    grpc::Status status = contact_stub_->GetContact(Context().get(), request, &contact);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return contact;
  }

  v1::Company GetCompany(int64_t id) {
    v1::GetCompanyRequest request;
    request.set_id(id);
    v1::Company company;
    grpc::Status status = company_stub_->GetCompany(Context().get(), request, &company);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return company;
  }

  v1::Lead GetLead(int64_t id) {
    v1::GetLeadRequest request;
    request.set_id(id);
    v1::Lead lead;
    grpc::Status status = lead_stub_->GetLead(Context().get(), request, &lead);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return lead;
  }

  // An open lead holding these (normalised) identities, as inbound traffic or an older release
  // left it: written directly, whatever the API's Create paths would say about them.
  int64_t Lead(const std::string& first, const std::vector<std::string>& phones,
               const std::vector<std::string>& emails = {}) {
    const int64_t id = Count(
        absl::StrCat("INSERT INTO leads (title, first_name, last_name, source, status) VALUES ('",
                     first, " request', '", first, "', 'Lead', 'WEB_FORM', 'NEW') RETURNING id"));
    for (const auto& [kind, values] : {std::pair{"PHONE", &phones}, {"EMAIL", &emails}}) {
      for (const std::string& value : *values) {
        Exec(absl::StrCat("INSERT INTO lead_identities (kind, value, lead_id) VALUES ('", kind,
                          "', '", value, "', ", id, ")"));
      }
    }
    return id;
  }

  grpc::Status Convert(int64_t lead_id, v1::ConversionProduce produce, int64_t contact_id,
                       int64_t company_id, v1::ConvertLeadResponse* response) {
    v1::ConvertLeadRequest request;
    request.set_lead_id(lead_id);
    request.set_produce(produce);
    request.set_contact_id(contact_id);
    request.set_company_id(company_id);
    request.set_request_id(absl::StrCat("convert-", lead_id, "-", contact_id, "-", company_id));
    return lead_stub_->ConvertLead(Context().get(), request, response);
  }

  // The FIELD_CHANGED entries of `field` on the timeline, newest first, as "old -> new".
  std::vector<std::string> Changes(v1::OwnerType type, int64_t id, const std::string& field) {
    std::vector<std::string> changes;
    for (const v1::HistoryEntry& entry : History(type, id)) {
      if (entry.kind() == "FIELD_CHANGED" && entry.field() == field) {
        changes.push_back(absl::StrCat(entry.old_value(), " -> ", entry.new_value()));
      }
    }
    return changes;
  }

  // A manager's save of the form read before: phones and position with `etag`.
  grpc::Status SaveContactPhones(int64_t id, const std::string& etag,
                                 const std::vector<std::string>& phones) {
    v1::UpdateContactRequest request;
    request.mutable_contact()->set_id(id);
    request.mutable_contact()->set_etag(etag);
    request.mutable_contact()->set_position("Buyer");
    for (const std::string& phone : phones) request.mutable_contact()->add_phones(phone);
    request.mutable_update_mask()->add_paths("phones");
    request.mutable_update_mask()->add_paths("position");
    v1::Contact updated;
    return contact_stub_->UpdateContact(Context().get(), request, &updated);
  }

  // Steps the running mode switch job until it is DONE (a bounded number of steps).
  void RunSwitch(ModeSwitchCounters& counters) {
    pqxx::connection connection(api_->database_url());
    pg::PrepareAll(connection, Statements());
    bool finished = false;
    for (int step = 0; step < 20 && !finished; ++step) {
      absl::StatusOr<bool> worked = RunModeSwitchStep(connection, 10, counters, 20);
      ASSERT_TRUE(worked.ok()) << worked.status();
      finished = Count("SELECT count(*) FROM mode_switch_jobs WHERE state = 'DONE'") == 1;
    }
    ASSERT_TRUE(finished);
  }
};

// Protects: ConvertLead into an existing contact never gives it a phone or email another contact
// holds (r7d A1: contact 53 took contact 52's phone, and 52's person's next form landed on 53's
// deal). The request is FAILED_PRECONDITION naming the holder and the ways out, and nothing is
// written: the lead stays open, the named contact keeps its identities and etag, no deal. Into
// the holder itself it converts.
TEST_F(ConversionIdentitiesTest, ConvertIntoContactRefusesAnotherContactsPhoneOrEmail) {
  const v1::Contact alice = MakeContact("Alice Holder", {"+33671200001"});
  const v1::Contact boris = MakeContact("Boris Target", {"+33671200002"});
  const v1::Contact carla = MakeContact("Carla Owner", {}, {"owner@mix.example"});
  const int64_t lead = Lead("Mixed", {"+33671200001"}, {"mixed@lead.example"});
  const int64_t deals = Count("SELECT count(*) FROM deals");

  v1::ConvertLeadResponse response;
  grpc::Status refused = Convert(lead, v1::CONVERSION_PRODUCE_DEAL, boris.id(), 0, &response);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(testing::StatusMessage(refused),
            absl::StrCat("lead ", lead, " shares +33671200001 with contact ", alice.id(),
                         ": convert it into contact ", alice.id(), " (contact_id ", alice.id(),
                         "), or merge contacts ", alice.id(), " and ", boris.id(),
                         " first (ContactService/MergeContacts); nothing was written"));
  const v1::Contact boris_after = GetContact(boris.id());
  EXPECT_EQ(std::vector<std::string>(boris_after.phones().begin(), boris_after.phones().end()),
            std::vector<std::string>{"+33671200002"});
  EXPECT_TRUE(boris_after.emails().empty());
  EXPECT_EQ(boris_after.etag(), boris.etag());
  EXPECT_EQ(GetLead(lead).status_id(), "NEW");
  EXPECT_EQ(Count("SELECT count(*) FROM deals"), deals);

  // The same for an email, and with two holders each is named.
  const int64_t both = Lead("Both", {"+33671200001"}, {"owner@mix.example"});
  refused = Convert(both, v1::CONVERSION_PRODUCE_CONTACT, boris.id(), 0, &response);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(
      testing::StatusMessage(refused),
      absl::StrCat("lead ", both, " shares +33671200001 with contact ", alice.id(),
                   "; owner@mix.example with contact ", carla.id(), ": merge those of contacts ",
                   alice.id(), ", ", carla.id(), " and ", boris.id(),
                   " that are this person first (ContactService/MergeContacts), then "
                   "convert it into the one kept; nothing was written"));
  EXPECT_EQ(Count(absl::StrCat("SELECT count(*) FROM contact_identities WHERE contact_id = ",
                               boris.id())),
            1);

  // Into the contact holding the phone: allowed, and it takes the lead's new email.
  grpc::Status status = Convert(lead, v1::CONVERSION_PRODUCE_DEAL, alice.id(), 0, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  const v1::Contact alice_after = GetContact(alice.id());
  EXPECT_EQ(std::vector<std::string>(alice_after.emails().begin(), alice_after.emails().end()),
            std::vector<std::string>{"mixed@lead.example"});
  EXPECT_EQ(Count("SELECT count(*) FROM contact_identities WHERE value = '+33671200001'"), 1);
}

// Protects: the same rule for ConvertLead into an existing company (r7d A1: company 23 took
// company 22's phone): FAILED_PRECONDITION naming the holder, nothing written; a lead whose
// phones no other company holds converts into it.
TEST_F(ConversionIdentitiesTest, ConvertIntoCompanyRefusesAnotherCompanysPhone) {
  const v1::Company holder = MakeCompany("Holder SA", {"+33471200001"});
  const v1::Company target = MakeCompany("Target SA", {"+33471200002"});
  const int64_t lead = Lead("Co", {"+33471200001"});

  v1::ConvertLeadResponse response;
  grpc::Status refused = Convert(lead, v1::CONVERSION_PRODUCE_DEAL, 0, target.id(), &response);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(testing::StatusMessage(refused),
            absl::StrCat("lead ", lead, " shares +33471200001 with company ", holder.id(),
                         ": convert it into company ", holder.id(), " (company_id ", holder.id(),
                         "), or merge companies ", holder.id(), " and ", target.id(),
                         " first (CompanyService/MergeCompanies); nothing was written"));
  const v1::Company target_after = GetCompany(target.id());
  EXPECT_EQ(target_after.phones_size(), 1);
  EXPECT_EQ(target_after.etag(), target.etag());
  EXPECT_EQ(GetLead(lead).status_id(), "NEW");

  const int64_t own = Lead("Own", {"+33471200003"});
  grpc::Status status = Convert(own, v1::CONVERSION_PRODUCE_DEAL, 0, target.id(), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(GetCompany(target.id()).phones_size(), 2);
}

// Protects: identities ConvertLead adds to an existing contact or company give it a new etag,
// update time and FIELD_CHANGED entry (r7d A2: etag "1" kept, and a manager's save with it
// silently dropped the added phone; the person's next form then missed their deal). The save
// made with the etag read before the conversion is ABORTED.
TEST_F(ConversionIdentitiesTest, ConvertIntoExistingRecordBumpsItsEtagAndHistory) {
  const v1::Contact erik = MakeContact("Etag Erik", {"+33687000001"});
  const v1::Company company = MakeCompany("Etag SARL", {"+33487000001"});
  const int64_t lead = Lead("Erik", {"+33687000002"}, {"erik@etag.example"});

  v1::ConvertLeadResponse response;
  grpc::Status status = Convert(lead, v1::CONVERSION_PRODUCE_DEAL, erik.id(), 0, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  const v1::Contact after = GetContact(erik.id());
  EXPECT_EQ(std::vector<std::string>(after.phones().begin(), after.phones().end()),
            (std::vector<std::string>{"+33687000001", "+33687000002"}));
  EXPECT_NE(after.etag(), erik.etag());
  EXPECT_GT(google::protobuf::util::TimeUtil::TimestampToMicroseconds(after.update_time()),
            google::protobuf::util::TimeUtil::TimestampToMicroseconds(erik.update_time()));
  EXPECT_EQ(Changes(v1::OWNER_TYPE_CONTACT, erik.id(), "phones"),
            std::vector<std::string>{"+33687000001 -> +33687000001, +33687000002"});
  EXPECT_EQ(Changes(v1::OWNER_TYPE_CONTACT, erik.id(), "emails"),
            std::vector<std::string>{" -> erik@etag.example"});

  grpc::Status stale = SaveContactPhones(erik.id(), erik.etag(), {"+33687000001"});
  EXPECT_EQ(stale.error_code(), grpc::StatusCode::ABORTED) << stale.error_message();
  EXPECT_EQ(GetContact(erik.id()).phones_size(), 2);

  // A company taking a lead's phone (DEAL with company_id only).
  const int64_t company_lead = Lead("Firm", {"+33487000002"});
  status = Convert(company_lead, v1::CONVERSION_PRODUCE_DEAL, 0, company.id(), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  const v1::Company company_after = GetCompany(company.id());
  EXPECT_NE(company_after.etag(), company.etag());
  EXPECT_EQ(Changes(v1::OWNER_TYPE_COMPANY, company.id(), "phones"),
            std::vector<std::string>{"+33487000001 -> +33487000001, +33487000002"});
}

// Protects: a new email inbound traffic attaches to an existing contact (the planner's Attach:
// a known customer writes from a new address) gives it a new etag and FIELD_CHANGED emails, so
// a manager's save with the etag read before is ABORTED instead of dropping it (r7d A2, contact
// 51 "Ines Inbound").
TEST_F(ConversionIdentitiesTest, InboundAttachBumpsTheContactsEtagAndHistory) {
  const v1::Contact ines = MakeContact("Ines Inbound", {"+33689000001"});
  const int64_t deal = Count(absl::StrCat(
      "INSERT INTO deals (title, pipeline_id, stage_id, stage_semantics) VALUES ('Ines deal', 1, "
      "'NEW', 'PROCESS') RETURNING id"));
  Exec(absl::StrCat("INSERT INTO deal_contacts (deal_id, contact_id) VALUES (", deal, ", ",
                    ines.id(), ")"));

  testing::CrmInbound inbound(api_->database_url());
  auto processor = inbound.MakeProcessor();
  ASSERT_TRUE(processor
                  ->Process({testing::InboundMessage(testing::WebFormEvent(
                      "ines-1", "+33689000001", "ines@new.example", "Ines Inbound", "Quote?"))})
                  .ok());

  const v1::Contact after = GetContact(ines.id());
  EXPECT_EQ(std::vector<std::string>(after.emails().begin(), after.emails().end()),
            std::vector<std::string>{"ines@new.example"});
  EXPECT_NE(after.etag(), ines.etag());
  EXPECT_EQ(Changes(v1::OWNER_TYPE_CONTACT, ines.id(), "emails"),
            std::vector<std::string>{" -> ines@new.example"});
  EXPECT_EQ(Count(absl::StrCat("SELECT count(*) FROM activities WHERE owner_type = 'DEAL' AND "
                               "owner_id = ",
                               deal)),
            1);

  v1::UpdateContactRequest request;
  request.mutable_contact()->set_id(ines.id());
  request.mutable_contact()->set_etag(ines.etag());
  request.mutable_update_mask()->add_paths("emails");
  v1::Contact updated;
  grpc::Status stale = contact_stub_->UpdateContact(Context().get(), request, &updated);
  EXPECT_EQ(stale.error_code(), grpc::StatusCode::ABORTED) << stale.error_message();
  EXPECT_EQ(GetContact(ines.id()).emails_size(), 1);
}

// Protects: the classic → simple switch converting a lead into the contact its person already
// is (r7d A1/A2/C1, s11_switch): it never copies another contact's email onto it (left, counted
// in crm_mode_switch_identities_not_copied_total and named on the lead's CONVERTED entry), what
// it does add gives the contact a new etag and FIELD_CHANGED, and the converted lead's
// contact_id (field 41) and company_id point at what it became part of, as ConvertLead's do.
TEST_F(ConversionIdentitiesTest, ModeSwitchLeavesAnotherContactsEmailAndLinksTheLead) {
  const v1::Contact holder = MakeContact("Sw Phone", {"+33671300001"});
  const v1::Contact other = MakeContact("Sw Mail", {}, {"sw@mail.example"});
  const v1::Company company = MakeCompany("Sw SA", {"+33471300009"});
  const int64_t lead = Lead("Switch", {"+33671300001"}, {"sw@mail.example", "sw.new@mail.example"});
  const int64_t firm_lead = Lead("Firm", {"+33471300009"});
  // Two open leads of one person no contact holds yet: one new contact for both.
  const int64_t twin_a = Lead("Twin", {"+33671300077"});
  const int64_t twin_b = Lead("Twin", {"+33671300077"}, {"twin@mail.example"});
  Exec(
      "UPDATE crm_settings SET mode = 'SIMPLE';"
      "INSERT INTO mode_switch_jobs (to_mode) VALUES ('SIMPLE')");

  metrics::Registry registry;
  ModeSwitchCounters counters(registry);
  RunSwitch(counters);

  EXPECT_EQ(Count("SELECT count(*) FROM contact_identities WHERE value = 'sw@mail.example'"), 1);
  const v1::Contact after = GetContact(holder.id());
  EXPECT_EQ(std::vector<std::string>(after.emails().begin(), after.emails().end()),
            std::vector<std::string>{"sw.new@mail.example"});
  EXPECT_NE(after.etag(), holder.etag());
  EXPECT_EQ(Changes(v1::OWNER_TYPE_CONTACT, holder.id(), "emails"),
            std::vector<std::string>{" -> sw.new@mail.example"});
  EXPECT_EQ(GetContact(other.id()).etag(), other.etag());
  EXPECT_EQ(counters.identities_not_copied.Value(), 1);
  int named = 0;
  for (const v1::HistoryEntry& entry : History(v1::OWNER_TYPE_LEAD, lead)) {
    if (entry.kind() == "CONVERTED" && entry.related().type() == v1::OWNER_TYPE_CONTACT) {
      EXPECT_EQ(entry.related().id(), holder.id());
      EXPECT_EQ(entry.field(), "identities_not_copied");
      EXPECT_EQ(entry.new_value(), absl::StrCat("sw@mail.example (contact ", other.id(), ")"));
      ++named;
    }
  }
  EXPECT_EQ(named, 1);

  const v1::Lead converted = GetLead(lead);
  EXPECT_EQ(converted.status_id(), "CONVERTED");
  EXPECT_EQ(converted.contact_id(), holder.id());
  EXPECT_EQ(converted.converted_contact_id(), holder.id());
  const v1::Lead firm = GetLead(firm_lead);
  EXPECT_NE(firm.contact_id(), 0);
  EXPECT_EQ(firm.contact_id(), firm.converted_contact_id());
  EXPECT_EQ(firm.company_id(), company.id());

  const v1::Lead a = GetLead(twin_a);
  const v1::Lead b = GetLead(twin_b);
  EXPECT_NE(a.contact_id(), 0);
  EXPECT_EQ(b.contact_id(), a.contact_id());
  EXPECT_EQ(Count("SELECT count(*) FROM contact_identities WHERE value = '+33671300077'"), 1);
}

// Protects: ConvertLead into an existing contact (company) holds it to the identity cap
// (CRM_LEAD_MAX_INBOUND_IDENTITIES, 20 here) as the upserts, merges and inbound traffic do: one
// lead after another converted into the same contact grew it without bound. Over the cap the
// call is FAILED_PRECONDITION naming the cap and the ways out, and nothing is written (the lead
// stays open, the contact keeps its identities and etag, no deal); up to the cap it converts, and
// a lead adding nothing new converts into a record already over it.
TEST_F(ConversionIdentitiesTest, ConvertIntoExistingRecordKeepsTheIdentityCap) {
  std::vector<std::string> held;
  for (int i = 1; i <= 15; ++i) held.push_back(absl::StrFormat("+336872000%02d", i));
  const v1::Contact target = MakeContact("Capped Carl", held);
  std::vector<std::string> many;
  for (int i = 1; i <= 6; ++i) many.push_back(absl::StrFormat("+336872100%02d", i));
  const int64_t lead = Lead("Many", many);
  const int64_t deals = Count("SELECT count(*) FROM deals");

  v1::ConvertLeadResponse response;
  grpc::Status refused = Convert(lead, v1::CONVERSION_PRODUCE_DEAL, target.id(), 0, &response);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(testing::StatusMessage(refused),
            absl::StrCat("contact ", target.id(),
                         " holds 15 phones, emails and messenger ids and "
                         "would hold 21 with lead ",
                         lead,
                         "'s, over the cap of 20 (CRM_LEAD_MAX_INBOUND_IDENTITIES): remove some "
                         "from the contact first (ContactService/UpdateContact), or convert "
                         "without contact_id; nothing was written"));
  const v1::Contact after = GetContact(target.id());
  EXPECT_EQ(after.phones_size(), 15);
  EXPECT_EQ(after.etag(), target.etag());
  EXPECT_EQ(GetLead(lead).status_id(), "NEW");
  EXPECT_EQ(Count("SELECT count(*) FROM deals"), deals);

  // The same for a company named by company_id (DEAL with a company only).
  const v1::Company firm = MakeCompany("Capped SARL", {"+33487210000"});
  std::vector<std::string> firm_phones;
  for (int i = 1; i <= 20; ++i) firm_phones.push_back(absl::StrFormat("+334872200%02d", i));
  const int64_t firm_lead = Lead("Firm", firm_phones);
  refused = Convert(firm_lead, v1::CONVERSION_PRODUCE_DEAL, 0, firm.id(), &response);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(testing::StatusMessage(refused).find("over the cap of 20"), std::string::npos)
      << testing::StatusMessage(refused);
  EXPECT_EQ(GetCompany(firm.id()).phones_size(), 1);

  // Up to the cap: converted.
  many.pop_back();
  const int64_t fits = Lead("Fits", many);
  grpc::Status status = Convert(fits, v1::CONVERSION_PRODUCE_DEAL, target.id(), 0, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(GetContact(target.id()).phones_size(), 20);

  // A record over the cap already (set by hand) takes a lead that adds nothing new.
  Exec(
      absl::StrCat("INSERT INTO contact_identities (kind, value, contact_id) VALUES ('PHONE', "
                   "'+33687230001', ",
                   target.id(), ")"));
  const int64_t nothing_new = Lead("Again", {"+33687200001"});
  status = Convert(nothing_new, v1::CONVERSION_PRODUCE_DEAL, target.id(), 0, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
}

// Protects: two ConvertLead calls into one contact at once keep the identity cap together: the
// contact's row is locked FOR NO KEY UPDATE before its identities are counted, so the second
// counts what the first added. Counted under FOR KEY SHARE both saw 15 + 5 and the contact ended
// with 25. A transaction of the test's own holds the contact's row until both calls wait on it.
TEST_F(ConversionIdentitiesTest, ConcurrentConversionsIntoOneContactKeepTheIdentityCap) {
  std::vector<std::string> held;
  for (int i = 1; i <= 15; ++i) held.push_back(absl::StrFormat("+336874000%02d", i));
  const v1::Contact target = MakeContact("Raced Rita", held);
  std::vector<std::string> first_phones;
  std::vector<std::string> second_phones;
  for (int i = 1; i <= 5; ++i) {
    first_phones.push_back(absl::StrFormat("+336874100%02d", i));
    second_phones.push_back(absl::StrFormat("+336874200%02d", i));
  }
  const int64_t first_lead = Lead("First", first_phones);
  const int64_t second_lead = Lead("Second", second_phones);

  pqxx::connection holder(api_->database_url());
  pqxx::work hold(holder);
  hold.exec1(absl::StrCat("SELECT 1 FROM contacts WHERE id = ", target.id(), " FOR NO KEY UPDATE"));
  grpc::Status first;
  grpc::Status second;
  v1::ConvertLeadResponse first_response;
  v1::ConvertLeadResponse second_response;
  std::thread first_call([&] {
    first = Convert(first_lead, v1::CONVERSION_PRODUCE_DEAL, target.id(), 0, &first_response);
  });
  std::thread second_call([&] {
    second = Convert(second_lead, v1::CONVERSION_PRODUCE_DEAL, target.id(), 0, &second_response);
  });
  const bool both_waiting = testing::WaitFor(
      [&] {
        return Count(
                   "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                   " AND wait_event_type = 'Lock'") >= 2;
      },
      20s);
  hold.commit();
  first_call.join();
  second_call.join();
  ASSERT_TRUE(both_waiting) << "the calls did not both reach the contact's row";

  EXPECT_NE(first.ok(), second.ok()) << first.error_message() << " / " << second.error_message();
  const grpc::Status& refused = first.ok() ? second : first;
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(testing::StatusMessage(refused).find("over the cap of 20"), std::string::npos)
      << testing::StatusMessage(refused);
  EXPECT_EQ(GetContact(target.id()).phones_size(), 20);
}

// Protects: the classic → simple switch converting a lead into an existing contact keeps the
// contact to the identity cap (CRM_LEAD_MAX_INBOUND_IDENTITIES, 20), as inbound traffic does:
// without it the contact took every phone of the lead and ended over the cap. It attaches the
// lead's first phones up to the cap, leaves the rest, counts them and names them on the lead's
// CONVERTED entry; the lead is converted into the contact.
TEST_F(ConversionIdentitiesTest, ModeSwitchKeepsTheExistingContactsIdentityCap) {
  std::vector<std::string> held;
  for (int i = 1; i <= 18; ++i) held.push_back(absl::StrFormat("+336875000%02d", i));
  const v1::Contact target = MakeContact("Switched Sam", held);
  // The contact's own phone (the match), then four new ones: two fit.
  const int64_t lead = Lead(
      "Switched", {"+33687500001", "+33687510001", "+33687510002", "+33687510003", "+33687510004"});
  Exec(
      "UPDATE crm_settings SET mode = 'SIMPLE';"
      "INSERT INTO mode_switch_jobs (to_mode) VALUES ('SIMPLE')");

  metrics::Registry registry;
  ModeSwitchCounters counters(registry);
  RunSwitch(counters);

  const v1::Contact after = GetContact(target.id());
  EXPECT_EQ(after.phones_size(), 20);
  EXPECT_EQ(Count(absl::StrCat("SELECT count(*) FROM contact_identities WHERE contact_id = ",
                               target.id(), " AND value IN ('+33687510001', '+33687510002')")),
            2);
  EXPECT_EQ(counters.identities_capped.Value(), 2);
  EXPECT_EQ(counters.identities_not_copied.Value(), 0);
  EXPECT_EQ(GetLead(lead).contact_id(), target.id());
  int named = 0;
  for (const v1::HistoryEntry& entry : History(v1::OWNER_TYPE_LEAD, lead)) {
    if (entry.kind() == "CONVERTED" && entry.related().type() == v1::OWNER_TYPE_CONTACT) {
      EXPECT_EQ(entry.field(), "identities_not_copied");
      EXPECT_EQ(entry.new_value(),
                "+33687510003 (over the cap of 20), +33687510004 (over the cap of 20)");
      ++named;
    }
  }
  EXPECT_EQ(named, 1);
}

}  // namespace
}  // namespace leadflow::crm
