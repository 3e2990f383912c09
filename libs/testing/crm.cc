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
  history_stub_ = api_->Stub<crm::v1::HistoryService>();
}

std::unique_ptr<grpc::ClientContext> CrmApiTest::Context() {
  return CallContext(kAdminKey, std::chrono::seconds(30));
}

crm::v1::Contact CrmApiTest::MakeContact(const std::string& full_name,
                                         const std::vector<std::string>& phones,
                                         const std::vector<std::string>& emails) {
  crm::v1::CreateContactRequest request;
  request.mutable_contact()->set_full_name(full_name);
  for (const std::string& phone : phones) request.mutable_contact()->add_phones(phone);
  for (const std::string& email : emails) request.mutable_contact()->add_emails(email);
  crm::v1::CreateContactResponse response;
  grpc::Status status = contact_stub_->CreateContact(Context().get(), request, &response);
  EXPECT_TRUE(status.ok()) << "CreateContact " << full_name << ": " << status.error_message();
  return response.contact();
}

crm::v1::Company CrmApiTest::MakeCompany(const std::string& name,
                                         const std::vector<std::string>& phones,
                                         const std::vector<std::string>& emails) {
  crm::v1::CreateCompanyRequest request;
  request.mutable_company()->set_name(name);
  for (const std::string& phone : phones) request.mutable_company()->add_phones(phone);
  for (const std::string& email : emails) request.mutable_company()->add_emails(email);
  crm::v1::CreateCompanyResponse response;
  grpc::Status status = company_stub_->CreateCompany(Context().get(), request, &response);
  EXPECT_TRUE(status.ok()) << "CreateCompany " << name << ": " << status.error_message();
  return response.company();
}

crm::v1::Lead CrmApiTest::MakeLead(const std::string& first, const std::string& last,
                                   const std::vector<std::string>& phones,
                                   const std::vector<std::string>& emails,
                                   const std::string& company) {
  crm::v1::CreateLeadRequest request;
  request.mutable_lead()->set_title(absl::StrCat(first, " ", last));
  request.mutable_lead()->set_first_name(first);
  request.mutable_lead()->set_last_name(last);
  request.mutable_lead()->set_company_name(company);
  for (const std::string& phone : phones) request.mutable_lead()->add_phones(phone);
  for (const std::string& email : emails) request.mutable_lead()->add_emails(email);
  crm::v1::Lead lead;
  grpc::Status status = lead_stub_->CreateLead(Context().get(), request, &lead);
  EXPECT_TRUE(status.ok()) << "CreateLead " << first << " " << last << ": "
                           << status.error_message();
  return lead;
}

crm::v1::Deal CrmApiTest::MakeDeal(const std::string& title,
                                   const std::vector<int64_t>& contact_ids, int64_t company_id) {
  crm::v1::CreateDealRequest request;
  request.mutable_deal()->set_title(title);
  for (int64_t id : contact_ids) request.add_contact_ids(id);
  request.set_company_id(company_id);
  crm::v1::Deal deal;
  grpc::Status status = deal_stub_->CreateDeal(Context().get(), request, &deal);
  EXPECT_TRUE(status.ok()) << "CreateDeal " << title << ": " << status.error_message();
  return deal;
}

int64_t CrmApiTest::SeedUser(const std::string& name) {
  pqxx::connection connection(api_->database_url());
  pqxx::work work(connection);
  const int64_t id =
      work.exec_params("INSERT INTO users (name) VALUES ($1) RETURNING id", name)[0][0]
          .as<int64_t>();
  work.commit();
  return id;
}

std::vector<crm::v1::HistoryEntry> CrmApiTest::History(crm::v1::OwnerType type, int64_t id) {
  crm::v1::ListHistoryRequest request;
  request.mutable_entity()->set_type(type);
  request.mutable_entity()->set_id(id);
  request.set_page_size(1000);
  crm::v1::ListHistoryResponse response;
  grpc::Status status = history_stub_->ListHistory(Context().get(), request, &response);
  EXPECT_TRUE(status.ok()) << "ListHistory: " << status.error_message();
  return {response.entries().begin(), response.entries().end()};
}

}  // namespace leadflow::testing
