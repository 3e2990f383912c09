#include "crm-core/inbound/planner.h"

#include <algorithm>

#include "crm-core/domain/naming/naming.h"

namespace leadflow::crm {
namespace {

using domain::EntityKind;

// Records this plan makes take part in Decide under ids above every real one, in the order they
// were made: "newest" keeps its meaning.
constexpr int64_t kNewBase = int64_t{1} << 61;
int64_t SyntheticId(Ref ref) {
  return IsNew(ref) ? kNewBase + static_cast<int64_t>(NewIndex(ref)) : ref;
}
Ref FromSynthetic(int64_t id) {
  return id >= kNewBase ? NewRef(static_cast<size_t>(id - kNewBase)) : id;
}

// A contact's names from what the person gave (naming's ContactName): a single "name" is split
// ("Marie Curie" → Marie / Curie); a missing last name is the placeholder. A person who gave no
// name is known by how they reached us ("+33 6 12 34 56 78" / placeholder), never by the
// placeholder alone: nameless contacts must be told apart.
void ContactNames(const ContactAttempt& attempt, const std::string& placeholder, std::string& first,
                  std::string& last) {
  domain::PersonName name =
      attempt.unnamed_as.empty()
          ? domain::ContactName(attempt.person.first_name, attempt.person.last_name, placeholder)
          : domain::PersonName{.first = attempt.unnamed_as,
                               .last = domain::LastNameOrPlaceholder("", placeholder),
                               .last_is_placeholder = true};
  first = std::move(name.first);
  last = std::move(name.last);
}

}  // namespace

Planner::Planner(RuleSettings rules, Snapshot snapshot)
    : rules_(std::move(rules)),
      settings_(std::move(snapshot.settings)),
      active_users_(std::move(snapshot.active_users)),
      calls_(std::move(snapshot.calls)) {
  for (KnownLead& lead : snapshot.leads) {
    for (const IdentityKey& key : lead.identities) {
      Index({EntityKind::kLead, lead.id}, key);
    }
    known_leads_[lead.id] = std::move(lead);
  }
  for (KnownLead& lead : snapshot.linked_leads) {
    if (lead.contact_id != 0) {
      linked_leads_[{EntityKind::kContact, lead.contact_id}].insert(lead.id);
    }
    if (lead.previous_lead_id != 0) {
      linked_leads_[{EntityKind::kLead, lead.previous_lead_id}].insert(lead.id);
    }
    if (auto known = known_leads_.find(lead.id); known != known_leads_.end()) {
      known->second.contact_id = lead.contact_id;  // held an identity of the batch too
      continue;
    }
    for (const IdentityKey& key : lead.identities) {
      Index({EntityKind::kLead, lead.id}, key);
    }
    known_leads_[lead.id] = std::move(lead);
  }
  for (auto [parties, kind] : {std::pair{&snapshot.contacts, EntityKind::kContact},
                               std::pair{&snapshot.companies, EntityKind::kCompany}}) {
    for (const KnownParty& known : *parties) {
      Party& party = parties_[{kind, known.id}];
      party.responsible_user_id = known.responsible_user_id;
      for (const auto& [deal, responsible] : known.open_deals) {
        party.open_deals.push_back({deal, Active(responsible)});
        deal_responsible_[deal] = responsible;
      }
      for (const IdentityKey& key : known.identities) {
        Index({kind, known.id}, key);
      }
    }
  }
  // Simple mode needs the first stage of the inbound pipeline; a pipeline without one cannot
  // take deals, and making leads beats losing the traffic.
  if (settings_.inbound_first_stage_id.empty()) {
    settings_.mode = domain::CrmMode::kClassic;
  }
}

Planner::Planner(RuleSettings rules, std::vector<KnownLead> known, std::set<int64_t> active_users)
    : Planner(rules,
              Snapshot{.leads = std::move(known),
                       .active_users = std::move(active_users),
                       .settings = InboundSettings{.title_template = rules.title_template}}) {}

int64_t Planner::RecordResponsible(EntityKind kind, Ref ref) const {
  if (IsNew(ref)) {
    return 0;
  }
  switch (kind) {
    case EntityKind::kLead: {
      const auto lead = known_leads_.find(ref);
      return lead == known_leads_.end() ? 0 : lead->second.responsible_user_id;
    }
    case EntityKind::kDeal: {
      const auto deal = deal_responsible_.find(ref);
      return deal == deal_responsible_.end() ? 0 : deal->second;
    }
    default: {
      const auto party = parties_.find({kind, ref});
      return party == parties_.end() ? 0 : party->second.responsible_user_id;
    }
  }
}

void Planner::Index(Key owner, const IdentityKey& key) {
  by_identity_[key].insert(owner);
  identities_of_[owner].insert(key);
}

// Never another record's: a message holding two people's phones went to one of them, and
// copying the other's onto it sent that person's traffic there (docs/domain.md, "One person, one
// record": the API refuses such a write, which a message cannot be). A contact skips what another
// contact holds; a lead what another open lead or a contact other than its own holds (that
// contact is the person, whose traffic must not move to the lead; a returning lead linked to a
// contact holds the identities its messages gave, as the contact does).
bool Planner::HeldElsewhere(Key owner, const IdentityKey& key) const {
  const auto holders = by_identity_.find(key);
  if (holders == by_identity_.end()) {
    return false;
  }
  Ref own_contact = 0;
  if (owner.first == EntityKind::kLead) {
    if (IsNew(owner.second)) {
      own_contact = plan_.leads[NewIndex(owner.second)].contact;
    } else if (const auto known = known_leads_.find(owner.second); known != known_leads_.end()) {
      own_contact = known->second.contact_id;
    }
  }
  return std::any_of(holders->second.begin(), holders->second.end(), [&](const Key& other) {
    if (other == owner) {
      return false;
    }
    if (owner.first == EntityKind::kContact) {
      return other.first == EntityKind::kContact;
    }
    if (owner.first != EntityKind::kLead) {
      return false;
    }
    if (other.first == EntityKind::kContact) {
      return other.second != own_contact;
    }
    if (other.first != EntityKind::kLead) {
      return false;
    }
    if (IsNew(other.second)) {
      return true;  // made by this plan: open
    }
    const auto known = known_leads_.find(other.second);
    return known != known_leads_.end() && known->second.semantics == domain::Semantics::kProcess;
  });
}

void Planner::Attach(Key owner, const std::vector<IdentityKey>& keys) {
  std::set<IdentityKey>& held = identities_of_[owner];
  for (const IdentityKey& key : keys) {
    if (held.count(key) != 0) {
      continue;
    }
    if (HeldElsewhere(owner, key)) {
      ++plan_.identities_held_elsewhere;
      continue;
    }
    if (held.size() >= rules_.max_inbound_identities) {
      ++plan_.identities_capped;
      continue;
    }
    plan_.identities.push_back({owner.first, owner.second, key});
    Index(owner, key);
  }
}

void Planner::Add(const ContactAttempt& attempt) {
  std::vector<IdentityKey> keys = attempt.identities;
  std::set<Key> matches;
  for (const IdentityKey& key : keys) {
    if (auto found = by_identity_.find(key); found != by_identity_.end()) {
      matches.insert(found->second.begin(), found->second.end());
    }
  }
  for (const IdentityKey& key : attempt.match_only) {
    if (auto found = by_identity_.find(key); found != by_identity_.end()) {
      matches.insert(found->second.begin(), found->second.end());
      keys.clear();  // found through an address anyone can give: nobody's record grows
    }
  }

  // The person's open returning leads, reached through the contact or earlier lead they were
  // made for. Not through a company (its identities are a switchboard its people share), nor
  // through a converted lead: its person is the contact it produced, which links its returning
  // leads itself, and its identities need not all be that person's.
  std::set<Key> through_links;
  for (const Key& match : matches) {
    if (match.first == EntityKind::kCompany) continue;
    if (match.first == EntityKind::kLead && !IsNew(match.second) &&
        known_leads_.at(match.second).semantics == domain::Semantics::kSuccess) {
      continue;
    }
    if (auto found = linked_leads_.find(match); found != linked_leads_.end()) {
      for (Ref lead : found->second) through_links.insert({EntityKind::kLead, lead});
    }
  }
  matches.insert(through_links.begin(), through_links.end());

  std::optional<domain::CallPolicy> call;
  if (attempt.call) {
    call = calls_.Admit(attempt, !matches.empty(), plan_);
    if (!call) return;  // nothing more than what the call rules planned
  }

  domain::MatchInput input;
  input.mode = settings_.mode;
  input.repeat_rule = settings_.repeat_rule;
  input.channel = attempt.source_id;
  if (auto queue = settings_.channel_queues.find(attempt.source_id);
      queue != settings_.channel_queues.end()) {
    input.channel_queue = queue->second;
  }
  if (call) input.channel_queue = calls_.Queue(attempt, input.channel_queue);
  input.inbound_pipeline_id = settings_.inbound_pipeline_id;
  input.inbound_first_stage_id = settings_.inbound_first_stage_id;
  input.route_queue = attempt.route.queue;
  if (attempt.route.pipeline_id > 0 && !attempt.route.first_stage_id.empty()) {
    input.inbound_pipeline_id = attempt.route.pipeline_id;
    input.inbound_first_stage_id = attempt.route.first_stage_id;
  }
  for (const auto& [kind, ref] : matches) {
    if (kind == EntityKind::kLead) {
      if (IsNew(ref)) {
        // A lead this plan makes has the default status, NEW: open.
        input.leads.push_back({SyntheticId(ref), domain::Semantics::kProcess,
                               Active(plan_.leads[NewIndex(ref)].responsible_user_id)});
      } else {
        const KnownLead& lead = known_leads_.at(ref);
        input.leads.push_back({ref, lead.semantics, Active(lead.responsible_user_id)});
      }
      continue;
    }
    const Party& party = parties_.at({kind, ref});
    (kind == EntityKind::kContact ? input.contacts : input.companies)
        .push_back({SyntheticId(ref), Active(party.responsible_user_id), party.open_deals});
  }
  domain::MatchDecision decision = domain::Decide(input);
  if (call) {
    calls_.Adjust(attempt, *call, input, decision);
    if (call->completes_call_backs) {
      // The records the call reached, and their open deals: their call-backs are done.
      std::vector<std::pair<EntityKind, Ref>> owners(matches.begin(), matches.end());
      for (const auto& [kind, ref] : matches) {
        if (kind == EntityKind::kLead) continue;
        for (const domain::OpenDeal& deal : parties_.at({kind, ref}).open_deals) {
          owners.emplace_back(EntityKind::kDeal, FromSynthetic(deal.id));
        }
      }
      calls_.Complete(attempt, std::move(owners), plan_);
    }
  }

  const ContactAttempt::Activity& implied = attempt.activity;
  const std::chrono::minutes deadline =
      implied.has_deadline ? rules_.task_deadline : std::chrono::minutes(0);
  auto activity = [&](EntityKind owner, Ref ref, bool repeat, int64_t responsible) {
    plan_.activities.push_back(
        {owner, ref, implied.type, repeat ? implied.repeat_subject : implied.subject,
         implied.description, implied.completed, deadline, attempt.event_id, responsible});
    PlannedActivity& planned = plan_.activities.back();
    if (call) {
      calls_.Shape(attempt, *call, planned);
      if (planned.call_back && responsible == 0 && !IsNew(ref)) {
        // Nobody holds the record: the call-back goes to the line's queue, as a new record's
        // would, never to nobody.
        planned.queue = decision.responsible.queue;
      }
    } else if (responsible == 0 && !IsNew(ref)) {
      // The record's responsible is deactivated (or it has none): the request goes to the next
      // active member of the queue a new record would get, never to nobody. The record keeps its
      // responsible: handing a deactivated user's records over is the manager's decision.
      planned.queue = decision.responsible.queue;
    }
    if (!IsNew(ref) && !planned.queue.empty()) {
      const int64_t before = RecordResponsible(owner, ref);
      ++(before > 0 && Active(before) == 0 ? plan_.reassigned_inactive
                                           : plan_.reassigned_unassigned);
    }
  };
  const int64_t user = decision.responsible.user_id;
  const std::string& queue = decision.responsible.queue;
  auto new_deal = [&](Ref contact, int64_t company_id) {
    Ref ref = NewRef(plan_.deals.size());
    plan_.deals.push_back({&attempt, LeadTitle(settings_.title_template, attempt),
                           decision.deal_pipeline_id, decision.deal_stage_id, contact, company_id,
                           user, user > 0 ? "" : queue});
    // Open from now on: the person's next contact in this batch goes on it.
    if (contact != 0) {
      parties_[{EntityKind::kContact, contact}].open_deals.push_back({SyntheticId(ref), user});
    }
    if (company_id != 0) {
      parties_[{EntityKind::kCompany, company_id}].open_deals.push_back({SyntheticId(ref), user});
    }
    activity(EntityKind::kDeal, ref, false, user);
    return ref;
  };

  switch (decision.action) {
    case domain::MatchAction::kActivityOnLead: {
      // Same person, lead still open: one more request on it, never a second lead.
      Ref lead = FromSynthetic(decision.target->id);
      if (IsNew(lead)) {
        ++plan_.leads[NewIndex(lead)].repeat_count;
      } else {
        ++plan_.repeat_increments[lead];
      }
      Attach({EntityKind::kLead, lead}, keys);
      activity(EntityKind::kLead, lead, true, user);
      return;
    }
    case domain::MatchAction::kActivityOnDeal: {
      // A customer with an open deal: the request goes on the deal; new ways to reach them go on
      // the contact holding it.
      const int64_t deal = decision.target->id;
      for (const auto& [kind, ref] : matches) {
        if (kind != EntityKind::kContact) continue;
        const auto& deals = parties_.at({kind, ref}).open_deals;
        if (std::any_of(deals.begin(), deals.end(),
                        [&](const domain::OpenDeal& open) { return open.id == deal; })) {
          Attach({kind, ref}, keys);
          break;
        }
      }
      activity(EntityKind::kDeal, FromSynthetic(deal), true, user);
      return;
    }
    case domain::MatchAction::kActivityOnParty: {
      const EntityKind kind = decision.target->kind;
      const Ref ref = FromSynthetic(decision.target->id);
      if (kind == EntityKind::kContact) {
        Attach({kind, ref}, keys);
      }
      activity(kind, ref, false, user);
      return;
    }
    case domain::MatchAction::kReturningLead:
    case domain::MatchAction::kNewLead: {
      PlannedLead lead;
      lead.attempt = &attempt;
      lead.title = LeadTitle(settings_.title_template, attempt);
      lead.source = attempt.source_id;
      lead.is_returning = decision.action == domain::MatchAction::kReturningLead;
      if (decision.previous_lead_id && !IsNew(FromSynthetic(*decision.previous_lead_id))) {
        lead.previous_lead_id = *decision.previous_lead_id;
      }
      lead.responsible_user_id = user;
      lead.queue = user > 0 ? "" : queue;
      if (decision.link_contact_id) lead.contact = FromSynthetic(*decision.link_contact_id);
      if (decision.link_company_id) lead.company_id = *decision.link_company_id;
      Ref ref = NewRef(plan_.leads.size());
      // Found through its links by the person's next message in this batch, as a known one is.
      if (lead.contact != 0) linked_leads_[{EntityKind::kContact, lead.contact}].insert(ref);
      if (decision.previous_lead_id) {
        linked_leads_[{EntityKind::kLead, FromSynthetic(*decision.previous_lead_id)}].insert(ref);
      }
      plan_.leads.push_back(std::move(lead));
      // Only the identities of this message: a matched record's others may be another person's
      // (a lead merged by hand, a shared mailbox), and copied here they would send that person's
      // traffic to this lead, and later onto a second contact (the trial's lead 15). The person's
      // other identities find this lead through its links instead.
      Attach({EntityKind::kLead, ref}, keys);
      activity(EntityKind::kLead, ref, false, user);
      return;
    }
    case domain::MatchAction::kDealForExisting: {
      Ref contact = decision.link_contact_id ? FromSynthetic(*decision.link_contact_id) : 0;
      if (contact != 0) {
        Attach({EntityKind::kContact, contact}, keys);
      }
      new_deal(contact, decision.link_company_id.value_or(0));
      return;
    }
    case domain::MatchAction::kNewContactAndDeal: {
      PlannedContact contact;
      contact.attempt = &attempt;
      ContactNames(attempt, settings_.last_name_placeholder, contact.first_name, contact.last_name);
      Ref ref = NewRef(plan_.contacts.size());
      plan_.contacts.push_back(std::move(contact));
      parties_[{EntityKind::kContact, ref}].responsible_user_id = user;
      // Simple mode, only closed leads matched: the person becomes a contact, which takes the
      // closed leads' identities as a conversion would (the manager's record of how to reach
      // them), so their next message by any of them finds this contact and its deal.
      std::vector<IdentityKey> carried = keys;
      for (const Key& match : matches) {
        if (match.first != EntityKind::kLead) continue;
        for (const IdentityKey& key : identities_of_[match]) {
          if (std::find(carried.begin(), carried.end(), key) == carried.end()) {
            carried.push_back(key);
          }
        }
      }
      Attach({EntityKind::kContact, ref}, carried);
      new_deal(ref, 0);
      return;
    }
  }
}

}  // namespace leadflow::crm
