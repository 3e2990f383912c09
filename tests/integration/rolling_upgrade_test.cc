// crm-core's migrations applied as in a rolling upgrade (docs/operations.md, "Migrations and
// rolling upgrades"): a database at the previous release's schema (0001–0004) with data in it,
// replicas of that release still reading and writing it, and `crm-core migrate` applying the rest.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <pqxx/pqxx>
#include <set>
#include <thread>

#include "crm-core/store/migrations.h"
#include "pg/migrations.h"
#include "testing/testing.h"

namespace leadflow::crm {
namespace {

// The newest migration of the previous release.
constexpr int kPreviousRelease = 4;

class RollingUpgradeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<int> previous =
        pg::ApplyMigrations(database_.url(), MigrationsUpTo(kPreviousRelease));
    ASSERT_TRUE(previous.ok()) << previous.status();
    // Data the previous release wrote.
    Exec("INSERT INTO users (id, name) VALUES (1, 'Ana')");
    Exec(
        "INSERT INTO contacts (id, last_name, search_first_last, search_last_first, source_id) "
        "VALUES (1, 'Curie', 'curie', 'curie', 'EMAIL'), (2, 'Blanc', 'blanc', 'blanc', ''), "
        "(3, 'Roux', 'roux', 'roux', 'salon 2026')");
    Exec("INSERT INTO companies (id, name, search_name, source_id) VALUES (1, 'Acme', 'acme', '')");
    Exec(
        "INSERT INTO deals (id, title, pipeline_id, stage_id, stage_semantics, source_id) "
        "VALUES (1, 'Kitchen', 1, 'NEW', 'PROCESS', 'CALL')");
    Exec(
        "INSERT INTO activities (type, owner_type, owner_id, subject) "
        "VALUES ('CALL', 'CONTACT', 1, 'Called'), ('TASK', 'CONTACT', 2, 'Write')");
    for (const char* table : {"users", "contacts", "companies", "deals"}) {
      Exec(std::string("SELECT setval('") + table + "_id_seq', 100)");
    }
  }

  void Exec(const std::string& sql) {
    pqxx::connection connection(database_.url());
    pqxx::work work(connection);
    work.exec(sql);
    work.commit();
  }

  std::string One(const std::string& sql) {
    pqxx::connection connection(database_.url());
    pqxx::nontransaction work(connection);
    pqxx::row row = work.exec1(sql);
    return row[0].is_null() ? "NULL" : row[0].as<std::string>();
  }

  // The SQLSTATE a statement fails with, "" when it succeeds (and is committed).
  std::string StateOf(const std::string& sql) {
    try {
      Exec(sql);
      return "";
    } catch (const pqxx::sql_error& error) {
      return error.sqlstate();
    }
  }

  testing::TempDatabase database_;
};

// SQL as the previous release writes it: no source_ref, no call columns, no extension.
constexpr char kOldContactInsert[] =
    "INSERT INTO contacts (last_name, search_first_last, search_last_first, source_id) "
    "VALUES ('Old', 'old', 'old', 'WEB_FORM')";

