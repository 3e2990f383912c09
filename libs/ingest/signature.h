#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"

struct evp_mac_ctx_st;  // OpenSSL's EVP_MAC_CTX

namespace leadflow::ingest {

/// Webhook signature checks for the providers (Meta, Viber, Twilio, Mailgun, Telegram).
/// Every comparison of a secret-derived value is constant-time (CRYPTO_memcmp). Failures are
/// Unauthenticated (bad or missing signature) or FailedPrecondition (stale timestamp, replay);
/// the caller answers 401/403 and counts them, never echoing what was expected.

enum class HmacAlgorithm { kSha1, kSha256 };

/// The raw HMAC of `data` under `key` (OpenSSL).
std::string Hmac(HmacAlgorithm algorithm, std::string_view key, std::string_view data);
std::string HexEncode(std::string_view bytes);
std::string Base64Encode(std::string_view bytes);

/// Same length and same bytes, in time independent of where they differ.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

/// `signature_hex` (either case) is the hex HMAC of `data` under `key`.
absl::Status VerifyHexHmac(HmacAlgorithm algorithm, std::string_view key, std::string_view data,
                           std::string_view signature_hex);

/// A secret that checks many requests, set up once: each HMAC then starts from the keyed state
/// instead of looking the algorithm up and hashing the key again (half the cost of Hmac() for a
/// short message): a copy of it, or a context of an earlier HMAC reset to it. Thread-safe: the
/// keyed state is only read, the reset contexts are taken and given back under a lock.
class HmacKey {
 public:
  HmacKey(HmacAlgorithm algorithm, std::string_view key);
  ~HmacKey();
  HmacKey(const HmacKey&) = delete;
  HmacKey& operator=(const HmacKey&) = delete;

  /// The raw HMAC of `parts` one after the other (Hmac() over them joined if OpenSSL could not
  /// set the key up: slower, never wrong).
  std::string Sign(std::initializer_list<std::string_view> parts) const;
  /// VerifyHexHmac over `parts` one after the other.
  absl::Status VerifyHex(std::initializer_list<std::string_view> parts,
                         std::string_view signature_hex) const;

 private:
  struct Free {
    void operator()(evp_mac_ctx_st* context) const;
  };
  using Context = std::unique_ptr<evp_mac_ctx_st, Free>;
  const HmacAlgorithm algorithm_;
  const std::string key_;  // for the fallback only
  Context keyed_;
  // Keyed contexts done with, reset (OpenSSL keeps the key's state): taken again instead of
  // copying keyed_, at most kMaxIdle of them. Off when a reset context was found to sign
  // wrong at set-up (OpenSSL before 3.0.3 ignored a reset without a key).
  static constexpr size_t kMaxIdle = 8;
  bool reuse_ = false;
  mutable std::mutex idle_mutex_;
  mutable std::vector<Context> idle_;
};

/// Meta (Messenger, Instagram, WhatsApp): `X-Hub-Signature-256: sha256=<hex>` over the raw body
/// with the App Secret; the legacy `X-Hub-Signature: sha1=<hex>` is accepted by its prefix.
absl::Status VerifyMetaSignature(std::string_view app_secret, std::string_view body,
                                 std::string_view header);

/// Viber: `X-Viber-Content-Signature` is the hex HMAC-SHA256 of the raw body under the bot's
/// auth token, without prefix.
absl::Status VerifyViberSignature(std::string_view auth_token, std::string_view body,
                                  std::string_view header);

/// Twilio: `X-Twilio-Signature` is Base64(HMAC-SHA1(auth token, full URL followed by each POST
/// parameter's name and value, sorted by name)).
absl::Status VerifyTwilioSignature(std::string_view auth_token, std::string_view full_url,
                                   std::vector<std::pair<std::string, std::string>> parameters,
                                   std::string_view header);

/// Whether `timestamp` (Unix seconds) is within `window` of `now`, either side.
absl::Status CheckTimestampWindow(int64_t timestamp, std::chrono::system_clock::time_point now,
                                  std::chrono::seconds window);

/// Mailgun: `signature` is the hex HMAC-SHA256 of timestamp + token under the signing key, and
/// the timestamp must be within `window` of now (Mailgun's own examples use 2 minutes).
absl::Status VerifyMailgunSignature(std::string_view signing_key, std::string_view timestamp,
                                    std::string_view token, std::string_view signature,
                                    std::chrono::system_clock::time_point now,
                                    std::chrono::seconds window);

/// Telegram: the `X-Telegram-Bot-Api-Secret-Token` header equals the secret given to setWebhook.
absl::Status VerifyTelegramSecretToken(std::string_view expected, std::string_view header);

/// Remembers signatures (or provider tokens) seen within `ttl`, so that a captured, validly
/// signed request replayed within its timestamp window is refused. Bounded: past `capacity`
/// the oldest entries are forgotten (and counted), which only shortens the window an attacker
/// must wait, never lets memory grow. Per process: replicas each keep their own.
/// Keys are remembered by a 64-bit hash (seeded per process): two keys sharing one, with odds
/// of about capacity / 2^64, would take the second for a replay. Nothing is allocated per key.
class ReplayCache {
 public:
  ReplayCache(size_t capacity, std::chrono::seconds ttl);
  ~ReplayCache();
  ReplayCache(const ReplayCache&) = delete;
  ReplayCache& operator=(const ReplayCache&) = delete;

  /// OK the first time `key` is seen within the ttl; FailedPrecondition on a replay.
  absl::Status CheckAndRemember(std::string_view key, std::chrono::steady_clock::time_point now);

  size_t size() const;
  /// Entries dropped before their ttl because the cache was full.
  uint64_t evicted() const;

 private:
  struct State;
  const std::chrono::seconds ttl_;
  std::unique_ptr<State> state_;
};

}  // namespace leadflow::ingest
