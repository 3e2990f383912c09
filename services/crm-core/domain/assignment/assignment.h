#pragma once

#include <cstdint>
#include <vector>

namespace leadflow::crm {

/// Round-robin over the active users (in id order): the user at `position` (a value of the
/// assignment_position sequence, never reset); 0 when nobody is active.
int64_t RoundRobinUser(const std::vector<int64_t>& active_users, int64_t position);

}  // namespace leadflow::crm
