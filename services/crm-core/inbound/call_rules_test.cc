// The call rules (domain/call/call.h) as the planner applies them, over snapshots built by hand.
#include "crm-core/inbound/call_rules.h"

#include <gtest/gtest.h>

#include "crm-core/inbound/channels/channels.h"
#include "crm-core/inbound/planner.h"

namespace leadflow::crm {
namespace {

using domain::CallAction;
using domain::CallDirection;
using domain::CallOutcome;
using domain::EntityKind;
using events::v1::CallEvent;
using events::v1::Identity;
using events::v1::InboundEvent;

// A call event as telephony-ingest publishes it: the other party's number is the identity,
// none for a withheld number.
ContactAttempt Call(const std::string& id, const std::string& number, CallEvent::Outcome outcome,
                    CallEvent::Direction direction = CallEvent::INBOUND,
                    const std::string& line = "+33187654321") {
  InboundEvent event;
  event.set_event_id(id);
  CallEvent* call = event.mutable_call();
  call->set_call_id("generic:" + id);
  call->set_direction(direction);
  call->set_outcome(outcome);
  call->set_line(line);
  if (direction == CallEvent::OUTBOUND) {
    call->set_from_number(line);
    call->set_to_number(number);
  } else {
    call->set_from_number(number);
    call->set_to_number(line);
  }
  if (number.empty() || number == "anonymous") {
    call->set_anonymous(true);
  } else {
    Identity* identity = event.add_identities();
    identity->set_kind(Identity::PHONE);
    identity->set_value(number);
  }
  if (outcome == CallEvent::ANSWERED) {
    call->set_duration_seconds(42);
    call->set_extension("201");
  }
  return ToContactAttempt(event);
}

Snapshot WithCalls(CallContext calls) {
  Snapshot snapshot;
  snapshot.active_users = {1, 2, 7};
  snapshot.calls = std::move(calls);
  return snapshot;
}

// Protects: what each kind of call does, before any record is looked at: withheld numbers and
// outbound calls to strangers are only listed, never leads; an answered call, outbound or inbound,
// completes call-backs, a missed one never; a late recording only adds to its call.
TEST(CallRulesTest, DecideCallTable) {
  domain::CallSettings settings;
  domain::CallFacts call;
  call.from_number = "+33612345678";
  EXPECT_EQ(DecideCall(call, false, settings).action, CallAction::kCallBack);
  EXPECT_TRUE(DecideCall(call, false, settings).may_create_record);
  call.outcome = CallOutcome::kVoicemail;
  EXPECT_EQ(DecideCall(call, true, settings).action, CallAction::kCallBack);
  call.outcome = CallOutcome::kAnswered;
  EXPECT_EQ(DecideCall(call, false, settings).action, CallAction::kCompletedCall);
  EXPECT_TRUE(DecideCall(call, true, settings).completes_call_backs);
  call.anonymous = true;
  EXPECT_EQ(DecideCall(call, false, settings).action, CallAction::kUnidentified);
  call.anonymous = false;
  call.direction = CallDirection::kOutbound;
  call.to_number = "+33699999999";
  EXPECT_EQ(DecideCall(call, false, settings).action, CallAction::kUnidentified);
  EXPECT_EQ(DecideCall(call, true, settings).action, CallAction::kCompletedCall);
  EXPECT_TRUE(DecideCall(call, true, settings).completes_call_backs);
  EXPECT_FALSE(DecideCall(call, true, settings).may_create_record);
  settings.outbound_creates_lead = true;
  EXPECT_EQ(DecideCall(call, false, settings).action, CallAction::kCompletedCall);
  EXPECT_TRUE(DecideCall(call, false, settings).may_create_record);
  call.outcome = CallOutcome::kMissed;
  EXPECT_FALSE(DecideCall(call, true, settings).completes_call_backs);
  call.recording_only = true;
  EXPECT_EQ(DecideCall(call, true, settings).action, CallAction::kAddRecording);
}

// Protects: the call settings an admin gives are checked: the SLA within [1, 10080] minutes and
// lines well formed.
TEST(CallRulesTest, ValidatesSettings) {
  EXPECT_TRUE(domain::ValidateCallSettings(15, {{"+33187654321", "sales"}}).ok());
  EXPECT_FALSE(domain::ValidateCallSettings(0, {}).ok());
  EXPECT_FALSE(domain::ValidateCallSettings(10081, {}).ok());
  EXPECT_FALSE(domain::ValidateCallSettings(15, {{"line one", "sales"}}).ok());
  EXPECT_FALSE(domain::ValidateCallSettings(15, {{"", "sales"}}).ok());
  EXPECT_TRUE(domain::IsValidExtension("201"));
  EXPECT_FALSE(domain::IsValidExtension("2 01"));
  EXPECT_FALSE(domain::IsValidExtension(""));
}

// Protects: a missed call from an unknown number makes one lead titled with the number, and an
// open call-back due the SLA setting, rotated over the line's queue; a second missed call in the
// same batch goes on that lead (no second lead).
TEST(CallRulesTest, MissedUnknownMakesLeadAndCallBackOnTheLineQueue) {
  CallContext calls;
  calls.settings.call_back_sla = std::chrono::minutes(7);
  calls.settings.line_queues = {{"+33187654321", "sales-paris"}};
  Planner planner({}, WithCalls(calls));
  ContactAttempt first = Call("m1", "+33612345678", CallEvent::MISSED);
  ContactAttempt second = Call("m2", "+33612345678", CallEvent::VOICEMAIL);
  planner.Add(first);
  planner.Add(second);
  const Plan& plan = planner.plan();
  ASSERT_EQ(plan.leads.size(), 1u);
  EXPECT_EQ(plan.leads[0].title, "Missed call +33 6 12 34 56 78");
  EXPECT_EQ(plan.leads[0].source, "CALL");
  EXPECT_EQ(plan.leads[0].queue, "sales-paris");
  ASSERT_EQ(plan.activities.size(), 2u);
  for (const PlannedActivity& activity : plan.activities) {
    EXPECT_TRUE(activity.call_back);
    EXPECT_FALSE(activity.completed);
    EXPECT_EQ(activity.subject, "Call back");
    EXPECT_EQ(activity.deadline_after, std::chrono::minutes(7));
    EXPECT_EQ(activity.owner, EntityKind::kLead);
    EXPECT_EQ(activity.ref, NewRef(0));
  }
}

// Protects: an unknown line rotates over the CALL channel's queue setting.
TEST(CallRulesTest, UnknownLineUsesTheChannelQueue) {
  Snapshot snapshot = WithCalls({});
  snapshot.settings.channel_queues = {{"CALL", "phones"}};
  Planner planner({}, std::move(snapshot));
  ContactAttempt call = Call("m1", "+33612345678", CallEvent::MISSED, CallEvent::INBOUND, "other");
  planner.Add(call);
  ASSERT_EQ(planner.plan().leads.size(), 1u);
  EXPECT_EQ(planner.plan().leads[0].queue, "phones");
}

// Protects: an answered call from a known number makes no lead, even when the only record is a
// closed lead (the usual rules would make a returning lead): a completed CALL activity on it,
// the operator (a known extension) responsible.
TEST(CallRulesTest, AnsweredKnownMakesNoLeadAndTheOperatorIsResponsible) {
  CallContext calls;
  calls.operators.by_extension = {{"201", 7}};
  Snapshot snapshot = WithCalls(calls);
  snapshot.leads = {KnownLead{5, Semantics::kFailure, 1, {{"PHONE", "+33612345678"}}}};
  Planner planner({}, std::move(snapshot));
  ContactAttempt call = Call("a1", "+33612345678", CallEvent::ANSWERED);
  planner.Add(call);
  const Plan& plan = planner.plan();
  EXPECT_TRUE(plan.leads.empty());
  ASSERT_EQ(plan.activities.size(), 1u);
  EXPECT_EQ(plan.activities[0].owner, EntityKind::kLead);
  EXPECT_EQ(plan.activities[0].ref, 5);
  EXPECT_TRUE(plan.activities[0].completed);
  EXPECT_FALSE(plan.activities[0].call_back);
  EXPECT_EQ(plan.activities[0].responsible_user_id, 7);
}

// Protects: an answered call from an unknown number makes a lead whose responsible is the
// operator who took it.
TEST(CallRulesTest, AnsweredUnknownLeadGoesToTheOperator) {
  CallContext calls;
  calls.operators.by_extension = {{"201", 7}};
  Planner planner({}, WithCalls(calls));
  ContactAttempt call = Call("a1", "+33612345678", CallEvent::ANSWERED);
  planner.Add(call);
  ASSERT_EQ(planner.plan().leads.size(), 1u);
  EXPECT_EQ(planner.plan().leads[0].responsible_user_id, 7);
  EXPECT_TRUE(planner.plan().activities[0].completed);
}

// Protects: in simple mode a missed call from a contact with nothing open goes on the contact
// (no new deal); with an open deal, on the deal.
TEST(CallRulesTest, SimpleModeKnownContactNoNewDeal) {
  Snapshot snapshot = WithCalls({});
  snapshot.settings.mode = domain::CrmMode::kSimple;
  snapshot.settings.inbound_pipeline_id = 1;
  snapshot.settings.inbound_first_stage_id = "NEW";
  snapshot.contacts = {KnownParty{11, 2, {{"PHONE", "+33612345678"}}, {}},
                       KnownParty{12, 2, {{"PHONE", "+33699999999"}}, {{30, 2}}}};
  Planner planner({}, std::move(snapshot));
  ContactAttempt alone = Call("m1", "+33612345678", CallEvent::MISSED);
  ContactAttempt with_deal = Call("m2", "+33699999999", CallEvent::MISSED);
  planner.Add(alone);
  planner.Add(with_deal);
  const Plan& plan = planner.plan();
  EXPECT_TRUE(plan.deals.empty());
  EXPECT_TRUE(plan.contacts.empty());
  ASSERT_EQ(plan.activities.size(), 2u);
  EXPECT_EQ(plan.activities[0].owner, EntityKind::kContact);
  EXPECT_EQ(plan.activities[0].ref, 11);
  EXPECT_EQ(plan.activities[1].owner, EntityKind::kDeal);
  EXPECT_EQ(plan.activities[1].ref, 30);
  EXPECT_TRUE(plan.activities[1].call_back);
}

// Protects: withheld numbers go to the unidentified calls and nowhere else; so does an outbound
// call to a stranger; a late recording only adds its URL.
TEST(CallRulesTest, AnonymousAndStrangersAreListedNotLeads) {
  Planner planner({}, WithCalls({}));
  ContactAttempt anonymous = Call("x1", "anonymous", CallEvent::MISSED);
  ContactAttempt outbound = Call("x2", "+33611111111", CallEvent::ANSWERED, CallEvent::OUTBOUND);
  InboundEvent late;
  late.set_event_id("x3");
  late.add_identities()->set_value("+33611111111");
  late.mutable_identities(0)->set_kind(Identity::PHONE);
  late.mutable_call()->set_call_id("generic:x2");
  late.mutable_call()->set_recording_only(true);
  late.mutable_call()->set_recording_url("https://rec.example.com/x2.mp3");
  ContactAttempt recording = ToContactAttempt(late);
  planner.Add(anonymous);
  planner.Add(outbound);
  planner.Add(recording);
  const Plan& plan = planner.plan();
  EXPECT_TRUE(plan.leads.empty());
  EXPECT_TRUE(plan.activities.empty());
  ASSERT_EQ(plan.calls.unidentified.size(), 2u);
  EXPECT_EQ(plan.calls.unidentified[0].origin_event_id, "x1");
  EXPECT_EQ(plan.calls.unidentified[0].reason, domain::UnidentifiedReason::kWithheld);
  EXPECT_EQ(plan.calls.unidentified[1].origin_event_id, "x2");
  EXPECT_EQ(plan.calls.unidentified[1].reason, domain::UnidentifiedReason::kOutboundUnknownNumber);
  ASSERT_EQ(plan.calls.recordings.size(), 1u);
  EXPECT_EQ(
      plan.calls.recordings[0],
      std::make_pair(std::string("generic:x2"), std::string("https://rec.example.com/x2.mp3")));
}

// Protects: why a call is unidentified: the caller withheld their number (flagged, or no number
// at all), the other party is no phone number (no identity, not withheld: a SIP user), or an
// outbound call to a number nobody holds.
TEST(CallRulesTest, UnidentifiedReasons) {
  using domain::ReasonUnidentified;
  using domain::UnidentifiedReason;
  domain::CallFacts call;
  call.anonymous = true;
  call.withheld = true;
  call.from_number = "anonymous";
  EXPECT_EQ(ReasonUnidentified(call), UnidentifiedReason::kWithheld);
  call.withheld = false;
  call.from_number = "";
  EXPECT_EQ(ReasonUnidentified(call), UnidentifiedReason::kWithheld);
  call.from_number = "sip:alice@pbx.example.com";
  EXPECT_EQ(ReasonUnidentified(call), UnidentifiedReason::kNotAPhoneNumber);
  call.anonymous = false;
  call.direction = domain::CallDirection::kOutbound;
  call.to_number = "+33611111111";
  EXPECT_EQ(ReasonUnidentified(call), UnidentifiedReason::kOutboundUnknownNumber);
  for (UnidentifiedReason reason :
       {UnidentifiedReason::kWithheld, UnidentifiedReason::kNotAPhoneNumber,
        UnidentifiedReason::kOutboundUnknownNumber}) {
    EXPECT_EQ(domain::ParseUnidentifiedReason(domain::ToString(reason)), reason);
  }
  EXPECT_FALSE(domain::ParseUnidentifiedReason("ANONYMOUS").has_value());
}

// Protects: an answered outbound call to a known number is a completed activity on the record
// and completes the call-backs of the records it reached, their open deals included, placed
// after the activities planned before it, and names the identity it was matched on (not the
// number as dialled); an unanswered one completes nothing.
TEST(CallRulesTest, AnsweredOutboundCompletesCallBacks) {
  Snapshot snapshot = WithCalls({});
  snapshot.contacts = {KnownParty{11, 2, {{"PHONE", "+33612345678"}}, {{30, 2}}}};
  Planner planner({}, std::move(snapshot));
  ContactAttempt missed = Call("m1", "+33612345678", CallEvent::MISSED);
  ContactAttempt no_answer = Call("o1", "+33612345678", CallEvent::MISSED, CallEvent::OUTBOUND);
  ContactAttempt answered = Call("o2", "+33612345678", CallEvent::ANSWERED, CallEvent::OUTBOUND);
  answered.call->to_number = "0612345678";  // dialled as the PBX spells it
  planner.Add(missed);
  planner.Add(no_answer);
  planner.Add(answered);
  const Plan& plan = planner.plan();
  ASSERT_EQ(plan.activities.size(), 3u);
  EXPECT_TRUE(plan.activities[1].completed);
  EXPECT_FALSE(plan.activities[1].call_back);
  ASSERT_EQ(plan.calls.completions.size(), 1u);
  const CallPlan::Completion& completion = plan.calls.completions[0];
  EXPECT_EQ(completion.position, 2u);
  EXPECT_EQ(completion.event_id, "o2");
  EXPECT_EQ(completion.phone, "+33612345678");  // the identity, not the number as dialled
  std::set<std::pair<EntityKind, Ref>> owners(completion.owners.begin(), completion.owners.end());
  EXPECT_EQ(owners, (std::set<std::pair<EntityKind, Ref>>{{EntityKind::kContact, 11},
                                                          {EntityKind::kDeal, 30}}));
}

}  // namespace
}  // namespace leadflow::crm
