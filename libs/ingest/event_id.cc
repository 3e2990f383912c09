#include "ingest/event_id.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstring>
#include <memory>
#include <stdexcept>

#include "absl/strings/numbers.h"
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

// Bytes from OpenSSL's generator, drawn 4 KiB at a time per thread: each RAND_bytes call costs a
// system call (OpenSSL 3 compares getpid() with the generator's to notice a fork) and more
// instructions than the rest of the id. The services never fork. What is handed out is wiped
// from the buffer.
void RandomBytes(unsigned char* out, size_t size) {
  thread_local unsigned char buffer[4096];
  thread_local size_t used = sizeof(buffer);
  if (size > sizeof(buffer)) {
    throw std::invalid_argument("RandomBytes: too many bytes at once");
  }
  if (used + size > sizeof(buffer)) {
    if (RAND_bytes(buffer, sizeof(buffer)) != 1) {
      throw std::runtime_error("RAND_bytes failed");
    }
    used = 0;
  }
  std::memcpy(out, buffer + used, size);
  OPENSSL_cleanse(buffer + used, size);
  used += size;
}

// "<channel>:" and hex digits: the one spelling of an event id.
std::string Spell(std::string_view channel, const std::string& hex) {
  return absl::StrCat(absl::string_view(channel.data(), channel.size()), ":", hex);
}

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
  return Spell(channel, Sha256Hex(provider_id));
}

std::string RandomEventId(std::string_view channel) {
  // As many bytes as a SHA-256 digest: the same length as EventId's.
  unsigned char bytes[32];
  RandomBytes(bytes, sizeof(bytes));
  return Spell(channel,
               HexEncode(std::string_view(reinterpret_cast<const char*>(bytes), sizeof(bytes))));
}

void AppendPart(std::string* out, std::string_view part) {
  // The same bytes as StrAppend(out, part.size(), ":", part, ";") (event ids are hashes of them
  // and must not change), without its generic multi-piece path: ~16 parts per submission.
  char length[absl::numbers_internal::kFastToBufferSize];
  char* end = absl::numbers_internal::FastIntToBuffer(part.size(), length);
  out->append(length, end);
  out->push_back(':');
  out->append(part);
  out->push_back(';');
}

}  // namespace leadflow::ingest
