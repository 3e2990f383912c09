// Upgrading a database migrated by release fcdca24, whose 0005–0007 were rewritten in place
// afterwards (docs/operations.md, "Databases of release fcdca24"). testdata/release-fcdca24/
// holds that release's 0001–0007 as it applied them (from git, `git show fcdca24:…`); they are
// applied here the way its migrate did: each in a transaction, recorded in a schema_migrations
// without a checksum column.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <pqxx/pqxx>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "crm-core/store/migrations.h"
#include "crm-core/store/schema.h"
#include "pg/migrations.h"
#include "testing/testing.h"

namespace leadflow::crm {
namespace {

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

// What release fcdca24's migrate did with its 0001–0007; `edit` may change a text first. With
// `checksums`, each is recorded with its SHA-256 as today's runner records them.
void ApplyReleaseFcdca24(const std::string& url,
                         const std::function<void(int, std::string&)>& edit = nullptr,
                         bool checksums = false) {
  pqxx::connection connection(url);
  {
    pqxx::work work(connection);
    work.exec0(
        "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, "
        "applied_at timestamptz NOT NULL DEFAULT now())");
    if (checksums) {
      work.exec0("ALTER TABLE schema_migrations ADD COLUMN checksum text");
    }
    work.commit();
  }
  std::vector<std::filesystem::path> files;
  for (const auto& entry :
       std::filesystem::directory_iterator(LEADFLOW_TESTDATA_DIR "/release-fcdca24")) {
    files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  ASSERT_EQ(files.size(), 7u);
  for (const auto& file : files) {
    std::string stem = file.stem().string();
    int version = std::stoi(stem.substr(0, 4));
    std::string sql = ReadFile(file);
    if (edit) {
      edit(version, sql);
    }
    pqxx::work work(connection);
    work.exec(sql);
    work.exec_params0("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version,
                      stem.substr(5));
    if (checksums) {
      work.exec_params0(
          "UPDATE schema_migrations SET checksum = encode(sha256(convert_to($2, 'UTF8')), 'hex') "
          "WHERE version = $1",
          version, sql);
    }
    work.commit();
  }
}

// Today's 0001–0007 applied the same way, by a build of main from before checksums.
void ApplyCurrentWithoutChecksums(const std::string& url) {
  pqxx::connection connection(url);
  pqxx::work work(connection);
  work.exec0(
      "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, "
      "applied_at timestamptz NOT NULL DEFAULT now())");
  for (const pg::Migration& migration : Migrations()) {
    if (migration.version <= 7) {
      work.exec(migration.sql);
      work.exec_params0("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                        migration.version, migration.name);
    }
  }
  work.commit();
}

void Exec(const std::string& url, const std::string& sql) {
  pqxx::connection connection(url);
  pqxx::work work(connection);
  work.exec(sql);
  work.commit();
}

std::string One(const std::string& url, const std::string& sql) {
  pqxx::connection connection(url);
  pqxx::nontransaction work(connection);
  pqxx::row row = work.exec1(sql);
  return row[0].is_null() ? "NULL" : row[0].as<std::string>();
}

// Data as release fcdca24 wrote it: sources (system and custom), a call-back with its call
// columns, a user's extension, a custom pipeline with stages, an email thread.
void WriteReleaseData(const std::string& url) {
  Exec(url,
       "INSERT INTO lead_sources (id, name, sort, system) VALUES ('SALON', 'Salon', 90, false)");
  Exec(url, "INSERT INTO users (id, name, extension) VALUES (1, 'Ana', '201')");
  Exec(url,
       "INSERT INTO contacts (id, last_name, search_first_last, search_last_first, source_id) "
       "VALUES (1, 'Curie', 'curie', 'curie', 'EMAIL'), (2, 'Blanc', 'blanc', 'blanc', ''), "
       "(3, 'Roux', 'roux', 'roux', 'SALON')");
  Exec(url,
       "INSERT INTO companies (id, name, search_name, source_id) VALUES (1, 'Acme', 'acme', ''), "
       "(2, 'Bâti', 'bati', 'CALL')");
  Exec(url,
       "INSERT INTO pipelines (id, name, sort) VALUES (50, 'Travaux', 50);"
       "INSERT INTO pipeline_stages (pipeline_id, id, name, sort, semantics) VALUES "
       "(50, 'NEW', 'Nouveau', 10, 'PROCESS'), (50, 'WON', 'Gagné', 20, 'SUCCESS'), "
       "(50, 'LOST', 'Perdu', 30, 'FAILURE')");
  Exec(url,
       "INSERT INTO deals (id, title, pipeline_id, stage_id, stage_semantics, source_id) "
       "VALUES (1, 'Kitchen', 1, 'NEW', 'PROCESS', 'CALL'), "
       "(2, 'Offices', 50, 'NEW', 'PROCESS', '')");
  Exec(url,
       "INSERT INTO activities (id, type, owner_type, owner_id, subject, call_back, call_id, "
       "call_direction, call_outcome, call_number, missed_calls) VALUES "
       "(1, 'CALL', 'CONTACT', 1, 'Call back', true, 'twilio:CA1', 'INBOUND', 'MISSED', "
       "'+33612345678', 2), (2, 'TASK', 'CONTACT', 2, 'Write', false, NULL, NULL, NULL, NULL, 0)");
  Exec(url,
       "INSERT INTO email_messages (message_id, event_id, thread_key, owner_type, owner_id, "
       "activity_id, subject) VALUES ('m1@example.com', 'e1', 'm1@example.com', 'CONTACT', 1, 2, "
       "'Devis')");
  for (const char* table : {"users", "contacts", "companies", "deals", "activities"}) {
    Exec(url, std::string("SELECT setval('") + table + "_id_seq', 100)");
  }
}

constexpr const char* kReleaseTables[] = {
    "lead_sources",    "users", "contacts",   "companies",      "pipelines",
    "pipeline_stages", "deals", "activities", "email_messages", "history"};

// The columns each of those tables has in the release's schema, in order: what Rows() reads, so
// that columns later migrations add (with their defaults) do not count as a change of the rows.
std::map<std::string, std::string> ReleaseColumns(const std::string& url) {
  std::map<std::string, std::string> columns;
  for (const char* table : kReleaseTables) {
    columns[table] = One(url, std::string("SELECT string_agg(quote_ident(attname), ', ' ORDER BY "
                                          "attnum) FROM pg_attribute WHERE attrelid = '") +
                                  table + "'::regclass AND attnum > 0 AND NOT attisdropped");
  }
  return columns;
}

// Every row of the tables the release wrote, as JSON, over the release's columns.
std::string Rows(const std::string& url, const std::map<std::string, std::string>& columns) {
  std::string rows;
  for (const char* table : kReleaseTables) {
    rows += table;
    rows += ": " +
            One(url, std::string("SELECT coalesce(jsonb_agg(r ORDER BY r::text), '[]')::text FROM "
                                 "(SELECT to_jsonb(t) AS r FROM (SELECT ") +
                         columns.at(table) + " FROM " + table + ") AS t) AS rows") +
            "\n";
  }
  return rows;
}

// The schema as pg_dump prints it, without comments, blank lines, session settings and the
// restricted-mode key (random in every dump).
std::string SchemaDump(const std::string& url) {
  std::string command =
      "pg_dump --schema-only --no-owner --no-privileges --dbname='" + url + "' 2>&1";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  EXPECT_NE(pipe, nullptr);
  std::string out;
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe.get())) > 0) {
    out.append(buffer.data(), n);
  }
  std::stringstream lines(out);
  std::string line, kept;
  while (std::getline(lines, line)) {
    if (line.empty() || line.rfind("--", 0) == 0 || line.rfind("SET ", 0) == 0 ||
        line.rfind("SELECT pg_catalog.set_config", 0) == 0 ||
        // pg_dump's per-dump random key of psql's restricted mode.
        line.rfind("\\restrict ", 0) == 0 || line.rfind("\\unrestrict ", 0) == 0) {
      continue;
    }
    kept += line + "\n";
  }
  EXPECT_THAT(kept, ::testing::HasSubstr("CREATE TABLE public.contacts")) << out;
  return kept;
}

// The lines of one dump missing from the other, both ways, for a readable failure.
std::string DumpDifference(const std::string& a, const std::string& b) {
  auto split = [](const std::string& text) {
    std::multiset<std::string> lines;
    std::stringstream stream(text);
    std::string line;
    while (std::getline(stream, line)) {
      lines.insert(line);
    }
    return lines;
  };
  std::multiset<std::string> left = split(a), right = split(b);
  std::string out;
  for (const std::string& line : left) {
    if (left.count(line) > right.count(line)) {
      out += "- " + line + "\n";
    }
  }
  for (const std::string& line : right) {
    if (right.count(line) > left.count(line)) {
      out += "+ " + line + "\n";
    }
  }
  return out;
}

std::string Relfilenodes(const std::string& url) {
  return One(url,
             "SELECT string_agg(relname || '=' || relfilenode, ',' ORDER BY relname) FROM pg_class "
             "WHERE relname IN ('contacts', 'companies', 'deals', 'activities')");
}

pg::MigrationOptions Quick() {
  pg::MigrationOptions options;
  options.lock_timeout = std::chrono::milliseconds(2000);
  options.lock_attempts = 3;
  options.retry_backoff = std::chrono::milliseconds(10);
  return options;
}

class ReleaseUpgradeTest : public ::testing::Test {
 protected:
  // A database migrated from scratch by this build, as a reference.
  std::string FreshSchema() {
    absl::StatusOr<pg::MigrationReport> report = MigrateSchema(fresh_.url(), Quick());
    EXPECT_TRUE(report.ok()) << report.status();
    return SchemaDump(fresh_.url());
  }

