#include "crm-core/api/common/paging.h"

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace leadflow::crm {
namespace {

constexpr int kDefaultPageSize = 50;
constexpr int kMaxPageSize = 1000;

}  // namespace

absl::StatusOr<Page> ParsePage(int32_t page_size, const std::string& page_token) {
  auto after = DecodePageToken(page_token);
  if (!after.ok()) {
    return after.status();
  }
  if (page_size < 0) {
    return absl::InvalidArgumentError("page_size must not be negative");
  }
  return Page{.size = page_size == 0 ? kDefaultPageSize : std::min(page_size, kMaxPageSize),
              .after_id = *after};
}

std::string EncodePageToken(int64_t after_id) {
  return absl::WebSafeBase64Escape(absl::StrCat("after:", after_id));
}

absl::StatusOr<int64_t> DecodePageToken(const std::string& token) {
  if (token.empty()) {
    return 0;
  }
  std::string decoded;
  int64_t id = 0;
  absl::string_view rest;
  if (!absl::WebSafeBase64Unescape(token, &decoded) ||
      !(rest = decoded, absl::ConsumePrefix(&rest, "after:")) || !absl::SimpleAtoi(rest, &id) ||
      id <= 0) {
    return absl::InvalidArgumentError("page_token is not one this server issued");
  }
  return id;
}

}  // namespace leadflow::crm
