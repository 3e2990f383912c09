#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace leadflow::ingest {

/// HTTP Basic authentication (RFC 7617) as providers use it on webhook URLs
/// (https://user:password@host/path: Postmark, SendGrid Inbound Parse).
/// `expected` is "user:password"; `authorization` the request's Authorization header. OK when
/// the header is "Basic <base64 of expected>" (scheme case-insensitive); Unauthenticated when it
/// is missing, malformed or names other credentials; FailedPrecondition when nothing is
/// configured (an empty `expected` accepts nobody). The credentials are compared in constant
/// time; nothing of what was expected is ever echoed.
absl::Status VerifyBasicAuth(std::string_view expected,
                             const std::optional<std::string>& authorization);

/// Standard base64 (with or without padding) to bytes; std::nullopt when it is not base64.
std::optional<std::string> Base64Decode(std::string_view text);

}  // namespace leadflow::ingest
