// One person, one record (docs/domain.md): every write that gives a record a phone, email or
// messenger id — CreateContact/CreateCompany/CreateLead, UpdateContact/UpdateCompany, the upserts,
// ConvertLead, the inbound open-lead rule — refuses (or, inbound, leaves out and counts) one that
// another record of the kind holds, over gRPC against real PostgreSQL and the Kafka protocol; and
// an API create racing an inbound event on the same phone makes one lead, never two.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "crm-core/inbound/batch.h"
#include "google/protobuf/field_mask.pb.h"
#include "testing/crm.h"
#include "testing/testing.h"

namespace leadflow::crm {
namespace {

bool Says(const grpc::Status& status, const std::string& text) {
  return status.error_message().find(text) != std::string::npos;
}

class IdentityHoldersTest : public testing::CrmApiTest {
 protected:
  grpc::Status CreateContact(const std::vector<std::string>& phones,
                             const std::vector<std::string>& emails,
                             const std::vector<std::string>& messengers, bool upsert,
                             v1::CreateContactResponse* out) {
    v1::CreateContactRequest request;
    request.mutable_contact()->set_full_name("Marie Curie");
    for (const std::string& phone : phones) request.mutable_contact()->add_phones(phone);
    for (const std::string& email : emails) request.mutable_contact()->add_emails(email);
    for (const std::string& id : messengers) request.mutable_contact()->add_messengers(id);
    request.set_upsert_by_identity(upsert);
    return contact_stub_->CreateContact(Context().get(), request, out);
  }

  int64_t NewContact(const std::vector<std::string>& phones,
                     const std::vector<std::string>& emails = {}) {
    return MakeContact("Marie Curie", phones, emails).id();
  }

  grpc::Status CreateCompany(const std::vector<std::string>& phones,
                             const std::vector<std::string>& emails,
                             v1::CreateCompanyResponse* out) {
    v1::CreateCompanyRequest request;
    request.mutable_company()->set_name("Acme");
    for (const std::string& phone : phones) request.mutable_company()->add_phones(phone);
    for (const std::string& email : emails) request.mutable_company()->add_emails(email);
    return company_stub_->CreateCompany(Context().get(), request, out);
  }

  int64_t NewCompany(const std::vector<std::string>& phones) {
    return MakeCompany("Acme", phones).id();
  }

  grpc::Status CreateLead(const std::vector<std::string>& phones,
                          const std::vector<std::string>& emails, bool upsert, v1::Lead* out) {
    v1::CreateLeadRequest request;
    request.mutable_lead()->set_first_name("Jean");
    request.mutable_lead()->set_last_name("Roux");
    request.mutable_lead()->set_company_name("Roux SARL");
    for (const std::string& phone : phones) request.mutable_lead()->add_phones(phone);
    for (const std::string& email : emails) request.mutable_lead()->add_emails(email);
    request.set_upsert_by_identity(upsert);
    return lead_stub_->CreateLead(Context().get(), request, out);
  }

  int64_t NewLead(const std::vector<std::string>& phones,
                  const std::vector<std::string>& emails = {}) {
    v1::Lead lead;
    grpc::Status status = CreateLead(phones, emails, false, &lead);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return lead.id();
  }

  grpc::Status UpdateContactPhones(int64_t id, const std::vector<std::string>& phones) {
    v1::UpdateContactRequest request;
    request.mutable_contact()->set_id(id);
    for (const std::string& phone : phones) request.mutable_contact()->add_phones(phone);
    request.mutable_update_mask()->add_paths("phones");
    v1::Contact out;
    return contact_stub_->UpdateContact(Context().get(), request, &out);
  }

  grpc::Status UpdateCompanyPhones(int64_t id, const std::vector<std::string>& phones) {
    v1::UpdateCompanyRequest request;
    request.mutable_company()->set_id(id);
    for (const std::string& phone : phones) request.mutable_company()->add_phones(phone);
    request.mutable_update_mask()->add_paths("phones");
    v1::Company out;
    return company_stub_->UpdateCompany(Context().get(), request, &out);
  }

