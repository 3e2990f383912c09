#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace leadflow::crm {

/// Lead statuses, Bitrix24's defaults. NEW and IN_PROCESS are "open": inbound traffic from the
/// same person joins an open lead instead of making a new one.
enum class LeadStatus { kNew, kInProcess, kProcessed, kJunk, kConverted };

std::string_view ToString(LeadStatus status);
std::optional<LeadStatus> ParseLeadStatus(std::string_view text);
inline bool IsOpen(LeadStatus status) {
  return status == LeadStatus::kNew || status == LeadStatus::kInProcess;
}

/// A normalised identity as stored in lead_identities: kind is PHONE, EMAIL or MESSENGER.
struct IdentityKey {
  std::string kind;
  std::string value;
  auto operator<=>(const IdentityKey&) const = default;
};

/// The advisory-lock key of an identity ("PHONE:+33612345678"), hashed by the lock_identities
/// statement. The inbound consumer and the API must spell it alike, or they would not serialise.
std::string IdentityLockKey(const IdentityKey& key);

/// What the planner needs to know of a lead already in the database that shares an identity
/// with an event of the batch.
struct KnownLead {
  int64_t id = 0;
  LeadStatus status = LeadStatus::kNew;
  int64_t responsible_user_id = 0;  // 0: nobody
  std::set<IdentityKey> identities;
};

}  // namespace leadflow::crm
