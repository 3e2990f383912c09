#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace leadflow::pg {

/// One numbered schema change. Versions are applied in order, each in its own transaction.
struct Migration {
  int version;
  std::string name;
  std::string sql;
};

/// Applies the migrations not yet recorded in schema_migrations, under a session advisory lock so
/// that several replicas (or a Job and a pod) starting at once apply each exactly once.
/// Returns how many were applied. Fails when the database has a version this binary lacks
/// (an older binary against a newer schema).
absl::StatusOr<int> ApplyMigrations(const std::string& url, const std::vector<Migration>& all);

}  // namespace leadflow::pg
