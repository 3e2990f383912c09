// crm-core as a black box: events in through the Kafka protocol (dev-broker), results read back
// through the gRPC API with crmctl and counted in PostgreSQL.

#include <gtest/gtest.h>
#include <signal.h>

#include <random>

#include "e2e/stack.h"
#include "kafka/producer.h"
#include "leadflow/events/v1/inbound_event.pb.h"

namespace leadflow::e2e {
namespace {

using events::v1::Identity;
using events::v1::InboundEvent;

std::string WebFormEvent(const std::string& id, const std::string& phone, const std::string& email,
                         const std::string& name) {
  return testing::WebFormEvent(id, phone, email, name, "Need a quote for " + name)
      .SerializeAsString();
}

class CrmE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(Migrate(database_.url()));
    auto producer = kafka::Producer::Create({.brokers = broker_.bootstrap()});
    ASSERT_TRUE(producer.ok());
    producer_ = std::move(*producer);
  }

  void Publish(const std::string& key, const std::string& value) {
    producer_->Produce(kafka::kInboundTopic, key, value, {{"event-type", "web_form"}},
                       [this](const kafka::DeliveryResult& result) {
                         if (!result.status.ok()) {
                           ++failed_;
                         }
                       });
  }

  int64_t Sql(const std::string& sql) { return Count(database_.url(), sql); }

  testing::TempDatabase database_;
  DevBroker broker_;
  std::unique_ptr<kafka::Producer> producer_;
  std::atomic<int> failed_{0};
};

// Protects: an event becomes a lead with an open task, readable over gRPC; the API's auth,
// pagination, etag and validation behave as documented.
TEST_F(CrmE2eTest, LeadThroughTheApi) {
  CrmCore core(database_.url(), broker_.bootstrap(), testing::UniqueName("g"));
  ASSERT_TRUE(core.WaitReady()) << core.process().Log();
  const std::string& api = core.grpc_address();

  auto user = Call(api, "UserService/CreateUser", {{"user", {{"name", "Ann Seller"}}}});
  ASSERT_TRUE(user.contains("id")) << user.dump();
  EXPECT_EQ(Call(api, "UserService/CreateUser", {{"user", {{"name", "X"}}}}, kReaderKey)["code"],
            7);  // PERMISSION_DENIED
  EXPECT_EQ(Call(api, "LeadService/ListLeads", nlohmann::json::object(), "wrong-key")["code"],
            16);  // UNAUTHENTICATED
  EXPECT_EQ(Call(api, "LeadService/ListLeads", nlohmann::json::object(), "")["code"], 16);

  Publish("+33612345678", WebFormEvent("form:1", "+33612345678", "jean@example.com", "Jean"));
  Publish("+33698765432", WebFormEvent("form:2", "+33698765432", "", "Marie"));
  ASSERT_TRUE(producer_->Flush(std::chrono::seconds(10)).ok());

  nlohmann::json leads;
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        leads = Call(api, "LeadService/ListLeads", {{"status", "LEAD_STATUS_NEW"}}, kReaderKey);
        return leads.contains("leads") && leads["leads"].size() == 2;
      },
      std::chrono::seconds(30)))
      << leads.dump();
  nlohmann::json jean;
  for (const auto& lead : leads["leads"]) {
    if (lead["first_name"] == "Jean") {
      jean = lead;
    }
  }
  ASSERT_FALSE(jean.is_null());
  EXPECT_EQ(jean["title"], "Lyon – Jean – Need a quote for Jean");
  EXPECT_EQ(jean["source"], "LEAD_SOURCE_WEB_FORM");
  EXPECT_EQ(jean["phones"][0], "+33612345678");
  EXPECT_EQ(jean["emails"][0], "jean@example.com");
  EXPECT_EQ(jean["responsible_user_id"], user["id"]);

  auto activities = Call(api, "ActivityService/ListActivities",
                         {{"owner_type", "OWNER_TYPE_LEAD"},
                          {"owner_id", jean["id"]},
                          {"completion", "COMPLETION_OPEN"}});
  ASSERT_EQ(activities["activities"].size(), 1u) << activities.dump();
  EXPECT_EQ(activities["activities"][0]["type"], "ACTIVITY_TYPE_TASK");
  EXPECT_EQ(activities["activities"][0]["subject"], "Process the request");

  // Pagination: one per page, then the second, then no more.
  auto page1 = Call(api, "LeadService/ListLeads", {{"page_size", 1}});
  ASSERT_EQ(page1["leads"].size(), 1u);
  ASSERT_TRUE(page1.contains("next_page_token"));
  auto page2 = Call(api, "LeadService/ListLeads",
                    {{"page_size", 1}, {"page_token", page1["next_page_token"]}});
  ASSERT_EQ(page2["leads"].size(), 1u);
  EXPECT_NE(page1["leads"][0]["id"], page2["leads"][0]["id"]);
  EXPECT_FALSE(page2.contains("next_page_token"));
  EXPECT_EQ(Call(api, "LeadService/ListLeads", {{"page_token", "garbage!"}})["code"], 3);

  // Update with the current etag works once; the same (now stale) etag is ABORTED.
  nlohmann::json update = {
      {"lead", {{"id", jean["id"]}, {"status", "LEAD_STATUS_IN_PROCESS"}, {"etag", jean["etag"]}}},
      {"update_mask", "status"}};
  auto updated = Call(api, "LeadService/UpdateLead", update);
  EXPECT_EQ(updated["status"], "LEAD_STATUS_IN_PROCESS") << updated.dump();
  EXPECT_EQ(Call(api, "LeadService/UpdateLead", update)["code"], 10);
  EXPECT_EQ(Call(api, "LeadService/UpdateLead",
                 {{"lead", {{"id", jean["id"]}}}, {"update_mask", "repeat_count"}})["code"],
            3);
  EXPECT_EQ(Call(api, "LeadService/GetLead", {{"id", 999999}})["code"], 5);

  // A planned activity, then completed.
  auto call = Call(api, "ActivityService/CreateActivity",
                   {{"activity",
                     {{"type", "ACTIVITY_TYPE_CALL"},
                      {"owner_type", "OWNER_TYPE_LEAD"},
                      {"owner_id", jean["id"]},
                      {"subject", "Call back about the quote"}}}});
  ASSERT_TRUE(call.contains("id")) << call.dump();
  auto done = Call(api, "ActivityService/CompleteActivity", {{"id", call["id"]}});
  EXPECT_EQ(done["completed"], true);
  EXPECT_EQ(Call(api, "ActivityService/CreateActivity",
                 {{"activity", {{"type", "ACTIVITY_TYPE_CALL"}, {"subject", "x"}}}})["code"],
            3);

  // A walk-in visitor.
  auto walk_in = Call(api, "LeadService/CreateLead",
                      {{"lead",
                        {{"first_name", "Paul"},
                         {"last_name", "Durand"},
                         {"phones", {"06 11 22 33 44"}},
                         {"emails", {" Paul@Example.COM "}}}}});
  EXPECT_EQ(walk_in["source"], "LEAD_SOURCE_WALK_IN") << walk_in.dump();
  EXPECT_EQ(walk_in["title"], "Visit – Paul Durand");
  EXPECT_EQ(walk_in["phones"][0], "+33611223344");
  EXPECT_EQ(walk_in["emails"][0], "paul@example.com");
  EXPECT_EQ(Call(api, "LeadService/CreateLead",
                 {{"lead", {{"first_name", "Paul"}, {"phones", {"not a phone"}}}}})["code"],
            3);

  // Operations endpoint: probes and Prometheus metrics that count what happened.
  std::string base = "http://127.0.0.1:" + std::to_string(core.http_port());
  EXPECT_EQ(testing::Shell("curl -s -o /dev/null -w '%{http_code}' " + base + "/readyz"), "200");
  std::string metrics = testing::Shell("curl -s " + base + "/metrics");
  EXPECT_NE(metrics.find("crm_inbound_events_applied_total 2"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("crm_leads_created_total 2"), std::string::npos) << metrics;
  EXPECT_EQ(failed_, 0);
}

