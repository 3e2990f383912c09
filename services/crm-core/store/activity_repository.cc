#include "crm-core/store/call_repository.h"
#include "crm-core/store/repositories.h"
#include "pg/pg.h"

namespace leadflow::crm {
namespace {

// A row of select_activity / list_activities (store/sql/_activity_columns.sql).
Activity ReadActivity(const pqxx::row& row) {
  Activity activity;
  activity.id = row[0].as<int64_t>();
  activity.type = row[1].as<std::string>();
  activity.owner_type = row[2].as<std::string>();
  activity.owner_id = row[3].as<int64_t>();
  activity.subject = row[4].as<std::string>();
  activity.description = row[5].as<std::string>();
  activity.responsible_user_id = row[6].as<int64_t>();
  activity.completed = row[7].as<bool>();
  if (!row[8].is_null()) activity.deadline_micros = row[8].as<int64_t>();
  activity.create_micros = row[9].as<int64_t>();
  activity.complete_micros = row[10].as<int64_t>();
  activity.origin_event_id = row[11].as<std::string>();
  if (row[12].as<bool>()) {
    Activity::Call call;
    call.facts.call_id = row[13].as<std::string>();
    call.facts.direction = domain::ParseCallDirection(row[14].as<std::string>())
                               .value_or(domain::CallDirection::kInbound);
    call.facts.outcome =
        domain::ParseCallOutcome(row[15].as<std::string>()).value_or(domain::CallOutcome::kMissed);
    // The other party's number, whichever side of the call it was on.
    (call.facts.direction == domain::CallDirection::kOutbound ? call.facts.to_number
                                                              : call.facts.from_number) =
        row[16].as<std::string>();
    call.facts.line = row[17].as<std::string>();
    call.facts.duration_seconds = row[18].as<int64_t>();
    call.facts.operator_name = row[19].as<std::string>();
    call.facts.recording_url = row[20].as<std::string>();
    call.call_back = row[21].as<bool>();
    call.missed_calls = row[22].as<int64_t>();
    call.last_attempt_micros = row[23].as<int64_t>();
    call.completed_by_event_id = row[24].as<std::string>();
    call.facts.recording_urls = RecordingUrlsFromJson(row[25].as<std::string>());
    call.facts.started_unix = row[26].as<int64_t>();
    call.facts.answered_unix = row[27].as<int64_t>();
    call.facts.ended_unix = row[28].as<int64_t>();
    activity.call = std::move(call);
  }
  activity.version = row[29].as<int64_t>();
  return activity;
}

}  // namespace

std::optional<Activity> ActivityRepository::Get(int64_t id) {
  pqxx::result rows = work_.exec_prepared("select_activity", id);
  if (rows.empty()) {
    return std::nullopt;
  }
  return ReadActivity(rows[0]);
}

std::vector<Activity> ActivityRepository::List(const Filter& filter, int64_t before_id, int limit) {
  std::vector<Activity> activities;
  for (const auto& row : work_.exec_prepared(
           "list_activities", filter.owner_type, filter.owner_id, filter.responsible_user_id,
           static_cast<int>(filter.completion), before_id, limit, filter.overdue_only)) {
    activities.push_back(ReadActivity(row));
  }
  return activities;
}

int64_t ActivityRepository::Insert(const Activity& activity,
                                   std::optional<int64_t> complete_micros) {
  return work_
      .exec_prepared1("insert_activity", activity.type, activity.owner_type, activity.owner_id,
                      activity.subject, activity.description, activity.responsible_user_id,
                      activity.deadline_micros.has_value(), activity.deadline_micros.value_or(0),
                      activity.completed, complete_micros.has_value(),
                      complete_micros.value_or(0))[0]
      .as<int64_t>();
}

std::optional<int64_t> ActivityRepository::Lock(int64_t id) {
  pqxx::result rows = work_.exec_prepared("lock_activity", id);
  if (rows.empty()) {
    return std::nullopt;
  }
  return rows[0][0].as<int64_t>();
}

void ActivityRepository::Update(const Activity& activity, bool deadline_changed) {
  work_.exec_prepared0("update_activity", activity.id, activity.subject, activity.description,
                       activity.responsible_user_id, activity.deadline_micros.has_value(),
                       activity.deadline_micros.value_or(0), activity.completed, deadline_changed);
}

void ActivityRepository::Delete(int64_t id) { work_.exec_prepared0("delete_activity", id); }

int64_t ActivityRepository::OtherOpenCallBack(const std::string& owner_type, int64_t owner_id,
                                              int64_t except_id) {
  pqxx::result rows = work_.exec_prepared("other_open_call_back", owner_type, owner_id, except_id);
  return rows.empty() ? 0 : rows[0][0].as<int64_t>();
}

bool ActivityRepository::Complete(int64_t id) {
  return !work_.exec_prepared("complete_activity", id).empty();
}

void ActivityRepository::InsertInbound(const std::vector<Activity>& activities,
                                       const std::vector<int64_t>& deadline_minutes) {
  if (activities.empty()) {
    return;
  }
  std::vector<std::string> type, subject, description, origin;
  std::vector<int64_t> owner, responsible;
  std::vector<bool> completed;
  for (const Activity& activity : activities) {
    type.push_back(activity.type);
    owner.push_back(activity.owner_id);
    subject.push_back(pg::StripNul(activity.subject));
    description.push_back(pg::StripNul(activity.description));
    responsible.push_back(activity.responsible_user_id);
    completed.push_back(activity.completed);
    origin.push_back(activity.origin_event_id);
  }
  work_.exec_prepared("insert_inbound_activities", pg::TextArray(type), pg::IntArray(owner),
                      pg::TextArray(subject), pg::TextArray(description),
                      pg::IdArrayZeroNull(responsible), pg::BoolArray(completed),
                      pg::IntArray(deadline_minutes), pg::TextArray(origin));
}

}  // namespace leadflow::crm
