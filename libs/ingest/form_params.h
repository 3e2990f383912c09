#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace leadflow::ingest {

/// An application/x-www-form-urlencoded body as the provider sent it: every name/value pair,
/// decoded ('+' is a space, %XX escapes), in order, repeated names kept. Providers that sign
/// their form posts (Twilio) sign every pair, so nothing may be merged or dropped before the
/// check.
using FormParams = std::vector<std::pair<std::string, std::string>>;

/// InvalidArgument on a bad %-escape, a NUL byte, more than `max_pairs` pairs or text that is
/// not UTF-8.
absl::StatusOr<FormParams> ParseFormParams(std::string_view body, size_t max_pairs = 200);

/// The first value of `name`, if any.
std::optional<std::string> FindParam(const FormParams& params, std::string_view name);

/// Twilio's check of a whole request behind proxies: the URL Twilio signed is `public_url`
/// (the service's address as configured in Twilio, e.g. "https://leads.example/telephony")
/// followed by the request target (path and query) as the service received it, and the
/// parameters are those of the urlencoded body. A URL with the scheme's default port written
/// (":443", ":80") and one without are both tried, as Twilio's RequestValidator does.
/// Unauthenticated when the signature is missing or wrong.
absl::Status VerifyTwilioRequest(std::string_view auth_token, std::string_view public_url,
                                 std::string_view target, const FormParams& params,
                                 std::string_view signature_header);

/// `url` (scheme://host[:port][/path]) with its scheme's default port written if it has none,
/// without it if written; std::nullopt for another port or another scheme.
std::optional<std::string> OtherDefaultPortForm(std::string_view url);

}  // namespace leadflow::ingest
