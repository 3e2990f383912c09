#include "crm-core/store/probe.h"

#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "pg/pg.h"

namespace leadflow::crm {

DatabaseProbe::DatabaseProbe(std::string database_url, std::chrono::milliseconds timeout)
    : timeout_(timeout) {
  // libpq's connect_timeout is in whole seconds, at least 2 (libpq rounds smaller values up).
  const int64_t connect_seconds = std::max<int64_t>(
      2,
      std::chrono::duration_cast<std::chrono::seconds>(timeout + std::chrono::seconds(1)).count());
  const char* separator = database_url.rfind("postgres", 0) != 0        ? " "  // key=value
                          : database_url.find('?') == std::string::npos ? "?"
                                                                        : "&";
  url_ = absl::StrCat(database_url, separator, "connect_timeout=", connect_seconds);
}

DatabaseProbe::~DatabaseProbe() = default;

absl::Status DatabaseProbe::Check() {
  std::unique_lock lock(mutex_, std::defer_lock);
  if (!lock.try_lock_for(timeout_)) {
    return absl::UnavailableError("a database probe is still running");
  }
  try {
    if (!connection_ || !connection_->is_open()) {
      connection_ = std::make_unique<pqxx::connection>(url_);
      connection_->set_variable("statement_timeout", std::to_string(timeout_.count()));
    }
    pqxx::nontransaction work(*connection_);
    work.exec("SELECT 1");
    return absl::OkStatus();
  } catch (const std::exception& error) {
    connection_.reset();
    return pg::ToStatus(error);
  }
}

}  // namespace leadflow::crm
