// The call store in a real Redis (the test command's, LEADFLOW_TEST_REDIS_*), each test under a
// key prefix of its own.

#include "telephony-ingest/redis_call_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>
#include <vector>

#include "testing/testing.h"

namespace leadflow::telephony {
namespace {

// RedisCallStore::AppendAsync (the request path's form: one step), waited for.
absl::StatusOr<CallStore::Snapshot> AppendWaited(RedisCallStore& store, const std::string& key,
                                                 const std::string& update,
                                                 std::optional<CallStore::FirstDecision> if_first) {
  std::promise<absl::StatusOr<CallStore::Snapshot>> promise;
  auto future = promise.get_future();
  store.AppendAsync(key, update, std::chrono::seconds(1000), 8, std::move(if_first),
                    [&promise](absl::StatusOr<CallStore::Snapshot> snapshot) {
                      promise.set_value(std::move(snapshot));
                    });
  return future.get();
}

// A raw key of the store's (under the test's prefix and the store's format).
std::string StoreKey(const redis::Options& options, const std::string& name) {
  return options.key_prefix + RedisCallStore::kFormat + name;
}

// A generic API report of an inbound call from a French mobile.
CallUpdate Report(const std::string& id, State state) {
  CallUpdate update;
  update.provider = "generic";
  update.provider_call_id = id;
  update.direction = CallEvent::INBOUND;
  update.from = "+33612345678";
  update.state = state;
  return update;
}

// Protects: a call's update list in Redis is bounded, in one step: appends stop at the cap
// (answered "not appended", the list stays at the cap), stop once the call is settled (a
// provider replaying its callbacks grows nothing), and the list's expiry is set when it is
// created, never pushed back by later appends.
TEST(RedisCallStoreTest, AppendIsBoundedAndStopsOnceSettled) {
  redis::Options options = testing::RedisTestOptions();
  RedisCallStore store(options);
  redis::Client raw(options);
  const std::string key = "generic:cap-1";
  const std::string list = StoreKey(options, "call:" + key + ":u");
  for (size_t i = 0; i < 4; ++i) {
    auto snapshot = store.Append(key, "update-" + std::to_string(i),
                                 std::chrono::seconds(i == 0 ? 1000 : 5000), 4);
    ASSERT_TRUE(snapshot.ok()) << snapshot.status();
    EXPECT_TRUE(snapshot->appended);
    EXPECT_EQ(snapshot->updates.size(), i + 1);
    EXPECT_FALSE(snapshot->settled);
  }
  auto ttl = raw.Run({"TTL", list});
  ASSERT_TRUE(ttl.ok());
  EXPECT_GT(ttl->integer, 0);
  EXPECT_LE(ttl->integer, 1000);
  for (int i = 0; i < 20; ++i) {
    auto full = store.Append(key, "replayed", std::chrono::seconds(5000), 4);
    ASSERT_TRUE(full.ok()) << full.status();
    EXPECT_FALSE(full->appended);
    EXPECT_EQ(full->updates.size(), 4u);
    EXPECT_EQ(full->updates.back(), "update-3");
  }
  EXPECT_EQ(raw.Run({"LLEN", list})->integer, 4);

  const std::string other = "generic:cap-2";
  const std::string other_list = StoreKey(options, "call:" + other + ":u");
  ASSERT_TRUE(store.Append(other, "ringing", std::chrono::seconds(1000), 4).ok());
  auto settled = store.Settle(other, "the-call", std::chrono::seconds(1000));
  ASSERT_TRUE(settled.ok());
  EXPECT_FALSE(settled->has_value());
  for (int i = 0; i < 10; ++i) {
    auto after = store.Append(other, "replayed", std::chrono::seconds(1000), 4);
    ASSERT_TRUE(after.ok()) << after.status();
    EXPECT_FALSE(after->appended);
    ASSERT_TRUE(after->settled.has_value());
    EXPECT_EQ(*after->settled, "the-call");
  }
  EXPECT_EQ(raw.Run({"LLEN", other_list})->integer, 1);
}

// Protects: the assembler over Redis at the cap: an intermediate report past it is refused
// (FailedPrecondition) and the list stays at the cap; a final report past it settles the call
// over the kept reports and itself (answered: talk time was kept), so it is not lost.
TEST(RedisCallStoreTest, AssemblerPastTheCap) {
  redis::Options options = testing::RedisTestOptions();
  RedisCallStore store(options);
  CallAssembler::Options calls;
  calls.max_updates_per_call = 3;
  CallAssembler assembler(calls, &store);
  const Clock::time_point now = Clock::time_point(std::chrono::seconds(1700000000));
  CallUpdate update = Report("cap-3", State::kRinging);
  ASSERT_TRUE(assembler.Apply(update, now).ok());
  update.state = State::kAnswered;
  update.answered_at = now;
  ASSERT_TRUE(assembler.Apply(update, now).ok());
  update.answered_at.reset();
  update.state = State::kRinging;
  ASSERT_TRUE(assembler.Apply(update, now).ok());
  for (int i = 0; i < 5; ++i) {
    auto refused = assembler.Apply(update, now);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  }
  redis::Client raw(options);
  auto lists = raw.Run({"KEYS", StoreKey(options, "call:*:u")});
  ASSERT_TRUE(lists.ok());
  ASSERT_EQ(lists->elements.size(), 1u);
  EXPECT_EQ(raw.Run({"LLEN", lists->elements[0].text})->integer, 3);
  update.state = State::kEnded;
  update.ended_at = now + std::chrono::seconds(30);
  auto ended = assembler.Apply(update, now + std::chrono::seconds(30));
  ASSERT_TRUE(ended.ok()) << ended.status();
  ASSERT_TRUE(ended->finished.has_value());
  EXPECT_FALSE(ended->repeated);
  EXPECT_EQ(ended->finished->call.outcome(), CallEvent::ANSWERED);
  EXPECT_EQ(ended->finished->call.duration_seconds(), 30);
}

// Protects: the bound on open calls over Redis: past max_open_calls a new call's intermediate
// report is refused in the append step itself, leaving nothing behind (no report kept, nothing
// scheduled: a refused call never comes due); calls already open go on, a final report of a
// new call is taken, and a call that ends frees its place.
TEST(RedisCallStoreTest, AssemblerPastTheOpenCallsBound) {
  redis::Options options = testing::RedisTestOptions();
  RedisCallStore store(options);
  CallAssembler::Options calls;
  calls.max_open_calls = 2;
  CallAssembler assembler(calls, &store);
  redis::Client raw(options);
  const Clock::time_point now = Clock::time_point(std::chrono::seconds(1700000000));
  ASSERT_TRUE(assembler.Apply(Report("open-1", State::kRinging), now).ok());
  ASSERT_TRUE(assembler.Apply(Report("open-2", State::kRinging), now).ok());
  for (int i = 0; i < 3; ++i) {
    auto refused = assembler.Apply(Report("open-3", State::kRinging), now);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  }
  EXPECT_EQ(raw.Run({"EXISTS", StoreKey(options, "call:generic:open-3:u")})->integer, 0);
  EXPECT_TRUE(raw.Run({"ZSCORE", StoreKey(options, "calls:due"), "generic:open-3"})->IsNil());
  EXPECT_EQ(store.OpenCalls().value(), 2u);
  EXPECT_TRUE(assembler.Apply(Report("open-2", State::kAnswered), now).ok());
  CallUpdate ended = Report("open-4", State::kEnded);
  ended.duration_seconds = 42;
  auto taken = assembler.Apply(ended, now);
  ASSERT_TRUE(taken.ok()) << taken.status();
  ASSERT_TRUE(taken->finished.has_value());
  assembler.Published(*taken->finished);
  CallUpdate missed = Report("open-1", State::kMissed);
  auto settled = assembler.Apply(missed, now + std::chrono::hours(1));
  ASSERT_TRUE(settled.ok()) << settled.status();
  ASSERT_TRUE(settled->finished.has_value());
  assembler.Published(*settled->finished);
  EXPECT_TRUE(assembler.Apply(Report("open-3", State::kRinging), now).ok());
}

// Protects: over Redis, an open call's expiry runs from its last report (pushed by the append
// step of each later report, or by the schedule after it): a call reported at 0 and 3,000 s is
// kept at 3,600 s and finished (incomplete) at 6,600 s, also when the step answers that it
// pushed it; a settling call still settles at its deadline after a later report. (That the
// step itself never moves a settle deadline is FirstOpenReportIsScheduledInTheSameStep's
// threshold check.)
TEST(RedisCallStoreTest, AssemblerPushesAnOpenCallsExpiry) {
  redis::Options options = testing::RedisTestOptions();
  RedisCallStore store(options);
  CallAssembler::Options calls;
  calls.open_ttl = std::chrono::seconds(3600);
  calls.settle_window = std::chrono::seconds(5);
  CallAssembler assembler(calls, &store);
  const Clock::time_point t0 = Clock::time_point(std::chrono::seconds(1700000000));
  CallUpdate update = Report("long-1", State::kRinging);
  ASSERT_TRUE(assembler.Apply(update, t0).ok());
  update.state = State::kAnswered;
  update.answered_at = t0 + std::chrono::seconds(3000);
  ASSERT_TRUE(assembler.Apply(update, t0 + std::chrono::seconds(3000)).ok());
  EXPECT_TRUE(assembler.Expire(t0 + std::chrono::seconds(3600)).empty());
  EXPECT_TRUE(assembler.Expire(t0 + std::chrono::seconds(6599)).empty());
  auto expired = assembler.Expire(t0 + std::chrono::seconds(6600));
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].call.outcome(), CallEvent::ANSWERED);
  EXPECT_TRUE(expired[0].call.incomplete());

