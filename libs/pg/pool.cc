#include "pg/pool.h"

#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"

namespace leadflow::pg {
namespace {

std::string Millis(std::chrono::milliseconds value) { return std::to_string(value.count()); }

}  // namespace

Pool::Pool(std::string url, int size, std::vector<Statement> statements, PoolOptions options)
    : url_(std::move(url)), statements_(std::move(statements)), size_(size), options_(options) {}

Pool::~Pool() = default;

std::unique_ptr<pqxx::connection> Pool::Open() {
  auto connection = std::make_unique<pqxx::connection>(url_);
  if (options_.statement_timeout.count() > 0) {
    connection->set_variable("statement_timeout", Millis(options_.statement_timeout));
  }
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
  return With(body, Deadline::max());
}

absl::Status Pool::With(const std::function<absl::Status(pqxx::connection&)>& body,
                        Deadline deadline) {
  const Deadline own_limit = std::chrono::steady_clock::now() + options_.acquire_timeout;
  const Deadline limit = std::min(deadline, own_limit);
  std::unique_ptr<pqxx::connection> connection;
  {
    std::unique_lock lock(mutex_);
    waiting_.fetch_add(1, std::memory_order_relaxed);
    bool got = available_.wait_until(lock, limit, [this] { return !idle_.empty(); });
    waiting_.fetch_sub(1, std::memory_order_relaxed);
    if (!got) {
      acquire_timeouts_.fetch_add(1, std::memory_order_relaxed);
      if (deadline <= own_limit) {
        return absl::DeadlineExceededError("deadline passed waiting for a database connection");
      }
      return absl::UnavailableError(absl::StrCat("no database connection free within ",
                                                 options_.acquire_timeout.count(), " ms"));
    }
    connection = std::move(idle_.back());
    idle_.pop_back();
  }
  absl::Status status;
  bool shortened = false;
  try {
    if (!connection || !connection->is_open()) {
      connection = Open();
    }
    // The caller's deadline is sooner than the usual statement_timeout: cut statements there.
    if (deadline != Deadline::max()) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        status = absl::DeadlineExceededError("deadline passed before the query started");
      } else if (options_.statement_timeout.count() == 0 || left < options_.statement_timeout) {
        connection->set_variable("statement_timeout", Millis(left));
        shortened = true;
      }
    }
    if (status.ok()) {
      status = body(*connection);
    }
    if (shortened) {
      connection->set_variable("statement_timeout", Millis(options_.statement_timeout));
    }
  } catch (const std::exception& error) {
    status = ToStatus(error);
    if (shortened && connection && connection->is_open()) {
      try {
        connection->set_variable("statement_timeout", Millis(options_.statement_timeout));
      } catch (const std::exception&) {
        connection.reset();  // in an unknown state: reopened on its next use
      }
    }
  }
  if (connection && (!connection->is_open() || (status.code() == absl::StatusCode::kUnavailable &&
                                                SqlState(status).value_or("").empty()))) {
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
