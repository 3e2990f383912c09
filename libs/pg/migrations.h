#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace leadflow::pg {

/// One numbered schema change. Versions are applied in order, each in its own transaction,
/// unless its first line is kNoTransactionMarker (see ApplyMigrations).
struct Migration {
  int version;
  std::string name;
  std::string sql;
};

/// The first line of a migration that must run outside a transaction (CREATE INDEX
/// CONCURRENTLY, which PostgreSQL refuses inside one).
inline constexpr std::string_view kNoTransactionMarker = "-- leadflow:no-transaction";

/// A release that applied migrations whose text was rewritten in place afterwards (before their
/// checksums were recorded): a database it migrated holds another schema than the current texts
/// make, and the migrations after them may not apply to it. See ApplyMigrations.
struct PriorRelease {
  /// How messages and logs name it ("fcdca24").
  std::string name;
  /// Its newest migration: a database it migrated records exactly 1..newest.
  int newest = 0;
  /// The texts it applied of the migrations rewritten since (the others are the current ones).
  std::vector<Migration> texts;
  /// One transaction that brings a database it migrated to the schema the current texts of
  /// 1..newest make (or a stronger one: a constraint valid where the current text leaves it NOT
  /// VALID for a later migration to validate, an index a later migration builds IF NOT EXISTS).
  std::string bridge;
};

struct MigrationOptions {
  /// lock_timeout of every statement the migrations run, so that a migration queued behind a
  /// long transaction gives up instead of making every reader and writer of the table queue
  /// behind it. Zero: no limit (PostgreSQL's default; never in production).
  std::chrono::milliseconds lock_timeout{5000};
  /// Attempts of one migration that fails on a lock timeout (or a deadlock) before the run
  /// fails; at least 1.
  int lock_attempts = 10;
  /// Wait before the second attempt, doubled before each further one, at most retry_backoff_max.
  std::chrono::milliseconds retry_backoff{1000};
  std::chrono::milliseconds retry_backoff_max{30000};
  /// How long a run waits for another run (holding the migration lock) to finish before it
  /// fails. Zero: no limit.
  std::chrono::milliseconds migrate_lock_wait{std::chrono::minutes(10)};
  /// Called after each lock timeout that will be retried (attempt = the attempt that failed,
  /// from 1), before the wait; every retry is also logged. For a metric, or a test.
  std::function<void(const Migration& migration, int attempt)> on_lock_retry;
  /// Releases whose databases are brought to the current texts by their bridge before the
  /// first pending migration (see ApplyMigrations).
  std::vector<PriorRelease> prior_releases;
};

struct MigrationReport {
  /// Migrations applied by this run.
  int applied = 0;
  /// Attempts that failed on a lock timeout or deadlock and were retried.
  int lock_retries = 0;
  /// INVALID indexes (left by a CREATE INDEX CONCURRENTLY that failed half-way) dropped before
  /// their statement ran again.
  int invalid_indexes_dropped = 0;
  /// The prior release whose database this run bridged to the current texts; empty if none.
  std::string bridged_from;
  /// Migrations whose current checksum this run recorded once it had identified their text (by
  /// the schema they made, or as a prior release's), with a bridge or alone.
  int checksums_recorded = 0;
};

/// Applies the migrations not yet recorded in schema_migrations, under a session advisory lock so
/// that several replicas (or a Job and a pod) starting at once apply each exactly once.
///
/// - A transactional migration runs in one transaction with `lock_timeout`; on a lock timeout or
///   a deadlock it is rolled back and tried again after a backoff, at most `lock_attempts` times.
/// - A migration whose first line is kNoTransactionMarker runs outside a transaction and holds
///   exactly one statement, or only `CREATE [UNIQUE] INDEX CONCURRENTLY IF NOT EXISTS`
///   statements (each idempotent, run one after the other). Before each CREATE INDEX
///   CONCURRENTLY, an INVALID index of that name (what a failed or interrupted build leaves) is
///   dropped, so a rerun builds it again. Lock timeouts are retried as above.
/// - Each applied migration's SHA-256 is recorded; a recorded migration whose text has changed
///   since is refused (FailedPrecondition) before anything is applied, unless it is the text a
///   prior release applied (below). Rows recorded before checksums existed (NULL) are checked
///   only for the migrations a prior release applied another text of, as follows.
/// - Prior releases (`options.prior_releases`): a database whose applied migrations are a prior
///   release's (recorded with its texts' checksums, or without checksums and a schema that only
///   its texts make) gets the release's bridge, in one transaction with the recorded checksums
///   set to the current texts', before the first pending migration. For rows without a checksum
///   the texts are told apart by replaying each known text set (the current one, each release's)
///   into a scratch schema in a transaction that is rolled back, and comparing every column,
///   constraint, index, trigger, function and sequence those migrations create, change or drop
///   with the database's: the current texts' checksums are recorded when they match, the bridge
///   runs when a release's do, and when none does the run fails (FailedPrecondition) naming the
///   migration and what differs. This needs the CREATE privilege on the database, and is done
///   only while the database is at most at the release's newest migration: past it, the rows
///   without a checksum are left unchecked, as a release's text is expected to stop the
///   migration after it (that is why it has a bridge; fcdca24's stops 0008).
///
/// A database already past this binary's newest migration (the binary of the previous release,
/// started during a rollout or a rollback) is left alone: nothing is applied, and that is a
/// success when every migration this binary knows is recorded, unchanged.
///
/// Fails with InvalidArgument, before applying anything, on a pending migration that breaks the
/// rules above, and with FailedPrecondition when a newer database lacks one of this binary's
/// migrations.
absl::StatusOr<MigrationReport> ApplyMigrations(const std::string& url,
                                                const std::vector<Migration>& all,
                                                const MigrationOptions& options);

/// The same with the default options; returns how many were applied.
absl::StatusOr<int> ApplyMigrations(const std::string& url, const std::vector<Migration>& all);

/// True when the migration's first line is kNoTransactionMarker.
bool IsNoTransaction(const Migration& migration);

/// The statements of a SQL text, split at semicolons outside comments, quoted strings, quoted
/// identifiers and dollar-quoted bodies; statements holding only comments and blanks are left
/// out. Each is returned without its semicolon.
std::vector<std::string> SplitStatements(std::string_view sql);

/// Checks a migration against the rules of ApplyMigrations (InvalidArgument naming the
/// migration and the rule).
absl::Status CheckMigration(const Migration& migration);

}  // namespace leadflow::pg
