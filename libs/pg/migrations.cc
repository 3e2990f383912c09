#include "pg/migrations.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <pqxx/pqxx>
#include <regex>
#include <set>
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

// What a schema holds, as "<kind> <name>" → its definition as PostgreSQL prints it: columns
// (type, NOT NULL, default or generation expression, position), constraints (with NOT VALID),
// indexes (with INVALID), triggers, functions and sequences. Printed with the schema alone on the
// search path and its name taken out of what PostgreSQL qualifies anyway, so that two schemas
// made by the same statements describe the same.
using Fingerprint = std::map<std::string, std::string>;

// Where a known text set is replayed, in a transaction that is always rolled back.
constexpr char kReplaySchema[] = "leadflow_migration_replay";

Fingerprint Describe(pqxx::transaction_base& work, const std::string& schema) {
  static const char* const kQueries[] = {
      "SELECT 'relation ' || c.relname, c.relkind::text FROM pg_class c "
      "WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1) "
      "AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')",
      "SELECT 'column ' || c.relname || '.' || a.attname, format_type(a.atttypid, a.atttypmod) "
      "|| CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END "
      "|| CASE WHEN a.attgenerated = 's' "
      "THEN ' GENERATED ALWAYS AS (' || pg_get_expr(d.adbin, d.adrelid) || ') STORED' "
      "WHEN d.adbin IS NOT NULL THEN ' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid) ELSE '' END "
      "|| CASE WHEN a.attidentity <> '' THEN ' IDENTITY ' || a.attidentity::text ELSE '' END "
      "|| ' (column ' || row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum) || ')' "
      "FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid "
      "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
      "WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1) "
      "AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND a.attnum > 0 AND NOT a.attisdropped",
      // pg_get_constraintdef prints NOT VALID.
      "SELECT 'constraint ' || c.relname || '.' || k.conname, pg_get_constraintdef(k.oid) "
      "|| CASE WHEN k.condeferrable THEN ' DEFERRABLE' ELSE '' END "
      "|| CASE WHEN k.condeferred THEN ' INITIALLY DEFERRED' ELSE '' END "
      "FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid "
      "WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1)",
      "SELECT 'index ' || i.relname, replace(pg_get_indexdef(x.indexrelid), "
      "' ON ' || quote_ident($1) || '.', ' ON ') "
      "|| CASE WHEN x.indisvalid THEN '' ELSE ' (INVALID)' END "
      "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
      "WHERE i.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1)",
      "SELECT 'trigger ' || c.relname || '.' || t.tgname, replace(pg_get_triggerdef(t.oid), "
      "' ON ' || quote_ident($1) || '.', ' ON ') || ' (enabled ' || t.tgenabled::text || ')' "
      "FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
      "WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1) "
      "AND NOT t.tgisinternal",
      "SELECT 'function ' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')', "
      "'RETURNS ' || pg_get_function_result(p.oid) || ' LANGUAGE ' || l.lanname "
      "|| ', body md5 ' || md5(p.prosrc) "
      "FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang "
      "WHERE p.pronamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1)",
      "SELECT 'sequence ' || c.relname, format_type(s.seqtypid, NULL) || ' START ' || s.seqstart "
      "|| ' INCREMENT ' || s.seqincrement || ' MINVALUE ' || s.seqmin || ' MAXVALUE ' "
      "|| s.seqmax || CASE WHEN s.seqcycle THEN ' CYCLE' ELSE '' END "
      "FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid "
      "WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1)",
  };
  work.exec0("SET LOCAL search_path = " + work.quote_name(schema));
  Fingerprint fingerprint;
  for (const char* query : kQueries) {
    for (const auto& row : work.exec_params(query, schema)) {
      fingerprint[row[0].as<std::string>()] = row[1].as<std::string>();
    }
  }
  return fingerprint;
}

