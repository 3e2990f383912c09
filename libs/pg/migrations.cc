#include "pg/migrations.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <pqxx/pqxx>
#include <regex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "pg/pg.h"

namespace leadflow::pg {
namespace {

// Any constant shared by every LeadFlow binary: "LFMIGRAT" in ASCII.
constexpr int64_t kMigrationLockKey = 0x4C464D4947524154;

// One statement of a migration: its text as written (leading comments left out), and its code:
// the same without any comment and with every quoted string emptied, for recognising it.
struct Piece {
  std::string text;
  std::string code;
};

bool IsIdentifierChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '$';
}

std::vector<Piece> Split(std::string_view sql) {
  std::vector<Piece> pieces;
  Piece current;
  size_t start = std::string_view::npos;  // where the current statement's first code begins
  size_t i = 0;
  const size_t n = sql.size();
  auto flush = [&](size_t end) {
    if (start != std::string_view::npos) {
      std::string text(sql.substr(start, end - start));
      while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())) != 0) {
        text.pop_back();
      }
      current.text = std::move(text);
      pieces.push_back(std::move(current));
    }
    current = Piece{};
    start = std::string_view::npos;
  };
  auto mark = [&](size_t at) {
    if (start == std::string_view::npos) {
      start = at;
    }
  };
  while (i < n) {
    char c = sql[i];
    if (c == '-' && i + 1 < n && sql[i + 1] == '-') {
      size_t end = sql.find('\n', i);
      i = end == std::string_view::npos ? n : end;
      current.code.push_back(' ');
      continue;
    }
    if (c == '/' && i + 1 < n && sql[i + 1] == '*') {
      int depth = 0;
      while (i < n) {
        if (sql[i] == '/' && i + 1 < n && sql[i + 1] == '*') {
          ++depth;
          i += 2;
        } else if (sql[i] == '*' && i + 1 < n && sql[i + 1] == '/') {
          i += 2;
          if (--depth == 0) {
            break;
          }
        } else {
          ++i;
        }
      }
      current.code.push_back(' ');
      continue;
    }
    if (c == '\'' || c == '"') {
      mark(i);
      // E'…' strings take backslash escapes.
      bool backslash = c == '\'' && i > 0 && (sql[i - 1] == 'E' || sql[i - 1] == 'e') &&
                       (i < 2 || !IsIdentifierChar(sql[i - 2]));
      size_t j = i + 1;
      while (j < n) {
        if (backslash && sql[j] == '\\') {
          j += 2;
          continue;
        }
        if (sql[j] == c) {
          if (j + 1 < n && sql[j + 1] == c) {
            j += 2;
            continue;
          }
          break;
        }
        ++j;
      }
      current.code.push_back(c);
      if (c == '"') {  // an identifier: its name matters for recognising statements
        current.code.append(sql.substr(i + 1, std::min(j, n) - i - 1));
      }
      current.code.push_back(c);
      i = std::min(j + 1, n);
      continue;
    }
    if (c == '$' && (i == 0 || !IsIdentifierChar(sql[i - 1]))) {
      size_t j = i + 1;
      while (j < n && (std::isalpha(static_cast<unsigned char>(sql[j])) != 0 || sql[j] == '_' ||
                       (j > i + 1 && std::isdigit(static_cast<unsigned char>(sql[j])) != 0))) {
        ++j;
      }
      if (j < n && sql[j] == '$') {
        std::string_view tag = sql.substr(i, j - i + 1);
        size_t close = sql.find(tag, j + 1);
        mark(i);
        current.code.append("''");
        i = close == std::string_view::npos ? n : close + tag.size();
        continue;
      }
    }
    if (c == ';') {
      flush(i);
      ++i;
      continue;
    }
    if (std::isspace(static_cast<unsigned char>(c)) == 0) {
      mark(i);
    }
    current.code.push_back(c);
    ++i;
  }
  flush(n);
  return pieces;
}

