#pragma once

// Starts the built binaries of LeadFlow for end-to-end tests, each on its own ports and database.

#include <map>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "testing/testing.h"

namespace leadflow::e2e {

inline const std::string kAdminKey = "e2e-admin-key-0123456789";
inline const std::string kReaderKey = "e2e-reader-key-0123456789";

using testing::DevBroker;

/// The built crm-core, and its test-only variants (see services/crm-core/CMakeLists.txt).
inline const std::string kCrmCoreBinary = "crm-core";

/// One crm-core process (both roles) against the given database and broker. `redis`: the Redis
/// to use (default: the test Redis, with a key prefix of its own).
class CrmCore {
 public:
  CrmCore(const std::string& database_url, const std::string& brokers, const std::string& group,
          std::map<std::string, std::string> extra_env = {},
          std::optional<redis::Options> redis = std::nullopt,
          const std::string& binary = kCrmCoreBinary);
  /// Waits until the gRPC API answers and the consumer has partitions; false at once when the
  /// process has died.
  bool WaitReady();
  /// SIGKILL if still running, then starts again with the same settings (database, group, Redis
  /// prefix) on new ports, and waits until ready: the old ports may have been taken while it was
  /// down. A start that dies (a new port taken in between) is tried again on other ports, three
  /// starts at most. False when none became ready.
  bool Restart();
  const std::string& grpc_address() const { return grpc_address_; }
  int http_port() const { return http_port_; }
  testing::Process& process() { return *process_; }

 private:
  void Start();
  void PickPorts();

  std::vector<std::string> argv_;
  std::map<std::string, std::string> env_;
  std::unique_ptr<testing::Process> process_;
  std::string grpc_address_;
  int http_port_ = 0;
};

/// One webform-ingest process publishing to the broker, rate limit off unless asked. `redis`:
/// the Redis to use (default: the test Redis, with a key prefix of its own). This is the one
/// place that knows webform-ingest's variable names.
class WebformIngest {
 public:
  explicit WebformIngest(const std::string& brokers,
                         std::map<std::string, std::string> extra_env = {},
                         std::optional<redis::Options> redis = std::nullopt);
  /// Waits until /readyz (on the operations port) answers 200; false at once when the process
  /// has died.
  bool WaitReady();
  /// SIGKILL if still running, then starts again with the same settings on new ports (read
  /// port() again), and waits until ready: the old ports may have been taken while it was down.
  /// A start that dies (a new port taken in between) is tried again on other ports, three starts
  /// at most. False when none became ready.
  bool Restart();
  /// The public port: the form API only.
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  /// The operations port: /healthz, /readyz, /metrics.
  std::string ops_url() const { return "http://127.0.0.1:" + std::to_string(ops_port_); }
  testing::Process& process() { return *process_; }

 private:
  void Start();
  void PickPorts();

  std::map<std::string, std::string> env_;
  std::unique_ptr<testing::Process> process_;
  int port_ = 0;
  int ops_port_ = 0;
};

/// Applies crm-core's migrations to the database with the crm-core binary; true on success.
bool Migrate(const std::string& database_url);

/// Calls crm-core with the crmctl binary (a real gRPC client). Returns the JSON answer, or
/// {"code": N} with the gRPC status code when the call failed.
nlohmann::json Call(const std::string& address, const std::string& method,
                    const nlohmann::json& request, const std::string& key = kAdminKey);

/// Counts with one SQL statement on the database.
int64_t Count(const std::string& database_url, const std::string& sql);

}  // namespace leadflow::e2e
