#pragma once

#include <map>
#include <string>
#include <string_view>

namespace leadflow::webform {

/// Limits on what a submission body may hold; anything past them is a 400, before any
/// validation, so hostile bodies cost little.
struct BodyLimits {
  size_t max_fields = 200;
  size_t max_name_bytes = 128;
  size_t max_value_bytes = 32 * 1024;
  /// JSON nesting deeper than this is rejected before parsing.
  int max_json_depth = 16;
};

/// The submitted fields, name → text. A repeated name keeps its first value.
using Fields = std::map<std::string, std::string>;

struct BodyResult {
  enum class Outcome { kOk, kUnsupportedMediaType, kMalformed, kWrongType };
  Outcome outcome = Outcome::kOk;
  /// A stable, machine-readable error code ("malformed_json", "too_many_fields", …).
  std::string code;
  /// For people; may name the offending field.
  std::string reason;
  /// kWrongType: the field whose value was neither a string, a number nor a boolean.
  std::string field;
  Fields fields;
};

/// Parses a submission body according to its Content-Type:
/// - application/json: one object whose values are strings, numbers or booleans (null is
///   skipped; arrays and objects are kWrongType, naming the field);
/// - application/x-www-form-urlencoded;
/// - multipart/form-data: text parts only; parts with a filename (file uploads) are ignored.
/// Every name and value must be UTF-8 without NUL bytes. Other media types are
/// kUnsupportedMediaType.
BodyResult ParseBody(std::string_view content_type, std::string_view body,
                     const BodyLimits& limits = {});

/// Decodes one application/x-www-form-urlencoded component ('+' is a space); false on a bad
/// %-escape.
bool UrlDecode(std::string_view text, std::string* out);

}  // namespace leadflow::webform