// The schema a known text set makes: `texts` applied in order to an empty scratch schema in a
// transaction that is rolled back, described after each one.
absl::StatusOr<std::vector<Fingerprint>> Replay(pqxx::connection& connection,
                                                const std::vector<const Migration*>& texts) {
  try {
    pqxx::work work(connection);
    work.exec0(absl::StrCat("CREATE SCHEMA ", kReplaySchema));
    std::vector<Fingerprint> steps;
    for (const Migration* migration : texts) {
      if (IsNoTransaction(*migration)) {
        return absl::FailedPreconditionError(
            absl::StrCat(Label(*migration), " runs outside a transaction: it cannot be replayed"));
      }
      work.exec0(absl::StrCat("SET LOCAL search_path = ", kReplaySchema));
      work.exec(migration->sql);
      steps.push_back(Describe(work, kReplaySchema));
    }
    work.abort();
    return steps;
  } catch (const std::exception& error) {
    absl::Status status = ToStatus(error);
    std::optional<std::string> state = SqlState(status);
    return absl::Status(
        status.code(),
        absl::StrCat("replaying the known texts of the migrations into a scratch schema (",
                     kReplaySchema, ", rolled back) failed: ", status.message(),
                     state.has_value() && *state == "42501"
                         ? " (migrate needs the CREATE privilege on the database for this check)"
                         : ""));
  }
}

// The keys the steps of `versions` create, change or drop in a replay (key → that step's
// version; the last one when several touch it).
std::map<std::string, int> TouchedBy(const std::vector<const Migration*>& texts,
                                     const std::vector<Fingerprint>& steps,
                                     const std::set<int>& versions) {
  std::map<std::string, int> touched;
  static const Fingerprint kEmpty;
  for (size_t i = 0; i < texts.size(); ++i) {
    if (versions.count(texts[i]->version) == 0) {
      continue;
    }
    const Fingerprint& before = i == 0 ? kEmpty : steps[i - 1];
    const Fingerprint& after = steps[i];
    for (const auto& [key, value] : after) {
      auto was = before.find(key);
      if (was == before.end() || was->second != value) {
        touched[key] = texts[i]->version;
      }
    }
    for (const auto& [key, value] : before) {
      if (after.count(key) == 0) {
        touched[key] = texts[i]->version;
      }
    }
  }
  return touched;
}

std::optional<std::string> Lookup(const Fingerprint& fingerprint, const std::string& key) {
  auto found = fingerprint.find(key);
  if (found == fingerprint.end()) {
    return std::nullopt;
  }
  return found->second;
}

std::string Shown(const std::optional<std::string>& value) {
  return value.has_value() ? absl::StrCat("`", *value, "`") : "absent";
}

// What a prior release's bridge needs: the release, and the versions whose current checksum is
// recorded with it (or without a bridge, when the current texts were identified).
struct Identified {
  const PriorRelease* release = nullptr;
  std::set<int> record;
};

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

