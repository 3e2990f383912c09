// Configuration edits that must never change what the data means behind the admins' backs, and
// deals' births on the timelines, over gRPC against a real PostgreSQL (the inbound consumer and
// the mode switch job on the same database): settings queues not listed keep their members, a
// removed stage's id keeps its meaning, no two statuses share a sort, AddStage says what it takes,
// etags are only the server's own, and every way a deal is born writes what CreateDeal writes.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "crm-core/api/deal_services.h"
#include "crm-core/api/people_services.h"
#include "crm-core/api/services.h"
#include "crm-core/inbound/batch.h"
#include "crm-core/inbound/mode_switch.h"
#include "crm-core/store/statements.h"
#include "pg/pg.h"
#include "testing/crm.h"
#include "testing/testing.h"

namespace leadflow::crm {
namespace {

class DomainConfigTest : public testing::CrmApiTest {
 protected:
  void SetUp() override {
    CrmApiTest::SetUp();
    ann_ = SeedUser("Ann");
    bob_ = SeedUser("Bob");
  }

  // The queues' members as GetSettings shows them: "key:1,2;key2:;…", by key.
  std::string Queues() {
    v1::CrmSettings settings;
    grpc::Status status = settings_stub_->GetSettings(Context().get(), {}, &settings);
    EXPECT_TRUE(status.ok()) << status.error_message();
    std::map<std::string, std::string> queues;
    for (const v1::AssignmentQueue& queue : settings.queues()) {
      std::string& members = queues[queue.key()];
      for (int64_t user : queue.user_ids()) {
        absl::StrAppend(&members, members.empty() ? "" : ",", user);
      }
    }
    std::string out;
    for (const auto& [key, members] : queues) {
      absl::StrAppend(&out, out.empty() ? "" : ";", key, ":", members);
    }
    return out;
  }

  // UpdateSettings of `queues` alone: each {key, members}.
  grpc::Status SetQueues(const std::vector<std::pair<std::string, std::vector<int64_t>>>& queues) {
    v1::UpdateSettingsRequest request;
    for (const auto& [key, members] : queues) {
      v1::AssignmentQueue* queue = request.mutable_settings()->add_queues();
      queue->set_key(key);
      for (int64_t user : members) queue->add_user_ids(user);
    }
    request.mutable_update_mask()->add_paths("queues");
    v1::CrmSettings updated;
    return settings_stub_->UpdateSettings(Context().get(), request, &updated);
  }

  grpc::Status AddStage(int64_t pipeline_id, const std::string& id, v1::Semantics semantics,
                        v1::Pipeline* pipeline) {
    v1::AddStageRequest request;
    request.set_pipeline_id(pipeline_id);
    request.mutable_stage()->set_id(id);
    request.mutable_stage()->set_name(absl::StrCat("Stage ", id, " ", static_cast<int>(semantics)));
    request.mutable_stage()->set_semantics(semantics);
    return pipeline_stub_->AddStage(Context().get(), request, pipeline);
  }

  grpc::Status RemoveStage(int64_t pipeline_id, const std::string& id) {
    v1::RemoveStageRequest request;
    request.set_pipeline_id(pipeline_id);
    request.set_stage_id(id);
    v1::Pipeline pipeline;
    return pipeline_stub_->RemoveStage(Context().get(), request, &pipeline);
  }

  grpc::Status CreateStatus(v1::StatusKind kind, const std::string& id, int sort) {
    v1::CreateStatusRequest request;
    request.set_kind(kind);
    request.mutable_status()->set_id(id);
    request.mutable_status()->set_name(absl::StrCat("Name of ", id));
    request.mutable_status()->set_sort(sort);
    if (kind == v1::STATUS_KIND_LEAD_STATUS) {
      request.mutable_status()->set_semantics(v1::SEMANTICS_PROCESS);
    }
    v1::Status created;
    return status_stub_->CreateStatus(Context().get(), request, &created);
  }

