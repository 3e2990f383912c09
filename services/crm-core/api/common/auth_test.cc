#include "crm-core/api/common/auth.h"

#include <gtest/gtest.h>

namespace leadflow::crm {
namespace {

const std::string kAdmin = "admin-key-0123456789";
const std::string kReader = "reader-key-0123456789";

// Protects: keys parse with their roles; short keys and unknown roles are refused at start-up.
TEST(AuthTest, ParseApiKeys) {
  auto keys = ParseApiKeys(kAdmin + ":admin, " + kReader + ":read-only");
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(keys->at(kAdmin), Role::kAdmin);
  EXPECT_EQ(keys->at(kReader), Role::kReadOnly);
  EXPECT_FALSE(ParseApiKeys("short:admin").ok());
  EXPECT_FALSE(ParseApiKeys(kAdmin + ":root").ok());
  EXPECT_FALSE(ParseApiKeys("").ok());
  EXPECT_FALSE(ParseApiKeys(kAdmin).ok());
}

// Protects: missing or wrong keys are UNAUTHENTICATED; a known key without the right is
// PERMISSION_DENIED.
TEST(AuthTest, Authorize) {
  auto keys = *ParseApiKeys(kAdmin + ":admin," + kReader + ":read-only");
  EXPECT_EQ(Authorize(keys, std::nullopt, Right::kRead).code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(Authorize(keys, kAdmin, Right::kRead).code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(Authorize(keys, "Bearer nope-nope-nope-nope", Right::kRead).code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(Authorize(keys, "Bearer " + kReader, Right::kRead).ok());
  EXPECT_EQ(Authorize(keys, "Bearer " + kReader, Right::kWriteCrm).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(Authorize(keys, "Bearer " + kAdmin, Right::kManageUsers).ok());
}

}  // namespace
}  // namespace leadflow::crm
