// The deal side end to end: a form posted with curl becomes a lead in classic mode, crmctl (a real
// gRPC client) converts it into contact + company + deal, retries the conversion, and edits
// pipelines and stages against the built crm-core.

#include <gtest/gtest.h>

#include "e2e/stack.h"

namespace leadflow::e2e {
namespace {

// int64 fields arrive as JSON strings (proto3 JSON); absent ones are 0.
int64_t Id(const nlohmann::json& value) {
  if (value.is_string()) {
    return std::stoll(value.get<std::string>());
  }
  return value.is_number() ? value.get<int64_t>() : 0;
}

int PostForm(const std::string& url, const std::string& body) {
  std::string code = testing::Shell(
      "curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: "
      "application/json' -d '" +
      body + "' '" + url + "/v1/forms/contact/submissions'");
  return std::atoi(code.c_str());
}

// Protects: in classic mode a form makes a lead, and ConvertLead over gRPC turns it into
// contact + company + deal: the deal is readable with its contact and company and its stage
// history, the lead is CONVERTED, the contact holds the person's phone and email; the same
// request id retried from a second crmctl call answers the same ids (replayed) and writes
// nothing more; converting again under another id is FAILED_PRECONDITION.
TEST(DealE2eTest, FormLeadConvertedIntoContactCompanyDeal) {
  testing::TempDatabase database;
  ASSERT_TRUE(Migrate(database.url()));
  DevBroker broker;
  CrmCore core(database.url(), broker.bootstrap(), testing::UniqueName("deals"));
  WebformIngest ingest(broker.bootstrap());
  ASSERT_TRUE(core.WaitReady()) << core.process().Log();
  ASSERT_TRUE(ingest.WaitReady()) << ingest.process().Log();
  const std::string& api = core.grpc_address();

  auto settings = Call(api, "SettingsService/GetSettings", nlohmann::json::object());
  EXPECT_EQ(settings["mode"], "CRM_MODE_CLASSIC");
  ASSERT_EQ(PostForm(ingest.url(),
                     "{\"name\": \"Léa\", \"last_name\": \"Martin\", \"phone\": \"06 12 34 56 "
                     "78\", \"email\": \"lea@example.com\", \"company\": \"Martin Design\", "
                     "\"message\": \"Three offices to fit out\"}"),
            202);
  nlohmann::json leads;
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        leads = Call(api, "LeadService/ListLeads", nlohmann::json::object());
        return leads.contains("leads") && !leads["leads"].empty();
      },
      std::chrono::seconds(30)));
  const int64_t lead_id = Id(leads["leads"][0]["id"]);

  const nlohmann::json convert = {{"lead_id", lead_id},
                                  {"produce", "CONVERSION_PRODUCE_CONTACT_COMPANY_DEAL"},
                                  {"request_id", "e2e-convert-1"}};
  auto converted = Call(api, "LeadService/ConvertLead", convert);
  ASSERT_TRUE(converted.contains("deal_id")) << converted.dump();
  const int64_t contact_id = Id(converted["contact_id"]);
  const int64_t company_id = Id(converted["company_id"]);
  const int64_t deal_id = Id(converted["deal_id"]);
  EXPECT_GT(contact_id, 0);
  EXPECT_GT(company_id, 0);
  EXPECT_FALSE(converted.value("replayed", false));

  auto deal = Call(api, "DealService/GetDeal", {{"id", deal_id}});
  EXPECT_EQ(deal["stage_id"], "NEW");
  EXPECT_EQ(Id(deal["pipeline_id"]), 1);
  EXPECT_EQ(Id(deal["lead_id"]), lead_id);
  EXPECT_EQ(Id(deal["company_id"]), company_id);
  ASSERT_EQ(deal["contact_ids"].size(), 1u);
  EXPECT_EQ(Id(deal["contact_ids"][0]), contact_id);
  auto by_contact = Call(api, "DealService/ListDeals", {{"contact_id", contact_id}});
  ASSERT_EQ(by_contact["deals"].size(), 1u);
  auto by_company = Call(api, "DealService/ListDeals", {{"company_id", company_id}});
  ASSERT_EQ(by_company["deals"].size(), 1u);
  auto lead = Call(api, "LeadService/GetLead", {{"id", lead_id}});
  EXPECT_EQ(lead["status_id"], "CONVERTED");
  EXPECT_EQ(Count(database.url(), "SELECT count(*) FROM contact_identities WHERE contact_id = " +
                                      std::to_string(contact_id) +
                                      " AND value IN ('+33612345678', 'lea@example.com')"),
            2);
  EXPECT_EQ(Count(database.url(), "SELECT count(*) FROM companies WHERE name = 'Martin Design'"),
            1);

  // A client retry with the same request id: the same answer, one effect.
  auto retried = Call(api, "LeadService/ConvertLead", convert);
  EXPECT_TRUE(retried.value("replayed", false)) << retried.dump();
  EXPECT_EQ(Id(retried["deal_id"]), deal_id);
  EXPECT_EQ(Id(retried["contact_id"]), contact_id);
  EXPECT_EQ(Count(database.url(), "SELECT count(*) FROM contacts"), 1);
  EXPECT_EQ(Count(database.url(), "SELECT count(*) FROM companies"), 1);
  EXPECT_EQ(Count(database.url(), "SELECT count(*) FROM deals"), 1);
  auto again = Call(api, "LeadService/ConvertLead",
                    {{"lead_id", lead_id},
                     {"produce", "CONVERSION_PRODUCE_CONTACT"},
                     {"request_id", "e2e-convert-2"}});
  EXPECT_EQ(again.value("code", 0), 9);  // FAILED_PRECONDITION

  auto moved = Call(api, "DealService/MoveDeal", {{"deal_id", deal_id}, {"stage_id", "WON"}});
  EXPECT_TRUE(moved.value("closed", false)) << moved.dump();
  auto history = Call(api, "DealService/ListStageHistory", {{"deal_id", deal_id}});
  ASSERT_EQ(history["changes"].size(), 2u);
  EXPECT_EQ(history["changes"][0]["from_stage_id"], "NEW");
  EXPECT_EQ(history["changes"][0]["to_stage_id"], "WON");
}

