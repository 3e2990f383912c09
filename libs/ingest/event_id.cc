#include "ingest/event_id.h"

#include <openssl/evp.h>

#include <memory>
#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "ingest/signature.h"

namespace leadflow::ingest {

namespace {

// EVP_sha256() makes OpenSSL 3 look the algorithm up in its provider tables at every
// EVP_DigestInit, and EVP_Digest allocates a context per call: together more than the hashing
// of a short input (callgrind, docs/performance.md). The algorithm is fetched once and each
// thread reuses one context.
const EVP_MD* Sha256() {
  static const EVP_MD* const md = [] {
    const EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    if (fetched == nullptr) {
      throw std::runtime_error("EVP_MD_fetch(SHA256) failed");
    }
    return fetched;
  }();
  return md;
}

struct ContextDeleter {
  void operator()(EVP_MD_CTX* context) const { EVP_MD_CTX_free(context); }
};

}  // namespace

std::string Sha256Hex(std::string_view data) {
  thread_local std::unique_ptr<EVP_MD_CTX, ContextDeleter> context(EVP_MD_CTX_new());
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (!context || EVP_DigestInit_ex2(context.get(), Sha256(), nullptr) != 1 ||
      EVP_DigestUpdate(context.get(), data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(context.get(), digest, &length) != 1) {
    throw std::runtime_error("SHA-256 failed");
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