  // Settling (an uncertain missed), then a later report: still due at the settle deadline.
  CallUpdate settling = update;
  settling.provider_call_id = "settling-1";
  settling.state = State::kRinging;
  settling.answered_at.reset();
  ASSERT_TRUE(assembler.Apply(settling, t0).ok());
  settling.state = State::kMissed;
  settling.uncertain = true;
  auto parked = assembler.Apply(settling, t0 + std::chrono::seconds(10));
  ASSERT_TRUE(parked.ok()) << parked.status();
  ASSERT_TRUE(parked->settling.has_value());
  settling.state = State::kRinging;
  settling.uncertain = false;
  ASSERT_TRUE(assembler.Apply(settling, t0 + std::chrono::seconds(11)).ok());
  auto settled = assembler.Expire(t0 + std::chrono::seconds(15));
  ASSERT_EQ(settled.size(), 1u);
  EXPECT_EQ(settled[0].call.provider_call_id(), "settling-1");
  EXPECT_EQ(settled[0].call.outcome(), CallEvent::MISSED);
}

// Protects: a call's first report that settles it on its own costs one step: the settlement
// recorded (instead of the report: nothing reads a settled call's reports) and the call
// scheduled until its publication is confirmed, together (decided); a second report of the
// call finds it settled and appends nothing; a report that is not the call's first never
// records the settlement it carries.
TEST(RedisCallStoreTest, FirstReportSettlesInOneStep) {
  redis::Options options = testing::RedisTestOptions();
  RedisCallStore store(options);
  redis::Client raw(options);
  const Clock::time_point due = Clock::time_point(std::chrono::seconds(1700000060));
  auto append = [&store](const std::string& key, const std::string& update,
                         std::optional<CallStore::FirstDecision> if_first) {
    return AppendWaited(store, key, update, std::move(if_first));
  };
  auto first = append("generic:one-1", "ended-42s", CallStore::FirstDecision{"call-1", due});
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->decided);
  EXPECT_TRUE(first->appended);
  EXPECT_EQ(raw.Run({"GET", StoreKey(options, "call:generic:one-1:s")})->text, "call-1");
  auto score = raw.Run({"ZSCORE", StoreKey(options, "calls:due"), "generic:one-1"});
  ASSERT_TRUE(score.ok());
  EXPECT_EQ(score->text, "1700000060000");
  auto again = append("generic:one-1", "ended-42s", CallStore::FirstDecision{"call-2", due});
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->decided);
  EXPECT_FALSE(again->appended);
  EXPECT_EQ(again->settled, "call-1");
  EXPECT_EQ(raw.Run({"EXISTS", StoreKey(options, "call:generic:one-1:u")})->integer, 0);
  // The first settlement stays, with its expiry (the step's SET … NX GET EX).
  EXPECT_EQ(raw.Run({"GET", StoreKey(options, "call:generic:one-1:s")})->text, "call-1");
  EXPECT_GT(raw.Run({"TTL", StoreKey(options, "call:generic:one-1:s")})->integer, 0);

  ASSERT_TRUE(append("generic:one-2", "ringing", std::nullopt).ok());
  auto second = append("generic:one-2", "ended", CallStore::FirstDecision{"call-3", due});
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(second->decided);
  EXPECT_TRUE(second->appended);
  EXPECT_EQ(second->updates.size(), 2u);
  // The call's first report left the open mark where the settlement goes: the deciding
  // report's SET … NX failed on it, and the report joined the kept one instead of settling the
  // call over itself alone.
  EXPECT_EQ(raw.Run({"GET", StoreKey(options, "call:generic:one-2:s")})->text, "open");
}

