#include "crm-core/inbound/writer.h"

#include "crm-core/domain/assignment/assignment.h"
#include "crm-core/domain/history/deal_birth.h"
#include "crm-core/store/history_repository.h"
#include "crm-core/store/inbound_repository.h"
#include "crm-core/store/people_repository.h"
#include "crm-core/store/repositories.h"

namespace leadflow::crm {
namespace {

using domain::EntityKind;

// Round-robin owners for the records planned with a queue instead of a user: each queue's
// positions are taken once for the batch, and its users are its active members, else every
// active user.
class Assigner {
 public:
  Assigner(InboundRepository& repository, const std::vector<int64_t>& active_users,
           const QueuePositions& positions)
      : repository_(repository), active_users_(active_users), positions_(positions) {}

  void Want(const std::string& queue) {
    if (!queue.empty()) ++wanted_[queue];
  }

  void Take() {
    if (wanted_.empty() || active_users_.empty()) {
      return;  // nobody to give work to: left unassigned
    }
    std::set<std::string> queues;
    for (const auto& [queue, count] : wanted_) queues.insert(queue);
    members_ = repository_.QueueMembers(queues);
    for (const auto& [queue, count] : wanted_) {
      next_[queue] = positions_(queue, count);
    }
  }

  int64_t Next(int64_t user, const std::string& queue) {
    if (user > 0 || queue.empty()) {
      return user;
    }
    auto position = next_.find(queue);
    if (position == next_.end()) {
      return 0;
    }
    auto members = members_.find(queue);
    const std::vector<int64_t>& users = members != members_.end() ? members->second : active_users_;
    return RoundRobinUser(users, position->second++);
  }