  int64_t CreateContact(const std::string& name, const std::string& phone) {
    v1::CreateContactRequest request;
    request.mutable_contact()->set_full_name(name);
    if (!phone.empty()) request.mutable_contact()->add_phones(phone);
    v1::CreateContactResponse response;
    grpc::Status status = contact_stub_->CreateContact(Context().get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.contact().id();
  }

  int64_t CreateCompany(const std::string& name, const std::string& phone) {
    v1::CreateCompanyRequest request;
    request.mutable_company()->set_name(name);
    if (!phone.empty()) request.mutable_company()->add_phones(phone);
    v1::CreateCompanyResponse response;
    grpc::Status status = company_stub_->CreateCompany(Context().get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.company().id();
  }

  int64_t CreateLead(const std::string& first, const std::string& phone,
                     const std::string& company = "") {
    v1::CreateLeadRequest request;
    request.mutable_lead()->set_title(absl::StrCat(first, " wants a kitchen"));
    request.mutable_lead()->set_first_name(first);
    request.mutable_lead()->set_last_name("Martin");
    request.mutable_lead()->set_company_name(company);
    request.mutable_lead()->add_phones(phone);
    v1::Lead lead;
    grpc::Status status = lead_stub_->CreateLead(Context().get(), request, &lead);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return lead.id();
  }

  // The deal's birth entries as its timelines hold them: its CREATED (field, value) and its
  // LINKED entries, and the LINKED entries naming it on other records' timelines.
  std::string BirthEntries(int64_t deal) {
    const std::string id = std::to_string(deal);
    return Text(
        "SELECT coalesce(string_agg(entry, '; ' ORDER BY entry), '') FROM ("
        " SELECT concat_ws(' ', entity_type, entity_id, kind, nullif(field, ''),"
        "   nullif(new_value, ''), CASE WHEN kind = 'LINKED' THEN related_type END,"
        "   CASE WHEN kind = 'LINKED' THEN related_id END) AS entry"
        " FROM history WHERE entity_type = 'DEAL' AND entity_id = " +
        id +
        " AND kind IN ('CREATED', 'LINKED')"
        " UNION ALL SELECT concat_ws(' ', entity_type, entity_id, kind, related_type, related_id)"
        " FROM history WHERE related_type = 'DEAL' AND related_id = " +
        id + " AND kind = 'LINKED') AS entries");
  }

  // What CreateDeal writes for a deal as the deal's rows stand: CREATED naming its stage, and
  // LINKED on both sides for its company and each contact.
  std::string ExpectedBirthEntries(int64_t deal) {
    const std::string id = std::to_string(deal);
    return Text(
        "SELECT coalesce(string_agg(entry, '; ' ORDER BY entry), '') FROM ("
        " SELECT concat_ws(' ', 'DEAL', id, 'CREATED', 'stage', pipeline_id || '/' || stage_id)"
        "   AS entry FROM deals WHERE id = " +
        id +
        " UNION ALL SELECT concat_ws(' ', 'DEAL', id, 'LINKED', 'COMPANY', company_id)"
        "   FROM deals WHERE id = " +
        id +
        " AND company_id IS NOT NULL"
        " UNION ALL SELECT concat_ws(' ', 'COMPANY', company_id, 'LINKED', 'DEAL', id)"
        "   FROM deals WHERE id = " +
        id +
        " AND company_id IS NOT NULL"
        " UNION ALL SELECT concat_ws(' ', 'DEAL', deal_id, 'LINKED', 'CONTACT', contact_id)"
        "   FROM deal_contacts WHERE deal_id = " +
        id +
        " UNION ALL SELECT concat_ws(' ', 'CONTACT', contact_id, 'LINKED', 'DEAL', deal_id)"
        "   FROM deal_contacts WHERE deal_id = " +
        id + ") AS entries");
  }

  int64_t ann_ = 0;
  int64_t bob_ = 0;
};

// Protects: UpdateSettings with `queues` in its mask sets the members of the queues it lists
// and leaves every other queue's members as they are (docs/api.md, SettingsService): an update
// naming one queue never empties the others, whose records would then rotate over every active
// user (r89c #12: mail-sales, mail-support and tel-support lost their members, and their mail
// and calls went to everyone). A queue listed without members is emptied, explicitly; a
// refused update changes nothing. Seen red with every queue's members deleted before the
// listed ones are written (the former SettingsRepository::Update).
TEST_F(DomainConfigTest, UpdatingQueuesNeverEmptiesTheOnesNotListed) {
  const std::string a = std::to_string(ann_);
  const std::string b = std::to_string(bob_);
  ASSERT_TRUE(
      SetQueues({{"mail-sales", {ann_}}, {"mail-support", {bob_}}, {"tel-support", {bob_}}}).ok());
  const std::string before = Queues();
  EXPECT_NE(before.find("mail-sales:" + a + ";mail-support:" + b + ";"), std::string::npos)
      << before;
  EXPECT_NE(before.find("tel-support:" + b), std::string::npos) << before;

  // The report's update: one new queue, nothing else listed.
  ASSERT_TRUE(SetQueues({{"empty-q", {}}}).ok());
  std::string after = Queues();
  EXPECT_NE(after.find("empty-q:;mail-sales:" + a + ";mail-support:" + b + ";"), std::string::npos)
      << after;
  EXPECT_NE(after.find("tel-support:" + b), std::string::npos) << after;

  // One queue's members changed: the others keep theirs.
  ASSERT_TRUE(SetQueues({{"mail-support", {ann_, bob_}}}).ok());
  after = Queues();
  EXPECT_NE(after.find("mail-sales:" + a + ";mail-support:" + a + "," + b + ";"), std::string::npos)
      << after;
  EXPECT_NE(after.find("tel-support:" + b), std::string::npos) << after;

  // Emptied explicitly: listed with no members.
  ASSERT_TRUE(SetQueues({{"mail-sales", {}}}).ok());
  after = Queues();
  EXPECT_NE(after.find("mail-sales:;mail-support:" + a + "," + b + ";"), std::string::npos)
      << after;

  // Refused updates change nothing, the queues listed before the refusal included.
  const std::string settled = Queues();
  EXPECT_EQ(SetQueues({{"tel-support", {ann_}}, {"tel-support", {}}}).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(SetQueues({{"tel-support", {ann_}}, {"mail-sales", {999}}}).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Queues(), settled);

  // What it protects: a channel's queue left out of an update still routes to its members only.
  // Two web forms in a row go to Bob, where rotating over every active user gives one to Ann.
  v1::UpdateSettingsRequest channel;
  (*channel.mutable_settings()->mutable_channel_queues())["WEB_FORM"] = "team:forms";
  channel.mutable_settings()->add_queues()->set_key("team:forms");
  channel.mutable_settings()->mutable_queues(0)->add_user_ids(bob_);
  channel.mutable_update_mask()->add_paths("channel_queues");
  channel.mutable_update_mask()->add_paths("queues");
  v1::CrmSettings updated;
  ASSERT_TRUE(settings_stub_->UpdateSettings(Context().get(), channel, &updated).ok());
  ASSERT_TRUE(SetQueues({{"other", {ann_}}}).ok());
  testing::CrmInbound inbound(api_->database_url());
  auto processor = inbound.MakeProcessor();
  ASSERT_TRUE(
      processor
          ->Process(
              {testing::InboundMessage(testing::WebFormEvent("q1", "+33611000001", "", "Anne")),
               testing::InboundMessage(testing::WebFormEvent("q2", "+33611000002", "", "Paul"))})
          .ok());
  EXPECT_EQ(Text("SELECT string_agg(responsible_user_id::text, ',' ORDER BY id) FROM leads"),
            b + "," + b);
}

// Protects: every way a deal is born writes the timeline entries CreateDeal writes
// (docs/domain.md, "A deal's birth on the timelines"): CREATED naming the stage it starts in,
// and LINKED on the deal's timeline and on its company's and each contact's — for CreateDeal,
// ConvertLead, inbound traffic in simple mode (a new person; a known contact with its company;
// a known company alone) and the classic → simple switch job; each with its one stage history
// row (none → stage). Seen red with the inbound writer and the switch job writing their former
// entries: the simple-mode deals' CREATED without the stage and without their own LINKED
// entries, the switched deal's CREATED without the stage (r7c C1).
TEST_F(DomainConfigTest, EveryWayADealIsBornWritesWhatCreateDealWrites) {
  std::map<std::string, int64_t> deals;  // how it was born → deal id
  const int64_t contact = CreateContact("Marie Curie", "");
  const int64_t company = CreateCompany("Acme", "");
  {
    v1::CreateDealRequest request;
    request.mutable_deal()->set_title("Office fit-out");
    request.add_contact_ids(contact);
    request.set_company_id(company);
    v1::Deal deal;
    grpc::Status status = deal_stub_->CreateDeal(Context().get(), request, &deal);
    ASSERT_TRUE(status.ok()) << status.error_message();
    deals["CreateDeal"] = deal.id();
  }
  {
    v1::ConvertLeadRequest request;
    request.set_lead_id(CreateLead("Léa", "+33620000001", "Boulangerie Léa"));
    request.set_produce(v1::CONVERSION_PRODUCE_CONTACT_COMPANY_DEAL);
    request.set_request_id("convert-lea");
    v1::ConvertLeadResponse response;
    grpc::Status status = lead_stub_->ConvertLead(Context().get(), request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    deals["ConvertLead"] = response.deal_id();
  }
  // The switch converts this open lead into contact + deal.
  const int64_t switched_lead = CreateLead("Paul", "+33620000002");
  v1::UpdateSettingsRequest simple;
  simple.mutable_settings()->set_mode(v1::CRM_MODE_SIMPLE);
  simple.mutable_update_mask()->add_paths("mode");
  v1::CrmSettings updated;
  ASSERT_TRUE(settings_stub_->UpdateSettings(Context().get(), simple, &updated).ok());
  {
    pqxx::connection connection(api_->database_url());
    pg::PrepareAll(connection, Statements());
    metrics::Registry registry;
    ModeSwitchCounters counters(registry);
    for (int step = 0; step < 10 && Count("SELECT count(*) FROM mode_switch_jobs WHERE state = "
                                          "'DONE'") == 0;
         ++step) {
      absl::StatusOr<bool> worked = RunModeSwitchStep(connection, 10, counters);
      ASSERT_TRUE(worked.ok()) << worked.status();
    }
    ASSERT_EQ(Count("SELECT count(*) FROM mode_switch_jobs WHERE state = 'DONE'"), 1);
    deals["mode switch"] =
        Count("SELECT id FROM deals WHERE lead_id = " + std::to_string(switched_lead));
  }
  // Simple mode: a person nobody knows, a contact with its company, a company alone.
  const int64_t known = CreateContact("Jean Dupont", "+33630000001");
  const int64_t known_company = CreateCompany("Dupont SA", "");
  {
    v1::LinkCompanyRequest link;
    link.set_contact_id(known);
    link.set_company_id(known_company);
    v1::ContactCompanyLink linked;
    ASSERT_TRUE(contact_stub_->LinkCompany(Context().get(), link, &linked).ok());
  }
  CreateCompany("Standard SARL", "+33140000001");
  testing::CrmInbound inbound(api_->database_url());
  auto processor = inbound.MakeProcessor();
  ASSERT_TRUE(processor
                  ->Process({testing::InboundMessage(testing::WebFormEvent(
                                 "new-person", "+33630000009", "", "Nina Nouvelle")),
                             testing::InboundMessage(testing::WebFormEvent(
                                 "known-contact", "+33630000001", "", "Jean Dupont")),
                             testing::InboundMessage(testing::WebFormEvent(
                                 "known-company", "+33140000001", "", "Standard"))})
                  .ok());
  for (const std::string event : {"new-person", "known-contact", "known-company"}) {
    deals["simple mode, " + event] =
        Count("SELECT id FROM deals WHERE origin_event_id = '" + event + "'");
  }

  ASSERT_EQ(deals.size(), 6u);
  for (const auto& [how, deal] : deals) {
    SCOPED_TRACE(how);
    ASSERT_NE(deal, 0);
    // Each is linked to someone: the LINKED entries are part of what is compared.
    EXPECT_GT(Count("SELECT count(*) FROM deals d WHERE id = " + std::to_string(deal) +
                    " AND (company_id IS NOT NULL OR EXISTS (SELECT 1 FROM deal_contacts c"
                    " WHERE c.deal_id = d.id))"),
              0);
    EXPECT_EQ(BirthEntries(deal), ExpectedBirthEntries(deal));
    EXPECT_EQ(Count("SELECT count(*) FROM deal_stage_history h JOIN deals d ON d.id = h.deal_id"
                    " WHERE h.from_stage_id IS NULL AND h.to_pipeline_id = d.pipeline_id"
                    " AND h.to_stage_id = d.stage_id AND d.id = " +
                    std::to_string(deal)),
              1);
  }
  // The contact and company paths link what they say they do.
  EXPECT_EQ(Count("SELECT contact_id FROM deal_contacts WHERE deal_id = " +
                  std::to_string(deals["simple mode, known-contact"])),
            known);
  EXPECT_EQ(Count("SELECT count(*) FROM deals WHERE company_id IS NOT NULL AND id = " +
                  std::to_string(deals["simple mode, known-company"])),
            1);
}

// Protects: a stage id that deals' stage history names in a pipeline cannot come back there
// after the stage is removed (docs/domain.md, "A removed stage's id stays its own"): re-added
// as a FAILURE stage, "from SURVEY" in a deal's history would read as a lost deal's; its old
// semantics are not kept, so the id is refused whatever the semantics (FAILED_PRECONDITION
// naming the stage and how many deals), and the pipeline is unchanged. An id no deal entered,
// and the same id in another pipeline, are free. Seen red with the history check taken out of
// AddStage: SURVEY came back as a FAILURE stage.
TEST_F(DomainConfigTest, ARemovedStageIdWithHistoryKeepsItsMeaning) {
  v1::CreatePipelineRequest create;
  create.mutable_pipeline()->set_name("Interior works");
  v1::Pipeline pipeline;
  ASSERT_TRUE(pipeline_stub_->CreatePipeline(Context().get(), create, &pipeline).ok());
  const int64_t id = pipeline.id();
  ASSERT_TRUE(AddStage(id, "SURVEY", v1::SEMANTICS_PROCESS, &pipeline).ok());

  v1::CreateDealRequest request;
  request.mutable_deal()->set_title("Kitchen");
  request.mutable_deal()->set_pipeline_id(id);
  request.mutable_deal()->set_stage_id("SURVEY");
  v1::Deal deal;
  ASSERT_TRUE(deal_stub_->CreateDeal(Context().get(), request, &deal).ok());
  v1::MoveDealRequest move;
  move.set_deal_id(deal.id());
  move.set_stage_id("NEW");
  ASSERT_TRUE(deal_stub_->MoveDeal(Context().get(), move, &deal).ok());
  ASSERT_TRUE(RemoveStage(id, "SURVEY").ok());

  v1::GetPipelineRequest get;
  get.set_id(id);
  v1::Pipeline before;
  ASSERT_TRUE(pipeline_stub_->GetPipeline(Context().get(), get, &before).ok());
  for (v1::Semantics semantics : {v1::SEMANTICS_FAILURE, v1::SEMANTICS_PROCESS}) {
    grpc::Status refused = AddStage(id, "SURVEY", semantics, &pipeline);
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_EQ(testing::StatusMessage(refused),
              absl::StrCat("stage id \"SURVEY\" was removed from pipeline ", id,
                           " and the stage history of 1 deal names it; give the new stage "
                           "another id"));
  }
  v1::Pipeline after;
  ASSERT_TRUE(pipeline_stub_->GetPipeline(Context().get(), get, &after).ok());
  EXPECT_EQ(after.SerializeAsString(), before.SerializeAsString());
  // The deal's history still reads as a PROCESS stage left for NEW; a new id is accepted.
  EXPECT_TRUE(AddStage(id, "SURVEY_LOST", v1::SEMANTICS_FAILURE, &pipeline).ok());
  // An id no deal ever entered is free again, with other semantics.
  ASSERT_TRUE(AddStage(id, "BRIEF", v1::SEMANTICS_PROCESS, &pipeline).ok());
  ASSERT_TRUE(RemoveStage(id, "BRIEF").ok());
  EXPECT_TRUE(AddStage(id, "BRIEF", v1::SEMANTICS_FAILURE, &pipeline).ok());
  // The same id in a pipeline whose deals never entered it.
  EXPECT_TRUE(AddStage(1, "SURVEY", v1::SEMANTICS_FAILURE, &pipeline).ok());
}

// Protects: AddStage's refusal of a stage without semantics says what AddStage accepts (PROCESS
// or FAILURE), not the three semantics of a whole pipeline: a SUCCESS stage is never added
// (FAILED_PRECONDITION, the pipeline has its one). Seen red with the former message, "semantics
// must be PROCESS, SUCCESS or FAILURE" (r7c E6).
TEST_F(DomainConfigTest, AddStageSaysWhatItAccepts) {
  v1::Pipeline pipeline;
  grpc::Status missing = AddStage(1, "HANDOVER", v1::SEMANTICS_UNSPECIFIED, &pipeline);
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(testing::StatusMessage(missing),
            "stage \"HANDOVER\": semantics must be PROCESS or FAILURE (a pipeline has its one "
            "SUCCESS stage already)");
  EXPECT_EQ(AddStage(1, "HANDOVER", v1::SEMANTICS_SUCCESS, &pipeline).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Count("SELECT count(*) FROM pipeline_stages WHERE id = 'HANDOVER'"), 0);
}

// Protects: no two lead statuses, nor two sources, share a sort, so their order is defined
// (docs/api.md, StatusService): CreateStatus or UpdateStatus giving another entry's sort is
// INVALID_ARGUMENT naming that entry, and nothing changes; a status created without a sort
// gets a free one; an update leaving the sort as it is passes. Seen red with the sort check
// taken out: SAME_SORT was created beside MEETING at 15 (r7c E3).
TEST_F(DomainConfigTest, NoTwoStatusesShareASort) {
  ASSERT_TRUE(CreateStatus(v1::STATUS_KIND_LEAD_STATUS, "MEETING", 15).ok());
  grpc::Status same = CreateStatus(v1::STATUS_KIND_LEAD_STATUS, "SAME_SORT", 15);
  EXPECT_EQ(same.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(testing::StatusMessage(same),
            "sort 15 is the sort of \"MEETING\" already; two entries never share one (their "
            "order would be undefined)");
  EXPECT_EQ(Count("SELECT count(*) FROM lead_statuses WHERE id = 'SAME_SORT'"), 0);
  EXPECT_EQ(CreateStatus(v1::STATUS_KIND_SOURCE, "TRADE_FAIR", 10).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);  // WEB_FORM's
  ASSERT_TRUE(CreateStatus(v1::STATUS_KIND_LEAD_STATUS, "CALL_LATER", 0).ok());

  v1::UpdateStatusRequest update;
  update.set_kind(v1::STATUS_KIND_LEAD_STATUS);
  update.mutable_status()->set_id("MEETING");
  update.mutable_status()->set_sort(20);  // IN_PROCESS's
  update.mutable_update_mask()->add_paths("sort");
  v1::Status updated;
  grpc::Status taken = status_stub_->UpdateStatus(Context().get(), update, &updated);
  EXPECT_EQ(taken.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(testing::StatusMessage(taken).find("\"IN_PROCESS\""), std::string::npos)
      << testing::StatusMessage(taken);
  EXPECT_EQ(Count("SELECT sort FROM lead_statuses WHERE id = 'MEETING'"), 15);
  update.mutable_status()->set_sort(15);  // its own
  update.mutable_status()->set_name("Meeting planned");
  update.mutable_update_mask()->add_paths("name");
  EXPECT_TRUE(status_stub_->UpdateStatus(Context().get(), update, &updated).ok());
  EXPECT_EQ(Count("SELECT count(*) FROM (SELECT sort FROM lead_statuses GROUP BY sort"
                  " HAVING count(*) > 1) AS ties"),
            0);
}

// Protects: an etag is accepted only in the exact form the server issues (the version in
// decimal): " 2", "2 ", "+2", "02" are INVALID_ARGUMENT "etag is not one this server issued"
// and change nothing, as "abc", "-1" and W/"2" are. Seen red with the exact-form check taken out
// of ParseEtag: " 1" updated the contact (r7c B5).
TEST_F(DomainConfigTest, OnlyTheServersOwnEtagIsAccepted) {
  const int64_t contact = CreateContact("Marie Curie", "");
  v1::UpdateContactRequest request;
  request.mutable_contact()->set_id(contact);
  request.mutable_contact()->set_position("Director");
  request.mutable_update_mask()->add_paths("position");
  v1::Contact updated;
  for (const char* etag : {" 1", "1 ", "+1", "01", "1.0", "0x1", "abc", "-1", "W/\"1\""}) {
    SCOPED_TRACE(etag);
    request.mutable_contact()->set_etag(etag);
    grpc::Status refused = contact_stub_->UpdateContact(Context().get(), request, &updated);
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(testing::StatusMessage(refused), "etag is not one this server issued");
  }
  EXPECT_EQ(
      Text("SELECT coalesce(position, '') FROM contacts WHERE id = " + std::to_string(contact)),
      "");
  request.mutable_contact()->set_etag("1");
  grpc::Status status = contact_stub_->UpdateContact(Context().get(), request, &updated);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(updated.position(), "Director");
  EXPECT_EQ(updated.etag(), "2");
}

}  // namespace
}  // namespace leadflow::crm