// Protects: the open mark (what a call's settlement key holds while the call keeps reports) is
// never read as a settlement, and nothing else mistakes it: the call's snapshot has no
// settlement, a settlement replaces it, Forget takes it with the reports, ScheduleHeld and
// UnscheduleUnsettled treat the call as open. And a settled call's retry through the deciding
// report's commands is answered like the append step's: not published while the call is
// scheduled (its schedule untouched), published once confirmed, leaving nothing scheduled.
TEST(RedisCallStoreTest, OpenMarkIsNeverASettlement) {
  redis::Options options = testing::RedisTestOptions();
  RedisCallStore store(options);
  redis::Client raw(options);
  const Clock::time_point due = Clock::time_point(std::chrono::seconds(1700000060));
  const Clock::time_point later = Clock::time_point(std::chrono::seconds(1700000900));
  auto append = [&store](const std::string& key, const std::string& update,
                         std::optional<CallStore::FirstDecision> if_first) {
    return AppendWaited(store, key, update, std::move(if_first));
  };
  auto score = [&](const std::string& member) {
    return raw.Run({"ZSCORE", StoreKey(options, "calls:due"), member});
  };

  ASSERT_TRUE(append("generic:mark-1", "ringing", CallStore::FirstDecision{.due = later}).ok());
  EXPECT_EQ(raw.Run({"GET", StoreKey(options, "call:generic:mark-1:s")})->text, "open");
  EXPECT_GT(raw.Run({"TTL", StoreKey(options, "call:generic:mark-1:s")})->integer, 0);
  auto read = store.Read("generic:mark-1");
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_FALSE(read->settled.has_value());
  EXPECT_FALSE(read->published);
  EXPECT_EQ(read->updates, std::vector<std::string>{"ringing"});
  auto later_report = append("generic:mark-1", "answered", std::nullopt);
  ASSERT_TRUE(later_report.ok()) << later_report.status();
  EXPECT_TRUE(later_report->appended);
  EXPECT_FALSE(later_report->settled.has_value());
  EXPECT_TRUE(store.ScheduleHeld("generic:mark-1", due, 2).value());
  EXPECT_EQ(score("generic:mark-1")->text, "1700000060000");
  EXPECT_TRUE(store.UnscheduleUnsettled("generic:mark-1", 2).value());
  EXPECT_TRUE(score("generic:mark-1")->IsNil());
  auto settled = store.Settle("generic:mark-1", "call-1", std::chrono::seconds(1000));
  ASSERT_TRUE(settled.ok()) << settled.status();
  EXPECT_FALSE(settled->has_value());
  EXPECT_EQ(raw.Run({"GET", StoreKey(options, "call:generic:mark-1:s")})->text, "call-1");
  auto again = store.Settle("generic:mark-1", "call-2", std::chrono::seconds(1000));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, "call-1");

  // Forget: the reports and the mark go together.
  ASSERT_TRUE(append("generic:mark-2", "ringing", CallStore::FirstDecision{.due = later}).ok());
  ASSERT_TRUE(store.Forget("generic:mark-2").ok());
  EXPECT_EQ(raw.Run({"EXISTS", StoreKey(options, "call:generic:mark-2:u"),
                     StoreKey(options, "call:generic:mark-2:s")})
                ->integer,
            0);
  EXPECT_TRUE(score("generic:mark-2")->IsNil());

  // A settled call's retries. Scheduled (its publication not confirmed): not published, and its
  // schedule stays where the settlement put it, not where the retry would have.
  auto first = append("generic:mark-3", "ended", CallStore::FirstDecision{"call-3", due});
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->decided);
  auto retry = append("generic:mark-3", "ended", CallStore::FirstDecision{"call-3b", later});
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_FALSE(retry->decided);
  EXPECT_FALSE(retry->appended);
  EXPECT_EQ(retry->settled, "call-3");
  EXPECT_FALSE(retry->published);
  EXPECT_EQ(score("generic:mark-3")->text, "1700000060000");
  // Confirmed: published, and the member its ZADD … NX put back is taken off again.
  ASSERT_TRUE(store.Unschedule("generic:mark-3").ok());
  auto confirmed = append("generic:mark-3", "ended", CallStore::FirstDecision{"call-3c", later});
  ASSERT_TRUE(confirmed.ok()) << confirmed.status();
  EXPECT_EQ(confirmed->settled, "call-3");
  EXPECT_TRUE(confirmed->published);
  EXPECT_TRUE(
      testing::WaitFor([&] { return score("generic:mark-3")->IsNil(); }, std::chrono::seconds(5)));
  EXPECT_EQ(raw.Run({"GET", StoreKey(options, "call:generic:mark-3:s")})->text, "call-3");

  // A call still scheduled after its reports and mark expired (an open call's expiry pushed
  // past them): its settlement moves it to the settlement's lease, as any settlement does.
  ASSERT_TRUE(
      raw.Run({"ZADD", StoreKey(options, "calls:due"), "1800000000000", "generic:mark-4"}).ok());
  auto stale = append("generic:mark-4", "ended", CallStore::FirstDecision{"call-4", due});
  ASSERT_TRUE(stale.ok()) << stale.status();
  EXPECT_TRUE(stale->decided);
  EXPECT_TRUE(testing::WaitFor([&] { return score("generic:mark-4")->text == "1700000060000"; },
                               std::chrono::seconds(5)));
}

