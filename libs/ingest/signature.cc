#include "ingest/signature.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace leadflow::ingest {

std::string Hmac(HmacAlgorithm algorithm, std::string_view key, std::string_view data) {
  const EVP_MD* digest = nullptr;
  switch (algorithm) {
    case HmacAlgorithm::kSha1:
      digest = EVP_sha1();
      break;
    case HmacAlgorithm::kSha256:
      digest = EVP_sha256();
      break;
  }
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (HMAC(digest, key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), out,
           &length) == nullptr) {
    return "";
  }
  return std::string(reinterpret_cast<const char*>(out), length);
}

std::string HexEncode(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(bytes.size() * 2, '\0');
  char* next = out.data();
  for (char c : bytes) {
    auto byte = static_cast<unsigned char>(c);
    *next++ = kDigits[byte >> 4];
    *next++ = kDigits[byte & 0xf];
  }
  return out;
}

std::string Base64Encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int length = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                               reinterpret_cast<const unsigned char*>(bytes.data()),
                               static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(std::max(0, length)));
  return out;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  // The lengths of signatures are public (fixed by the algorithm); only the bytes are secret.
  if (a.size() != b.size()) {
    return false;
  }
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

namespace {

// `signature_hex` (either case, not empty: the callers refuse that before signing) against the
// raw `expected`, in constant time.
absl::Status CompareHex(std::string_view expected, std::string_view signature_hex) {
  std::string given =
      absl::AsciiStrToLower(absl::string_view(signature_hex.data(), signature_hex.size()));
  if (expected.empty() || !ConstantTimeEquals(HexEncode(expected), given)) {
    return absl::UnauthenticatedError("bad signature");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status VerifyHexHmac(HmacAlgorithm algorithm, std::string_view key, std::string_view data,
                           std::string_view signature_hex) {
  if (signature_hex.empty()) {
    return absl::UnauthenticatedError("missing signature");
  }
  return CompareHex(Hmac(algorithm, key, data), signature_hex);
}

void HmacKey::Free::operator()(evp_mac_ctx_st* context) const { EVP_MAC_CTX_free(context); }

HmacKey::HmacKey(HmacAlgorithm algorithm, std::string_view key) : algorithm_(algorithm), key_(key) {
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (mac == nullptr) {
    return;
  }
  std::unique_ptr<evp_mac_ctx_st, Free> keyed(EVP_MAC_CTX_new(mac));
  EVP_MAC_free(mac);  // the context holds its own reference
  static char sha1[] = "SHA1";
  static char sha256[] = "SHA256";
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                       algorithm == HmacAlgorithm::kSha1 ? sha1 : sha256, 0),
      OSSL_PARAM_construct_end()};
  // A zero-length key is a key (HMAC pads it); a null pointer would not be.
  static const unsigned char kNoKey = 0;
  const auto* bytes = key.empty() ? &kNoKey : reinterpret_cast<const unsigned char*>(key.data());
  if (keyed != nullptr && EVP_MAC_init(keyed.get(), bytes, key.size(), params) == 1) {
    keyed_ = std::move(keyed);
  }
  if (!keyed_) {
    return;
  }
  // Contexts are reused only if a reset one signs what Hmac() signs: two messages in a row
  // through one context, the second after the reset.
  reuse_ = true;
  const std::string expected_first = Hmac(algorithm, key, "leadflow-hmac-reuse-check-1");
  const std::string expected_second = Hmac(algorithm, key, "leadflow-hmac-reuse-check-2");
  const bool first = Sign({"leadflow-hmac-reuse-check-1"}) == expected_first;
  reuse_ = first && Sign({"leadflow-hmac-reuse-check-2"}) == expected_second;
  if (!reuse_) {
    std::lock_guard lock(idle_mutex_);
    idle_.clear();
  }
}

HmacKey::~HmacKey() = default;

std::string HmacKey::Sign(std::initializer_list<std::string_view> parts) const {
  Context context;
  if (keyed_ && reuse_) {
    std::lock_guard lock(idle_mutex_);
    if (!idle_.empty()) {
      context = std::move(idle_.back());
      idle_.pop_back();
    }
  }
  if (context == nullptr && keyed_) {
    context.reset(EVP_MAC_CTX_dup(keyed_.get()));
  }
  if (context == nullptr) {
    std::string joined;
    for (std::string_view part : parts) {
      joined.append(part);
    }
    return Hmac(algorithm_, key_, joined);
  }
  unsigned char out[EVP_MAX_MD_SIZE];
  size_t length = 0;
  bool ok = true;
  for (std::string_view part : parts) {
    ok = ok && EVP_MAC_update(context.get(), reinterpret_cast<const unsigned char*>(part.data()),
                              part.size()) == 1;
  }
  ok = ok && EVP_MAC_final(context.get(), out, &length, sizeof(out)) == 1;
  // Without a key, init starts the context over under the key it holds.
  if (ok && reuse_ && EVP_MAC_init(context.get(), nullptr, 0, nullptr) == 1) {
    std::lock_guard lock(idle_mutex_);
    if (idle_.size() < kMaxIdle) {
      idle_.push_back(std::move(context));
    }
  }
  return ok ? std::string(reinterpret_cast<const char*>(out), length) : std::string();
}

absl::Status HmacKey::VerifyHex(std::initializer_list<std::string_view> parts,
                                std::string_view signature_hex) const {
  if (signature_hex.empty()) {
    return absl::UnauthenticatedError("missing signature");
  }
  return CompareHex(Sign(parts), signature_hex);
}

absl::Status VerifyMetaSignature(std::string_view app_secret, std::string_view body,
                                 std::string_view header) {
  if (header.rfind("sha256=", 0) == 0) {
    return VerifyHexHmac(HmacAlgorithm::kSha256, app_secret, body, header.substr(7));
  }
  if (header.rfind("sha1=", 0) == 0) {
    return VerifyHexHmac(HmacAlgorithm::kSha1, app_secret, body, header.substr(5));
  }
  return absl::UnauthenticatedError("missing or unknown signature scheme");
}

absl::Status VerifyViberSignature(std::string_view auth_token, std::string_view body,
                                  std::string_view header) {
  return VerifyHexHmac(HmacAlgorithm::kSha256, auth_token, body, header);
}

absl::Status VerifyTwilioSignature(std::string_view auth_token, std::string_view full_url,
                                   std::vector<std::pair<std::string, std::string>> parameters,
                                   std::string_view header) {
  if (header.empty()) {
    return absl::UnauthenticatedError("missing signature");
  }
  std::stable_sort(parameters.begin(), parameters.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string data(full_url);
  for (const auto& [name, value] : parameters) {
    absl::StrAppend(&data, name, value);
  }
  if (!ConstantTimeEquals(Base64Encode(Hmac(HmacAlgorithm::kSha1, auth_token, data)), header)) {
    return absl::UnauthenticatedError("bad signature");
  }
  return absl::OkStatus();
}

absl::Status CheckTimestampWindow(int64_t timestamp, std::chrono::system_clock::time_point now,
                                  std::chrono::seconds window) {
  int64_t now_seconds =
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  int64_t difference = now_seconds > timestamp ? now_seconds - timestamp : timestamp - now_seconds;
  if (difference > window.count()) {
    return absl::FailedPreconditionError(
        absl::StrCat("timestamp outside the ", window.count(), " s window"));
  }
  return absl::OkStatus();
}

absl::Status VerifyMailgunSignature(std::string_view signing_key, std::string_view timestamp,
                                    std::string_view token, std::string_view signature,
                                    std::chrono::system_clock::time_point now,
                                    std::chrono::seconds window) {
  if (timestamp.empty() || timestamp.size() > 12 ||
      !std::all_of(timestamp.begin(), timestamp.end(),
                   [](char c) { return absl::ascii_isdigit(c); })) {
    return absl::UnauthenticatedError("missing or malformed timestamp");
  }
  // Verify first, so that an unsigned request learns nothing from the window check.
  std::string data = absl::StrCat(absl::string_view(timestamp.data(), timestamp.size()),
                                  absl::string_view(token.data(), token.size()));
  if (auto status = VerifyHexHmac(HmacAlgorithm::kSha256, signing_key, data, signature);
      !status.ok()) {
    return status;
  }
  return CheckTimestampWindow(std::stoll(std::string(timestamp)), now, window);
}

absl::Status VerifyTelegramSecretToken(std::string_view expected, std::string_view header) {
  if (expected.empty() || !ConstantTimeEquals(expected, header)) {
    return absl::UnauthenticatedError("bad secret token");
  }
  return absl::OkStatus();
}

// Oldest first in a ring of `capacity` slots; all entries share one ttl, so the ring is in
// expiry order. The set holds the ring's hashes (each at most once).
struct ReplayCache::State {
  explicit State(size_t capacity) : ring(capacity) { seen.reserve(capacity); }
  void PopOldest() {
    seen.erase(ring[head].hash);
    head = (head + 1) % ring.size();
    --count;
  }
  struct Entry {
    size_t hash = 0;
    std::chrono::steady_clock::time_point at;
  };
  std::mutex mutex;
  std::vector<Entry> ring;
  size_t head = 0;
  size_t count = 0;
  absl::flat_hash_set<size_t> seen;
  uint64_t evicted = 0;
};

ReplayCache::ReplayCache(size_t capacity, std::chrono::seconds ttl)
    : ttl_(ttl), state_(std::make_unique<State>(capacity)) {}

ReplayCache::~ReplayCache() = default;

absl::Status ReplayCache::CheckAndRemember(std::string_view key,
                                           std::chrono::steady_clock::time_point now) {
  const size_t hash = absl::HashOf(key);
  State& state = *state_;
  std::lock_guard lock(state.mutex);
  while (state.count > 0 && state.ring[state.head].at + ttl_ <= now) {
    state.PopOldest();
  }
  if (state.seen.contains(hash)) {
    return absl::FailedPreconditionError("replayed request");
  }
  if (state.ring.empty()) {
    return absl::OkStatus();
  }
  if (state.count == state.ring.size()) {
    state.PopOldest();
    ++state.evicted;
  }
  state.ring[(state.head + state.count) % state.ring.size()] = {hash, now};
  ++state.count;
  state.seen.insert(hash);
  return absl::OkStatus();
}

size_t ReplayCache::size() const {
  std::lock_guard lock(state_->mutex);
  return state_->count;
}

uint64_t ReplayCache::evicted() const {
  std::lock_guard lock(state_->mutex);
  return state_->evicted;
}

}  // namespace leadflow::ingest
