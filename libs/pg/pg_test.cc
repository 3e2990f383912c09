#include <gtest/gtest.h>

#include <pqxx/pqxx>
#include <thread>

#include "pg/migrations.h"
#include "pg/pg.h"
#include "pg/pool.h"
#include "testing/testing.h"

namespace leadflow::pg {
namespace {

const std::vector<Migration> kMigrations = {
    {1, "things", "CREATE TABLE things (id bigserial PRIMARY KEY, name text NOT NULL UNIQUE)"},
    {2, "more", "ALTER TABLE things ADD COLUMN tags text[] NOT NULL DEFAULT '{}'"},
};

// Protects: migrations apply once, in order, even when several processes start together.
TEST(PgTest, MigrationsApplyExactlyOnceConcurrently) {
  testing::TempDatabase database;
  std::vector<int> applied(4, -1);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      auto result = ApplyMigrations(database.url(), kMigrations);
      applied[i] = result.ok() ? *result : -100;
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  int total = 0;
  for (int count : applied) {
    ASSERT_GE(count, 0);
    total += count;
  }
  EXPECT_EQ(total, 2);
  EXPECT_EQ(*ApplyMigrations(database.url(), kMigrations), 0);
}

// Protects: an older binary refuses a newer schema instead of running against it.
TEST(PgTest, NewerSchemaIsRefused) {
  testing::TempDatabase database;
  ASSERT_TRUE(ApplyMigrations(database.url(), kMigrations).ok());
  auto result = ApplyMigrations(database.url(), {kMigrations[0]});
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition);
}

// Protects: a failing migration leaves nothing half-applied and is reported.
TEST(PgTest, FailingMigrationChangesNothing) {
  testing::TempDatabase database;
  auto result = ApplyMigrations(database.url(),
                                {{1, "bad", "CREATE TABLE a (id int); CREATE TABLE a (id int)"}});
  EXPECT_FALSE(result.ok());
  pqxx::connection connection(database.url());
  pqxx::work work(connection);
  EXPECT_EQ(work.exec1("SELECT count(*) FROM pg_tables WHERE tablename = 'a'")[0].as<int>(), 0);
}

// Protects: array literals carry hostile text (quotes, backslashes, braces, commas, unicode,
// NUL bytes) through unnest() unchanged (NUL removed), so one statement can write many rows.
TEST(PgTest, ArrayLiteralsRoundTrip) {
  testing::TempDatabase database;
  pqxx::connection connection(database.url());
  pqxx::work work(connection);
  std::vector<std::string> values = {"plain", "a\"b", "back\\slash",  "{brace},comma",
                                     "",      "NULL", "école – 東京", std::string("n\0ul", 4)};
  auto rows = work.exec_params(
      "SELECT x FROM unnest($1::text[]) WITH ORDINALITY AS t(x, n) ORDER BY n", TextArray(values));
  ASSERT_EQ(rows.size(), values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(rows[i][0].as<std::string>(), StripNul(values[i]));
  }
  auto nulls = work.exec_params("SELECT count(*) FROM unnest($1::bigint[]) x WHERE x IS NULL",
                                IdArrayZeroNull({1, 0, 3, 0}));
  EXPECT_EQ(nulls[0][0].as<int>(), 2);
}

// Protects: constraint violations and broken connections map to the status codes callers use to
// decide between "bad request" and "retry".
TEST(PgTest, ErrorsMapToStatusCodes) {
  testing::TempDatabase database;
  ASSERT_TRUE(ApplyMigrations(database.url(), kMigrations).ok());
  Pool pool(database.url(), 2, {{"insert_thing", "INSERT INTO things (name) VALUES ($1)"}});
  ASSERT_TRUE(pool.Connect().ok());
  auto insert = [&](const std::string& name) {
    return pool.With([&](pqxx::connection& connection) {
      pqxx::work work(connection);
      work.exec_prepared("insert_thing", name);
      work.commit();
      return absl::OkStatus();
    });
  };
  EXPECT_TRUE(insert("x").ok());
  EXPECT_EQ(insert("x").code(), absl::StatusCode::kAlreadyExists);
  Pool unreachable("postgresql://postgres@127.0.0.1:" + std::to_string(testing::FreePort()) +
                       "/none?connect_timeout=2",
                   1, {});
  EXPECT_EQ(unreachable.Connect().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace leadflow::pg
