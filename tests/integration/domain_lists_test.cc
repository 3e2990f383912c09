// Findings of a third new-user pass over the CRM domain, over gRPC against a real PostgreSQL:
// names nobody can see, bounded inline links, List filters naming records that are not there,
// empty time ranges, emoji inside searched names, email local parts folded as their domains,
// and identity errors that name the value.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "leadflow/crm/v1/user.grpc.pb.h"
#include "testing/crm.h"

namespace leadflow::crm {
namespace {

class DomainListsTest : public testing::CrmApiTest {
 protected:
  grpc::Status CreateContact(const std::string& first, const std::string& last,
                             const std::vector<std::string>& phones,
                             const std::vector<std::string>& emails,
                             const std::vector<std::string>& messengers,
                             v1::CreateContactResponse* out, bool upsert = false) {
    v1::CreateContactRequest request;
    request.mutable_contact()->set_first_name(first);
    request.mutable_contact()->set_last_name(last);
    for (const std::string& phone : phones) request.mutable_contact()->add_phones(phone);
    for (const std::string& email : emails) request.mutable_contact()->add_emails(email);
    for (const std::string& id : messengers) request.mutable_contact()->add_messengers(id);
    request.set_upsert_by_identity(upsert);
    return contact_stub_->CreateContact(Context().get(), request, out);
  }

  int64_t NewContact(const std::string& first, const std::string& last) {
    v1::CreateContactResponse created;
    grpc::Status status = CreateContact(first, last, {}, {}, {}, &created);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return created.contact().id();
  }

  int64_t NewCompany(const std::string& name) { return MakeCompany(name).id(); }

  int64_t NewDeal(const std::string& title, int64_t contact_id, int64_t company_id) {
    v1::CreateDealRequest request;
    request.mutable_deal()->set_title(title);
    request.mutable_deal()->set_stage_id("NEW");
    if (contact_id != 0) request.add_contact_ids(contact_id);
    request.set_company_id(company_id);
    v1::Deal deal;
    grpc::Status status = deal_stub_->CreateDeal(Context().get(), request, &deal);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return deal.id();
  }

  // The ids FindByName answers for `prefix`, as "CONTACT 3".
  std::set<std::string> Found(const std::string& prefix) {
    v1::FindByNameRequest request;
    request.set_prefix(prefix);
    v1::FindByNameResponse response;
    grpc::Status status = search_stub_->FindByName(Context().get(), request, &response);
    EXPECT_TRUE(status.ok()) << prefix << ": " << status.error_message();
    std::set<std::string> found;
    for (const v1::SearchMatch& match : response.matches()) {
      found.insert(
          absl::StrCat(v1::OwnerType_Name(match.entity().type()), " ", match.entity().id()));
    }
    return found;
  }
};

// Protects (D16): a name made only of characters nobody sees — a combining accent alone, the
// combining grapheme joiner, the braille blank, a Hangul filler, a tag letter, a variation
// selector — is INVALID_ARGUMENT naming the field, for contacts, companies and leads alike, and
// nothing is written; a letter with its combining accent is a name.
TEST_F(DomainListsTest, NamesNobodyCanSeeAreRefused) {
  v1::CreateContactResponse created;
  grpc::Status status = CreateContact("\u0301", "Martin", {}, {}, {}, &created);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(testing::StatusMessage(status),
            "first_name is blank: it holds only invisible characters");
  for (const std::string last : {"\u034F", "\u2800", "\u3164", "\U000E0041", "\uFE0F"}) {
    status = CreateContact("Jean", last, {}, {}, {}, &created);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << last;
    EXPECT_NE(testing::StatusMessage(status).find("last_name is blank"), std::string::npos)
        << testing::StatusMessage(status);
  }
  v1::CreateCompanyRequest company;
  company.mutable_company()->set_name("\u3164\u200B");
  v1::CreateCompanyResponse company_created;
  status = company_stub_->CreateCompany(Context().get(), company, &company_created);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  v1::CreateLeadRequest lead;
  lead.mutable_lead()->set_first_name("\u0301");
  lead.mutable_lead()->set_last_name("Roux");
  v1::Lead lead_created;
  status = lead_stub_->CreateLead(Context().get(), lead, &lead_created);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Count("SELECT (SELECT count(*) FROM contacts) + (SELECT count(*) FROM companies) + "
                  "(SELECT count(*) FROM leads)"),
            0);

