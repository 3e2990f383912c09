#pragma once

#include <grpcpp/grpcpp.h>

#include <string>
#include <string_view>

#include <pqxx/pqxx>

#include "absl/status/status.h"
#include "crm-core/domain/common/errors.h"

namespace leadflow::crm {

/// The gRPC status a caller gets for a store or domain status: the one place the mapping lives.
/// A caller's own mistake (validation, not found, a stale etag, a refused change) is told as it
/// is; whatever the server or the database said stays in the log (with `request_id`), and the
/// caller reads what to do.
grpc::Status ToGrpc(const absl::Status& status, const std::string& request_id,
                    std::string_view method);

/// NOT_FOUND for a lead, contact, company or deal that a request names but that is not live, in
/// the words of domain/common/errors.h: "contact 5 not found", or "contact 5 not found: merged
/// into contact 2" when a merge folded it (so the caller knows which id to use instead).
absl::Status NotLive(pqxx::transaction_base& work, domain::EntityKind kind, int64_t id);

/// The record a write names held live until the transaction ends (store HoldReferenced): OK, or
/// NotLive's NOT_FOUND ("merged into …" when a merge folded it, also one that committed while
/// this call waited for it).
absl::Status HoldLive(pqxx::transaction_base& work, domain::EntityKind kind, int64_t id);

}  // namespace leadflow::crm
