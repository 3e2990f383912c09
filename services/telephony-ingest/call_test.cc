#include "telephony-ingest/call.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace leadflow::telephony {
namespace {

using std::chrono::seconds;

const Clock::time_point kT0 = Clock::time_point(seconds(1700000000));

CallUpdate Update(State state, std::string id = "c1") {
  CallUpdate update;
  update.provider = "generic";
  update.provider_call_id = std::move(id);
  update.state = state;
  update.direction = CallEvent::INBOUND;
  update.from = "+33612345678";
  update.to = "+33187654321";
  update.line = "sales";
  return update;
}

class CallAssemblerTest : public ::testing::Test {
 protected:
  std::optional<FinishedCall> Apply(const CallUpdate& update, Clock::time_point now = kT0) {
    auto result = assembler_.Apply(update, now);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? result->finished : std::nullopt;
  }
  CallAssembler::Options options_;
  CallAssembler assembler_{options_};
};

// Protects: ringing and answered publish nothing; the end publishes one event with the
// earlier states folded in (times, operator, duration, the states in order).
TEST_F(CallAssemblerTest, AnsweredCallFoldsEarlierStates) {
  CallUpdate ringing = Update(State::kRinging);
  ringing.started_at = kT0;
  EXPECT_FALSE(Apply(ringing));
  CallUpdate answered = Update(State::kAnswered);
  answered.answered_at = kT0 + seconds(12);
  answered.operator_name = "alice@example.fr";
  EXPECT_FALSE(Apply(answered));
  EXPECT_EQ(assembler_.open_calls(), 1u);
  CallUpdate ended = Update(State::kEnded);
  ended.ended_at = kT0 + seconds(72);
  ended.recording_url = "https://rec.example/c1.mp3";
  auto finished = Apply(ended);
  ASSERT_TRUE(finished);
  const CallEvent& call = finished->call;
  EXPECT_EQ(call.outcome(), CallEvent::ANSWERED);
  EXPECT_EQ(call.call_id(), "generic:c1");
  EXPECT_EQ(call.provider_call_id(), "c1");
  EXPECT_EQ(call.started_at().seconds(), 1700000000);
  EXPECT_EQ(call.answered_at().seconds(), 1700000012);
  EXPECT_EQ(call.ended_at().seconds(), 1700000072);
  EXPECT_EQ(call.duration_seconds(), 60);
  EXPECT_EQ(call.operator_name(), "alice@example.fr");
  EXPECT_EQ(call.recording_url(), "https://rec.example/c1.mp3");
  EXPECT_EQ(call.line(), "sales");
  EXPECT_EQ(call.attempts(), 1);
  EXPECT_FALSE(call.incomplete());
  ASSERT_EQ(call.states_size(), 3);
  EXPECT_EQ(call.states(0), "ringing");
  EXPECT_EQ(call.states(2), "ended");
  EXPECT_EQ(finished->occurred, kT0 + seconds(72));
  // Due (for another try) until Kafka took it.
  EXPECT_EQ(assembler_.open_calls(), 1u);
  assembler_.Published(*finished);
  EXPECT_EQ(assembler_.open_calls(), 0u);
}

// Protects: a call whose reports carry no times (a PBX posting each state as it happens, with
// its call id, direction, numbers and state only) is timed by their arrival: started at its first
// report, answered at its first answer report, ended at its final one, the talk time between
// the two — not an answered call of "0 s" without any time on the CRM's activity. A retried
// answer report moves nothing. A call whose reports give any time or a duration keeps the
// provider's alone: arrival times are never mixed with the PBX's clock.
TEST_F(CallAssemblerTest, UntimedReportsAreTimedByTheirArrival) {
  EXPECT_FALSE(Apply(Update(State::kRinging, "u1"), kT0));
  EXPECT_FALSE(Apply(Update(State::kAnswered, "u1"), kT0 + seconds(8)));
  EXPECT_FALSE(Apply(Update(State::kAnswered, "u1"), kT0 + seconds(30)));  // a retry
  auto answered = Apply(Update(State::kEnded, "u1"), kT0 + seconds(128));
  ASSERT_TRUE(answered);
  EXPECT_EQ(answered->call.outcome(), CallEvent::ANSWERED);
  EXPECT_EQ(answered->call.started_at().seconds(), 1700000000);
  EXPECT_EQ(answered->call.answered_at().seconds(), 1700000008);
  EXPECT_EQ(answered->call.ended_at().seconds(), 1700000128);
  EXPECT_EQ(answered->call.duration_seconds(), 120);
  EXPECT_EQ(answered->occurred, kT0 + seconds(128));

  CallUpdate missed = Update(State::kBusy, "u2");
  auto busy = Apply(missed, kT0 + seconds(50));
  ASSERT_TRUE(busy);
  EXPECT_EQ(busy->call.started_at().seconds(), 1700000050);
  EXPECT_EQ(busy->call.ended_at().seconds(), 1700000050);
  EXPECT_FALSE(busy->call.has_answered_at());

  // A talk time given, no time: the PBX's talk time, ended when its report came, answered that
  // many seconds before (no reading of two clocks is mixed).
  EXPECT_FALSE(Apply(Update(State::kRinging, "u3"), kT0));
  EXPECT_FALSE(Apply(Update(State::kAnswered, "u3"), kT0 + seconds(5)));
  CallUpdate ended = Update(State::kEnded, "u3");
  ended.duration_seconds = 30;
  auto talked = Apply(ended, kT0 + seconds(100));
  ASSERT_TRUE(talked);
  EXPECT_EQ(talked->call.duration_seconds(), 30);
  EXPECT_EQ(talked->call.started_at().seconds(), 1700000000);
  EXPECT_EQ(talked->call.answered_at().seconds(), 1700000070);
  EXPECT_EQ(talked->call.ended_at().seconds(), 1700000100);
  // Alone ("ended" and its duration, the form the README posts): started when answered.
  CallUpdate alone = Update(State::kEnded, "u4");
  alone.duration_seconds = 125;
  auto posted = Apply(alone, kT0 + seconds(200));
  ASSERT_TRUE(posted);
  EXPECT_EQ(posted->call.outcome(), CallEvent::ANSWERED);
  EXPECT_EQ(posted->call.started_at().seconds(), 1700000075);
  EXPECT_EQ(posted->call.answered_at().seconds(), 1700000075);
  EXPECT_EQ(posted->call.ended_at().seconds(), 1700000200);

  // A time given: the PBX's word alone.
  EXPECT_FALSE(Apply(Update(State::kRinging, "u5"), kT0));
  CallUpdate clocked = Update(State::kEnded, "u5");
  clocked.duration_seconds = 30;
  clocked.ended_at = kT0 + seconds(60);
  auto timed = Apply(clocked, kT0 + seconds(100));
  ASSERT_TRUE(timed);
  EXPECT_EQ(timed->call.duration_seconds(), 30);
  EXPECT_EQ(timed->call.answered_at().seconds(), 1700000030);
  EXPECT_EQ(timed->call.ended_at().seconds(), 1700000060);
  EXPECT_EQ(timed->call.started_at().seconds(), 1700000030);
}

// A generic report of one leg of a ring group: the extension it rang (uncertain, as
// ParseGenericEvent reads every report: an answer report may still overturn it).
CallUpdate Leg(State state, std::string id, std::string extension) {
  CallUpdate update = Update(state, std::move(id));
  update.to = std::move(extension);
  update.uncertain = true;
  return update;
}

// Protects: a ring group reported leg by leg under one call id: once a leg answered, another
// rung leg's "missed" (cancelled as 202 picks up) does not end the call; its "ended" does, with
// its talk time. Seen red: published at the "missed", 0 s. Still ending the call at once: a
// "missed" before the answer from a leg named by `to` only (the answer decides the call; the
// request parked on the "missed" gets that outcome; legs named by their extension:
// ALegsEndWhileAnotherRingsDoesNotEndTheCall), from the destination that answered, from the
// line's number the answer report names, or from a destination no "ringing" report named.
TEST_F(CallAssemblerTest, AnotherLegsMissedDoesNotEndAnAnsweredCall) {
  EXPECT_FALSE(Apply(Leg(State::kRinging, "rg", "201"), kT0));
  EXPECT_FALSE(Apply(Leg(State::kRinging, "rg", "202"), kT0));
  CallUpdate answered = Leg(State::kAnswered, "rg", "+33187654321");
  answered.extension = "202";
  EXPECT_FALSE(Apply(answered, kT0 + seconds(5)));
  EXPECT_FALSE(Apply(Leg(State::kMissed, "rg", "sip:201@pbx.local"), kT0 + seconds(5)));
  EXPECT_TRUE(assembler_.Expire(kT0 + seconds(60)).empty());
  CallUpdate ended = Leg(State::kEnded, "rg", "202");
  ended.duration_seconds = 95;
  auto call = Apply(ended, kT0 + seconds(100));
  ASSERT_TRUE(call);
  EXPECT_EQ(call->call.outcome(), CallEvent::ANSWERED);
  EXPECT_EQ(call->call.duration_seconds(), 95);
  EXPECT_EQ(call->call.extension(), "202");

  // The losing leg's "missed" first: the answer within the settle window decides the call.
  EXPECT_FALSE(Apply(Leg(State::kRinging, "rg2", "201"), kT0));
  EXPECT_FALSE(Apply(Leg(State::kMissed, "rg2", "201"), kT0));
  auto reversed = Apply(Leg(State::kAnswered, "rg2", "202"), kT0 + seconds(1));
  ASSERT_TRUE(reversed);
  EXPECT_EQ(reversed->call.outcome(), CallEvent::ANSWERED);

  // The leg that answered reports "missed": the call is over, answered.
  EXPECT_FALSE(Apply(Leg(State::kRinging, "rg3", "202"), kT0));
  EXPECT_FALSE(Apply(Leg(State::kAnswered, "rg3", "202"), kT0));
  auto same = Apply(Leg(State::kMissed, "rg3", "202"), kT0 + seconds(30));
  ASSERT_TRUE(same);
  EXPECT_EQ(same->call.outcome(), CallEvent::ANSWERED);
  // The line's number the answer report names: the call's own end.
  EXPECT_FALSE(Apply(Leg(State::kRinging, "rg4", "+33187654321"), kT0));
  CallUpdate by_202 = Leg(State::kAnswered, "rg4", "+33187654321");
  by_202.extension = "202";
  EXPECT_FALSE(Apply(by_202, kT0));
  auto line = Apply(Leg(State::kCanceled, "rg4", "+33187654321"), kT0 + seconds(30));
  ASSERT_TRUE(line);
  EXPECT_EQ(line->call.outcome(), CallEvent::ANSWERED);
  // A destination never rung (a blind transfer's target posted only by its end): the call's end.
  EXPECT_FALSE(Apply(Leg(State::kAnswered, "rg5", "201"), kT0));
  auto transfer = Apply(Leg(State::kMissed, "rg5", "203"), kT0 + seconds(30));
  ASSERT_TRUE(transfer);
  EXPECT_EQ(transfer->call.outcome(), CallEvent::ANSWERED);
}

// Protects: a ring group or a hunt reported leg by leg, each leg's reports naming its extension:
// one agent's unanswered end ("busy", "missed") while another agent's phone still rings does not
// end the call, and its report is not held for the call's outcome; the other agent's answer,
// seconds or a minute later, makes the call answered with its talk time, credited to that
// agent. A leg that never reports its end is waited for the ring window after the call's last
// report, then the ends reported stand. A call that rang several agents and that nobody took is
// credited to nobody (the line's queue assigns it); one that rang a single extension stays its.
// Seen red: published BUSY / MISSED at the first leg's end, the answer thrown away; the last
// leg credited with a missed call.
TEST_F(CallAssemblerTest, ALegsEndWhileAnotherRingsDoesNotEndTheCall) {
  auto leg = [](State state, const std::string& id, const std::string& extension) {
    CallUpdate update = Leg(state, id, extension);
    update.extension = extension;
    return update;
  };
  // Ring-all: 201 busy at once, 202 answers 30 s later and talks 95 s.
  EXPECT_FALSE(Apply(leg(State::kRinging, "all", "201"), kT0));
  EXPECT_FALSE(Apply(leg(State::kRinging, "all", "202"), kT0));
  auto busy = assembler_.Apply(leg(State::kBusy, "all", "201"), kT0 + seconds(1));
  ASSERT_TRUE(busy.ok());
  EXPECT_FALSE(busy->finished);
  EXPECT_FALSE(busy->settling);  // answered "pending", not held for the call's outcome
  EXPECT_TRUE(assembler_.Expire(kT0 + seconds(100)).empty());
  EXPECT_FALSE(Apply(leg(State::kAnswered, "all", "202"), kT0 + seconds(30)));
  EXPECT_TRUE(assembler_.Expire(kT0 + seconds(200)).empty());
  CallUpdate ended = leg(State::kEnded, "all", "202");
  ended.duration_seconds = 95;
  auto all = Apply(ended, kT0 + seconds(125));
  ASSERT_TRUE(all);
  EXPECT_EQ(all->call.outcome(), CallEvent::ANSWERED);
  EXPECT_EQ(all->call.duration_seconds(), 95);
  EXPECT_EQ(all->call.extension(), "202");

  // A hunt: 201 rings out ("missed", held for the settle window as the call's possible end),
  // then 202 rings and answers 4 s later.
  EXPECT_FALSE(Apply(leg(State::kRinging, "hunt", "201"), kT0));
  auto first = assembler_.Apply(leg(State::kMissed, "hunt", "201"), kT0 + seconds(20));
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(first->settling);
  EXPECT_FALSE(Apply(leg(State::kRinging, "hunt", "202"), kT0 + seconds(20)));
  EXPECT_TRUE(assembler_.Expire(kT0 + seconds(60)).empty());  // past the settle window
  EXPECT_FALSE(Apply(leg(State::kAnswered, "hunt", "202"), kT0 + seconds(24)));
  CallUpdate hunt_end = leg(State::kEnded, "hunt", "202");
  hunt_end.duration_seconds = 70;
  auto hunt = Apply(hunt_end, kT0 + seconds(95));
  ASSERT_TRUE(hunt);
  EXPECT_EQ(hunt->call.outcome(), CallEvent::ANSWERED);
  EXPECT_EQ(hunt->call.duration_seconds(), 70);
  EXPECT_EQ(hunt->call.extension(), "202");

  // A hunt over three agents: 201 and 202 ring out, 203 answers. Each leg's end is the call's
  // possible end only while no other leg rings; the window runs from the last of them.
  EXPECT_FALSE(Apply(leg(State::kRinging, "hunt3", "201"), kT0));
  EXPECT_FALSE(Apply(leg(State::kMissed, "hunt3", "201"), kT0 + seconds(20)));
  EXPECT_FALSE(Apply(leg(State::kRinging, "hunt3", "202"), kT0 + seconds(20)));
  EXPECT_FALSE(Apply(leg(State::kMissed, "hunt3", "202"), kT0 + seconds(40)));
  EXPECT_FALSE(Apply(leg(State::kRinging, "hunt3", "203"), kT0 + seconds(41)));
  EXPECT_TRUE(assembler_.Expire(kT0 + seconds(60)).empty());
  EXPECT_FALSE(Apply(leg(State::kAnswered, "hunt3", "203"), kT0 + seconds(45)));
  CallUpdate hunt3_end = leg(State::kEnded, "hunt3", "203");
  hunt3_end.duration_seconds = 50;
  auto hunt3 = Apply(hunt3_end, kT0 + seconds(95));
  ASSERT_TRUE(hunt3);
  EXPECT_EQ(hunt3->call.outcome(), CallEvent::ANSWERED);
  EXPECT_EQ(hunt3->call.extension(), "203");

  // Nobody answers and 202 never reports its end: the ring window after the last report, then
  // the busy leg's end stands; nobody credited.
  EXPECT_FALSE(Apply(leg(State::kRinging, "quiet", "201"), kT0));
  EXPECT_FALSE(Apply(leg(State::kRinging, "quiet", "202"), kT0));
  EXPECT_FALSE(Apply(leg(State::kBusy, "quiet", "201"), kT0 + seconds(1)));
  EXPECT_TRUE(assembler_.Expire(kT0 + seconds(120)).empty());
  auto quiet = assembler_.Expire(kT0 + seconds(122));
  ASSERT_EQ(quiet.size(), 1u);
  EXPECT_EQ(quiet[0].call.outcome(), CallEvent::BUSY);
  EXPECT_EQ(quiet[0].call.extension(), "");
  EXPECT_FALSE(quiet[0].call.incomplete());

  // The call's own end (from the line's number) after both legs rang: missed, credited to
  // nobody, though the ringing reports named 201 and 202 as extension and operator.
  CallUpdate ring_201 = leg(State::kRinging, "group", "201");
  ring_201.operator_name = "alice@example.fr";
  EXPECT_FALSE(Apply(ring_201, kT0));
  EXPECT_FALSE(Apply(leg(State::kRinging, "group", "202"), kT0));
  EXPECT_FALSE(Apply(Leg(State::kMissed, "group", "+33187654321"), kT0 + seconds(20)));
  auto group = assembler_.Expire(kT0 + seconds(40));
  ASSERT_EQ(group.size(), 1u);
  EXPECT_EQ(group[0].call.outcome(), CallEvent::MISSED);
  EXPECT_EQ(group[0].call.extension(), "");
  EXPECT_EQ(group[0].call.operator_name(), "");

  // Every leg's end reported: the call ends on them (after the settle window), nobody credited.
  EXPECT_FALSE(Apply(leg(State::kRinging, "both", "201"), kT0));
  EXPECT_FALSE(Apply(leg(State::kRinging, "both", "202"), kT0));
  EXPECT_FALSE(Apply(leg(State::kMissed, "both", "202"), kT0 + seconds(20)));
  EXPECT_FALSE(Apply(leg(State::kMissed, "both", "201"), kT0 + seconds(20)));
  auto both = assembler_.Expire(kT0 + seconds(40));
  ASSERT_EQ(both.size(), 1u);
  EXPECT_EQ(both[0].call.outcome(), CallEvent::MISSED);
  EXPECT_EQ(both[0].call.extension(), "");

  // A call holding as many reports as it may: a leg's end while another rings is not taken
  // (it would settle the call at once, past the cap).
  CallAssembler::Options capped;
  capped.max_updates_per_call = 3;
  CallAssembler small(capped);
  for (const char* extension : {"201", "202", "203"}) {
    ASSERT_TRUE(small.Apply(leg(State::kRinging, "cap", extension), kT0).ok());
  }
  auto refused = small.Apply(leg(State::kBusy, "cap", "201"), kT0 + seconds(1));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  CallUpdate cap_end = leg(State::kEnded, "cap", "202");
  cap_end.duration_seconds = 12;
  auto cap = small.Apply(cap_end, kT0 + seconds(30));
  ASSERT_TRUE(cap.ok());
  ASSERT_TRUE(cap->finished);
  EXPECT_EQ(cap->finished->call.outcome(), CallEvent::ANSWERED);

  // A single extension rung: its missed call is its own.
  EXPECT_FALSE(Apply(leg(State::kRinging, "direct", "201"), kT0));
  EXPECT_FALSE(Apply(leg(State::kMissed, "direct", "201"), kT0 + seconds(20)));
  auto direct = assembler_.Expire(kT0 + seconds(40));
  ASSERT_EQ(direct.size(), 1u);
  EXPECT_EQ(direct[0].call.outcome(), CallEvent::MISSED);
  EXPECT_EQ(direct[0].call.extension(), "201");
}

// Protects: "ended" without any sign of an answer is a missed call, and the missed/voicemail/
// busy/failed states map to their outcomes; an inbound caller who gave up (canceled) is missed.
TEST_F(CallAssemblerTest, FinalStatesGiveTheirOutcome) {
  EXPECT_EQ(Apply(Update(State::kEnded, "a"))->call.outcome(), CallEvent::MISSED);
  EXPECT_EQ(Apply(Update(State::kMissed, "b"))->call.outcome(), CallEvent::MISSED);
  EXPECT_EQ(Apply(Update(State::kVoicemail, "c"))->call.outcome(), CallEvent::VOICEMAIL);
  EXPECT_EQ(Apply(Update(State::kBusy, "d"))->call.outcome(), CallEvent::BUSY);
  EXPECT_EQ(Apply(Update(State::kFailed, "e"))->call.outcome(), CallEvent::FAILED);
  EXPECT_EQ(Apply(Update(State::kCanceled, "f"))->call.outcome(), CallEvent::MISSED);
  CallUpdate outbound = Update(State::kCanceled, "g");
  outbound.direction = CallEvent::OUTBOUND;
  EXPECT_EQ(Apply(outbound)->call.outcome(), CallEvent::CANCELED);
  CallUpdate with_duration = Update(State::kEnded, "h");
  with_duration.duration_seconds = 30;
  with_duration.ended_at = kT0 + seconds(100);
  auto answered = Apply(with_duration);
  EXPECT_EQ(answered->call.outcome(), CallEvent::ANSWERED);
  EXPECT_EQ(answered->call.answered_at().seconds(), 1700000070);
  // A missed call never reports talk time, even when the provider counted ringing.
  CallUpdate missed = Update(State::kMissed, "i");
  missed.duration_seconds = 25;
  EXPECT_EQ(Apply(missed)->call.duration_seconds(), 0);
}

// Protects: a provider retrying its final callback (or a late final report) gets the same
// event id and nothing new is opened; states arriving after the end change nothing.
TEST_F(CallAssemblerTest, RetriesGiveTheSameEventId) {
  EXPECT_FALSE(Apply(Update(State::kRinging)));
  auto first = assembler_.Apply(Update(State::kMissed), kT0);
  ASSERT_TRUE(first.ok() && first->finished);
  EXPECT_FALSE(first->repeated);
  auto again = assembler_.Apply(Update(State::kMissed), kT0 + seconds(30));
  ASSERT_TRUE(again.ok() && again->finished);
  EXPECT_TRUE(again->repeated);
  EXPECT_FALSE(again->published);  // its publication not confirmed: published again
  EXPECT_EQ(again->finished->event_id, first->finished->event_id);
  auto late = assembler_.Apply(Update(State::kAnswered), kT0 + seconds(31));
  ASSERT_TRUE(late.ok() && late->finished);
  EXPECT_TRUE(late->repeated);
  EXPECT_EQ(late->finished->call.outcome(), CallEvent::MISSED);
  assembler_.Published(*first->finished);
  EXPECT_EQ(assembler_.open_calls(), 0u);
  auto confirmed = assembler_.Apply(Update(State::kMissed), kT0 + seconds(40));
  ASSERT_TRUE(confirmed.ok() && confirmed->finished);
  EXPECT_TRUE(confirmed->repeated);
  EXPECT_TRUE(confirmed->published);  // Kafka has it: answered without a publication
  EXPECT_EQ(confirmed->finished->event_id, first->finished->event_id);
  // Another assembler (a restart, another replica) derives the same id from the final report.
  CallAssembler other(options_);
  auto elsewhere = other.Apply(Update(State::kMissed), kT0 + seconds(60));
  ASSERT_TRUE(elsewhere.ok() && elsewhere->finished);
  EXPECT_EQ(elsewhere->finished->event_id, first->finished->event_id);
  // Another call, or the same call settled otherwise, has another id.
  EXPECT_NE(other.Apply(Update(State::kMissed, "c2"), kT0)->finished->event_id,
            first->finished->event_id);
  EXPECT_NE(other.Apply(Update(State::kBusy, "c3"), kT0)->finished->event_id,
            other.Apply(Update(State::kMissed, "c3b"), kT0)->finished->event_id);
}

// Protects: the in-process store's Forget (a new call refused: too many open calls) and
// UnscheduleUnsettled (the ticker's, for a call with nothing to decide) leave a call settled
// meanwhile scheduled and unpublished (off the schedule it would be answered as
// published, its event maybe never acknowledged); a call not settled is forgotten whole.
TEST(MemoryCallStoreTest, ForgetLeavesASettledCallScheduled) {
  MemoryCallStore store(10, 10);
  ASSERT_TRUE(store.Append("generic:f1", "ringing", seconds(100), 8).ok());
  ASSERT_FALSE(store.Settle("generic:f1", "call-1", seconds(100)).value());
  ASSERT_TRUE(store.Schedule("generic:f1", kT0).ok());
  ASSERT_TRUE(store.Forget("generic:f1").ok());
  EXPECT_FALSE(store.UnscheduleUnsettled("generic:f1", 1).value());
  EXPECT_EQ(store.OpenCalls().value(), 1u);
  EXPECT_FALSE(store.Read("generic:f1")->published);
  ASSERT_TRUE(store.Unschedule("generic:f1").ok());
  EXPECT_TRUE(store.Read("generic:f1")->published);

  ASSERT_TRUE(store.Append("generic:f2", "ringing", seconds(100), 8).ok());
  ASSERT_TRUE(store.Schedule("generic:f2", kT0).ok());
  ASSERT_TRUE(store.Forget("generic:f2").ok());
  EXPECT_EQ(store.OpenCalls().value(), 0u);
  ASSERT_TRUE(store.Schedule("generic:f2", kT0).ok());
  EXPECT_TRUE(store.UnscheduleUnsettled("generic:f2", 0).value());
  EXPECT_EQ(store.OpenCalls().value(), 0u);
  EXPECT_TRUE(store.Read("generic:f2")->updates.empty());
  ASSERT_TRUE(store.Unschedule("generic:f2").ok());
  EXPECT_FALSE(store.Read("generic:f2")->published);  // nothing settled: nothing published
}

// Protects: ReadDue (the gauges telephony_open_calls and telephony_calls_overdue_seconds): the
// calls scheduled and the earliest due time among them.
TEST(MemoryCallStoreTest, ReadDue) {
  MemoryCallStore store(10, 10);
  auto none = store.ReadDue();
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->scheduled, 0u);
  EXPECT_FALSE(none->earliest);
  ASSERT_TRUE(store.Schedule("generic:d1", kT0 + seconds(10)).ok());
  ASSERT_TRUE(store.Schedule("generic:d2", kT0).ok());
  ASSERT_TRUE(store.Schedule("generic:d3", kT0 + seconds(5)).ok());
  auto three = store.ReadDue();
  EXPECT_EQ(three->scheduled, 3u);
  EXPECT_EQ(three->earliest, kT0);
  ASSERT_TRUE(store.Unschedule("generic:d2").ok());
  EXPECT_EQ(store.ReadDue()->earliest, kT0 + seconds(5));
}

