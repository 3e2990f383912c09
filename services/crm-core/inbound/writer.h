#pragma once

#include <cstdint>
#include <functional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "crm-core/inbound/planner.h"

namespace leadflow::crm {

/// Takes `count` positions of a round-robin queue; returns the first.
using QueuePositions = std::function<int64_t(const std::string& queue, int64_t count)>;

/// What a written plan made, for the counters.
struct WriteResult {
  size_t leads = 0;
  size_t contacts = 0;
  size_t deals = 0;
  size_t activities = 0;
  CallWriteResult calls;  // the call effects (call_rules.h)
};

/// Writes a batch's plan in the caller's transaction: ids for the new records, round-robin owners
/// for those without a previous one (each queue advanced once per batch through `positions`, over
/// the queue's members, else the active users in id order), then the leads, contacts, deals and
/// their links, identities, activities (deals touched), repeat counts and timeline entries, each
/// as one statement whatever the size.
WriteResult WritePlan(pqxx::transaction_base& work, const Plan& plan,
                      const std::vector<int64_t>& active_users, const QueuePositions& positions);

}  // namespace leadflow::crm
