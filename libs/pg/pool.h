#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "pg/pg.h"

namespace leadflow::pg {

/// A fixed set of connections with every statement prepared, handed out one caller at a time.
/// A connection found broken is replaced on its next use.
class Pool {
 public:
  Pool(std::string url, int size, std::vector<Statement> statements);
  ~Pool();

  /// Opens every connection now: start-up fails fast when the database is unreachable.
  absl::Status Connect();

  /// Runs `body` with a connection; exceptions from libpqxx become statuses (see ToStatus).
  absl::Status With(const std::function<absl::Status(pqxx::connection&)>& body);

 private:
  std::unique_ptr<pqxx::connection> Open();

  std::string url_;
  std::vector<Statement> statements_;
  size_t size_;
  std::mutex mutex_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_;
};

}  // namespace leadflow::pg
