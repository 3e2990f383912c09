// Edits a new user made over gRPC that the API took while it should not have, or answered with
// the wrong code, against a real PostgreSQL: blank lead titles and status names, settings
// naming channels that do not exist, pipeline pages after a deletion, link requests without ids,
// a deleted deal missing from its contacts' and company's timelines.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "leadflow/crm/v1/history.grpc.pb.h"
#include "testing/crm.h"
#include "testing/testing.h"

namespace leadflow::crm {
namespace {

class DomainEditsTest : public testing::CrmApiTest {
 protected:
  void SetUp() override {
    CrmApiTest::SetUp();
    history_stub_ = api_->Stub<v1::HistoryService>();
  }

  int64_t CreatePipeline(const std::string& name, int sort) {
    v1::CreatePipelineRequest request;
    request.mutable_pipeline()->set_name(name);
    request.mutable_pipeline()->set_sort(sort);
    v1::Pipeline pipeline;
    grpc::Status status = pipeline_stub_->CreatePipeline(Context().get(), request, &pipeline);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return pipeline.id();
  }

  // Every pipeline ListPipelines answers, page after page of `page_size`, calling `between`
  // after the first page.
  std::vector<int64_t> ListAllPipelines(int page_size, const std::function<void()>& between) {
    std::vector<int64_t> ids;
    v1::ListPipelinesRequest request;
    request.set_page_size(page_size);
    for (int page = 0; page < 100; ++page) {
      v1::ListPipelinesResponse response;
      grpc::Status status = pipeline_stub_->ListPipelines(Context().get(), request, &response);
      EXPECT_TRUE(status.ok()) << status.error_message();
      for (const v1::Pipeline& pipeline : response.pipelines()) {
        ids.push_back(pipeline.id());
      }
      if (!status.ok() || response.next_page_token().empty()) {
        break;
      }
      if (page == 0) {
        between();
      }
      request.set_page_token(response.next_page_token());
    }
    return ids;
  }

