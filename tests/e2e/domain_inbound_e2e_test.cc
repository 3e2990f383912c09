// crm-core as a black box over the whole domain: simple mode through the Kafka protocol, read
// back with crmctl over gRPC and counted in PostgreSQL; the classic → simple switch job killed
// mid-way and finished by the restarted process.

#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include "e2e/stack.h"
#include "kafka/producer.h"
#include "leadflow/events/v1/inbound_event.pb.h"

namespace leadflow::e2e {
namespace {

class DomainInboundE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(Migrate(database_.url()));
    auto producer = kafka::Producer::Create({.brokers = broker_.bootstrap()});
    ASSERT_TRUE(producer.ok());
    producer_ = std::move(*producer);
  }

  void Publish(const std::string& id, const std::string& phone, const std::string& email) {
    std::string value =
        testing::WebFormEvent(id, phone, email, "Marie Curie", "Need a quote").SerializeAsString();
    producer_->Produce(kafka::kInboundTopic, phone.empty() ? email : phone, value,
                       {{"event-type", "web_form"}}, [](const kafka::DeliveryResult&) {});
    ASSERT_TRUE(producer_->Flush(std::chrono::seconds(10)).ok());
  }

  void Exec(const std::string& sql) {
    pqxx::connection connection(database_.url());
    pqxx::work work(connection);
    work.exec0(sql);
    work.commit();
  }

  int64_t Sql(const std::string& sql) { return Count(database_.url(), sql); }

  testing::TempDatabase database_;
  DevBroker broker_;
  std::unique_ptr<kafka::Producer> producer_;
};

// Protects: in simple mode a form makes a contact and a deal directly (no lead); the same person
// writing again, by another identity, adds an activity on that deal and makes no new lead.
TEST_F(DomainInboundE2eTest, SimpleModeContactAndDealThenActivityOnTheDeal) {
  Exec("UPDATE crm_settings SET mode = 'SIMPLE'");
  CrmCore core(database_.url(), broker_.bootstrap(), testing::UniqueName("d"));
  ASSERT_TRUE(core.WaitReady()) << core.process().Log();
  const std::string& api = core.grpc_address();

  Publish("simple:1", "+33612340001", "marie@example.com");
  ASSERT_TRUE(testing::WaitFor([&] { return Sql("SELECT count(*) FROM deals") == 1; },
                               std::chrono::seconds(30)))
      << core.process().Log();
  EXPECT_EQ(Sql("SELECT count(*) FROM contacts WHERE first_name = 'Marie' AND last_name = "
                "'Curie'"),
            1);
  const int64_t deal = Sql("SELECT id FROM deals");
  EXPECT_EQ(Sql("SELECT count(*) FROM deal_contacts"), 1);
  auto leads = Call(api, "LeadService/ListLeads", nlohmann::json::object(), kReaderKey);
  EXPECT_FALSE(leads.contains("leads") && !leads["leads"].empty()) << leads.dump();

  Publish("simple:2", "", "marie@example.com");
  nlohmann::json activities;
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        activities = Call(api, "ActivityService/ListActivities",
                          {{"owner_type", "OWNER_TYPE_DEAL"}, {"owner_id", deal}}, kReaderKey);
        return activities.contains("activities") && activities["activities"].size() == 2;
      },
      std::chrono::seconds(30)))
      << activities.dump();
  EXPECT_EQ(Sql("SELECT count(*) FROM deals"), 1);
  EXPECT_EQ(Sql("SELECT count(*) FROM contacts"), 1);
  EXPECT_EQ(Sql("SELECT count(*) FROM leads"), 0);
}

// Protects: the classic → simple switch converts every open lead once, resumably: crm-core is
// killed (SIGKILL) while the job runs, and the restarted process finishes it from last_lead_id
// with no lead converted twice and none left; a closed lead stays a lead.
TEST_F(DomainInboundE2eTest, ModeSwitchJobSurvivesAKillAndConvertsEachLeadOnce) {
  constexpr int kLeads = 3000;
  Exec(
      "INSERT INTO leads (title, first_name, last_name, source, origin_event_id) "
      "SELECT 'Lead ' || i, 'First' || i, CASE WHEN i % 2 = 0 THEN 'Last' ELSE '' END, "
      "'WEB_FORM', 'seed:' || i FROM generate_series(1, " +
      std::to_string(kLeads) +
      ") AS i;"
      "INSERT INTO lead_identities (kind, value, lead_id) "
      "SELECT 'PHONE', '+3361' || (2000000 + id), id FROM leads;"
      "INSERT INTO activities (type, owner_type, owner_id, subject) "
      "SELECT 'TASK', 'LEAD', id, 'Call back' FROM leads;"
      "INSERT INTO leads (title, status, source) VALUES ('Closed', 'JUNK', 'WEB_FORM');"
      "UPDATE crm_settings SET mode = 'SIMPLE';"
      "INSERT INTO mode_switch_jobs (to_mode) VALUES ('SIMPLE')");
  CrmCore core(database_.url(), broker_.bootstrap(), testing::UniqueName("m"),
               {{"CRM_MODE_SWITCH_BATCH", "1"}, {"CRM_MODE_SWITCH_POLL_MS", "100"}});
  ASSERT_TRUE(core.WaitReady()) << core.process().Log();
  ASSERT_TRUE(testing::WaitFor([&] { return Sql("SELECT done FROM mode_switch_jobs") >= 20; },
                               std::chrono::seconds(60)));
  const int64_t done_before_kill = Sql("SELECT done FROM mode_switch_jobs");
  ASSERT_TRUE(core.Restart()) << core.process().Log();  // SIGKILL mid-job, then start again
  ASSERT_LT(done_before_kill, kLeads - 500) << "the job was nearly done before the kill";
  ASSERT_TRUE(testing::WaitFor(
      [&] { return Sql("SELECT count(*) FROM mode_switch_jobs WHERE state = 'DONE'") == 1; },
      std::chrono::seconds(240)))
      << core.process().Log();
  EXPECT_EQ(Sql("SELECT done FROM mode_switch_jobs"), kLeads);
  EXPECT_EQ(Sql("SELECT total FROM mode_switch_jobs"), kLeads);
  EXPECT_EQ(Sql("SELECT count(*) FROM leads WHERE status = 'CONVERTED'"), kLeads);
  EXPECT_EQ(Sql("SELECT count(*) FROM contacts"), kLeads);
  EXPECT_EQ(Sql("SELECT count(*) FROM deals"), kLeads);
  EXPECT_EQ(Sql("SELECT count(DISTINCT lead_id) FROM deals"), kLeads);
  EXPECT_EQ(Sql("SELECT count(*) FROM conversions"), kLeads);
  EXPECT_EQ(Sql("SELECT count(*) FROM contact_identities"), kLeads);
  EXPECT_EQ(Sql("SELECT count(*) FROM activities WHERE owner_type = 'DEAL'"), kLeads);
  EXPECT_EQ(Sql("SELECT count(*) FROM contacts WHERE last_name = 'Unknown'"), kLeads / 2);
  EXPECT_EQ(Sql("SELECT count(*) FROM leads WHERE status = 'JUNK'"), 1);
}

}  // namespace
}  // namespace leadflow::e2e