  grpc::Status Convert(int64_t lead_id, v1::ConversionProduce produce, int64_t company_id,
                       const std::string& request_id) {
    v1::ConvertLeadRequest request;
    request.set_lead_id(lead_id);
    request.set_produce(produce);
    request.set_company_id(company_id);
    request.set_request_id(request_id);
    v1::ConvertLeadResponse response;
    return lead_stub_->ConvertLead(Context().get(), request, &response);
  }

  int64_t Holders(const std::string& table, const std::string& value) {
    return Count("SELECT count(*) FROM " + table + " WHERE value = '" + value + "'");
  }
};

// Protects: a plain CreateContact (no upsert) with a phone, email or messenger id another contact
// holds is FAILED_PRECONDITION naming that contact, and writes nothing; the same phone on a
// company (a switchboard) does not stop a contact; upsert_by_identity still returns the holder.
// Seen to fail with InsertRecord's RefuseIdentitiesHeldElsewhere taken out (a second contact).
TEST_F(IdentityHoldersTest, CreateContactWithAnotherContactsIdentityIsRefused) {
  v1::CreateContactResponse first;
  ASSERT_TRUE(
      CreateContact({"06 12 34 56 78"}, {"Marie@Example.com"}, {"telegram:42"}, false, &first)
          .ok());
  const int64_t holder = first.contact().id();
  NewCompany({"+33 1 40 00 00 00"});
  const int64_t contacts = Count("SELECT count(*) FROM contacts");
  for (const auto& [phones, emails, messengers] :
       {std::tuple<std::vector<std::string>, std::vector<std::string>, std::vector<std::string>>{
            {"+33612345678"}, {}, {}},
        {{}, {"marie@example.com"}, {}},
        {{}, {}, {"Telegram : 42"}}}) {
    v1::CreateContactResponse response;
    grpc::Status status = CreateContact(phones, emails, messengers, false, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
    EXPECT_TRUE(Says(status, absl::StrCat("contact ", holder, " holds ")))
        << status.error_message();
    EXPECT_TRUE(Says(status, "upsert_by_identity")) << status.error_message();
  }
  EXPECT_EQ(Count("SELECT count(*) FROM contacts"), contacts);
  EXPECT_EQ(Holders("contact_identities", "+33612345678"), 1);

  // The company's switchboard is not a contact's identity.
  v1::CreateContactResponse employee;
  grpc::Status status = CreateContact({"01 40 00 00 00"}, {}, {}, false, &employee);
  EXPECT_TRUE(status.ok()) << status.error_message();

  v1::CreateContactResponse upserted;
  status = CreateContact({"06 12 34 56 78"}, {"new@example.com"}, {}, true, &upserted);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(upserted.outcome(), v1::UPSERT_OUTCOME_EXISTING);
  EXPECT_EQ(upserted.contact().id(), holder);
}

// Protects: CreateCompany with a phone or email another company holds is FAILED_PRECONDITION
// naming it, nothing written. Seen to fail with the check taken out of InsertRecord.
TEST_F(IdentityHoldersTest, CreateCompanyWithAnotherCompanysIdentityIsRefused) {
  const int64_t holder = NewCompany({"+33 1 40 00 00 00"});
  v1::CreateCompanyResponse response;
  grpc::Status status = CreateCompany({"01 40 00 00 00"}, {}, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  EXPECT_TRUE(Says(status, absl::StrCat("company ", holder, " holds +33140000000")))
      << status.error_message();
  EXPECT_EQ(Count("SELECT count(*) FROM companies"), 1);
}

// Protects: the core guarantee over the API — CreateLead (no upsert) with a phone or email an
// open lead holds is FAILED_PRECONDITION naming that lead, nothing written; once that lead is
// closed (junk), a new lead for the person is made (their past is not an open lead). Seen to fail
// with CreateLead's check taken out (a second open lead).
TEST_F(IdentityHoldersTest, CreateLeadWithAnOpenLeadsIdentityIsRefused) {
  const int64_t open = NewLead({"06 20 00 00 01"}, {"jean@example.com"});
  for (const auto& [phones, emails] :
       {std::pair<std::vector<std::string>, std::vector<std::string>>{{"+33620000001"}, {}},
        {{}, {"JEAN@example.com"}}}) {
    v1::Lead lead;
    grpc::Status status = CreateLead(phones, emails, false, &lead);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
    EXPECT_TRUE(Says(status, absl::StrCat("open lead ", open, " holds ")))
        << status.error_message();
  }
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 1);

  Exec("UPDATE leads SET status = 'JUNK' WHERE id = " + std::to_string(open));
  v1::Lead again;
  grpc::Status status = CreateLead({"06 20 00 00 01"}, {}, false, &again);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_NE(again.id(), open);
}

// Protects: UpdateLead reopening a closed lead (JUNK back to an open status) whose phone or email
// an open lead has taken since is FAILED_PRECONDITION naming that lead, and the lead stays closed:
// reopening it made two open leads of one person, the state CreateLead refuses, through another
// method. A reopen no open lead stands in the way of goes through.
TEST_F(IdentityHoldersTest, ReopeningALeadWhoseIdentityAnOpenLeadHoldsIsRefused) {
  const int64_t closed = NewLead({"06 35 00 00 01"}, {"back@example.com"});
  auto set_status = [&](int64_t id, const std::string& status) {
    v1::UpdateLeadRequest request;
    request.mutable_lead()->set_id(id);
    request.mutable_lead()->set_status_id(status);
    request.mutable_update_mask()->add_paths("status_id");
    v1::Lead lead;
    return lead_stub_->UpdateLead(Context().get(), request, &lead);
  };
  ASSERT_TRUE(set_status(closed, "JUNK").ok());
  const int64_t open = NewLead({}, {"back@example.com"});
  for (const char* status : {"NEW", "IN_PROCESS"}) {
    grpc::Status refused = set_status(closed, status);
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION)
        << refused.error_message();
    EXPECT_TRUE(Says(refused, absl::StrCat("open lead ", open, " holds back@example.com")))
        << refused.error_message();
  }
  EXPECT_EQ(Text("SELECT status FROM leads WHERE id = " + std::to_string(closed)), "JUNK");

  // Nobody else open holds its identities: reopened.
  const int64_t alone = NewLead({"06 35 00 00 02"});
  ASSERT_TRUE(set_status(alone, "JUNK").ok());
  grpc::Status status = set_status(alone, "NEW");
  EXPECT_TRUE(status.ok()) << status.error_message();
}

// Protects: UpdateContact / UpdateCompany adding a phone another record of the kind holds is
// FAILED_PRECONDITION naming it, and the record keeps its phones; an update keeping a phone the
// record shares already (written before the rule) goes through. UpdateLead takes no identities
// at all (INVALID_ARGUMENT). Seen to fail with UpdateRecord's check taken out.
TEST_F(IdentityHoldersTest, UpdatesAddingAnotherRecordsIdentityAreRefused) {
  const int64_t first = NewContact({"06 30 00 00 01"});
  const int64_t second = NewContact({"06 30 00 00 02"});
  grpc::Status status = UpdateContactPhones(second, {"06 30 00 00 02", "06 30 00 00 01"});
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  EXPECT_TRUE(Says(status, absl::StrCat("contact ", first, " holds +33630000001")))
      << status.error_message();
  EXPECT_EQ(Holders("contact_identities", "+33630000001"), 1);
  EXPECT_EQ(
      Count("SELECT count(*) FROM contact_identities WHERE contact_id = " + std::to_string(second)),
      1);

  const int64_t acme = NewCompany({"01 40 00 00 01"});
  const int64_t other = NewCompany({"01 40 00 00 02"});
  status = UpdateCompanyPhones(other, {"01 40 00 00 01"});
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  EXPECT_TRUE(Says(status, absl::StrCat("company ", acme, " holds +33140000001")))
      << status.error_message();
  EXPECT_EQ(Holders("company_identities", "+33140000002"), 1);

  // Shared before the rule: the record keeps it, and may still be updated.
  Exec("INSERT INTO contact_identities VALUES ('PHONE', '+33630000001', " + std::to_string(second) +
       ")");
  status = UpdateContactPhones(second, {"06 30 00 00 02", "06 30 00 00 01", "06 30 00 00 03"});
  EXPECT_TRUE(status.ok()) << status.error_message();

  v1::UpdateLeadRequest request;
  request.mutable_lead()->set_id(NewLead({"06 30 00 00 09"}));
  request.mutable_lead()->add_phones("06 30 00 00 02");
  request.mutable_update_mask()->add_paths("phones");
  v1::Lead lead;
  status = lead_stub_->UpdateLead(Context().get(), request, &lead);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_EQ(Holders("lead_identities", "+33630000002"), 0);
}

// Protects: CreateLead's upsert over two open leads' identities is FAILED_PRECONDITION naming the
// other lead: the newest one would have taken the older one's phone. Nothing is written (no
// repeat, no activity). Seen to fail with UpsertLead's check taken out.
TEST_F(IdentityHoldersTest, LeadUpsertOverTwoOpenLeadsIsRefused) {
  const int64_t by_phone = NewLead({"06 40 00 00 01"});
  const int64_t by_email = NewLead({}, {"two@example.com"});
  v1::Lead lead;
  grpc::Status status = CreateLead({"06 40 00 00 01"}, {"two@example.com"}, true, &lead);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  EXPECT_TRUE(Says(status, absl::StrCat("open lead ", by_phone, " holds +33640000001")))
      << status.error_message();
  EXPECT_EQ(Count("SELECT coalesce(sum(repeat_count), 0) FROM leads"), 0);
  EXPECT_EQ(
      Count("SELECT count(*) FROM lead_identities WHERE lead_id = " + std::to_string(by_email)), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 2);
}

// Protects: ConvertLead into a new company holding a phone another company holds is
// FAILED_PRECONDITION naming it (the company side of "no second contact"); into that company
// (company_id) it goes through. Seen to fail with the conversion's company check taken out.
TEST_F(IdentityHoldersTest, ConvertLeadRefusesASecondCompanyForTheSamePhone) {
  const int64_t acme = NewCompany({"01 50 00 00 01"});
  const int64_t lead = NewLead({"01 50 00 00 01"});
  grpc::Status status = Convert(lead, v1::CONVERSION_PRODUCE_COMPANY, 0, "c1");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  EXPECT_TRUE(Says(status, absl::StrCat("company ", acme, " holds +33150000001")))
      << status.error_message();
  EXPECT_EQ(Count("SELECT count(*) FROM companies"), 1);
  status = Convert(lead, v1::CONVERSION_PRODUCE_COMPANY, acme, "c2");
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(Holders("company_identities", "+33150000001"), 1);
}

// Protects (inbound, the open-lead rule): a message that goes on an open lead adds to it only the
// identities no other record holds — not a contact's email, not another open lead's phone — and
// counts each one left out in crm_inbound_identities_held_elsewhere_total; the message itself is
// kept (an activity on the lead). Seen to fail with the planner's HeldElsewhere answering false.
TEST_F(IdentityHoldersTest, InboundOpenLeadTakesNoOtherRecordsIdentity) {
  const int64_t lead = NewLead({"06 60 00 00 01"});
  NewContact({}, {"contact@example.com"});
  const int64_t other = NewLead({"06 60 00 00 02"});
  testing::CrmInbound inbound(api_->database_url());
  auto processor = inbound.MakeProcessor();
  ASSERT_TRUE(processor
                  ->Process({testing::InboundMessage(testing::WebFormEvent(
                      "e1", "+33660000001", "contact@example.com", "Jean", "Again"))})
                  .ok());
  EXPECT_EQ(Count("SELECT repeat_count FROM leads WHERE id = " + std::to_string(lead)), 1);
  EXPECT_EQ(Holders("lead_identities", "contact@example.com"), 0);
  EXPECT_EQ(inbound.counters().identities_held_elsewhere.Value(), 1);

  // Two open leads' identities: the newer takes the message, without the older one's phone.
  events::v1::InboundEvent event =
      testing::WebFormEvent("e2", "+33660000002", "fresh@example.com", "Jean", "Once more");
  events::v1::Identity* phone = event.add_identities();
  phone->set_kind(events::v1::Identity::PHONE);
  phone->set_value("+33660000001");
  ASSERT_TRUE(processor->Process({testing::InboundMessage(event)}).ok());
  EXPECT_EQ(Holders("lead_identities", "+33660000001"), 1);
  EXPECT_EQ(Holders("lead_identities", "+33660000002"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM lead_identities WHERE value = 'fresh@example.com' AND "
                  "lead_id = " +
                  std::to_string(other)),
            1);
  EXPECT_EQ(inbound.counters().identities_held_elsewhere.Value(), 2);
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 2);
}

// Protects: an API CreateLead and an inbound event on the same new phone, at the same time, make
// one open lead, never two: CreateLead takes the identity locks the consumer takes before it
// looks for an open lead holding the phone. Either the consumer's lead wins (the call is
// FAILED_PRECONDITION naming it) or the call's (the event becomes a repeat on it). The consumer's
// batch holds its locks for the whole batch while the calls run, 20 rounds of 10 people. Seen to
// fail with CreateLead's LockIdentities taken out (two leads holding one phone).
TEST_F(IdentityHoldersTest, ApiCreateRacingInboundEventMakesOneLead) {
  testing::CrmInbound inbound(api_->database_url());
  auto processor = inbound.MakeProcessor();
  constexpr int kRounds = 20;
  constexpr int kPerRound = 10;
  int refused = 0;
  int created = 0;
  for (int round = 0; round < kRounds; ++round) {
    std::vector<kafka::Message> batch;
    std::vector<std::string> phones;
    for (int i = 0; i < kPerRound; ++i) {
      const std::string phone = "+3367" + std::to_string(1000000 + round * kPerRound + i);
      phones.push_back(phone);
      batch.push_back(testing::InboundMessage(testing::WebFormEvent(
          absl::StrCat("race-", round, "-", i), phone, "", "Jean", "Need a quote")));
    }
    std::vector<grpc::Status> answers(kPerRound);
    std::thread calls([&] {
      for (int i = 0; i < kPerRound; ++i) {
        v1::Lead lead;
        answers[i] = CreateLead({phones[i]}, {}, false, &lead);
      }
    });
    absl::Status processed = processor->Process(batch);
    for (int attempt = 0; !processed.ok() && attempt < 20; ++attempt) {
      processed = processor->Process(batch);  // a deadlock aborted it: retried, as the loop does
    }
    calls.join();
    ASSERT_TRUE(processed.ok()) << processed;
    for (const grpc::Status& answer : answers) {
      if (answer.ok()) {
        ++created;
      } else {
        EXPECT_EQ(answer.error_code(), grpc::StatusCode::FAILED_PRECONDITION)
            << answer.error_message();
        ++refused;
      }
    }
  }
  EXPECT_EQ(Count("SELECT count(*) FROM (SELECT value FROM lead_identities GROUP BY value "
                  "HAVING count(*) > 1) AS shared"),
            0);
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), kRounds * kPerRound);
  EXPECT_EQ(created + refused, kRounds * kPerRound);
  // Every event was applied: a repeat on the call's lead, or the lead it made.
  EXPECT_EQ(Count("SELECT count(*) FROM processed_events"), kRounds * kPerRound);
  EXPECT_EQ(Count("SELECT coalesce(sum(repeat_count), 0) FROM leads"), created);
}

}  // namespace
}  // namespace leadflow::crm