// Which texts of the migrations a prior release rewrote this database applied (see
// ApplyMigrations): a bridge to run, checksums to record, or a refusal naming what differs.
absl::StatusOr<Identified> Identify(pqxx::connection& connection,
                                    const std::vector<Migration>& ordered,
                                    const std::map<int, std::string>& checksums,
                                    const std::map<int, std::optional<std::string>>& done,
                                    const std::vector<PriorRelease>& releases) {
  Identified identified;
  const int newest_applied = done.empty() ? 0 : done.rbegin()->first;
  for (const PriorRelease& release : releases) {
    std::set<int> rewritten;  // versions whose release text differs from the current one
    std::set<int> unrecorded, release_text, current_text;  // of those applied here
    for (const Migration& text : release.texts) {
      auto current = checksums.find(text.version);
      std::string sum = Checksum(connection, text.sql);
      if (current != checksums.end() && current->second == sum) {
        continue;
      }
      rewritten.insert(text.version);
      auto applied = done.find(text.version);
      if (applied == done.end()) {
        continue;
      }
      if (!applied->second.has_value()) {
        unrecorded.insert(text.version);
      } else if (*applied->second == sum) {
        release_text.insert(text.version);
      } else if (current != checksums.end() && *applied->second == current->second) {
        current_text.insert(text.version);
      }
    }
    auto needs_whole_release = [&](std::string_view how) -> absl::Status {
      for (int version = 1; version <= release.newest; ++version) {
        if (done.count(version) == 0 || checksums.count(version) == 0) {
          return absl::FailedPreconditionError(absl::StrFormat(
              "schema_migrations shows %s, but not the whole of that release (migration %04d "
              "missing or unknown): there is no bridge from this state",
              how, version));
        }
      }
      if (newest_applied != release.newest) {
        return absl::FailedPreconditionError(absl::StrFormat(
            "schema_migrations shows %s, and migrations up to %04d applied after it: there is no "
            "bridge from this state",
            how, newest_applied));
      }
      return absl::OkStatus();
    };
    if (!release_text.empty()) {
      std::string how = absl::StrCat("release ", release.name, "'s text of migration ",
                                     absl::StrFormat("%04d", *release_text.begin()));
      if (!current_text.empty()) {
        return absl::FailedPreconditionError(absl::StrFormat(
            "schema_migrations shows %s and the current text of migration %04d: no known "
            "release applied both; restore the database from a backup",
            how, *current_text.begin()));
      }
      if (absl::Status whole = needs_whole_release(how); !whole.ok()) {
        return whole;
      }
      identified.release = &release;
      for (int version : rewritten) {
        identified.record.insert(version);
      }
      return identified;
    }
    if (unrecorded.empty() || newest_applied > release.newest) {
      // Recorded with the current checksums, or past the release's newest migration: the
      // migration after it could not have applied to its schema (it is why the bridge exists).
      continue;
    }

    // Recorded without checksums: the schema tells which texts made it.
    std::vector<const Migration*> current_texts, release_texts;
    for (const Migration& migration : ordered) {
      if (migration.version > newest_applied) {
        break;
      }
      if (done.count(migration.version) == 0) {
        continue;
      }
      current_texts.push_back(&migration);
      const Migration* text = &migration;
      for (const Migration& earlier : release.texts) {
        if (earlier.version == migration.version) {
          text = &earlier;
        }
      }
      release_texts.push_back(text);
    }
    absl::StatusOr<std::vector<Fingerprint>> current_steps = Replay(connection, current_texts);
    if (!current_steps.ok()) {
      return current_steps.status();
    }
    absl::StatusOr<std::vector<Fingerprint>> release_steps = Replay(connection, release_texts);
    if (!release_steps.ok()) {
      return release_steps.status();
    }
    Fingerprint live;
    {
      pqxx::work work(connection);
      std::string schema = work.exec1("SELECT current_schema()")[0].as<std::string>();
      live = Describe(work, schema);
      work.abort();
    }
    std::map<std::string, int> current_touched =
        TouchedBy(current_texts, *current_steps, rewritten);
    std::map<std::string, int> release_touched =
        TouchedBy(release_texts, *release_steps, rewritten);
    std::map<std::string, int> touched = current_touched;
    for (const auto& [key, version] : release_touched) {
      touched.emplace(key, version);
    }
    const Fingerprint& current_made = current_steps->back();
    const Fingerprint& release_made = release_steps->back();
    std::vector<std::string> current_differs, release_differs;
    for (const auto& [key, version] : touched) {
      std::optional<std::string> here = Lookup(live, key);
      if (here != Lookup(current_made, key)) {
        current_differs.push_back(key);
      }
      if (here != Lookup(release_made, key)) {
        release_differs.push_back(key);
      }
    }
    std::string unrecorded_list;
    for (int version : unrecorded) {
      absl::StrAppend(&unrecorded_list, unrecorded_list.empty() ? "" : ", ",
                      absl::StrFormat("%04d", version));
    }
    if (current_differs.empty()) {
      spdlog::info(
          "migrations {} recorded without a checksum made the schema their current texts make: "
          "recording their checksums",
          unrecorded_list);
      identified.record = unrecorded;
      return identified;
    }
    if (release_differs.empty()) {
      std::string how = absl::StrCat("migrations ", unrecorded_list,
                                     " recorded without a checksum and the schema release ",
                                     release.name, "'s texts of them make");
      if (absl::Status whole = needs_whole_release(how); !whole.ok()) {
        return whole;
      }
      identified.release = &release;
      identified.record = rewritten;
      return identified;
    }
    // Neither: name the migrations and what differs, from the closer of the two.
    const std::vector<std::string>& differs =
        release_differs.size() < current_differs.size() ? release_differs : current_differs;
    std::set<int> versions;
    std::string details;
    for (size_t i = 0; i < differs.size(); ++i) {
      const std::string& key = differs[i];
      versions.insert(touched.at(key));
      if (i < 3) {
        absl::StrAppend(&details, "; ", key, " is ", Shown(Lookup(live, key)), " here, made ",
                        Shown(Lookup(current_made, key)), " by the current text, ",
                        Shown(Lookup(release_made, key)), " by release ", release.name, "'s");
      }
    }
    if (differs.size() > 3) {
      absl::StrAppend(&details, "; and ", differs.size() - 3, " more");
    }
    std::string named;
    for (int version : versions) {
      for (const Migration& migration : ordered) {
        if (migration.version == version) {
          absl::StrAppend(&named, named.empty() ? "" : ", ", Label(migration));
        }
      }
    }
    return absl::FailedPreconditionError(absl::StrCat(
        named,
        ": recorded without a checksum (applied before checksums were recorded), and the "
        "schema here is neither what its current text makes nor what release ",
        release.name, "'s makes: it was changed, or another text of it was applied", details,
        ". Nothing was applied; restore the database from a backup or bring it to one of those "
        "texts by hand"));
  }
  return identified;
}