  testing::TempDatabase old_;
  testing::TempDatabase fresh_;
};

// Protects (upgrade from release fcdca24): a database that release migrated (its earlier text of
// 0005–0007, recorded without checksums) upgrades to this build: migrate succeeds (it stopped at
// 0008 with SQLSTATE 428C9 before the bridge), the schema it leaves is the one a database migrated
// from scratch has (pg_dump compared: columns, generated-ness, constraints and their validity,
// indexes, triggers, functions), every row the release wrote is still there unchanged, the
// tables were not rewritten, source_ref is now kept by the trigger for both releases' writes, and
// 0005–0007's current checksums are recorded, so a second run does nothing.
TEST_F(ReleaseUpgradeTest, DatabaseOfReleaseFcdca24UpgradesToTheFreshSchema) {
  ApplyReleaseFcdca24(old_.url());
  WriteReleaseData(old_.url());
  ASSERT_EQ(One(old_.url(),
                "SELECT attgenerated FROM pg_attribute WHERE attrelid = 'contacts'::regclass "
                "AND attname = 'source_ref'"),
            "s");
  const std::map<std::string, std::string> release_columns = ReleaseColumns(old_.url());
  const std::string rows_before = Rows(old_.url(), release_columns);
  const std::string files_before = Relfilenodes(old_.url());

  absl::StatusOr<pg::MigrationReport> report = MigrateSchema(old_.url(), Quick());
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->bridged_from, "fcdca24");
  EXPECT_EQ(report->applied, static_cast<int>(Migrations().size()) - 7);
  EXPECT_EQ(report->checksums_recorded, 3);

