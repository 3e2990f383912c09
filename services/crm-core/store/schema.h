#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "pg/migrations.h"

namespace leadflow::crm {

/// Applies crm-core's migrations (store/migrations.h) with `options` (lock_timeout, retries),
/// bridging a database of a prior release that applied earlier texts of them (PriorReleases()).
absl::StatusOr<pg::MigrationReport> MigrateSchema(const std::string& database_url,
                                                  const pg::MigrationOptions& options);

/// FAILED_PRECONDITION when the schema is missing or older than this binary: start-up fails
/// fast instead of failing every query.
absl::Status CheckSchema(const std::string& database_url);

}  // namespace leadflow::crm
