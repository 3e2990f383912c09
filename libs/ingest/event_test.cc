#include "ingest/event.h"

#include <gtest/gtest.h>

#include <set>

#include "absl/strings/str_cat.h"
#include "ingest/event_id.h"

namespace leadflow::ingest {
namespace {

// Protects: one event id spelling for every channel, deterministic in the provider's id and
// distinct across channels and ids. Expected value computed independently:
//   echo -n '<CAF=abc@mail.example>' | sha256sum
TEST(EventIdTest, ChannelPrefixAndHashOfProviderId) {
  EXPECT_EQ(EventId("email", "<CAF=abc@mail.example>"),
            "email:" + Sha256Hex("<CAF=abc@mail.example>"));
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(EventId("call", "CA1"), EventId("call", "CA1"));
  EXPECT_NE(EventId("call", "CA1"), EventId("msg", "CA1"));
  EXPECT_NE(EventId("call", "CA1"), EventId("call", "CA2"));
  std::string a;
  AppendPart(&a, "ab");
  AppendPart(&a, "c");
  std::string b;
  AppendPart(&b, "a");
  AppendPart(&b, "bc");
  EXPECT_NE(a, b);
  EXPECT_EQ(a, "2:ab;1:c;");
  // The exact bytes event ids are hashed from: they must not change between versions.
  std::string c;
  AppendPart(&c, "");
  AppendPart(&c, std::string("x\0y", 3));
  AppendPart(&c, std::string(1234, 'z'));
  EXPECT_EQ(c,
            absl::StrCat("0:;3:", std::string("x\0y", 3), ";1234:", std::string(1234, 'z'), ";"));
}

// Protects: an event id with no provider id to derive it from (a web form without an
// Idempotency-Key) is random and spelt as every event id: "<channel>:" and 64 hex digits, never
// repeated, also across refills of the per-thread buffer of random bytes it is drawn from.
TEST(EventIdTest, RandomIdsHaveTheOneSpelling) {
  std::set<std::string> seen;
  const size_t size = EventId("email", "anything").size();
  for (int i = 0; i < 1000; ++i) {
    std::string id = RandomEventId("email");
    ASSERT_EQ(id.size(), size) << id;
    EXPECT_EQ(id.rfind("email:", 0), 0u) << id;
    EXPECT_EQ(id.find_first_not_of("0123456789abcdef", 6), std::string::npos) << id;
    EXPECT_TRUE(seen.insert(id).second) << id;
  }
  EXPECT_EQ(RandomEventId("wf").rfind("wf:", 0), 0u);
}

// Protects: the builder fills the shared parts — source, person, normalised and canonically
// ordered identities, key, event-type header, a valid traceparent only.
TEST(EventBuilderTest, SharedParts) {
  EventBuilder builder("email-ingest", "mailgun", "email");
  builder.Reference("sales@shop.example")
      .Client("203.0.113.9", "Mozilla/5.0\x01\xc3\xa9")
      .Person("Ada", "Lovelace", "", "Paris")
      .Times(std::chrono::system_clock::time_point(std::chrono::seconds(1700000000)),
             std::chrono::system_clock::time_point(std::chrono::seconds(1700000005)))
      .Traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
      .EventId(EventId("email", "<m1@x>"));
  ASSERT_TRUE(builder.AddEmail(" Ada@Example.COM ").ok());
  ASSERT_TRUE(builder.AddPhone("06 12 34 56 78", "FR").ok());
  EXPECT_FALSE(builder.AddPhone("12", "FR").ok());
  EXPECT_FALSE(builder.AddEmail("not an address").ok());
  auto built = std::move(builder).Finish();
  ASSERT_TRUE(built.ok()) << built.status();
  const events::v1::InboundEvent& event = built->event;
  EXPECT_EQ(event.source().service(), "email-ingest");
  EXPECT_EQ(event.source().provider(), "mailgun");
  EXPECT_EQ(event.source().reference(), "sales@shop.example");
  EXPECT_EQ(event.source().client_ip(), "203.0.113.9");
  EXPECT_EQ(event.source().user_agent(), "Mozilla/5.0???");
  EXPECT_EQ(event.person().city(), "Paris");
  EXPECT_EQ(event.occurred_at().seconds(), 1700000000);
  EXPECT_EQ(event.received_at().seconds(), 1700000005);
  ASSERT_EQ(event.identities_size(), 2);
  EXPECT_FALSE(built->key.empty());
  ASSERT_EQ(built->headers.size(), 2u);
  EXPECT_EQ(built->headers[0].key, "event-type");
  EXPECT_EQ(built->headers[0].value, "email");
  EXPECT_EQ(built->headers[1].key, "traceparent");
}

// Protects: no event leaves without an identity or an id, and bad trace context is dropped.
TEST(EventBuilderTest, RefusesIncompleteEventsAndBadTraceparent) {
  EventBuilder no_identity("s", "p", "t");
  no_identity.EventId("x:1");
  EXPECT_EQ(std::move(no_identity).Finish().status().code(), absl::StatusCode::kFailedPrecondition);
  EventBuilder no_id("s", "p", "t");
  no_id.AddMessenger("telegram", "42");
  EXPECT_EQ(std::move(no_id).Finish().status().code(), absl::StatusCode::kFailedPrecondition);
  EventBuilder bad_trace("s", "p", "t");
  bad_trace.AddMessenger("telegram", "42");
  bad_trace.EventId("msg:1").Traceparent("00-zz-b7ad6b7169203331-01");
  auto built = std::move(bad_trace).Finish();
  ASSERT_TRUE(built.ok());
  EXPECT_EQ(built->headers.size(), 1u);
  EXPECT_EQ(built->event.identities(0).value(), "telegram:42");
}

}  // namespace
}  // namespace leadflow::ingest
