#pragma once

#include <map>
#include <optional>
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
/// Form bodies (urlencoded, multipart) in a declared charset — the Content-Type's `charset`
/// parameter, else the `_charset_` field browsers fill in — are transcoded to UTF-8 (UTF-8,
/// ISO-8859-1, ISO-8859-15, windows-1252; another charset is kUnsupportedMediaType
/// "unsupported_charset"). Every name and value must then be UTF-8 without NUL bytes, so an
/// undeclared Latin-1 body is still "invalid_text". Other media types are
/// kUnsupportedMediaType.
BodyResult ParseBody(std::string_view content_type, std::string_view body,
                     const BodyLimits& limits = {});

enum class Charset { kUtf8, kWindows1252, kIso8859_15 };

/// The charset a label names (case-insensitive; ISO-8859-1 and ASCII labels are read as
/// windows-1252, as browsers do); std::nullopt for one we do not transcode.
std::optional<Charset> CharsetByLabel(std::string_view label);

/// `text` in `charset` as UTF-8 (every byte is a character in the single-byte charsets).
std::string ToUtf8(Charset charset, std::string_view text);

/// Decodes one application/x-www-form-urlencoded component ('+' is a space); false on a bad
/// %-escape.
bool UrlDecode(std::string_view text, std::string* out);

}  // namespace leadflow::webform
