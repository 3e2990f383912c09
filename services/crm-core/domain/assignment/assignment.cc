#include "crm-core/domain/assignment/assignment.h"

#include <cstddef>

namespace leadflow::crm {

int64_t RoundRobinUser(const std::vector<int64_t>& active_users, int64_t position) {
  if (active_users.empty() || position < 0) {
    return 0;
  }
  return active_users[static_cast<size_t>(position) % active_users.size()];
}

}  // namespace leadflow::crm
