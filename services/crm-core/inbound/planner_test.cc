#include "crm-core/inbound/planner.h"

#include <gtest/gtest.h>

#include "crm-core/inbound/channels/channels.h"
#include "testing/testing.h"

namespace leadflow::crm {
namespace {

using events::v1::Identity;
using events::v1::InboundEvent;

InboundEvent WebForm(const std::string& id, const std::string& phone, const std::string& email,
                     const std::string& name = "Jean",
                     const std::string& message = "Need a quote") {
  return testing::WebFormEvent(id, phone, email, name, message);
}

// The planner reads contact attempts: the web-form channel's, as the consumer makes them.
ContactAttempt Attempt(const std::string& id, const std::string& phone, const std::string& email,
                       const std::string& name = "Jean",
                       const std::string& message = "Need a quote") {
  return ToContactAttempt(WebForm(id, phone, email, name, message));
}

KnownLead Known(int64_t id, Semantics semantics, int64_t responsible, std::set<IdentityKey> keys) {
  return KnownLead{id, semantics, responsible, std::move(keys)};
}

// Protects: a lead gains at most max_inbound_identities through inbound traffic; an event past
// the cap still joins the lead (a repeat and an activity) but attaches nothing, and is counted.
TEST(PlannerTest, InboundIdentitiesAreCapped) {
  RuleSettings settings;
  settings.max_inbound_identities = 3;
  Planner planner(settings, {Known(7, Semantics::kProcess, 1, {{"PHONE", "+33612345678"}})}, {1});
  std::vector<ContactAttempt> events;
  for (int i = 0; i < 5; ++i) {
    events.push_back(Attempt("e" + std::to_string(i), "+33612345678",
                             "visitor" + std::to_string(i) + "@example.com"));
  }
  for (const ContactAttempt& event : events) {
    planner.Add(event);
  }
  const Plan& plan = planner.plan();
  EXPECT_TRUE(plan.leads.empty());
  EXPECT_EQ(plan.identities.size(), 2u);  // 1 held + 2 added = the cap of 3
  EXPECT_EQ(plan.identities_capped, 3);
  EXPECT_EQ(plan.activities.size(), 5u);
  EXPECT_EQ(plan.repeat_increments.at(7), 5);
}

// Protects: nothing matches → one new lead with an open "process the request" task, titled from
// the template, responsible left to round-robin.
TEST(PlannerTest, NewSenderMakesLeadAndOpenTask) {
  Planner planner({}, {}, {1, 2});
  ContactAttempt event = Attempt("e1", "+33612345678", "jean@example.com");
  planner.Add(event);
  const Plan& plan = planner.plan();
  ASSERT_EQ(plan.leads.size(), 1u);
  EXPECT_EQ(plan.leads[0].title, "Lyon – Jean – Need a quote");
  EXPECT_EQ(plan.leads[0].source, "WEB_FORM");
  EXPECT_EQ(plan.leads[0].responsible_user_id, 0);
  EXPECT_FALSE(plan.leads[0].is_returning);
  EXPECT_EQ(plan.identities.size(), 2u);
  ASSERT_EQ(plan.activities.size(), 1u);
  EXPECT_EQ(plan.activities[0].type, "TASK");
  EXPECT_EQ(plan.activities[0].subject, "Process the request");
  EXPECT_FALSE(plan.activities[0].completed);
  EXPECT_EQ(plan.activities[0].origin_event_id, "e1");
  EXPECT_TRUE(IsNewLead(plan.activities[0].ref));
}

// Protects: an open lead matching by phone gets an activity and +1 repeat, no new lead; the
// event's new email is added to it so the next email-only contact matches too.
TEST(PlannerTest, OpenLeadMatchGetsActivityAndRepeat) {
  Planner planner({}, {Known(7, Semantics::kProcess, 2, {{"PHONE", "+33612345678"}})}, {1, 2});
  ContactAttempt event = Attempt("e2", "+33612345678", "jean@example.com");
  planner.Add(event);
  const Plan& plan = planner.plan();
  EXPECT_TRUE(plan.leads.empty());
  EXPECT_EQ(plan.repeat_increments.at(7), 1);
  ASSERT_EQ(plan.activities.size(), 1u);
  EXPECT_EQ(plan.activities[0].ref, 7);
  EXPECT_EQ(plan.activities[0].responsible_user_id, 2);
  ASSERT_EQ(plan.identities.size(), 1u);
  EXPECT_EQ(plan.identities[0].key.kind, "EMAIL");
  EXPECT_EQ(plan.identities[0].ref, 7);
}

// Protects: a person whose lead was closed as junk comes back as a new, returning lead linked to
// the old one, with the same responsible user when still active.
TEST(PlannerTest, JunkMatchMakesReturningLead) {
  Planner planner({}, {Known(3, Semantics::kFailure, 2, {{"EMAIL", "jean@example.com"}})}, {1, 2});
  ContactAttempt event = Attempt("e3", "", "jean@example.com");
  planner.Add(event);
  const Plan& plan = planner.plan();
  ASSERT_EQ(plan.leads.size(), 1u);
  EXPECT_TRUE(plan.leads[0].is_returning);
  EXPECT_EQ(plan.leads[0].previous_lead_id, 3);
  EXPECT_EQ(plan.leads[0].responsible_user_id, 2);
}

// Protects: a returning lead holds only the identities of the message that made it (a closed
// lead's others may be another person's: a lead merged by hand), and the person's next contact
// by another of the closed lead's identities still joins it, through its link to that lead,
// instead of making a second returning lead; that message's identity then joins the lead.
TEST(PlannerTest, ReturningLeadHoldsOnlyItsMessagesIdentities) {
  Planner planner(
      {}, {Known(3, Semantics::kFailure, 2, {{"EMAIL", "jean@example.com"}, {"PHONE", "+1"}})},
      {2});
  ContactAttempt by_phone = Attempt("e1", "+1", "");
  ContactAttempt by_email = Attempt("e2", "", "jean@example.com");
  planner.Add(by_phone);
  ASSERT_EQ(planner.plan().identities.size(), 1u);
  EXPECT_EQ(planner.plan().identities[0].key, (IdentityKey{"PHONE", "+1"}));
  planner.Add(by_email);
  const Plan& plan = planner.plan();
  ASSERT_EQ(plan.leads.size(), 1u);
  EXPECT_EQ(plan.leads[0].repeat_count, 1);
  ASSERT_EQ(plan.activities.size(), 2u);
  EXPECT_EQ(plan.activities[1].ref, NewLeadRef(0));
  ASSERT_EQ(plan.identities.size(), 2u);
  EXPECT_EQ(plan.identities[1].key, (IdentityKey{"EMAIL", "jean@example.com"}));
}

// Protects: an open returning lead already in the database, holding only the phone of the
// message that made it, is found through its links: by its contact's email, and by its earlier
// (junk) lead's email; a second returning lead is never made. Through a converted lead it is
// not: that lead's person is its contact, and a converted lead may hold another person's phone
// (merged by hand before the rule) whose traffic must reach that contact's open deal.
TEST(PlannerDomainTest, OpenReturningLeadFoundThroughItsLinks) {
  KnownLead of_contact = Known(20, Semantics::kProcess, 2, {{"PHONE", "+1"}});
  of_contact.contact_id = 4;
  KnownLead of_junk = Known(21, Semantics::kProcess, 2, {{"PHONE", "+2"}});
  of_junk.previous_lead_id = 3;
  KnownLead of_converted = Known(22, Semantics::kProcess, 2, {{"PHONE", "+5"}});
  of_converted.previous_lead_id = 13;
  Planner planner(
      {},
      Snapshot{.leads = {Known(3, Semantics::kFailure, 2, {{"PHONE", "+2"}, {"EMAIL", "j@x.co"}}),
                         Known(13, Semantics::kSuccess, 2, {{"PHONE", "+5"}, {"PHONE", "+6"}})},
               .linked_leads = {of_contact, of_junk, of_converted},
               .contacts = {KnownParty{4, 2, {{"PHONE", "+1"}, {"EMAIL", "a@b.co"}}, {}},
                            KnownParty{8, 2, {{"PHONE", "+6"}}, {{10, 2}}}},
               .active_users = {2}});
  ContactAttempt by_contact_email = Attempt("e1", "", "a@b.co");
  ContactAttempt by_junk_email = Attempt("e2", "", "j@x.co");
  ContactAttempt by_converted_phone = Attempt("e3", "+6", "");
  planner.Add(by_contact_email);
  planner.Add(by_junk_email);
  planner.Add(by_converted_phone);
  const Plan& plan = planner.plan();
  EXPECT_TRUE(plan.leads.empty());
  ASSERT_EQ(plan.activities.size(), 3u);
  EXPECT_EQ(plan.activities[0].owner, domain::EntityKind::kLead);
  EXPECT_EQ(plan.activities[0].ref, 20);
  EXPECT_EQ(plan.activities[1].owner, domain::EntityKind::kLead);
  EXPECT_EQ(plan.activities[1].ref, 21);
  EXPECT_EQ(plan.repeat_increments.at(20), 1);
  EXPECT_EQ(plan.repeat_increments.at(21), 1);
  EXPECT_EQ(plan.activities[2].owner, domain::EntityKind::kDeal);
  EXPECT_EQ(plan.activities[2].ref, 10);
}

// Protects: the previous responsible is not reused once deactivated (round-robin instead).
TEST(PlannerTest, InactivePreviousResponsibleFallsBackToRoundRobin) {
  Planner planner({}, {Known(3, Semantics::kSuccess, 9, {{"EMAIL", "a@b.co"}})}, {1, 2});
  ContactAttempt event = Attempt("e4", "", "a@b.co");
  planner.Add(event);
  EXPECT_EQ(planner.plan().leads[0].responsible_user_id, 0);
}

// Protects: an open lead wins over a closed one for the same person.
TEST(PlannerTest, OpenBeatsClosed) {
  Planner planner({},
                  {Known(3, Semantics::kFailure, 1, {{"PHONE", "+1"}}),
                   Known(5, Semantics::kProcess, 2, {{"EMAIL", "a@b.co"}})},
                  {1, 2});
  ContactAttempt event = Attempt("e5", "+1", "a@b.co");
  planner.Add(event);
  EXPECT_TRUE(planner.plan().leads.empty());
  EXPECT_EQ(planner.plan().activities[0].ref, 5);
}

// Protects: within one batch, the second event of a person joins the lead the first one created
// (one person, one lead), even when they share only one identity.
TEST(PlannerTest, SamePersonTwiceInOneBatchMakesOneLead) {
  Planner planner({}, {}, {1});
  ContactAttempt first = Attempt("e6", "+33612345678", "");
  ContactAttempt second = Attempt("e7", "+33612345678", "jean@example.com");
  ContactAttempt third = Attempt("e8", "", "jean@example.com");
  planner.Add(first);
  planner.Add(second);
  planner.Add(third);
  const Plan& plan = planner.plan();
  ASSERT_EQ(plan.leads.size(), 1u);
  EXPECT_EQ(plan.leads[0].repeat_count, 2);
  EXPECT_EQ(plan.activities.size(), 3u);
  EXPECT_EQ(plan.identities.size(), 2u);
}

// The planner over the whole domain: a snapshot with contacts, companies and settings.
InboundSettings Simple() {
  InboundSettings settings;
  settings.mode = domain::CrmMode::kSimple;
  settings.inbound_pipeline_id = 1;
  settings.inbound_first_stage_id = "NEW";
  settings.last_name_placeholder = "Inconnu";
  return settings;
}

KnownParty Party(int64_t id, int64_t responsible, std::set<IdentityKey> keys,
                 std::vector<std::pair<int64_t, int64_t>> open_deals = {}) {
  return KnownParty{id, responsible, std::move(keys), std::move(open_deals)};
}

// Protects (simple mode): nothing matches → one new contact (placeholder last name) and one deal
// in the inbound pipeline's first stage, round-robin over the pipeline's queue; the same person
// again in the batch, by another identity, goes on that deal; no lead at all.
TEST(PlannerDomainTest, SimpleModeNewContactAndDealThenTheDeal) {
  Planner planner({}, Snapshot{.active_users = {1}, .settings = Simple()});
  ContactAttempt first = Attempt("e1", "+33612345678", "jean@example.com", "Jean");
  ContactAttempt second = Attempt("e2", "", "jean@example.com");
  planner.Add(first);
  planner.Add(second);
  const Plan& plan = planner.plan();
  EXPECT_TRUE(plan.leads.empty());
  ASSERT_EQ(plan.contacts.size(), 1u);
  EXPECT_EQ(plan.contacts[0].first_name, "Jean");
  EXPECT_EQ(plan.contacts[0].last_name, "Inconnu");
  ASSERT_EQ(plan.deals.size(), 1u);
  EXPECT_EQ(plan.deals[0].stage_id, "NEW");
  EXPECT_EQ(plan.deals[0].contact, NewRef(0));
  EXPECT_EQ(plan.deals[0].queue, "pipeline:1");
  ASSERT_EQ(plan.activities.size(), 2u);
  EXPECT_EQ(plan.activities[1].owner, domain::EntityKind::kDeal);
  EXPECT_EQ(plan.activities[1].ref, NewRef(0));
  EXPECT_EQ(plan.identities.size(), 2u);  // both on the contact
  EXPECT_EQ(plan.identities[0].owner, domain::EntityKind::kContact);
}

// Protects: a single full name is split for the contact ("Jean-Pierre de la Tour").
TEST(PlannerDomainTest, SimpleModeSplitsAFullName) {
  Planner planner({}, Snapshot{.settings = Simple()});
  ContactAttempt attempt = Attempt("e1", "+33612345678", "", "Jean-Pierre de la Tour");
  planner.Add(attempt);
  ASSERT_EQ(planner.plan().contacts.size(), 1u);
  EXPECT_EQ(planner.plan().contacts[0].first_name, "Jean-Pierre");
  EXPECT_EQ(planner.plan().contacts[0].last_name, "de la Tour");
}

// Protects (E15): a person who gave no name becomes a contact known by how they reached us, with
// the placeholder last name — not the placeholder alone, which every such contact would share.
TEST(PlannerDomainTest, SimpleModeNamelessContactIsKnownByHowTheyReachedUs) {
  Planner planner({}, Snapshot{.settings = Simple()});
  ContactAttempt attempt = Attempt("e1", "+33612345678", "", "");
  attempt.unnamed_as = "+33 6 12 34 56 78";
  planner.Add(attempt);
  ASSERT_EQ(planner.plan().contacts.size(), 1u);
  EXPECT_EQ(planner.plan().contacts[0].first_name, "+33 6 12 34 56 78");
  EXPECT_EQ(planner.plan().contacts[0].last_name, "Inconnu");
}

// Protects: a contact with an open deal → the activity on its newest open deal with the deal's
// responsible, the event's new email joining the contact, in classic mode too.
TEST(PlannerDomainTest, ContactsOpenDealGetsTheActivity) {
  Planner planner({}, Snapshot{.contacts = {Party(4, 1, {{"PHONE", "+1"}}, {{8, 2}, {9, 2}})},
                               .active_users = {1, 2}});
  ContactAttempt attempt = Attempt("e1", "+1", "new@example.com");
  planner.Add(attempt);
  const Plan& plan = planner.plan();
  EXPECT_TRUE(plan.leads.empty());
  EXPECT_TRUE(plan.deals.empty());
  ASSERT_EQ(plan.activities.size(), 1u);
  EXPECT_EQ(plan.activities[0].owner, domain::EntityKind::kDeal);
  EXPECT_EQ(plan.activities[0].ref, 9);
  EXPECT_EQ(plan.activities[0].responsible_user_id, 2);
  ASSERT_EQ(plan.identities.size(), 1u);
  EXPECT_EQ(plan.identities[0].owner, domain::EntityKind::kContact);
  EXPECT_EQ(plan.identities[0].ref, 4);
}

// Protects (issue 7, A2): a message holding two contacts' identities goes on one contact's deal
// (the precedence), and the other contact's phone is not copied onto that contact; its new
// email, held by nobody, still joins it.
TEST(PlannerDomainTest, AnotherContactsIdentityIsNotCopied) {
  Planner planner({}, Snapshot{.contacts = {Party(4, 1, {{"PHONE", "+1"}}, {{8, 1}}),
                                            Party(5, 1, {{"PHONE", "+2"}}, {{9, 1}})},
                               .active_users = {1}});
  ContactAttempt attempt = Attempt("e1", "+1", "new@example.com");
  attempt.identities.push_back({"PHONE", "+2"});
  planner.Add(attempt);
  const Plan& plan = planner.plan();
  ASSERT_EQ(plan.activities.size(), 1u);
  EXPECT_EQ(plan.activities[0].owner, domain::EntityKind::kDeal);
  ASSERT_EQ(plan.identities.size(), 1u);
  EXPECT_EQ(plan.identities[0].key, (IdentityKey{"EMAIL", "new@example.com"}));
}

// Protects (one person, one record): an open lead the message goes to takes only the message's
// identities nobody else holds — not another open lead's email, not a contact's phone (that
// contact is the person, or another one) — and each one left out is counted; a closed lead's
// identity is the person's past and joins. Seen to fail with HeldElsewhere answering false.
TEST(PlannerDomainTest, OpenLeadTakesNoOtherRecordsIdentity) {
  Planner planner(
      {}, Snapshot{.leads = {Known(7, Semantics::kProcess, 1, {{"PHONE", "+1"}}),
                             Known(5, Semantics::kProcess, 1, {{"EMAIL", "other@example.com"}}),
                             Known(3, Semantics::kFailure, 1, {{"EMAIL", "old@example.com"}})},
                   .contacts = {Party(4, 1, {{"PHONE", "+2"}})},
                   .active_users = {1}});
  ContactAttempt attempt = Attempt("e1", "+1", "other@example.com");
  attempt.identities.push_back({"PHONE", "+2"});
  attempt.identities.push_back({"EMAIL", "old@example.com"});
  attempt.identities.push_back({"EMAIL", "new@example.com"});
  planner.Add(attempt);
  const Plan& plan = planner.plan();
  ASSERT_EQ(plan.activities.size(), 1u);
  EXPECT_EQ(plan.activities[0].owner, domain::EntityKind::kLead);
  EXPECT_EQ(plan.activities[0].ref, 7);
  std::set<IdentityKey> attached;
  for (const PlannedIdentity& identity : plan.identities) {
    EXPECT_EQ(identity.ref, 7);
    attached.insert(identity.key);
  }
  EXPECT_EQ(attached,
            (std::set<IdentityKey>{{"EMAIL", "old@example.com"}, {"EMAIL", "new@example.com"}}));
  EXPECT_EQ(plan.identities_held_elsewhere, 2);
}

// Protects (classic): a contact with nothing open → a returning lead linked to it, for its
// responsible, holding only the identity its message gave; the person's next contact by the
// contact's other identity joins the lead through that link.
TEST(PlannerDomainTest, ClassicReturningLeadLinkedToTheContact) {
  Planner planner({}, Snapshot{.contacts = {Party(4, 2, {{"PHONE", "+1"}, {"EMAIL", "a@b.co"}})},
                               .active_users = {1, 2}});
  ContactAttempt by_phone = Attempt("e1", "+1", "");
  ContactAttempt by_email = Attempt("e2", "", "a@b.co");
  planner.Add(by_phone);
  ASSERT_EQ(planner.plan().identities.size(), 1u);
  EXPECT_EQ(planner.plan().identities[0].key, (IdentityKey{"PHONE", "+1"}));
  planner.Add(by_email);
  const Plan& plan = planner.plan();
  ASSERT_EQ(plan.leads.size(), 1u);
  EXPECT_TRUE(plan.leads[0].is_returning);
  EXPECT_EQ(plan.leads[0].contact, 4);
  EXPECT_EQ(plan.leads[0].responsible_user_id, 2);
  EXPECT_EQ(plan.leads[0].repeat_count, 1);
  EXPECT_EQ(plan.identities.size(), 2u);  // the email, given by the second message
}

// Protects: a company with nothing open (its switchboard called) → a returning lead linked to
// the company, holding only the caller's identity: the company's other numbers stay its own.
TEST(PlannerDomainTest, CompanysIdentitiesDoNotMoveToTheLead) {
  Planner planner({}, Snapshot{.companies = {Party(6, 0, {{"PHONE", "+1"}, {"PHONE", "+2"}})},
                               .active_users = {1}});
  ContactAttempt attempt = Attempt("e1", "+1", "");
  planner.Add(attempt);
  const Plan& plan = planner.plan();
  ASSERT_EQ(plan.leads.size(), 1u);
  EXPECT_EQ(plan.leads[0].company_id, 6);
  EXPECT_EQ(plan.leads[0].contact, 0);
  ASSERT_EQ(plan.identities.size(), 1u);
  EXPECT_EQ(plan.identities[0].key.value, "+1");
}

// Protects: repeat rule off → only an activity on the contact; and the channel's queue named
// in crm_settings is the one new leads rotate over.
TEST(PlannerDomainTest, RepeatRuleOffAndChannelQueue) {
  InboundSettings settings;
  settings.repeat_rule = false;
  settings.channel_queues["WEB_FORM"] = "web-team";
  Planner planner({}, Snapshot{.contacts = {Party(4, 0, {{"PHONE", "+1"}})},
                               .active_users = {1},
                               .settings = settings});
  ContactAttempt known = Attempt("e1", "+1", "");
  ContactAttempt unknown = Attempt("e2", "+2", "");
  planner.Add(known);
  planner.Add(unknown);
  const Plan& plan = planner.plan();
  ASSERT_EQ(plan.activities.size(), 2u);
  EXPECT_EQ(plan.activities[0].owner, domain::EntityKind::kContact);
  EXPECT_EQ(plan.activities[0].ref, 4);
  ASSERT_EQ(plan.leads.size(), 1u);
  EXPECT_EQ(plan.leads[0].queue, "web-team");
}

// Protects: title fallbacks when the sender gave nothing the template names.
TEST(PlannerTest, TitleFallsBackToIdentity) {
  InboundEvent event = WebForm("e9", "", "anon@example.com", "", "");
  event.mutable_person()->clear_city();
  EXPECT_EQ(LeadTitle("{city} – {name} – {need}", ToContactAttempt(event)),
            "Web form request from anon@example.com");
}

// Protects: events crm-core cannot use are refused with a reason (they go to the DLQ).
TEST(PlannerTest, ValidateEvent) {
  EXPECT_EQ(ValidateEvent(WebForm("e", "+1", "")), "");
  EXPECT_NE(ValidateEvent(WebForm("", "+1", "")), "");
  EXPECT_NE(ValidateEvent(WebForm("e", "", "")), "");
  InboundEvent no_payload = WebForm("e", "+1", "");
  no_payload.clear_web_form();
  EXPECT_NE(ValidateEvent(no_payload), "");
  InboundEvent bad_kind = WebForm("e", "+1", "");
  bad_kind.mutable_identities(0)->set_kind(static_cast<Identity::Kind>(42));
  EXPECT_NE(ValidateEvent(bad_kind), "");
  InboundEvent long_id = WebForm(std::string(500, 'x'), "+1", "");
  EXPECT_NE(ValidateEvent(long_id), "");
  EXPECT_NE(ValidateEvent(WebForm(std::string("a\0b", 3), "+1", "")), "");
  EXPECT_NE(ValidateEvent(WebForm("a\nb", "+1", "")), "");
}

}  // namespace
}  // namespace leadflow::crm