// Runs `attempt` until it succeeds, retrying lock timeouts and deadlocks as options say.
absl::Status WithLockRetries(const Migration& migration, const std::string& label,
                             const MigrationOptions& options, MigrationReport& report,
                             const std::function<absl::Status()>& attempt_once) {
  const int attempts = std::max(1, options.lock_attempts);
  std::chrono::milliseconds backoff = options.retry_backoff;
  for (int attempt = 1;; ++attempt) {
    absl::Status status = attempt_once();
    if (status.ok()) {
      return status;
    }
    if (!IsLockFailure(status)) {
      return absl::Status(status.code(), absl::StrCat(label, ": ", status.message()));
    }
    if (attempt >= attempts) {
      return absl::UnavailableError(
          absl::StrCat(label, ": gave up after ", attempt, " attempts, each stopped by ",
                       status.message(), " (lock_timeout ", options.lock_timeout.count(),
                       " ms): a long transaction holds a table it changes (see pg_stat_activity); ",
                       IsNoTransaction(migration) ? "statements before the stopped one stay applied"
                                                  : "nothing of it was applied",
                       "; run migrate again once that transaction has ended"));
    }
    spdlog::warn("{}: attempt {}/{} stopped ({}), lock_timeout {} ms; retrying in {} ms", label,
                 attempt, attempts, std::string(status.message()), options.lock_timeout.count(),
                 backoff.count());
    ++report.lock_retries;
    if (options.on_lock_retry) {
      options.on_lock_retry(migration, attempt);
    }
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::max(options.retry_backoff_max, options.retry_backoff));
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
  std::map<int, std::string> checksums;
  for (const Migration& migration : ordered) {
    checksums[migration.version] = Checksum(connection, migration.sql);
  }
  Identified identified;
  if (!newer) {
    absl::StatusOr<Identified> found =
        Identify(connection, ordered, checksums, done, options.prior_releases);
    if (!found.ok()) {
      return found.status();
    }
    identified = *std::move(found);
  }
  std::vector<std::pair<const Migration*, std::string>> pending;
  for (const Migration& migration : ordered) {
    const std::string& checksum = checksums.at(migration.version);
    auto applied = done.find(migration.version);
    if (applied == done.end()) {
      if (absl::Status valid = CheckMigration(migration); !valid.ok()) {
        return valid;
      }
      pending.emplace_back(&migration, checksum);
    } else if (applied->second.has_value() && *applied->second != checksum &&
               (identified.release == nullptr || identified.record.count(migration.version) == 0)) {
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
  // The bridge (with the current checksums), or the checksums alone, before anything else.
  if (identified.release != nullptr || !identified.record.empty()) {
    const PriorRelease* release = identified.release;
    Migration bridge{
        release != nullptr ? release->newest : *identified.record.rbegin(),
        release != nullptr ? absl::StrCat("bridge_from_", release->name) : "recorded_checksums",
        release != nullptr ? release->bridge : ""};
    std::string label =
        release != nullptr ? absl::StrCat("bridge from release ", release->name) : "checksums";
    absl::Status bridged = WithLockRetries(bridge, label, options, report, [&]() {
      try {
        pqxx::work work(connection);
        if (release != nullptr) {
          work.exec(release->bridge);
        }
        for (int version : identified.record) {
          work.exec_params0("UPDATE schema_migrations SET checksum = $2 WHERE version = $1",
                            version, checksums.at(version));
        }
        work.commit();
        return absl::OkStatus();
      } catch (const std::exception& error) {
        return ToStatus(error);
      }
    });
    if (!bridged.ok()) {
      return bridged;
    }
    report.checksums_recorded = static_cast<int>(identified.record.size());
    if (release != nullptr) {
      report.bridged_from = release->name;
      spdlog::info(
          "bridge from release {} applied: its schema is now what the current texts of "
          "migrations 1..{} make",
          release->name, release->newest);
    }
  }
  for (const auto& [migration, checksum] : pending) {
    absl::Status status = WithLockRetries(*migration, Label(*migration), options, report, [&]() {
      return ApplyOnce(connection, *migration, checksum, report);
    });
    if (!status.ok()) {
      return status;
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
