#include "crm-core/domain/common/errors.h"

#include <algorithm>

#include "crm-core/domain/common/text.h"

namespace leadflow::crm::domain {

absl::Status NotFound(std::string_view noun, int64_t id) {
  return absl::NotFoundError(Cat(noun, " ", id, " not found"));
}

absl::Status NotFound(EntityKind kind, int64_t id) { return NotFound(Noun(kind), id); }

absl::Status NotFound(std::string_view noun, std::string_view id) {
  return absl::NotFoundError(Cat(noun, " ", Quoted(id), " not found"));
}

absl::Status MergedAway(EntityKind kind, int64_t id, int64_t kept_id) {
  return absl::NotFoundError(
      Cat(Noun(kind), " ", id, " not found: merged into ", Noun(kind), " ", kept_id));
}

std::string Quoted(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (byte < 0x20 || byte == 0x7f) {
      constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[byte >> 4];
      out += kHex[byte & 0xf];
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

bool IsValidConfiguredId(std::string_view id) {
  if (id.empty() || id.size() > kMaxConfiguredIdLength || id[0] < 'A' || id[0] > 'Z') {
    return false;
  }
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

absl::Status CheckConfiguredId(std::string_view what, std::string_view id) {
  if (IsValidConfiguredId(id)) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(Cat(what, " ", Quoted(id), " must be 1 to ",
                                        kMaxConfiguredIdLength,
                                        " upper-case letters, digits or underscores, starting "
                                        "with a letter"));
}

std::string PipelineLabel(int64_t id, std::string_view name) {
  return id > 0 ? Cat("pipeline ", id) : Cat("pipeline ", Quoted(TrimAscii(name)));
}

}  // namespace leadflow::crm::domain