// Protects: a schedule or unschedule decided over a call's first n reports is left undone when
// the call took a report since (whose own decision schedules it, maybe before this one lands:
// an open call's expiry must not push back the settle deadline set since, nor the ticker drop
// a call that just took a report) or was settled (due until its publication is confirmed).
TEST(MemoryCallStoreTest, SchedulesOnlyOverTheReportsItDecidedOn) {
  MemoryCallStore store(10, 10);
  ASSERT_TRUE(store.Append("generic:h1", "ringing", seconds(100), 8).ok());
  EXPECT_TRUE(store.ScheduleHeld("generic:h1", kT0, 1).value());
  EXPECT_EQ(store.TakeDue(kT0, seconds(1), 10).value(), std::vector<std::string>{"generic:h1"});
  // Another report since: replica B's open-call expiry, decided over one report, does not land
  // over the settle deadline that the second report's decision set.
  ASSERT_TRUE(store.Append("generic:h1", "missed", seconds(100), 8).ok());
  ASSERT_TRUE(store.Schedule("generic:h1", kT0 + seconds(10)).ok());
  EXPECT_FALSE(store.ScheduleHeld("generic:h1", kT0 + seconds(3600), 1).value());
  auto taken = store.TakeDue(kT0 + seconds(10), seconds(1), 10);
  EXPECT_EQ(taken.value(), std::vector<std::string>{"generic:h1"});  // still at its deadline
  // The ticker read one report: the call it unschedules holds two, so it stays.
  EXPECT_FALSE(store.UnscheduleUnsettled("generic:h1", 1).value());
  EXPECT_EQ(store.OpenCalls().value(), 1u);
  EXPECT_TRUE(store.UnscheduleUnsettled("generic:h1", 2).value());
  EXPECT_EQ(store.OpenCalls().value(), 0u);
  // Settled: a schedule over its reports is left undone, its lease stands.
  ASSERT_FALSE(store.Settle("generic:h1", "call-h1", seconds(100)).value());
  ASSERT_TRUE(store.Schedule("generic:h1", kT0 + seconds(30)).ok());
  EXPECT_FALSE(store.ScheduleHeld("generic:h1", kT0 + seconds(3600), 2).value());
  EXPECT_EQ(store.TakeDue(kT0 + seconds(30), seconds(1), 10).value(),
            std::vector<std::string>{"generic:h1"});
  // A recording since decides nothing: it does not hold the schedule back, nor keep the call.
  CallUpdate recording;
  recording.provider = "generic";
  recording.provider_call_id = "h2";
  recording.recording = true;
  recording.recording_url = "https://x.example/r.mp3";
  ASSERT_TRUE(store.Append("generic:h2", "ringing", seconds(100), 8).ok());
  ASSERT_TRUE(store.Append("generic:h2", SerializeUpdate(recording), seconds(100), 8).ok());
  const size_t others = store.OpenCalls().value();  // h1, settled and leased
  EXPECT_TRUE(store.ScheduleHeld("generic:h2", kT0, 1).value());
  EXPECT_EQ(store.OpenCalls().value(), others + 1);
  EXPECT_TRUE(store.UnscheduleUnsettled("generic:h2", 1).value());
  EXPECT_EQ(store.OpenCalls().value(), others);
  ASSERT_TRUE(store.Append("generic:h2", "answered", seconds(100), 8).ok());
  EXPECT_FALSE(store.ScheduleHeld("generic:h2", kT0, 1).value());
}

