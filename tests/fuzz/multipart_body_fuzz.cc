// Fuzz target: webform-ingest's multipart/form-data body parser. The input's first line is the
// boundary parameter (so that the fuzzer varies it too), the rest is the body.

#include <string>

#include "fuzz/body_checks.h"

namespace {

// The one call of the parser: if it moves, this is the line to change.
leadflow::webform::BodyResult Parse(std::string_view content_type, std::string_view body,
                                    const leadflow::webform::BodyLimits& limits) {
  return leadflow::webform::ParseBody(content_type, body, limits);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input = leadflow::fuzz::AsText(data, size);
  size_t newline = input.find('\n');
  if (newline == std::string_view::npos || newline > 100) {
    return 0;
  }
  std::string content_type =
      "multipart/form-data; boundary=" + std::string(input.substr(0, newline));
  leadflow::webform::BodyLimits limits{
      .max_fields = 20, .max_name_bytes = 32, .max_value_bytes = 256};
  leadflow::fuzz::CheckBody(Parse(content_type, input.substr(newline + 1), limits), limits);
  return 0;
}
