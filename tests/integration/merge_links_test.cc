// Merges, links and person search as a manager meets them over gRPC, with the inbound consumer on
// the same database (real PostgreSQL; the Kafka protocol for its dead-letter producer): a
// converted lead in a merge, what a returning lead holds, folded ids along a chain of merges,
// relinking without a role, the deal's timeline through merges, and finding a lead by
// "last first" or by a mailto: link.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "crm-core/api/deal_services.h"
#include "crm-core/api/people_services.h"
#include "crm-core/api/services.h"
#include "crm-core/inbound/batch.h"
#include "testing/crm.h"
#include "testing/testing.h"

namespace leadflow::crm {
namespace {

using namespace std::chrono_literals;

// A web form as webform-ingest publishes it (E.164 phone, lower-cased email).
kafka::Message Form(const std::string& id, const std::string& phone, const std::string& email,
                    const std::string& name) {
  return testing::InboundMessage(testing::WebFormEvent(id, phone, email, name, "Need a quote"));
}

class MergeLinksTest : public testing::CrmApiTest {
 protected:
  void SetUp() override {
    CrmApiTest::SetUp();
    inbound_ = std::make_unique<testing::CrmInbound>(api_->database_url());
    processor_ = inbound_->MakeProcessor();
  }

  void Apply(const std::vector<kafka::Message>& batch) {
    ASSERT_TRUE(processor_->Process(batch).ok());
  }

