#pragma once

// The promises ParseBody makes about what it accepts, checked on every fuzz input.

#include "fuzz/fuzz.h"
#include "identity/identity.h"
#include "webform-ingest/body.h"

namespace leadflow::fuzz {

inline void CheckBody(const webform::BodyResult& result, const webform::BodyLimits& limits) {
  using Outcome = webform::BodyResult::Outcome;
  if (result.outcome != Outcome::kOk) {
    Check(!result.code.empty(), "a refused body has an error code");
    Check(result.fields.empty(), "a refused body yields no fields");
    return;
  }
  Check(result.fields.size() <= limits.max_fields, "at most max_fields fields");
  for (const auto& [name, value] : result.fields) {
    Check(!name.empty(), "field names are not empty");
    Check(name.size() <= limits.max_name_bytes, "field names within the limit");
    Check(value.size() <= limits.max_value_bytes, "field values within the limit");
    Check(identity::IsValidUtf8(name) && identity::IsValidUtf8(value), "fields are UTF-8");
    Check(name.find('\0') == std::string::npos && value.find('\0') == std::string::npos,
          "fields hold no NUL byte");
  }
}

}  // namespace leadflow::fuzz
