#include "crm-core/store/call_repository.h"

#include <nlohmann/json.hpp>

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

void CallRepository::UpsertActivities(const std::vector<CallActivityRow>& rows) {
  if (rows.empty()) {
    return;
  }
  std::vector<std::string> owners, subjects, descriptions, events, call_ids, directions, outcomes,
      numbers, lines, operators, recordings, completed_by;
  std::vector<int64_t> owner_ids, responsible, deadlines, durations, missed;
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
  }
  work_.exec_prepared("upsert_call_activities", pg::TextArray(owners), pg::IntArray(owner_ids),
                      pg::TextArray(subjects), pg::TextArray(descriptions),
                      pg::IntArray(responsible), pg::BoolArray(completed), pg::IntArray(deadlines),
                      pg::TextArray(events), pg::BoolArray(call_back), pg::TextArray(call_ids),
                      pg::TextArray(directions), pg::TextArray(outcomes), pg::TextArray(numbers),
                      pg::TextArray(lines), pg::IntArray(durations), pg::TextArray(operators),
                      pg::TextArray(recordings), pg::IntArray(missed), pg::TextArray(completed_by));
}

std::vector<int64_t> CallRepository::CompleteCallBacks(
    const std::vector<CallBackCompletion>& owners,
    const std::vector<std::pair<std::string, std::string>>& numbers) {
  std::vector<int64_t> deals;
  if (owners.empty() && numbers.empty()) {
    return deals;
  }
  std::vector<std::string> types, owner_events, dialled, number_events;
  std::vector<int64_t> ids;
  for (const CallBackCompletion& owner : owners) {
    types.emplace_back(domain::ToString(owner.owner));
    ids.push_back(owner.owner_id);
    owner_events.push_back(Clean(owner.event_id));
  }
  for (const auto& [number, event] : numbers) {
    dialled.push_back(Clean(number));
    number_events.push_back(Clean(event));
  }
  for (const auto& row : work_.exec_prepared(
           "complete_call_backs", pg::TextArray(types), pg::IntArray(ids),
           pg::TextArray(owner_events), pg::TextArray(dialled), pg::TextArray(number_events))) {
    if (row[0].as<std::string>() == "DEAL") deals.push_back(row[1].as<int64_t>());
  }
  return deals;
}

void CallRepository::AddRecordings(const std::map<std::string, std::string>& recordings) {
  if (recordings.empty()) {
    return;
  }
  std::vector<std::string> ids, urls;
  for (const auto& [id, url] : recordings) {
    ids.push_back(Clean(id));
    urls.push_back(Clean(url));
  }
  work_.exec_prepared("add_call_recordings", pg::TextArray(ids), pg::TextArray(urls));
}

void CallRepository::InsertUnidentified(const std::vector<UnidentifiedCall>& calls) {
  if (calls.empty()) {
    return;
  }
  std::vector<std::string> call_ids, directions, outcomes, from, to, lines, operators, recordings,
      events;
  std::vector<int64_t> durations, responsible;
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
  }
  work_.exec_prepared("insert_unidentified_calls", pg::TextArray(call_ids),
                      pg::TextArray(directions), pg::TextArray(outcomes), pg::TextArray(from),
                      pg::TextArray(to), pg::TextArray(lines), pg::IntArray(durations),
                      pg::TextArray(operators), pg::TextArray(recordings),
                      pg::IntArray(responsible), pg::TextArray(events));
}

std::vector<UnidentifiedCall> CallRepository::ListUnidentified(int64_t before_id, int limit) {
  std::vector<UnidentifiedCall> calls;
  for (const auto& row : work_.exec_prepared("list_unidentified_calls", before_id, limit)) {
    UnidentifiedCall entry;
    entry.id = row[0].as<int64_t>();
    entry.call = ReadFacts(row, 1);
    entry.responsible_user_id = row[10].as<int64_t>();
    entry.origin_event_id = row[11].as<std::string>();
    entry.create_micros = row[12].as<int64_t>();
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
