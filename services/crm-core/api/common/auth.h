#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace leadflow::crm {

/// What a caller may do. Read-only reads; integration also writes leads and activities;
/// admin also manages users and configures the CRM (lead statuses and sources).
enum class Role { kReadOnly, kIntegration, kAdmin };
enum class Right { kRead, kWriteCrm, kManageUsers, kConfigure };

bool Allows(Role role, Right right);

/// API keys from "key:role,key:role" (CRM_API_KEYS). Keys shorter than 16 characters are refused
/// so that a guessable key never reaches production; so are an empty entry and a key listed twice
/// (which role it would have is a guess: a typo in a Secret must stop the start, not grant).
absl::StatusOr<std::map<std::string, Role>> ParseApiKeys(std::string_view text);

/// From the values of the "authorization" metadata (every one the call carries): UNAUTHENTICATED
/// for none, more than one (which credential the caller meant is a guess), a malformed or an
/// unknown key; PERMISSION_DENIED for a known key whose role lacks the right.
absl::Status Authorize(const std::map<std::string, Role>& keys,
                       const std::vector<std::string_view>& authorization, Right right);

}  // namespace leadflow::crm
