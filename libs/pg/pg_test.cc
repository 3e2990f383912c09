#include <gmock/gmock.h>
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

// Protects: the binary of the previous release (a pod restarted during a rollout, a rollback)
// runs `migrate` against the newer schema without failing and without changing anything, as long
// as the schema holds every migration it knows; a newer schema lacking one of them is refused.
TEST(PgTest, NewerSchemaIsLeftAloneByAnOlderBinary) {
  testing::TempDatabase database;
  ASSERT_TRUE(ApplyMigrations(database.url(), kMigrations).ok());
  absl::StatusOr<int> older = ApplyMigrations(database.url(), {kMigrations[0]});
  ASSERT_TRUE(older.ok()) << older.status();
  EXPECT_EQ(*older, 0);
  {
    pqxx::connection connection(database.url());
    pqxx::work work(connection);
    EXPECT_EQ(work.exec1("SELECT count(*) FROM schema_migrations")[0].as<int>(), 2);
    work.exec0("DELETE FROM schema_migrations WHERE version = 1");
    work.commit();
  }
  auto result = ApplyMigrations(database.url(), {kMigrations[0]});
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(result.status().message()),
              ::testing::HasSubstr("lacks this binary's migration 0001 things"));
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

// Protects: statements are split at semicolons outside comments, strings, quoted identifiers and
// dollar-quoted bodies, so that a no-transaction migration's statements are counted right.
TEST(MigrationRunnerTest, SplitStatementsRespectsQuoting) {
  std::vector<std::string> statements = SplitStatements(
      "-- a comment; not a statement\n"
      "CREATE TABLE \"a;b\" (x text DEFAULT 'it''s; fine' /* c; */);\n"
      "/* nested /* ; */ ; */ SELECT E'\\'; still', $1;\n"
      "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $body$ SELECT 1; $body$;\n"
      "  ;  -- only a comment\n");
  ASSERT_EQ(statements.size(), 3u);
  EXPECT_EQ(statements[0], "CREATE TABLE \"a;b\" (x text DEFAULT 'it''s; fine' /* c; */)");
  EXPECT_EQ(statements[1], "SELECT E'\\'; still', $1");
  EXPECT_EQ(statements[2],
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $body$ SELECT 1; $body$");
}

bool IndexIsValid(const std::string& url, const std::string& index) {
  pqxx::connection connection(url);
  pqxx::nontransaction work(connection);
  auto rows =
      work.exec_params("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)", index);
  return !rows.empty() && rows[0][0].as<bool>();
}

int Count(const std::string& url, const std::string& sql) {
  pqxx::connection connection(url);
  pqxx::nontransaction work(connection);
  return work.exec1(sql)[0].as<int>();
}

// Protects: a migration whose first line is the no-transaction marker runs outside a transaction
// (CREATE INDEX CONCURRENTLY, which PostgreSQL refuses in one, succeeds) and is recorded once.
TEST(MigrationRunnerTest, NoTransactionMigrationBuildsConcurrently) {
  testing::TempDatabase database;
  std::vector<Migration> with_tags = {
      kMigrations[0],
      kMigrations[1],
      {3, "things_tags",
       "-- leadflow:no-transaction\n-- Why: a comment may follow.\n"
       "CREATE INDEX CONCURRENTLY things_tags ON things (tags);\n"}};
  absl::StatusOr<int> applied = ApplyMigrations(database.url(), with_tags);
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(*applied, 3);
  EXPECT_TRUE(IndexIsValid(database.url(), "things_tags"));
  EXPECT_EQ(Count(database.url(),
                  "SELECT count(*) FROM schema_migrations WHERE version = 3 AND "
                  "checksum IS NOT NULL"),
            1);
  EXPECT_EQ(*ApplyMigrations(database.url(), with_tags), 0);
}

// Protects: a no-transaction migration holds one statement (or only idempotent concurrent index
// builds), and CONCURRENTLY in a transactional one is refused; both with a message naming the
// migration, before anything at all is applied.
TEST(MigrationRunnerTest, BadNoTransactionMigrationsAreRefusedBeforeAnything) {
  testing::TempDatabase database;
  struct Case {
    std::string sql;
    std::string says;
  };
  std::vector<Case> cases = {
      {"-- leadflow:no-transaction\nCREATE TABLE b (x int); CREATE TABLE c (x int);",
       "exactly one statement"},
      {"-- leadflow:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t1 ON things (name);\n"
       "CREATE INDEX CONCURRENTLY t2 ON things (id);",
       "statement 2 is not such an index"},
      {"CREATE INDEX CONCURRENTLY t3 ON things (name)", "refuses inside a transaction"},
      {"CREATE TABLE d (x int);\n-- leadflow:no-transaction\nCREATE TABLE e (x int)",
       "only as its first line"},
      {"-- leadflow:no-transaction\n-- nothing\n", "holds no statement"},
  };
  for (const Case& bad : cases) {
    absl::StatusOr<int> result =
        ApplyMigrations(database.url(), {kMigrations[0], {2, "bad", bad.sql}});
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << bad.sql;
    EXPECT_THAT(std::string(result.status().message()),
                ::testing::AllOf(::testing::HasSubstr("migration 0002 bad"),
                                 ::testing::HasSubstr(bad.says)))
        << bad.sql;
    EXPECT_EQ(Count(database.url(), "SELECT count(*) FROM pg_tables WHERE tablename = 'things'"),
              0);
  }
  // Several idempotent concurrent builds are fine.
  absl::StatusOr<int> good = ApplyMigrations(
      database.url(),
      {kMigrations[0],
       {2, "indexes",
        "-- leadflow:no-transaction\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS t1 ON things (name);\n"
        "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS t2 ON things (id) WHERE id > 0;"}});
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_TRUE(IndexIsValid(database.url(), "t1"));
  EXPECT_TRUE(IndexIsValid(database.url(), "t2"));
}

// Protects: a CREATE INDEX CONCURRENTLY that failed half-way leaves an INVALID index; the rerun
// drops it and builds it again, instead of failing on the name or (IF NOT EXISTS) keeping an index
// that enforces and serves nothing.
TEST(MigrationRunnerTest, InvalidIndexIsRebuiltOnRerun) {
  testing::TempDatabase database;
  ASSERT_TRUE(ApplyMigrations(database.url(), {kMigrations[0], kMigrations[1]}).ok());
  {
    pqxx::connection connection(database.url());
    pqxx::work work(connection);
    work.exec0("INSERT INTO things (name, tags) VALUES ('a', '{x}'), ('b', '{x}')");
    work.commit();
  }
  std::vector<Migration> all = {
      kMigrations[0],
      kMigrations[1],
      {3, "unique_tags",
       "-- leadflow:no-transaction\n"
       "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS things_unique_tags ON things (tags)"}};
  absl::StatusOr<MigrationReport> failed = ApplyMigrations(database.url(), all, {});
  ASSERT_FALSE(failed.ok());
  EXPECT_THAT(std::string(failed.status().message()),
              ::testing::HasSubstr("migration 0003 unique_tags"));
  EXPECT_EQ(Count(database.url(),
                  "SELECT count(*) FROM pg_index WHERE indexrelid = "
                  "to_regclass('things_unique_tags') AND NOT indisvalid"),
            1);
  {
    pqxx::connection connection(database.url());
    pqxx::work work(connection);
    work.exec0("UPDATE things SET tags = '{y}' WHERE name = 'b'");
    work.commit();
  }
  absl::StatusOr<MigrationReport> rerun = ApplyMigrations(database.url(), all, {});
  ASSERT_TRUE(rerun.ok()) << rerun.status();
  EXPECT_EQ(rerun->applied, 1);
  EXPECT_EQ(rerun->invalid_indexes_dropped, 1);
  EXPECT_TRUE(IndexIsValid(database.url(), "things_unique_tags"));
  pqxx::connection connection(database.url());
  pqxx::work work(connection);
  EXPECT_THROW(work.exec0("INSERT INTO things (name, tags) VALUES ('c', '{y}')"),
               pqxx::unique_violation);
}

// A session holding a long transaction that read `table` (ACCESS SHARE until it ends), as a
// replica of the previous release does.
class LongTransaction {
 public:
  LongTransaction(const std::string& url, const std::string& table)
      : connection_(url), work_(connection_) {
    work_.exec("SELECT count(*) FROM " + table);
    pid_ = connection_.backendpid();
  }
  int pid() const { return pid_; }
  void End() { work_.commit(); }

 private:
  pqxx::connection connection_;
  pqxx::work work_;
  int pid_ = 0;
};

MigrationOptions FastRetries(std::atomic<int>& retries, int attempts) {
  MigrationOptions options;
  options.lock_timeout = std::chrono::milliseconds(200);
  options.lock_attempts = attempts;
  options.retry_backoff = std::chrono::milliseconds(20);
  options.retry_backoff_max = std::chrono::milliseconds(100);
  options.on_lock_retry = [&retries](const Migration&, int) { ++retries; };
  return options;
}

// Protects: a migration queued behind a long transaction does not make the table's writers queue
// behind it: it gives up its lock request at lock_timeout, retries with backoff, and applies once
// that transaction ends. A writer runs to completion while the long transaction is still open.
TEST(MigrationRunnerTest, LockTimeoutRetriesWithoutBlockingWriters) {
  testing::TempDatabase database;
  ASSERT_TRUE(ApplyMigrations(database.url(), {kMigrations[0]}).ok());
  auto holder = std::make_unique<LongTransaction>(database.url(), "things");
  std::atomic<int> retries{0};
  std::atomic<bool> finished{false};
  absl::StatusOr<MigrationReport> report;
  std::thread migrate([&] {
    report = ApplyMigrations(database.url(), kMigrations, FastRetries(retries, 10000));
    finished = true;
  });
  // No ASSERT before the threads are joined: a failure must still end the long transaction.
  EXPECT_TRUE(testing::WaitFor([&] { return retries.load() >= 2; }, std::chrono::seconds(30)))
      << "the migration never gave up its lock request";

  std::atomic<bool> written{false};
  std::thread writer([&] {
    pqxx::connection connection(database.url());
    pqxx::work work(connection);
    work.exec0("INSERT INTO things (name) VALUES ('written during the migration')");
    work.commit();
    written = true;
  });
  bool writer_done = testing::WaitFor([&] { return written.load(); }, std::chrono::seconds(30));
  // Still open, still idle in its transaction: the writer did not wait for it to end.
  EXPECT_EQ(Count(database.url(), "SELECT count(*) FROM pg_stat_activity WHERE pid = " +
                                      std::to_string(holder->pid()) +
                                      " AND state = 'idle in transaction'"),
            1);
  EXPECT_TRUE(writer_done) << "a writer queued behind the migration's lock request";
  EXPECT_FALSE(finished.load());
  EXPECT_EQ(Count(database.url(), "SELECT count(*) FROM schema_migrations WHERE version = 2"), 0);

  holder->End();
  writer.join();
  migrate.join();
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->applied, 1);
  EXPECT_GE(report->lock_retries, 2);
  EXPECT_EQ(report->lock_retries, retries.load());
  EXPECT_EQ(Count(database.url(), "SELECT count(*) FROM things WHERE tags = '{}'"), 1);
}

