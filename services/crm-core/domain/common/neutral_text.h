#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>

#include "crm-core/domain/common/limits.h"

namespace leadflow::crm::domain {

/// Inbound text made into what the API's CheckText accepts, so that a record the consumer writes
/// from it can be saved back unchanged and shows what its sender wrote, in the order written
/// (docs/domain.md, "Text from inbound events"): bidirectional embeddings, overrides and isolates
/// (U+202A–U+202E, U+2066–U+2069) are removed, as is NUL; other control characters (C0 and C1)
/// become a space — line breaks and tabs are kept when `multi_line` — bytes that are not UTF-8
/// become U+FFFD, and the result is cut to `max_bytes` (the field's limit: kMaxTextBytes, or
/// kMaxNameBytes for a name) on a character boundary. Text CheckText and the field's limit accept
/// comes back unchanged.
std::string NeutralizeText(std::string_view text, bool multi_line = false,
                           size_t max_bytes = kMaxTextBytes);

}  // namespace leadflow::crm::domain