  const std::string fresh = FreshSchema();
  const std::string upgraded = SchemaDump(old_.url());
  EXPECT_TRUE(upgraded == fresh) << "upgraded (-) vs fresh (+):\n"
                                 << DumpDifference(upgraded, fresh);
  EXPECT_EQ(Rows(old_.url(), release_columns), rows_before);
  EXPECT_EQ(Relfilenodes(old_.url()), files_before) << "a table was rewritten";
  EXPECT_EQ(One(old_.url(), "SELECT count(*) FROM activity_calls WHERE call_id = 'twilio:CA1'"),
            "1");

  // source_ref follows source_id: the previous release's insert (no source_ref) and update, and
  // this release's direct write, which the trigger overrides.
  Exec(old_.url(),
       "INSERT INTO contacts (id, last_name, search_first_last, search_last_first, source_id) "
       "VALUES (4, 'Vidal', 'vidal', 'vidal', 'WALK_IN')");
  Exec(old_.url(), "UPDATE contacts SET source_id = 'CALL' WHERE id = 2");
  Exec(old_.url(), "UPDATE deals SET source_ref = 'EMAIL' WHERE id = 1");
  EXPECT_EQ(One(old_.url(), "SELECT source_ref FROM contacts WHERE id = 4"), "WALK_IN");
  EXPECT_EQ(One(old_.url(), "SELECT source_ref FROM contacts WHERE id = 2"), "CALL");
  EXPECT_EQ(One(old_.url(), "SELECT source_ref FROM deals WHERE id = 1"), "CALL");
  EXPECT_EQ(One(old_.url(), "SELECT source_ref FROM contacts WHERE id = 3"), "SALON");

  // Recorded as the current texts: nothing more to do, nothing changes.
  EXPECT_EQ(One(old_.url(),
                "SELECT count(*) FROM schema_migrations WHERE version BETWEEN 5 AND 7 AND "
                "checksum IS NOT NULL"),
            "3");
  absl::StatusOr<pg::MigrationReport> again = MigrateSchema(old_.url(), Quick());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->applied, 0);
  EXPECT_EQ(again->bridged_from, "");
  EXPECT_EQ(again->checksums_recorded, 0);
}

