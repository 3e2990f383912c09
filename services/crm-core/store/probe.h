#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include <pqxx/connection>

#include "absl/status/status.h"

namespace leadflow::crm {

/// Readiness of the database for /readyz, on a connection of its own: a probe never queues
/// behind the API's pool (which slow calls may hold), and every step is bounded by `timeout`
/// (connecting, the query, and waiting for a probe already running).
class DatabaseProbe {
 public:
  DatabaseProbe(std::string database_url, std::chrono::milliseconds timeout);
  ~DatabaseProbe();

  absl::Status Check();

 private:
  std::string url_;
  std::chrono::milliseconds timeout_;
  std::timed_mutex mutex_;
  std::unique_ptr<pqxx::connection> connection_;
};

}  // namespace leadflow::crm
