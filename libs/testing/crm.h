#pragma once

// crm-core in this process, for its integration tests: a fresh database with crm-core's schema,
// and the gRPC API crm-core itself runs (crm::ApiServer: the database pool, the executor, every
// service) over one, on a loopback port, with a channel to it.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "crm-core/api/common/auth.h"
#include "crm-core/api/server.h"
#include "crm-core/inbound/batch.h"
#include "kafka/producer.h"
#include "kafka/types.h"
#include "leadflow/crm/v1/activity.grpc.pb.h"
#include "leadflow/crm/v1/company.grpc.pb.h"
#include "leadflow/crm/v1/contact.grpc.pb.h"
#include "leadflow/crm/v1/deal.grpc.pb.h"
#include "leadflow/crm/v1/history.grpc.pb.h"
#include "leadflow/crm/v1/lead.grpc.pb.h"
#include "leadflow/crm/v1/pipeline.grpc.pb.h"
#include "leadflow/crm/v1/search.grpc.pb.h"
#include "leadflow/crm/v1/settings.grpc.pb.h"
#include "leadflow/crm/v1/status.grpc.pb.h"
#include "metrics/metrics.h"
#include "testing/testing.h"

namespace leadflow::testing {

/// A fresh database (TempDatabase) with crm-core's migrations applied, and one-statement helpers
/// over it, each on its own connection and committed.
class CrmDatabase {
 public:
  /// Throws std::runtime_error when the migrations fail (GoogleTest reports it as the failure).
  CrmDatabase();
  const std::string& url() const { return database_.url(); }
  const std::string& name() const { return database_.name(); }
  void Exec(const std::string& sql) const;
  /// The first column of the one row `sql` returns, NULL as 0 (it may write: INSERT …
  /// RETURNING id).
  int64_t Scalar(const std::string& sql) const;
  /// The same, as text.
  std::string Text(const std::string& sql) const;

 private:
  TempDatabase database_;
};

struct CrmApiOptions {
  std::map<std::string, crm::Role> keys;  // API key → role
  int pool_size = 8;                      // connections, and as many workers
  size_t queue_max = 256;                 // calls waiting for a worker
  std::chrono::milliseconds acquire_timeout{5000};
  std::chrono::milliseconds statement_timeout{30000};
  std::string default_region = "FR";
};

class CrmApi {
 public:
  /// Migrates a fresh database and starts the server; throws std::runtime_error saying what
  /// failed (GoogleTest reports it as the test's failure).
  explicit CrmApi(CrmApiOptions options);
  ~CrmApi();  // finishes the calls in flight, then drops the database

  const CrmDatabase& database() const { return database_; }
  const std::string& database_url() const { return database_.url(); }
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }
  /// A stub of `Service` (e.g. v1::LeadService) over the channel.
  template <class Service>
  std::unique_ptr<typename Service::Stub> Stub() const {
    return Service::NewStub(channel_);
  }

  void Exec(const std::string& sql) const { database_.Exec(sql); }
  int64_t Scalar(const std::string& sql) const { return database_.Scalar(sql); }
  std::string Text(const std::string& sql) const { return database_.Text(sql); }
  /// The server's metrics (the API's counters and gauges).
  metrics::Registry& registry() { return registry_; }
  /// The server's metrics, as /metrics renders them.
  std::string Metrics() const { return registry_.Render(); }

 private:
  CrmDatabase database_;
  metrics::Registry registry_;
  std::unique_ptr<crm::ApiServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

/// crm-core's inbound path over a database, as its consumer runs it once a batch is polled:
/// batch processors dead-lettering to a mock Kafka cluster (the real protocol) of their own,
/// with their counters in a registry of their own.
class CrmInbound {
 public:
  /// Throws std::runtime_error when the dead-letter producer cannot be made.
  explicit CrmInbound(std::string database_url);
  ~CrmInbound();

  /// A processor of its own (another consumer), counting into counters().
  std::unique_ptr<crm::BatchProcessor> MakeProcessor(crm::BatchProcessorOptions options = {});
  crm::InboundCounters& counters() { return counters_; }
  metrics::Registry& registry() { return registry_; }

