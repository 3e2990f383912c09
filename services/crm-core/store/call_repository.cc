#include "crm-core/store/call_repository.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "pg/pg.h"

namespace leadflow::crm {
namespace {

std::string Clean(const std::string& text) { return pg::StripNul(text); }

domain::CallFacts ReadFacts(const pqxx::row& row, int first) {
  domain::CallFacts call;
  call.call_id = row[first].as<std::string>();
  call.direction = domain::ParseCallDirection(row[first + 1].as<std::string>())
                       .value_or(domain::CallDirection::kInbound);
  call.outcome = domain::ParseCallOutcome(row[first + 2].as<std::string>())
                     .value_or(domain::CallOutcome::kMissed);
  call.from_number = row[first + 3].as<std::string>();
  call.to_number = row[first + 4].as<std::string>();
  call.line = row[first + 5].as<std::string>();
  call.duration_seconds = row[first + 6].as<int64_t>();
  call.operator_name = row[first + 7].as<std::string>();
  call.recording_url = row[first + 8].as<std::string>();
  return call;
}

}  // namespace

std::vector<std::string> RecordingUrlsFromJson(const std::string& json) {
  std::vector<std::string> urls;
  auto parsed = nlohmann::json::parse(json, nullptr, false);
  if (parsed.is_array()) {
    for (const auto& url : parsed) {
      if (url.is_string()) urls.push_back(url.get<std::string>());
    }
  }
  return urls;
}

namespace {

std::map<std::string, std::string> ParseLineQueues(const std::string& json) {
  std::map<std::string, std::string> queues;
  auto parsed = nlohmann::json::parse(json, nullptr, false);
  if (parsed.is_object()) {
    for (const auto& [line, queue] : parsed.items()) {
      if (queue.is_string()) queues[line] = queue.get<std::string>();
    }
  }
  return queues;
}

}  // namespace

domain::CallSettings CallRepository::ReadSettings() {
  pqxx::row row = work_.exec_prepared1("read_call_settings");
  domain::CallSettings settings;
  settings.call_back_sla = std::chrono::minutes(row[0].as<int64_t>());
  settings.outbound_creates_lead = row[1].as<bool>();
  settings.line_queues = ParseLineQueues(row[2].as<std::string>());
  return settings;
}

CallOperators CallRepository::FindOperators(const std::vector<std::string>& extensions,
                                            const std::vector<std::string>& emails) {
  CallOperators operators;
  if (extensions.empty() && emails.empty()) {
    return operators;
  }
  for (const auto& row :
       work_.exec_prepared("call_operators", pg::TextArray(extensions), pg::TextArray(emails))) {
    (row[0].as<std::string>() == "EXTENSION" ? operators.by_extension
                                             : operators.by_email)[row[1].as<std::string>()] =
        row[2].as<int64_t>();
  }
  return operators;
}

CallActivitiesWritten CallRepository::UpsertActivities(const std::vector<CallActivityRow>& rows) {
  CallActivitiesWritten written;
  if (rows.empty()) {
    return written;
  }
  std::vector<std::string> owners, subjects, descriptions, events, call_ids, directions, outcomes,
      numbers, lines, operators, recordings, completed_by, reached_by;
  std::vector<int64_t> owner_ids, responsible, deadlines, durations, missed, first_at, last_at,
      started, answered, ended;
  std::vector<bool> completed, call_back;
  for (const CallActivityRow& row : rows) {
    owners.emplace_back(domain::ToString(row.owner));
    owner_ids.push_back(row.owner_id);
    subjects.push_back(Clean(row.subject));
    descriptions.push_back(Clean(row.description));
    responsible.push_back(row.responsible_user_id);
    completed.push_back(row.completed);
    deadlines.push_back(row.deadline_minutes);
    events.push_back(Clean(row.origin_event_id));
    call_back.push_back(row.call_back);
    call_ids.push_back(Clean(row.call.call_id));
    directions.emplace_back(domain::ToString(row.call.direction));
    outcomes.emplace_back(domain::ToString(row.call.outcome));
    numbers.push_back(Clean(row.call.Counterpart()));
    lines.push_back(Clean(row.call.line));
    durations.push_back(row.call.duration_seconds);
    operators.push_back(
        Clean(row.call.operator_name.empty() ? row.call.extension : row.call.operator_name));
    recordings.push_back(Clean(row.call.recording_url));
    missed.push_back(row.missed_calls);
    completed_by.push_back(Clean(row.completed_by_event_id));
    first_at.push_back(row.first_at_unix);
    last_at.push_back(row.call.at_unix);
    started.push_back(row.call.started_unix);
    answered.push_back(row.call.answered_unix);
    ended.push_back(row.call.ended_unix);
    reached_by.push_back(Clean(row.reached_by));
  }
  const pqxx::result result = work_.exec_prepared(
      "upsert_call_activities", pg::TextArray(owners), pg::IntArray(owner_ids),
      pg::TextArray(subjects), pg::TextArray(descriptions), pg::IntArray(responsible),
      pg::BoolArray(completed), pg::IntArray(deadlines), pg::TextArray(events),
      pg::BoolArray(call_back), pg::TextArray(call_ids), pg::TextArray(directions),
      pg::TextArray(outcomes), pg::TextArray(numbers), pg::TextArray(lines),
      pg::IntArray(durations), pg::TextArray(operators), pg::TextArray(recordings),
      pg::IntArray(missed), pg::TextArray(completed_by), pg::IntArray(first_at),
      pg::IntArray(last_at), pg::IntArray(started), pg::IntArray(answered), pg::IntArray(ended),
      pg::TextArray(reached_by));

  // Which activity each row became. RETURNING does not keep the input's order, so rows are
  // found by what is unique among one execution's rows: an open call-back by its record (it
  // may have been folded into the one the record had, with that one's event id), anything
  // else by record, event and kind.
  using OpenKey = std::pair<std::string, int64_t>;
  using Key = std::tuple<std::string, int64_t, std::string, bool>;
  struct Written {
    int64_t id = 0;
    bool inserted = false;
  };
  std::map<OpenKey, Written> open_ids;
  std::map<Key, Written> ids;
  for (const auto& row : result) {
    const Written written_row{row[0].as<int64_t>(), row[6].as<bool>()};
    const bool is_call_back = row[4].as<bool>();
    const bool is_completed = row[5].as<bool>();
    if (is_call_back && !is_completed) {
      open_ids[{row[1].as<std::string>(), row[2].as<int64_t>()}] = written_row;
    } else {
      ids[{row[1].as<std::string>(), row[2].as<int64_t>(), row[3].as<std::string>(),
           is_call_back}] = written_row;
    }
  }
  std::map<std::string, int64_t> holder;  // call id → activity; the batch's last wins
  for (size_t i = 0; i < rows.size(); ++i) {
    const CallActivityRow& row = rows[i];
    Written found_row;
    if (row.call_back && !row.completed) {
      if (auto found = open_ids.find({owners[i], row.owner_id}); found != open_ids.end()) {
        found_row = found->second;
      } else if (auto done = ids.find({owners[i], row.owner_id, events[i], true});
                 done != ids.end()) {
        // Written completed: its missed calls came before an answered call of the record.
        found_row = done->second;
      }
    } else if (auto found = ids.find({owners[i], row.owner_id, events[i], row.call_back});
               found != ids.end()) {
      found_row = found->second;
    }
    const int64_t id = found_row.id;
    if (row.call_back && id != 0 && !row.completed && !row.reached_by.empty()) {
      // Nobody was asked to call back: counted apart, once per missed call, never as made or
      // completed.
      written.call_backs_already_reached += static_cast<size_t>(std::max(row.missed_calls, 1));
    } else if (row.call_back && id != 0) {
      if (row.completed) ++written.call_backs_completed;  // by a completion of the batch
      // Every missed call the row folds counts: the first makes a new call-back, each other one
      // (and all of them, folded into the record's open call-back) updates one.
      const size_t missed = static_cast<size_t>(std::max(row.missed_calls, 1));
      if (found_row.inserted) {
        ++written.call_backs_created;
        written.call_backs_updated += missed - 1;
      } else {
        written.call_backs_updated += missed;
      }
    }
    if (id == 0) continue;  // not written (cannot happen: every row inserts or updates)
    for (const std::string& call_id : row.call_ids) {
      if (!call_id.empty()) holder[Clean(call_id)] = id;
    }
  }
  if (!holder.empty()) {
    std::vector<std::string> held_ids;
    std::vector<int64_t> activities;
    for (const auto& [call_id, activity] : holder) {
      held_ids.push_back(call_id);
      activities.push_back(activity);
    }
    work_.exec_prepared0("insert_activity_calls", pg::TextArray(held_ids),
                         pg::IntArray(activities));
  }
  return written;
}

std::vector<ReachedCallBack> CallRepository::FindReached(const std::vector<CallActivityRow>& rows) {
  std::vector<ReachedCallBack> reached(rows.size());
  std::vector<std::string> owners;
  std::vector<int64_t> owner_ids, at, index;
  for (size_t i = 0; i < rows.size(); ++i) {
    const CallActivityRow& row = rows[i];
    if (!row.call_back || row.completed) continue;
    owners.emplace_back(domain::ToString(row.owner));
    owner_ids.push_back(row.owner_id);
    at.push_back(row.call.at_unix);
    index.push_back(static_cast<int64_t>(i));
  }
  if (owners.empty()) {
    return reached;
  }
  for (const auto& row : work_.exec_prepared("reached_call_backs", pg::TextArray(owners),
                                             pg::IntArray(owner_ids), pg::IntArray(at))) {
    const int64_t ordinal = row[0].as<int64_t>();  // 1-based, of the rows asked about
    if (ordinal < 1 || ordinal > static_cast<int64_t>(index.size())) continue;
    reached[static_cast<size_t>(index[static_cast<size_t>(ordinal - 1)])] = {
        row[1].as<std::string>(), row[2].as<int64_t>(), row[3].as<bool>()};
  }
  return reached;
}

std::vector<PhoneHolder> CallRepository::FindPhoneHolders(const std::vector<std::string>& phones) {
  std::vector<PhoneHolder> holders;
  if (phones.empty()) {
    return holders;
  }
  std::vector<std::string> values;
  for (const std::string& phone : phones) {
    values.push_back(Clean(phone));
  }
  for (const auto& row : work_.exec_prepared("call_phone_holders", pg::TextArray(values))) {
    const std::string type = row[0].as<std::string>();
    PhoneHolder holder;
    holder.owner = type == "LEAD"      ? domain::EntityKind::kLead
                   : type == "CONTACT" ? domain::EntityKind::kContact
                   : type == "COMPANY" ? domain::EntityKind::kCompany
                                       : domain::EntityKind::kDeal;
    holder.owner_id = row[1].as<int64_t>();
    holder.phone = row[2].as<std::string>();
    holders.push_back(std::move(holder));
  }
  return holders;
}

std::vector<OpenCallBack> CallRepository::OpenCallBacks(const std::string& owner_type,
                                                        const std::vector<int64_t>& owner_ids) {
  std::vector<OpenCallBack> open;
  if (owner_ids.empty()) {
    return open;
  }
  for (const auto& row :
       work_.exec_prepared("open_call_backs", owner_type, pg::IntArray(owner_ids))) {
    open.push_back({row[0].as<int64_t>(), row[1].as<int64_t>(), row[2].as<int64_t>(),
                    row[3].as<int64_t>(), RecordingUrlsFromJson(row[4].as<std::string>())});
  }
  return open;
}

int64_t RecordingsLeftOutByFold(const std::vector<OpenCallBack>& before, const OpenCallBack& kept) {
  const std::set<std::string> held(kept.recording_urls.begin(), kept.recording_urls.end());
  int64_t left_out = 0;
  for (const OpenCallBack& folded : before) {
    if (folded.activity_id == kept.activity_id) continue;  // moved over as it was
    std::set<std::string> missing;
    for (const std::string& url : folded.recording_urls) {
      if (!url.empty() && held.count(url) == 0) missing.insert(url);
    }
    left_out += static_cast<int64_t>(missing.size());
  }
  return left_out;
}

CallBacksCompleted CallRepository::CompleteCallBacks(
    const std::vector<CallBackCompletion>& owners) {
  CallBacksCompleted completed;
  if (owners.empty()) {
    return completed;
  }
  std::vector<std::string> types, owner_events;
  std::vector<int64_t> ids;
  for (const CallBackCompletion& owner : owners) {
    types.emplace_back(domain::ToString(owner.owner));
    ids.push_back(owner.owner_id);
    owner_events.push_back(Clean(owner.event_id));
  }
  for (const auto& row : work_.exec_prepared("complete_call_backs", pg::TextArray(types),
                                             pg::IntArray(ids), pg::TextArray(owner_events))) {
    ++completed.call_backs;
    if (row[0].as<std::string>() == "DEAL") completed.deals.push_back(row[1].as<int64_t>());
  }
  return completed;
}

RecordingsAdded CallRepository::AddRecordings(
    const std::vector<std::pair<std::string, std::string>>& recordings, bool late) {
  RecordingsAdded added;
  if (recordings.empty()) {
    return added;
  }
  std::vector<std::string> ids, urls;
  for (const auto& [id, url] : recordings) {
    if (url.empty()) continue;
    ids.push_back(Clean(id));
    urls.push_back(Clean(url));
  }
  std::set<std::string> matched;
  for (const auto& row :
       work_.exec_prepared("add_call_recordings", pg::TextArray(ids), pg::TextArray(urls),
                           domain::kMaxRecordingsPerCall, late)) {
    if (row[0].is_null()) {
      added.dropped += static_cast<size_t>(row[1].as<int64_t>());
    } else {
      matched.insert(row[0].as<std::string>());
    }
  }
  std::set<std::string> seen;
  for (const std::string& id : ids) {
    if (matched.count(id) == 0 && seen.insert(id).second) added.unmatched.push_back(id);
  }
  return added;
}

size_t CallRepository::PruneUnidentified(int retention_days, int limit) {
  return work_.exec_prepared("prune_unidentified_calls", retention_days, limit).size();
}

size_t CallRepository::InsertUnidentified(const std::vector<UnidentifiedCall>& calls) {
  if (calls.empty()) {
    return 0;
  }
  std::vector<std::string> call_ids, directions, outcomes, from, to, lines, operators, recordings,
      events, reasons;
  std::vector<int64_t> durations, responsible, started, answered, ended;
  for (const UnidentifiedCall& entry : calls) {
    const domain::CallFacts& call = entry.call;
    call_ids.push_back(Clean(call.call_id));
    directions.emplace_back(domain::ToString(call.direction));
    outcomes.emplace_back(domain::ToString(call.outcome));
    from.push_back(Clean(call.from_number));
    to.push_back(Clean(call.to_number));
    lines.push_back(Clean(call.line));
    durations.push_back(call.duration_seconds);
    operators.push_back(Clean(call.operator_name.empty() ? call.extension : call.operator_name));
    recordings.push_back(Clean(call.recording_url));
    responsible.push_back(entry.responsible_user_id);
    events.push_back(Clean(entry.origin_event_id));
    reasons.emplace_back(domain::ToString(entry.reason));
    started.push_back(call.started_unix);
    answered.push_back(call.answered_unix);
    ended.push_back(call.ended_unix);
  }
  return work_
      .exec_prepared("insert_unidentified_calls", pg::TextArray(call_ids),
                     pg::TextArray(directions), pg::TextArray(outcomes), pg::TextArray(from),
                     pg::TextArray(to), pg::TextArray(lines), pg::IntArray(durations),
                     pg::TextArray(operators), pg::TextArray(recordings), pg::IntArray(responsible),
                     pg::TextArray(events), pg::TextArray(reasons), pg::IntArray(started),
                     pg::IntArray(answered), pg::IntArray(ended))
      .affected_rows();
}

std::vector<UnidentifiedCall> CallRepository::ListUnidentified(
    int64_t before_id, int limit, std::optional<domain::UnidentifiedReason> reason) {
  std::vector<UnidentifiedCall> calls;
  const std::string only(reason ? domain::ToString(*reason) : "");
  for (const auto& row : work_.exec_prepared("list_unidentified_calls", before_id, limit, only)) {
    UnidentifiedCall entry;
    entry.id = row[0].as<int64_t>();
    entry.call = ReadFacts(row, 1);
    entry.responsible_user_id = row[10].as<int64_t>();
    entry.origin_event_id = row[11].as<std::string>();
    entry.create_micros = row[12].as<int64_t>();
    entry.call.recording_urls = RecordingUrlsFromJson(row[13].as<std::string>());
    entry.reason = domain::ParseUnidentifiedReason(row[14].as<std::string>())
                       .value_or(domain::UnidentifiedReason::kWithheld);
    entry.call.started_unix = row[15].as<int64_t>();
    entry.call.answered_unix = row[16].as<int64_t>();
    entry.call.ended_unix = row[17].as<int64_t>();
    calls.push_back(std::move(entry));
  }
  return calls;
}

StoredCallSettings CallRepository::GetSettings() {
  pqxx::row row = work_.exec_prepared1("read_call_settings");
  return {row[0].as<int64_t>(), row[1].as<bool>(), ParseLineQueues(row[2].as<std::string>())};
}

void CallRepository::UpdateSettings(const StoredCallSettings& settings, bool line_queues) {
  work_.exec_prepared0("update_call_settings", settings.call_back_sla_minutes,
                       settings.outbound_creates_lead);
  if (line_queues) {
    work_.exec_prepared0("delete_call_line_queues");
    for (const auto& [line, key] : settings.line_queues) {
      work_.exec_prepared0("ensure_queue", key);
      work_.exec_prepared0("insert_call_line_queue", Clean(line), key);
    }
  }
}

}  // namespace leadflow::crm