 private:
  InboundRepository& repository_;
  const std::vector<int64_t>& active_users_;
  const QueuePositions& positions_;
  std::map<std::string, int64_t> wanted_;
  std::map<std::string, int64_t> next_;
  std::map<std::string, std::vector<int64_t>> members_;
};

// A call-back on a record: its responsible, when nobody active holds the record, is decided by
// WriteCalls once it knows whether anybody has to call back.
bool IsCallBack(const PlannedActivity& activity) {
  return activity.call != nullptr && activity.call_back;
}

}  // namespace

WriteResult WritePlan(pqxx::transaction_base& work, const Plan& plan,
                      const std::vector<int64_t>& active_users, const QueuePositions& positions) {
  LeadRepository leads(work);
  InboundRepository inbound(work);

  Assigner assigner(inbound, active_users, positions);
  for (const PlannedLead& lead : plan.leads) assigner.Want(lead.queue);
  for (const PlannedDeal& deal : plan.deals) assigner.Want(deal.queue);
  for (const PlannedActivity& activity : plan.activities) {
    // A call-back takes its turn when written, and only if it is one to make (WriteCalls).
    if (IsCallBack(activity)) continue;
    if (!IsNew(activity.ref) && activity.responsible_user_id == 0) assigner.Want(activity.queue);
  }
  assigner.Take();

  const std::vector<int64_t> lead_ids =
      plan.leads.empty() ? std::vector<int64_t>{} : leads.AllocateIds(plan.leads.size());
  const std::vector<int64_t> contact_ids = inbound.AllocateContactIds(plan.contacts.size());
  const std::vector<int64_t> deal_ids = inbound.AllocateDealIds(plan.deals.size());
  auto id = [&](EntityKind kind, Ref ref) -> int64_t {
    if (!IsNew(ref)) return ref;
    switch (kind) {
      case EntityKind::kLead:
        return lead_ids[NewIndex(ref)];
      case EntityKind::kContact:
        return contact_ids[NewIndex(ref)];
      case EntityKind::kDeal:
        return deal_ids[NewIndex(ref)];
      case EntityKind::kCompany:
        break;  // never made by inbound traffic
    }
    return ref;
  };

  std::vector<int64_t> lead_responsible(plan.leads.size(), 0);
  std::vector<int64_t> deal_responsible(plan.deals.size(), 0);
  std::vector<int64_t> contact_responsible(plan.contacts.size(), 0);
  for (size_t i = 0; i < plan.leads.size(); ++i) {
    lead_responsible[i] = assigner.Next(plan.leads[i].responsible_user_id, plan.leads[i].queue);
  }
  for (size_t i = 0; i < plan.deals.size(); ++i) {
    const PlannedDeal& deal = plan.deals[i];
    deal_responsible[i] = assigner.Next(deal.responsible_user_id, deal.queue);
    if (IsNew(deal.contact) && contact_responsible[NewIndex(deal.contact)] == 0) {
      contact_responsible[NewIndex(deal.contact)] = deal_responsible[i];  // made together
    }
  }
  std::vector<HistoryRecord> history;

  // Leads.
  std::vector<Lead> lead_rows;
  std::map<int64_t, std::pair<int64_t, int64_t>> lead_links;
  for (size_t i = 0; i < plan.leads.size(); ++i) {
    const PlannedLead& planned = plan.leads[i];
    const ContactAttempt& attempt = *planned.attempt;
    lead_rows.push_back(Lead{.id = lead_ids[i],
                             .title = planned.title,
                             .source = planned.source,
                             .first_name = attempt.person.first_name,
                             .last_name = attempt.person.last_name,
                             .company_name = attempt.person.company,
                             .city = attempt.person.city,
                             .comments = attempt.comments,
                             .responsible_user_id = lead_responsible[i],
                             .repeat_count = planned.repeat_count,
                             .returning = planned.is_returning,
                             .previous_lead_id = planned.previous_lead_id,
                             .source_details = attempt.source_details,
                             .origin_event_id = attempt.event_id});
    HistoryRecord created = HistoryRecord::Of(EntityKind::kLead, lead_ids[i], "CREATED");
    created.event_id = attempt.event_id;
    if (planned.contact != 0 || planned.company_id != 0) {
      const int64_t contact = planned.contact != 0 ? id(EntityKind::kContact, planned.contact) : 0;
      lead_links[lead_ids[i]] = {contact, planned.company_id};
      created.RelatedTo(contact != 0 ? domain::EntityRef{EntityKind::kContact, contact}
                                     : domain::EntityRef{EntityKind::kCompany, planned.company_id});
    }
    history.push_back(created);
  }
  leads.InsertMany(lead_rows);

  // Contacts, then the deals that link to them.
  std::vector<NewContactRow> contact_rows;
  for (size_t i = 0; i < plan.contacts.size(); ++i) {
    const PlannedContact& planned = plan.contacts[i];
    contact_rows.push_back({contact_ids[i], planned.first_name, planned.last_name,
                            contact_responsible[i], planned.attempt->source_id,
                            planned.attempt->comments, planned.attempt->event_id});
    HistoryRecord created = HistoryRecord::Of(EntityKind::kContact, contact_ids[i], "CREATED");
    created.event_id = planned.attempt->event_id;
    history.push_back(created);
  }
  inbound.InsertContacts(contact_rows);
  inbound.LinkLeads(lead_links);
  std::vector<NewDealRow> deal_rows;
  for (size_t i = 0; i < plan.deals.size(); ++i) {
    const PlannedDeal& planned = plan.deals[i];
    const int64_t contact = planned.contact != 0 ? id(EntityKind::kContact, planned.contact) : 0;
    deal_rows.push_back({.id = deal_ids[i],
                         .title = planned.title,
                         .pipeline_id = planned.pipeline_id,
                         .stage_id = planned.stage_id,
                         .company_id = planned.company_id,
                         .contact_id = contact,
                         .responsible_user_id = deal_responsible[i],
                         .source_id = planned.attempt->source_id,
                         .origin_event_id = planned.attempt->event_id});
    // What CreateDeal writes (domain/history/deal_birth.h): CREATED naming the stage (and the
    // contact or company it was made for), then LINKED on both sides of each link.
    HistoryRecord created = DealCreated(deal_ids[i], planned.pipeline_id, planned.stage_id);
    if (contact != 0) {
      created.RelatedTo({EntityKind::kContact, contact});
    } else if (planned.company_id != 0) {
      created.RelatedTo({EntityKind::kCompany, planned.company_id});
    }
    const size_t first = history.size();
    history.push_back(created);
    if (planned.company_id != 0) {
      AppendDealLinked(history, deal_ids[i], {EntityKind::kCompany, planned.company_id});
    }
    if (contact != 0) {
      AppendDealLinked(history, deal_ids[i], {EntityKind::kContact, contact});
    }
    for (size_t entry = first; entry < history.size(); ++entry) {
      history[entry].event_id = planned.attempt->event_id;
    }
  }
  inbound.InsertDeals(deal_rows);

  // Identities.
  std::vector<std::pair<int64_t, IdentityKey>> lead_identities;
  std::vector<std::pair<int64_t, IdentityKey>> contact_identities;  // contacts of this batch
  std::map<int64_t, std::vector<IdentityKey>> existing_contacts;    // by contact, in id order
  for (const PlannedIdentity& identity : plan.identities) {
    if (identity.owner == EntityKind::kLead) {
      lead_identities.emplace_back(id(identity.owner, identity.ref), identity.key);
    } else if (IsNew(identity.ref)) {
      contact_identities.emplace_back(id(identity.owner, identity.ref), identity.key);
    } else {
      existing_contacts[identity.ref].push_back(identity.key);
    }
  }
  leads.AddIdentities(lead_identities);
  inbound.AddContactIdentities(contact_identities);
  // A contact that existed before gains them through the store's one writer of added identities:
  // a new etag (a manager's update made with the one read before is ABORTED instead of dropping
  // them) and FIELD_CHANGED on its timeline.
  for (const auto& [contact, keys] : existing_contacts) {
    AddIdentitiesToExisting(work, EntityKind::kContact, contact, keys);
  }

  // Activities, and the deals they touch.
  std::vector<InboundActivityRow> activity_rows;
  std::vector<ResolvedCallActivity> call_activities;
  std::set<int64_t> touched;
  for (const PlannedActivity& activity : plan.activities) {
    int64_t responsible = activity.responsible_user_id;
    if (IsNew(activity.ref)) {
      responsible = activity.owner == EntityKind::kLead   ? lead_responsible[NewIndex(activity.ref)]
                    : activity.owner == EntityKind::kDeal ? deal_responsible[NewIndex(activity.ref)]
                                                          : responsible;
    } else if (responsible == 0 && !IsCallBack(activity)) {
      responsible = assigner.Next(0, activity.queue);
    }
    const int64_t owner = id(activity.owner, activity.ref);
    if (activity.owner == EntityKind::kDeal && !IsNew(activity.ref)) {
      touched.insert(owner);
    }
    if (activity.call != nullptr) {
      call_activities.push_back({static_cast<size_t>(&activity - plan.activities.data()), &activity,
                                 owner, responsible, IsNew(activity.ref) ? "" : activity.queue});
      continue;
    }
    activity_rows.push_back({activity.type, activity.owner, owner, activity.subject,
                             activity.description, responsible, activity.completed,
                             activity.deadline_after.count(), activity.origin_event_id});
  }
  inbound.InsertActivities(activity_rows);
  // A second round of the queues, after the first: only for call-backs still to be made.
  auto turns = [&](const std::vector<std::string>& queues) {
    Assigner later(inbound, active_users, positions);
    for (const std::string& queue : queues) later.Want(queue);
    later.Take();
    std::vector<int64_t> users;
    for (const std::string& queue : queues) users.push_back(later.Next(0, queue));
    return users;
  };
  CallWriteResult calls = WriteCalls(work, plan.calls, call_activities, id, turns);
  touched.insert(calls.deals.begin(), calls.deals.end());
  inbound.TouchDeals(touched);
  leads.AddRepeats(plan.repeat_increments);
  HistoryRepository(work).Append(history);
  return {plan.leads.size(), plan.contacts.size(), plan.deals.size(), plan.activities.size(),
          std::move(calls)};
}

}  // namespace leadflow::crm