// Protects (rolling upgrade): while a replica of the previous release holds a long transaction
// on contacts, `migrate` does not make the table's other readers and writers queue behind its
// lock request: it gives the request up at lock_timeout (the retries are counted), a second
// writer of the previous release completes while that transaction is still open, and the
// migrations complete once it ends, with nothing left INVALID or NOT VALID. Afterwards what the
// previous release writes still goes in unchanged (its contacts, companies, deals, activities,
// users) and the name uniqueness it relies on still holds (a duplicate pipeline or stage name is
// refused as before), while the new release's schema is complete: source_ref follows source_id
// on old and new rows, an unknown source is refused.
TEST_F(RollingUpgradeTest, MigratesUnderOldReleaseTrafficWithoutBlockingIt) {
  // A replica of the previous release, in the middle of a long transaction that wrote contacts.
  auto old_replica = std::make_unique<pqxx::connection>(database_.url());
  auto long_transaction = std::make_unique<pqxx::work>(*old_replica);
  long_transaction->exec(kOldContactInsert);
  const int old_pid = old_replica->backendpid();

  std::mutex mutex;
  std::multiset<int> retried;  // versions of the migrations retried after a lock timeout
  pg::MigrationOptions options;
  options.lock_timeout = std::chrono::milliseconds(200);
  options.lock_attempts = 10000;
  options.retry_backoff = std::chrono::milliseconds(20);
  options.retry_backoff_max = std::chrono::milliseconds(200);
  options.on_lock_retry = [&](const pg::Migration& migration, int) {
    std::lock_guard<std::mutex> lock(mutex);
    retried.insert(migration.version);
  };
  auto retries_of = [&](int version) {
    std::lock_guard<std::mutex> lock(mutex);
    return retried.count(version);
  };
  std::atomic<bool> finished{false};
  absl::StatusOr<pg::MigrationReport> report;
  std::thread migrate([&] {
    report = pg::ApplyMigrations(database_.url(), Migrations(), options);
    finished = true;
  });

  // No ASSERT until the threads are joined: a failure must still end the long transaction.
  EXPECT_TRUE(testing::WaitFor([&] { return retries_of(7) >= 2; }, std::chrono::seconds(60)))
      << "0007 never gave up its lock request on contacts";
  std::atomic<bool> written{false};
  std::thread second_writer([&] {
    pqxx::connection connection(database_.url());
    pqxx::work work(connection);
    work.exec(kOldContactInsert);
    work.exec("SELECT count(*) FROM contacts");
    work.commit();
    written = true;
  });
  EXPECT_TRUE(testing::WaitFor([&] { return written.load(); }, std::chrono::seconds(30)))
      << "a writer of contacts queued behind the migration";
  // The old replica's transaction was still open while the writer went through.
  EXPECT_EQ(One("SELECT count(*) FROM pg_stat_activity WHERE pid = " + std::to_string(old_pid) +
                " AND state = 'idle in transaction'"),
            "1");
  EXPECT_FALSE(finished.load());
  EXPECT_EQ(One("SELECT max(version) FROM schema_migrations"), "6");

  long_transaction->commit();
  second_writer.join();
  migrate.join();
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->applied, static_cast<int>(Migrations().size()) - kPreviousRelease);
  EXPECT_GE(report->lock_retries, 2);

  // Nothing is left half-built.
  EXPECT_EQ(One("SELECT count(*) FROM pg_index WHERE NOT indisvalid"), "0");
  EXPECT_EQ(One("SELECT count(*) FROM pg_constraint WHERE NOT convalidated"), "0");
  EXPECT_EQ(One("SELECT count(*) FROM pg_class WHERE relname IN ('activities_origin_event', "
                "'activities_one_open_call_back', 'activities_call_id', "
                "'activities_open_call_back_number', 'users_extension', 'contacts_source_ref', "
                "'companies_source_ref', 'deals_source_ref', 'pipelines_name', "
                "'pipeline_stages_name')"),
            "10");
  // Old rows, the old replica's and the second writer's got their source_ref; the malformed
  // source was cleared with its old value in the history.
  EXPECT_EQ(One("SELECT string_agg(coalesce(source_ref, '-'), ',' ORDER BY id) FROM contacts"),
            "EMAIL,-,-,WEB_FORM,WEB_FORM");
  EXPECT_EQ(One("SELECT source_ref FROM deals WHERE id = 1"), "CALL");
  EXPECT_EQ(One("SELECT old_value FROM history WHERE entity_type = 'CONTACT' AND entity_id = 3 "
                "AND kind = 'FIELD_CHANGED' AND field = 'source_id'"),
            "salon 2026");

  // The previous release's writes after the migrations.
  EXPECT_EQ(StateOf(kOldContactInsert), "");
  EXPECT_EQ(One("SELECT source_ref FROM contacts ORDER BY id DESC LIMIT 1"), "WEB_FORM");
  EXPECT_EQ(StateOf("UPDATE contacts SET source_id = '' WHERE id = 1"), "");
  EXPECT_EQ(One("SELECT coalesce(source_ref, '-') FROM contacts WHERE id = 1"), "-");
  EXPECT_EQ(StateOf("INSERT INTO companies (name, search_name, source_id) "
                    "VALUES ('Beta', 'beta', 'EMAIL')"),
            "");
  EXPECT_EQ(StateOf("INSERT INTO deals (title, pipeline_id, stage_id, stage_semantics) "
                    "VALUES ('Bath', 1, 'NEW', 'PROCESS')"),
            "");
  EXPECT_EQ(StateOf("INSERT INTO activities (type, owner_type, owner_id, subject) "
                    "VALUES ('CALL', 'DEAL', 1, 'Called back')"),
            "");
  EXPECT_EQ(StateOf("INSERT INTO users (name) VALUES ('Bob')"), "");
  // The uniqueness the previous release relies on for pipeline and stage names.
  EXPECT_EQ(StateOf("INSERT INTO pipelines (name) VALUES ('sales ')"), "23505");
  EXPECT_EQ(StateOf("INSERT INTO pipeline_stages (pipeline_id, id, name, sort, semantics) "
                    "VALUES (1, 'NEW2', ' NEW', 80, 'PROCESS')"),
            "23505");
  // The new schema's rules hold for everybody.
  EXPECT_EQ(StateOf("INSERT INTO contacts (last_name, search_first_last, search_last_first, "
                    "source_id) VALUES ('X', 'x', 'x', 'NOPE')"),
            "23503");
  EXPECT_EQ(StateOf("UPDATE contacts SET source_ref = 'NOPE' WHERE id = 2"), "");
  EXPECT_EQ(One("SELECT coalesce(source_ref, '-') FROM contacts WHERE id = 2"), "-");
  EXPECT_EQ(StateOf("UPDATE activities SET missed_calls = -1"), "23514");
}

}  // namespace
}  // namespace leadflow::crm