const std::regex& ConcurrentIndexPattern() {
  static const std::regex pattern(
      R"(^\s*create\s+(unique\s+)?index\s+concurrently\s+(if\s+not\s+exists\s+)?)"
      R"(((?:"[^"]+"|[a-z_][a-z0-9_$]*)(?:\.(?:"[^"]+"|[a-z_][a-z0-9_$]*))?)\s+on\b)",
      std::regex::icase | std::regex::ECMAScript);
  return pattern;
}

// The index a CREATE INDEX CONCURRENTLY statement builds, as written; nullopt for any other
// statement.
std::optional<std::string> ConcurrentIndexName(const Piece& piece, bool* if_not_exists) {
  std::smatch match;
  if (!std::regex_search(piece.code, match, ConcurrentIndexPattern())) {
    return std::nullopt;
  }
  if (if_not_exists != nullptr) {
    *if_not_exists = match[2].matched;
  }
  return match[3].str();
}

std::string Label(const Migration& migration) {
  return absl::StrFormat("migration %04d %s", migration.version, migration.name);
}

bool IsLockFailure(const absl::Status& status) {
  std::optional<std::string> state = SqlState(status);
  // 55P03 lock_not_available (lock_timeout), 40P01 deadlock_detected.
  return state.has_value() && (*state == "55P03" || *state == "40P01");
}

std::string Checksum(pqxx::connection& connection, const std::string& sql) {
  pqxx::nontransaction work(connection);
  return work.exec_params1("SELECT encode(sha256(convert_to($1, 'UTF8')), 'hex')", sql)[0]
      .as<std::string>();
}

absl::Status ApplyOnce(pqxx::connection& connection, const Migration& migration,
                       const std::string& checksum, MigrationReport& report) {
  try {
    if (!IsNoTransaction(migration)) {
      pqxx::work work(connection);
      work.exec(migration.sql);
      work.exec_params(
          "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
          migration.version, migration.name, checksum);
      work.commit();
      return absl::OkStatus();
    }
    for (const Piece& piece : Split(migration.sql)) {
      if (std::optional<std::string> index = ConcurrentIndexName(piece, nullptr)) {
        pqxx::nontransaction work(connection);
        auto invalid = work.exec_params(
            "SELECT 1 FROM pg_index WHERE indexrelid = to_regclass($1) AND "
            "NOT indisvalid",
            *index);
        if (!invalid.empty()) {
          spdlog::warn(
              "{}: index {} is INVALID (an earlier build failed or was interrupted); dropping it "
              "to build it again",
              Label(migration), *index);
          work.exec("DROP INDEX CONCURRENTLY IF EXISTS " + *index);
          ++report.invalid_indexes_dropped;
        }
      }
      pqxx::nontransaction work(connection);
      work.exec(piece.text);
    }
    pqxx::work work(connection);
    work.exec_params("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                     migration.version, migration.name, checksum);
    work.commit();
    return absl::OkStatus();
  } catch (const std::exception& error) {
    return ToStatus(error);
  }
}

absl::StatusOr<MigrationReport> ApplyLocked(pqxx::connection& connection,
                                            const std::vector<Migration>& all,
                                            const MigrationOptions& options) {
  {
    pqxx::nontransaction work(connection);
    work.exec0(absl::StrCat("SET lock_timeout = ", options.lock_timeout.count()));
  }
  std::map<int, std::optional<std::string>> done;  // version → recorded checksum
  {
    pqxx::work work(connection);
    work.exec0(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version integer PRIMARY KEY, name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now(), checksum text)");
    // Databases migrated before checksums were recorded.
    if (work.exec("SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
                  "AND table_name = 'schema_migrations' AND column_name = 'checksum'")
            .empty()) {
      work.exec0("ALTER TABLE schema_migrations ADD COLUMN checksum text");
    }
    for (const auto& row : work.exec("SELECT version, checksum FROM schema_migrations")) {
      done[row[0].as<int>()] =
          row[1].is_null() ? std::nullopt : std::optional<std::string>(row[1].as<std::string>());
    }
    work.commit();
  }
  std::vector<Migration> ordered = all;
  std::sort(ordered.begin(), ordered.end(),
            [](const Migration& a, const Migration& b) { return a.version < b.version; });
  int newest_known = ordered.empty() ? 0 : ordered.back().version;
  const bool newer = !done.empty() && done.rbegin()->first > newest_known;
  if (newer) {
    // A binary of the previous release (a pod restarted during a rollout, or a rollback): the
    // schema ahead of it is meant to keep it working (docs/operations.md, expand/contract). It
    // applies nothing; but a schema that lacks one of its own migrations is not one it knows.
    for (const Migration& migration : ordered) {
      if (done.count(migration.version) == 0) {
        return absl::FailedPreconditionError(absl::StrCat(
            "database schema is at version ", done.rbegin()->first, ", newer than this binary's ",
            newest_known, ", and lacks this binary's ", Label(migration)));
      }
    }
  }
  std::vector<std::pair<const Migration*, std::string>> pending;
  for (const Migration& migration : ordered) {
    std::string checksum = Checksum(connection, migration.sql);
    auto applied = done.find(migration.version);
    if (applied == done.end()) {
      if (absl::Status valid = CheckMigration(migration); !valid.ok()) {
        return valid;
      }
      pending.emplace_back(&migration, std::move(checksum));
    } else if (applied->second.has_value() && *applied->second != checksum) {
      return absl::FailedPreconditionError(absl::StrCat(
          Label(migration),
          " was changed after it was applied to this database (its SHA-256 differs from the one "
          "recorded in schema_migrations): restore it and put the change in a new migration"));
    }
  }
  MigrationReport report;
  if (newer) {
    spdlog::warn(
        "database schema is at version {}, newer than this binary's {}: nothing to apply (a "
        "rollout or a rollback in progress)",
        done.rbegin()->first, newest_known);
    return report;
  }
  const int attempts = std::max(1, options.lock_attempts);
  for (const auto& [migration, checksum] : pending) {
    std::chrono::milliseconds backoff = options.retry_backoff;
    for (int attempt = 1;; ++attempt) {
      absl::Status status = ApplyOnce(connection, *migration, checksum, report);
      if (status.ok()) {
        break;
      }
      if (!IsLockFailure(status)) {
        return absl::Status(status.code(), absl::StrCat(Label(*migration), ": ", status.message()));
      }
      if (attempt >= attempts) {
        return absl::UnavailableError(absl::StrCat(
            Label(*migration), ": gave up after ", attempt, " attempts, each stopped by ",
            status.message(), " (lock_timeout ", options.lock_timeout.count(),
            " ms): a long transaction holds a table it changes (see pg_stat_activity); ",
            IsNoTransaction(*migration) ? "statements before the stopped one stay applied"
                                        : "nothing of it was applied",
            "; run migrate again once that transaction has ended"));
      }
      spdlog::warn("{}: attempt {}/{} stopped ({}), lock_timeout {} ms; retrying in {} ms",
                   Label(*migration), attempt, attempts, std::string(status.message()),
                   options.lock_timeout.count(), backoff.count());
      ++report.lock_retries;
      if (options.on_lock_retry) {
        options.on_lock_retry(*migration, attempt);
      }
      std::this_thread::sleep_for(backoff);
      backoff = std::min(backoff * 2, std::max(options.retry_backoff_max, options.retry_backoff));
    }
    spdlog::info("{} applied", Label(*migration));
    ++report.applied;
  }
  return report;
}

}  // namespace

bool IsNoTransaction(const Migration& migration) {
  std::string_view sql = migration.sql;
  std::string_view first = sql.substr(0, sql.find('\n'));
  while (!first.empty() && std::isspace(static_cast<unsigned char>(first.back())) != 0) {
    first.remove_suffix(1);
  }
  return first == kNoTransactionMarker;
}

std::vector<std::string> SplitStatements(std::string_view sql) {
  std::vector<std::string> statements;
  for (Piece& piece : Split(sql)) {
    statements.push_back(std::move(piece.text));
  }
  return statements;
}

absl::Status CheckMigration(const Migration& migration) {
  std::vector<Piece> pieces = Split(migration.sql);
  if (pieces.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(Label(migration), " holds no statement"));
  }
  if (!IsNoTransaction(migration)) {
    if (migration.sql.find(kNoTransactionMarker) != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(Label(migration), ": '",
                                                     std::string(kNoTransactionMarker),
                                                     "' counts only as its first line"));
    }
    static const std::regex concurrently(R"(\bconcurrently\b)", std::regex::icase);
    for (size_t i = 0; i < pieces.size(); ++i) {
      if (std::regex_search(pieces[i].code, concurrently)) {
        return absl::InvalidArgumentError(absl::StrCat(
            Label(migration), ": statement ", i + 1,
            " runs CONCURRENTLY, which PostgreSQL refuses inside a transaction: put it in a "
            "migration whose first line is '",
            std::string(kNoTransactionMarker), "'"));
      }
    }
    return absl::OkStatus();
  }
  if (pieces.size() == 1) {
    return absl::OkStatus();
  }
  for (size_t i = 0; i < pieces.size(); ++i) {
    bool if_not_exists = false;
    if (!ConcurrentIndexName(pieces[i], &if_not_exists).has_value() || !if_not_exists) {
      return absl::InvalidArgumentError(
          absl::StrCat(Label(migration),
                       ": a no-transaction migration holds exactly one statement, or only "
                       "CREATE [UNIQUE] INDEX CONCURRENTLY IF NOT EXISTS statements; it holds ",
                       pieces.size(), " and statement ", i + 1, " is not such an index"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<MigrationReport> ApplyMigrations(const std::string& url,
                                                const std::vector<Migration>& all,
                                                const MigrationOptions& options) {
  try {
    pqxx::connection connection(url);
    try {
      // Another migrate (the Job, another pod's init container) may be applying: wait for it,
      // but not for ever.
      pqxx::nontransaction lock(connection);
      lock.exec0(absl::StrCat("SET lock_timeout = ", options.migrate_lock_wait.count()));
      lock.exec_params("SELECT pg_advisory_lock($1)", kMigrationLockKey);
    } catch (const pqxx::sql_error& error) {
      if (error.sqlstate() != "55P03") {
        throw;
      }
      return absl::UnavailableError(absl::StrCat(
          "another migrate has held the migration lock for more than ",
          options.migrate_lock_wait.count(),
          " ms (see pg_stat_activity: pg_advisory_lock); run migrate again once it has finished"));
    }
    absl::StatusOr<MigrationReport> result;
    try {
      result = ApplyLocked(connection, all, options);
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

absl::StatusOr<int> ApplyMigrations(const std::string& url, const std::vector<Migration>& all) {
  absl::StatusOr<MigrationReport> report = ApplyMigrations(url, all, MigrationOptions{});
  if (!report.ok()) {
    return report.status();
  }
  return report->applied;
}

}  // namespace leadflow::pg
