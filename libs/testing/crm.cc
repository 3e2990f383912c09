#include "testing/crm.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <pqxx/pqxx>
#include <stdexcept>
#include <thread>

#include "absl/strings/str_cat.h"
#include "crm-core/store/migrations.h"
#include "pg/migrations.h"

namespace leadflow::testing {

CrmDatabase::CrmDatabase() {
  if (auto migrated = pg::ApplyMigrations(database_.url(), crm::Migrations()); !migrated.ok()) {
    throw std::runtime_error(absl::StrCat("migrations: ", migrated.status().ToString()));
  }
}

CrmApi::CrmApi(CrmApiOptions options) {
  auto server =
      crm::ApiServer::Start(crm::ApiOptions{.database_url = database_.url(),
                                            .database_pool_size = options.pool_size,
                                            .database_acquire_timeout = options.acquire_timeout,
                                            .database_statement_timeout = options.statement_timeout,
                                            .queue_max = options.queue_max,
                                            .grpc_address = "127.0.0.1:0",
                                            .keys = std::move(options.keys),
                                            .default_region = options.default_region},
                            registry_);
  if (!server.ok()) {
    throw std::runtime_error(absl::StrCat("crm-core API: ", server.status().ToString()));
  }
  server_ = std::move(*server);
  channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                 grpc::InsecureChannelCredentials());
}

CrmApi::~CrmApi() {
  if (server_) {
    server_->Shutdown();
  }
}

CrmInbound::CrmInbound(std::string database_url) : database_url_(std::move(database_url)) {
  kafka_.CreateTopic(kafka::kInboundDlqTopic, 1);
  auto producer = kafka::Producer::Create({.brokers = kafka_.bootstrap()});
  if (!producer.ok()) {
    throw std::runtime_error(absl::StrCat("dead-letter producer: ", producer.status().ToString()));
  }
  producer_ = std::move(*producer);
}

CrmInbound::~CrmInbound() = default;

std::unique_ptr<crm::BatchProcessor> CrmInbound::MakeProcessor(crm::BatchProcessorOptions options) {
  return std::make_unique<crm::BatchProcessor>(std::move(options), database_url_, nullptr,
                                               *producer_, counters_);
}

void CrmDatabase::Exec(const std::string& sql) const {
  pqxx::connection connection(database_.url());
  pqxx::work work(connection);
  work.exec0(sql);
  work.commit();
}

int64_t CrmDatabase::Scalar(const std::string& sql) const {
  pqxx::connection connection(database_.url());
  pqxx::work work(connection);
  int64_t value = work.exec1(sql)[0].as<int64_t>(0);
  work.commit();
  return value;
}

std::string CrmDatabase::Text(const std::string& sql) const {
  pqxx::connection connection(database_.url());
  pqxx::work work(connection);
  std::string value = work.exec1(sql)[0].as<std::string>();
  work.commit();
  return value;
}

void RaceBatches(crm::BatchProcessor& first, const std::vector<kafka::Message>& first_events,
                 crm::BatchProcessor& second, const std::vector<kafka::Message>& second_events,
                 size_t batch_size) {
  auto run = [batch_size](crm::BatchProcessor& processor,
                          const std::vector<kafka::Message>& events) {
    for (size_t i = 0; i < events.size(); i += batch_size) {
      std::vector<kafka::Message> batch(events.begin() + i,
                                        events.begin() + std::min(events.size(), i + batch_size));
      bool applied = false;
      for (int attempt = 0; attempt < 20 && !applied; ++attempt) {
        applied = processor.Process(batch).ok();
      }
      EXPECT_TRUE(applied) << "batch at " << i;
    }
  };
  std::thread one([&] { run(first, first_events); });
  std::thread two([&] { run(second, second_events); });
  one.join();
  two.join();
}

std::unique_ptr<grpc::ClientContext> CallContext(const std::string& key,
                                                 std::chrono::milliseconds deadline,
                                                 int64_t user_id) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->AddMetadata("authorization", absl::StrCat("Bearer ", key));
  if (user_id != 0) {
    context->AddMetadata("x-leadflow-user-id", std::to_string(user_id));
  }
  context->set_deadline(std::chrono::system_clock::now() + deadline);
  return context;
}

std::string StatusMessage(const grpc::Status& status) {
  const std::string& message = status.error_message();
  return message.substr(0, message.rfind(" (request id "));
}

void CrmUpgradeTest::SetUp() {
  absl::StatusOr<int> before = pg::ApplyMigrations(database_.url(), crm::MigrationsUpTo(before_));
  ASSERT_TRUE(before.ok()) << before.status();
}

void CrmUpgradeTest::Migrate() {
  absl::StatusOr<pg::MigrationReport> report =
      pg::ApplyMigrations(database_.url(), crm::Migrations(), pg::MigrationOptions{});
  ASSERT_TRUE(report.ok()) << report.status();
}

void CrmApiTest::SetUp() {
  api_ = std::make_unique<CrmApi>(CrmApiOptions{.keys = {{kAdminKey, crm::Role::kAdmin}}});
  lead_stub_ = api_->Stub<crm::v1::LeadService>();
  status_stub_ = api_->Stub<crm::v1::StatusService>();
  settings_stub_ = api_->Stub<crm::v1::SettingsService>();
  activity_stub_ = api_->Stub<crm::v1::ActivityService>();
  deal_stub_ = api_->Stub<crm::v1::DealService>();
  contact_stub_ = api_->Stub<crm::v1::ContactService>();
  company_stub_ = api_->Stub<crm::v1::CompanyService>();
  pipeline_stub_ = api_->Stub<crm::v1::PipelineService>();
  search_stub_ = api_->Stub<crm::v1::SearchService>();
}

std::unique_ptr<grpc::ClientContext> CrmApiTest::Context() {
  return CallContext(kAdminKey, std::chrono::seconds(30));
}

}  // namespace leadflow::testing
