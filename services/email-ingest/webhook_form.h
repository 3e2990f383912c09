#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace leadflow::email {

/// One field of a posted form. A file part keeps its name, type and size, not its content.
struct FormField {
  std::string name;
  std::string value;  // the bytes as sent (no charset conversion); empty for a file
  bool is_file = false;
  std::string filename;
  std::string content_type;
  int64_t size_bytes = 0;
};

struct Form {
  std::vector<FormField> fields;
  /// The first field with this name, or nullptr.
  const FormField* Find(std::string_view name) const;
  /// Its value, or "" when absent.
  std::string Value(std::string_view name) const;
};

/// A webhook body: application/x-www-form-urlencoded (decoded with libcurl) or
/// multipart/form-data (read with GMime). InvalidArgument for another media type or a body that
/// is not one; at most `max_fields` fields.
absl::StatusOr<Form> ParseForm(std::string_view content_type, std::string_view body,
                               size_t max_fields = 1000);

}  // namespace leadflow::email
