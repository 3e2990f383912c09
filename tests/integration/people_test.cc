// Contacts, companies, links, history, search, activities on any owner, upsert by identity and
// merges through crm-core's gRPC services in process, against a real PostgreSQL.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <pqxx/pqxx>
#include <thread>

#include "crm-core/api/people_common.h"
#include "crm-core/api/people_services.h"
#include "crm-core/api/services.h"
#include "crm-core/store/statements.h"
#include "pg/pg.h"
#include "testing/crm.h"
#include "testing/testing.h"

namespace leadflow::crm {
namespace {

using namespace std::chrono_literals;

constexpr char kKey[] = "test-admin-key-0123456789";

class PeopleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    api_ = std::make_unique<testing::CrmApi>(
        testing::CrmApiOptions{.keys = {{kKey, Role::kAdmin}}, .queue_max = 64});
    lead_stub_ = api_->Stub<v1::LeadService>();
    activity_stub_ = api_->Stub<v1::ActivityService>();
    contact_stub_ = api_->Stub<v1::ContactService>();
    company_stub_ = api_->Stub<v1::CompanyService>();
    history_stub_ = api_->Stub<v1::HistoryService>();
    search_stub_ = api_->Stub<v1::SearchService>();
  }

  static std::unique_ptr<grpc::ClientContext> Context(int64_t user_id = 0) {
    return testing::CallContext(kKey, 20s, user_id);
  }

  int64_t Scalar(const std::string& sql) { return api_->Scalar(sql); }

