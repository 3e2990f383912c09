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

/// Maps a libpqxx exception onto a status: a broken connection, insufficient resources, a lock
/// timeout or a cancelled query is Unavailable; a serialization failure or deadlock is Aborted
/// (retry the transaction); a unique violation AlreadyExists; a check / foreign-key / not-null
/// violation FailedPrecondition; a data exception (class 22) InvalidArgument; anything else
/// Internal.
absl::Status ToStatus(const std::exception& error);

/// True for the codes ToStatus gives to failures worth retrying as a whole transaction.
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
