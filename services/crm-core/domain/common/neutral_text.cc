#include "crm-core/domain/common/neutral_text.h"

namespace leadflow::crm::domain {

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// The UTF-8 sequence at `at`: its length and code point, or length 0 when it is not UTF-8
// (overlong forms, surrogates and points above U+10FFFF included).
size_t Decode(std::string_view text, size_t at, char32_t& point) {
  const unsigned char lead = static_cast<unsigned char>(text[at]);
  if (lead < 0x80) {
    point = lead;
    return 1;
  }
  const size_t length = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
  if (lead < 0xC2 || lead > 0xF4 || at + length > text.size()) {
    return 0;
  }
  point = lead & (0x7F >> length);
  for (size_t i = 1; i < length; ++i) {
    const unsigned char next = static_cast<unsigned char>(text[at + i]);
    if ((next & 0xC0) != 0x80) {
      return 0;
    }
    point = (point << 6) | (next & 0x3F);
  }
  const char32_t smallest = length == 2 ? 0x80 : length == 3 ? 0x800 : 0x10000;
  if (point < smallest || point > 0x10FFFF || (point >= 0xD800 && point <= 0xDFFF)) {
    return 0;
  }
  return length;
}

}  // namespace

std::string NeutralizeText(std::string_view text, bool multi_line, size_t max_bytes) {
  std::string out;
  out.reserve(std::min(text.size(), max_bytes));
  for (size_t at = 0; at < text.size();) {
    char32_t point = 0;
    const size_t length = Decode(text, at, point);
    std::string_view piece;
    if (length == 0) {
      piece = kReplacement;
      ++at;
    } else {
      piece = text.substr(at, length);
      at += length;
      const bool line_break = point == '\n' || point == '\r' || point == '\t';
      // NUL is dropped, as the store always did (PostgreSQL's text holds none).
      if (point == 0 || (point >= 0x202A && point <= 0x202E) ||
          (point >= 0x2066 && point <= 0x2069)) {
        continue;
      }
      if ((point < 0x20 && !(multi_line && line_break)) || (point >= 0x7F && point <= 0x9F)) {
        piece = " ";
      }
    }
    if (out.size() + piece.size() > max_bytes) {
      break;
    }
    out += piece;
  }
  return out;
}

}  // namespace leadflow::crm::domain
