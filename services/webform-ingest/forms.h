#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace leadflow::webform {

/// Which forms exist and which web origins may post to them (WEBFORM_FORMS_FILE).
///
/// File format: {"forms": {"contact": {"allowed_origins": ["https://shop.example"]}}}.
/// Without a file every form id is accepted and every origin allowed.
struct FormsConfig {
  bool restricted = false;
  std::map<std::string, std::vector<std::string>> allowed_origins;  // form id → origins

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

/// Form ids are path segments chosen by site owners: letters, digits, '-', '_', '.', ≤ 64.
bool ValidFormId(const std::string& form_id);

}  // namespace leadflow::webform