// Protects: a call's first report that leaves it open (or settling) costs one step too: the
// report kept and the call scheduled at the given due time together, the open calls counted
// before it (what the bound on open calls reads); a later report appends and schedules
// nothing (its decision reads the whole list first), and neither does a report without a
// first decision.
TEST(RedisCallStoreTest, FirstOpenReportIsScheduledInTheSameStep) {
  redis::Options options = testing::RedisTestOptions();
  RedisCallStore store(options);
  redis::Client raw(options);
  const Clock::time_point expiry = Clock::time_point(std::chrono::seconds(1700003600));
  const Clock::time_point later = Clock::time_point(std::chrono::seconds(1700007200));
  auto append = [&store](const std::string& key, const std::string& update,
                         std::optional<CallStore::FirstDecision> if_first) {
    return AppendWaited(store, key, update, std::move(if_first));
  };
  auto score = [&](const std::string& member) {
    return raw.Run({"ZSCORE", StoreKey(options, "calls:due"), member});
  };
  auto first = append("generic:open-1", "ringing", CallStore::FirstDecision{.due = expiry});
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->scheduled);
  EXPECT_TRUE(first->appended);
  EXPECT_FALSE(first->decided);
  EXPECT_EQ(first->updates, std::vector<std::string>{"ringing"});
  EXPECT_EQ(first->open_calls, 0u);
  EXPECT_EQ(score("generic:open-1")->text, "1700003600000");
  EXPECT_EQ(raw.Run({"GET", StoreKey(options, "call:generic:open-1:s")})->text, "open");
  EXPECT_GT(raw.Run({"TTL", StoreKey(options, "call:generic:open-1:u")})->integer, 0);

  auto second = append("generic:open-1", "answered", CallStore::FirstDecision{.due = later});
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_FALSE(second->scheduled);
  EXPECT_TRUE(second->appended);
  EXPECT_EQ(second->updates, (std::vector<std::string>{"ringing", "answered"}));
  EXPECT_EQ(second->open_calls, 1u);
  EXPECT_EQ(score("generic:open-1")->text, "1700003600000");

  auto other = append("generic:open-2", "ringing", CallStore::FirstDecision{.due = later});
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_TRUE(other->scheduled);
  EXPECT_EQ(other->open_calls, 1u);

  auto recording = append("generic:open-3", "recording", std::nullopt);
  ASSERT_TRUE(recording.ok()) << recording.status();
  EXPECT_FALSE(recording->scheduled);
  EXPECT_TRUE(score("generic:open-3")->IsNil());
  auto synchronous = store.Append("generic:open-4", "ringing", std::chrono::seconds(1000), 8);
  ASSERT_TRUE(synchronous.ok()) << synchronous.status();
  EXPECT_FALSE(synchronous->scheduled);
  EXPECT_TRUE(score("generic:open-4")->IsNil());
  EXPECT_EQ(store.OpenCalls().value(), 2u);

  // A later report pushes an open call's expiry in the step, only when the call's score is
  // past the given threshold (an open call's expiry, never a settle deadline or a lease), and
  // never puts a call on the schedule.
  const Clock::time_point pushed = Clock::time_point(std::chrono::seconds(1700009000));
  auto kept = append(
      "generic:open-1", "answered",
      CallStore::FirstDecision{
          .due = later, .open_expiry = pushed, .open_above = expiry + std::chrono::seconds(1)});
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_FALSE(kept->refreshed);
  EXPECT_TRUE(kept->appended);
  EXPECT_EQ(score("generic:open-1")->text, "1700003600000");
  auto refreshed = append(
      "generic:open-1", "answered",
      CallStore::FirstDecision{
          .due = later, .open_expiry = pushed, .open_above = expiry - std::chrono::seconds(1)});
  ASSERT_TRUE(refreshed.ok()) << refreshed.status();
  EXPECT_TRUE(refreshed->refreshed);
  EXPECT_TRUE(refreshed->appended);
  EXPECT_FALSE(refreshed->scheduled);
  EXPECT_EQ(refreshed->updates.size(), 4u);
  EXPECT_EQ(score("generic:open-1")->text, "1700009000000");
  auto unscheduled =
      append("generic:open-3", "answered",
             CallStore::FirstDecision{
                 .due = later, .open_expiry = pushed, .open_above = Clock::time_point()});
  ASSERT_TRUE(unscheduled.ok()) << unscheduled.status();
  EXPECT_FALSE(unscheduled->refreshed);
  EXPECT_TRUE(score("generic:open-3")->IsNil());

  // Past the bound a first report is refused in the step: nothing kept, nothing scheduled.
  auto refused = append("generic:open-5", "ringing",
                        CallStore::FirstDecision{.due = later, .max_open_calls = 2});
  ASSERT_TRUE(refused.ok()) << refused.status();
  EXPECT_TRUE(refused->refused);
  EXPECT_FALSE(refused->appended);
  EXPECT_FALSE(refused->scheduled);
  EXPECT_TRUE(score("generic:open-5")->IsNil());
  EXPECT_EQ(raw.Run({"EXISTS", StoreKey(options, "call:generic:open-5:u")})->integer, 0);
  // A call already open is never refused by it.
  auto open = append("generic:open-1", "ended",
                     CallStore::FirstDecision{.due = later, .max_open_calls = 2});
  ASSERT_TRUE(open.ok()) << open.status();
  EXPECT_FALSE(open->refused);
  EXPECT_TRUE(open->appended);
}