// Protects: the mark the stores read to tell a recording from a report (kStoredRecordingMark):
// in every kept form of a recording's update, and in no report's, whatever its values hold.
TEST(StoredUpdateTest, OnlyARecordingCarriesTheRecordingMark) {
  CallUpdate recording = Update(State::kRinging, "m1");
  recording.recording = true;
  recording.recording_url = "https://x.example/r.mp3";
  CallUpdate report = Update(State::kMissed, "m1");
  report.operator_name = "\"recd\":true";  // a value holding the mark's text
  report.recording_url = "https://x.example/?\"recd\":true";
  for (bool ascii : {true, false}) {
    if (!ascii) {
      recording.operator_name = "Zoé";  // past ASCII: the nlohmann form
      report.line = "Zoé";
    }
    EXPECT_TRUE((SerializeUpdate(recording).find(kStoredRecordingMark) != std::string::npos));
    EXPECT_TRUE((SerializeUpdateJson(recording).find(kStoredRecordingMark) != std::string::npos));
    EXPECT_FALSE((SerializeUpdate(report).find(kStoredRecordingMark) != std::string::npos))
        << SerializeUpdate(report);
    EXPECT_FALSE((SerializeUpdateJson(report).find(kStoredRecordingMark) != std::string::npos));
  }
}

