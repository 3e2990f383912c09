#include "crm-core/store/repositories.h"
#include "pg/pg.h"

namespace leadflow::crm {

void EventRepository::LockIdentities(const std::vector<std::string>& lock_keys) {
  if (!lock_keys.empty()) {
    work_.exec_prepared("lock_identities", pg::TextArray(lock_keys));
  }
}

std::set<std::string> EventRepository::Claim(const std::vector<std::string>& event_ids) {
  std::set<std::string> claimed;
  for (const auto& row : work_.exec_prepared("claim_events", pg::TextArray(event_ids))) {
    claimed.insert(row[0].as<std::string>());
  }
  return claimed;
}

}  // namespace leadflow::crm
