// Protects: one person, one record across leads, contacts and companies — the inbound decision
// follows the documented precedence (open lead, contact's open deal, company's open deal,
// returning customer, nothing) in classic and simple mode, with and without the repeat rule, and
// the work goes to whoever had this client before, else to the right round-robin queue.

#include "crm-core/domain/matching/matching.h"

#include <gtest/gtest.h>

namespace leadflow::crm::domain {
namespace {

MatchInput Base(CrmMode mode = CrmMode::kClassic) {
  MatchInput input;
  input.mode = mode;
  input.channel = "EMAIL";
  input.inbound_pipeline_id = 1;
  input.inbound_first_stage_id = "NEW";
  return input;
}

TEST(Decide, NothingMatchesClassicMakesALead) {
  MatchDecision d = Decide(Base());
  EXPECT_EQ(d.action, MatchAction::kNewLead);
  EXPECT_EQ(d.target, std::nullopt);
  EXPECT_EQ(d.responsible, (Responsible{0, "channel:EMAIL"}));
}

TEST(Decide, ChannelQueueFromSettings) {
  MatchInput input = Base();
  input.channel_queue = "sales-fr";
  EXPECT_EQ(Decide(input).responsible, (Responsible{0, "sales-fr"}));
}

TEST(Decide, NothingMatchesSimpleMakesAContactAndDeal) {
  MatchDecision d = Decide(Base(CrmMode::kSimple));
  EXPECT_EQ(d.action, MatchAction::kNewContactAndDeal);
  EXPECT_EQ(d.deal_pipeline_id, 1);
  EXPECT_EQ(d.deal_stage_id, "NEW");
  EXPECT_EQ(d.responsible, (Responsible{0, "pipeline:1"}));
}

TEST(Decide, OpenLeadWinsOverEverything) {
  MatchInput input = Base();
  input.leads = {
      {7, Semantics::kFailure, 3}, {9, Semantics::kProcess, 4}, {5, Semantics::kProcess, 0}};
  input.contacts = {{20, 6, {{100, 6}}}};
  MatchDecision d = Decide(input);
  EXPECT_EQ(d.action, MatchAction::kActivityOnLead);
  // The newest open lead: the one the person's latest traffic made (the consumer's behaviour
  // since leads exist; tests/integration NewestOpenLeadAmongSeveral).
  EXPECT_EQ(d.target, (EntityRef{EntityKind::kLead, 9}));
  EXPECT_TRUE(d.increment_repeat);
  EXPECT_EQ(d.responsible, (Responsible{4, ""}));
  input.leads[1].responsible_user_id = 0;  // lead 9 has nobody: the channel's queue
  EXPECT_EQ(Decide(input).responsible, (Responsible{0, "channel:EMAIL"}));
  input.mode = CrmMode::kSimple;  // leads left open by the switch still get their traffic
  EXPECT_EQ(Decide(input).target, (EntityRef{EntityKind::kLead, 9}));
}

TEST(Decide, ContactsOpenDealBeforeCompanysOpenDeal) {
  MatchInput input = Base();
  input.leads = {{7, Semantics::kSuccess, 3}};
  input.contacts = {{20, 6, {{100, 0}, {140, 0}}}, {21, 0, {{120, 8}}}};
  input.companies = {{30, 9, {{200, 9}}}};
  MatchDecision d = Decide(input);
  EXPECT_EQ(d.action, MatchAction::kActivityOnDeal);
  EXPECT_EQ(d.target, (EntityRef{EntityKind::kDeal, 140}));  // newest open deal of the contacts
  EXPECT_EQ(d.responsible, (Responsible{6, ""}));  // the deal has nobody: its contact's user
  EXPECT_FALSE(d.increment_repeat);
  input.contacts = {{20, 6, {}}};
  d = Decide(input);
  EXPECT_EQ(d.target, (EntityRef{EntityKind::kDeal, 200}));
  EXPECT_EQ(d.responsible, (Responsible{9, ""}));
}

TEST(Decide, ReturningCustomerClassicGetsALinkedReturningLead) {
  MatchInput input = Base();
  input.leads = {{7, Semantics::kSuccess, 0}, {11, Semantics::kFailure, 0}};
  input.contacts = {{20, 6, {}}};
  input.companies = {{30, 9, {}}};
  MatchDecision d = Decide(input);
  EXPECT_EQ(d.action, MatchAction::kReturningLead);
  EXPECT_EQ(d.link_contact_id, 20);
  EXPECT_EQ(d.link_company_id, 30);
  EXPECT_EQ(d.previous_lead_id, 11);
  EXPECT_EQ(d.responsible, (Responsible{6, ""}));
}

TEST(Decide, ReturningCustomerSimpleGetsADeal) {
  MatchInput input = Base(CrmMode::kSimple);
  input.companies = {{30, 0, {}}};
  MatchDecision d = Decide(input);
  EXPECT_EQ(d.action, MatchAction::kDealForExisting);
  EXPECT_EQ(d.link_company_id, 30);
  EXPECT_EQ(d.link_contact_id, std::nullopt);
  EXPECT_EQ(d.deal_stage_id, "NEW");
  EXPECT_EQ(d.responsible, (Responsible{0, "pipeline:1"}));
}

TEST(Decide, RepeatRuleOffOnlyAnActivityOnTheContact) {
  for (CrmMode mode : {CrmMode::kClassic, CrmMode::kSimple}) {
    MatchInput input = Base(mode);
    input.repeat_rule = false;
    input.contacts = {{20, 6, {}}};
    input.companies = {{30, 9, {}}};
    MatchDecision d = Decide(input);
    EXPECT_EQ(d.action, MatchAction::kActivityOnParty);
    EXPECT_EQ(d.target, (EntityRef{EntityKind::kContact, 20}));
    EXPECT_EQ(d.responsible, (Responsible{6, ""}));
  }
}

TEST(Decide, NoObviousRepresentativeMeansTheCompany) {
  MatchInput input = Base();
  input.repeat_rule = false;
  input.contacts = {{21, 6, {}}, {20, 7, {}}};
  input.companies = {{30, 9, {}}};
  MatchDecision d = Decide(input);
  EXPECT_EQ(d.target, (EntityRef{EntityKind::kCompany, 30}));
  EXPECT_EQ(d.responsible, (Responsible{9, ""}));
  input.companies.clear();  // no company: the oldest contact
  EXPECT_EQ(Decide(input).target, (EntityRef{EntityKind::kContact, 20}));
}

TEST(Decide, OnlyClosedLeads) {
  MatchInput input = Base();
  input.leads = {{7, Semantics::kFailure, 4}, {3, Semantics::kSuccess, 2}};
  MatchDecision d = Decide(input);
  EXPECT_EQ(d.action, MatchAction::kReturningLead);
  EXPECT_EQ(d.previous_lead_id, 7);
  EXPECT_EQ(d.responsible, (Responsible{4, ""}));
  input.mode = CrmMode::kSimple;
  d = Decide(input);
  EXPECT_EQ(d.action, MatchAction::kNewContactAndDeal);
  EXPECT_EQ(d.responsible, (Responsible{4, ""}));
}

TEST(Queues, Keys) {
  EXPECT_EQ(ChannelQueue("CALL"), "channel:CALL");
  EXPECT_EQ(PipelineQueue(3), "pipeline:3");
}

}  // namespace
}  // namespace leadflow::crm::domain