// Protects: out-of-order and duplicated intermediate states fold the same way: the earliest
// start wins, a duplicated state is listed once, the first answer time is kept.
TEST_F(CallAssemblerTest, OrderAndDuplicatesOfIntermediateStates) {
  CallUpdate answered = Update(State::kAnswered);
  answered.answered_at = kT0 + seconds(10);
  answered.started_at = kT0 + seconds(5);
  CallUpdate ringing = Update(State::kRinging);
  ringing.started_at = kT0;
  EXPECT_FALSE(Apply(answered));
  EXPECT_FALSE(Apply(answered));
  EXPECT_FALSE(Apply(ringing));
  CallUpdate ended = Update(State::kEnded);
  ended.ended_at = kT0 + seconds(40);
  auto finished = Apply(ended);
  ASSERT_TRUE(finished);
  EXPECT_EQ(finished->call.outcome(), CallEvent::ANSWERED);
  EXPECT_EQ(finished->call.started_at().seconds(), 1700000000);
  EXPECT_EQ(finished->call.duration_seconds(), 30);
  ASSERT_EQ(finished->call.states_size(), 3);
  EXPECT_EQ(finished->call.states(0), "answered");
  EXPECT_EQ(finished->call.states(1), "ringing");
}

// Protects: a call whose final record never comes is published once it has been quiet for the
// open ttl, from what is known and marked incomplete; a call still active is kept.
TEST_F(CallAssemblerTest, MissingFinalRecordExpires) {
  options_.open_ttl = seconds(3600);
  CallAssembler assembler(options_);
  ASSERT_TRUE(assembler.Apply(Update(State::kRinging, "quiet"), kT0).ok());
  CallUpdate answered = Update(State::kAnswered, "talked");
  answered.answered_at = kT0;
  ASSERT_TRUE(assembler.Apply(answered, kT0).ok());
  ASSERT_TRUE(assembler.Apply(Update(State::kRinging, "recent"), kT0 + seconds(3000)).ok());
  EXPECT_TRUE(assembler.Expire(kT0 + seconds(3599)).empty());
  auto expired = assembler.Expire(kT0 + seconds(3600));
  ASSERT_EQ(expired.size(), 2u);
  std::map<std::string, CallEvent> by_id;
  for (const auto& finished : expired) {
    by_id[finished.call.provider_call_id()] = finished.call;
  }
  EXPECT_EQ(by_id["quiet"].outcome(), CallEvent::MISSED);
  EXPECT_TRUE(by_id["quiet"].incomplete());
  EXPECT_EQ(by_id["talked"].outcome(), CallEvent::ANSWERED);
  // Due again after the lease until Kafka took them.
  EXPECT_EQ(assembler.open_calls(), 3u);
  for (const auto& finished : expired) {
    assembler.Published(finished);
  }
  EXPECT_EQ(assembler.open_calls(), 1u);
  // The final record arriving after all gets the event already published.
  auto late = assembler.Apply(Update(State::kMissed, "quiet"), kT0 + seconds(3700));
  ASSERT_TRUE(late.ok() && late->finished);
  EXPECT_TRUE(late->repeated);
  EXPECT_TRUE(late->finished->call.incomplete());
}