// Protects: a settled call is answered "published" only once its publication was confirmed
// (Unschedule, after Kafka's acknowledgement): while it is scheduled (its first publication
// refused or still under way, or leased by the ticker) a retry is told to publish it again.
// Forget (a new call refused: too many open calls) never takes a settled call off the schedule,
// which would make it look published: its updates and schedule stay.
TEST(RedisCallStoreTest, SettledCallsArePublishedOnlyOnceConfirmed) {
  redis::Options options = testing::RedisTestOptions();
  RedisCallStore store(options);
  redis::Client raw(options);
  const Clock::time_point due = Clock::time_point(std::chrono::seconds(1700000060));
  auto append = [&store](const std::string& key, std::optional<CallStore::FirstDecision> if_first) {
    return AppendWaited(store, key, "ended-42s", std::move(if_first));
  };
  auto first = append("generic:pub-1", CallStore::FirstDecision{"call-1", due});
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(first->decided);
  EXPECT_FALSE(first->published);
  auto unconfirmed = append("generic:pub-1", CallStore::FirstDecision{"call-1", due});
  ASSERT_TRUE(unconfirmed.ok()) << unconfirmed.status();
  EXPECT_EQ(unconfirmed->settled, "call-1");
  EXPECT_FALSE(unconfirmed->published);
  // The ticker's lease keeps it scheduled (pushed ahead): still not published.
  ASSERT_TRUE(store.TakeDue(due, std::chrono::seconds(60), 10).ok());
  EXPECT_FALSE(append("generic:pub-1", std::nullopt)->published);
  ASSERT_TRUE(store.Unschedule("generic:pub-1").ok());
  auto confirmed = append("generic:pub-1", CallStore::FirstDecision{"call-1", due});
  ASSERT_TRUE(confirmed.ok()) << confirmed.status();
  EXPECT_EQ(confirmed->settled, "call-1");
  EXPECT_TRUE(confirmed->published);
  EXPECT_FALSE(confirmed->appended);
  EXPECT_TRUE(store.Read("generic:pub-1")->published);

  // Open (not settled), then off the schedule: no settlement, so never "published".
  ASSERT_TRUE(append("generic:pub-2", std::nullopt).ok());
  ASSERT_TRUE(store.Unschedule("generic:pub-2").ok());
  auto open = append("generic:pub-2", std::nullopt);
  ASSERT_TRUE(open.ok());
  EXPECT_FALSE(open->settled);
  EXPECT_FALSE(open->published);

  // Forget of a call another report settled meanwhile leaves it scheduled and unpublished.
  ASSERT_TRUE(append("generic:pub-3", std::nullopt).ok());
  ASSERT_FALSE(store.Settle("generic:pub-3", "call-3", std::chrono::seconds(1000)).value());
  ASSERT_TRUE(store.Schedule("generic:pub-3", due).ok());
  ASSERT_TRUE(store.Forget("generic:pub-3").ok());
  EXPECT_FALSE(raw.Run({"ZSCORE", StoreKey(options, "calls:due"), "generic:pub-3"})->IsNil());
  EXPECT_FALSE(append("generic:pub-3", std::nullopt)->published);
  EXPECT_FALSE(store.Read("generic:pub-3")->published);
  // A call not settled is forgotten whole.
  ASSERT_TRUE(append("generic:pub-4", std::nullopt).ok());
  ASSERT_TRUE(store.Schedule("generic:pub-4", due).ok());
  ASSERT_TRUE(store.Forget("generic:pub-4").ok());
  EXPECT_TRUE(raw.Run({"ZSCORE", StoreKey(options, "calls:due"), "generic:pub-4"})->IsNil());
  EXPECT_EQ(raw.Run({"EXISTS", StoreKey(options, "call:generic:pub-4:u")})->integer, 0);
  // The ticker's UnscheduleUnsettled (a due call with nothing to decide) likewise.
  EXPECT_FALSE(store.UnscheduleUnsettled("generic:pub-3", 1).value());
  EXPECT_FALSE(raw.Run({"ZSCORE", StoreKey(options, "calls:due"), "generic:pub-3"})->IsNil());
  ASSERT_TRUE(store.Schedule("generic:pub-5", due).ok());
  EXPECT_TRUE(store.UnscheduleUnsettled("generic:pub-5", 0).value());
  EXPECT_TRUE(raw.Run({"ZSCORE", StoreKey(options, "calls:due"), "generic:pub-5"})->IsNil());

  // ReadDue: the calls scheduled and the earliest due time (MemoryCallStoreTest.ReadDue).
  auto state = store.ReadDue();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->scheduled,
            static_cast<size_t>(raw.Run({"ZCARD", StoreKey(options, "calls:due")})->integer));
  EXPECT_EQ(state->earliest, due);  // pub-3, settled meanwhile and kept scheduled above
  ASSERT_TRUE(store.Schedule("generic:pub-7", due - std::chrono::seconds(30)).ok());
  auto more = store.ReadDue();
  EXPECT_EQ(more->scheduled, state->scheduled + 1);
  EXPECT_EQ(more->earliest, due - std::chrono::seconds(30));
  ASSERT_TRUE(store.Unschedule("generic:pub-7").ok());

  // Decided over the call's first n reports: left undone once it took another or was settled
  // (as MemoryCallStoreTest.SchedulesOnlyOverTheReportsItDecidedOn).
  auto score = [&](const std::string& key) {
    auto reply = raw.Run({"ZSCORE", StoreKey(options, "calls:due"), key});
    return reply->IsNil() ? std::string("none") : reply->text;
  };
  const std::string later = std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                               (due + std::chrono::hours(1)).time_since_epoch())
                                               .count());
  ASSERT_TRUE(append("generic:pub-6", std::nullopt).ok());
  EXPECT_TRUE(store.ScheduleHeld("generic:pub-6", due + std::chrono::hours(1), 1).value());
  EXPECT_EQ(score("generic:pub-6"), later);
  ASSERT_TRUE(append("generic:pub-6", std::nullopt).ok());
  ASSERT_TRUE(store.Schedule("generic:pub-6", due).ok());
  EXPECT_FALSE(store.ScheduleHeld("generic:pub-6", due + std::chrono::hours(1), 1).value());
  const std::string deadline = score("generic:pub-6");
  EXPECT_NE(deadline, later);
  EXPECT_FALSE(store.UnscheduleUnsettled("generic:pub-6", 1).value());
  EXPECT_EQ(score("generic:pub-6"), deadline);
  EXPECT_TRUE(store.UnscheduleUnsettled("generic:pub-6", 2).value());
  EXPECT_EQ(score("generic:pub-6"), "none");
  ASSERT_FALSE(store.Settle("generic:pub-6", "call-6", std::chrono::seconds(1000)).value());
  ASSERT_TRUE(store.Schedule("generic:pub-6", due).ok());
  EXPECT_FALSE(store.ScheduleHeld("generic:pub-6", due + std::chrono::hours(1), 2).value());
  EXPECT_EQ(score("generic:pub-6"), deadline);
  // A recording since decides nothing: it neither holds a schedule back nor keeps the call.
  CallUpdate recording;
  recording.provider = "generic";
  recording.provider_call_id = "pub-8";
  recording.recording = true;
  ASSERT_TRUE(append("generic:pub-8", std::nullopt).ok());
  ASSERT_TRUE(
      store.Append("generic:pub-8", SerializeUpdate(recording), std::chrono::seconds(1000), 8)
          .ok());
  EXPECT_TRUE(store.ScheduleHeld("generic:pub-8", due + std::chrono::hours(1), 1).value());
  EXPECT_EQ(score("generic:pub-8"), later);
  EXPECT_TRUE(store.UnscheduleUnsettled("generic:pub-8", 1).value());
  EXPECT_EQ(score("generic:pub-8"), "none");
  ASSERT_TRUE(append("generic:pub-8", std::nullopt).ok());  // a report after the recording
  EXPECT_FALSE(store.ScheduleHeld("generic:pub-8", due + std::chrono::hours(1), 1).value());
  EXPECT_EQ(score("generic:pub-8"), "none");
}

