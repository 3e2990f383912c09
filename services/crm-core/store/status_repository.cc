#include "crm-core/store/repositories.h"

namespace leadflow::crm {

void StatusRepository::Lock() {
  work_.exec_prepared("lock_status_list", statuses() ? "lead_statuses" : "lead_sources");
}

std::vector<StatusEntry> StatusRepository::List() {
  std::vector<StatusEntry> entries;
  for (const auto& row :
       work_.exec_prepared(statuses() ? "list_lead_statuses" : "list_lead_sources")) {
    entries.push_back(StatusEntry{.id = row[0].as<std::string>(),
                                  .name = row[1].as<std::string>(),
                                  .sort = row[2].as<int>(),
                                  .semantics = ParseSemantics(row[3].as<std::string>()),
                                  .system = row[4].as<bool>()});
  }
  return entries;
}

bool StatusRepository::Exists(const std::string& id) {
  return !work_.exec_prepared(statuses() ? "lead_status_exists" : "lead_source_exists", id).empty();
}

std::optional<StatusEntry> StatusRepository::Get(const std::string& id) {
  for (StatusEntry& entry : List()) {
    if (entry.id == id) {
      return std::move(entry);
    }
  }
  return std::nullopt;
}

std::string StatusRepository::SuccessStatusId() {
  for (const StatusEntry& entry : List()) {
    if (entry.semantics == Semantics::kSuccess) {
      return entry.id;
    }
  }
  return "";
}

void StatusRepository::Insert(const StatusEntry& status) {
  if (statuses()) {
    work_.exec_prepared("insert_lead_status", status.id, status.name, status.sort,
                        std::string(ToString(status.semantics.value_or(Semantics::kProcess))));
  } else {
    work_.exec_prepared("insert_lead_source", status.id, status.name, status.sort);
  }
}

void StatusRepository::Update(const StatusEntry& status) {
  if (statuses()) {
    work_.exec_prepared("update_lead_status", status.id, status.name, status.sort,
                        std::string(ToString(status.semantics.value_or(Semantics::kProcess))));
  } else {
    work_.exec_prepared("update_lead_source", status.id, status.name, status.sort);
  }
}

void StatusRepository::Delete(const std::string& id) {
  work_.exec_prepared(statuses() ? "delete_lead_status" : "delete_lead_source", id);
}

void StatusRepository::LockEntry(const std::string& id) {
  work_.exec_prepared(statuses() ? "lock_lead_status_row" : "lock_lead_source_row", id);
}

int64_t StatusRepository::CountUsing(const std::string& id) {
  return work_
      .exec_prepared1(statuses() ? "count_leads_with_status" : "count_leads_with_source", id)[0]
      .as<int64_t>();
}

}  // namespace leadflow::crm
