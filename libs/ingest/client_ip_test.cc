#include "ingest/client_ip.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <random>

namespace leadflow::ingest {
namespace {

TrustedProxies Trusted(std::string_view list) {
  auto trusted = TrustedProxies::Parse(list);
  EXPECT_TRUE(trusted.ok()) << trusted.status();
  return *trusted;
}

// Protects: only strict address text is an address: a port, brackets, hex or short forms are
// not (defect f: "1.2.3.4:5678" and hex were accepted as client IPs).
TEST(IpAddressTest, StrictParsing) {
  EXPECT_TRUE(IpAddress::Parse("203.0.113.7"));
  EXPECT_TRUE(IpAddress::Parse("2001:db8::1"));
  EXPECT_FALSE(IpAddress::Parse("1.2.3.4:5678"));
  EXPECT_FALSE(IpAddress::Parse("0x7f.0.0.1"));
  EXPECT_FALSE(IpAddress::Parse("abcdef"));
  EXPECT_FALSE(IpAddress::Parse("127.1"));
  EXPECT_FALSE(IpAddress::Parse("[::1]"));
  EXPECT_FALSE(IpAddress::Parse(""));
  EXPECT_EQ(IpAddress::Parse("::ffff:10.0.0.1")->ToString(), "10.0.0.1");
}

// Protects: an IPv4 address is spelt exactly as inet_ntop spells it (the faster formatting of
// ToString), for every value of every byte.
TEST(IpAddressTest, Ipv4TextIsInetNtops) {
  std::mt19937 random(11);
  for (int i = 0; i < 20000; ++i) {
    uint8_t raw[4];
    for (int k = 0; k < 4; ++k) {
      raw[k] = static_cast<uint8_t>(i < 1024 ? (k == i / 256 ? i % 256 : 0) : random() % 256);
    }
    char expected[INET_ADDRSTRLEN] = {};
    ASSERT_NE(inet_ntop(AF_INET, raw, expected, sizeof(expected)), nullptr);
    IpAddress address;
    address.is_v4 = true;
    address.bytes[10] = 0xff;
    address.bytes[11] = 0xff;
    std::memcpy(address.bytes.data() + 12, raw, 4);
    ASSERT_EQ(address.ToString(), expected);
    ASSERT_EQ(IpAddress::Parse(expected)->ToString(), expected);
  }
}

// Protects: trusted proxies are CIDR ranges; bad entries are refused at start-up, by name.
TEST(TrustedProxiesTest, ParsesRangesAndRefusesGarbage) {
  TrustedProxies trusted = Trusted("10.0.0.0/8, 192.168.1.7 ,fd00::/8");
  EXPECT_TRUE(trusted.Contains(*IpAddress::Parse("10.200.3.4")));
  EXPECT_TRUE(trusted.Contains(*IpAddress::Parse("::ffff:10.1.1.1")));
  EXPECT_TRUE(trusted.Contains(*IpAddress::Parse("192.168.1.7")));
  EXPECT_FALSE(trusted.Contains(*IpAddress::Parse("192.168.1.8")));
  EXPECT_TRUE(trusted.Contains(*IpAddress::Parse("fd12::5")));
  EXPECT_FALSE(trusted.Contains(*IpAddress::Parse("11.0.0.1")));
  EXPECT_FALSE(TrustedProxies::Parse("10.0.0.0/33").ok());
  EXPECT_FALSE(TrustedProxies::Parse("10.0.0/8").ok());
  EXPECT_FALSE(TrustedProxies::Parse("proxy.local").ok());
  EXPECT_TRUE(TrustedProxies::Parse("").ok());
}

// Protects (defect f): the client is the rightmost X-Forwarded-For entry, across every header,
// that is not a trusted proxy — a client cannot choose its address by prepending entries, and
// an untrusted peer's headers are ignored.
TEST(ClientIpTest, RightmostUntrustedAcrossHeaders) {
  TrustedProxies trusted = Trusted("10.0.0.0/8");
  // The spoofed first entry is ignored: the proxy appended the real client last.
  EXPECT_EQ(ClientIp("10.0.0.2", {"6.6.6.6, 198.51.100.4"}, trusted), "198.51.100.4");
  // Two proxies in a chain, two headers.
  EXPECT_EQ(ClientIp("10.0.0.2", {"6.6.6.6", "198.51.100.4, 10.0.0.9"}, trusted), "198.51.100.4");
  // A peer that is not trusted: its header means nothing.
  EXPECT_EQ(ClientIp("203.0.113.9", {"198.51.100.4"}, trusted), "203.0.113.9");
  // Nothing to trust configured: the peer.
  EXPECT_EQ(ClientIp("10.0.0.2", {"198.51.100.4"}, TrustedProxies()), "10.0.0.2");
  // Garbage on the way: the peer, never the garbage.
  EXPECT_EQ(ClientIp("10.0.0.2", {"1.2.3.4:5678"}, trusted), "10.0.0.2");
  EXPECT_EQ(ClientIp("10.0.0.2", {"abcdef"}, trusted), "10.0.0.2");
  EXPECT_EQ(ClientIp("10.0.0.2", {"198.51.100.4, junk, 10.0.0.3"}, trusted), "10.0.0.2");
  // Every entry trusted: the leftmost.
  EXPECT_EQ(ClientIp("10.0.0.2", {"10.0.0.5, 10.0.0.3"}, trusted), "10.0.0.5");
  // No header: the peer.
  EXPECT_EQ(ClientIp("10.0.0.2", {}, trusted), "10.0.0.2");
  // A peer in IPv4-mapped form is printed as IPv4.
  EXPECT_EQ(ClientIp("::ffff:203.0.113.9", {}, trusted), "203.0.113.9");
}

// Protects: an IPv6 client cannot dodge the rate limit by using a fresh address of its /64
// for every request (before: the key was the full address, 2^64 fresh counters per client).
TEST(RateLimitSubjectTest, IPv6CountsPerSlash64) {
  EXPECT_EQ(RateLimitSubject("2001:db8:1:2::1"), "2001:db8:1:2::/64");
  EXPECT_EQ(RateLimitSubject("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::/64");
  EXPECT_NE(RateLimitSubject("2001:db8:1:3::1"), RateLimitSubject("2001:db8:1:2::1"));
  EXPECT_EQ(RateLimitSubject("2001:DB8:1:2:0:0:0:9"), "2001:db8:1:2::/64");
  // IPv4, also written as IPv4-mapped IPv6, stays per address.
  EXPECT_EQ(RateLimitSubject("203.0.113.7"), "203.0.113.7");
  EXPECT_EQ(RateLimitSubject("::ffff:203.0.113.7"), "203.0.113.7");
  EXPECT_NE(RateLimitSubject("203.0.113.7"), RateLimitSubject("203.0.113.8"));
  EXPECT_EQ(RateLimitSubject("not an address"), "not an address");
}

}  // namespace
}  // namespace leadflow::ingest