// Protects: the Lua steps run by EVALSHA still work when Redis has lost its scripts (a restart,
// SCRIPT FLUSH): NOSCRIPT is answered by sending the script whole, the report is not refused.
TEST(RedisCallStoreTest, LostScriptsAreSentAgain) {
  redis::Options options = testing::RedisTestOptions();
  RedisCallStore store(options);
  redis::Client raw(options);
  ASSERT_TRUE(store.Append("generic:flush-1", "ringing", std::chrono::seconds(100), 8).ok());
  ASSERT_TRUE(raw.Run({"SCRIPT", "FLUSH"}).ok());
  auto after = store.Append("generic:flush-1", "ended", std::chrono::seconds(100), 8);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->updates.size(), 2u);
  ASSERT_TRUE(raw.Run({"SCRIPT", "FLUSH"}).ok());
  auto taken = store.TakeDue(Clock::now(), std::chrono::seconds(60), 10);
  EXPECT_TRUE(taken.ok()) << taken.status();
}

// Protects: the confirmations of many publications at once (UnscheduleAsync from Kafka's
// delivery thread and others) are each answered and each take their call off the due set,
// gathered into shared ZREMs; with Redis gone they are answered Unavailable, none lost.
TEST(RedisCallStoreTest, UnschedulesFromManyThreadsAllLand) {
  redis::Options options = testing::RedisTestOptions();
  redis::Client raw(options);
  std::atomic<int> ok{0};
  {
    RedisCallStore store(options);
    for (int i = 0; i < 400; ++i) {
      ASSERT_TRUE(store.Schedule("generic:u-" + std::to_string(i), Clock::now()).ok());
    }
    ASSERT_EQ(*store.OpenCalls(), 400u);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (int i = t; i < 400; i += 4) {
          store.UnscheduleAsync("generic:u-" + std::to_string(i),
                                [&](absl::Status status) { ok += status.ok() ? 1 : 0; });
        }
      });
    }
    for (std::thread& thread : threads) {
      thread.join();
    }
    store.Shutdown();  // every submitted step answered
    EXPECT_EQ(ok.load(), 400);
  }
  EXPECT_EQ(raw.Run({"ZCARD", StoreKey(options, "calls:due")})->integer, 0);

  redis::Options gone;
  gone.port = testing::FreePort();
  gone.timeout = std::chrono::milliseconds(100);
  std::atomic<int> unavailable{0};
  {
    RedisCallStore store(gone);
    for (int i = 0; i < 50; ++i) {
      store.UnscheduleAsync("generic:g-" + std::to_string(i), [&](absl::Status status) {
        unavailable += status.code() == absl::StatusCode::kUnavailable ? 1 : 0;
      });
    }
  }
  EXPECT_EQ(unavailable.load(), 50);
}

