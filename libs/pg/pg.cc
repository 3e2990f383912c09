#include "pg/pg.h"

#include <new>
#include <pqxx/pqxx>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"

namespace leadflow::pg {
namespace {

void AppendQuoted(std::string& out, std::string_view value) {
  out.push_back('"');
  for (char c : value) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
    }
    if (c != '\0') {
      out.push_back(c);
    }
  }
  out.push_back('"');
}

}  // namespace

void PrepareAll(pqxx::connection& connection, const std::vector<Statement>& statements) {
  for (const Statement& statement : statements) {
    connection.prepare(statement.name, statement.sql);
  }
}

namespace {

constexpr char kSqlStatePayload[] = "type.leadflow.dev/pg.sqlstate";

bool StartsWith(const std::string& text, const char* prefix) { return text.rfind(prefix, 0) == 0; }

// The first line of a server message, without "ERROR:" and without anything quoting row
// contents: DETAIL/CONTEXT lines are dropped, and a data exception keeps only the text before
// its first ": " (PostgreSQL appends the offending value there).
std::string SafeMessage(const std::string& what, const std::string& state) {
  std::string line = what.substr(0, what.find('\n'));
  for (const char* prefix : {"ERROR:  ", "FATAL:  ", "ERROR: ", "FATAL: "}) {
    if (StartsWith(line, prefix)) {
      line = line.substr(std::string(prefix).size());
      break;
    }
  }
  if (StartsWith(state, "22")) {
    line = line.substr(0, line.find(": "));
  }
  if (line.size() > 200) {
    line.resize(200);
  }
  return state.empty() ? line : absl::StrCat("SQLSTATE ", state, ": ", line);
}

absl::Status WithState(absl::Status status, const std::string& state) {
  status.SetPayload(kSqlStatePayload, absl::Cord(state));
  return status;
}

}  // namespace

absl::Status ToStatus(const std::exception& error) {
  const auto* sql = dynamic_cast<const pqxx::sql_error*>(&error);
  // libpqxx 6 derives its transaction-rollback errors from pqxx::failure, not sql_error: their
  // SQLSTATE is known from the class. Every SQLSTATE is then judged in one place,
  // CodeOfSqlState.
  std::string state = sql != nullptr ? sql->sqlstate() : "";
  if (dynamic_cast<const pqxx::deadlock_detected*>(&error) != nullptr) {
    state = "40P01";
  } else if (dynamic_cast<const pqxx::serialization_failure*>(&error) != nullptr) {
    state = "40001";
  } else if (dynamic_cast<const pqxx::statement_completion_unknown*>(&error) != nullptr) {
    state = "40003";
  } else if (dynamic_cast<const pqxx::transaction_rollback*>(&error) != nullptr) {
    state = "40000";
  }
  const std::string message = SafeMessage(error.what(), state);
  if (dynamic_cast<const pqxx::broken_connection*>(&error) != nullptr ||
      dynamic_cast<const pqxx::in_doubt_error*>(&error) != nullptr) {
    return WithState(absl::UnavailableError(message), state);
  }
  if (dynamic_cast<const pqxx::conversion_error*>(&error) != nullptr) {
    return WithState(absl::InternalError(absl::StrCat("conversion error: ", message)), state);
  }
  if (!state.empty()) {
    return WithState(absl::Status(CodeOfSqlState(state), message), state);
  }
  // No SQLSTATE. A libpqxx failure outside SQL (a lost or unusable connection, an error libpq
  // reports without a code) is about the connection, not the data; memory is a resource; what
  // else is thrown is unknown.
  if (dynamic_cast<const pqxx::failure*>(&error) != nullptr) {
    return WithState(absl::UnavailableError(message), state);
  }
  if (dynamic_cast<const std::bad_alloc*>(&error) != nullptr) {
    return WithState(absl::ResourceExhaustedError(message), state);
  }
  return WithState(absl::InternalError(message), state);
}