// Protects: an open call's expiry runs from its last report, not its first (the memory store
// leaves the push to the assembler's own schedule): reported at 0 and 3,000 s, it is kept at
// 3,600 s and finished at 6,600 s.
TEST_F(CallAssemblerTest, LaterReportsPushTheExpiry) {
  options_.open_ttl = seconds(3600);
  CallAssembler assembler(options_);
  ASSERT_TRUE(assembler.Apply(Update(State::kRinging, "long"), kT0).ok());
  ASSERT_TRUE(assembler.Apply(Update(State::kRinging, "long"), kT0 + seconds(3000)).ok());
  EXPECT_TRUE(assembler.Expire(kT0 + seconds(3600)).empty());
  EXPECT_TRUE(assembler.Expire(kT0 + seconds(6599)).empty());
  EXPECT_EQ(assembler.Expire(kT0 + seconds(6600)).size(), 1u);
}

// The in-process store, with a hook run once between a decision and its schedule: another
// replica's report (or a recording) landing in between.
struct RacingStore : MemoryCallStore {
  using MemoryCallStore::MemoryCallStore;
  void ScheduleHeldAsync(const std::string& key, Clock::time_point due, size_t held,
                         StatusDone done) override {
    if (auto hook = std::exchange(before_schedule, nullptr)) {
      hook();
    }
    MemoryCallStore::ScheduleHeldAsync(key, due, held, std::move(done));
  }
  absl::StatusOr<bool> UnscheduleUnsettled(const std::string& key, size_t held) override {
    if (auto hook = std::exchange(before_unschedule, nullptr)) {
      hook();
    }
    return MemoryCallStore::UnscheduleUnsettled(key, held);
  }
  std::function<void()> before_schedule;
  std::function<void()> before_unschedule;  // between the ticker's read and its unscheduling
};

// Protects: two replicas' decisions on one call never leave the older one's schedule. Replica
// B's open-call expiry, decided over the call's first two reports, lands after replica A took a
// missed report and set the settle deadline: the call still settles at that deadline, not an
// hour later. Seen red with B's schedule unconditional.
TEST(CallAssemblerReplicasTest, AnOlderDecisionLeavesTheSettleDeadline) {
  RacingStore store(100, 100);
  CallAssembler::Options options;
  options.open_ttl = seconds(3600);
  CallAssembler a(options, &store);
  CallAssembler b(options, &store);
  ASSERT_TRUE(a.Apply(Update(State::kRinging, "r"), kT0).ok());
  CallUpdate uncertain_missed = Update(State::kMissed, "r");
  uncertain_missed.uncertain = true;  // an answer report may still overturn it (generic.cc)
  store.before_schedule = [&] {
    auto missed = a.Apply(uncertain_missed, kT0 + seconds(1));
    ASSERT_TRUE(missed.ok());
    EXPECT_TRUE(missed->settling);
  };
  ASSERT_TRUE(b.Apply(Update(State::kRinging, "r"), kT0 + seconds(1)).ok());
  EXPECT_FALSE(store.before_schedule);  // the other replica's report came in between
  auto due = a.Expire(kT0 + seconds(1) + options.settle_window);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].call.outcome(), CallEvent::MISSED);
}

// Twilio's asynchronous answering machine verdict: a CallSid and AnsweredBy, no Direction, no
// numbers. It says nothing of the call itself.
CallUpdate MachineVerdict(std::string id) {
  CallUpdate update;
  update.provider = "twilio";
  update.provider_call_id = std::move(id);
  update.state = State::kAnswered;
  update.machine = true;
  return update;
}

