#include "crm-core/store/schema.h"

#include <pqxx/pqxx>

#include "crm-core/store/migrations.h"
#include "pg/migrations.h"
#include "pg/pg.h"

namespace leadflow::crm {

absl::StatusOr<pg::MigrationReport> MigrateSchema(const std::string& database_url,
                                                  const pg::MigrationOptions& options) {
  pg::MigrationOptions with_releases = options;
  with_releases.prior_releases = PriorReleases();
  return pg::ApplyMigrations(database_url, Migrations(), with_releases);
}

absl::Status CheckSchema(const std::string& url) {
  try {
    pqxx::connection connection(url);
    pqxx::read_transaction work(connection);
    auto row = work.exec1("SELECT coalesce(max(version), 0) FROM schema_migrations");
    int newest = Migrations().back().version;
    if (row[0].as<int>() < newest) {
      return absl::FailedPreconditionError("schema is behind this binary: run 'crm-core migrate'");
    }
    return absl::OkStatus();
  } catch (const pqxx::undefined_table&) {
    return absl::FailedPreconditionError("no schema: run 'crm-core migrate'");
  } catch (const std::exception& error) {
    return pg::ToStatus(error);
  }
}

}  // namespace leadflow::crm
