#include "crm-core/api/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <spdlog/spdlog.h>

#include <fstream>

#include "absl/strings/str_cat.h"

#include "crm-core/api/common/call_metrics.h"
#include "crm-core/store/deal_repository.h"
#include "crm-core/store/statements.h"

namespace leadflow::crm {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file.is_open()) {
    return absl::FailedPreconditionError("cannot open " + path);
  }
  std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  if (text.empty()) {
    return absl::FailedPreconditionError(path + " is empty");
  }
  return text;
}

// Plaintext without a certificate; TLS (mutual with a client CA) with one.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(
    const ApiOptions& settings) {
  if (settings.tls_cert_file.empty()) {
    return grpc::InsecureServerCredentials();
  }
  auto certificate = ReadFile(settings.tls_cert_file);
  auto key = ReadFile(settings.tls_key_file);
  if (!certificate.ok()) {
    return certificate.status();
  }
  if (!key.ok()) {
    return key.status();
  }
  grpc::SslServerCredentialsOptions options(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  options.pem_key_cert_pairs.push_back({.private_key = *key, .cert_chain = *certificate});
  if (!settings.tls_client_ca_file.empty()) {
    auto client_ca = ReadFile(settings.tls_client_ca_file);
    if (!client_ca.ok()) {
      return client_ca.status();
    }
    options.pem_root_certs = *client_ca;
    options.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(options);
}

}  // namespace

absl::StatusOr<std::unique_ptr<ApiServer>> ApiServer::Start(ApiOptions options,
                                                            metrics::Registry& registry) {
  std::unique_ptr<ApiServer> api(new ApiServer());
  api->options_ = std::move(options);
  const ApiOptions& settings = api->options_;
  auto credentials = ServerCredentials(settings);
  if (!credentials.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("gRPC TLS: ", credentials.status().message()));
  }
  api->pool_ = std::make_unique<pg::Pool>(
      settings.database_url, settings.database_pool_size, Statements(),
      pg::PoolOptions{.acquire_timeout = settings.database_acquire_timeout,
                      .statement_timeout = settings.database_statement_timeout});
  pg::Pool* pool = api->pool_.get();
  registry.AddCallbackGauge("crm_api_pool_acquire_timeouts",
                            "API calls that gave up waiting for a database connection (since "
                            "start; CRM_DATABASE_ACQUIRE_TIMEOUT_MS)",
                            [pool] { return static_cast<double>(pool->acquire_timeouts()); });
  registry.AddCallbackGauge("crm_api_pool_waiting",
                            "API calls waiting for a database connection now",
                            [pool] { return static_cast<double>(pool->waiting()); });
  if (absl::Status status = pool->Connect(); !status.ok()) {
    return absl::Status(status.code(), absl::StrCat("database: ", status.message()));
  }
  std::string page_token_key = settings.page_token_key;
  if (page_token_key.empty()) {
    absl::Status read = pool->With([&](pqxx::connection& connection) {
      pqxx::read_transaction work(connection);
      page_token_key = SettingsRepository(work).PageTokenKey();
      return absl::OkStatus();
    });
    if (!read.ok()) {
      return absl::Status(read.code(), absl::StrCat("page token key: ", read.message()));
    }
    if (page_token_key.empty()) {
      return absl::FailedPreconditionError(
          "page token key: none in the database (run crm-core migrate) and CRM_PAGE_TOKEN_KEY "
          "unset");
    }
  }
  // As many workers as connections: a call waits in the executor's queue, not for the pool.
  api->executor_ = std::make_unique<Executor>(settings.database_pool_size, settings.queue_max);
  Executor* executor = api->executor_.get();
  registry.AddCallbackGauge("crm_api_queue_length", "API calls queued for a worker",
                            [executor] { return static_cast<double>(executor->queued()); });
  registry.AddCallbackGauge("crm_api_queue_rejected",
                            "API calls refused because the queue was full (since start)",
                            [executor] { return static_cast<double>(executor->rejected()); });
  auto& summarised = registry.AddCounter(
      "crm_merge_links_summarised_total",
      "Merges that moved more links than the kept record's timeline lists one by one (1000); the "
      "rest are counted in one summary entry. By entity kind: CONTACT, COMPANY, LEAD",
      {"kind"});
  for (const char* kind : {"CONTACT", "COMPANY", "LEAD"}) {
    summarised.WithLabels({kind});  // present at 0 from the start
  }
  api->backend_ = std::make_unique<ApiBackend>(ApiBackend{
      .keys = settings.keys,
      .executor = *executor,
      .pool = *pool,
      .max_record_identities = settings.max_record_identities,
      .page_token_key = page_token_key,
      .fold_recordings_dropped = &registry
                                      .AddCounter("crm_call_back_fold_recordings_dropped_total",
                                                  "Recordings a merge or a lead conversion left "
                                                  "out when it folded a call-back into the kept "
                                                  "record's (20 kept per call-back)")
                                      .WithLabels({}),
      .merges_links_summarised = &summarised});
  api->leads_ = std::make_unique<LeadApi>(*api->backend_, settings.default_region);
  api->activities_ = std::make_unique<ActivityApi>(*api->backend_);
  api->users_ = std::make_unique<UserApi>(*api->backend_);
  api->statuses_ = std::make_unique<StatusApi>(*api->backend_);
  // The deal side.
  api->pipelines_ = std::make_unique<PipelineApi>(*api->backend_);
  api->deals_ = std::make_unique<DealApi>(*api->backend_);
  api->settings_ = std::make_unique<SettingsApi>(*api->backend_);
  // Contacts, companies, history, search.
  api->contacts_ = std::make_unique<ContactApi>(*api->backend_, settings.default_region);
  api->companies_ = std::make_unique<CompanyApi>(*api->backend_, settings.default_region);
  api->history_ = std::make_unique<HistoryApi>(*api->backend_);
  api->search_ = std::make_unique<SearchApi>(*api->backend_, settings.default_region);
  api->calls_ = std::make_unique<CallApi>(*api->backend_);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int bound_port = 0;
  builder.AddListeningPort(settings.grpc_address, *credentials, &bound_port);
  builder.RegisterService(api->leads_.get());
  builder.RegisterService(api->activities_.get());
  builder.RegisterService(api->users_.get());
  builder.RegisterService(api->statuses_.get());
  // The deal side.
  builder.RegisterService(api->pipelines_.get());
  builder.RegisterService(api->deals_.get());
  builder.RegisterService(api->settings_.get());
  // Contacts, companies, history, search.
  builder.RegisterService(api->contacts_.get());
  builder.RegisterService(api->companies_.get());
  builder.RegisterService(api->history_.get());
  builder.RegisterService(api->search_.get());
  builder.RegisterService(api->calls_.get());
  // Every call answered, by method and code, counted where every call passes (call_metrics.h).
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<CallMetricsFactory>(
      registry,
      std::vector<std::string>{
          v1::LeadService::service_full_name(), v1::ActivityService::service_full_name(),
          v1::UserService::service_full_name(), v1::StatusService::service_full_name(),
          v1::PipelineService::service_full_name(), v1::DealService::service_full_name(),
          v1::SettingsService::service_full_name(), v1::ContactService::service_full_name(),
          v1::CompanyService::service_full_name(), v1::HistoryService::service_full_name(),
          v1::SearchService::service_full_name(), v1::CallService::service_full_name()}));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  api->server_ = builder.BuildAndStart();
  if (!api->server_ || bound_port == 0) {
    executor->Stop();
    return absl::UnavailableError(absl::StrCat("gRPC: cannot listen on ", settings.grpc_address));
  }
  api->port_ = bound_port;
  spdlog::info("gRPC API on {} ({})", settings.grpc_address,
               settings.tls_cert_file.empty()        ? "plaintext"
               : settings.tls_client_ca_file.empty() ? "TLS"
                                                     : "mutual TLS");
  return api;
}

ApiServer::~ApiServer() { Shutdown(); }

void ApiServer::Shutdown() {
  if (server_) {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    server_.reset();
  }
  // Every call has finished: join the workers. Stop, not destroy: /metrics reads the executor
  // and the pool through the callback gauges until the end.
  if (executor_) {
    executor_->Stop();
  }
}

}  // namespace leadflow::crm
