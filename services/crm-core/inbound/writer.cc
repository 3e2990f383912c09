#include "crm-core/inbound/writer.h"

#include "crm-core/domain/assignment/assignment.h"
#include "crm-core/store/repositories.h"

namespace leadflow::crm {

void WritePlan(pqxx::transaction_base& work, const Plan& plan,
               const std::vector<int64_t>& active_users) {
  LeadRepository leads(work);
  ActivityRepository activities(work);
  UserRepository users(work);

  // Ids for the new leads, and round-robin owners for those without a previous one.
  std::vector<int64_t> lead_ids;
  std::vector<int64_t> responsible(plan.leads.size(), 0);
  if (!plan.leads.empty()) {
    lead_ids = leads.AllocateIds(plan.leads.size());
    int64_t unassigned = 0;
    for (const PlannedLead& lead : plan.leads) {
      unassigned += lead.responsible_user_id == 0 ? 1 : 0;
    }
    std::vector<int64_t> positions;
    if (unassigned > 0 && !active_users.empty()) {
      positions = users.NextAssignmentPositions(unassigned);
    }
    size_t next_position = 0;
    for (size_t i = 0; i < plan.leads.size(); ++i) {
      responsible[i] = plan.leads[i].responsible_user_id;
      if (responsible[i] == 0 && next_position < positions.size()) {
        responsible[i] = RoundRobinUser(active_users, positions[next_position++]);
      }
    }
  }
  auto resolve = [&](LeadRef ref) { return IsNewLead(ref) ? lead_ids[NewLeadIndex(ref)] : ref; };

  std::vector<Lead> rows;
  rows.reserve(plan.leads.size());
  for (size_t i = 0; i < plan.leads.size(); ++i) {
    const PlannedLead& planned = plan.leads[i];
    const ContactAttempt& attempt = *planned.attempt;
    rows.push_back(Lead{.id = lead_ids[i],
                        .title = planned.title,
                        .source = planned.source,
                        .first_name = attempt.person.first_name,
                        .last_name = attempt.person.last_name,
                        .company_name = attempt.person.company,
                        .city = attempt.person.city,
                        .comments = attempt.comments,
                        .responsible_user_id = responsible[i],
                        .repeat_count = planned.repeat_count,
                        .returning = planned.is_returning,
                        .previous_lead_id = planned.previous_lead_id,
                        .source_details = attempt.source_details,
                        .origin_event_id = attempt.event_id});
  }
  leads.InsertMany(rows);

  std::vector<std::pair<int64_t, IdentityKey>> identities;
  identities.reserve(plan.identities.size());
  for (const PlannedIdentity& identity : plan.identities) {
    identities.emplace_back(resolve(identity.lead), identity.key);
  }
  leads.AddIdentities(identities);

  std::vector<Activity> planned_activities;
  std::vector<int64_t> deadline_minutes;
  for (const PlannedActivity& activity : plan.activities) {
    planned_activities.push_back(Activity{
        .type = activity.type,
        .owner_type = "LEAD",
        .owner_id = resolve(activity.lead),
        .subject = activity.subject,
        .description = activity.description,
        .responsible_user_id = IsNewLead(activity.lead) ? responsible[NewLeadIndex(activity.lead)]
                                                        : activity.responsible_user_id,
        .completed = activity.completed,
        .origin_event_id = activity.origin_event_id});
    deadline_minutes.push_back(activity.deadline_after.count());
  }
  activities.InsertInbound(planned_activities, deadline_minutes);
  leads.AddRepeats(plan.repeat_increments);
}

}  // namespace leadflow::crm