absl::StatusCode CodeOfSqlState(std::string_view state) {
  auto is = [&](std::string_view prefix) { return state.substr(0, prefix.size()) == prefix; };
  if (state == "23505") {
    return absl::StatusCode::kAlreadyExists;
  }
  // Class 23 integrity constraints (40002 too: a deferred one, at commit): the row is refused.
  if (is("23") || state == "40002") {
    return absl::StatusCode::kFailedPrecondition;
  }
  // Class 22, data exceptions: the value itself is wrong (bad encoding, too long, …).
  if (is("22")) {
    return absl::StatusCode::kInvalidArgument;
  }
  // 40001 serialization failure, 40P01 deadlock, 40000 rolled back: the transaction may
  // succeed when run again. 40003: whether the statement completed is unknown.
  if (state == "40001" || state == "40P01" || state == "40000") {
    return absl::StatusCode::kAborted;
  }
  // 53200 out of memory (the lock table too) and 54xxx program limits: the same work fails
  // the same way again, though possibly only because of what ran beside it (a smaller part
  // passes).
  if (state == "53200" || is("54")) {
    return absl::StatusCode::kResourceExhausted;
  }
  // The server or its surroundings, never the row: 08 connection; 57P admin shutdown / crash
  // and 57014 query cancelled; 53xxx other resources (disk full, too many connections); 25xxx
  // transaction state (25006: read-only, a failover that landed on a standby or
  // default_transaction_read_only during maintenance); 55xxx object not in prerequisite state
  // (55P03 lock not available, 55006 object in use); 58xxx system errors (58030 disk I/O);
  // XX001 / XX002 data or index corruption; 0A000 feature not supported (a server or
  // extension at the wrong version); 28 / 42 / 3D / 3F authorisation or schema mismatches and
  // 40003 completion unknown. An operator, a deploy or the failover fixes those, not the data:
  // dead-lettering good events because of them would drain the stream into the DLQ.
  if (is("08") || is("57") || is("53") || is("25") || is("55") || is("58") || state == "XX001" ||
      state == "XX002" || state == "0A000" || is("28") || is("42") || is("3D") || is("3F") ||
      state == "40003") {
    return absl::StatusCode::kUnavailable;
  }
  // XX000 internal error, P0001 raised by a trigger or function, and anything not listed:
  // deterministic for all we know; bounded retries, then the batch is split (pg::FailureKind).
  return absl::StatusCode::kInternal;
}

std::optional<std::string> SqlState(const absl::Status& status) {
  auto payload = status.GetPayload(kSqlStatePayload);
  if (!payload) {
    return std::nullopt;
  }
  return std::string(*payload);
}

FailureKind ClassifyFailure(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return FailureKind::kNone;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kUnauthenticated:
      return FailureKind::kTransient;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kNotFound:
      return FailureKind::kData;
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kUnimplemented:
    case absl::StatusCode::kDoNotUseReservedForFutureExpansionUseDefaultInSwitchInstead_:
      return FailureKind::kPersistent;
  }
  return FailureKind::kPersistent;  // a value outside the enum
}

bool IsRetryable(const absl::Status& status) {
  return ClassifyFailure(status.code()) == FailureKind::kTransient;
}

std::string TextArray(const std::vector<std::string>& values) {
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) {
      out.push_back(',');
    }
    AppendQuoted(out, values[i]);
  }
  out.push_back('}');
  return out;
}

std::string TextArray(const std::vector<std::optional<std::string>>& values) {
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) {
      out.push_back(',');
    }
    if (values[i]) {
      AppendQuoted(out, *values[i]);
    } else {
      out += "NULL";
    }
  }
  out.push_back('}');
  return out;
}

std::string IntArray(const std::vector<int64_t>& values) {
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    absl::StrAppend(&out, i > 0 ? "," : "", values[i]);
  }
  out.push_back('}');
  return out;
}

std::string IdArrayZeroNull(const std::vector<int64_t>& values) {
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) {
      out.push_back(',');
    }
    if (values[i] == 0) {
      out += "NULL";
    } else {
      absl::StrAppend(&out, values[i]);
    }
  }
  out.push_back('}');
  return out;
}

std::string BoolArray(const std::vector<bool>& values) {
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    absl::StrAppend(&out, i > 0 ? "," : "", values[i] ? "t" : "f");
  }
  out.push_back('}');
  return out;
}

std::string StripNul(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c != '\0') {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace leadflow::pg