  std::unique_ptr<v1::HistoryService::Stub> history_stub_;
};

// Protects: a lead's title is never blank. UpdateLead with a title of spaces is INVALID_ARGUMENT
// and changes nothing, as CreateLead refuses such a title and
// UpdateDeal a blank deal title. (It was stored: the lead then showed as "   " in every list and
// in FindByCommunication's display_name.)
TEST_F(DomainEditsTest, LeadTitleIsNeverBlank) {
  v1::CreateLeadRequest create;
  create.mutable_lead()->set_first_name("Léa");
  create.mutable_lead()->set_last_name("Martin");
  v1::Lead lead;
  ASSERT_TRUE(lead_stub_->CreateLead(Context().get(), create, &lead).ok());

  for (const std::string title : {" ", "   "}) {
    v1::UpdateLeadRequest update;
    update.mutable_lead()->set_id(lead.id());
    update.mutable_lead()->set_title(title);
    update.mutable_update_mask()->add_paths("title");
    v1::Lead updated;
    grpc::Status status = lead_stub_->UpdateLead(Context().get(), update, &updated);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << "\"" << title << "\"";
    EXPECT_EQ(testing::StatusMessage(status), "title cannot be blank") << "\"" << title << "\"";
  }
  v1::GetLeadRequest get;
  get.set_id(lead.id());
  v1::Lead after;
  ASSERT_TRUE(lead_stub_->GetLead(Context().get(), get, &after).ok());
  EXPECT_EQ(after.title(), "Visit – Léa Martin");
  EXPECT_EQ(after.etag(), lead.etag());
}

// Protects: a lead status or source is never named blank. CreateStatus and UpdateStatus with a
// name of spaces are INVALID_ARGUMENT ("name is blank") and write nothing, as a stage or pipeline
// name of spaces is refused. (Such a status was created, listed with no name to pick it by.)
TEST_F(DomainEditsTest, StatusNameIsNeverBlank) {
  for (const auto kind : {v1::STATUS_KIND_LEAD_STATUS, v1::STATUS_KIND_SOURCE}) {
    v1::CreateStatusRequest create;
    create.set_kind(kind);
    create.mutable_status()->set_id("BLANK");
    create.mutable_status()->set_name("   ");
    if (kind == v1::STATUS_KIND_LEAD_STATUS) {
      create.mutable_status()->set_semantics(v1::SEMANTICS_PROCESS);
    }
    v1::Status created;
    grpc::Status status = status_stub_->CreateStatus(Context().get(), create, &created);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << kind;
    EXPECT_EQ(testing::StatusMessage(status), "name is blank") << kind;

    v1::UpdateStatusRequest update;
    update.set_kind(kind);
    update.mutable_status()->set_id(kind == v1::STATUS_KIND_LEAD_STATUS ? "IN_PROCESS" : "EMAIL");
    update.mutable_status()->set_name("  ");
    update.mutable_update_mask()->add_paths("name");
    v1::Status updated;
    status = status_stub_->UpdateStatus(Context().get(), update, &updated);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << kind;
    EXPECT_EQ(testing::StatusMessage(status), "name is blank") << kind;
  }
  EXPECT_EQ(Count("SELECT count(*) FROM lead_statuses WHERE btrim(name) = ''"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM lead_sources WHERE btrim(name) = ''"), 0);
  EXPECT_EQ(Text("SELECT name FROM lead_statuses WHERE id = 'IN_PROCESS'"), "In progress");
  EXPECT_EQ(Text("SELECT name FROM lead_sources WHERE id = 'EMAIL'"), "Email");
}

// Protects: channel_queues names channels that exist. A channel is a lead source id (WEB_FORM,
// EMAIL, CALL, a custom source) or API (leads created over the API); any other key — a typo such
// as "EMIAL" — is INVALID_ARGUMENT naming it and what is accepted, and the map stays as it was.
// (It was stored, and the channel kept rotating over its default queue with no word said.)
TEST_F(DomainEditsTest, ChannelQueuesNameChannelsThatExist) {
  v1::CreateStatusRequest source;
  source.set_kind(v1::STATUS_KIND_SOURCE);
  source.mutable_status()->set_id("TRADE_FAIR");
  source.mutable_status()->set_name("Trade fair");
  v1::Status created;
  ASSERT_TRUE(status_stub_->CreateStatus(Context().get(), source, &created).ok());

  v1::UpdateSettingsRequest good;
  (*good.mutable_settings()->mutable_channel_queues())["EMAIL"] = "team:mail";
  (*good.mutable_settings()->mutable_channel_queues())["API"] = "team:api";
  (*good.mutable_settings()->mutable_channel_queues())["TRADE_FAIR"] = "team:fairs";
  good.mutable_update_mask()->add_paths("channel_queues");
  v1::CrmSettings settings;
  grpc::Status status = settings_stub_->UpdateSettings(Context().get(), good, &settings);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(settings.channel_queues_size(), 3);

  v1::UpdateSettingsRequest typo;
  (*typo.mutable_settings()->mutable_channel_queues())["WEB_FORM"] = "team:web";
  (*typo.mutable_settings()->mutable_channel_queues())["EMIAL"] = "team:mail";
  typo.mutable_update_mask()->add_paths("channel_queues");
  status = settings_stub_->UpdateSettings(Context().get(), typo, &settings);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(testing::StatusMessage(status),
            "channel_queues: channel \"EMIAL\" is neither a lead source nor API; the channels are "
            "API, CALL, EMAIL, MESSENGER, TRADE_FAIR, WALK_IN, WEB_FORM");

  v1::CrmSettings after;
  ASSERT_TRUE(settings_stub_->GetSettings(Context().get(), {}, &after).ok());
  EXPECT_EQ(after.channel_queues().size(), 3u);
  EXPECT_EQ(after.channel_queues().count("EMIAL"), 0u);
  EXPECT_EQ(after.channel_queues().count("WEB_FORM"), 0u);
  EXPECT_EQ(after.channel_queues().at("TRADE_FAIR"), "team:fairs");
}

// Protects: paging through pipelines after the last one of a page is deleted goes on where it
// was. The page token carries that pipeline's place (sort, id), not only its id: read from a row
// no longer there, the next page came back empty and every later pipeline was silently missing.
TEST_F(DomainEditsTest, PipelinePagesGoOnAfterTheLastOneOfAPageIsDeleted) {
  // Sales (1, sort 10) is seeded; in sort order: 2 (5), 1 (10), 3 (20), 4 (20), 5 (30).
  const int64_t first = CreatePipeline("Interior works", 5);
  const int64_t third = CreatePipeline("Office design", 20);
  const int64_t fourth = CreatePipeline("Trade fairs", 20);
  const int64_t fifth = CreatePipeline("Maintenance", 30);
  EXPECT_EQ(ListAllPipelines(2, [] {}), (std::vector<int64_t>{first, 1, third, fourth, fifth}));

  // The first page ends at Sales (1); pipeline 1 cannot be deleted (the inbound pipeline), so the
  // page is made to end at "Office design" instead, which is deleted between the pages.
  std::vector<int64_t> seen = ListAllPipelines(3, [&] {
    v1::DeletePipelineRequest remove;
    remove.set_id(third);
    google::protobuf::Empty empty;
    grpc::Status status = pipeline_stub_->DeletePipeline(Context().get(), remove, &empty);
    EXPECT_TRUE(status.ok()) << status.error_message();
  });
  EXPECT_EQ(seen, (std::vector<int64_t>{first, 1, third, fourth, fifth}));

  // A pipeline whose sort changes between the pages skips none of the others: the next page
  // starts after the place the first page saw it at.
  seen = ListAllPipelines(2, [&] {
    v1::UpdatePipelineRequest move;
    move.mutable_pipeline()->set_id(1);
    move.mutable_pipeline()->set_sort(100);
    move.mutable_update_mask()->add_paths("sort");
    v1::Pipeline moved;
    EXPECT_TRUE(pipeline_stub_->UpdatePipeline(Context().get(), move, &moved).ok());
  });
  ASSERT_GE(seen.size(), 4u);
  EXPECT_EQ(std::vector<int64_t>(seen.begin(), seen.begin() + 4),
            (std::vector<int64_t>{first, 1, fourth, fifth}));
}

// Protects: a link request without the id of the record to link or unlink is INVALID_ARGUMENT
// saying which id, never NOT_FOUND for "contact 0" (which reads as a record that went missing).
TEST_F(DomainEditsTest, LinkRequestsWithoutAnIdAreInvalid) {
  v1::CreateDealRequest create;
  create.mutable_deal()->set_title("Kitchen");
  v1::Deal deal;
  ASSERT_TRUE(deal_stub_->CreateDeal(Context().get(), create, &deal).ok());

  for (int64_t contact : {0, -3}) {
    v1::UnlinkDealContactRequest unlink;
    unlink.set_deal_id(deal.id());
    unlink.set_contact_id(contact);
    v1::Deal answer;
    grpc::Status status = deal_stub_->UnlinkContact(Context().get(), unlink, &answer);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << contact;
    EXPECT_EQ(testing::StatusMessage(status),
              contact == 0 ? "contact_id is required" : "contact_id must be positive")
        << contact;

    v1::LinkDealContactRequest link;
    link.set_deal_id(deal.id());
    link.set_contact_id(contact);
    status = deal_stub_->LinkContact(Context().get(), link, &answer);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << contact;
    EXPECT_EQ(testing::StatusMessage(status),
              contact == 0 ? "contact_id is required" : "contact_id must be positive")
        << contact;

    v1::CreateDealRequest with;
    with.mutable_deal()->set_title("Bathroom");
    with.add_contact_ids(contact);
    status = deal_stub_->CreateDeal(Context().get(), with, &answer);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << contact;
    EXPECT_EQ(testing::StatusMessage(status), "contact_ids[0] must be a contact id (positive)")
        << contact;
  }
  v1::SetDealCompanyRequest set;
  set.set_deal_id(deal.id());
  set.set_company_id(-1);
  v1::Deal answer;
  grpc::Status status = deal_stub_->SetCompany(Context().get(), set, &answer);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(testing::StatusMessage(status), "company_id must be positive");

  v1::CreateDealRequest with_company;
  with_company.mutable_deal()->set_title("Bathroom");
  with_company.set_company_id(-2);
  status = deal_stub_->CreateDeal(Context().get(), with_company, &answer);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(testing::StatusMessage(status), "company_id must be positive, or 0 for none");
  EXPECT_EQ(Count("SELECT count(*) FROM deals"), 1);
}

// Protects: deleting a deal leaves a trace on the timelines of the records it was linked to. Each
// contact and the company get UNLINKED naming the deal, by the acting user, as DeleteContact writes
// UNLINKED on the deals it was on; before, their timelines ended at LINKED deal N, a deal that
// GetDeal no longer knew.
TEST_F(DomainEditsTest, DeletingADealIsOnItsContactsAndCompanysTimelines) {
  v1::CreateContactRequest person;
  person.mutable_contact()->set_full_name("Marie Curie");
  v1::CreateContactResponse contact;
  ASSERT_TRUE(contact_stub_->CreateContact(Context().get(), person, &contact).ok());
  v1::CreateCompanyRequest firm;
  firm.mutable_company()->set_name("Atelier Curie");
  v1::CreateCompanyResponse company;
  ASSERT_TRUE(company_stub_->CreateCompany(Context().get(), firm, &company).ok());
  Exec("INSERT INTO users (name) VALUES ('Ann')");

  v1::CreateDealRequest create;
  create.mutable_deal()->set_title("Kitchen");
  create.add_contact_ids(contact.contact().id());
  create.set_company_id(company.company().id());
  v1::Deal deal;
  ASSERT_TRUE(deal_stub_->CreateDeal(Context().get(), create, &deal).ok());
  v1::DeleteDealRequest remove;
  remove.set_id(deal.id());
  google::protobuf::Empty empty;
  grpc::Status status = deal_stub_->DeleteDeal(
      testing::CallContext(kAdminKey, std::chrono::seconds(30), /*user_id=*/1).get(), remove,
      &empty);
  ASSERT_TRUE(status.ok()) << status.error_message();

  for (const auto& [type, id] : {std::pair{v1::OWNER_TYPE_CONTACT, contact.contact().id()},
                                 {v1::OWNER_TYPE_COMPANY, company.company().id()}}) {
    v1::ListHistoryRequest request;
    request.mutable_entity()->set_type(type);
    request.mutable_entity()->set_id(id);
    v1::ListHistoryResponse history;
    ASSERT_TRUE(history_stub_->ListHistory(Context().get(), request, &history).ok());
    ASSERT_GE(history.entries_size(), 2) << type;
    const v1::HistoryEntry& newest = history.entries(0);
    EXPECT_EQ(newest.kind(), "UNLINKED") << type;
    EXPECT_EQ(newest.related().type(), v1::OWNER_TYPE_DEAL) << type;
    EXPECT_EQ(newest.related().id(), deal.id()) << type;
    EXPECT_EQ(newest.user_id(), 1) << type;
    EXPECT_EQ(history.entries(1).kind(), "LINKED") << type;
  }
}

// Protects: ConvertLead never gives what it creates to a deactivated user. A lead whose
// responsible was deactivated converts into a contact, company and deal that go to the user who
// converts it (the acting user), or to nobody without one; an active responsible keeps them.
// (They went to the deactivated user, whom CreateDeal and the inbound rules refuse.)
TEST_F(DomainEditsTest, ConversionGivesNothingToADeactivatedUser) {
  const int64_t gone = Count("INSERT INTO users (name) VALUES ('Gone') RETURNING id");
  const int64_t ann = Count("INSERT INTO users (name) VALUES ('Ann') RETURNING id");
  const auto lead_of = [&](const std::string& last_name) {
    v1::CreateLeadRequest create;
    create.mutable_lead()->set_first_name("Léa");
    create.mutable_lead()->set_last_name(last_name);
    create.mutable_lead()->set_company_name(last_name + " SARL");
    create.mutable_lead()->set_responsible_user_id(gone);
    v1::Lead lead;
    grpc::Status status = lead_stub_->CreateLead(Context().get(), create, &lead);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return lead.id();
  };
  const int64_t by_ann = lead_of("Martin");
  const int64_t by_nobody = lead_of("Durand");
  const int64_t kept = lead_of("Petit");
  Exec(absl::StrCat("UPDATE users SET active = false WHERE id = ", gone));

  const auto convert = [&](int64_t lead, int64_t acting_user) {
    v1::ConvertLeadRequest request;
    request.set_lead_id(lead);
    request.set_produce(v1::CONVERSION_PRODUCE_CONTACT_COMPANY_DEAL);
    v1::ConvertLeadResponse response;
    grpc::Status status = lead_stub_->ConvertLead(
        testing::CallContext(kAdminKey, std::chrono::seconds(30), acting_user).get(), request,
        &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  };
  const auto responsibles = [&](const v1::ConvertLeadResponse& made) {
    return std::vector<int64_t>{
        Count(absl::StrCat("SELECT coalesce(responsible_user_id, 0) FROM contacts WHERE id = ",
                           made.contact_id())),
        Count(absl::StrCat("SELECT coalesce(responsible_user_id, 0) FROM companies WHERE id = ",
                           made.company_id())),
        Count(absl::StrCat("SELECT coalesce(responsible_user_id, 0) FROM deals WHERE id = ",
                           made.deal_id()))};
  };
  EXPECT_EQ(responsibles(convert(by_ann, ann)), (std::vector<int64_t>{ann, ann, ann}));
  EXPECT_EQ(responsibles(convert(by_nobody, 0)), (std::vector<int64_t>{0, 0, 0}));

  // Active again: the lead's responsible keeps what its lead becomes, whoever converts it.
  Exec(absl::StrCat("UPDATE users SET active = true WHERE id = ", gone));
  EXPECT_EQ(responsibles(convert(kept, ann)), (std::vector<int64_t>{gone, gone, gone}));
}

}  // namespace
}  // namespace leadflow::crm