// Protects: exactly-once effects across a crash. crm-core is killed with SIGKILL in the middle of
// a stream of 20,000 events (repeats and exact duplicates included) and restarted; every event
// then has exactly one effect: no lead or activity missing, none doubled.
TEST_F(CrmE2eTest, CrashMidStreamKeepsExactlyOnce) {
  constexpr int kEvents = 20000;
  std::mt19937 random(42);
  std::vector<std::pair<std::string, std::string>> people;  // phone, id of an earlier event
  std::vector<std::pair<std::string, std::string>> sent;    // key, value
  std::set<std::string> distinct_ids;
  std::set<std::string> distinct_people;
  for (int i = 0; i < kEvents; ++i) {
    int dice = static_cast<int>(random() % 100);
    if (dice < 5 && !sent.empty()) {
      sent.push_back(sent[random() % sent.size()]);  // exact duplicate: same event id
      continue;
    }
    std::string phone;
    if (dice < 35 && !people.empty()) {
      phone = people[random() % people.size()].first;  // the same person again
    } else {
      phone = "+3361" + std::to_string(1000000 + static_cast<int>(people.size()));
      people.push_back({phone, ""});
    }
    std::string id = "crash:" + std::to_string(i);
    distinct_ids.insert(id);
    distinct_people.insert(phone);
    sent.push_back({phone, WebFormEvent(id, phone, "", "P" + std::to_string(i))});
  }
  for (const auto& [key, value] : sent) {
    Publish(key, value);
  }
  ASSERT_TRUE(producer_->Flush(std::chrono::seconds(60)).ok());
  ASSERT_EQ(failed_, 0);

  std::string group = testing::UniqueName("crash");
  std::map<std::string, std::string> small_batches = {{"CRM_BATCH_MAX_EVENTS", "100"}};
  int64_t at_kill = 0;
  {
    CrmCore first(database_.url(), broker_.bootstrap(), group, small_batches);
    ASSERT_TRUE(
        testing::WaitFor([&] { return Sql("SELECT count(*) FROM processed_events") >= 2000; },
                         std::chrono::seconds(120)))
        << first.process().Log();
    first.process().Signal(SIGKILL);
    first.process().Wait(std::chrono::seconds(10));
    at_kill = Sql("SELECT count(*) FROM processed_events");
  }
  // The kill must have landed mid-stream, or this test proves nothing.
  ASSERT_LT(at_kill, static_cast<int64_t>(distinct_ids.size()));

  CrmCore second(database_.url(), broker_.bootstrap(), group, small_batches);
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        return Sql("SELECT count(*) FROM processed_events") ==
               static_cast<int64_t>(distinct_ids.size());
      },
      std::chrono::seconds(180)))
      << "processed " << Sql("SELECT count(*) FROM processed_events") << " of "
      << distinct_ids.size();
  // Let any straggling redelivery land before counting effects.
  second.process().Signal(SIGTERM);
  ASSERT_EQ(second.process().Wait(std::chrono::seconds(30)), 0) << second.process().Log();

  const auto events = static_cast<int64_t>(distinct_ids.size());
  const auto persons = static_cast<int64_t>(distinct_people.size());
  EXPECT_EQ(Sql("SELECT count(*) FROM leads"), persons);
  EXPECT_EQ(Sql("SELECT count(*) FROM activities"), events);
  EXPECT_EQ(Sql("SELECT count(DISTINCT origin_event_id) FROM activities"), events);
  EXPECT_EQ(Sql("SELECT sum(repeat_count) FROM leads"), events - persons);
  EXPECT_EQ(Sql("SELECT count(*) FROM (SELECT value FROM lead_identities GROUP BY value"
                " HAVING count(*) > 1) d"),
            0);
  std::cout << "crash test: " << kEvents << " messages, " << events << " distinct events, "
            << persons << " people; killed after " << at_kill << " events were committed\n";
}

