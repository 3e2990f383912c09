#include "ingest/basic_auth.h"

#include <gtest/gtest.h>

namespace leadflow::ingest {
namespace {

// Protects: Basic credentials are accepted only when they are exactly the configured ones;
// RFC 7617 §2's own example ("Aladdin:open sesame" = QWxhZGRpbjpvcGVuIHNlc2FtZQ==) decodes.
TEST(BasicAuthTest, ExactCredentialsOnly) {
  EXPECT_TRUE(VerifyBasicAuth("Aladdin:open sesame", "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==").ok());
  EXPECT_TRUE(VerifyBasicAuth("Aladdin:open sesame", "basic  QWxhZGRpbjpvcGVuIHNlc2FtZQ==").ok());
  // "Aladdin:open sesamE", "Aladdin:open sesam"
  EXPECT_EQ(VerifyBasicAuth("Aladdin:open sesame", "Basic QWxhZGRpbjpvcGVuIHNlc2FtRQ==").code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(VerifyBasicAuth("Aladdin:open sesame", "Basic QWxhZGRpbjpvcGVuIHNlc2Ft").code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(VerifyBasicAuth("Aladdin:open sesame", std::nullopt).code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(VerifyBasicAuth("Aladdin:open sesame", "Bearer QWxhZGRpbjpvcGVuIHNlc2FtZQ==").code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(VerifyBasicAuth("Aladdin:open sesame", "Basic !!!").code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(VerifyBasicAuth("", "Basic Og==").code(), absl::StatusCode::kFailedPrecondition);
}

// Protects: base64 with and without padding, and refusal of what is not base64.
TEST(BasicAuthTest, Base64Decode) {
  EXPECT_EQ(Base64Decode("TWFu"), "Man");
  EXPECT_EQ(Base64Decode("TWE="), "Ma");
  EXPECT_EQ(Base64Decode("TWE"), "Ma");
  EXPECT_EQ(Base64Decode("TQ=="), "M");
  EXPECT_EQ(Base64Decode(""), "");
  EXPECT_FALSE(Base64Decode("T"));
  EXPECT_FALSE(Base64Decode("TW-="));
}

}  // namespace
}  // namespace leadflow::ingest
