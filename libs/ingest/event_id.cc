#include "ingest/event_id.h"

#include <openssl/evp.h>

#include <memory>
#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "ingest/signature.h"

namespace leadflow::ingest {

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("EVP_Digest failed");
  }
  return HexEncode(std::string_view(reinterpret_cast<const char*>(digest), length));
}

std::string EventId(std::string_view channel, std::string_view provider_id) {
  return absl::StrCat(absl::string_view(channel.data(), channel.size()), ":",
                      Sha256Hex(provider_id));
}

void AppendPart(std::string* out, std::string_view part) {
  absl::StrAppend(out, part.size(), ":", absl::string_view(part.data(), part.size()), ";");
}

}  // namespace leadflow::ingest
