// Fuzz target: webform-ingest's JSON body parser.

#include "fuzz/body_checks.h"

namespace {

// The one call of the parser: if it moves, this is the line to change.
leadflow::webform::BodyResult Parse(std::string_view body,
                                    const leadflow::webform::BodyLimits& limits) {
  return leadflow::webform::ParseBody("application/json", body, limits);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  leadflow::webform::BodyLimits limits{
      .max_fields = 20, .max_name_bytes = 32, .max_value_bytes = 256};
  leadflow::fuzz::CheckBody(Parse(leadflow::fuzz::AsText(data, size), limits), limits);
  return 0;
}
