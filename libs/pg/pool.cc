#include "pg/pool.h"

#include <pqxx/pqxx>

namespace leadflow::pg {

Pool::Pool(std::string url, int size, std::vector<Statement> statements)
    : url_(std::move(url)), statements_(std::move(statements)), size_(size) {}

Pool::~Pool() = default;

std::unique_ptr<pqxx::connection> Pool::Open() {
  auto connection = std::make_unique<pqxx::connection>(url_);
  PrepareAll(*connection, statements_);
  return connection;
}

absl::Status Pool::Connect() {
  try {
    std::lock_guard lock(mutex_);
    while (idle_.size() < size_) {
      idle_.push_back(Open());
    }
    return absl::OkStatus();
  } catch (const std::exception& error) {
    return ToStatus(error);
  }
}

absl::Status Pool::With(const std::function<absl::Status(pqxx::connection&)>& body) {
  std::unique_ptr<pqxx::connection> connection;
  {
    std::unique_lock lock(mutex_);
    available_.wait(lock, [this] { return !idle_.empty(); });
    connection = std::move(idle_.back());
    idle_.pop_back();
  }
  absl::Status status;
  try {
    if (!connection || !connection->is_open()) {
      connection = Open();
    }
    status = body(*connection);
  } catch (const std::exception& error) {
    status = ToStatus(error);
  }
  if (status.code() == absl::StatusCode::kUnavailable) {
    connection.reset();  // reopened on its next use
  }
  {
    std::lock_guard lock(mutex_);
    idle_.push_back(std::move(connection));
  }
  available_.notify_one();
  return status;
}

}  // namespace leadflow::pg
