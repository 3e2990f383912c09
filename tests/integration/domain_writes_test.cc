// Writes that name another record, over gRPC against real PostgreSQL: a write racing a merge or
// a delete of the record it names (the merge or delete held open on its own connection while the
// write runs, then committed), upserts whose identities two records hold, lead links after a
// merge, a deal's currency on update, and the messages of refused values.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <pqxx/pqxx>
#include <thread>

#include "absl/strings/str_cat.h"
#include "crm-core/api/deal_services.h"
#include "crm-core/api/people_services.h"
#include "crm-core/api/services.h"
#include "testing/crm.h"
#include "testing/testing.h"

namespace leadflow::crm {
namespace {

using namespace std::chrono_literals;

bool Says(const grpc::Status& status, const std::string& text) {
  return status.error_message().find(text) != std::string::npos;
}

class DomainWritesTest : public testing::CrmApiTest {
 protected:
  // Longer than the fixture's: a write here may wait out a held merge or delete first.
  static std::unique_ptr<grpc::ClientContext> Context() {
    return testing::CallContext(kAdminKey, 60s);
  }

  // Backends of this test's database waiting for a lock, at least `count` of them within 30 s.
  bool WaitForLockWaiters(int count) {
    const std::string sql =
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock'";
    return testing::WaitFor([&] { return Count(sql) >= count; }, 30s);
  }

  // A transaction of its own holding `table` EXCLUSIVE (reads go on, writes wait): a merge or a
  // delete that reaches its write of it waits there with its row locks taken, until Release.
  class TableHold {
   public:
    TableHold(const std::string& url, const std::string& table)
        : connection_(url), work_(connection_) {
      work_.exec0("LOCK TABLE " + table + " IN EXCLUSIVE MODE");
    }
    void Release() { work_.commit(); }

   private:
    pqxx::connection connection_;
    pqxx::work work_;
  };

  grpc::Status MergeCompanies(int64_t kept, int64_t folded) {
    v1::MergeCompaniesRequest request;
    request.set_kept_id(kept);
    request.add_folded_ids(folded);
    v1::MergeCompaniesResponse response;
    return company_stub_->MergeCompanies(Context().get(), request, &response);
  }

  grpc::Status MergeContacts(int64_t kept, int64_t folded) {
    v1::MergeContactsRequest request;
    request.set_kept_id(kept);
    request.add_folded_ids(folded);
    v1::MergeContactsResponse response;
    return contact_stub_->MergeContacts(Context().get(), request, &response);
  }

