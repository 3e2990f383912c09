#include <gtest/gtest.h>

#include <atomic>
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

struct Raised {
  const char* sqlstate;
  absl::StatusCode code;
  FailureKind kind;
};

class ClassifyTest : public ::testing::TestWithParam<Raised> {};

// Protects (defects b, i, j; finding 1 of the review): every SQLSTATE PostgreSQL raises is
// judged once: an outage (read-only, disk, corruption, version) or a conflict is transient
// (retried as is, never dead-lettered), a data error is the data's (isolated), a deterministic
// failure (53200, 54xxx, XX000) persistent (bounded retries, then split); and the status never
// carries the DETAIL line, which quotes row contents.
TEST_P(ClassifyTest, RealErrorsAreClassifiedWithoutTheirDetail) {
  testing::TempDatabase database;
  pqxx::connection connection(database.url());
  absl::Status status;
  try {
    pqxx::nontransaction work(connection);
    work.exec(std::string("DO $$ BEGIN RAISE EXCEPTION 'refused' USING ERRCODE = '") +
              GetParam().sqlstate + "', DETAIL = 'Failing row contains (Jean, secret)'; END $$");
  } catch (const std::exception& error) {
    status = ToStatus(error);
  }
  EXPECT_EQ(status.code(), GetParam().code) << status;
  EXPECT_EQ(ClassifyFailure(status.code()), GetParam().kind);
  EXPECT_EQ(SqlState(status).value_or("none"), GetParam().sqlstate);
  EXPECT_EQ(std::string(status.message()).find("secret"), std::string::npos) << status;
  EXPECT_NE(std::string(status.message()).find(GetParam().sqlstate), std::string::npos) << status;
}

INSTANTIATE_TEST_SUITE_P(
    Sqlstates, ClassifyTest,
    ::testing::Values(
        Raised{"40P01", absl::StatusCode::kAborted, FailureKind::kTransient},
        Raised{"40001", absl::StatusCode::kAborted, FailureKind::kTransient},
        Raised{"53100", absl::StatusCode::kUnavailable, FailureKind::kTransient},
        Raised{"57014", absl::StatusCode::kUnavailable, FailureKind::kTransient},
        Raised{"42703", absl::StatusCode::kUnavailable, FailureKind::kTransient},
        Raised{"23505", absl::StatusCode::kAlreadyExists, FailureKind::kData},
        Raised{"23514", absl::StatusCode::kFailedPrecondition, FailureKind::kData},
        Raised{"22P02", absl::StatusCode::kInvalidArgument, FailureKind::kData},
        Raised{"53200", absl::StatusCode::kResourceExhausted, FailureKind::kPersistent},
        Raised{"54000", absl::StatusCode::kResourceExhausted, FailureKind::kPersistent},
        Raised{"XX000", absl::StatusCode::kInternal, FailureKind::kPersistent},
        Raised{"P0001", absl::StatusCode::kInternal, FailureKind::kPersistent},
        // An outage, never the row's fault: a read-only standby after a failover or
        // maintenance, disk I/O, corruption, a server at the wrong version, an object in use.
        Raised{"25006", absl::StatusCode::kUnavailable, FailureKind::kTransient},
        Raised{"25P02", absl::StatusCode::kUnavailable, FailureKind::kTransient},
        Raised{"58030", absl::StatusCode::kUnavailable, FailureKind::kTransient},
        Raised{"XX001", absl::StatusCode::kUnavailable, FailureKind::kTransient},
        Raised{"XX002", absl::StatusCode::kUnavailable, FailureKind::kTransient},
        Raised{"0A000", absl::StatusCode::kUnavailable, FailureKind::kTransient},
        Raised{"55000", absl::StatusCode::kUnavailable, FailureKind::kTransient},
        Raised{"55006", absl::StatusCode::kUnavailable, FailureKind::kTransient},
        Raised{"40002", absl::StatusCode::kFailedPrecondition, FailureKind::kData}));

// Protects (defect b): a conversion error (a value the code cannot read) is persistent, not
// retried forever.
TEST(PgTest, ConversionErrorIsPersistent) {
  testing::TempDatabase database;
  pqxx::connection connection(database.url());
  absl::Status status;
  try {
    pqxx::nontransaction work(connection);
    work.exec1("SELECT 'abc'")[0].as<int64_t>();
  } catch (const std::exception& error) {
    status = ToStatus(error);
  }
  EXPECT_EQ(ClassifyFailure(status.code()), FailureKind::kPersistent) << status;
}

// Protects (defect i): Pool::With never waits forever: with every connection taken, a caller
// gets Unavailable after acquire_timeout, or DeadlineExceeded at its own sooner deadline, and
// is counted.
TEST(PgTest, PoolWaitIsBounded) {
  testing::TempDatabase database;
  Pool pool(database.url(), 1, {}, PoolOptions{.acquire_timeout = std::chrono::milliseconds(200)});
  ASSERT_TRUE(pool.Connect().ok());
  std::atomic<bool> holding{false};
  std::atomic<bool> release{false};
  std::thread holder([&] {
    pool.With([&](pqxx::connection&) {
          holding = true;
          testing::WaitFor([&] { return release.load(); }, std::chrono::seconds(30));
          return absl::OkStatus();
        })
        .IgnoreError();
  });
  ASSERT_TRUE(testing::WaitFor([&] { return holding.load(); }, std::chrono::seconds(10)));
  absl::Status waited = pool.With([](pqxx::connection&) { return absl::OkStatus(); });
  EXPECT_EQ(waited.code(), absl::StatusCode::kUnavailable) << waited;
  absl::Status deadline =
      pool.With([](pqxx::connection&) { return absl::OkStatus(); },
                std::chrono::steady_clock::now() + std::chrono::milliseconds(20));
  EXPECT_EQ(deadline.code(), absl::StatusCode::kDeadlineExceeded) << deadline;
  EXPECT_EQ(pool.acquire_timeouts(), 2);
  release = true;
  holder.join();
  EXPECT_TRUE(pool.With([](pqxx::connection&) { return absl::OkStatus(); }).ok());
}

// Protects (defect i): statement_timeout is set on the pool's connections: a statement that
// would run for minutes is cut (57014) instead of holding its connection.
TEST(PgTest, PoolStatementTimeoutCutsSlowStatements) {
  testing::TempDatabase database;
  Pool pool(database.url(), 1, {},
            PoolOptions{.statement_timeout = std::chrono::milliseconds(100)});
  ASSERT_TRUE(pool.Connect().ok());
  absl::Status status = pool.With([](pqxx::connection& connection) {
    pqxx::nontransaction work(connection);
    work.exec("SELECT pg_sleep(600)");
    return absl::OkStatus();
  });
  EXPECT_EQ(SqlState(status).value_or(""), "57014") << status;
  EXPECT_TRUE(pool.With([](pqxx::connection&) { return absl::OkStatus(); }).ok());
}

}  // namespace
}  // namespace leadflow::pg
