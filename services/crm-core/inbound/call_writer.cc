// The call rules' side of the writer (call_rules.h): what they read once per batch, and the call
// effects of a written plan. Apart from call_rules.cc so that the planner's rules build without
// the database (the fuzz target compiles them in).
#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "crm-core/inbound/call_rules.h"
#include "crm-core/inbound/planner.h"

namespace leadflow::crm {

using domain::EntityKind;

CallContext ReadCallContext(pqxx::transaction_base& work,
                            const std::vector<ContactAttempt>& attempts) {
  std::set<std::string> extensions;
  std::set<std::string> emails;
  bool calls = false;
  for (const ContactAttempt& attempt : attempts) {
    if (!attempt.call) continue;
    calls = true;
    if (!attempt.call->extension.empty()) extensions.insert(attempt.call->extension);
    if (attempt.call->operator_name.find('@') != std::string::npos) {
      emails.insert(absl::AsciiStrToLower(attempt.call->operator_name));
    }
  }
  CallContext context;
  if (!calls) {
    return context;  // no call in the batch: nothing to read
  }
  CallRepository repository(work);
  context.settings = repository.ReadSettings();
  context.operators =
      repository.FindOperators(std::vector<std::string>(extensions.begin(), extensions.end()),
                               std::vector<std::string>(emails.begin(), emails.end()));
  return context;
}

namespace {

CallActivityRow Row(const ResolvedCallActivity& resolved) {
  const PlannedActivity& planned = *resolved.activity;
  return {.owner = planned.owner,
          .owner_id = resolved.owner_id,
          .subject = planned.subject,
          .description = planned.description,
          .responsible_user_id = resolved.responsible_user_id,
          .completed = planned.completed,
          .deadline_minutes = planned.deadline_after.count(),
          .origin_event_id = planned.origin_event_id,
          .call_back = planned.call_back,
          .call = *planned.call->call,
          .missed_calls = planned.call_back ? 1 : 0,
          .first_at_unix = planned.call->call->at_unix,
          .call_ids = {planned.call->call->call_id},
          .queue = planned.call_back && resolved.responsible_user_id == 0 ? resolved.queue : ""};
}

// Missed calls of one record between two completions, made one call-back: the first call's
// task (subject, responsible, deadline, event), the latest call's facts and description.
CallActivityRow Fold(const std::vector<const ResolvedCallActivity*>& missed, bool completed,
                     const std::string& completed_by) {
  CallActivityRow row = Row(*missed.front());
  const CallActivityRow latest = Row(*missed.back());
  row.description = latest.description;
  row.call = latest.call;
  for (const ResolvedCallActivity* each : missed) {
    if (!each->activity->call->call->recording_url.empty()) {
      row.call.recording_url = each->activity->call->call->recording_url;
    }
  }
  // Batch order is publication order, not the calls' order (a PBX posting late): the deadline
  // runs from the earliest missed call, and the latest one is the last attempt, which an answer
  // already on the record must come after to make the call-back moot.
  for (const ResolvedCallActivity* each : missed) {
    const int64_t at = each->activity->call->call->at_unix;
    if (at > 0 && (row.first_at_unix <= 0 || at < row.first_at_unix)) {
      row.first_at_unix = at;
    }
    row.call.at_unix = std::max(row.call.at_unix, at);
  }
  row.missed_calls = static_cast<int>(missed.size());
  row.call_ids.clear();
  for (const ResolvedCallActivity* each : missed) {
    row.call_ids.push_back(each->activity->call->call->call_id);
  }
  row.completed = completed;
  row.completed_by_event_id = completed_by;
  return row;
}

}  // namespace

CallWriteResult WriteCalls(pqxx::transaction_base& work, const CallPlan& plan,
                           const std::vector<ResolvedCallActivity>& activities,
                           const std::function<int64_t(EntityKind, Ref)>& id,
                           const QueueTurns& turns) {
  // Each record's call-backs and the completions that reach it, in batch order: a completion
  // placed at position p comes after the activities before p.
  using Owner = std::pair<EntityKind, int64_t>;
  struct Segment {
    std::vector<const ResolvedCallActivity*> missed;
    bool completed = false;
    std::string completed_by;
  };
  std::map<Owner, std::vector<Segment>> segments;
  std::vector<CallActivityRow> first;  // completed calls, and each record's first call-backs
  std::vector<CallActivityRow> later;  // call-backs after a completion in this batch
  std::vector<CallBackCompletion> completed_owners;

  CallRepository calls(work);
  // The records each completion reaches through the phone it dialled (read now: the batch's
  // own records and identities are written), placed in the batch order like the records it
  // matched: a later missed call of this batch on such a record opens a call-back that the
  // completion must not close.
  std::map<std::string, std::set<Owner>> phone_holders;
  {
    std::vector<std::string> phones;
    for (const CallPlan::Completion& completion : plan.completions) {
      if (!completion.phone.empty()) phones.push_back(completion.phone);
    }
    for (const PhoneHolder& holder : calls.FindPhoneHolders(phones)) {
      phone_holders[holder.phone].insert({holder.owner, holder.owner_id});
    }
  }

  struct Step {
    size_t position;
    int order;  // 0: a completion, 1: an activity
    size_t index;
  };
  std::vector<Step> steps;
  for (size_t i = 0; i < plan.completions.size(); ++i) {
    steps.push_back({plan.completions[i].position, 0, i});
  }
  for (size_t i = 0; i < activities.size(); ++i) {
    steps.push_back({activities[i].position, 1, i});
  }
  std::stable_sort(steps.begin(), steps.end(), [](const Step& a, const Step& b) {
    return std::pair(a.position, a.order) < std::pair(b.position, b.order);
  });
  for (const Step& step : steps) {
    if (step.order == 1) {
      const ResolvedCallActivity& resolved = activities[step.index];
      if (!resolved.activity->call_back) {
        first.push_back(Row(resolved));
        continue;
      }
      auto& owned = segments[{resolved.activity->owner, resolved.owner_id}];
      if (owned.empty()) owned.emplace_back();
      owned.back().missed.push_back(&resolved);
      continue;
    }
    const CallPlan::Completion& completion = plan.completions[step.index];
    std::set<Owner> reached;
    for (const auto& [kind, ref] : completion.owners) reached.insert({kind, id(kind, ref)});
    if (auto holders = phone_holders.find(completion.phone);
        !completion.phone.empty() && holders != phone_holders.end()) {
      reached.insert(holders->second.begin(), holders->second.end());
    }
    for (const Owner& owner : reached) {
      auto& owned = segments[owner];
      if (owned.empty()) owned.emplace_back();
      if (owned.size() == 1 && !owned.front().completed) {
        // The call-back the record had before this batch, with what this batch added to it.
        completed_owners.push_back({owner.first, owner.second, completion.event_id});
      }
      owned.back().completed = true;
      owned.back().completed_by = completion.event_id;
      owned.emplace_back();
    }
  }
  for (const auto& [owner, owned] : segments) {
    for (size_t i = 0; i < owned.size(); ++i) {
      const Segment& segment = owned[i];
      if (segment.missed.empty()) continue;
      if (i == 0) {
        // Folded into the record's open call-back, if any; completed (below) like it.
        first.push_back(Fold(segment.missed, false, ""));
      } else {
        later.push_back(Fold(segment.missed, segment.completed, segment.completed_by));
      }
    }
  }

  CallWriteResult result;
  // Each call-back is first compared with what its record holds already (answered calls and
  // call-backs written by earlier batches, and by this batch's upserts before this one): a moot
  // one is written completed, with the record's responsible or else the answering call's; one
  // folded into the record's open call-back leaves that call-back's responsible as it is; only a
  // new call-back to make takes a queue's turn.
  auto upsert = [&](std::vector<CallActivityRow>& rows) {
    const std::vector<ReachedCallBack> reached = calls.FindReached(rows);
    std::vector<size_t> waiting;
    std::vector<std::string> queues;
    for (size_t i = 0; i < rows.size(); ++i) {
      CallActivityRow& row = rows[i];
      if (!reached[i].event_id.empty()) {
        row.reached_by = reached[i].event_id;
        if (row.responsible_user_id == 0) row.responsible_user_id = reached[i].responsible_user_id;
      } else if (row.responsible_user_id == 0 && !row.queue.empty() && !reached[i].open_call_back) {
        waiting.push_back(i);
        queues.push_back(row.queue);
      }
    }
    if (!queues.empty()) {
      const std::vector<int64_t> users = turns(queues);
      for (size_t k = 0; k < waiting.size() && k < users.size(); ++k) {
        rows[waiting[k]].responsible_user_id = users[k];
      }
    }
    const CallActivitiesWritten written = calls.UpsertActivities(rows);
    result.call_backs_created += written.call_backs_created;
    result.call_backs_updated += written.call_backs_updated;
    result.call_backs_completed += written.call_backs_completed;
    result.call_backs_already_reached += written.call_backs_already_reached;
  };
  upsert(first);
  CallBacksCompleted completed = calls.CompleteCallBacks(completed_owners);
  result.deals = std::move(completed.deals);
  result.call_backs_completed += completed.call_backs;
  upsert(later);
  result.unidentified = calls.InsertUnidentified(plan.unidentified);
  // After the activities and the unidentified calls: every recording of the batch's calls on
  // their lists, then the late ones (a recording in the same batch as its call finds it).
  result.recordings_dropped = calls.AddRecordings(plan.own_recordings, /*late=*/false).dropped;
  const RecordingsAdded late = calls.AddRecordings(plan.recordings, /*late=*/true);
  result.recordings_dropped += late.dropped;
  const std::set<std::string> unmatched(late.unmatched.begin(), late.unmatched.end());
  for (const auto& [call_id, url] : plan.recordings) {
    if (unmatched.count(call_id) == 0) {
      ++result.recordings_attached;
    } else if (plan.recordings_not_carried.count(call_id) == 0) {
      ++result.recordings_deferred;  // before its call: the call's event brings it
    } else {
      ++result.recordings_unmatched;
    }
  }
  for (const std::string& call_id : late.unmatched) {
    if (plan.recordings_not_carried.count(call_id) == 0) continue;
    auto event = plan.recording_events.find(call_id);
    result.recordings_unmatched_events.push_back(
        event == plan.recording_events.end() ? "" : event->second);
  }
  return result;
}

}  // namespace leadflow::crm