// Protects: telephony_ignored_total{reason="no_call_report"} counts the calls the ticker drops
// for having nothing but reports that say nothing of them (here a machine verdict), and only those:
// one that takes a call report from another replica between the ticker's read and its
// unscheduling stays scheduled for it, and is not counted. Seen red with the count taken
// whatever the unscheduling did.
TEST(CallAssemblerReplicasTest, ACallReportBeforeTheDropKeepsTheCallUncounted) {
  RacingStore store(100, 100);
  CallAssembler::Options options;
  options.open_ttl = seconds(3600);
  CallAssembler a(options, &store);
  CallAssembler b(options, &store);
  ASSERT_TRUE(a.Apply(MachineVerdict("n1"), kT0).ok());
  CallUpdate ringing = Update(State::kRinging, "n1");
  ringing.provider = "twilio";
  store.before_unschedule = [&] { ASSERT_TRUE(b.Apply(ringing, kT0 + seconds(3600)).ok()); };
  EXPECT_TRUE(a.Expire(kT0 + seconds(3600)).empty());
  EXPECT_FALSE(store.before_unschedule);  // the report came in between
  EXPECT_EQ(a.TakeDroppedWithoutCallReport(), 0u);
  EXPECT_EQ(a.open_calls(), 1u);  // kept, scheduled for the report it took

  ASSERT_TRUE(a.Apply(MachineVerdict("n2"), kT0).ok());
  EXPECT_TRUE(a.Expire(kT0 + seconds(3600)).empty());
  EXPECT_EQ(a.TakeDroppedWithoutCallReport(), 1u);  // n2, dropped
  EXPECT_EQ(a.TakeDroppedWithoutCallReport(), 0u);
  EXPECT_EQ(a.open_calls(), 1u);  // n1 still
}

// Protects: a recording between a settling report's decision and its schedule does not hold
// that schedule back (it decides and schedules nothing itself): the missed call still settles
// at its deadline, not at the open call's timeout. Seen red with recordings counted as reports.
TEST(CallAssemblerReplicasTest, ARecordingLeavesTheSettleDeadline) {
  RacingStore store(100, 100);
  CallAssembler::Options options;
  options.open_ttl = seconds(3600);
  CallAssembler a(options, &store);
  CallAssembler b(options, &store);
  ASSERT_TRUE(a.Apply(Update(State::kRinging, "v"), kT0).ok());
  store.before_schedule = [&] {
    EXPECT_TRUE(
        a.Recording("generic", "v", "RE1", "https://x.example/RE1.mp3", kT0 + seconds(1)).ok());
  };
  CallUpdate uncertain_missed = Update(State::kMissed, "v");
  uncertain_missed.uncertain = true;
  auto missed = b.Apply(uncertain_missed, kT0 + seconds(1));
  ASSERT_TRUE(missed.ok());
  EXPECT_TRUE(missed->settling);
  EXPECT_FALSE(store.before_schedule);
  auto due = a.Expire(kT0 + seconds(1) + options.settle_window);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].call.outcome(), CallEvent::MISSED);
  EXPECT_EQ(due[0].call.recording_url(), "https://x.example/RE1.mp3");
}