 private:
  std::string database_url_;
  MockKafka kafka_;
  std::unique_ptr<kafka::Producer> producer_;
  metrics::Registry registry_;
  crm::InboundCounters counters_{registry_};
};

/// Two consumers racing: `first_events` through `first` and `second_events` through `second` at
/// the same time, each on its own thread in batches of `batch_size`. Deadlocks between them are
/// expected (PostgreSQL aborts one): a batch is retried up to 20 times, and one never applied is
/// a test failure.
void RaceBatches(crm::BatchProcessor& first, const std::vector<kafka::Message>& first_events,
                 crm::BatchProcessor& second, const std::vector<kafka::Message>& second_events,
                 size_t batch_size);

/// A client context with `authorization: Bearer <key>`, a deadline `deadline` from now, and the
/// acting user (x-leadflow-user-id) when `user_id` is not 0.
std::unique_ptr<grpc::ClientContext> CallContext(const std::string& key,
                                                 std::chrono::milliseconds deadline,
                                                 int64_t user_id = 0);

/// A refusal's message without the " (request id …)" the server appends to it, for a test that
/// compares a message whole.
std::string StatusMessage(const grpc::Status& status);

/// The fixture of a migration's upgrade test: a fresh database with crm-core's migrations up to
/// and including `before` (the newest one before the migration under test), so that the test
/// writes rows as that release wrote them; Migrate() then applies the rest as `crm-core migrate`
/// does.
class CrmUpgradeTest : public ::testing::Test {
 protected:
  explicit CrmUpgradeTest(int before) : before_(before) {}

  void SetUp() override;
  /// Applies every migration left; a failure fails the test.
  void Migrate();

  TempDatabase database_;

 private:
  const int before_;
};

/// The fixture crm-core's API tests share: the API over a fresh database (CrmApi) with one admin
/// key, a stub of each CRM service, a context for a call, one-statement SQL helpers, and the
/// records a test's setup makes over the API.
class CrmApiTest : public ::testing::Test {
 protected:
  static constexpr char kAdminKey[] = "test-admin-key-0123456789";

  void SetUp() override;

  /// Admin's key, a 30 s deadline, no acting user.
  static std::unique_ptr<grpc::ClientContext> Context();

  void Exec(const std::string& sql) { api_->Exec(sql); }
  int64_t Count(const std::string& sql) { return api_->Scalar(sql); }
  std::string Text(const std::string& sql) { return api_->Text(sql); }

  // Setup over the API, as a manager makes these records: each call is expected to succeed (a
  // refusal fails the test, EXPECT, and the answer is then empty: id 0).

  /// CreateContact of `full_name` (split as the service splits it), with `phones` and `emails`.
  crm::v1::Contact MakeContact(const std::string& full_name,
                               const std::vector<std::string>& phones = {},
                               const std::vector<std::string>& emails = {});
  /// CreateCompany of `name`, with `phones` and `emails`.
  crm::v1::Company MakeCompany(const std::string& name, const std::vector<std::string>& phones = {},
                               const std::vector<std::string>& emails = {});
  /// CreateLead titled "<first> <last>", with `phones`, `emails` and `company` as company_name.
  crm::v1::Lead MakeLead(const std::string& first, const std::string& last,
                         const std::vector<std::string>& phones,
                         const std::vector<std::string>& emails = {},
                         const std::string& company = "");
  /// CreateDeal titled `title` (the pipeline and stage CreateDeal defaults to), linked to
  /// `contact_ids` and `company_id` (0: none).
  crm::v1::Deal MakeDeal(const std::string& title, const std::vector<int64_t>& contact_ids = {},
                         int64_t company_id = 0);
  /// An active user written to the users table (no email), for a test that needs someone to
  /// assign or to act: its id.
  int64_t SeedUser(const std::string& name);
  /// The record's timeline as ListHistory answers it, newest first (one page of up to 1000).
  std::vector<crm::v1::HistoryEntry> History(crm::v1::OwnerType type, int64_t id);

  std::unique_ptr<CrmApi> api_;
  std::unique_ptr<crm::v1::LeadService::Stub> lead_stub_;
  std::unique_ptr<crm::v1::StatusService::Stub> status_stub_;
  std::unique_ptr<crm::v1::SettingsService::Stub> settings_stub_;
  std::unique_ptr<crm::v1::ActivityService::Stub> activity_stub_;
  std::unique_ptr<crm::v1::DealService::Stub> deal_stub_;
  std::unique_ptr<crm::v1::ContactService::Stub> contact_stub_;
  std::unique_ptr<crm::v1::CompanyService::Stub> company_stub_;
  std::unique_ptr<crm::v1::PipelineService::Stub> pipeline_stub_;
  std::unique_ptr<crm::v1::SearchService::Stub> search_stub_;
  std::unique_ptr<crm::v1::HistoryService::Stub> history_stub_;
};

}  // namespace leadflow::testing