  v1::Contact CreateContact(const std::string& json_like_name, std::vector<std::string> phones,
                            bool upsert = false, v1::UpsertOutcome* outcome = nullptr) {
    v1::CreateContactRequest request;
    request.mutable_contact()->set_full_name(json_like_name);
    for (const std::string& phone : phones) {
      request.mutable_contact()->add_phones(phone);
    }
    request.set_upsert_by_identity(upsert);
    v1::CreateContactResponse response;
    grpc::Status status = contact_stub_->CreateContact(Context().get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    if (outcome != nullptr) {
      *outcome = response.outcome();
    }
    return response.contact();
  }

  std::vector<v1::HistoryEntry> History(v1::OwnerType type, int64_t id) {
    v1::ListHistoryRequest request;
    request.mutable_entity()->set_type(type);
    request.mutable_entity()->set_id(id);
    v1::ListHistoryResponse response;
    EXPECT_TRUE(history_stub_->ListHistory(Context().get(), request, &response).ok());
    return {response.entries().begin(), response.entries().end()};
  }

  std::unique_ptr<testing::CrmApi> api_;
  std::unique_ptr<v1::LeadService::Stub> lead_stub_;
  std::unique_ptr<v1::ActivityService::Stub> activity_stub_;
  std::unique_ptr<v1::ContactService::Stub> contact_stub_;
  std::unique_ptr<v1::CompanyService::Stub> company_stub_;
  std::unique_ptr<v1::HistoryService::Stub> history_stub_;
  std::unique_ptr<v1::SearchService::Stub> search_stub_;
};

// Protects: a single name is split, a missing last name becomes the configured placeholder
// (never refused), phones are stored normalised, links show from both sides with their role,
// and every change lands in the timeline (created, field old → new with who, linked, unlinked),
// newest first; a stale etag is ABORTED and changes nothing.
TEST_F(PeopleTest, ContactsCompaniesLinksAndHistory) {
  const int64_t ann = Scalar("INSERT INTO users (name) VALUES ('Ann') RETURNING id");
  v1::Contact jp = CreateContact("Jean-Pierre de la Tour", {"06 12 34 56 78"});
  EXPECT_EQ(jp.first_name(), "Jean-Pierre");
  EXPECT_EQ(jp.last_name(), "de la Tour");
  ASSERT_EQ(jp.phones_size(), 1);
  EXPECT_EQ(jp.phones(0), "+33612345678");
  EXPECT_EQ(CreateContact("Cher", {}).last_name(), "Unknown");
  Scalar("UPDATE crm_settings SET last_name_placeholder = 'Inconnu' RETURNING 1");
  EXPECT_EQ(CreateContact("Madonna", {}).last_name(), "Inconnu");

  v1::CreateCompanyRequest create_company;
  create_company.mutable_company()->set_name("Atelier Curie");
  create_company.mutable_company()->add_emails(" Office@Curie.FR ");
  v1::CreateCompanyResponse company;
  ASSERT_TRUE(company_stub_->CreateCompany(Context().get(), create_company, &company).ok());
  EXPECT_EQ(company.company().emails(0), "office@curie.fr");

  v1::LinkCompanyRequest link;
  link.set_contact_id(jp.id());
  link.set_company_id(company.company().id());
  link.set_role("Accountant");
  v1::ContactCompanyLink linked;
  ASSERT_TRUE(contact_stub_->LinkCompany(Context(ann).get(), link, &linked).ok());
  v1::LinkContactRequest relink;  // from the other side: a new role
  relink.set_company_id(company.company().id());
  relink.set_contact_id(jp.id());
  relink.set_role("Director");
  ASSERT_TRUE(company_stub_->LinkContact(Context(ann).get(), relink, &linked).ok());
  v1::GetCompanyRequest get_company;
  get_company.set_id(company.company().id());
  v1::Company seen;
  ASSERT_TRUE(company_stub_->GetCompany(Context().get(), get_company, &seen).ok());
  ASSERT_EQ(seen.contacts_size(), 1);
  EXPECT_EQ(seen.contacts(0).contact_id(), jp.id());
  EXPECT_EQ(seen.contacts(0).role(), "Director");

  v1::UpdateContactRequest update;
  update.mutable_contact()->set_id(jp.id());
  update.mutable_contact()->set_first_name("Jean-Paul");
  update.mutable_contact()->set_etag(jp.etag());
  update.mutable_update_mask()->add_paths("first_name");
  v1::Contact updated;
  ASSERT_TRUE(contact_stub_->UpdateContact(Context(ann).get(), update, &updated).ok());
  EXPECT_EQ(updated.first_name(), "Jean-Paul");
  ASSERT_EQ(updated.companies_size(), 1);
  update.mutable_contact()->set_first_name("Stale");
  EXPECT_EQ(contact_stub_->UpdateContact(Context(ann).get(), update, &updated).error_code(),
            grpc::StatusCode::ABORTED);

  v1::UnlinkCompanyRequest unlink;
  unlink.set_contact_id(jp.id());
  unlink.set_company_id(company.company().id());
  google::protobuf::Empty empty;
  ASSERT_TRUE(contact_stub_->UnlinkCompany(Context(ann).get(), unlink, &empty).ok());
  EXPECT_EQ(contact_stub_->UnlinkCompany(Context(ann).get(), unlink, &empty).error_code(),
            grpc::StatusCode::NOT_FOUND);

  std::vector<v1::HistoryEntry> history = History(v1::OWNER_TYPE_CONTACT, jp.id());
  ASSERT_EQ(history.size(), 5u);
  EXPECT_EQ(history[0].kind(), "UNLINKED");
  EXPECT_EQ(history[1].kind(), "FIELD_CHANGED");
  EXPECT_EQ(history[1].field(), "first_name");
  EXPECT_EQ(history[1].old_value(), "Jean-Pierre");
  EXPECT_EQ(history[1].new_value(), "Jean-Paul");
  EXPECT_EQ(history[1].user_id(), ann);
  EXPECT_EQ(history[2].kind(), "LINKED");
  EXPECT_EQ(history[2].old_value(), "Accountant");
  EXPECT_EQ(history[2].new_value(), "Director");
  EXPECT_EQ(history[3].kind(), "LINKED");
  EXPECT_EQ(history[3].related().id(), company.company().id());
  EXPECT_EQ(history[4].kind(), "CREATED");
  EXPECT_EQ(History(v1::OWNER_TYPE_COMPANY, company.company().id()).size(), 4u);

  v1::CreateContactRequest nameless;
  v1::CreateContactResponse refused;
  EXPECT_EQ(contact_stub_->CreateContact(Context().get(), nameless, &refused).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  nameless.mutable_contact()->add_phones("not a phone");
  grpc::Status bad_phone = contact_stub_->CreateContact(Context().get(), nameless, &refused);
  EXPECT_EQ(bad_phone.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(bad_phone.error_message().find("phones"), std::string::npos);
}

// Protects: FindByCommunication finds every lead, contact and company holding a phone written
// in any format; FindByName is prefix- and accent-insensitive ("lea" finds "Léa") over all kinds.
TEST_F(PeopleTest, SearchFindsEveryKindByPhoneAndName) {
  v1::CreateLeadRequest lead;
  lead.mutable_lead()->set_first_name("Léa");
  lead.mutable_lead()->set_last_name("Martin");
  lead.mutable_lead()->add_phones("+33 6 12 34 56 78");
  v1::Lead made;
  ASSERT_TRUE(lead_stub_->CreateLead(Context().get(), lead, &made).ok());
  v1::Contact contact = CreateContact("Léa Dupont", {"0612345678"});
  v1::CreateCompanyRequest company;
  company.mutable_company()->set_name("Léon & Fils");
  company.mutable_company()->add_phones("0033612345678");
  v1::CreateCompanyResponse made_company;
  ASSERT_TRUE(company_stub_->CreateCompany(Context().get(), company, &made_company).ok());
  CreateContact("Paul Léautaud", {});

  v1::FindByCommunicationRequest by_phone;
  by_phone.set_phone("06.12.34.56.78");
  v1::FindByCommunicationResponse found;
  ASSERT_TRUE(search_stub_->FindByCommunication(Context().get(), by_phone, &found).ok());
  EXPECT_EQ(found.normalized(), "+33612345678");
  ASSERT_EQ(found.matches_size(), 3);
  EXPECT_EQ(found.matches(0).entity().type(), v1::OWNER_TYPE_LEAD);
  EXPECT_EQ(found.matches(0).entity().id(), made.id());
  EXPECT_EQ(found.matches(1).entity().id(), contact.id());
  EXPECT_EQ(found.matches(2).entity().id(), made_company.company().id());

  v1::FindByNameRequest by_name;
  by_name.set_prefix("LEA");
  by_name.set_page_size(1);
  std::vector<std::pair<v1::OwnerType, std::string>> names;
  for (int pages = 0; pages < 10; ++pages) {
    v1::FindByNameResponse page;
    ASSERT_TRUE(search_stub_->FindByName(Context().get(), by_name, &page).ok());
    for (const v1::SearchMatch& match : page.matches()) {
      names.push_back({match.entity().type(), match.display_name()});
    }
    if (page.next_page_token().empty()) break;
    by_name.set_page_token(page.next_page_token());
  }
  // Léa Martin (lead), Léa Dupont and Paul Léautaud (last name) (contacts), not "Léon".
  ASSERT_EQ(names.size(), 3u);
  EXPECT_EQ(names[0].first, v1::OWNER_TYPE_LEAD);
  EXPECT_EQ(names[1].second, "Léa Dupont");
  EXPECT_EQ(names[2].second, "Paul Léautaud");
  by_name.Clear();
  by_name.set_prefix("leon");
  v1::FindByNameResponse companies;
  ASSERT_TRUE(search_stub_->FindByName(Context().get(), by_name, &companies).ok());
  ASSERT_EQ(companies.matches_size(), 1);
  EXPECT_EQ(companies.matches(0).entity().type(), v1::OWNER_TYPE_COMPANY);
}

// Protects: FindByName matches a prefix of any word of a name, not only the first: "beeth"
// finds Ludwig van Beethoven as a lead, a contact and a company, "claire" finds Marie-Claire
// (after a hyphen), "fils" a company "Léon & Fils", accent- and case-insensitively; a prefix
// inside a word ("ethoven") finds nothing; a name typed last name first finds the lead and the
// contact.
TEST_F(PeopleTest, FindByNameMatchesAPrefixOfAnyWord) {
  v1::CreateLeadRequest lead;
  lead.mutable_lead()->set_first_name("Ludwig");
  lead.mutable_lead()->set_last_name("van Beethoven");
  v1::Lead made;
  ASSERT_TRUE(lead_stub_->CreateLead(Context().get(), lead, &made).ok());
  v1::Contact ludwig = CreateContact("Ludwig van Beethoven", {});
  v1::Contact claire = CreateContact("Marie-Claire Dupré", {});
  v1::CreateCompanyRequest company;
  company.mutable_company()->set_name("Beethoven-Haus Bonn");
  v1::CreateCompanyResponse haus;
  ASSERT_TRUE(company_stub_->CreateCompany(Context().get(), company, &haus).ok());
  company.mutable_company()->set_name("Léon & Fils");
  v1::CreateCompanyResponse fils;
  ASSERT_TRUE(company_stub_->CreateCompany(Context().get(), company, &fils).ok());

  auto find = [&](const std::string& prefix) {
    v1::FindByNameRequest request;
    request.set_prefix(prefix);
    v1::FindByNameResponse response;
    grpc::Status status = search_stub_->FindByName(Context().get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    std::vector<std::pair<v1::OwnerType, int64_t>> found;
    for (const v1::SearchMatch& match : response.matches()) {
      found.emplace_back(match.entity().type(), match.entity().id());
    }
    return found;
  };
  using Found = std::vector<std::pair<v1::OwnerType, int64_t>>;
  EXPECT_EQ(find("beeth"), (Found{{v1::OWNER_TYPE_LEAD, made.id()},
                                  {v1::OWNER_TYPE_CONTACT, ludwig.id()},
                                  {v1::OWNER_TYPE_COMPANY, haus.company().id()}}));
  EXPECT_EQ(find("BEETHOVEN"), find("beeth"));
  EXPECT_EQ(find("claire"), (Found{{v1::OWNER_TYPE_CONTACT, claire.id()}}));
  EXPECT_EQ(find("dupre"), (Found{{v1::OWNER_TYPE_CONTACT, claire.id()}}));
  EXPECT_EQ(find("bonn"), (Found{{v1::OWNER_TYPE_COMPANY, haus.company().id()}}));
  EXPECT_EQ(find("fils"), (Found{{v1::OWNER_TYPE_COMPANY, fils.company().id()}}));
  EXPECT_EQ(find("ethoven"), Found{});
  // Last name first finds the lead as it finds the contact (a lead keeps "first last" only).
  EXPECT_EQ(find("van beethoven lud"),
            (Found{{v1::OWNER_TYPE_LEAD, made.id()}, {v1::OWNER_TYPE_CONTACT, ludwig.id()}}));
}

// Protects (D1, D2 of the third new-user pass): FindByName reads names the way people type them.
// A word after an apostrophe starts a word ("epi" and "or" find "Boulangerie L'Épi d'Or", and
// "l'epi", "d'or" still do; typed without it, "lepi" and "dartagnan" too); a hyphen typed where the
// name has a space finds it ("Électricité-Gén"); ü, ö typed the German way ("mueller", "soehne")
// find "Müller & Söhne", "muller" still does, and "Müller" finds a name stored "Mueller"; "abc"
// finds "A.B.C. Conseil". What worked keeps working: accents, ß, œ, Ō, en dash for hyphen,
// hyphenated parts ("generale-du", "du-rhone"), an emoji inside a word, a part inside a word
// finds nothing. Leads (name and company), contacts (both orders) and companies alike.
TEST_F(PeopleTest, FindByNameReadsApostrophesHyphensUmlautsAndInitialisms) {
  auto company = [&](const std::string& name) {
    v1::CreateCompanyRequest request;
    request.mutable_company()->set_name(name);
    v1::CreateCompanyResponse response;
    grpc::Status status = company_stub_->CreateCompany(Context().get(), request, &response);
    EXPECT_TRUE(status.ok()) << name << ": " << status.error_message();
    return response.company().id();
  };
  const int64_t epi = company("Boulangerie L'Épi d'Or");
  const int64_t electricite = company("Électricité Générale");
  const int64_t muller = company("Müller & Söhne");
  const int64_t abc = company("A.B.C. Conseil");
  const int64_t rhone = company("Compagnie Générale-du-Rhône");
  const int64_t mueller = company("Mueller Bau");
  const int64_t others =
      company("Straße Œuvre Ōtsuka Pe\U0001F468\u200D\U0001F469\u200D\U0001F467ña");
  v1::Contact jurgen = CreateContact("Jürgen O’Neil", {});
  v1::CreateLeadRequest lead;
  lead.mutable_lead()->set_first_name("Léa");
  lead.mutable_lead()->set_last_name("D'Artagnan");
  lead.mutable_lead()->set_company_name("Bäckerei Kühn");
  v1::Lead lea;
  ASSERT_TRUE(lead_stub_->CreateLead(Context().get(), lead, &lea).ok());

  using Found = std::vector<std::pair<v1::OwnerType, int64_t>>;
  auto find = [&](const std::string& prefix) {
    v1::FindByNameRequest request;
    request.set_prefix(prefix);
    v1::FindByNameResponse response;
    grpc::Status status = search_stub_->FindByName(Context().get(), request, &response);
    EXPECT_TRUE(status.ok()) << prefix << ": " << status.error_message();
    Found found;
    for (const v1::SearchMatch& match : response.matches()) {
      found.emplace_back(match.entity().type(), match.entity().id());
    }
    return found;
  };
  auto companies = [](std::vector<int64_t> ids) {
    Found found;
    for (int64_t id : ids) found.emplace_back(v1::OWNER_TYPE_COMPANY, id);
    return found;
  };
  const Found lea_found = {{v1::OWNER_TYPE_LEAD, lea.id()}};
  const Found jurgen_found = {{v1::OWNER_TYPE_CONTACT, jurgen.id()}};

  // D1: an apostrophe starts a word; the whole form and the form typed without it still match.
  for (const char* prefix : {"epi", "or", "l'epi", "L’Épi d'O", "d'or", "lepi", "epi d'or"}) {
    EXPECT_EQ(find(prefix), companies({epi})) << prefix;
  }
  for (const char* prefix :
       {"artagnan", "d'artagnan", "dartagnan", "d'artagnan le", "dartagnan lea", "lea dart"}) {
    EXPECT_EQ(find(prefix), lea_found) << prefix;
  }
  for (const char* prefix :
       {"neil", "o'neil", "oneil", "O’Neil Jü", "oneil juergen", "juergen o"}) {
    EXPECT_EQ(find(prefix), jurgen_found) << prefix;
  }
  // D2: a hyphen typed for a space; German umlauts; an initialism's dots.
  for (const char* prefix :
       {"Électricité-Gén", "electricite-generale", "electricite gen", "Électricité–Gén"}) {
    EXPECT_EQ(find(prefix), companies({electricite})) << prefix;
  }
  for (const char* prefix : {"mueller &", "soehne", "sohne", "muller", "Müller & Sö"}) {
    EXPECT_EQ(find(prefix), companies({muller})) << prefix;
  }
  // "Müller" is looked for as "mueller" too: it finds the name stored "Mueller".
  EXPECT_EQ(find("Müller"), companies({muller, mueller}));
  EXPECT_EQ(find("mueller"), companies({muller, mueller}));
  EXPECT_EQ(find("baeckerei kue"), lea_found);
  EXPECT_EQ(find("kuhn"), lea_found);
  for (const char* prefix : {"abc", "ABC Con", "a.b.c", "a.b.c. conseil", "conseil"}) {
    EXPECT_EQ(find(prefix), companies({abc})) << prefix;
  }
  // As before.
  for (const char* prefix : {"generale-du", "du-rhone", "Générale–du", "rhône", "compagnie g"}) {
    EXPECT_EQ(find(prefix), companies({rhone})) << prefix;
  }
  for (const char* prefix : {"strasse", "oeuvre", "œuvre", "otsuka", "Ōtsuka", "pena", "peña"}) {
    EXPECT_EQ(find(prefix), companies({others})) << prefix;
  }
  for (const char* prefix : {"uller", "rtagnan", "bc", "lectricite", "neil jurgen x"}) {
    EXPECT_EQ(find(prefix), Found{}) << prefix;
  }
}

// Protects: activities live on contacts, companies and deals (the owner must exist: NOT_FOUND
// "company N not found" otherwise, nothing written); overdue lists open activities past their
// deadline only; an activity on a deal moves the deal's last activity time (idle deals count
// from it).
TEST_F(PeopleTest, ActivitiesOnAnyOwnerAndOverdue) {
  v1::Contact contact = CreateContact("Marie Curie", {});
  const int64_t deal = Scalar(
      "INSERT INTO deals (title, pipeline_id, stage_id, stage_semantics, last_activity_at)"
      " VALUES ('Lab', 1, 'NEW', 'PROCESS', now() - interval '30 days') RETURNING id");
  auto create = [&](v1::OwnerType type, int64_t id, int64_t deadline_seconds_from_now) {
    v1::CreateActivityRequest request;
    request.mutable_activity()->set_type(v1::ACTIVITY_TYPE_CALL);
    request.mutable_activity()->set_owner_type(type);
    request.mutable_activity()->set_owner_id(id);
    request.mutable_activity()->set_subject("Call back");
    request.mutable_activity()->mutable_deadline()->set_seconds(
        std::chrono::duration_cast<std::chrono::seconds>(
            std::chrono::system_clock::now().time_since_epoch())
            .count() +
        deadline_seconds_from_now);
    v1::Activity activity;
    grpc::Status status = activity_stub_->CreateActivity(Context().get(), request, &activity);
    return std::pair{status, activity};
  };
  auto [late_status, late] = create(v1::OWNER_TYPE_CONTACT, contact.id(), -3600);
  ASSERT_TRUE(late_status.ok()) << late_status.error_message();
  ASSERT_TRUE(create(v1::OWNER_TYPE_CONTACT, contact.id(), 3600).first.ok());
  EXPECT_EQ(Scalar(absl::StrCat("SELECT (now() - last_activity_at < interval '1 day')::int"
                                " FROM deals WHERE id = ",
                                deal)),
            0);
  ASSERT_TRUE(create(v1::OWNER_TYPE_DEAL, deal, 3600).first.ok());
  EXPECT_EQ(Scalar(absl::StrCat("SELECT (now() - last_activity_at < interval '1 day')::int"
                                " FROM deals WHERE id = ",
                                deal)),
            1);
  // A missing owner is NOT_FOUND naming it, as a Get of it answers; nothing is written.
  grpc::Status missing = create(v1::OWNER_TYPE_COMPANY, 999999, 0).first;
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(missing.error_message().find("company 999999 not found"), std::string::npos)
      << missing.error_message();
  EXPECT_EQ(Scalar("SELECT count(*) FROM activities WHERE owner_type = 'COMPANY'"), 0);

  v1::ListActivitiesRequest overdue;
  overdue.set_overdue_only(true);
  v1::ListActivitiesResponse listed;
  ASSERT_TRUE(activity_stub_->ListActivities(Context().get(), overdue, &listed).ok());
  ASSERT_EQ(listed.activities_size(), 1);
  EXPECT_EQ(listed.activities(0).id(), late.id());
  v1::CompleteActivityRequest complete;
  complete.set_id(late.id());
  v1::Activity done;
  ASSERT_TRUE(activity_stub_->CompleteActivity(Context().get(), complete, &done).ok());
  ASSERT_TRUE(activity_stub_->ListActivities(Context().get(), overdue, &listed).ok());
  EXPECT_EQ(listed.activities_size(), 0);
}

// Protects: concurrent CreateContact calls asking to upsert the same phone, written in
// different formats, make one contact: exactly one answers CREATED, the others EXISTING with
// its id (the identity locks serialise them; without them several contacts appear).
TEST_F(PeopleTest, ConcurrentUpsertsMakeOneContact) {
  const std::vector<std::string> formats = {"06 12 34 56 78",       "+33612345678",
                                            "0033 6 12 34 56 78",   "06.12.34.56.78",
                                            "+33 (0)6 12 34 56 78", "0612345678"};
  for (int round = 0; round < 5; ++round) {
    Scalar("WITH gone AS (DELETE FROM contacts) SELECT 1");
    std::vector<std::thread> callers;
    std::vector<v1::UpsertOutcome> outcomes(formats.size());
    std::vector<int64_t> ids(formats.size());
    for (size_t i = 0; i < formats.size(); ++i) {
      callers.emplace_back([&, i] {
        v1::Contact contact = CreateContact("Marie Curie", {formats[i]}, true, &outcomes[i]);
        ids[i] = contact.id();
      });
    }
    for (std::thread& caller : callers) {
      caller.join();
    }
    EXPECT_EQ(Scalar("SELECT count(*) FROM contacts"), 1);
    EXPECT_EQ(std::count(outcomes.begin(), outcomes.end(), v1::UPSERT_OUTCOME_CREATED), 1);
    EXPECT_EQ(std::count(outcomes.begin(), outcomes.end(), v1::UPSERT_OUTCOME_EXISTING),
              static_cast<long>(formats.size()) - 1);
    EXPECT_EQ(std::count(ids.begin(), ids.end(), ids[0]), static_cast<long>(ids.size()));
  }
  // Leads alike.
  v1::CreateLeadRequest lead;
  lead.mutable_lead()->set_first_name("Marie");
  lead.mutable_lead()->add_phones("06 99 88 77 66");
  lead.set_upsert_by_identity(true);
  v1::Lead first;
  v1::Lead second;
  ASSERT_TRUE(lead_stub_->CreateLead(Context().get(), lead, &first).ok());
  lead.mutable_lead()->set_phones(0, "+33699887766");
  ASSERT_TRUE(lead_stub_->CreateLead(Context().get(), lead, &second).ok());
  EXPECT_EQ(first.upsert_outcome(), v1::UPSERT_OUTCOME_CREATED);
  EXPECT_EQ(second.upsert_outcome(), v1::UPSERT_OUTCOME_EXISTING);
  EXPECT_EQ(second.id(), first.id());
}

// Protects: MergeContacts moves identities, activities and company links to the kept contact
// in one transaction and gives it a new etag; the folded id answers NOT_FOUND naming the kept one;
// a retry is harmless (folds nothing); merging the folded one into a third contact is
// FAILED_PRECONDITION. Leads and companies merge alike.
TEST_F(PeopleTest, MergesFoldAndAreIdempotent) {
  v1::Contact kept = CreateContact("Marie Curie", {"0611111111"});
  v1::Contact folded = CreateContact("M. Curie", {"0622222222"});
  // The duplicate shares the kept one's phone, as records written before the API refused a
  // second holder (docs/domain.md, "One person, one record") or imported do.
  api_->Exec("INSERT INTO contact_identities VALUES ('PHONE', '+33611111111', " +
             std::to_string(folded.id()) + ")");
  v1::Contact third = CreateContact("Pierre Curie", {});
  v1::CreateCompanyRequest company;
  company.mutable_company()->set_name("Institut");
  v1::CreateCompanyResponse made;
  ASSERT_TRUE(company_stub_->CreateCompany(Context().get(), company, &made).ok());
  v1::LinkCompanyRequest link;
  link.set_contact_id(folded.id());
  link.set_company_id(made.company().id());
  v1::ContactCompanyLink linked;
  ASSERT_TRUE(contact_stub_->LinkCompany(Context().get(), link, &linked).ok());
  v1::CreateActivityRequest activity;
  activity.mutable_activity()->set_type(v1::ACTIVITY_TYPE_TASK);
  activity.mutable_activity()->set_owner_type(v1::OWNER_TYPE_CONTACT);
  activity.mutable_activity()->set_owner_id(folded.id());
  activity.mutable_activity()->set_subject("Send the quote");
  v1::Activity task;
  ASSERT_TRUE(activity_stub_->CreateActivity(Context().get(), activity, &task).ok());

  v1::MergeContactsRequest merge;
  merge.set_kept_id(kept.id());
  merge.add_folded_ids(folded.id());
  v1::MergeContactsResponse merged;
  ASSERT_TRUE(contact_stub_->MergeContacts(Context().get(), merge, &merged).ok());
  ASSERT_EQ(merged.folded_ids_size(), 1);
  EXPECT_EQ(merged.kept().phones_size(), 2);
  ASSERT_EQ(merged.kept().companies_size(), 1);
  EXPECT_EQ(Scalar(absl::StrCat("SELECT owner_id FROM activities WHERE id = ", task.id())),
            kept.id());
  // The kept contact changed: a new etag, and an update made with the one read before the merge
  // is refused rather than written over what the merge brought.
  EXPECT_NE(merged.kept().etag(), kept.etag());
  v1::UpdateContactRequest stale;
  stale.mutable_contact()->set_id(kept.id());
  stale.mutable_contact()->set_first_name("Written over");
  stale.mutable_contact()->set_etag(kept.etag());
  stale.mutable_update_mask()->add_paths("first_name");
  v1::Contact unchanged;
  EXPECT_EQ(contact_stub_->UpdateContact(Context().get(), stale, &unchanged).error_code(),
            grpc::StatusCode::ABORTED);
  v1::GetContactRequest get;
  get.set_id(folded.id());
  v1::Contact gone;
  grpc::Status status = contact_stub_->GetContact(Context().get(), get, &gone);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(status.error_message().find(std::to_string(kept.id())), std::string::npos)
      << status.error_message();
  // The retry after a lost reply.
  ASSERT_TRUE(contact_stub_->MergeContacts(Context().get(), merge, &merged).ok());
  EXPECT_EQ(merged.folded_ids_size(), 0);
  EXPECT_EQ(Scalar("SELECT count(*) FROM merges"), 1);
  EXPECT_EQ(Scalar(absl::StrCat("SELECT count(*) FROM history WHERE kind = 'MERGED'")), 2);
  merge.set_kept_id(third.id());
  EXPECT_EQ(contact_stub_->MergeContacts(Context().get(), merge, &merged).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);

  v1::CreateCompanyResponse other;
  ASSERT_TRUE(company_stub_->CreateCompany(Context().get(), company, &other).ok());
  v1::MergeCompaniesRequest merge_companies;
  merge_companies.set_kept_id(other.company().id());
  merge_companies.add_folded_ids(made.company().id());
  v1::MergeCompaniesResponse companies_merged;
  ASSERT_TRUE(
      company_stub_->MergeCompanies(Context().get(), merge_companies, &companies_merged).ok());
  ASSERT_EQ(companies_merged.kept().contacts_size(), 1);
  EXPECT_EQ(companies_merged.kept().contacts(0).contact_id(), kept.id());

  v1::CreateLeadRequest lead;
  lead.mutable_lead()->set_title("one");
  lead.mutable_lead()->add_emails("a@example.com");
  v1::Lead a;
  v1::Lead b;
  ASSERT_TRUE(lead_stub_->CreateLead(Context().get(), lead, &a).ok());
  lead.mutable_lead()->set_emails(0, "b@example.com");
  ASSERT_TRUE(lead_stub_->CreateLead(Context().get(), lead, &b).ok());
  v1::MergeLeadsRequest merge_leads;
  merge_leads.set_kept_id(a.id());
  merge_leads.add_folded_ids(b.id());
  v1::MergeLeadsResponse leads_merged;
  ASSERT_TRUE(lead_stub_->MergeLeads(Context().get(), merge_leads, &leads_merged).ok());
  EXPECT_EQ(leads_merged.kept_id(), a.id());
  v1::GetLeadRequest get_kept;
  get_kept.set_id(a.id());
  v1::Lead kept_lead;
  ASSERT_TRUE(lead_stub_->GetLead(Context().get(), get_kept, &kept_lead).ok());
  EXPECT_EQ(kept_lead.emails_size(), 2);
  v1::GetLeadRequest get_lead;
  get_lead.set_id(b.id());
  v1::Lead folded_lead;
  EXPECT_EQ(lead_stub_->GetLead(Context().get(), get_lead, &folded_lead).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

// Protects: a merge respects the identity cap (RuleSettings::max_inbound_identities, 20 by
// default): one that would leave the kept contact with more distinct identities is refused with
// FAILED_PRECONDITION naming the cap, and changes nothing (the folded contact still answers, the
// kept one keeps its phones); one that reaches the cap exactly passes.
TEST_F(PeopleTest, MergeRespectsTheIdentityCap) {
  auto phones = [](const std::string& prefix, int count) {
    std::vector<std::string> out;
    for (int i = 1; i <= count; ++i) {
      out.push_back(absl::StrCat(prefix, absl::Dec(i, absl::kZeroPad2)));
    }
    return out;
  };
  v1::Contact kept = CreateContact("Marie Curie", phones("06110000", 12));
  v1::Contact over = CreateContact("M. Curie", phones("06220000", 10));
  // Shared with the kept contact (written before the API refused a second holder, docs/domain.md
  // "One person, one record"): counted once.
  api_->Exec("INSERT INTO contact_identities VALUES ('PHONE', '+33611000001', " +
             std::to_string(over.id()) + ")");
  v1::Contact fits = CreateContact("Marie C.", phones("06330000", 8));
  ASSERT_EQ(kept.phones_size(), 12);

  v1::MergeContactsRequest merge;
  merge.set_kept_id(kept.id());
  merge.add_folded_ids(over.id());
  v1::MergeContactsResponse merged;
  grpc::Status refused = contact_stub_->MergeContacts(Context().get(), merge, &merged);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(refused.error_message().find("cap of 20"), std::string::npos)
      << refused.error_message();
  EXPECT_EQ(Scalar(absl::StrCat("SELECT count(*) FROM contact_identities WHERE contact_id = ",
                                kept.id())),
            12);
  EXPECT_EQ(Scalar(absl::StrCat("SELECT count(*) FROM contact_identities WHERE contact_id = ",
                                over.id())),
            11);
  EXPECT_EQ(Scalar("SELECT count(*) FROM merges"), 0);
  v1::GetContactRequest get;
  get.set_id(over.id());
  v1::Contact still;
  EXPECT_TRUE(contact_stub_->GetContact(Context().get(), get, &still).ok());

  merge.clear_folded_ids();
  merge.add_folded_ids(fits.id());
  grpc::Status at_cap = contact_stub_->MergeContacts(Context().get(), merge, &merged);
  ASSERT_TRUE(at_cap.ok()) << at_cap.error_message();
  EXPECT_EQ(merged.kept().phones_size(), 20);
}

// Protects: deleting a contact or company others were merged into works, and its tombstones go
// with it, at any depth (B folded into A, A into D: deleting D deletes A and B); their ids then
// answer a plain NOT_FOUND (no "merged into" a record that is gone), and each has a DELETED
// timeline entry naming the record deleted. It was refused by the merged_into foreign key.
TEST_F(PeopleTest, DeletingAKeptRecordTakesItsTombstones) {
  v1::Contact a = CreateContact("Marie Curie", {"0611111111"});
  v1::Contact b = CreateContact("M. Curie", {"0622222222"});
  v1::Contact d = CreateContact("Marie Sklodowska", {});
  v1::Contact other = CreateContact("Pierre Curie", {"0633333333"});
  auto merge = [&](int64_t kept, int64_t folded) {
    v1::MergeContactsRequest request;
    request.set_kept_id(kept);
    request.add_folded_ids(folded);
    v1::MergeContactsResponse response;
    grpc::Status status = contact_stub_->MergeContacts(Context().get(), request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
  };
  merge(a.id(), b.id());
  merge(d.id(), a.id());
  v1::DeleteContactRequest remove;
  remove.set_id(d.id());
  google::protobuf::Empty empty;
  grpc::Status deleted = contact_stub_->DeleteContact(Context().get(), remove, &empty);
  ASSERT_TRUE(deleted.ok()) << deleted.error_message();
  for (int64_t id : {a.id(), b.id(), d.id()}) {
    v1::GetContactRequest get;
    get.set_id(id);
    v1::Contact gone;
    grpc::Status status = contact_stub_->GetContact(Context().get(), get, &gone);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << id;
    EXPECT_NE(status.error_message().find(absl::StrCat("contact ", id, " not found")),
              std::string::npos)
        << status.error_message();
    EXPECT_EQ(status.error_message().find("merged into"), std::string::npos)
        << status.error_message();
  }
  EXPECT_EQ(Scalar("SELECT count(*) FROM contacts"), 1);  // only Pierre
  EXPECT_EQ(Scalar("SELECT count(*) FROM contact_identities"), 1);
  EXPECT_EQ(Scalar(absl::StrCat("SELECT related_id FROM history WHERE entity_type = 'CONTACT'"
                                " AND entity_id = ",
                                b.id(), " AND kind = 'DELETED'")),
            d.id());
  v1::GetContactRequest still;
  still.set_id(other.id());
  v1::Contact pierre;
  EXPECT_TRUE(contact_stub_->GetContact(Context().get(), still, &pierre).ok());

  // Companies alike.
  v1::CreateCompanyRequest company;
  company.mutable_company()->set_name("Institut");
  v1::CreateCompanyResponse kept;
  v1::CreateCompanyResponse folded;
  ASSERT_TRUE(company_stub_->CreateCompany(Context().get(), company, &kept).ok());
  ASSERT_TRUE(company_stub_->CreateCompany(Context().get(), company, &folded).ok());
  v1::MergeCompaniesRequest merge_companies;
  merge_companies.set_kept_id(kept.company().id());
  merge_companies.add_folded_ids(folded.company().id());
  v1::MergeCompaniesResponse merged;
  ASSERT_TRUE(company_stub_->MergeCompanies(Context().get(), merge_companies, &merged).ok());
  v1::DeleteCompanyRequest remove_company;
  remove_company.set_id(kept.company().id());
  deleted = company_stub_->DeleteCompany(Context().get(), remove_company, &empty);
  ASSERT_TRUE(deleted.ok()) << deleted.error_message();
  v1::GetCompanyRequest get_folded;
  get_folded.set_id(folded.company().id());
  v1::Company gone;
  grpc::Status status = company_stub_->GetCompany(Context().get(), get_folded, &gone);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(status.error_message().find("merged into"), std::string::npos)
      << status.error_message();
  EXPECT_EQ(Scalar("SELECT count(*) FROM companies"), 0);
}

// Protects: ListHistory of a record that never existed is NOT_FOUND "<kind> N not found" for
// every kind (it answered OK and empty); a record folded by a merge, or deleted, keeps its
// timeline, ending with MERGED (naming the kept record) or DELETED.
TEST_F(PeopleTest, HistoryOfAMissingRecordIsNotFound) {
  for (auto [type, noun] : {std::pair{v1::OWNER_TYPE_LEAD, "lead"},
                            {v1::OWNER_TYPE_CONTACT, "contact"},
                            {v1::OWNER_TYPE_COMPANY, "company"},
                            {v1::OWNER_TYPE_DEAL, "deal"}}) {
    v1::ListHistoryRequest request;
    request.mutable_entity()->set_type(type);
    request.mutable_entity()->set_id(424242);
    v1::ListHistoryResponse response;
    grpc::Status status = history_stub_->ListHistory(Context().get(), request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << noun;
    EXPECT_NE(status.error_message().find(absl::StrCat(noun, " 424242 not found")),
              std::string::npos)
        << status.error_message();
  }
  v1::Contact kept = CreateContact("Marie Curie", {});
  v1::Contact folded = CreateContact("M. Curie", {});
  v1::MergeContactsRequest merge;
  merge.set_kept_id(kept.id());
  merge.add_folded_ids(folded.id());
  v1::MergeContactsResponse merged;
  ASSERT_TRUE(contact_stub_->MergeContacts(Context().get(), merge, &merged).ok());
  std::vector<v1::HistoryEntry> history = History(v1::OWNER_TYPE_CONTACT, folded.id());
  ASSERT_EQ(history.size(), 2u);
  EXPECT_EQ(history[0].kind(), "MERGED");
  EXPECT_EQ(history[0].related().id(), kept.id());
  EXPECT_EQ(history[1].kind(), "CREATED");

  v1::DeleteContactRequest remove;
  remove.set_id(kept.id());
  google::protobuf::Empty empty;
  ASSERT_TRUE(contact_stub_->DeleteContact(Context().get(), remove, &empty).ok());
  history = History(v1::OWNER_TYPE_CONTACT, kept.id());
  ASSERT_FALSE(history.empty());
  EXPECT_EQ(history[0].kind(), "DELETED");
  history = History(v1::OWNER_TYPE_CONTACT, folded.id());
  ASSERT_EQ(history.size(), 3u);
  EXPECT_EQ(history[0].kind(), "DELETED");
}

// Protects: a merge and an inbound batch on the same person never deadlock: MergeRecords takes
// the identity locks before the records' rows, in the consumer's order. Each round makes two
// leads, then folds one into the other while a batch brings a message from the folded lead's
// phone (the batch takes the identity lock, then updates the lead's row); neither side may meet
// 40P01, and after each round the message is applied once, on the kept lead, which holds both
// identities. Locking the rows first made this test see deadlocks (docs/testing.md).
TEST_F(PeopleTest, MergeAndInboundBatchNeverDeadlock) {
  // Deadlocks are found after deadlock_timeout (1 s by default): a short one keeps a red run
  // short. It only changes how soon one is noticed, not whether it happens.
  api_->Exec("ALTER DATABASE " + api_->database().name() + " SET deadlock_timeout = '50ms'");
  testing::CrmInbound inbound(api_->database_url());
  std::unique_ptr<BatchProcessor> processor = inbound.MakeProcessor();
  pqxx::connection merger(api_->database_url());
  pg::PrepareAll(merger, Statements());
  constexpr int kRounds = 60;
  constexpr int kAttempts = 20;  // per side and round, after a deadlock
  int merge_deadlocks = 0;
  int batch_deadlocks = 0;
  for (int round = 0; round < kRounds; ++round) {
    const std::string phone = absl::StrCat("+336100", absl::Dec(round, absl::kZeroPad5));
    const std::string email = absl::StrCat("kept", round, "@example.com");
    const int64_t kept = Scalar(absl::StrCat(
        "WITH l AS (INSERT INTO leads (title, source) VALUES ('kept', 'EMAIL') RETURNING id), "
        "i AS (INSERT INTO lead_identities (kind, value, lead_id) SELECT 'EMAIL', '",
        email, "', id FROM l) SELECT id FROM l"));
    const int64_t folded = Scalar(absl::StrCat(
        "WITH l AS (INSERT INTO leads (title, source) VALUES ('folded', 'CALL') RETURNING id), "
        "i AS (INSERT INTO lead_identities (kind, value, lead_id) SELECT 'PHONE', '",
        phone, "', id FROM l) SELECT id FROM l"));
    const std::string event_id = absl::StrCat("merge-race-", round);
    const std::vector<kafka::Message> batch = {
        testing::InboundMessage(testing::WebFormEvent(event_id, phone, ""))};

    std::atomic<int> ready{0};
    auto start_together = [&ready] {
      ready.fetch_add(1);
      while (ready.load() < 2) std::this_thread::yield();  // both threads are running
    };
    bool merged = false;
    std::thread merge([&] {
      start_together();
      for (int attempt = 0; attempt < kAttempts && !merged; ++attempt) {
        try {
          auto done = MergeRecords(merger, int64_t{0}, size_t{20}, "LEAD", kept, {folded});
          ASSERT_TRUE(done.ok()) << done.status();
          merged = true;
        } catch (const pqxx::deadlock_detected&) {  // 40P01; anything else fails the test
          ++merge_deadlocks;
        }
      }
    });
    bool applied = false;
    std::thread apply([&] {
      start_together();
      for (int attempt = 0; attempt < kAttempts && !applied; ++attempt) {
        absl::Status status = processor->Process(batch);
        if (status.ok()) {
          applied = true;
        } else {
          ASSERT_EQ(pg::SqlState(status).value_or(""), "40P01") << status;
          ++batch_deadlocks;
        }
      }
    });
    merge.join();
    apply.join();
    ASSERT_TRUE(merged) << "round " << round;
    ASSERT_TRUE(applied) << "round " << round;
    ASSERT_EQ(Scalar(absl::StrCat("SELECT count(*) FROM processed_events WHERE event_id = '",
                                  event_id, "'")),
              1);
    // On the kept lead whichever ran first: moved there by the fold, or matched there after.
    EXPECT_EQ(Scalar(absl::StrCat("SELECT count(*) FROM activities WHERE owner_type = 'LEAD'"
                                  " AND owner_id = ",
                                  kept)),
              1)
        << "round " << round;
    EXPECT_EQ(Scalar(absl::StrCat("SELECT merged_into FROM leads WHERE id = ", folded)), kept);
    EXPECT_EQ(Scalar(absl::StrCat("SELECT count(*) FROM lead_identities WHERE lead_id = ", kept)),
              2);
    EXPECT_EQ(Scalar(absl::StrCat("SELECT count(*) FROM lead_identities WHERE lead_id = ", folded)),
              0);
  }
  // One person, one lead: the batches made none.
  EXPECT_EQ(Scalar("SELECT count(*) FROM leads"), 2 * kRounds);
  EXPECT_EQ(merge_deadlocks, 0);
  EXPECT_EQ(batch_deadlocks, 0);
}

}  // namespace
}  // namespace leadflow::crm
