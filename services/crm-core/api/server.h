#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "crm-core/api/call_common.h"
#include "crm-core/api/common/auth.h"
#include "crm-core/api/common/executor.h"
#include "crm-core/api/deal_services.h"
#include "crm-core/api/people_services.h"
#include "crm-core/api/services.h"
#include "crm-core/domain/rules/rule_settings.h"
#include "metrics/metrics.h"
#include "pg/pool.h"

namespace leadflow::crm {

struct ApiOptions {
  std::string database_url;
  int database_pool_size = 8;
  std::chrono::milliseconds database_acquire_timeout{2000};
  std::chrono::milliseconds database_statement_timeout{5000};
  size_t queue_max = 256;
  std::string grpc_address;
  // TLS: off when the certificate is empty; mutual with a client CA.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
  std::map<std::string, Role> keys;
  // Page tokens' signing key (CRM_PAGE_TOKEN_KEY); empty: the one migration 0023 stored.
  std::string page_token_key;
  std::string default_region = "FR";
  // The identity cap a merge must respect (CRM_LEAD_MAX_INBOUND_IDENTITIES, RuleSettings).
  size_t max_record_identities = RuleSettings{}.max_inbound_identities;
};

/// The API role: the database pool, the executor, every gRPC service, and the server, with
/// their gauges in `registry`.
class ApiServer {
 public:
  /// Connects the pool and listens; an error says what failed (nothing is left running).
  static absl::StatusOr<std::unique_ptr<ApiServer>> Start(ApiOptions options,
                                                          metrics::Registry& registry);
  ~ApiServer();

  /// The port the server listens on (the one bound when the address asked for port 0).
  int port() const { return port_; }

  /// Finishes the calls in flight (bounded) and joins the workers. The pool and the executor
  /// stay readable by the registry's gauges until the object is destroyed.
  void Shutdown();

 private:
  ApiServer() = default;
  ApiOptions options_;
  int port_ = 0;
  std::unique_ptr<pg::Pool> pool_;
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<ApiBackend> backend_;
  std::unique_ptr<LeadApi> leads_;
  std::unique_ptr<ActivityApi> activities_;
  std::unique_ptr<UserApi> users_;
  std::unique_ptr<StatusApi> statuses_;
  // The deal side.
  std::unique_ptr<PipelineApi> pipelines_;
  std::unique_ptr<DealApi> deals_;
  std::unique_ptr<SettingsApi> settings_;
  // Contacts, companies, history, search.
  std::unique_ptr<ContactApi> contacts_;
  std::unique_ptr<CompanyApi> companies_;
  std::unique_ptr<HistoryApi> history_;
  std::unique_ptr<SearchApi> search_;
  std::unique_ptr<CallApi> calls_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace leadflow::crm
