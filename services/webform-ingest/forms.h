#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace leadflow::webform {

/// Which forms exist and which web origins may post to them (WEBFORM_FORMS_FILE).
///
/// Where a plain HTML form's visitor is sent after posting (303 See Other), as Salesforce's
/// retURL or Formspree's _next. Either may be empty.
struct FormPages {
  std::string success_url;
  /// Gets `?error=<code>` (or `&error=`) appended.
  std::string error_url;
};

/// File format:
///   {"forms": {"contact": {"allowed_origins": ["https://shop.example"],
///                          "success_url": "https://shop.example/thanks",
///                          "error_url": "https://shop.example/oops"}}}
/// Without a file every form id is accepted and every origin allowed.
struct FormsConfig {
  bool restricted = false;
  std::map<std::string, std::vector<std::string>> allowed_origins;  // form id → origins
  std::map<std::string, FormPages> pages;                           // form id → pages

  /// The form's pages, or nullptr when it has none.
  const FormPages* Pages(const std::string& form_id) const;

  /// Parses the file's text; InvalidArgument naming what is wrong.
  static absl::StatusOr<FormsConfig> Parse(const std::string& json);
  /// Reads and parses a file.
  static absl::StatusOr<FormsConfig> Load(const std::string& path);

  bool Known(const std::string& form_id) const;
};

enum class OriginDecision {
  kNoOrigin,   // not a browser cross-origin request: no CORS headers
  kAllowed,    // echo the origin in Access-Control-Allow-Origin
  kForbidden,  // 403
};

/// The CORS decision for a request to a known form; `origin` is the Origin header.
OriginDecision DecideOrigin(const FormsConfig& forms, const std::string& form_id,
                            const std::optional<std::string>& origin);

/// An absolute http(s) URL of printable ASCII, at most 2 KiB (it goes into a Location header).
bool ValidPageUrl(const std::string& url);

/// Form ids are path segments chosen by site owners: letters, digits, '-', '_', '.', ≤ 64.
bool ValidFormId(const std::string& form_id);

}  // namespace leadflow::webform
