#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace leadflow::crm {

/// Applies crm-core's migrations (store/migrations.h); how many were applied now.
absl::StatusOr<int> MigrateSchema(const std::string& database_url);

/// FAILED_PRECONDITION when the schema is missing or older than this binary: start-up fails
/// fast instead of failing every query.
absl::Status CheckSchema(const std::string& database_url);

}  // namespace leadflow::crm