// Protects (no false bridge): a database migrated from scratch by this build is left alone by a
// second run (no bridge, no checksum rewritten, the same schema), and one that applied today's
// 0001–0007 before checksums were recorded is recognised as such: their checksums are recorded,
// no bridge runs, and it ends with the fresh schema too.
TEST_F(ReleaseUpgradeTest, CurrentTextsAreRecognisedAndLeftAlone) {
  const std::string fresh = FreshSchema();
  const std::string sums = One(fresh_.url(),
                               "SELECT string_agg(version || checksum, ',' ORDER BY version) FROM "
                               "schema_migrations");
  absl::StatusOr<pg::MigrationReport> rerun = MigrateSchema(fresh_.url(), Quick());
  ASSERT_TRUE(rerun.ok()) << rerun.status();
  EXPECT_EQ(rerun->applied, 0);
  EXPECT_EQ(rerun->bridged_from, "");
  EXPECT_EQ(rerun->checksums_recorded, 0);
  EXPECT_EQ(SchemaDump(fresh_.url()), fresh);
  EXPECT_EQ(One(fresh_.url(),
                "SELECT string_agg(version || checksum, ',' ORDER BY version) FROM "
                "schema_migrations"),
            sums);

  ApplyCurrentWithoutChecksums(old_.url());
  absl::StatusOr<pg::MigrationReport> report = MigrateSchema(old_.url(), Quick());
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->bridged_from, "");
  EXPECT_EQ(report->checksums_recorded, 3);
  const std::string upgraded = SchemaDump(old_.url());
  EXPECT_TRUE(upgraded == fresh) << DumpDifference(upgraded, fresh);
}

// Protects (a changed migration is named, not accepted): 0006 recorded without a checksum but
// applied with a text that is neither release fcdca24's nor the current one (one index left out)
// is refused, naming migration 0006 and the index, and nothing is applied or bridged.
TEST_F(ReleaseUpgradeTest, UnknownTextWithoutChecksumIsNamedAndNothingApplied) {
  ApplyReleaseFcdca24(old_.url(), [](int version, std::string& sql) {
    if (version == 6) {
      static const std::regex index(
          R"(CREATE INDEX activities_call_id ON activities \(call_id\) WHERE call_id IS NOT NULL;)");
      std::string edited = std::regex_replace(sql, index, "");
      ASSERT_NE(edited, sql);
      sql = edited;
    }
  });
  absl::StatusOr<pg::MigrationReport> report = MigrateSchema(old_.url(), Quick());
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(report.status().message()),
              ::testing::HasSubstr("migration 0006 calls: recorded without a checksum"));
  EXPECT_THAT(std::string(report.status().message()),
              ::testing::HasSubstr("index activities_call_id is absent here"));
  EXPECT_EQ(One(old_.url(), "SELECT max(version) FROM schema_migrations"), "7");
  EXPECT_EQ(One(old_.url(), "SELECT count(checksum) FROM schema_migrations"), "0");
  EXPECT_EQ(One(old_.url(),
                "SELECT attgenerated FROM pg_attribute WHERE attrelid = 'contacts'::regclass "
                "AND attname = 'source_ref'"),
            "s");
  EXPECT_EQ(One(old_.url(), "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'leadflow%'"),
            "0");
}

// Protects (bad data gets a clear error and changes nothing): two pipeline names release fcdca24
// accepted but the name index this release still carries refuses stop the bridge with a message
// naming both; nothing is applied (source_ref still generated, no checksum recorded); once one is
// renamed, migrate completes.
TEST_F(ReleaseUpgradeTest, PipelineNameClashIsNamedAndNothingChanges) {
  ApplyReleaseFcdca24(old_.url());
  Exec(old_.url(),
       "INSERT INTO pipelines (id, name, sort) VALUES (60, 'Ventes', 60), (61, ' ventes', 61)");
  absl::StatusOr<pg::MigrationReport> report = MigrateSchema(old_.url(), Quick());
  ASSERT_FALSE(report.ok());
  EXPECT_THAT(std::string(report.status().message()),
              ::testing::HasSubstr("bridge from release fcdca24"));
  EXPECT_THAT(std::string(report.status().message()),
              ::testing::HasSubstr("pipelines 60 'Ventes' and 61 ' ventes'"));
  EXPECT_EQ(One(old_.url(), "SELECT max(version) FROM schema_migrations"), "7");
  EXPECT_EQ(One(old_.url(), "SELECT count(checksum) FROM schema_migrations"), "0");
  EXPECT_EQ(One(old_.url(),
                "SELECT attgenerated FROM pg_attribute WHERE attrelid = 'contacts'::regclass "
                "AND attname = 'source_ref'"),
            "s");

  Exec(old_.url(), "UPDATE pipelines SET name = 'Ventes 2' WHERE id = 61");
  absl::StatusOr<pg::MigrationReport> retried = MigrateSchema(old_.url(), Quick());
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(retried->bridged_from, "fcdca24");
}