  // `write` run while `merge` is held open before its fold (the merges table held): the merge
  // has locked its rows, the write starts, then the merge commits. Both answers.
  std::pair<grpc::Status, grpc::Status> RaceWithMerge(const std::function<grpc::Status()>& merge,
                                                      const std::function<grpc::Status()>& write,
                                                      const std::string& held_table = "merges") {
    TableHold hold(api_->database_url(), held_table);
    auto merged = std::async(std::launch::async, merge);
    EXPECT_TRUE(WaitForLockWaiters(1)) << "the merge never reached its fold";
    auto written = std::async(std::launch::async, write);
    // The write waits for the merge's row lock (the fix's hold, or without it the foreign key's
    // check of its insert); an answer already is a write that did not wait.
    const bool waited = WaitForLockWaiters(2);
    hold.Release();
    grpc::Status write_status = written.get();
    EXPECT_TRUE(waited) << "the write did not wait for the merge: " << write_status.error_message();
    return {merged.get(), write_status};
  }
};

// Protects (A1): ConvertLead naming an existing company while MergeCompanies folds it waits for
// the merge and answers NOT_FOUND "merged into company <kept>", writing nothing; before, the deal,
// the contact link and the lead's identities landed on the merged-away company, which the kept
// one never showed.
TEST_F(DomainWritesTest, ConvertLeadIntoACompanyBeingMergedAwayNamesTheKeptOne) {
  const int64_t folded = MakeCompany("Folded SARL").id();
  const int64_t kept = MakeCompany("Kept SARL").id();
  const int64_t lead = MakeLead("Rene", "Race", {"+33615970001"}, {}, "Race SARL").id();
  auto [merge, convert] =
      RaceWithMerge([&] { return MergeCompanies(kept, folded); },
                    [&] {
                      v1::ConvertLeadRequest request;
                      request.set_lead_id(lead);
                      request.set_produce(v1::CONVERSION_PRODUCE_CONTACT_COMPANY_DEAL);
                      request.set_company_id(folded);
                      request.set_request_id("race-convert");
                      v1::ConvertLeadResponse response;
                      return lead_stub_->ConvertLead(Context().get(), request, &response);
                    });
  ASSERT_TRUE(merge.ok()) << merge.error_message();
  EXPECT_EQ(convert.error_code(), grpc::StatusCode::NOT_FOUND) << convert.error_message();
  EXPECT_TRUE(Says(convert, absl::StrCat("merged into company ", kept))) << convert.error_message();
  for (const char* table : {"deals", "contact_companies", "company_identities"}) {
    EXPECT_EQ(Count(absl::StrCat("SELECT count(*) FROM ", table, " WHERE company_id = ", folded)),
              0)
        << table;
  }
  EXPECT_EQ(Count(absl::StrCat("SELECT count(*) FROM leads WHERE id = ", lead,
                               " AND converted_company_id IS NULL")),
            1);
  // Asked again, the conversion goes to the kept company.
  v1::ConvertLeadRequest again;
  again.set_lead_id(lead);
  again.set_produce(v1::CONVERSION_PRODUCE_CONTACT_COMPANY_DEAL);
  again.set_company_id(kept);
  v1::ConvertLeadResponse converted;
  ASSERT_TRUE(lead_stub_->ConvertLead(Context().get(), again, &converted).ok());
  EXPECT_EQ(Count(absl::StrCat("SELECT company_id FROM deals WHERE id = ", converted.deal_id())),
            kept);
}

// Protects (A1): DealService/LinkContact naming a contact MergeContacts is folding waits for the
// merge and answers NOT_FOUND "merged into contact <kept>"; before, the deal was linked to the
// merged-away contact, and neither the kept contact nor ListDeals by it showed the deal.
TEST_F(DomainWritesTest, LinkContactToAContactBeingMergedAwayNamesTheKeptOne) {
  const int64_t folded = MakeContact("Folded Person", {"+33615970002"}).id();
  const int64_t kept = MakeContact("Kept Person", {"+33615970003"}).id();
  const int64_t deal = MakeDeal("Race deal").id();
  auto [merge, link] =
      RaceWithMerge([&] { return MergeContacts(kept, folded); },
                    [&] {
                      v1::LinkDealContactRequest request;
                      request.set_deal_id(deal);
                      request.set_contact_id(folded);
                      v1::Deal response;
                      return deal_stub_->LinkContact(Context().get(), request, &response);
                    });
  ASSERT_TRUE(merge.ok()) << merge.error_message();
  EXPECT_EQ(link.error_code(), grpc::StatusCode::NOT_FOUND) << link.error_message();
  EXPECT_TRUE(Says(link, absl::StrCat("merged into contact ", kept))) << link.error_message();
  EXPECT_EQ(Count(absl::StrCat("SELECT count(*) FROM deal_contacts WHERE contact_id = ", folded)),
            0);
}

// Protects (A1): CreateDeal naming a company being merged away, and DealService/SetCompany, wait
// for the merge and name the kept company; nothing lands on the folded one.
TEST_F(DomainWritesTest, CreateDealAndSetCompanyOnACompanyBeingMergedAway) {
  const int64_t folded = MakeCompany("Gone SAS").id();
  const int64_t kept = MakeCompany("Stays SAS").id();
  auto [merge, create] =
      RaceWithMerge([&] { return MergeCompanies(kept, folded); },
                    [&] {
                      v1::CreateDealRequest request;
                      request.mutable_deal()->set_title("CD race");
                      request.set_company_id(folded);
                      v1::Deal deal;
                      return deal_stub_->CreateDeal(Context().get(), request, &deal);
                    });
  ASSERT_TRUE(merge.ok()) << merge.error_message();
  EXPECT_EQ(create.error_code(), grpc::StatusCode::NOT_FOUND) << create.error_message();
  EXPECT_TRUE(Says(create, absl::StrCat("merged into company ", kept))) << create.error_message();

  const int64_t folded2 = MakeCompany("Gone Two SAS").id();
  const int64_t deal = MakeDeal("SC race").id();
  auto [merge2, set] =
      RaceWithMerge([&] { return MergeCompanies(kept, folded2); },
                    [&] {
                      v1::SetDealCompanyRequest request;
                      request.set_deal_id(deal);
                      request.set_company_id(folded2);
                      v1::Deal response;
                      return deal_stub_->SetCompany(Context().get(), request, &response);
                    });
  ASSERT_TRUE(merge2.ok()) << merge2.error_message();
  EXPECT_EQ(set.error_code(), grpc::StatusCode::NOT_FOUND) << set.error_message();
  EXPECT_EQ(Count(absl::StrCat("SELECT count(*) FROM deals WHERE company_id IN (", folded, ", ",
                               folded2, ")")),
            0);
}

// Protects (B2, A1): ContactService/LinkCompany racing DeleteCompany answers NOT_FOUND "company N
// not found" (not the foreign key's "refused by a data rule"), and racing MergeCompanies names
// the kept company; no link is left on either.
TEST_F(DomainWritesTest, LinkCompanyRacingDeleteOrMergeOfTheCompany) {
  const int64_t contact = MakeContact("Linda Link", {"+33615970004"}).id();
  const int64_t doomed = MakeCompany("Doomed SA").id();
  auto link = [&](int64_t company) {
    v1::LinkCompanyRequest request;
    request.set_contact_id(contact);
    request.set_company_id(company);
    v1::ContactCompanyLink response;
    return contact_stub_->LinkCompany(Context().get(), request, &response);
  };
  // The delete waits at its history entries (written after the row is gone), holding the row.
  auto [deleted, linked] = RaceWithMerge(
      [&] {
        v1::DeleteCompanyRequest request;
        request.set_id(doomed);
        google::protobuf::Empty response;
        return company_stub_->DeleteCompany(Context().get(), request, &response);
      },
      [&] { return link(doomed); }, "history");
  ASSERT_TRUE(deleted.ok()) << deleted.error_message();
  EXPECT_EQ(linked.error_code(), grpc::StatusCode::NOT_FOUND) << linked.error_message();
  EXPECT_TRUE(Says(linked, absl::StrCat("company ", doomed, " not found")))
      << linked.error_message();

  const int64_t folded = MakeCompany("Folded SA").id();
  const int64_t kept = MakeCompany("Kept SA").id();
  auto [merge, relinked] =
      RaceWithMerge([&] { return MergeCompanies(kept, folded); }, [&] { return link(folded); });
  ASSERT_TRUE(merge.ok()) << merge.error_message();
  EXPECT_TRUE(Says(relinked, absl::StrCat("merged into company ", kept)))
      << relinked.error_message();
  EXPECT_EQ(
      Count(absl::StrCat("SELECT count(*) FROM contact_companies WHERE contact_id = ", contact)),
      0);
}

// Protects (A2): CreateContact's upsert whose phones two contacts hold is FAILED_PRECONDITION
// naming both and their phones, and writes nothing: Anne never takes Bruno's phone.
TEST_F(DomainWritesTest, ContactUpsertWithTwoPeoplesPhonesIsRefused) {
  const int64_t anne = MakeContact("Anne Premier", {"06 70 00 00 01"}).id();
  const int64_t bruno =
      MakeContact("Bruno Second", {"06 70 00 00 02"}, {"bruno@second.example"}).id();
  v1::CreateContactRequest request;
  request.mutable_contact()->set_full_name("Qui Est-ce");
  request.mutable_contact()->add_phones("06 70 00 00 02");
  request.mutable_contact()->add_phones("06 70 00 00 01");
  request.mutable_contact()->add_emails("qui@x.example");
  request.set_upsert_by_identity(true);
  v1::CreateContactResponse response;
  grpc::Status status = contact_stub_->CreateContact(Context().get(), request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  EXPECT_TRUE(Says(status, absl::StrCat("contact ", anne, " holds +33670000001")))
      << status.error_message();
  EXPECT_TRUE(Says(status, absl::StrCat("contact ", bruno, " holds +33670000002")))
      << status.error_message();
  EXPECT_EQ(
      Count(absl::StrCat("SELECT count(*) FROM contact_identities WHERE contact_id = ", anne)), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM contacts"), 2);

  // One person's phones: EXISTING, and the new email joins her.
  request.mutable_contact()->clear_phones();
  request.mutable_contact()->add_phones("06 70 00 00 01");
  ASSERT_TRUE(contact_stub_->CreateContact(Context().get(), request, &response).ok());
  EXPECT_EQ(response.outcome(), v1::UPSERT_OUTCOME_EXISTING);
  EXPECT_EQ(response.contact().id(), anne);
}

// Protects (A2): CreateLead's upsert whose phones two contacts hold is refused naming both, with
// no activity on either's deal and no phone copied; CreateCompany's likewise for two companies.
TEST_F(DomainWritesTest, LeadAndCompanyUpsertWithTwoRecordsIdentitiesAreRefused) {
  const int64_t anne = MakeContact("Anne Premier", {"06 70 00 00 01"}).id();
  const int64_t bruno = MakeContact("Bruno Second", {"06 70 00 00 02"}).id();
  MakeDeal("Anne's deal", {anne}).id();
  MakeDeal("Bruno's deal", {bruno}).id();
  v1::CreateLeadRequest lead;
  lead.mutable_lead()->set_title("Mixed Phones");
  lead.mutable_lead()->set_first_name("Mixed");
  lead.mutable_lead()->set_last_name("Phones");
  lead.mutable_lead()->add_phones("06 70 00 00 02");
  lead.mutable_lead()->add_phones("06 70 00 00 01");
  lead.set_upsert_by_identity(true);
  v1::Lead answer;
  grpc::Status status = lead_stub_->CreateLead(Context().get(), lead, &answer);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  EXPECT_TRUE(Says(status, absl::StrCat("contact ", anne))) << status.error_message();
  EXPECT_TRUE(Says(status, absl::StrCat("contact ", bruno))) << status.error_message();
  EXPECT_EQ(Count("SELECT count(*) FROM contact_identities"), 2);
  EXPECT_EQ(Count("SELECT count(*) FROM activities"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 0);

  const int64_t ten = MakeCompany("Ten SA", {"04 70 00 00 01"}).id();
  const int64_t eleven = MakeCompany("Eleven SA", {}, {"b@upsertco.example"}).id();
  v1::CreateCompanyRequest company;
  company.mutable_company()->set_name("Upsert Co");
  company.mutable_company()->add_phones("04 70 00 00 01");
  company.mutable_company()->add_emails("b@upsertco.example");
  company.set_upsert_by_identity(true);
  v1::CreateCompanyResponse created;
  status = company_stub_->CreateCompany(Context().get(), company, &created);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  EXPECT_TRUE(Says(status, absl::StrCat("company ", ten, " holds +33470000001")))
      << status.error_message();
  EXPECT_TRUE(Says(status, absl::StrCat("company ", eleven, " holds b@upsertco.example")))
      << status.error_message();
  EXPECT_EQ(Count(absl::StrCat("SELECT count(*) FROM company_identities WHERE company_id = ", ten)),
            1);
}

// Protects (E2): upsert_by_identity with no phone or email to match on is INVALID_ARGUMENT and
// makes nothing, where each retry of an integration made one more contact (or lead).
TEST_F(DomainWritesTest, UpsertWithoutAnIdentityIsRefused) {
  v1::CreateContactRequest contact;
  contact.mutable_contact()->set_full_name("No Ident");
  contact.set_upsert_by_identity(true);
  v1::CreateContactResponse created;
  grpc::Status status = contact_stub_->CreateContact(Context().get(), contact, &created);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_TRUE(Says(status, "upsert_by_identity needs a phone or an email"))
      << status.error_message();
  v1::CreateLeadRequest lead;
  lead.mutable_lead()->set_first_name("No");
  lead.mutable_lead()->set_last_name("Ident");
  lead.set_upsert_by_identity(true);
  v1::Lead answer;
  status = lead_stub_->CreateLead(Context().get(), lead, &answer);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_EQ(Count("SELECT count(*) FROM contacts"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 0);
}

// Protects (A3): a converted lead's contact_id and company_id follow merges as its
// converted_*_id do (one UPDATE of both columns; two in one statement applied one).
TEST_F(DomainWritesTest, ConvertedLeadsLinksFollowMerges) {
  const int64_t lead = MakeLead("Lea", "Suivi", {"+33615970005"}, {}, "Suivi SARL").id();
  v1::ConvertLeadRequest request;
  request.set_lead_id(lead);
  request.set_produce(v1::CONVERSION_PRODUCE_CONTACT_COMPANY);
  v1::ConvertLeadResponse converted;
  ASSERT_TRUE(lead_stub_->ConvertLead(Context().get(), request, &converted).ok());
  const int64_t contact = MakeContact("Lea Other", {"+33615970006"}).id();
  const int64_t company = MakeCompany("Other SARL").id();
  ASSERT_TRUE(MergeContacts(contact, converted.contact_id()).ok());
  ASSERT_TRUE(MergeCompanies(company, converted.company_id()).ok());
  v1::GetLeadRequest get;
  get.set_id(lead);
  v1::Lead read;
  ASSERT_TRUE(lead_stub_->GetLead(Context().get(), get, &read).ok());
  EXPECT_EQ(read.converted_contact_id(), contact);
  EXPECT_EQ(read.contact_id(), contact);
  EXPECT_EQ(read.converted_company_id(), company);
  EXPECT_EQ(read.company_id(), company);
}

// Protects (A4): UpdateDeal with mask "amount" and no currency keeps the deal's currency (2000
// KWD updated to 2500 stays KWD, never the default EUR); an unknown currency is refused.
TEST_F(DomainWritesTest, UpdateDealAmountKeepsTheDealsCurrency) {
  v1::CreateDealRequest create;
  create.mutable_deal()->set_title("Kuwait");
  create.mutable_deal()->mutable_amount()->set_amount_minor(2000);
  create.mutable_deal()->mutable_amount()->set_currency("KWD");
  v1::Deal deal;
  ASSERT_TRUE(deal_stub_->CreateDeal(Context().get(), create, &deal).ok());
  v1::UpdateDealRequest update;
  update.mutable_deal()->set_id(deal.id());
  update.mutable_deal()->mutable_amount()->set_amount_minor(2500);
  update.mutable_update_mask()->add_paths("amount");
  v1::Deal updated;
  grpc::Status status = deal_stub_->UpdateDeal(Context().get(), update, &updated);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(updated.amount().amount_minor(), 2500);
  EXPECT_EQ(updated.amount().currency(), "KWD");
  update.mutable_deal()->mutable_amount()->set_currency("EURO");
  status = deal_stub_->UpdateDeal(Context().get(), update, &updated);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
}

// Protects (B1, B4): an unknown source_id on CreateContact, UpdateContact (also lower-case
// "web_form") and CreateCompany is INVALID_ARGUMENT naming it, as DealService says it, not the
// foreign key's "refused by a data rule"; CreateDeal's unknown responsible names the field.
TEST_F(DomainWritesTest, UnknownSourceAndResponsibleAreNamed) {
  v1::CreateContactRequest contact;
  contact.mutable_contact()->set_full_name("Bad Source");
  contact.mutable_contact()->set_source_id("NOPE");
  v1::CreateContactResponse created;
  grpc::Status status = contact_stub_->CreateContact(Context().get(), contact, &created);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_TRUE(Says(status, "unknown source_id \"NOPE\"")) << status.error_message();

  const int64_t id = MakeContact("Good Source").id();
  v1::UpdateContactRequest update;
  update.mutable_contact()->set_id(id);
  update.mutable_contact()->set_source_id("web_form");
  update.mutable_update_mask()->add_paths("source_id");
  v1::Contact updated;
  status = contact_stub_->UpdateContact(Context().get(), update, &updated);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_TRUE(Says(status, "unknown source_id \"web_form\"")) << status.error_message();
  update.mutable_contact()->set_source_id("WEB_FORM");
  status = contact_stub_->UpdateContact(Context().get(), update, &updated);
  EXPECT_TRUE(status.ok()) << status.error_message();

  v1::CreateCompanyRequest company;
  company.mutable_company()->set_name("Bad Source SA");
  company.mutable_company()->set_source_id("NOPE");
  v1::CreateCompanyResponse company_created;
  status = company_stub_->CreateCompany(Context().get(), company, &company_created);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();

  v1::CreateDealRequest deal;
  deal.mutable_deal()->set_title("Resp");
  deal.mutable_deal()->set_responsible_user_id(999);
  v1::Deal answer;
  status = deal_stub_->CreateDeal(Context().get(), deal, &answer);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  EXPECT_TRUE(Says(status, "responsible_user_id: user 999")) << status.error_message();
}

// Protects (B3): DealService/UnlinkContact with a merged-away contact id names where it went.
TEST_F(DomainWritesTest, UnlinkContactWithAMergedAwayIdNamesTheKeptOne) {
  const int64_t folded = MakeContact("Old Twin", {"+33615970007"}).id();
  const int64_t kept = MakeContact("New Twin", {"+33615970008"}).id();
  const int64_t deal = MakeDeal("Twins", {folded}).id();
  ASSERT_TRUE(MergeContacts(kept, folded).ok());
  v1::UnlinkDealContactRequest request;
  request.set_deal_id(deal);
  request.set_contact_id(folded);
  v1::Deal response;
  grpc::Status status = deal_stub_->UnlinkContact(Context().get(), request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << status.error_message();
  EXPECT_TRUE(Says(status, absl::StrCat("merged into contact ", kept))) << status.error_message();
  EXPECT_EQ(Count(absl::StrCat("SELECT count(*) FROM deal_contacts WHERE contact_id = ", kept)), 1);
}

}  // namespace
}  // namespace leadflow::crm
