#pragma once

// The rule every List method's filters follow: a filter naming a record that is not there is
// refused the way a Get of it is answered, never read as "nothing matches" — an empty page for a
// typo or for a contact merged away reads as "this person has no deals", which is false. A time
// range whose end is not after its start is refused too: it can match nothing.

#include <google/protobuf/timestamp.pb.h>

#include <cstdint>
#include <pqxx/pqxx>
#include <string>

#include "absl/status/status.h"
#include "crm-core/domain/common/types.h"

namespace leadflow::crm {

/// OK for 0 (no filter) and for a live record; otherwise NOT_FOUND as Get answers: "contact 9 not
/// found", or "contact 7546 not found: merged into contact 7547" for a record folded by a merge
/// (the end of its chain of merges). INVALID_ARGUMENT "<field> must be positive" for a negative.
absl::Status CheckFilterRecord(pqxx::transaction_base& work, const std::string& field,
                               domain::EntityKind kind, int64_t id);

/// OK for 0 and for any user that exists, active or not (a deactivated manager's records are
/// still theirs); NOT_FOUND "user 9 not found" otherwise.
absl::Status CheckFilterUser(pqxx::transaction_base& work, const std::string& field, int64_t id);

/// OK for 0 and for a pipeline that exists; NOT_FOUND "pipeline 9 not found" otherwise.
absl::Status CheckFilterPipeline(pqxx::transaction_base& work, int64_t id);

/// A [after, before) range of creation times: each bound a valid Timestamp when set (any year: a
/// far bound means "no limit"), and
/// INVALID_ARGUMENT when both are set and `after` is not earlier than `before` (an empty range).
absl::Status CheckCreatedRange(const google::protobuf::Timestamp* after,
                               const google::protobuf::Timestamp* before);

/// The same for a List request with `created_after` / `created_before`.
template <typename ListRequest>
absl::Status CheckCreatedRange(const ListRequest& request) {
  return CheckCreatedRange(request.has_created_after() ? &request.created_after() : nullptr,
                           request.has_created_before() ? &request.created_before() : nullptr);
}

}  // namespace leadflow::crm
