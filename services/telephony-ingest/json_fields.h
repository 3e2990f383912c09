#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

namespace leadflow::telephony {

/// One member of a JSON object as the call parsers read it: what kind of value it is, its text
/// (a string's, or an integer's decimal digits) and its value as a number (a boolean's: 1 or 0).
struct JsonField {
  enum class Kind { kAbsent, kNull, kString, kInteger, kFloat, kBool, kOther };
  Kind kind = Kind::kAbsent;
  std::string text;
  double number = 0;
};

/// Reads the members named `names[i]` of the JSON object `text` into `fields[i]` (kAbsent when
/// it has none; the last one when a name repeats, as nlohmann's tree keeps). Two readers that
/// give the same fields for the same text: ReadJsonFields (simdjson: the call parsers' fast
/// path) answers false for a text it refuses — not JSON to it, which includes an integer past
/// 64 bits that nlohmann reads as a float — or that is not a JSON object, and the caller then
/// asks ReadJsonFieldsReference (nlohmann), which decides every such case. So what a report or
/// a stored call means never depends on which one read it (json_fields_test compares them over
/// hostile and corrupted texts).
bool ReadJsonFields(std::string_view text, std::span<const std::string_view> names,
                    std::span<JsonField> fields);
/// False when `text` is not JSON (`*not_json`) or not a JSON object.
bool ReadJsonFieldsReference(std::string_view text, std::span<const std::string_view> names,
                             std::span<JsonField> fields, bool* not_json);

}  // namespace leadflow::telephony
