#include "pg/pg.h"

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
  // SQLSTATE is known from the class.
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
  // 40001 serialization failure, 40P01 deadlock, 40000 rolled back: the transaction may
  // succeed when run again. 40003: whether the statement completed is unknown.
  if (state == "40001" || state == "40P01" || state == "40000") {
    return WithState(absl::AbortedError(message), state);
  }
  if (state == "40003") {
    return WithState(absl::UnavailableError(message), state);
  }
  if (sql == nullptr) {
    return WithState(absl::InternalError(message), state);
  }
  if (state == "23505") {
    return WithState(absl::AlreadyExistsError(message), state);
  }
  if (StartsWith(state, "23")) {
    return WithState(absl::FailedPreconditionError(message), state);
  }
  // Class 22, data exceptions: the value itself is wrong (bad encoding, too long, …).
  if (StartsWith(state, "22")) {
    return WithState(absl::InvalidArgumentError(message), state);
  }
  // 53200 out of memory (the lock table too) and 54xxx program limits: the same work fails
  // the same way again, though possibly only because of what ran beside it.
  if (state == "53200" || StartsWith(state, "54")) {
    return WithState(absl::ResourceExhaustedError(message), state);
  }
  // 08 connection, 57P admin shutdown / crash, 53xxx other resources (disk full, too many
  // connections), 55P03 lock not available, 57014 query cancelled, 28 / 42 / 3D / 3F
  // authorisation or schema mismatches (a deploy or an operator fixes those, not the data).
  if (StartsWith(state, "08") || StartsWith(state, "57P") || StartsWith(state, "53") ||
      state == "55P03" || state == "57014" || StartsWith(state, "28") || StartsWith(state, "42") ||
      StartsWith(state, "3D") || StartsWith(state, "3F")) {
    return WithState(absl::UnavailableError(message), state);
  }
  return WithState(absl::InternalError(message), state);
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