// Protects: one person, one lead with two consumers racing: the same people's events arrive on
// different partitions (phone only on one, email and phone on another) and are consumed by two
// crm-core processes of one group at once.
TEST_F(CrmE2eTest, TwoConsumersOnePersonOneLead) {
  std::string group = testing::UniqueName("race");
  CrmCore first(database_.url(), broker_.bootstrap(), group);
  CrmCore second(database_.url(), broker_.bootstrap(), group);
  ASSERT_TRUE(first.WaitReady()) << first.process().Log();
  ASSERT_TRUE(second.WaitReady()) << second.process().Log();
  // Both members must hold partitions before the race starts.
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        auto assigned = [](const std::string& log) {
          auto at = log.rfind("kafka: assigned ");
          return at != std::string::npos && log.find("kafka: revoking", at) == std::string::npos &&
                 log.substr(at + 16, 2) != "0 ";
        };
        return assigned(first.process().Log()) && assigned(second.process().Log());
      },
      std::chrono::seconds(60)));

  constexpr int kPeople = 1000;
  for (int i = 0; i < kPeople; ++i) {
    std::string phone = "+3362" + std::to_string(1000000 + i);
    std::string email = "racer" + std::to_string(i) + "@example.com";
    Publish(phone, WebFormEvent("race:a" + std::to_string(i), phone, "", "A"));
    Publish(email, WebFormEvent("race:b" + std::to_string(i), phone, email, "B"));
  }
  ASSERT_TRUE(producer_->Flush(std::chrono::seconds(30)).ok());
  ASSERT_EQ(failed_, 0);
  ASSERT_TRUE(
      testing::WaitFor([&] { return Sql("SELECT count(*) FROM processed_events") == 2 * kPeople; },
                       std::chrono::seconds(120)));
  first.process().Signal(SIGTERM);
  second.process().Signal(SIGTERM);
  ASSERT_EQ(first.process().Wait(std::chrono::seconds(30)), 0);
  ASSERT_EQ(second.process().Wait(std::chrono::seconds(30)), 0);

  EXPECT_EQ(Sql("SELECT count(*) FROM leads"), kPeople);
  EXPECT_EQ(Sql("SELECT sum(repeat_count) FROM leads"), kPeople);
  EXPECT_EQ(Sql("SELECT count(*) FROM activities"), 2 * kPeople);
  // Both consumers really took part.
  auto applied = [](const std::string& log) {
    auto at = log.find("stopped: ");
    return at == std::string::npos ? -1 : std::stoll(log.substr(at + 9));
  };
  int64_t by_first = applied(first.process().Log());
  int64_t by_second = applied(second.process().Log());
  EXPECT_GT(by_first, 0);
  EXPECT_GT(by_second, 0);
  EXPECT_EQ(by_first + by_second, 2 * kPeople);
  std::cout << "race test: consumer 1 applied " << by_first << ", consumer 2 applied " << by_second
            << " events\n";
}

}  // namespace
}  // namespace leadflow::e2e
