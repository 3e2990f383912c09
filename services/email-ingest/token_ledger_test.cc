// Mailgun's tokens: used once a message is taken, free again when its publish failed.

#include "email-ingest/token_ledger.h"

#include <gtest/gtest.h>

namespace leadflow::email {
namespace {

using Claim = TokenLedger::Claim;
using namespace std::chrono_literals;

const auto kStart = std::chrono::steady_clock::time_point(1000s);

// Protects: a token whose publish failed (Kafka down, 503) is free for Mailgun's retry of the
// same request, which must not be refused as a replay; while the first attempt is in flight a
// copy is told to come back; once accepted, a repeat is recognised as accepted (200, nothing
// published); the token never carries another message.
TEST(TokenLedgerTest, UsedOnlyOnceAccepted) {
  TokenLedger ledger(100, 3600s);
  EXPECT_EQ(ledger.Begin("t1", "body", kStart), Claim::kFresh);
  EXPECT_EQ(ledger.Begin("t1", "body", kStart), Claim::kPending);
  EXPECT_EQ(ledger.Begin("t1", "other body", kStart), Claim::kMismatch);
  ledger.Release("t1");                                                 // the publish failed
  EXPECT_EQ(ledger.Begin("t1", "body", kStart + 600s), Claim::kFresh);  // Mailgun's retry
  ledger.Accept("t1", kStart + 601s);
  EXPECT_EQ(ledger.Begin("t1", "body", kStart + 1500s), Claim::kAccepted);
  EXPECT_EQ(ledger.Begin("t1", "other body", kStart + 1500s), Claim::kMismatch);
  EXPECT_EQ(ledger.size(), 1u);
}

// Protects: the ledger is bounded: expired tokens are forgotten, and past the capacity the oldest
// goes first and is counted.
TEST(TokenLedgerTest, Bounded) {
  TokenLedger ledger(2, 60s);
  EXPECT_EQ(ledger.Begin("a", "x", kStart), Claim::kFresh);
  ledger.Accept("a", kStart);
  EXPECT_EQ(ledger.Begin("b", "x", kStart + 1s), Claim::kFresh);
  EXPECT_EQ(ledger.Begin("c", "x", kStart + 2s), Claim::kFresh);
  EXPECT_EQ(ledger.size(), 2u);
  EXPECT_EQ(ledger.evicted(), 1u);
  EXPECT_EQ(ledger.Begin("a", "x", kStart + 3s), Claim::kFresh);    // forgotten
  EXPECT_EQ(ledger.Begin("b", "x", kStart + 120s), Claim::kFresh);  // expired
  EXPECT_EQ(ledger.size(), 1u);
}

}  // namespace
}  // namespace leadflow::email
