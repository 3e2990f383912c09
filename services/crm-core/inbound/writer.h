#pragma once

#include <cstdint>
#include <pqxx/pqxx>
#include <vector>

#include "crm-core/inbound/planner.h"

namespace leadflow::crm {

/// Writes a batch's plan in the caller's transaction: ids for the new leads, round-robin owners
/// (over `active_users`, in id order) for those without a previous one, then the leads, their
/// identities, the activities and the repeat counts, each as one statement whatever the size.
void WritePlan(pqxx::transaction_base& work, const Plan& plan,
               const std::vector<int64_t>& active_users);

}  // namespace leadflow::crm
