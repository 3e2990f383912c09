#pragma once

// The one spelling of the API's recurring messages, so that every method says "not found" and
// "merged into" alike and a caller (or a script) reads one form: "lead 42 not found",
// "contact 3 not found: merged into contact 2", "pipeline \"Sales\": needs exactly one SUCCESS
// stage". The API's error mapping (api/common/errors.h) passes these messages on as they are.

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "crm-core/domain/common/types.h"

namespace leadflow::crm::domain {

/// NOT_FOUND "<noun> <id> not found" ("lead 42 not found", "user 7 not found").
absl::Status NotFound(std::string_view noun, int64_t id);
absl::Status NotFound(EntityKind kind, int64_t id);

/// NOT_FOUND for a text id, quoted: "lead status \"CALL_LATER\" not found".
absl::Status NotFound(std::string_view noun, std::string_view id);

/// NOT_FOUND for a record folded into another by a merge, naming the kept one:
/// "lead 3 not found: merged into lead 2".
absl::Status MergedAway(EntityKind kind, int64_t id, int64_t kept_id);

/// A text quoted for a message: between double quotes, with quotes, backslashes and control
/// characters escaped (UTF-8 kept), so that a hostile name cannot forge or break a message.
std::string Quoted(std::string_view text);

/// Ids of what the business configures, lead statuses and sources as deal stages alike: "NEW",
/// "WAITING_FOR_CALLBACK", 1 to 50 upper-case letters, digits or underscores, starting with a
/// letter (the lead_statuses and lead_sources CHECK). Deal stages created before this rule may
/// hold other ids (pipeline_stages' CHECK allows [A-Za-z0-9_:-]); they stay as they are.
inline constexpr size_t kMaxConfiguredIdLength = 50;
bool IsValidConfiguredId(std::string_view id);

/// INVALID_ARGUMENT `<what> "<id>" must be 1 to 50 upper-case letters, …` for an id that is not
/// valid ("status id", "stage id"); OK otherwise.
absl::Status CheckConfiguredId(std::string_view what, std::string_view id);

/// How a message names a pipeline: "pipeline 2" once it has an id, `pipeline "Sales"` while it is
/// being created (it has no id yet).
std::string PipelineLabel(int64_t id, std::string_view name);

}  // namespace leadflow::crm::domain