// Protects: the retries are bounded: after the last attempt the run fails with a message naming
// the migration, the attempts and lock_timeout, and nothing of the migration is applied; a later
// run applies it.
TEST(MigrationRunnerTest, LockTimeoutGivesUpAfterTheLastAttempt) {
  testing::TempDatabase database;
  ASSERT_TRUE(ApplyMigrations(database.url(), {kMigrations[0]}).ok());
  LongTransaction holder(database.url(), "things");
  std::atomic<int> retries{0};
  absl::StatusOr<MigrationReport> report =
      ApplyMigrations(database.url(), kMigrations, FastRetries(retries, 3));
  EXPECT_EQ(report.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(report.status().message()),
              ::testing::AllOf(::testing::HasSubstr("migration 0002 more"),
                               ::testing::HasSubstr("gave up after 3 attempts"),
                               ::testing::HasSubstr("lock_timeout 200 ms"),
                               ::testing::HasSubstr("nothing of it was applied")));
  EXPECT_EQ(retries.load(), 2);
  EXPECT_EQ(Count(database.url(),
                  "SELECT count(*) FROM information_schema.columns WHERE "
                  "table_name = 'things' AND column_name = 'tags'"),
            0);
  holder.End();
  EXPECT_EQ(*ApplyMigrations(database.url(), kMigrations), 1);
}

