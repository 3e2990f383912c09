// Fuzz target: the charset transcoder of webform-ingest (forms posted in windows-1252 or
// ISO-8859-15), directly and through the urlencoded parser with a declared charset.

#include <cstddef>
#include <string>

#include "fuzz/body_checks.h"

namespace {

size_t AsciiBytes(std::string_view text) {
  size_t count = 0;
  for (unsigned char c : text) {
    count += c < 0x80 ? 1 : 0;
  }
  return count;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using leadflow::fuzz::Check;
  if (size == 0) {
    return 0;
  }
  std::string_view text = leadflow::fuzz::AsText(data + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
    case 1: {
      auto charset = data[0] % 3 == 0 ? leadflow::webform::Charset::kWindows1252
                                      : leadflow::webform::Charset::kIso8859_15;
      std::string utf8 = leadflow::webform::ToUtf8(charset, text);
      // Every byte of a single-byte charset is one character: 1 to 3 bytes of UTF-8, and the
      // ASCII bytes are kept as they are (multi-byte UTF-8 sequences hold no byte below 0x80).
      Check(leadflow::identity::IsValidUtf8(utf8), "the transcoded text is UTF-8");
      Check(utf8.size() >= text.size() && utf8.size() <= 3 * text.size(),
            "one to three bytes of UTF-8 per input byte");
      Check(AsciiBytes(utf8) == AsciiBytes(text), "ASCII bytes are kept");
      break;
    }
    default: {
      leadflow::webform::BodyLimits limits{
          .max_fields = 20, .max_name_bytes = 32, .max_value_bytes = 256};
      leadflow::fuzz::CheckBody(
          leadflow::webform::ParseBody("application/x-www-form-urlencoded; charset=ISO-8859-1",
                                       text, limits),
          limits);
      break;
    }
  }
  return 0;
}