  v1::ConvertLeadResponse Convert(int64_t lead_id, v1::ConversionProduce produce) {
    v1::ConvertLeadRequest request;
    request.set_lead_id(lead_id);
    request.set_produce(produce);
    request.set_request_id(absl::StrCat("convert-", lead_id));
    v1::ConvertLeadResponse response;
    grpc::Status status = lead_stub_->ConvertLead(Context().get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  grpc::Status MergeLeads(int64_t kept, std::vector<int64_t> folded,
                          v1::MergeLeadsResponse* response) {
    v1::MergeLeadsRequest request;
    request.set_kept_id(kept);
    for (int64_t id : folded) request.add_folded_ids(id);
    return lead_stub_->MergeLeads(Context().get(), request, response);
  }

  grpc::Status MergeContacts(int64_t kept, std::vector<int64_t> folded,
                             v1::MergeContactsResponse* response) {
    v1::MergeContactsRequest request;
    request.set_kept_id(kept);
    for (int64_t id : folded) request.add_folded_ids(id);
    return contact_stub_->MergeContacts(Context().get(), request, response);
  }

  std::vector<v1::SearchMatch> ByPhone(const std::string& phone) {
    v1::FindByCommunicationRequest request;
    request.set_phone(phone);
    v1::FindByCommunicationResponse response;
    grpc::Status status = search_stub_->FindByCommunication(Context().get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return {response.matches().begin(), response.matches().end()};
  }

  static int CountOf(const std::vector<v1::SearchMatch>& matches, v1::OwnerType type) {
    int count = 0;
    for (const v1::SearchMatch& match : matches) count += match.entity().type() == type ? 1 : 0;
    return count;
  }

  static bool Has(const std::vector<v1::HistoryEntry>& entries, const std::string& kind,
                  v1::OwnerType related_type, int64_t related_id) {
    for (const v1::HistoryEntry& entry : entries) {
      if (entry.kind() == kind && entry.related().type() == related_type &&
          entry.related().id() == related_id) {
        return true;
      }
    }
    return false;
  }

  std::unique_ptr<testing::CrmInbound> inbound_;
  std::unique_ptr<BatchProcessor> processor_;
};

// Protects (the trial's sequence): a converted lead takes no part in a merge, kept or folded —
// FAILED_PRECONDITION naming what it produced and ConvertLead with that contact as the way, and
// nothing changes (never the old "keep it and fold the others into it"). Each person's traffic
// then stays theirs: Rita's form goes on her own open lead, Paul's on his open deal, and Paul's
// phone sits on one contact only.
TEST_F(MergeLinksTest, ConvertedLeadTakesNoPartInAMergeAndTrafficStaysApart) {
  v1::Lead paul = MakeLead("Paul", "Aaa", {"+33681000001"}, {}, "Aaa SARL");
  v1::ConvertLeadResponse converted =
      Convert(paul.id(), v1::CONVERSION_PRODUCE_CONTACT_COMPANY_DEAL);
  ASSERT_GT(converted.deal_id(), 0);
  v1::Lead rita = MakeLead("Rita", "Bbb", {"+33681000002"});

  v1::MergeLeadsResponse merged;
  grpc::Status kept_converted = MergeLeads(paul.id(), {rita.id()}, &merged);
  EXPECT_EQ(kept_converted.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(kept_converted.error_message().find(absl::StrCat(
                "convert lead ", rita.id(), " with contact_id ", converted.contact_id())),
            std::string::npos)
      << kept_converted.error_message();
  grpc::Status folded_converted = MergeLeads(rita.id(), {paul.id()}, &merged);
  EXPECT_EQ(folded_converted.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(folded_converted.error_message().find("keep it"), std::string::npos)
      << folded_converted.error_message();
  EXPECT_EQ(Count("SELECT count(*) FROM merges"), 0);
  EXPECT_EQ(Count(absl::StrCat("SELECT count(*) FROM lead_identities WHERE lead_id = ", paul.id())),
            1);

  Apply({Form("rita-1", "+33681000002", "", "Rita Bbb")});
  Apply({Form("paul-1", "+33681000001", "", "Paul Aaa")});
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 2);  // no returning lead
  EXPECT_EQ(Text("SELECT owner_type || ':' || owner_id FROM activities "
                 "WHERE origin_event_id = 'rita-1'"),
            absl::StrCat("LEAD:", rita.id()));
  EXPECT_EQ(Text("SELECT owner_type || ':' || owner_id FROM activities "
                 "WHERE origin_event_id = 'paul-1'"),
            absl::StrCat("DEAL:", converted.deal_id()));
  std::vector<v1::SearchMatch> holders = ByPhone("06 81 00 00 01");
  EXPECT_EQ(CountOf(holders, v1::OWNER_TYPE_CONTACT), 1);
  EXPECT_EQ(CountOf(holders, v1::OWNER_TYPE_LEAD), 1);
}

// Protects: a returning lead holds only the identities of the message that made it, never the
// matched records' others (the trial's lead 15 copied a merged lead's phones, another person's
// among them, and so took that person's traffic and later made a second contact with their
// phone). The person's next message by another identity of their contact, or of their junk lead,
// still joins that returning lead (through its links), never a second one.
TEST_F(MergeLinksTest, ReturningLeadHoldsOnlyItsMessagesIdentities) {
  // A customer whose deal was lost: contact with phone and email, nothing open.
  v1::Lead anna = MakeLead("Anna", "Kowalski", {"+33682000001"}, {"anna@kow.example"});
  v1::ConvertLeadResponse converted = Convert(anna.id(), v1::CONVERSION_PRODUCE_CONTACT_DEAL);
  api_->Exec(
      absl::StrCat("UPDATE deals SET stage_id = 'LOSE', stage_semantics = 'FAILURE' "
                   "WHERE id = ",
                   converted.deal_id()));
  Apply({Form("anna-1", "+33682000001", "", "Anna Kowalski")});
  const int64_t returning =
      Count("SELECT id FROM leads WHERE is_returning AND origin_event_id = 'anna-1'");
  ASSERT_GT(returning, 0);
  EXPECT_EQ(Count(absl::StrCat("SELECT contact_id FROM leads WHERE id = ", returning)),
            converted.contact_id());
  EXPECT_EQ(Text(absl::StrCat("SELECT string_agg(kind || ':' || value, ',') FROM lead_identities "
                              "WHERE lead_id = ",
                              returning)),
            "PHONE:+33682000001");
  Apply({Form("anna-2", "", "anna@kow.example", "Anna Kowalski")});
  EXPECT_EQ(Count("SELECT count(*) FROM leads WHERE is_returning"), 1);
  EXPECT_EQ(Count("SELECT owner_id FROM activities WHERE origin_event_id = 'anna-2'"), returning);
  EXPECT_EQ(Count(absl::StrCat("SELECT repeat_count FROM leads WHERE id = ", returning)), 1);

  // Two people's open leads merged by hand, then closed as junk: the one who writes again gets a
  // returning lead with their own phone only, not the other person's.
  v1::Lead paul = MakeLead("Paul", "Ccc", {"+33683000001"});
  v1::Lead rita = MakeLead("Rita", "Ddd", {"+33683000002"});
  v1::MergeLeadsResponse merged;
  ASSERT_TRUE(MergeLeads(paul.id(), {rita.id()}, &merged).ok());
  api_->Exec(absl::StrCat("UPDATE leads SET status = 'JUNK' WHERE id = ", paul.id()));
  Apply({Form("rita-1", "+33683000002", "", "Rita Ddd")});
  const int64_t ritas = Count("SELECT id FROM leads WHERE origin_event_id = 'rita-1'");
  ASSERT_GT(ritas, 0);
  EXPECT_EQ(Count(absl::StrCat("SELECT previous_lead_id FROM leads WHERE id = ", ritas)),
            paul.id());
  EXPECT_EQ(Text(absl::StrCat("SELECT string_agg(kind || ':' || value, ',') FROM lead_identities "
                              "WHERE lead_id = ",
                              ritas)),
            "PHONE:+33683000002");
  EXPECT_EQ(CountOf(ByPhone("+33683000001"), v1::OWNER_TYPE_LEAD), 1);  // the junk lead alone
}

// Protects: after merges in a chain (5 into 6, then 6 into 7) a folded id names the record still
// standing at the chain's end in every "merged into" message — Get, links, a deal's contacts,
// ConvertLead's contact_id, a lead's and a company's chain too — and merging it into that record
// again is a no-op, not FAILED_PRECONDITION; keeping a folded record names the end as well.
TEST_F(MergeLinksTest, FoldedIdsNameTheEndOfTheirChain) {
  v1::Contact a = MakeContact("Anne Un", {"+33684000001"});
  v1::Contact b = MakeContact("Anne Deux", {"+33684000002"});
  v1::Contact c = MakeContact("Anne Trois", {"+33684000003"});
  v1::MergeContactsResponse merged;
  ASSERT_TRUE(MergeContacts(b.id(), {a.id()}, &merged).ok());
  ASSERT_TRUE(MergeContacts(c.id(), {b.id()}, &merged).ok());
  const std::string end = absl::StrCat("merged into contact ", c.id());

  v1::GetContactRequest get;
  get.set_id(a.id());
  v1::Contact gone;
  grpc::Status status = contact_stub_->GetContact(Context().get(), get, &gone);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(status.error_message().find(end), std::string::npos) << status.error_message();

  v1::Company company = MakeCompany("Aaa SARL");
  v1::LinkCompanyRequest link;
  link.set_contact_id(a.id());
  link.set_company_id(company.id());
  v1::ContactCompanyLink linked;
  status = contact_stub_->LinkCompany(Context().get(), link, &linked);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(status.error_message().find(end), std::string::npos) << status.error_message();

  v1::CreateDealRequest deal;
  deal.mutable_deal()->set_title("Kitchen");
  deal.add_contact_ids(a.id());
  v1::Deal made;
  status = deal_stub_->CreateDeal(Context().get(), deal, &made);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(status.error_message().find(end), std::string::npos) << status.error_message();

  v1::Lead lead = MakeLead("Anne", "Quatre", {"+33684000004"});
  v1::ConvertLeadRequest convert;
  convert.set_lead_id(lead.id());
  convert.set_produce(v1::CONVERSION_PRODUCE_CONTACT);
  convert.set_contact_id(a.id());
  v1::ConvertLeadResponse conversion;
  status = lead_stub_->ConvertLead(Context().get(), convert, &conversion);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(status.error_message().find(end), std::string::npos) << status.error_message();

  // The retry of the first merge, aimed at where its record now is: nothing to do.
  status = MergeContacts(c.id(), {a.id()}, &merged);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(merged.folded_ids_size(), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM merges"), 2);
  // Keeping a folded record: refused, naming the end.
  v1::Contact d = MakeContact("Anne Cinq");
  status = MergeContacts(a.id(), {d.id()}, &merged);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(status.error_message().find(absl::StrCat("contact ", c.id())), std::string::npos)
      << status.error_message();

  // Leads 1 → 2 → 3, companies 1 → 2 → 3.
  v1::Lead l1 = MakeLead("Léa", "Un", {"+33685000001"});
  v1::Lead l2 = MakeLead("Léa", "Deux", {"+33685000002"});
  v1::Lead l3 = MakeLead("Léa", "Trois", {"+33685000003"});
  v1::MergeLeadsResponse leads_merged;
  ASSERT_TRUE(MergeLeads(l2.id(), {l1.id()}, &leads_merged).ok());
  ASSERT_TRUE(MergeLeads(l3.id(), {l2.id()}, &leads_merged).ok());
  v1::GetLeadRequest get_lead;
  get_lead.set_id(l1.id());
  v1::Lead lead_gone;
  status = lead_stub_->GetLead(Context().get(), get_lead, &lead_gone);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(status.error_message().find(absl::StrCat("merged into lead ", l3.id())),
            std::string::npos)
      << status.error_message();
  status = MergeLeads(l3.id(), {l1.id()}, &leads_merged);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(leads_merged.folded_ids_size(), 0);

  v1::Company k1 = MakeCompany("Un");
  v1::Company k2 = MakeCompany("Deux");
  v1::Company k3 = MakeCompany("Trois");
  for (auto [kept, folded] : {std::pair{k2.id(), k1.id()}, {k3.id(), k2.id()}}) {
    v1::MergeCompaniesRequest request;
    request.set_kept_id(kept);
    request.add_folded_ids(folded);
    v1::MergeCompaniesResponse response;
    ASSERT_TRUE(company_stub_->MergeCompanies(Context().get(), request, &response).ok());
  }
  v1::GetCompanyRequest get_company;
  get_company.set_id(k1.id());
  v1::Company company_gone;
  status = company_stub_->GetCompany(Context().get(), get_company, &company_gone);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(status.error_message().find(absl::StrCat("merged into company ", k3.id())),
            std::string::npos)
      << status.error_message();
}

// Protects: linking an already linked pair again without a role keeps its role (from either
// side), writes no history, and only a role given changes it: "" clears it, with the change on
// both timelines.
TEST_F(MergeLinksTest, LinkingAgainWithoutARoleKeepsIt) {
  v1::Contact contact = MakeContact("Marie Curie");
  v1::Company company = MakeCompany("Institut");
  v1::LinkCompanyRequest link;
  link.set_contact_id(contact.id());
  link.set_company_id(company.id());
  link.set_role("Director");
  v1::ContactCompanyLink linked;
  ASSERT_TRUE(contact_stub_->LinkCompany(Context().get(), link, &linked).ok());
  const int64_t entries = Count("SELECT count(*) FROM history");

  link.clear_role();
  ASSERT_TRUE(contact_stub_->LinkCompany(Context().get(), link, &linked).ok());
  EXPECT_EQ(linked.role(), "Director");
  v1::LinkContactRequest from_company;
  from_company.set_company_id(company.id());
  from_company.set_contact_id(contact.id());
  ASSERT_TRUE(company_stub_->LinkContact(Context().get(), from_company, &linked).ok());
  EXPECT_EQ(linked.role(), "Director");
  EXPECT_EQ(
      Text(absl::StrCat("SELECT role FROM contact_companies WHERE contact_id = ", contact.id())),
      "Director");
  EXPECT_EQ(Count("SELECT count(*) FROM history"), entries);

  from_company.set_role("");
  ASSERT_TRUE(company_stub_->LinkContact(Context().get(), from_company, &linked).ok());
  EXPECT_EQ(linked.role(), "");
  EXPECT_EQ(Count("SELECT count(*) FROM history WHERE kind = 'LINKED' AND field = 'role' "
                  "AND old_value = 'Director' AND new_value = ''"),
            2);
}

// Protects: a merge that relinks a deal's contact or company writes it on the deal's timeline
// (UNLINKED the folded record, LINKED the kept one), as LinkContact and SetCompany do.
TEST_F(MergeLinksTest, MergesWriteTheRelinkOnTheDeal) {
  v1::Contact kept = MakeContact("Marie Curie");
  v1::Contact folded = MakeContact("M. Curie");
  v1::Company old_company = MakeCompany("Institut du Radium");
  v1::Company new_company = MakeCompany("Institut Curie");
  v1::CreateDealRequest request;
  request.mutable_deal()->set_title("Kitchen");
  request.add_contact_ids(folded.id());
  request.set_company_id(old_company.id());
  v1::Deal deal;
  grpc::Status status = deal_stub_->CreateDeal(Context().get(), request, &deal);
  ASSERT_TRUE(status.ok()) << status.error_message();

  v1::MergeContactsResponse merged;
  ASSERT_TRUE(MergeContacts(kept.id(), {folded.id()}, &merged).ok());
  v1::MergeCompaniesRequest merge_companies;
  merge_companies.set_kept_id(new_company.id());
  merge_companies.add_folded_ids(old_company.id());
  v1::MergeCompaniesResponse companies_merged;
  ASSERT_TRUE(
      company_stub_->MergeCompanies(Context().get(), merge_companies, &companies_merged).ok());

  const std::vector<v1::HistoryEntry> timeline = History(v1::OWNER_TYPE_DEAL, deal.id());
  EXPECT_TRUE(Has(timeline, "UNLINKED", v1::OWNER_TYPE_CONTACT, folded.id()));
  EXPECT_TRUE(Has(timeline, "LINKED", v1::OWNER_TYPE_CONTACT, kept.id()));
  EXPECT_TRUE(Has(timeline, "UNLINKED", v1::OWNER_TYPE_COMPANY, old_company.id()));
  EXPECT_TRUE(Has(timeline, "LINKED", v1::OWNER_TYPE_COMPANY, new_company.id()));
  v1::GetDealRequest get;
  get.set_id(deal.id());
  v1::Deal now;
  ASSERT_TRUE(deal_stub_->GetDeal(Context().get(), get, &now).ok());
  EXPECT_EQ(now.company_id(), new_company.id());
}

// Protects: FindByName reads a lead's name as it reads a contact's, "last first" included
// ("martin lea", "MARTIN Lé", "de la tour jean" find the lead as they find the contact), and
// FindByCommunication reads a mailto: link as the address it holds — as CreateContact stores
// it — while text that is no address at all stays INVALID_ARGUMENT.
TEST_F(MergeLinksTest, SearchReadsLeadsAsContactsAndMailtoLinks) {
  v1::Lead lea = MakeLead("Léa", "Martin", {}, {"lea.martin@example.com"});
  v1::Contact contact = MakeContact("Léa Martin", {}, {"mailto:Lea.Martin@example.com"});
  v1::Lead jean = MakeLead("Jean", "de la Tour", {}, {"jean@tour.example"});
  EXPECT_EQ(contact.emails_size(), 1);
  EXPECT_EQ(contact.emails(0), "lea.martin@example.com");
  auto find = [&](const std::string& prefix) {
    v1::FindByNameRequest request;
    request.set_prefix(prefix);
    v1::FindByNameResponse response;
    grpc::Status status = search_stub_->FindByName(Context().get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    std::vector<std::string> found;
    for (const v1::SearchMatch& match : response.matches()) {
      found.push_back(
          absl::StrCat(v1::OwnerType_Name(match.entity().type()), ":", match.entity().id()));
    }
    return found;
  };
  const std::vector<std::string> both = {absl::StrCat("OWNER_TYPE_LEAD:", lea.id()),
                                         absl::StrCat("OWNER_TYPE_CONTACT:", contact.id())};
  EXPECT_EQ(find("martin lea"), both);
  EXPECT_EQ(find("MARTIN Lé"), both);
  EXPECT_EQ(find("lea martin"), both);
  EXPECT_TRUE(find("martin leo").empty());
  EXPECT_EQ(find("de la tour jean"),
            std::vector<std::string>{absl::StrCat("OWNER_TYPE_LEAD:", jean.id())});

  v1::FindByCommunicationRequest by_link;
  by_link.set_email("mailto:Lea.Martin@example.com?subject=Devis");
  v1::FindByCommunicationResponse found;
  grpc::Status status = search_stub_->FindByCommunication(Context().get(), by_link, &found);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(found.normalized(), "lea.martin@example.com");
  EXPECT_EQ(found.matches_size(), 2);
  v1::FindByCommunicationRequest not_an_address;
  not_an_address.set_email("not-an-email");
  EXPECT_EQ(search_stub_->FindByCommunication(Context().get(), not_an_address, &found).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  not_an_address.set_email("mailto:");
  EXPECT_EQ(search_stub_->FindByCommunication(Context().get(), not_an_address, &found).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace leadflow::crm
