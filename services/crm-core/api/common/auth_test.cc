#include "crm-core/api/common/auth.h"

#include <gtest/gtest.h>

namespace leadflow::crm {
namespace {

const std::string kAdmin = "admin-key-0123456789";
const std::string kReader = "reader-key-0123456789";

// Protects: keys parse with their roles; short keys, unknown roles, empty entries and a key listed
// twice (with the same role or another) are refused at start-up.
TEST(AuthTest, ParseApiKeys) {
  auto keys = ParseApiKeys(kAdmin + ":admin, " + kReader + ":read-only");
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(keys->at(kAdmin), Role::kAdmin);
  EXPECT_EQ(keys->at(kReader), Role::kReadOnly);
  EXPECT_FALSE(ParseApiKeys("short:admin").ok());
  EXPECT_FALSE(ParseApiKeys(kAdmin + ":root").ok());
  EXPECT_FALSE(ParseApiKeys("").ok());
  EXPECT_FALSE(ParseApiKeys(kAdmin).ok());
  EXPECT_FALSE(ParseApiKeys(kAdmin + ":admin,," + kReader + ":read-only").ok());
  EXPECT_FALSE(ParseApiKeys(kAdmin + ":admin,").ok());
  EXPECT_FALSE(ParseApiKeys(" , ").ok());
  auto twice = ParseApiKeys(kReader + ":read-only," + kReader + ":admin");
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.status().message().find(kReader), std::string::npos);  // not in logs
  EXPECT_FALSE(ParseApiKeys(kAdmin + ":admin, " + kAdmin + ":admin").ok());
}

// Protects: missing or wrong keys, and more than one authorization value (whichever comes first),
// are UNAUTHENTICATED; a known key without the right is PERMISSION_DENIED.
TEST(AuthTest, Authorize) {
  auto keys = *ParseApiKeys(kAdmin + ":admin," + kReader + ":read-only");
  const std::string admin = "Bearer " + kAdmin;
  const std::string reader = "Bearer " + kReader;
  EXPECT_EQ(Authorize(keys, {}, Right::kRead).code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(Authorize(keys, {kAdmin}, Right::kRead).code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(Authorize(keys, {"Bearer nope-nope-nope-nope"}, Right::kRead).code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(Authorize(keys, {reader}, Right::kRead).ok());
  EXPECT_EQ(Authorize(keys, {reader}, Right::kWriteCrm).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(Authorize(keys, {admin}, Right::kManageUsers).ok());
  EXPECT_EQ(Authorize(keys, {reader, admin}, Right::kWriteCrm).code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(Authorize(keys, {admin, reader}, Right::kWriteCrm).code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(Authorize(keys, {admin, admin}, Right::kRead).code(),
            absl::StatusCode::kUnauthenticated);
}

}  // namespace
}  // namespace leadflow::crm
