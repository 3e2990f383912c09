// crm-core: consumes inbound events into CRM records and serves them over gRPC.
//   crm-core migrate   apply the schema and exit (a Kubernetes Job, or the local stack's start)
//   crm-core [serve]   run the roles of CRM_ROLES until SIGTERM
// Configuration: environment variables, listed by --help.

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <pqxx/pqxx>
#include <thread>

#include "crm-core/api.h"
#include "crm-core/batch_processor.h"
#include "crm-core/inbound_loop.h"
#include "crm-core/migrations.h"
#include "crm-core/probe.h"
#include "crm-core/settings.h"
#include "crm-core/statements.h"
#include "http/server.h"
#include "kafka/consumer.h"
#include "kafka/producer.h"
#include "metrics/metrics.h"
#include "pg/migrations.h"
#include "pg/pool.h"
#include "redis/client.h"

namespace leadflow::crm {
namespace {

int Migrate(const Settings& settings) {
  auto applied = pg::ApplyMigrations(settings.database_url, Migrations());
  if (!applied.ok()) {
    spdlog::error("migration failed: {}", applied.status().ToString());
    return 1;
  }
  spdlog::info("schema up to date ({} migrations applied now)", *applied);
  return 0;
}

// Start-up fails fast when the schema is missing or older than this binary.
absl::Status CheckSchema(const std::string& url) {
  try {
    pqxx::connection connection(url);
    pqxx::read_transaction work(connection);
    auto row = work.exec1("SELECT coalesce(max(version), 0) FROM schema_migrations");
    int newest = Migrations().back().version;
    if (row[0].as<int>() < newest) {
      return absl::FailedPreconditionError("schema is behind this binary: run 'crm-core migrate'");
    }
    return absl::OkStatus();
  } catch (const pqxx::undefined_table&) {
    return absl::FailedPreconditionError("no schema: run 'crm-core migrate'");
  } catch (const std::exception& error) {
    return pg::ToStatus(error);
  }
}

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
    const Settings& settings) {
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

int Serve(const Settings& settings) {
  // Signals are taken by sigwait below, never by a random thread.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  if (absl::Status status = CheckSchema(settings.database_url); !status.ok()) {
    spdlog::error("database: {}", status.ToString());
    return 1;
  }
  std::unique_ptr<redis::Client> redis;
  if (settings.redis_port != 0) {
    redis = std::make_unique<redis::Client>(
        redis::Options{.host = settings.redis_host, .port = settings.redis_port});
    if (auto pong = redis->Run({"PING"}); !pong.ok()) {
      // Redis is a fast path: without it correctness holds through PostgreSQL.
      spdlog::warn(
          "redis unreachable at start ({}); continuing without the fast path until it "
          "answers",
          pong.status().ToString());
    }
  }

  metrics::Registry registry;
  InboundCounters counters(registry);
  std::atomic<bool> stop{false};
  std::unique_ptr<kafka::Producer> dead_letters;
  std::unique_ptr<kafka::Consumer> consumer;
  std::unique_ptr<BatchProcessor> processor;
  std::thread consumer_thread;
  if (settings.run_consumer) {
    auto producer =
        kafka::Producer::Create({.brokers = settings.kafka_brokers, .client_id = "crm-core-dlq"});
    if (!producer.ok()) {
      spdlog::error("kafka: {}", producer.status().ToString());
      return 1;
    }
    dead_letters = std::move(*producer);
    if (absl::Status status = dead_letters->CheckConnected(std::chrono::seconds(10));
        !status.ok()) {
      spdlog::error("kafka: {}", status.ToString());
      return 1;
    }
    auto created = kafka::Consumer::Create({.brokers = settings.kafka_brokers,
                                            .group_id = settings.group_id,
                                            .topics = {kafka::kInboundTopic},
                                            .client_id = "crm-core",
                                            // Inbound traffic should show up within a second:
                                            // the broker answers a fetch after 100 ms at most.
                                            .extra = {{"fetch.wait.max.ms", "100"}}});
    if (!created.ok()) {
      spdlog::error("kafka: {}", created.status().ToString());
      return 1;
    }
    consumer = std::move(*created);
    processor = std::make_unique<BatchProcessor>(
        BatchProcessorOptions{.rules = settings.rules,
                              .redis_prefix = settings.redis_prefix,
                              .max_identity_locks = settings.batch_max_identity_locks,
                              .attempts_before_split = settings.batch_attempts_before_split},
        settings.database_url, redis.get(), *dead_letters, counters);
    InboundLoopOptions loop{.batch_max_events = settings.batch_max_events,
                            .batch_max_wait = settings.batch_max_wait};
    consumer_thread = std::thread([&, loop] { RunInboundLoop(*consumer, *processor, loop, stop); });
    spdlog::info("consuming {} as group {}", kafka::kInboundTopic, settings.group_id);
  }

  std::unique_ptr<pg::Pool> pool;
  std::unique_ptr<Executor> executor;
  std::unique_ptr<ApiBackend> backend;
  std::unique_ptr<LeadApi> leads;
  std::unique_ptr<ActivityApi> activities;
  std::unique_ptr<UserApi> users;
  std::unique_ptr<grpc::Server> server;
  if (settings.run_api) {
    pool = std::make_unique<pg::Pool>(
        settings.database_url, settings.database_pool_size, Statements(),
        pg::PoolOptions{.acquire_timeout = settings.database_acquire_timeout,
                        .statement_timeout = settings.database_statement_timeout});
    registry.AddCallbackGauge("crm_api_pool_acquire_timeouts",
                              "API calls that gave up waiting for a database connection (since "
                              "start; CRM_DATABASE_ACQUIRE_TIMEOUT_MS)",
                              [&pool] { return static_cast<double>(pool->acquire_timeouts()); });
    registry.AddCallbackGauge("crm_api_pool_waiting",
                              "API calls waiting for a database connection now",
                              [&pool] { return static_cast<double>(pool->waiting()); });
    if (absl::Status status = pool->Connect(); !status.ok()) {
      spdlog::error("database: {}", status.ToString());
      stop = true;
      if (consumer_thread.joinable()) {
        consumer_thread.join();
      }
      return 1;
    }
    // As many workers as connections: a call waits in the executor's queue, not for the pool.
    executor = std::make_unique<Executor>(settings.database_pool_size, settings.api_queue_max);
    registry.AddCallbackGauge("crm_api_queue_length", "API calls queued for a worker",
                              [&executor] { return static_cast<double>(executor->queued()); });
    registry.AddCallbackGauge("crm_api_queue_rejected",
                              "API calls refused because the queue was full (since start)",
                              [&executor] { return static_cast<double>(executor->rejected()); });
    backend = std::make_unique<ApiBackend>(
        ApiBackend{.keys = settings.api_keys, .executor = *executor, .pool = *pool});
    leads = std::make_unique<LeadApi>(*backend, settings.default_region);
    activities = std::make_unique<ActivityApi>(*backend);
    users = std::make_unique<UserApi>(*backend);
    auto credentials = ServerCredentials(settings);
    if (!credentials.ok()) {
      spdlog::error("gRPC TLS: {}", credentials.status().ToString());
      stop = true;
      if (consumer_thread.joinable()) {
        consumer_thread.join();
      }
      return 1;
    }
    grpc::EnableDefaultHealthCheckService(true);
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
    grpc::ServerBuilder builder;
    int bound_port = 0;
    builder.AddListeningPort(settings.grpc_address, *credentials, &bound_port);
    builder.RegisterService(leads.get());
    builder.RegisterService(activities.get());
    builder.RegisterService(users.get());
    server = builder.BuildAndStart();
    if (!server || bound_port == 0) {
      spdlog::error("gRPC: cannot listen on {}", settings.grpc_address);
      stop = true;
      if (consumer_thread.joinable()) {
        consumer_thread.join();
      }
      return 1;
    }
    spdlog::info("gRPC API on {} ({})", settings.grpc_address,
                 settings.tls_cert_file.empty()        ? "plaintext"
                 : settings.tls_client_ca_file.empty() ? "TLS"
                                                       : "mutual TLS");
  }

  // Operations HTTP: /healthz, /readyz (the database and Kafka answer), /metrics. Two threads,
  // and the database probe has its own connection with bounded waits: slow API calls holding
  // the pool never hold the probes.
  DatabaseProbe probe(settings.database_url, std::chrono::seconds(2));
  http::Server ops({.address = settings.http_address, .port = settings.http_port, .threads = 2},
                   &registry);
  ops.SetReadinessCheck([&]() -> absl::Status {
    if (absl::Status database = probe.Check(); !database.ok()) {
      return database;
    }
    if (dead_letters) {
      return dead_letters->CheckConnected(std::chrono::seconds(2));
    }
    return absl::OkStatus();
  });
  if (absl::Status status = ops.Start(); !status.ok()) {
    spdlog::error("operations HTTP: {}", status.ToString());
    stop = true;
    if (consumer_thread.joinable()) {
      consumer_thread.join();
    }
    return 1;
  }
  spdlog::info("operations HTTP on {}:{}", settings.http_address, ops.port());
  std::thread ops_thread([&] { ops.Run().IgnoreError(); });

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  spdlog::info("{}: shutting down", strsignal(signal_number));
  if (server) {
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    // Every call has finished: join the workers. Stop, not destroy: the executor and the pool
    // outlive the operations server (stopped below), whose /metrics reads them through the
    // callback gauges until then.
    executor->Stop();
  }
  stop = true;
  if (consumer_thread.joinable()) {
    consumer_thread.join();
  }
  ops.Stop();
  ops_thread.join();
  spdlog::info(
      "stopped: {} events applied, {} leads and {} activities created, {} duplicates "
      "skipped by the database",
      static_cast<int64_t>(counters.events_applied.Value()),
      static_cast<int64_t>(counters.leads_created.Value()),
      static_cast<int64_t>(counters.activities_created.Value()),
      static_cast<int64_t>(counters.duplicates_database.Value()));
  return 0;
}

}  // namespace
}  // namespace leadflow::crm

int main(int argc, char** argv) {
  using namespace leadflow;
  std::string command = "serve";
  for (int i = 1; i < argc; ++i) {
    if (argv[i][0] != '-') {
      command = argv[i];
    }
  }
  config::Reader reader("crm-core", "LeadFlow's CRM core. Commands: serve (default), migrate",
                        {"CRM_"});
  crm::Settings settings = crm::ReadSettings(reader, command);
  config::FinishOrExit(reader, argc, argv);
  log::Init("crm-core", settings.log);
  if (command == "migrate") {
    return crm::Migrate(settings);
  }
  if (command != "serve") {
    spdlog::error("unknown command '{}' (serve or migrate)", command);
    return 2;
  }
  return crm::Serve(settings);
}
