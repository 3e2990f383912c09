#include "crm-core/domain/matching/matching.h"

#include <algorithm>

#include "crm-core/domain/common/text.h"

namespace leadflow::crm::domain {
namespace {

// The newest open deal (highest id) over the parties, with its party.
struct DealHit {
  OpenDeal deal;
  int64_t party_id = 0;
};
std::optional<DealHit> NewestOpenDeal(const std::vector<PartyCandidate>& parties) {
  std::optional<DealHit> best;
  for (const PartyCandidate& party : parties) {
    for (const OpenDeal& deal : party.open_deals) {
      if (!best || deal.id > best->deal.id) best = DealHit{deal, party.id};
    }
  }
  return best;
}

const PartyCandidate* Oldest(const std::vector<PartyCandidate>& parties) {
  const PartyCandidate* oldest = nullptr;
  for (const PartyCandidate& party : parties) {
    if (oldest == nullptr || party.id < oldest->id) oldest = &party;
  }
  return oldest;
}

std::string QueueFor(const MatchInput& input, bool new_deal) {
  if (!input.route_queue.empty()) return input.route_queue;
  if (new_deal) return PipelineQueue(input.inbound_pipeline_id);
  return input.channel_queue.empty() ? ChannelQueue(input.channel) : input.channel_queue;
}

}  // namespace

std::string ChannelQueue(std::string_view channel) { return Cat("channel:", channel); }
std::string PipelineQueue(int64_t pipeline_id) { return Cat("pipeline:", pipeline_id); }

MatchDecision Decide(const MatchInput& input) {
  MatchDecision decision;

  // Rule 1: an open lead, the newest.
  const LeadCandidate* open_lead = nullptr;
  const LeadCandidate* newest_lead = nullptr;
  for (const LeadCandidate& lead : input.leads) {
    if (lead.status_semantics == Semantics::kProcess &&
        (open_lead == nullptr || lead.id > open_lead->id)) {
      open_lead = &lead;
    }
    if (newest_lead == nullptr || lead.id > newest_lead->id) newest_lead = &lead;
  }
  if (open_lead != nullptr) {
    decision.action = MatchAction::kActivityOnLead;
    decision.target = EntityRef{EntityKind::kLead, open_lead->id};
    decision.increment_repeat = true;
    decision.responsible = open_lead->responsible_user_id > 0
                               ? Responsible{open_lead->responsible_user_id, ""}
                               : Responsible{0, QueueFor(input, false)};
    decision.reason = Cat("open lead ", open_lead->id, " holds the identity");
    return decision;
  }

  // Rules 2 and 3: the newest open deal, contacts' before companies'.
  for (auto [parties, noun] :
       {std::pair{&input.contacts, "contact"}, std::pair{&input.companies, "company"}}) {
    if (std::optional<DealHit> hit = NewestOpenDeal(*parties)) {
      decision.action = MatchAction::kActivityOnDeal;
      decision.target = EntityRef{EntityKind::kDeal, hit->deal.id};
      int64_t fallback = 0;
      for (const PartyCandidate& party : *parties) {
        if (party.id == hit->party_id) fallback = party.responsible_user_id;
      }
      int64_t user = hit->deal.responsible_user_id > 0 ? hit->deal.responsible_user_id : fallback;
      decision.responsible = user > 0 ? Responsible{user, ""}
                                      : Responsible{0, PipelineQueue(input.inbound_pipeline_id)};
      decision.reason = Cat("open deal ", hit->deal.id, " of ", noun, " ", hit->party_id,
                            " (the newest open one)");
      return decision;
    }
  }

  // Rule 4: a returning customer with nothing open.
  if (!input.contacts.empty() || !input.companies.empty()) {
    const PartyCandidate* contact = nullptr;
    if (input.contacts.size() == 1 || (!input.contacts.empty() && input.companies.empty())) {
      contact = Oldest(input.contacts);
    }
    const PartyCandidate* company = Oldest(input.companies);
    // Who was responsible before: the contact, the company, the newest lead.
    int64_t before = 0;
    for (int64_t user :
         {contact ? contact->responsible_user_id : 0, company ? company->responsible_user_id : 0,
          newest_lead ? newest_lead->responsible_user_id : 0}) {
      if (before == 0 && user > 0) before = user;
    }
    std::string who = contact ? Cat("contact ", contact->id) : Cat("company ", company->id);
    if (!input.repeat_rule) {
      decision.action = MatchAction::kActivityOnParty;
      decision.target = contact ? EntityRef{EntityKind::kContact, contact->id}
                                : EntityRef{EntityKind::kCompany, company->id};
      decision.responsible =
          before > 0 ? Responsible{before, ""} : Responsible{0, QueueFor(input, false)};
      decision.reason = Cat(who, " has nothing open and the repeat rule is off: activity only");
      return decision;
    }
    if (contact) decision.link_contact_id = contact->id;
    if (company) decision.link_company_id = company->id;
    if (input.mode == CrmMode::kClassic) {
      decision.action = MatchAction::kReturningLead;
      if (newest_lead) decision.previous_lead_id = newest_lead->id;
      decision.responsible =
          before > 0 ? Responsible{before, ""} : Responsible{0, QueueFor(input, false)};
      decision.reason = Cat(who, " has nothing open: a returning lead linked to it");
    } else {
      decision.action = MatchAction::kDealForExisting;
      decision.deal_pipeline_id = input.inbound_pipeline_id;
      decision.deal_stage_id = input.inbound_first_stage_id;
      decision.responsible =
          before > 0 ? Responsible{before, ""} : Responsible{0, QueueFor(input, true)};
      decision.reason =
          Cat(who, " has nothing open: a new deal in pipeline ", input.inbound_pipeline_id);
    }
    return decision;
  }

  // Rules 5 and 6.
  int64_t before = newest_lead ? newest_lead->responsible_user_id : 0;
  if (input.mode == CrmMode::kClassic) {
    decision.action = newest_lead ? MatchAction::kReturningLead : MatchAction::kNewLead;
    if (newest_lead) decision.previous_lead_id = newest_lead->id;
    decision.responsible =
        before > 0 ? Responsible{before, ""} : Responsible{0, QueueFor(input, false)};
    decision.reason = newest_lead ? Cat("only closed lead ", newest_lead->id,
                                        " holds the identity: a returning lead")
                                  : std::string("nobody holds the identity: a new lead");
  } else {
    decision.action = MatchAction::kNewContactAndDeal;
    decision.deal_pipeline_id = input.inbound_pipeline_id;
    decision.deal_stage_id = input.inbound_first_stage_id;
    decision.responsible =
        before > 0 ? Responsible{before, ""} : Responsible{0, QueueFor(input, true)};
    decision.reason =
        Cat("no contact or company holds the identity: a new contact and deal in "
            "pipeline ",
            input.inbound_pipeline_id);
  }
  return decision;
}

}  // namespace leadflow::crm::domain
