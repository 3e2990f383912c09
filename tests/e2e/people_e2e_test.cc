// Contacts, companies, links, search, history, activities and merges driven from outside: the
// built crm-core, called with the crmctl binary.

#include <gtest/gtest.h>

#include "e2e/stack.h"

namespace leadflow::e2e {
namespace {

// Protects: a manager's path through the people services over the real binaries: a contact
// from one full name with a local phone, a company linked from either side, the same person
// found by the phone in another format and by an accent-free name prefix, an upsert answering
// the existing contact, an activity on the contact listed as overdue, a merge (retried: one
// effect; the folded id NOT_FOUND naming the kept one), and each step in the timeline.
TEST(PeopleE2eTest, ContactsCompaniesSearchHistoryAndMerge) {
  testing::TempDatabase database;
  ASSERT_TRUE(Migrate(database.url()));
  DevBroker broker;
  CrmCore core(database.url(), broker.bootstrap(), testing::UniqueName("g"));
  ASSERT_TRUE(core.WaitReady()) << core.process().Log();
  const std::string& api = core.grpc_address();

  auto created = Call(api, "ContactService/CreateContact",
                      {{"contact", {{"full_name", "Léa Martin"}, {"phones", {"06 12 34 56 78"}}}}});
  ASSERT_TRUE(created.contains("contact")) << created.dump();
  EXPECT_EQ(created["outcome"], "UPSERT_OUTCOME_CREATED");
  auto lea = created["contact"];
  EXPECT_EQ(lea["first_name"], "Léa");
  EXPECT_EQ(lea["last_name"], "Martin");
  EXPECT_EQ(lea["phones"][0], "+33612345678");

  auto again = Call(api, "ContactService/CreateContact",
                    {{"contact", {{"full_name", "L. Martin"}, {"phones", {"+33 6 12 34 56 78"}}}},
                     {"upsert_by_identity", true}});
  EXPECT_EQ(again["outcome"], "UPSERT_OUTCOME_EXISTING") << again.dump();
  EXPECT_EQ(again["contact"]["id"], lea["id"]);

  auto company = Call(api, "CompanyService/CreateCompany",
                      {{"company", {{"name", "Atelier Martin"}}}})["company"];
  ASSERT_TRUE(company.contains("id")) << company.dump();
  auto link = Call(api, "ContactService/LinkCompany",
                   {{"contact_id", lea["id"]}, {"company_id", company["id"]}, {"role", "Owner"}});
  EXPECT_EQ(link["role"], "Owner") << link.dump();
  auto seen = Call(api, "CompanyService/GetCompany", {{"id", company["id"]}}, kReaderKey);
  ASSERT_EQ(seen["contacts"].size(), 1u) << seen.dump();
  EXPECT_EQ(seen["contacts"][0]["contact_id"], lea["id"]);

  auto by_phone =
      Call(api, "SearchService/FindByCommunication", {{"phone", "0612345678"}}, kReaderKey);
  ASSERT_EQ(by_phone["matches"].size(), 1u) << by_phone.dump();
  EXPECT_EQ(by_phone["matches"][0]["entity"]["id"], lea["id"]);
  auto by_name = Call(api, "SearchService/FindByName", {{"prefix", "LEA"}}, kReaderKey);
  ASSERT_EQ(by_name["matches"].size(), 1u) << by_name.dump();
  EXPECT_EQ(by_name["matches"][0]["company_name"], "Atelier Martin");

  auto late = Call(api, "ActivityService/CreateActivity",
                   {{"activity",
                     {{"type", "ACTIVITY_TYPE_CALL"},
                      {"owner_type", "OWNER_TYPE_CONTACT"},
                      {"owner_id", lea["id"]},
                      {"subject", "Call back"},
                      {"deadline", "2020-01-01T09:00:00Z"}}}});
  ASSERT_TRUE(late.contains("id")) << late.dump();
  auto overdue = Call(api, "ActivityService/ListActivities", {{"overdue_only", true}}, kReaderKey);
  ASSERT_EQ(overdue["activities"].size(), 1u) << overdue.dump();

  auto twin = Call(api, "ContactService/CreateContact",
                   {{"contact", {{"full_name", "Lea Martin"}, {"emails", {"lea@example.com"}}}}});
  auto merge = nlohmann::json{{"kept_id", lea["id"]}, {"folded_ids", {twin["contact"]["id"]}}};
  auto merged = Call(api, "ContactService/MergeContacts", merge);
  ASSERT_EQ(merged["folded_ids"].size(), 1u) << merged.dump();
  EXPECT_EQ(merged["kept"]["emails"][0], "lea@example.com");
  auto retried = Call(api, "ContactService/MergeContacts", merge);
  EXPECT_TRUE(retried.contains("kept")) << retried.dump();
  EXPECT_FALSE(retried.contains("folded_ids")) << retried.dump();
  EXPECT_EQ(Call(api, "ContactService/GetContact", {{"id", twin["contact"]["id"]}})["code"],
            5);  // NOT_FOUND

  auto history =
      Call(api, "HistoryService/ListHistory",
           {{"entity", {{"type", "OWNER_TYPE_CONTACT"}, {"id", lea["id"]}}}}, kReaderKey);
  ASSERT_EQ(history["entries"].size(), 3u) << history.dump();
  EXPECT_EQ(history["entries"][0]["kind"], "MERGED");
  EXPECT_EQ(history["entries"][1]["kind"], "LINKED");
  EXPECT_EQ(history["entries"][2]["kind"], "CREATED");
}

// The value of one crm_api_calls_total series on crm-core's /metrics, read over HTTP with curl
// (0 when the series is not there yet).
double ApiCalls(const CrmCore& core, const std::string& method, const std::string& code) {
  const std::string metrics =
      testing::Shell("curl -s http://127.0.0.1:" + std::to_string(core.http_port()) + "/metrics");
  return testing::MetricValue(
             metrics, "crm_api_calls_total{code=\"" + code + "\",method=\"" + method + "\"}")
      .value_or(0);
}

// Protects: an operator sees the API's answers in /metrics: each call answered OK,
// INVALID_ARGUMENT, NOT_FOUND or UNAUTHENTICATED moves its own crm_api_calls_total{method,code}
// series by one, and only that one; the per-method latency histogram counts every call.
TEST(PeopleE2eTest, ApiCallsCountedByMethodAndCode) {
  testing::TempDatabase database;
  ASSERT_TRUE(Migrate(database.url()));
  DevBroker broker;
  CrmCore core(database.url(), broker.bootstrap(), testing::UniqueName("g"));
  ASSERT_TRUE(core.WaitReady()) << core.process().Log();
  const std::string& api = core.grpc_address();
  const std::string get = "ContactService/GetContact";
  const std::string create = "ContactService/CreateContact";
  ASSERT_EQ(ApiCalls(core, create, "OK"), 0);

  auto created =
      Call(api, "ContactService/CreateContact", {{"contact", {{"full_name", "Léa Martin"}}}});
  ASSERT_TRUE(created.contains("contact")) << created.dump();
  EXPECT_EQ(ApiCalls(core, create, "OK"), 1);
  EXPECT_EQ(ApiCalls(core, create, "INVALID_ARGUMENT"), 0);

  EXPECT_EQ(
      Call(api, create, {{"contact", {{"full_name", "Léa"}, {"phones", {"not a phone"}}}}})["code"],
      3);
  EXPECT_EQ(ApiCalls(core, create, "INVALID_ARGUMENT"), 1);
  EXPECT_EQ(ApiCalls(core, create, "OK"), 1);

  EXPECT_EQ(Call(api, get, {{"id", created["contact"]["id"]}}, kReaderKey)["id"],
            created["contact"]["id"]);
  EXPECT_EQ(Call(api, get, {{"id", 999999}}, kReaderKey)["code"], 5);
  EXPECT_EQ(Call(api, get, {{"id", 999998}}, kReaderKey)["code"], 5);
  EXPECT_EQ(Call(api, get, {{"id", 1}}, "wrong-key")["code"], 16);
  EXPECT_EQ(ApiCalls(core, get, "OK"), 1);
  EXPECT_EQ(ApiCalls(core, get, "NOT_FOUND"), 2);
  EXPECT_EQ(ApiCalls(core, get, "UNAUTHENTICATED"), 1);

  const std::string metrics =
      testing::Shell("curl -s http://127.0.0.1:" + std::to_string(core.http_port()) + "/metrics");
  EXPECT_EQ(
      testing::MetricValue(metrics, "crm_api_call_duration_seconds_count{method=\"" + get + "\"}"),
      4)
      << metrics;
}

}  // namespace
}  // namespace leadflow::e2e
