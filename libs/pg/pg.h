#pragma once

#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <pqxx/connection>

#include "absl/status/status.h"

namespace leadflow::pg {

/// A named SQL statement. The name is its prepared-statement name and its metric label; every
/// statement of a service lives in one table of these.
struct Statement {
  const char* name;
  const char* sql;
};

/// Prepares every statement on a fresh connection.
void PrepareAll(pqxx::connection& connection, const std::vector<Statement>& statements);

/// Maps a libpqxx exception onto a status. With a SQLSTATE, CodeOfSqlState decides; a broken
/// connection, a commit in doubt and any other libpqxx failure without a SQLSTATE are
/// Unavailable; a conversion error Internal; std::bad_alloc ResourceExhausted; anything else
/// Internal.
///
/// The message is the SQLSTATE and the first line of the server's message only: never the
/// DETAIL/CONTEXT lines (which quote row contents), and for data exceptions (class 22) not the
/// offending value either. Statuses made here carry the SQLSTATE as a payload (see SqlState).
absl::Status ToStatus(const std::exception& error);

/// The one place a SQLSTATE is judged: the server or its surroundings (classes 08, 25, 28, 3D,
/// 3F, 42, 53 but 53200, 55, 57, 58, XX001, XX002, 0A000, 40003) are Unavailable; a serialization
/// failure or deadlock (40001, 40P01, 40000) Aborted; a unique violation (23505) AlreadyExists;
/// other integrity violations (class 23, 40002) FailedPrecondition; data exceptions (class 22)
/// InvalidArgument; 53200 and class 54 ResourceExhausted; XX000, P0001 and anything unlisted
/// Internal.
absl::StatusCode CodeOfSqlState(std::string_view state);

/// The SQLSTATE of a status made by ToStatus ("" for a libpqxx error without one, such as a
/// broken connection or a conversion error); nullopt when the status did not come from
/// PostgreSQL at all.
std::optional<std::string> SqlState(const absl::Status& status);

/// What to do about a failed statement or transaction. The single place where a failure is
/// judged; every caller (the inbound consumer, the API) acts on this.
enum class FailureKind {
  /// Not a failure (OK).
  kNone,
  /// The database or its surroundings are unwell (down, overloaded, a deadlock, a bad deploy):
  /// retry the same work later; never blame the data.
  kTransient,
  /// The data itself is refused (classes 22 and 23): retrying cannot help; find the culprit.
  kData,
  /// Deterministic but not about the data's validity (53200, 54xxx, XX000, P0001, a conversion
  /// error): retry a bounded number of times, then narrow the work down and give up on what
  /// still fails alone (unless every part fails alike: see BatchProcessor).
  kPersistent,
};

/// The one complete decision, over every status code.
FailureKind ClassifyFailure(absl::StatusCode code);

/// True for failures worth retrying as a whole transaction (FailureKind::kTransient).
bool IsRetryable(const absl::Status& status);

/// PostgreSQL array literals for unnest($1::text[]) parameters: one round trip for many rows.
std::string TextArray(const std::vector<std::string>& values);
std::string TextArray(const std::vector<std::optional<std::string>>& values);
std::string IntArray(const std::vector<int64_t>& values);
/// Zero means NULL (ids are never zero).
std::string IdArrayZeroNull(const std::vector<int64_t>& values);
std::string BoolArray(const std::vector<bool>& values);

/// PostgreSQL text cannot hold NUL bytes; inbound text is cleaned with this before it is stored.
std::string StripNul(std::string_view text);

}  // namespace leadflow::pg
