#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace leadflow::ingest {

/// An IPv4 or IPv6 address as 16 bytes (IPv4 as IPv4-mapped IPv6, so "::ffff:10.0.0.1" and
/// "10.0.0.1" are the same address).
struct IpAddress {
  std::array<uint8_t, 16> bytes{};
  bool is_v4 = false;

  /// Strict: dotted quads or RFC 4291 text only; no port, no brackets, no hex or octal
  /// shortcuts ("1.2.3.4:5678", "0x7f.1", "[::1]" are not addresses).
  static std::optional<IpAddress> Parse(std::string_view text);
  std::string ToString() const;
};

/// A list of CIDR ranges ("10.0.0.0/8, 192.168.1.7, fd00::/8").
class TrustedProxies {
 public:
  TrustedProxies() = default;
  /// InvalidArgument naming the entry that is not an address or a range.
  static absl::StatusOr<TrustedProxies> Parse(std::string_view comma_separated);

  bool Contains(const IpAddress& address) const;
  bool empty() const { return ranges_.empty(); }

 private:
  struct Range {
    IpAddress network;
    int prefix_bits = 0;  // over the 128-bit form
  };
  std::vector<Range> ranges_;
};

/// The client's address, as nginx's real_ip with real_ip_recursive: when the TCP peer is a
/// trusted proxy, the X-Forwarded-For entries (all headers, in order, as one list) are walked
/// from the right and the first that is not a trusted proxy is the client. A peer that is not
/// trusted is the client whatever the headers say; an unparsable entry on the way stops the
/// walk and the peer is used (it was a trusted proxy that passed garbage along). When every
/// entry is trusted, the leftmost is used.
std::string ClientIp(std::string_view peer, const std::vector<std::string_view>& forwarded_for,
                     const TrustedProxies& trusted);

/// Whom a rate limit counts for this client address: an IPv4 address itself, an IPv6 address
/// its /64 ("2001:db8:1:2::/64"). One IPv6 subscriber, host or VM usually gets a whole /64 (or
/// more) and can pick a fresh address for every request, so counting full addresses would let
/// it dodge any limit. IPv4-mapped IPv6 counts as IPv4; anything unparsable is used as is.
std::string RateLimitSubject(std::string_view client_ip);

}  // namespace leadflow::ingest
