#pragma once

#include <compare>
#include <string>

namespace leadflow::crm {

/// A normalised identity as stored in lead_identities: kind is PHONE, EMAIL or MESSENGER.
struct IdentityKey {
  std::string kind;
  std::string value;
  auto operator<=>(const IdentityKey&) const = default;
};

/// The advisory-lock key of an identity ("PHONE:+33612345678"), hashed by the lock_identities
/// statement. The inbound consumer and the API must spell it alike, or they would not serialise.
std::string IdentityLockKey(const IdentityKey& key);

}  // namespace leadflow::crm
