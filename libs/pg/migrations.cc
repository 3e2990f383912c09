#include "pg/migrations.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <pqxx/pqxx>
#include <set>

#include "absl/strings/str_cat.h"
#include "pg/pg.h"

namespace leadflow::pg {
namespace {

// Any constant shared by every LeadFlow binary: "LFMIGRAT" in ASCII.
constexpr int64_t kMigrationLockKey = 0x4C464D4947524154;

absl::StatusOr<int> ApplyLocked(pqxx::connection& connection, const std::vector<Migration>& all) {
  std::set<int> done;
  {
    pqxx::work work(connection);
    work.exec0(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version integer PRIMARY KEY, name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())");
    for (const auto& row : work.exec("SELECT version FROM schema_migrations")) {
      done.insert(row[0].as<int>());
    }
    work.commit();
  }
  std::vector<Migration> ordered = all;
  std::sort(ordered.begin(), ordered.end(),
            [](const Migration& a, const Migration& b) { return a.version < b.version; });
  int newest_known = ordered.empty() ? 0 : ordered.back().version;
  if (!done.empty() && *done.rbegin() > newest_known) {
    return absl::FailedPreconditionError(absl::StrCat("database schema is at version ",
                                                      *done.rbegin(), ", newer than this binary's ",
                                                      newest_known));
  }
  int applied = 0;
  for (const Migration& migration : ordered) {
    if (done.count(migration.version) != 0) {
      continue;
    }
    pqxx::work work(connection);
    work.exec(migration.sql);
    work.exec_params("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                     migration.version, migration.name);
    work.commit();
    spdlog::info("migration {:04d} {} applied", migration.version, migration.name);
    ++applied;
  }
  return applied;
}

}  // namespace

absl::StatusOr<int> ApplyMigrations(const std::string& url, const std::vector<Migration>& all) {
  try {
    pqxx::connection connection(url);
    {
      pqxx::nontransaction lock(connection);
      lock.exec_params("SELECT pg_advisory_lock($1)", kMigrationLockKey);
    }
    absl::StatusOr<int> result;
    try {
      result = ApplyLocked(connection, all);
    } catch (const std::exception& error) {
      result = ToStatus(error);
    }
    if (connection.is_open()) {
      pqxx::nontransaction unlock(connection);
      unlock.exec_params("SELECT pg_advisory_unlock($1)", kMigrationLockKey);
    }
    return result;
  } catch (const std::exception& error) {
    return ToStatus(error);
  }
}

}  // namespace leadflow::pg
