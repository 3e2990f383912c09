#include "ingest/checkpoint.h"

#include <gtest/gtest.h>

namespace leadflow::ingest {
namespace {

// Protects: the cursor never passes an event Kafka has not acknowledged, even when later
// events are acknowledged first (acknowledgements arrive out of order across partitions).
TEST(CheckpointTest, AdvancesOnlyOverAnAcknowledgedPrefix) {
  Checkpoint checkpoint(10);
  uint64_t a = *checkpoint.Track("uid:1");
  uint64_t b = *checkpoint.Track("uid:2");
  uint64_t c = *checkpoint.Track("uid:3");
  checkpoint.Done(c, true);
  checkpoint.Done(b, true);
  EXPECT_EQ(checkpoint.Committable(), std::nullopt);
  checkpoint.Done(a, true);
  EXPECT_EQ(checkpoint.Committable(), "uid:3");
  EXPECT_EQ(checkpoint.Committable(), std::nullopt);  // only when it moved
  EXPECT_EQ(checkpoint.outstanding(), 0u);
}

// Protects: a failed event holds the cursor before it and asks for a rewind; answers from before
// the rewind are ignored.
TEST(CheckpointTest, FailureBlocksAndAsksForRewind) {
  Checkpoint checkpoint(10);
  uint64_t a = *checkpoint.Track("1");
  uint64_t b = *checkpoint.Track("2");
  uint64_t c = *checkpoint.Track("3");
  checkpoint.Done(a, true);
  checkpoint.Done(b, false);
  checkpoint.Done(c, true);
  EXPECT_EQ(checkpoint.Committable(), "1");
  EXPECT_TRUE(checkpoint.NeedsRewind());
  checkpoint.Reset();
  EXPECT_FALSE(checkpoint.NeedsRewind());
  checkpoint.Done(c, true);  // stale
  EXPECT_EQ(checkpoint.Committable(), std::nullopt);
  uint64_t again = *checkpoint.Track("2");
  checkpoint.Done(again, true);
  EXPECT_EQ(checkpoint.Committable(), "2");
}

// Protects: the number of events waiting on Kafka is bounded.
TEST(CheckpointTest, Bounded) {
  Checkpoint checkpoint(2);
  ASSERT_TRUE(checkpoint.Track("1").ok());
  ASSERT_TRUE(checkpoint.Track("2").ok());
  EXPECT_EQ(checkpoint.Track("3").status().code(), absl::StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace leadflow::ingest
