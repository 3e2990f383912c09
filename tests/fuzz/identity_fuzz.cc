// Fuzz target: the identity normaliser (phones to E.164 with libphonenumber, emails). The
// input's first byte picks phone or email, and for phones the default region. Phones are also
// checked differentially: NormalizePhone's faster path must give exactly libphonenumber's own
// answer (internal::NormalizePhoneReference), value or error.

#include <string>

#include "fuzz/fuzz.h"
#include "identity/identity.h"
#include "identity/phone.h"

namespace {

using leadflow::fuzz::Check;

// '+' and digits, no leading zero. Not ITU's 15-digit maximum: libphonenumber's metadata accepts
// some longer German fixed-line numbers (+49 and 14 national digits), which it formats as such.
bool IsE164(const std::string& phone) {
  if (phone.size() < 3 || phone.size() > 20 || phone[0] != '+' || phone[1] == '0') {
    return false;
  }
  for (size_t i = 1; i < phone.size(); ++i) {
    if (phone[i] < '0' || phone[i] > '9') {
      return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace identity = leadflow::identity;
  if (size == 0) {
    return 0;
  }
  static const char* const kRegions[] = {"FR", "US", "DE", "GB", "BR", "IN", "JP", "CH"};
  std::string_view text = leadflow::fuzz::AsText(data + 1, size - 1);
  identity::IsValidUtf8(text);
  if (data[0] & 1) {
    const char* region = kRegions[(data[0] >> 1) % 8];
    auto phone = identity::NormalizePhone(text, region);
    auto reference = identity::internal::NormalizePhoneReference(text, region);
    Check(phone.ok() == reference.ok() &&
              (phone.ok() ? *phone == *reference : phone.status() == reference.status()),
          "NormalizePhone gives libphonenumber's own answer");
    if (phone.ok()) {
      Check(IsE164(*phone), "a normalised phone is E.164");
      auto again = identity::NormalizePhone(*phone, "US");
      Check(again.ok() && *again == *phone, "E.164 normalises to itself from any region");
    }
  } else {
    auto email = identity::NormalizeEmail(text);
    if (email.ok()) {
      Check(identity::IsValidUtf8(*email), "a normalised email is UTF-8");
      Check(email->size() <= identity::kMaxEmailLength, "a normalised email within the limit");
      Check(email->find(' ') == std::string::npos, "a normalised email has no space");
      auto again = identity::NormalizeEmail(*email);
      Check(again.ok() && *again == *email, "a normalised email normalises to itself");
    }
  }
  return 0;
}
