#include "crm-core/domain/email/thread.h"

#include <gtest/gtest.h>

namespace leadflow::crm::domain {
namespace {

// Protects: a reply's lookups come in the order that decides (In-Reply-To, then References newest
// first), without its own id, duplicates, blanks or oversized ids, and bounded in number.
TEST(ThreadCandidatesTest, InReplyToFirstThenReferencesNewestFirst) {
  EXPECT_EQ(ThreadCandidates("me@x", "b@x",
                             {"a@x", "b@x", "c@x", "me@x", " ", "", std::string("n\0l@x", 5),
                              "caf\xc3\xa9@x", "sp ace@x"}),
            (std::vector<std::string>{"b@x", "c@x", "a@x"}));
  std::vector<std::string> many;
  for (int i = 0; i < 100; ++i) many.push_back("m" + std::to_string(i) + "@x");
  many.push_back(std::string(kMaxMessageIdBytes + 1, 'a'));
  std::vector<std::string> candidates = ThreadCandidates("", "", many);
  ASSERT_EQ(candidates.size(), kMaxThreadLookups);
  EXPECT_EQ(candidates.front(), "m99@x");
}

// Protects: the first stored candidate decides the owner; its thread's open activity is joined,
// and a thread whose activity was completed gets a new one for the owner's responsible.
TEST(DecideThreadTest, FirstStoredCandidateDecides) {
  std::vector<ThreadMessage> stored = {{.message_id = "a@x",
                                        .thread_key = "a@x",
                                        .owner = {EntityKind::kDeal, 7},
                                        .owner_responsible = 3,
                                        .open_activity = 41},
                                       {.message_id = "b@x",
                                        .thread_key = "b@x",
                                        .owner = {EntityKind::kContact, 9},
                                        .owner_responsible = 0,
                                        .open_activity = std::nullopt}};
  std::optional<ThreadDecision> joins = DecideThread({"zz@x", "a@x", "b@x"}, stored);
  ASSERT_TRUE(joins.has_value());
  EXPECT_EQ(joins->owner, (EntityRef{EntityKind::kDeal, 7}));
  EXPECT_EQ(joins->join_activity, 41);
  EXPECT_EQ(joins->thread_key, "a@x");

  std::optional<ThreadDecision> opens = DecideThread({"b@x", "a@x"}, stored);
  ASSERT_TRUE(opens.has_value());
  EXPECT_EQ(opens->owner, (EntityRef{EntityKind::kContact, 9}));
  EXPECT_FALSE(opens->join_activity.has_value());

  EXPECT_FALSE(DecideThread({"zz@x"}, stored).has_value());
  EXPECT_FALSE(DecideThread({}, stored).has_value());
}

// Protects: kept text is cut on a character boundary, never inside a UTF-8 sequence.
TEST(CutUtf8Test, CutsOnCharacterBoundary) {
  EXPECT_EQ(CutUtf8("héllo", 2), "h");  // é is two bytes
  EXPECT_EQ(CutUtf8("héllo", 3), "hé");
  EXPECT_EQ(CutUtf8("abc", 10), "abc");
}

// Protects: route addresses are refused unless they look like one address of ours.
TEST(NormalizeRouteAddressTest, AcceptsOnlyOneAddress) {
  EXPECT_EQ(NormalizeRouteAddress(" Sales@Acme.TEST "), "sales@acme.test");
  for (const char* bad :
       {"", "sales", "@acme.test", "sales@", "a@b@c", "sa les@acme.test", "sales@acme\ttest"}) {
    EXPECT_EQ(NormalizeRouteAddress(bad), "") << bad;
  }
  EXPECT_EQ(NormalizeRouteAddress(std::string(65, 'a') + "@x.test"), "");
}

// Protects: the Reply-To is trusted only for mail to a configured address (any case); by
// default, for none.
TEST(ReplyToTrustedTest, OnlyConfiguredMailboxes) {
  EXPECT_FALSE(ReplyToTrusted({}, "forms@acme.test"));
  const std::set<std::string> trusted = {"forms@acme.test"};
  EXPECT_TRUE(ReplyToTrusted(trusted, " Forms@ACME.test"));
  EXPECT_FALSE(ReplyToTrusted(trusted, "sales@acme.test"));
  EXPECT_FALSE(ReplyToTrusted(trusted, ""));
}

// Protects: the domain a reply's sender may join a thread through: none at a public mail
// provider (a listed domain, any case, or "name.*" with any suffix), at a domain of ours (listed,
// or the address the mail came in through), or without a dotted domain.
TEST(ColleagueDomainTest, PublicAndOwnDomainsSayNothing) {
  const std::vector<std::string>& shared = DefaultPublicMailDomains();
  const std::set<std::string> own = {"staff.acme.test"};
  EXPECT_EQ(ColleagueDomain("sophie@acme-btp.fr", shared, own, "sales@acme.test"), "acme-btp.fr");
  EXPECT_EQ(ColleagueDomain("Sophie@ACME-btp.fr", shared, own, ""), "acme-btp.fr");
  for (const char* address :
       {"x@gmail.com", "x@GMAIL.COM", "x@outlook.com", "x@hotmail.com", "x@yahoo.com",
        "x@icloud.com", "x@mail.ru", "x@yandex.ru", "x@gmx.de", "x@gmx.net", "x@gmx.co.uk",
        "x@web.de", "x@orange.fr", "x@free.fr", "x@staff.acme.test", "x@acme.test", "x@localhost",
        "no-domain", "x@"}) {
    EXPECT_EQ(ColleagueDomain(address, shared, own, "Sales@Acme.test"), "") << address;
  }
  EXPECT_TRUE(SharedMailDomain({"gmx.*"}, "gmx.at"));
  EXPECT_FALSE(SharedMailDomain({"gmx.*"}, "gmx"));
  EXPECT_FALSE(SharedMailDomain({"gmx.*"}, "mygmx.de"));
  EXPECT_FALSE(SharedMailDomain({"gmail.com"}, "notgmail.com"));
  EXPECT_EQ(AddressDomain("a@b@Example.ORG "), "example.org");
  EXPECT_EQ(NormalizeMailDomainPattern(" GMX.* "), "gmx.*");
  for (const char* bad :
       {"", "gmail", "*.gmail.com", "a@b.c", "g mail.com", ".com", "gmail.", "*"}) {
    EXPECT_EQ(NormalizeMailDomainPattern(bad), "") << bad;
  }
}

}  // namespace
}  // namespace leadflow::crm::domain