// Protects (brief locks, for the bridge too): while a replica of release fcdca24 holds a
// transaction that wrote contacts, the bridge gives its lock request up at lock_timeout and
// retries (counted through on_lock_retry), another writer of that release's contacts goes through
// meanwhile instead of queueing behind it, and once the long transaction commits the upgrade
// completes, with source_ref set on both rows those writers wrote.
TEST_F(ReleaseUpgradeTest, BridgeRetriesUnderReleaseTrafficWithoutBlockingIt) {
  ApplyReleaseFcdca24(old_.url());
  WriteReleaseData(old_.url());
  auto replica = std::make_unique<pqxx::connection>(old_.url());
  auto long_transaction = std::make_unique<pqxx::work>(*replica);
  long_transaction->exec(
      "INSERT INTO contacts (id, last_name, search_first_last, search_last_first, source_id) "
      "VALUES (10, 'Long', 'long', 'long', 'EMAIL')");

  std::atomic<int> bridge_retries{0};
  pg::MigrationOptions options;
  options.lock_timeout = std::chrono::milliseconds(200);
  options.lock_attempts = 10000;
  options.retry_backoff = std::chrono::milliseconds(20);
  options.retry_backoff_max = std::chrono::milliseconds(200);
  options.on_lock_retry = [&](const pg::Migration& migration, int) {
    if (migration.name == "bridge_from_fcdca24") {
      ++bridge_retries;
    }
  };
  std::atomic<bool> finished{false};
  absl::StatusOr<pg::MigrationReport> report;
  std::thread migrate([&] {
    report = MigrateSchema(old_.url(), options);
    finished = true;
  });
  testing::WaitFor([&] { return bridge_retries.load() >= 2 || finished.load(); },
                   std::chrono::seconds(120));
  EXPECT_GE(bridge_retries.load(), 2);
  // Another writer of the release, bounded so that a blocked one fails instead of hanging.
  Exec(old_.url(),
       "SET LOCAL statement_timeout = '60s'; "
       "INSERT INTO contacts (id, last_name, search_first_last, search_last_first, source_id) "
       "VALUES (11, 'Other', 'other', 'other', 'CALL')");
  EXPECT_FALSE(finished.load());
  EXPECT_EQ(One(old_.url(), "SELECT state FROM pg_stat_activity WHERE pid = " +
                                std::to_string(replica->backendpid())),
            "idle in transaction");
  long_transaction->commit();
  migrate.join();
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->bridged_from, "fcdca24");
  EXPECT_EQ(One(old_.url(), "SELECT source_ref FROM contacts WHERE id = 10"), "EMAIL");
  EXPECT_EQ(One(old_.url(), "SELECT source_ref FROM contacts WHERE id = 11"), "CALL");
  EXPECT_EQ(One(old_.url(),
                "SELECT attgenerated FROM pg_attribute WHERE attrelid = 'contacts'::regclass "
                "AND attname = 'source_ref'"),
            "");
}

// Protects (release texts known by their checksum): fcdca24's 0001–0007 recorded with their own
// checksums (not the current texts') are bridged as well, instead of being refused as changed;
// afterwards 0005–0007 carry the current checksums.
TEST_F(ReleaseUpgradeTest, ReleaseTextsRecordedWithChecksumsAreBridged) {
  ApplyReleaseFcdca24(old_.url(), nullptr, /*checksums=*/true);
  const std::string release_sums =
      One(old_.url(), "SELECT string_agg(checksum, ',' ORDER BY version) FROM schema_migrations");
  absl::StatusOr<pg::MigrationReport> report = MigrateSchema(old_.url(), Quick());
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->bridged_from, "fcdca24");
  EXPECT_EQ(report->checksums_recorded, 3);
  absl::StatusOr<pg::MigrationReport> again = MigrateSchema(old_.url(), Quick());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->applied, 0);
  EXPECT_NE(One(old_.url(),
                "SELECT string_agg(checksum, ',' ORDER BY version) FROM "
                "schema_migrations WHERE version <= 7"),
            release_sums);
}

}  // namespace
}  // namespace leadflow::crm