// Protects: the late recordings of a settled call are counted in Redis in one step, over every
// replica: admitted up to the cap, a recording admitted before answered "repeated" without
// taking a slot (also past the cap), capped past it; the count is per call and expires with
// the call's settlement (its remaining time, the given ttl without one). Against the in-process
// store too, which behaves the same.
TEST(RedisCallStoreTest, LateRecordingsAreCappedPerCall) {
  redis::Options options = testing::RedisTestOptions();
  RedisCallStore redis_store(options);
  MemoryCallStore memory_store(10, 10);
  redis::Client raw(options);
  for (CallStore* store : std::vector<CallStore*>{&redis_store, &memory_store}) {
    const bool redis = store == &redis_store;
    SCOPED_TRACE(redis ? "redis" : "memory");
    ASSERT_TRUE(store->Settle("generic:late-1", "settled", std::chrono::seconds(500)).ok());
    ASSERT_TRUE(store->Settle("generic:late-2", "settled", std::chrono::seconds(500)).ok());
    using Late = CallStore::LateRecording;
    auto admit = [store](const std::string& key, const std::string& recording) {
      std::promise<absl::StatusOr<Late>> promise;
      auto future = promise.get_future();
      store->AdmitLateRecordingAsync(
          key, recording, 3, std::chrono::seconds(100),
          [&promise](absl::StatusOr<Late> admitted) { promise.set_value(std::move(admitted)); });
      auto admitted = future.get();
      EXPECT_TRUE(admitted.ok()) << admitted.status();
      return admitted.value_or(Late::kCapped);
    };
    EXPECT_EQ(admit("generic:late-1", "call:r1"), Late::kAdmitted);
    EXPECT_EQ(admit("generic:late-1", "call:r1"), Late::kRepeated);
    EXPECT_EQ(admit("generic:late-1", "call:r2"), Late::kAdmitted);
    EXPECT_EQ(admit("generic:late-1", "call:r3"), Late::kAdmitted);
    EXPECT_EQ(admit("generic:late-1", "call:r4"), Late::kCapped);
    EXPECT_EQ(admit("generic:late-1", "call:r2"), Late::kRepeated);
    EXPECT_EQ(*store->AdmitLateRecording("generic:late-1", "call:r5", 3, std::chrono::seconds(100)),
              Late::kCapped);
    EXPECT_EQ(admit("generic:late-2", "call:r4"), Late::kAdmitted);
    if (redis) {
      const std::string set = StoreKey(options, "call:generic:late-1:r");
      EXPECT_EQ(raw.Run({"SCARD", set})->integer, 3);
      auto left = raw.Run({"TTL", set});
      ASSERT_TRUE(left.ok());
      EXPECT_GT(left->integer, 400);  // the settlement's, not the given 100 s
      EXPECT_LE(left->integer, 500);
      EXPECT_EQ(*store->AdmitLateRecording("generic:gone", "call:r1", 3, std::chrono::seconds(100)),
                Late::kAdmitted);
      left = raw.Run({"TTL", StoreKey(options, "call:generic:gone:r")});
      ASSERT_TRUE(left.ok());
      EXPECT_GT(left->integer, 0);
      EXPECT_LE(left->integer, 100);
    }
  }
}

}  // namespace
}  // namespace leadflow::telephony
