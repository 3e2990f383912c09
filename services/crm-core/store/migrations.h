#pragma once

#include <vector>

#include "pg/migrations.h"

namespace leadflow::crm {

/// crm-core's schema, from services/crm-core/migrations/*.sql, embedded at build time.
const std::vector<pg::Migration>& Migrations();

/// Migrations() up to and including `version`: a database as an earlier release left it, for
/// upgrade tests.
inline std::vector<pg::Migration> MigrationsUpTo(int version) {
  std::vector<pg::Migration> picked;
  for (const pg::Migration& migration : Migrations()) {
    if (migration.version <= version) {
      picked.push_back(migration);
    }
  }
  return picked;
}

/// The releases that applied an earlier text of migrations rewritten in place since, from
/// services/crm-core/migrations/released/<release>/: the texts they applied (the migrations of
/// the release from the first rewritten one to its newest) and the bridge from their schema to
/// the current texts' (docs/operations.md, "Databases of release fcdca24").
const std::vector<pg::PriorRelease>& PriorReleases();

}  // namespace leadflow::crm
