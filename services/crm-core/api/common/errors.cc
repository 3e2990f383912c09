#include "crm-core/api/common/errors.h"

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "crm-core/store/people_repository.h"
#include "pg/pg.h"

namespace leadflow::crm {
namespace {

struct Mapping {
  grpc::StatusCode code;
  // Said when the failure is the server's (or the database's): never its own text (constraint
  // names, DETAIL lines quoting rows).
  const char* server_message;
  // A failure of the server, not of the caller's request: logged as a warning.
  bool server_side;
};

// Every code a store or domain function returns, mapped once.
Mapping Map(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return {grpc::StatusCode::OK, "", false};
    case absl::StatusCode::kInvalidArgument:
      return {grpc::StatusCode::INVALID_ARGUMENT, "a value is not acceptable to the database",
              false};
    case absl::StatusCode::kOutOfRange:
      return {grpc::StatusCode::OUT_OF_RANGE, "a value is not acceptable to the database", false};
    case absl::StatusCode::kNotFound:
      return {grpc::StatusCode::NOT_FOUND, "internal error", false};
    case absl::StatusCode::kAlreadyExists:
      return {grpc::StatusCode::ALREADY_EXISTS, "the record conflicts with an existing one", false};
    case absl::StatusCode::kFailedPrecondition:
      return {grpc::StatusCode::FAILED_PRECONDITION, "the change is refused by a data rule", false};
    case absl::StatusCode::kAborted:
      // A stale etag from the API; from the database (a conflict retried out), the server's.
      return {grpc::StatusCode::ABORTED, "database unavailable, retry later", false};
    case absl::StatusCode::kPermissionDenied:
      return {grpc::StatusCode::PERMISSION_DENIED, "internal error", false};
    case absl::StatusCode::kUnauthenticated:
      return {grpc::StatusCode::UNAUTHENTICATED, "internal error", false};
    case absl::StatusCode::kCancelled:
      return {grpc::StatusCode::CANCELLED, "the request ran out of time", false};
    case absl::StatusCode::kDeadlineExceeded:
      return {grpc::StatusCode::DEADLINE_EXCEEDED, "the request ran out of time", true};
    case absl::StatusCode::kUnavailable:
      return {grpc::StatusCode::UNAVAILABLE, "database unavailable, retry later", true};
    case absl::StatusCode::kResourceExhausted:
      return {grpc::StatusCode::RESOURCE_EXHAUSTED, "database unavailable, retry later", true};
    case absl::StatusCode::kUnimplemented:
      return {grpc::StatusCode::UNIMPLEMENTED, "internal error", true};
    case absl::StatusCode::kInternal:
      return {grpc::StatusCode::INTERNAL, "internal error", true};
    case absl::StatusCode::kDataLoss:
      return {grpc::StatusCode::DATA_LOSS, "internal error", true};
    case absl::StatusCode::kUnknown:
      return {grpc::StatusCode::UNKNOWN, "internal error", true};
    case absl::StatusCode::kDoNotUseReservedForFutureExpansionUseDefaultInSwitchInstead_:
      break;
  }
  return {grpc::StatusCode::UNKNOWN, "internal error", true};
}

}  // namespace

grpc::Status ToGrpc(const absl::Status& status, const std::string& request_id,
                    std::string_view method) {
  if (status.ok()) {
    return grpc::Status::OK;
  }
  const Mapping mapping = Map(status.code());
  const bool server_side = mapping.server_side || pg::SqlState(status).has_value();
  std::string message = server_side ? mapping.server_message : std::string(status.message());
  if (server_side) {
    spdlog::warn("{} request {} failed: {}", method, request_id, status.ToString());
  } else {
    spdlog::debug("{} request {}: {}", method, request_id, status.ToString());
  }
  return grpc::Status(mapping.code, absl::StrCat(message, " (request id ", request_id, ")"));
}

absl::Status NotLive(pqxx::transaction_base& work, domain::EntityKind kind, int64_t id) {
  std::optional<MergeRepository::Owner> owner =
      MergeRepository(work).Find(std::string(domain::ToString(kind)), id);
  if (owner && owner->merged_into != 0) {
    return domain::MergedAway(kind, id, owner->merged_into);
  }
  return domain::NotFound(kind, id);
}

absl::Status HoldLive(pqxx::transaction_base& work, domain::EntityKind kind, int64_t id) {
  std::optional<int64_t> merged_into = HoldReferenced(work, kind, id);
  if (!merged_into || *merged_into != 0) {
    return NotLive(work, kind, id);
  }
  return absl::OkStatus();
}

}  // namespace leadflow::crm