  status = CreateContact("E\u0301lodie", "Martin", {}, {}, {}, &created);
  EXPECT_TRUE(status.ok()) << status.error_message();
}

// Protects (D20): a Contact or Company shows at most 100 links of a kind inline, the first by id,
// with the count of all of them; the List filters page through every one. A company with 105
// contacts is one bounded answer that says 5 more exist, and ListContacts company_id finds all.
TEST_F(DomainListsTest, InlineLinksAreCappedAndCounted) {
  const int64_t company_id = NewCompany("Bigcorp");
  Exec(absl::StrCat(
      "INSERT INTO contacts (first_name, last_name, search_first_last, search_last_first) "
      "SELECT 'Staff' || g, 'Bigcorp', 'staff', 'bigcorp' FROM generate_series(1, 105) AS g"));
  Exec(absl::StrCat("INSERT INTO contact_companies (contact_id, company_id) SELECT id, ",
                    company_id, " FROM contacts WHERE last_name = 'Bigcorp'"));
  const int64_t first_contact = Count("SELECT min(id) FROM contacts WHERE last_name = 'Bigcorp'");
  NewDeal("Order", first_contact, company_id);

  v1::GetCompanyRequest get;
  get.set_id(company_id);
  v1::Company company;
  grpc::Status status = company_stub_->GetCompany(Context().get(), get, &company);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(company.contacts_size(), 100);
  EXPECT_EQ(company.contact_count(), 105);
  EXPECT_EQ(company.contacts(0).contact_id(), first_contact);
  EXPECT_EQ(company.contacts(99).contact_id(), first_contact + 99);
  EXPECT_EQ(company.deal_ids_size(), 1);
  EXPECT_EQ(company.deal_count(), 1);

  v1::GetContactRequest get_contact;
  get_contact.set_id(first_contact);
  v1::Contact contact;
  ASSERT_TRUE(contact_stub_->GetContact(Context().get(), get_contact, &contact).ok());
  EXPECT_EQ(contact.company_count(), 1);
  EXPECT_EQ(contact.deal_count(), 1);

  std::set<int64_t> listed;
  v1::ListContactsRequest list;
  list.set_company_id(company_id);
  list.set_page_size(40);
  for (int page = 0; page < 10; ++page) {
    v1::ListContactsResponse response;
    status = contact_stub_->ListContacts(Context().get(), list, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    for (const v1::Contact& listed_contact : response.contacts()) {
      listed.insert(listed_contact.id());
    }
    if (response.next_page_token().empty()) break;
    list.set_page_token(response.next_page_token());
  }
  EXPECT_EQ(listed.size(), 105u);
}

// Protects (D21): a List filter naming a record answers as Get does — NOT_FOUND naming where a
// merged record went, NOT_FOUND for an id that never existed (contacts, companies, users,
// pipelines, stages, activity owners, activities) — instead of an empty page that reads as "this
// person has no deals"; a live record still filters.
TEST_F(DomainListsTest, ListFiltersNamingMissingRecordsAreNotFound) {
  const int64_t folded = NewContact("Ana", "Folded");
  const int64_t kept = NewContact("Ana", "Kept");
  const int64_t company_id = NewCompany("Acme");
  const int64_t deal_id = NewDeal("Kitchen", kept, company_id);
  v1::MergeContactsRequest merge;
  merge.set_kept_id(kept);
  merge.add_folded_ids(folded);
  v1::MergeContactsResponse merged;
  ASSERT_TRUE(contact_stub_->MergeContacts(Context().get(), merge, &merged).ok());

  auto list_deals = [&](const std::function<void(v1::ListDealsRequest&)>& set) {
    v1::ListDealsRequest request;
    set(request);
    v1::ListDealsResponse response;
    grpc::Status status = deal_stub_->ListDeals(Context().get(), request, &response);
    return std::pair{status, response};
  };
  const std::string merged_message =
      absl::StrCat("contact ", folded, " not found: merged into contact ", kept);
  auto [by_folded, none] = list_deals([&](auto& r) { r.set_contact_id(folded); });
  EXPECT_EQ(by_folded.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(testing::StatusMessage(by_folded), merged_message);
  for (const auto& [set, message] :
       std::vector<std::pair<std::function<void(v1::ListDealsRequest&)>, std::string>>{
           {[](auto& r) { r.set_contact_id(987654); }, "contact 987654 not found"},
           {[](auto& r) { r.set_company_id(987654); }, "company 987654 not found"},
           {[](auto& r) { r.set_responsible_user_id(987654); }, "user 987654 not found"},
           {[](auto& r) { r.set_pipeline_id(987654); }, "pipeline 987654 not found"},
           {[](auto& r) {
              r.set_pipeline_id(1);
              r.set_stage_id("NOPE");
            },
            "stage \"NOPE\" not found in pipeline 1"}}) {
    auto [status, response] = list_deals(set);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << message;
    EXPECT_EQ(testing::StatusMessage(status), message);
  }
  auto [by_kept, deals] = list_deals([&](auto& r) { r.set_contact_id(kept); });
  ASSERT_TRUE(by_kept.ok()) << by_kept.error_message();
  ASSERT_EQ(deals.deals_size(), 1);
  EXPECT_EQ(deals.deals(0).id(), deal_id);

  v1::ListCompaniesRequest companies;
  companies.set_contact_id(folded);
  v1::ListCompaniesResponse companies_response;
  grpc::Status status =
      company_stub_->ListCompanies(Context().get(), companies, &companies_response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(testing::StatusMessage(status), merged_message);

  v1::ListContactsRequest contacts;
  contacts.set_company_id(987654);
  v1::ListContactsResponse contacts_response;
  status = contact_stub_->ListContacts(Context().get(), contacts, &contacts_response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(testing::StatusMessage(status), "company 987654 not found");

  v1::ListActivitiesRequest activities;
  activities.set_owner_type(v1::OWNER_TYPE_CONTACT);
  activities.set_owner_id(folded);
  v1::ListActivitiesResponse activities_response;
  status = activity_stub_->ListActivities(Context().get(), activities, &activities_response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(testing::StatusMessage(status), merged_message);

  v1::ListEmailMessagesRequest mail;
  mail.set_owner_type(v1::OWNER_TYPE_CONTACT);
  mail.set_owner_id(folded);
  v1::ListEmailMessagesResponse mail_response;
  status = activity_stub_->ListEmailMessages(Context().get(), mail, &mail_response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(testing::StatusMessage(status), merged_message);
  mail.Clear();
  mail.set_activity_id(987654);
  status = activity_stub_->ListEmailMessages(Context().get(), mail, &mail_response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(testing::StatusMessage(status), "activity 987654 not found");
}

// Protects (D21): a creation time range whose start is not before its end matches nothing and is
// INVALID_ARGUMENT for ListLeads and ListContacts alike, instead of an empty page; a real range
// still lists.
TEST_F(DomainListsTest, EmptyTimeRangesAreRefused) {
  NewContact("Léa", "Martin");
  v1::ListLeadsRequest leads;
  leads.mutable_created_after()->set_seconds(1800000000);
  leads.mutable_created_before()->set_seconds(1700000000);
  v1::ListLeadsResponse leads_response;
  grpc::Status status = lead_stub_->ListLeads(Context().get(), leads, &leads_response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(testing::StatusMessage(status).find("created_after"), std::string::npos);
  leads.mutable_created_before()->set_seconds(1800000000);  // equal: [t, t) is empty too
  status = lead_stub_->ListLeads(Context().get(), leads, &leads_response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  v1::ListContactsRequest contacts;
  contacts.mutable_created_after()->set_seconds(1800000000);
  contacts.mutable_created_before()->set_seconds(1700000000);
  v1::ListContactsResponse contacts_response;
  status = contact_stub_->ListContacts(Context().get(), contacts, &contacts_response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  contacts.mutable_created_after()->set_seconds(0);
  contacts.mutable_created_before()->set_seconds(253402300799);  // 9999-12-31: no limit
  status = contact_stub_->ListContacts(Context().get(), contacts, &contacts_response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(contacts_response.contacts_size(), 1);
}

// Protects (D24): an emoji inside a word does not cut it: "Pe«family emoji»ña" (a ZWJ sequence)
// is found by "pena", "peña" and its last name first, as a contact, a lead and a company alike.
TEST_F(DomainListsTest, EmojiInsideANameDoesNotHideIt) {
  const std::string name = "Pe\U0001F468\u200D\U0001F469\u200D\U0001F467ña";
  const int64_t contact_id = NewContact(name, "Roux");
  v1::CreateLeadRequest lead;
  lead.mutable_lead()->set_first_name(name);
  lead.mutable_lead()->set_last_name("Roux");
  v1::Lead lead_created;
  grpc::Status status = lead_stub_->CreateLead(Context().get(), lead, &lead_created);
  ASSERT_TRUE(status.ok()) << status.error_message();
  const int64_t company_id = NewCompany("Caf\u2615e\u0301 " + name);

  const std::set<std::string> all = {absl::StrCat("OWNER_TYPE_CONTACT ", contact_id),
                                     absl::StrCat("OWNER_TYPE_LEAD ", lead_created.id()),
                                     absl::StrCat("OWNER_TYPE_COMPANY ", company_id)};
  EXPECT_EQ(Found("pena"), all);
  EXPECT_EQ(Found("Peña"), all);
  EXPECT_EQ(Found("roux pe"),
            (std::set<std::string>{absl::StrCat("OWNER_TYPE_CONTACT ", contact_id),
                                   absl::StrCat("OWNER_TYPE_LEAD ", lead_created.id())}));
  EXPECT_EQ(Found("cafe"), std::set<std::string>{absl::StrCat("OWNER_TYPE_COMPANY ", company_id)});
}

// Protects (D23): the local part of an email is folded the Unicode way its domain is, so
// "İnci@Örnek.example" is stored once, found by any capitalisation, and an upsert with another
// spelling returns the same contact; an A-label decoding to a character IDNA2008 disallows
// ("stanb§ul") is INVALID_ARGUMENT naming the value, and nothing is written.
TEST_F(DomainListsTest, EmailLocalPartsFoldedAsDomains) {
  v1::CreateContactResponse created;
  grpc::Status status = CreateContact("İnci", "Yılmaz", {}, {"İnci@Örnek.example"}, {}, &created);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(created.contact().emails_size(), 1);
  EXPECT_EQ(created.contact().emails(0), "i\u0307nci@örnek.example");

  for (const std::string spelling : {"İNCI@ÖRNEK.EXAMPLE", "i\u0307nci@örnek.example"}) {
    v1::FindByCommunicationRequest find;
    find.set_email(spelling);
    v1::FindByCommunicationResponse found;
    status = search_stub_->FindByCommunication(Context().get(), find, &found);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_EQ(found.matches_size(), 1) << spelling;
    EXPECT_EQ(found.matches(0).entity().id(), created.contact().id());
  }
  v1::CreateContactResponse upserted;
  status = CreateContact("Inci", "Y", {}, {"İNCI@örnek.EXAMPLE"}, {}, &upserted, true);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(upserted.outcome(), v1::UPSERT_OUTCOME_EXISTING);
  EXPECT_EQ(upserted.contact().id(), created.contact().id());

  status = CreateContact("Ayşe", "Kaya", {}, {"a@xn--stanbul-cja.example"}, {}, &upserted);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(testing::StatusMessage(status).rfind("emails[0] \"a@xn--stanbul-cja.example\": ", 0),
            0u)
      << testing::StatusMessage(status);
  EXPECT_EQ(Count("SELECT count(*) FROM contacts"), 1);
}

// Protects (D26): an identity the API cannot read is named by field, index and quoted value, so
// that a caller sending several knows which to fix; the same for CreateLead.
TEST_F(DomainListsTest, IdentityErrorsNameTheValue) {
  v1::CreateContactResponse created;
  grpc::Status status = CreateContact("Jean", "Roux", {"06 12 34 56 78", "12ab"}, {}, {}, &created);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(testing::StatusMessage(status).rfind("phones[1] \"12ab\": ", 0), 0u)
      << testing::StatusMessage(status);
  status = CreateContact("Jean", "Roux", {}, {"jean@roux.example", "jean at roux"}, {}, &created);
  EXPECT_EQ(testing::StatusMessage(status).rfind("emails[1] \"jean at roux\": ", 0), 0u)
      << testing::StatusMessage(status);
  status = CreateContact("Jean", "Roux", {}, {}, {"telegram"}, &created);
  EXPECT_EQ(testing::StatusMessage(status),
            "messengers[0] \"telegram\": not \"platform:user-id\" (e.g. telegram:123456)");
  v1::CreateLeadRequest lead;
  lead.mutable_lead()->set_first_name("Jean");
  lead.mutable_lead()->add_phones("0612345678");
  lead.mutable_lead()->add_phones("\"quoted\"");
  v1::Lead lead_created;
  status = lead_stub_->CreateLead(Context().get(), lead, &lead_created);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(testing::StatusMessage(status).rfind("phones[1] \"\\\"quoted\\\"\": ", 0), 0u)
      << testing::StatusMessage(status);
  EXPECT_EQ(Count("SELECT (SELECT count(*) FROM contacts) + (SELECT count(*) FROM leads)"), 0);
}

// Protects: one bound per kind of field, whichever service takes it (docs/api.md, "Limits"): a
// name of 501 bytes is INVALID_ARGUMENT "<field> is longer than 500 bytes" on a lead (first_name,
// last_name, company_name, city) as on a contact and a company, and 500 bytes are taken by each; a
// status name or a user's name of 201 bytes is refused as a pipeline's is; CreateLead takes at most
// 50 phones, as CreateContact does; a messenger id of 320 bytes (what the consumer stores) is
// taken. A refused call writes nothing.
TEST_F(DomainListsTest, OneBoundPerKindOfField) {
  const std::string name(500, 'n');
  const std::string over(501, 'n');
  for (const std::string field : {"first_name", "last_name", "company_name", "city"}) {
    SCOPED_TRACE(field);
    v1::CreateLeadRequest request;
    request.mutable_lead()->set_title("Bounds");
    const auto* descriptor = v1::Lead::descriptor()->FindFieldByName(field);
    ASSERT_NE(descriptor, nullptr);
    request.mutable_lead()->GetReflection()->SetString(request.mutable_lead(), descriptor, over);
    v1::Lead lead;
    grpc::Status status = lead_stub_->CreateLead(Context().get(), request, &lead);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(testing::StatusMessage(status), field + " is longer than 500 bytes");
    request.mutable_lead()->GetReflection()->SetString(request.mutable_lead(), descriptor, name);
    status = lead_stub_->CreateLead(Context().get(), request, &lead);
    EXPECT_TRUE(status.ok()) << status.error_message();
  }
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 4);

  v1::CreateContactResponse contact;
  grpc::Status status = CreateContact(over, "Curie", {}, {}, {}, &contact);
  EXPECT_EQ(testing::StatusMessage(status), "first_name is longer than 500 bytes");
  EXPECT_TRUE(CreateContact(name, "Curie", {}, {}, {}, &contact).ok());
  v1::CreateCompanyRequest company;
  company.mutable_company()->set_name(over);
  v1::CreateCompanyResponse made;
  status = company_stub_->CreateCompany(Context().get(), company, &made);
  EXPECT_EQ(testing::StatusMessage(status), "name is longer than 500 bytes");
  EXPECT_EQ(MakeCompany(name).name(), name);
  auto user_stub = api_->Stub<v1::UserService>();
  v1::CreateUserRequest user;
  user.mutable_user()->set_name(std::string(201, 'u'));
  v1::User created_user;
  status = user_stub->CreateUser(Context().get(), user, &created_user);
  EXPECT_EQ(testing::StatusMessage(status), "name is longer than 200 bytes");
  user.mutable_user()->set_name(std::string(200, 'u'));
  EXPECT_TRUE(user_stub->CreateUser(Context().get(), user, &created_user).ok());

  v1::CreateStatusRequest label;
  label.set_kind(v1::STATUS_KIND_LEAD_STATUS);
  label.mutable_status()->set_id("LONG_NAME");
  label.mutable_status()->set_name(std::string(201, 's'));
  label.mutable_status()->set_sort(25);
  label.mutable_status()->set_semantics(v1::SEMANTICS_PROCESS);
  v1::Status created_status;
  status = status_stub_->CreateStatus(Context().get(), label, &created_status);
  EXPECT_EQ(testing::StatusMessage(status), "name is longer than 200 bytes");
  label.mutable_status()->set_name(std::string(200, 's'));
  EXPECT_TRUE(status_stub_->CreateStatus(Context().get(), label, &created_status).ok());

  v1::CreateLeadRequest phones;
  phones.mutable_lead()->set_title("Many phones");
  for (int i = 0; i < 51; ++i)
    phones.mutable_lead()->add_phones(absl::StrCat("+336100000", 10 + i));
  v1::Lead lead;
  status = lead_stub_->CreateLead(Context().get(), phones, &lead);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(testing::StatusMessage(status), "phones: at most 50 values, got 51");
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 4);

  const std::string messenger = "telegram:" + std::string(320 - 9, '7');
  EXPECT_TRUE(CreateContact("Tele", "Gram", {}, {}, {messenger}, &contact).ok());
  status = CreateContact("Tele", "Gram", {}, {}, {messenger + "7"}, &contact);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_EQ(Count("SELECT count(*) FROM contacts"), 2);
}

}  // namespace
}  // namespace leadflow::crm