// Protects: pipeline and stage edits through crmctl: a new pipeline gets Bitrix24's default
// stages, a stage is added, renamed and reordered; RemoveStage is refused (FAILED_PRECONDITION)
// while a deal sits in the stage and succeeds once it left; writes need the admin role.
TEST(DealE2eTest, PipelineAndStageEdits) {
  testing::TempDatabase database;
  ASSERT_TRUE(Migrate(database.url()));
  DevBroker broker;
  CrmCore core(database.url(), broker.bootstrap(), testing::UniqueName("pipelines"));
  ASSERT_TRUE(core.WaitReady()) << core.process().Log();
  const std::string& api = core.grpc_address();

  auto pipeline = Call(api, "PipelineService/CreatePipeline", {{"pipeline", {{"name", "Design"}}}});
  ASSERT_TRUE(pipeline.contains("id")) << pipeline.dump();
  const int64_t id = Id(pipeline["id"]);
  EXPECT_EQ(pipeline["stages"].size(), 7u);
  auto refused =
      Call(api, "PipelineService/CreatePipeline", {{"pipeline", {{"name", "Other"}}}}, kReaderKey);
  EXPECT_EQ(refused.value("code", 0), 7);  // PERMISSION_DENIED

  auto added =
      Call(api, "PipelineService/AddStage",
           {{"pipeline_id", id},
            {"stage", {{"id", "SKETCH"}, {"name", "Sketch"}, {"semantics", "SEMANTICS_PROCESS"}}},
            {"before_stage_id", "PREPARATION"}});
  ASSERT_EQ(added["stages"].size(), 8u) << added.dump();
  EXPECT_EQ(added["stages"][1]["id"], "SKETCH");
  auto renamed = Call(api, "PipelineService/UpdateStage",
                      {{"pipeline_id", id},
                       {"stage", {{"id", "SKETCH"}, {"name", "Sketches"}, {"idle_days", 7}}},
                       {"update_mask", "name,idleDays"}});
  EXPECT_EQ(renamed["stages"][1]["name"], "Sketches") << renamed.dump();
  EXPECT_EQ(renamed["stages"][1]["idle_days"], 7);
  auto reordered = Call(
      api, "PipelineService/ReorderStages",
      {{"pipeline_id", id},
       {"stage_ids",
        {"SKETCH", "NEW", "PREPARATION", "PREPAYMENT_INVOICE", "EXECUTING", "FINAL_INVOICE"}}});
  EXPECT_EQ(reordered["stages"][0]["id"], "SKETCH") << reordered.dump();

  auto deal = Call(api, "DealService/CreateDeal",
                   {{"deal", {{"title", "Office sketches"}, {"pipeline_id", id}}}});
  ASSERT_EQ(deal["stage_id"], "SKETCH") << deal.dump();
  auto blocked =
      Call(api, "PipelineService/RemoveStage", {{"pipeline_id", id}, {"stage_id", "SKETCH"}});
  EXPECT_EQ(blocked.value("code", 0), 9);  // FAILED_PRECONDITION
  EXPECT_EQ(Count(database.url(), "SELECT count(*) FROM pipeline_stages WHERE id = 'SKETCH'"), 1);
  Call(api, "DealService/MoveDeal", {{"deal_id", deal["id"]}, {"stage_id", "NEW"}});
  auto removed =
      Call(api, "PipelineService/RemoveStage", {{"pipeline_id", id}, {"stage_id", "SKETCH"}});
  ASSERT_TRUE(removed.contains("stages")) << removed.dump();
  EXPECT_EQ(removed["stages"].size(), 7u);
  EXPECT_EQ(removed["stages"][0]["id"], "NEW");
}

}  // namespace
}  // namespace leadflow::e2e
