#pragma once

// Small text helpers for domain messages. The packaged abseil's string_view is its own type, not
// std::string_view, so absl::StrCat does not take the std::string_view the domain uses.

#include <algorithm>
#include <sstream>
#include <string>
#include <string_view>

namespace leadflow::crm::domain {

/// Concatenates anything that streams (strings, string_views, numbers).
template <typename... Parts>
std::string Cat(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}

/// ASCII lower case; other bytes unchanged.
inline std::string AsciiLower(std::string_view text) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c; });
  return lower;
}

/// Without leading and trailing ASCII whitespace.
inline std::string_view TrimAscii(std::string_view text) {
  constexpr std::string_view kSpace = " \t\n\r\f\v";
  size_t begin = text.find_first_not_of(kSpace);
  if (begin == std::string_view::npos) return {};
  size_t end = text.find_last_not_of(kSpace);
  return text.substr(begin, end - begin + 1);
}

}  // namespace leadflow::crm::domain