// Protects: the bounds. Past max_open_calls a new call's intermediate state is refused
// (the caller answers 503), while final states and open calls go on; finished calls are
// forgotten oldest first.
TEST_F(CallAssemblerTest, Bounded) {
  options_.max_open_calls = 2;
  options_.max_finished_calls = 2;
  CallAssembler assembler(options_);
  ASSERT_TRUE(assembler.Apply(Update(State::kRinging, "1"), kT0).ok());
  ASSERT_TRUE(assembler.Apply(Update(State::kRinging, "2"), kT0).ok());
  EXPECT_EQ(assembler.Apply(Update(State::kRinging, "3"), kT0).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(assembler.Apply(Update(State::kAnswered, "2"), kT0).ok());
  EXPECT_TRUE(assembler.Apply(Update(State::kMissed, "3"), kT0)->finished);
  EXPECT_TRUE(assembler.Apply(Update(State::kMissed, "4"), kT0)->finished);
  EXPECT_TRUE(assembler.Apply(Update(State::kMissed, "5"), kT0)->finished);
  EXPECT_FALSE(assembler.Apply(Update(State::kMissed, "3"), kT0)->repeated);
}

// IsAnonymousNumber as it read a lowercase copy of the number: the reference the in-place reading
// must agree with.
bool ReferenceIsAnonymousNumber(std::string_view number) {
  std::string text = absl::AsciiStrToLower(
      absl::StripAsciiWhitespace(absl::string_view(number.data(), number.size())));
  for (std::string_view scheme : {"sip:", "sips:", "tel:"}) {
    if (text.rfind(scheme, 0) == 0) {
      text.erase(0, scheme.size());
    }
  }
  if (size_t at = text.find('@'); at != std::string::npos) {
    text.erase(at);
  }
  static constexpr std::string_view kWithheld[] = {
      "",        "anonymous",   "restricted", "unknown",   "private",     "withheld",
      "blocked", "unavailable", "+266696687", "266696687", "+7378742833", "7378742833"};
  if (std::find(std::begin(kWithheld), std::end(kWithheld), text) != std::end(kWithheld)) {
    return true;
  }
  // Placeholders switches send for a number they do not pass on: only zeros ("0000000000"),
  // or a country code of at most 3 digits then only zeros ("+33000000000").
  std::string digits = text;
  if (!digits.empty() && digits.front() == '+') {
    digits.erase(0, 1);
  }
  if (digits.size() >= 4 &&
      std::all_of(digits.begin(), digits.end(), [](char c) { return absl::ascii_isdigit(c); })) {
    size_t first_zero = digits.find('0');
    if (first_zero != std::string::npos && first_zero <= 3 && digits.size() - first_zero >= 4 &&
        digits.find_first_not_of('0', first_zero) == std::string::npos) {
      return true;
    }
  }
  // A presentation word instead of a number ("CLIP_NO_SCREENING").
  return absl::StrContains(text, "clip_") || absl::StrContains(text, "presentation");
}

// Protects: IsAnonymousNumber, reading the number in place in any case, answers as it did over a
// lowercase copy: for every withheld word in mixed case, with schemes, domains, white space, a
// prefix or a suffix, the placeholders of zeros, and random texts of their characters.
TEST(BuildEventTest, AnonymousNumberAsTheLowercaseReading) {
  std::vector<std::string> numbers;
  for (const char* word : {"",
                           "anonymous",
                           "Restricted",
                           "UNKNOWN",
                           "pRiVaTe",
                           "withheld",
                           "Blocked",
                           "unavailable",
                           "+266696687",
                           "266696687",
                           "+7378742833",
                           "7378742833",
                           "CLIP_NO_SCREENING",
                           "no presentation",
                           "clip",
                           "0000",
                           "000",
                           "+33000000000",
                           "+3300000000",
                           "33000000000",
                           "1000",
                           "12340000",
                           "+0000",
                           "+33612345678",
                           "0612345678",
                           "2660000"}) {
    for (const char* prefix : {"", "sip:", "SIP:", "sips:", "Tel:", "sip:tel:", " ", "x"}) {
      for (const char* suffix : {"", "@anonymous.invalid", "@", " ", "\t", "x", ";ext=2"}) {
        numbers.push_back(std::string(prefix) + word + suffix);
      }
    }
  }
  const std::string alphabet = "aAcClLiIpPsSeEnNoOtT_:@+0 3\t9.\x80";
  std::mt19937 random(17);
  for (int i = 0; i < 20000; ++i) {
    std::string text;
    for (size_t n = random() % 16; n > 0; --n) {
      text.push_back(alphabet[random() % alphabet.size()]);
    }
    numbers.push_back(text);
  }
  for (const std::string& number : numbers) {
    ASSERT_EQ(IsAnonymousNumber(number), ReferenceIsAnonymousNumber(number)) << number;
  }
}

// Protects: withheld numbers stay what they are: flagged anonymous, no identity, never
// normalised into somebody's number; the Kafka key is then the call id.
TEST(BuildEventTest, AnonymousCallersHaveNoIdentity) {
  for (const char* number : {"anonymous", "+266696687", "", "unknown", "Restricted",
                             "sip:anonymous@anonymous.invalid", " private "}) {
    EXPECT_TRUE(IsAnonymousNumber(number)) << number;
    CallAssembler assembler({});
    CallUpdate update = Update(State::kMissed);
    update.from = number;
    auto finished = assembler.Apply(update, kT0)->finished;
    ASSERT_TRUE(finished);
    EXPECT_TRUE(finished->call.anonymous());
    EXPECT_EQ(finished->call.from_number(), number);
    auto built = BuildEvent(*finished, "FR", kT0, std::nullopt);
    EXPECT_EQ(built.event.identities_size(), 0) << number;
    EXPECT_EQ(built.key, "generic:c1");
  }
  EXPECT_FALSE(IsAnonymousNumber("+33612345678"));
  EXPECT_FALSE(IsAnonymousNumber("0612345678"));
}

// Protects: the event carries the counterpart's number as E.164 identity and Kafka key (the
// caller inbound, the callee outbound), the call payload and the event-type header "call".
TEST(BuildEventTest, CounterpartIsTheIdentity) {
  CallAssembler assembler({});
  CallUpdate inbound = Update(State::kMissed, "in");
  inbound.from = "06 12 34 56 78";
  auto built = BuildEvent(*assembler.Apply(inbound, kT0)->finished, "FR", kT0 + seconds(1),
                          "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  EXPECT_EQ(built.key, "+33612345678");
  ASSERT_EQ(built.event.identities_size(), 1);
  EXPECT_EQ(built.event.identities(0).value(), "+33612345678");
  EXPECT_EQ(built.event.call().from_number(), "06 12 34 56 78");
  EXPECT_EQ(built.event.source().service(), "telephony-ingest");
  EXPECT_EQ(built.event.source().provider(), "generic");
  EXPECT_EQ(built.event.source().reference(), "sales");
  EXPECT_EQ(built.event.received_at().seconds(), 1700000001);
  ASSERT_GE(built.headers.size(), 2u);
  EXPECT_EQ(built.headers[0].value, "call");
  EXPECT_EQ(built.headers[1].key, "traceparent");
  CallUpdate outbound = Update(State::kEnded, "out");
  outbound.direction = CallEvent::OUTBOUND;
  outbound.from = "201";
  outbound.to = "+44 20 7946 0958";
  auto out = BuildEvent(*assembler.Apply(outbound, kT0)->finished, "FR", kT0, std::nullopt);
  EXPECT_EQ(out.key, "+442079460958");
}

// Protects: a recording arriving after the call was settled is its own event (its own id,
// recording_only) carrying the call's known numbers and outcome.
TEST(RecordingTest, RecordingAfterTheCall) {
  CallAssembler assembler({});
  auto call = assembler.Apply(Update(State::kVoicemail), kT0)->finished;
  FinishedCall recording =
      *assembler.Recording("generic", "c1", "RE1", "https://rec.example/RE1", kT0 + seconds(5));
  EXPECT_TRUE(recording.call.recording_only());
  EXPECT_EQ(recording.call.outcome(), CallEvent::VOICEMAIL);
  EXPECT_EQ(recording.call.from_number(), "+33612345678");
  EXPECT_EQ(recording.call.recording_url(), "https://rec.example/RE1");
  EXPECT_NE(recording.event_id, call->event_id);
  EXPECT_EQ(recording.event_id,
            assembler.Recording("generic", "c1", "RE1", "https://rec.example/RE1", kT0)->event_id);
  FinishedCall unknown = *assembler.Recording("generic", "zz", "RE2", "https://x/RE2", kT0);
  EXPECT_EQ(unknown.call.call_id(), "generic:zz");
  EXPECT_EQ(unknown.call.outcome(), CallEvent::OUTCOME_UNSPECIFIED);
}

auto Fields(const CallUpdate& u) {
  return std::make_tuple(u.provider, u.provider_call_id, static_cast<int>(u.state),
                         static_cast<int>(u.direction), u.from, u.to, u.line, u.operator_name,
                         u.extension, u.recording_url, u.provider_status, u.transferred_to,
                         u.started_at, u.answered_at, u.ended_at, u.duration_seconds, u.attempts,
                         u.answered, u.counterpart_e164, u.dial_result, u.dial_leg, u.parent_over,
                         u.uncertain, u.awaits_dial, u.received, u.recording);
}

// Protects: the request path's decisions are taken over the update as a later report or
// replica reads it back from the store: AsStored gives what ParseUpdate(SerializeUpdate())
// gives, every field (times cut to the millisecond, text with invalid UTF-8 replaced), whether
// it takes the shortcut (ASCII text) or the round trip.
TEST(StoredUpdateTest, AsStoredIsTheRoundTrip) {
  CallUpdate update = Update(State::kEnded);
  update.operator_name = "ann@example.fr";
  update.extension = "201";
  update.recording_url = "https://rec.example/RE1";
  update.provider_status = "completed";
  update.transferred_to = "202";
  update.started_at = kT0 + std::chrono::nanoseconds(1234567891);
  update.answered_at = kT0 + std::chrono::microseconds(2000999);
  update.ended_at = kT0 + std::chrono::nanoseconds(42000000001);
  update.duration_seconds = 40;
  update.attempts = 2;
  update.answered = true;
  update.counterpart_e164 = "+33612345678";
  update.dial_result = true;
  update.dial_leg = "CA2";
  update.parent_over = true;
  update.uncertain = true;
  update.awaits_dial = true;
  update.received = kT0 + std::chrono::nanoseconds(43000500000);
  update.recording = true;
  for (const std::string& name : {std::string("Ann Martin"), std::string("Zo\xc3\xab"),
                                  std::string("bad \xff\xfe utf-8"), std::string("tab\tquote\"")}) {
    update.operator_name = name;
    const std::string serialized = SerializeUpdate(update);
    std::optional<CallUpdate> stored = AsStored(update, serialized);
    std::optional<CallUpdate> read = ParseUpdate(serialized);
    ASSERT_TRUE(stored && read) << name;
    EXPECT_EQ(Fields(*stored), Fields(*read)) << name;
  }
  update.started_at.reset();
  update.duration_seconds.reset();
  update.received.reset();
  const std::string serialized = SerializeUpdate(update);
  EXPECT_EQ(Fields(*AsStored(update, serialized)), Fields(*ParseUpdate(serialized)));
}

// Protects: two extensions are one PBX's only when both are plain or both are SIP URIs on the
// same host (any case, parameters and ports aside); a short user on another host is not ours.
TEST(ExtensionTest, ExtensionsOfOnePbx) {
  EXPECT_TRUE(ExtensionsOfOnePbx("201", "202", 5));
  EXPECT_TRUE(ExtensionsOfOnePbx("sip:201@pbx.local", "SIPS:202@PBX.local;transport=tls", 5));
  EXPECT_TRUE(ExtensionsOfOnePbx("sip:201@pbx.local:5060", "sip:202@pbx.local", 5));
  EXPECT_FALSE(ExtensionsOfOnePbx("sip:1234@customer.example", "sip:201@pbx.local", 5));
  EXPECT_FALSE(ExtensionsOfOnePbx("201", "sip:202@pbx.local", 5));
  EXPECT_FALSE(ExtensionsOfOnePbx("sip:201@pbx.local", "sip:+33612345678@pbx.local", 5));
  EXPECT_FALSE(ExtensionsOfOnePbx("123456", "201", 5));
  EXPECT_TRUE(FeatureCodeOfPbx("201", "*97", 5));
  EXPECT_TRUE(FeatureCodeOfPbx("sip:201@pbx.local", "sip:*97@pbx.local", 5));
  EXPECT_FALSE(FeatureCodeOfPbx("sip:201@pbx.local", "sip:*97@elsewhere.example", 5));
  EXPECT_FALSE(FeatureCodeOfPbx("+33612345678", "*97", 5));
  EXPECT_EQ(UriUserPart(" tel:+33612345678;ext=2 "), "+33612345678");
}

// Protects: a text written directly is nlohmann::json's dump of it byte for byte, every ASCII
// character alone, between others and in runs (the direct writer appends unescaped runs
// whole), and a text past ASCII is refused with nothing appended.
TEST(StoredUpdateTest, DirectTextIsTheJsonDump) {
  std::string every;
  for (int c = 0; c < 0x80; ++c) {
    every.push_back(static_cast<char>(c));
    for (const std::string& text :
         {std::string(1, static_cast<char>(c)), "ab" + std::string(1, static_cast<char>(c)) + "cd",
          std::string(3, static_cast<char>(c)) + "x"}) {
      std::string out = "{";
      ASSERT_TRUE(AppendAsciiJson(&out, text)) << c;
      EXPECT_EQ(out, "{" + nlohmann::json(text).dump()) << c;
    }
  }
  std::mt19937 random(11);
  for (int i = 0; i < 500; ++i) {
    std::string text;
    for (size_t n = random() % 40; n > 0; --n) {
      text.push_back(every[random() % every.size()]);
    }
    std::string out;
    ASSERT_TRUE(AppendAsciiJson(&out, text));
    ASSERT_EQ(out, nlohmann::json(text).dump());
  }
  std::string out = "kept";
  EXPECT_FALSE(AppendAsciiJson(&out, "Zo\xc3\xab"));
  EXPECT_FALSE(AppendAsciiJson(&out, "ab\x80"));
  EXPECT_FALSE(AppendAsciiJson(&out, "a\"b\x80"));  // after an escape was written
  EXPECT_EQ(out, "kept");
}

// Protects: the word-at-a-time check of AppendAsciiJson (eight bytes at once, the last eight or
// the first and last four overlapping, one by one below four) finds a character to escape or
// past ASCII wherever it stands: each byte value at each place of texts of 1 to 19 characters is
// escaped as nlohmann::json's dump does, or refused with nothing appended.
TEST(StoredUpdateTest, DirectTextFindsEveryByteAnywhere) {
  const std::string plain = "abcdefghij+33612345";
  for (size_t size = 1; size <= plain.size(); ++size) {
    for (size_t at = 0; at < size; ++at) {
      for (int c = 0; c < 0x100; ++c) {
        std::string text = plain.substr(0, size);
        text[at] = static_cast<char>(c);
        std::string out = "kept";
        if (c >= 0x80) {
          EXPECT_FALSE(AppendAsciiJson(&out, text)) << size << " " << at << " " << c;
          EXPECT_EQ(out, "kept");
        } else {
          ASSERT_TRUE(AppendAsciiJson(&out, text)) << size << " " << at << " " << c;
          EXPECT_EQ(out, "kept" + nlohmann::json(text).dump()) << size << " " << at << " " << c;
        }
      }
    }
  }
}

// Protects: the stored form of an update written directly (ASCII text) is nlohmann::json's own
// dump byte for byte — the same text the previous release stored and reads back, every field
// set or not, every escape (quotes, backslashes, control characters) — and text past ASCII
// still goes through nlohmann (UTF-8 checked, invalid bytes replaced).
TEST(StoredUpdateTest, DirectFormIsTheJsonDump) {
  std::mt19937 random(9);
  const std::vector<std::string> ascii_texts = {"", "+33612345678", "ann@example.fr",
                                                "tab\tquote\"back\\slash/", "\x01\x1f\x7f\b\f\n\r"};
  const std::vector<std::string> other_texts = {"Zo\xc3\xab", "bad \xff utf-8"};
  auto text = [&] {
    return random() % 40 == 0 ? other_texts[random() % other_texts.size()]
                              : ascii_texts[random() % ascii_texts.size()];
  };
  auto time = [&]() -> std::optional<Clock::time_point> {
    if (random() % 3 == 0) {
      return std::nullopt;
    }
    return kT0 + std::chrono::nanoseconds(random() % 100000000000);
  };
  int ascii = 0;
  for (int i = 0; i < 2000; ++i) {
    CallUpdate update;
    update.provider = text();
    update.provider_call_id = text();
    update.state = static_cast<State>(random() % (static_cast<int>(State::kCanceled) + 1));
    update.direction = static_cast<CallEvent::Direction>(random() % 3);
    update.from = text();
    update.to = text();
    update.line = text();
    update.operator_name = text();
    update.extension = text();
    update.recording_url = text();
    update.provider_status = text();
    update.transferred_to = text();
    update.started_at = time();
    update.answered_at = time();
    update.ended_at = time();
    if (random() % 2) {
      update.duration_seconds = static_cast<int32_t>(random() % 100000) - 10;
    }
    update.attempts = static_cast<int32_t>(random() % 7);
    update.answered = random() % 2;
    update.counterpart_e164 = text();
    update.dial_result = random() % 2;
    update.dial_leg = text();
    update.parent_over = random() % 2;
    update.uncertain = random() % 2;
    update.awaits_dial = random() % 2;
    update.received = time();
    update.recording = random() % 2;
    update.child_leg = random() % 2;
    update.machine = random() % 2;
    const std::string direct = SerializeUpdate(update);
    ASSERT_EQ(direct, SerializeUpdateJson(update));
    ASSERT_TRUE(ParseUpdate(direct));
    ascii += std::all_of(direct.begin(), direct.end(),
                         [](char c) { return static_cast<unsigned char>(c) < 0x80; });
  }
  // Both forms exercised: the direct one (every text ASCII) and nlohmann's.
  EXPECT_GT(ascii, 1000);
  EXPECT_LT(ascii, 2000);
}

// Protects: a settled call is stored as nlohmann::json's own dump byte for byte (the form the
// previous release stored and reads back), written directly or, for text past ASCII, through
// nlohmann; and it reads back as the same call.
TEST(StoredUpdateTest, DirectSettlementIsTheJsonDump) {
  FinishedCall finished;
  finished.call.set_call_id("generic:c1");
  finished.call.set_provider_call_id("c1");
  finished.call.set_from_number("+33612345678");
  finished.call.set_operator_name("Zo\xc3\xab");
  finished.call.set_outcome(CallEvent::ANSWERED);
  finished.occurred = kT0 + std::chrono::nanoseconds(1234567891);
  for (const std::string& e164 : {std::string("+33612345678"), std::string(""),
                                  std::string("q\"b\\\x01"), std::string("Zo\xc3\xab")}) {
    finished.counterpart_e164 = e164;
    finished.event_id = CallEventId("generic", "c1");
    const std::string direct = SerializeFinished(finished);
    EXPECT_EQ(direct, SerializeFinishedJson(finished)) << e164;
    std::optional<FinishedCall> read = ParseFinished(direct);
    ASSERT_TRUE(read) << e164;
    EXPECT_EQ(read->event_id, finished.event_id);
    EXPECT_EQ(read->counterpart_e164, e164);
    EXPECT_EQ(read->occurred, Clock::time_point(std::chrono::milliseconds(1700000001234)));
    EXPECT_EQ(read->call.SerializeAsString(), finished.call.SerializeAsString());
  }
}

}  // namespace
}  // namespace leadflow::telephony
