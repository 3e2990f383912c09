#include "crm-core/api/common/auth.h"

#include <openssl/crypto.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "crm-core/domain/common/errors.h"

namespace leadflow::crm {

bool Allows(Role role, Right right) {
  switch (right) {
    case Right::kRead:
      return true;
    case Right::kWriteCrm:
      return role == Role::kIntegration || role == Role::kAdmin;
    case Right::kManageUsers:
    case Right::kConfigure:
      return role == Role::kAdmin;
  }
  return false;
}

absl::StatusOr<std::map<std::string, Role>> ParseApiKeys(std::string_view text) {
  std::map<std::string, Role> keys;
  if (absl::StripAsciiWhitespace(absl::string_view(text.data(), text.size())).empty()) {
    return absl::InvalidArgumentError("at least one API key is needed");
  }
  for (absl::string_view entry : absl::StrSplit(absl::string_view(text.data(), text.size()), ',')) {
    entry = absl::StripAsciiWhitespace(entry);
    if (entry.empty()) {
      return absl::InvalidArgumentError(
          "an entry is empty (two commas in a row, or one at an end)");
    }
    auto colon = entry.rfind(':');
    if (colon == absl::string_view::npos) {
      return absl::InvalidArgumentError("each entry must be key:role");
    }
    std::string key(entry.substr(0, colon));
    std::string role(entry.substr(colon + 1));
    if (key.size() < 16) {
      return absl::InvalidArgumentError("an API key is shorter than 16 characters");
    }
    if (keys.count(key) != 0) {
      // The key itself stays out of the message (it ends up in logs).
      return absl::InvalidArgumentError(
          absl::StrCat("an API key is listed twice (its second entry has role '", role, "')"));
    }
    if (role == "admin") {
      keys[key] = Role::kAdmin;
    } else if (role == "integration") {
      keys[key] = Role::kIntegration;
    } else if (role == "read-only") {
      keys[key] = Role::kReadOnly;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown role ", domain::Quoted(role),
                                                     " (admin, integration or read-only)"));
    }
  }
  if (keys.empty()) {
    return absl::InvalidArgumentError("at least one API key is needed");
  }
  return keys;
}

absl::Status Authorize(const std::map<std::string, Role>& keys,
                       const std::vector<std::string_view>& authorization, Right right) {
  if (authorization.empty()) {
    return absl::UnauthenticatedError("missing authorization metadata (Bearer <api key>)");
  }
  if (authorization.size() > 1) {
    return absl::UnauthenticatedError(
        absl::StrCat("the call carries ", authorization.size(),
                     " authorization metadata entries: send exactly one (Bearer <api key>)"));
  }
  absl::string_view value(authorization[0].data(), authorization[0].size());
  if (!absl::ConsumePrefix(&value, "Bearer ") && !absl::ConsumePrefix(&value, "bearer ")) {
    return absl::UnauthenticatedError("authorization must be 'Bearer <api key>'");
  }
  for (const auto& [key, role] : keys) {
    // Constant-time comparison: the key's length is public, its bytes are not.
    if (key.size() == value.size() && CRYPTO_memcmp(key.data(), value.data(), key.size()) == 0) {
      if (!Allows(role, right)) {
        return absl::PermissionDeniedError("this API key's role does not allow this call");
      }
      return absl::OkStatus();
    }
  }
  return absl::UnauthenticatedError("unknown API key");
}

}  // namespace leadflow::crm
