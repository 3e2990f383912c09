#include "crm-core/api/common/call.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <iterator>
#include <optional>
#include <random>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "crm-core/api/common/errors.h"
#include "crm-core/store/history_repository.h"
#include "crm-core/store/repositories.h"

namespace leadflow::crm {
namespace {

// A short id for one call, returned to the caller (message and "request-id" trailer) and
// written with the call's failure in the log.
std::string NewRequestId() {
  thread_local std::mt19937_64 random(std::random_device{}());
  return absl::StrFormat("%016x", random());
}

std::chrono::steady_clock::time_point SteadyDeadline(grpc::CallbackServerContext* context) {
  const auto deadline = context->deadline();
  const auto now = std::chrono::system_clock::now();
  if (deadline >= now + std::chrono::hours(24)) {
    return std::chrono::steady_clock::time_point::max();  // no deadline set
  }
  return std::chrono::steady_clock::now() +
         std::chrono::duration_cast<std::chrono::steady_clock::duration>(deadline - now);
}

// A transaction PostgreSQL aborted because of a concurrent one (deadlock 40P01, serialization
// failure 40001): run it again here; ABORTED means "stale etag" to callers.
constexpr int kConflictAttempts = 4;

// Every "authorization" value of the call: Authorize refuses more than one.
std::vector<std::string_view> AuthorizationOf(grpc::CallbackServerContext* context) {
  std::vector<std::string_view> values;
  auto [begin, end] = context->client_metadata().equal_range("authorization");
  for (auto it = begin; it != end; ++it) {
    values.emplace_back(it->second.data(), it->second.size());
  }
  return values;
}

// The x-leadflow-user-id metadata: 0 when absent; INVALID_ARGUMENT when it is not one positive
// id (two values would leave "who" a guess).
absl::StatusOr<int64_t> ActingUserOf(grpc::CallbackServerContext* context) {
  auto [begin, end] = context->client_metadata().equal_range(kActingUserMetadata);
  if (begin == end) {
    return 0;
  }
  if (std::next(begin) != end) {
    return absl::InvalidArgumentError(
        absl::StrCat(kActingUserMetadata, " metadata: send one value, not several"));
  }
  int64_t id = 0;
  if (!absl::SimpleAtoi(absl::string_view(begin->second.data(), begin->second.size()), &id) ||
      id <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(kActingUserMetadata, " metadata must be a user id"));
  }
  return id;
}

// The acting user held on the call's connection from before the check until the body is done
// (UserRepository::HoldActingUser): a deactivation committed after the check waits for the body's
// transactions instead of letting them write for a user who is no longer active.
class ActingUserHold {
 public:
  ActingUserHold(pqxx::connection& connection, int64_t user_id)
      : connection_(connection), user_id_(user_id) {
    pqxx::nontransaction work(connection_);
    UserRepository(work).HoldActingUser(user_id_);
  }
  ~ActingUserHold() {
    try {
      pqxx::nontransaction work(connection_);
      UserRepository(work).ReleaseActingUser(user_id_);
    } catch (const std::exception& error) {
      // Whatever failed, the session must not keep the hold: a deactivation of this user would
      // wait behind it for as long as the pool keeps the connection. Closing the connection ends
      // the session and its locks (a broken one has lost them already); the pool opens a new one.
      spdlog::warn("acting user {}: hold not released ({}): connection closed to end it", user_id_,
                   error.what());
      connection_.disconnect();
    }
  }
  ActingUserHold(const ActingUserHold&) = delete;
  ActingUserHold& operator=(const ActingUserHold&) = delete;

 private:
  pqxx::connection& connection_;
  const int64_t user_id_;
};

// FAILED_PRECONDITION unless `user_id` is an active user (read in a transaction of its own,
// before the body writes anything, under ActingUserHold).
absl::Status CheckActingUser(pqxx::connection& connection, int64_t user_id) {
  pqxx::read_transaction work(connection);
  if (!UserRepository(work).IsActive(user_id)) {
    return absl::FailedPreconditionError(absl::StrCat(
        kActingUserMetadata, ": user ", user_id, " not found or not active: nothing was written"));
  }
  return absl::OkStatus();
}

}  // namespace

grpc::ServerUnaryReactor* RunCall(grpc::CallbackServerContext* context, std::string_view method,
                                  const ApiBackend& backend, Right right,
                                  google::protobuf::Message* response,
                                  std::function<absl::Status(pqxx::connection&)> body) {
  auto* reactor = context->DefaultReactor();
  const std::string request_id = NewRequestId();
  context->AddTrailingMetadata("request-id", request_id);
  if (absl::Status status = Authorize(backend.keys, AuthorizationOf(context), right);
      !status.ok()) {
    reactor->Finish(ToGrpc(status, request_id, method));
    return reactor;
  }
  // Every write resolves its acting user here, once: the methods never read the metadata.
  int64_t acting_user = 0;
  if (right != Right::kRead) {
    absl::StatusOr<int64_t> user = ActingUserOf(context);
    if (!user.ok()) {
      reactor->Finish(ToGrpc(user.status(), request_id, method));
      return reactor;
    }
    acting_user = *user;
  }
  const auto deadline = SteadyDeadline(context);
  auto checked_body = [acting_user, body = std::move(body)](pqxx::connection& connection) {
    std::optional<ActingUserHold> hold;
    if (acting_user != 0) {
      hold.emplace(connection, acting_user);
      if (absl::Status check = CheckActingUser(connection, acting_user); !check.ok()) {
        return check;
      }
    }
    const ActingUserScope scope(acting_user);
    return body(connection);
  };
  auto job = [context, method, &backend, response, body = std::move(checked_body), reactor,
              request_id, deadline] {
    absl::Status status;
    for (int attempt = 1;; ++attempt) {
      if (context->IsCancelled()) {
        status = absl::CancelledError("cancelled by the caller");
        break;
      }
      response->Clear();
      status = backend.pool.With(body, deadline);
      if (!status.ok() && std::chrono::steady_clock::now() >= deadline) {
        status = absl::DeadlineExceededError(
            absl::StrCat("deadline exceeded (", status.ToString(), ")"));
        break;
      }
      const bool conflict = status.code() == absl::StatusCode::kAborted &&
                            pg::SqlState(status).has_value() &&
                            pg::ClassifyFailure(status.code()) == pg::FailureKind::kTransient;
      if (!conflict) {
        break;
      }
      if (attempt >= kConflictAttempts) {
        status = absl::UnavailableError(
            absl::StrCat("still conflicting after ", attempt, " attempts: ", status.message()));
        break;
      }
      spdlog::info("{} request {}: transaction conflict ({}), running it again", method, request_id,
                   std::string(status.message()));
    }
    reactor->Finish(ToGrpc(status, request_id, method));
  };
  if (!backend.executor.Submit(std::move(job))) {
    reactor->Finish(ToGrpc(absl::UnavailableError("API queue full"), request_id, method));
  }
  return reactor;
}

}  // namespace leadflow::crm