// Protects: an applied migration edited afterwards is detected (its recorded SHA-256 differs)
// and nothing is applied; rows recorded before checksums existed are not judged.
TEST(MigrationRunnerTest, EditedAppliedMigrationIsRefused) {
  testing::TempDatabase database;
  ASSERT_TRUE(ApplyMigrations(database.url(), {kMigrations[0]}).ok());
  std::vector<Migration> edited = kMigrations;
  edited[0].sql += " -- edited";
  absl::StatusOr<int> refused = ApplyMigrations(database.url(), edited);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.status().message()),
              ::testing::HasSubstr("migration 0001 things was changed after it was applied"));
  EXPECT_EQ(Count(database.url(), "SELECT count(*) FROM schema_migrations"), 1);
  {
    pqxx::connection connection(database.url());
    pqxx::work work(connection);
    work.exec0("UPDATE schema_migrations SET checksum = NULL");
    work.commit();
  }
  EXPECT_EQ(*ApplyMigrations(database.url(), edited), 1);
}

// Protects: a run waits for another run holding the migration lock, but not for ever: past
// migrate_lock_wait it fails with a message saying so and applies nothing.
TEST(MigrationRunnerTest, WaitForAnotherRunIsBounded) {
  testing::TempDatabase database;
  pqxx::connection other(database.url());
  {
    pqxx::nontransaction work(other);
    work.exec("SELECT pg_advisory_lock(x'4C464D4947524154'::bigint)");
  }
  MigrationOptions options;
  options.migrate_lock_wait = std::chrono::milliseconds(200);
  absl::StatusOr<MigrationReport> waited;
  std::atomic<bool> returned{false};
  std::thread run([&] {
    waited = ApplyMigrations(database.url(), kMigrations, options);
    returned = true;
  });
  EXPECT_TRUE(testing::WaitFor([&] { return returned.load(); }, std::chrono::seconds(30)))
      << "the run still waits for the migration lock";
  {
    pqxx::nontransaction work(other);
    work.exec("SELECT pg_advisory_unlock(x'4C464D4947524154'::bigint)");
  }
  run.join();
  EXPECT_EQ(waited.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(waited.status().message()),
              ::testing::HasSubstr("another migrate has held the migration lock"));
  EXPECT_EQ(Count(database.url(), "SELECT count(*) FROM pg_tables WHERE tablename = 'things'"), 0);
  EXPECT_EQ(ApplyMigrations(database.url(), kMigrations, options)->applied, 2);
}

}  // namespace
}  // namespace leadflow::pg
