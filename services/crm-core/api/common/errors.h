#pragma once

#include <grpcpp/grpcpp.h>

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace leadflow::crm {

/// The gRPC status a caller gets for a store or domain status: the one place the mapping lives.
/// A caller's own mistake (validation, not found, a stale etag, a refused change) is told as it
/// is; whatever the server or the database said stays in the log (with `request_id`), and the
/// caller reads what to do.
grpc::Status ToGrpc(const absl::Status& status, const std::string& request_id,
                    std::string_view method);

}  // namespace leadflow::crm
