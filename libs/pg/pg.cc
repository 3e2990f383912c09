#include "pg/pg.h"

#include <pqxx/pqxx>

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

absl::Status ToStatus(const std::exception& error) {
  std::string message = error.what();
  if (dynamic_cast<const pqxx::broken_connection*>(&error) != nullptr ||
      dynamic_cast<const pqxx::in_doubt_error*>(&error) != nullptr) {
    return absl::UnavailableError(message);
  }
  if (dynamic_cast<const pqxx::serialization_failure*>(&error) != nullptr ||
      dynamic_cast<const pqxx::deadlock_detected*>(&error) != nullptr) {
    return absl::AbortedError(message);
  }
  if (dynamic_cast<const pqxx::unique_violation*>(&error) != nullptr) {
    return absl::AlreadyExistsError(message);
  }
  if (dynamic_cast<const pqxx::integrity_constraint_violation*>(&error) != nullptr) {
    return absl::FailedPreconditionError(message);
  }
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&error); sql != nullptr) {
    // 57P01 admin shutdown, 57P02/57P03 crash / cannot connect now, 08xxx connection exceptions.
    const std::string& state = sql->sqlstate();
    if (state.rfind("08", 0) == 0 || state.rfind("57P", 0) == 0) {
      return absl::UnavailableError(message);
    }
    // 53xxx insufficient resources, 55P03 lock not available, 57014 query cancelled: transient.
    if (state.rfind("53", 0) == 0 || state == "55P03" || state == "57014") {
      return absl::UnavailableError(message);
    }
    // Class 22, data exceptions: the value itself is wrong (bad encoding, too long, …).
    if (state.rfind("22", 0) == 0) {
      return absl::InvalidArgumentError(message);
    }
  }
  return absl::InternalError(message);
}

bool IsRetryable(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnavailable ||
         status.code() == absl::StatusCode::kAborted;
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
