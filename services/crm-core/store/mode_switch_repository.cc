#include "crm-core/store/mode_switch_repository.h"

#include "pg/pg.h"

namespace leadflow::crm {

std::optional<ModeSwitchJobRow> ModeSwitchRepository::ClaimRunning() {
  pqxx::result rows = work_.exec_prepared("claim_mode_switch_job");
  if (rows.empty()) {
    return std::nullopt;
  }
  return ModeSwitchJobRow{rows[0][0].as<int64_t>(), rows[0][1].as<std::string>(),
                          rows[0][2].as<int64_t>(), rows[0][3].as<int64_t>(),
                          rows[0][4].as<int64_t>()};
}

int64_t ModeSwitchRepository::CountOpenLeadsAfter(int64_t lead_id) {
  return work_.exec_prepared1("mode_switch_count_open_leads_after", lead_id)[0].as<int64_t>();
}

std::vector<int64_t> ModeSwitchRepository::NextOpenLeads(int64_t lead_id, int64_t limit,
                                                         std::vector<IdentityKey>& identities) {
  std::vector<int64_t> ids;
  for (const auto& row : work_.exec_prepared("mode_switch_next_open_leads", lead_id, limit)) {
    const int64_t id = row[0].as<int64_t>();
    if (ids.empty() || ids.back() != id) {
      ids.push_back(id);
    }
    if (!row[1].as<std::string>().empty()) {
      identities.push_back({row[1].as<std::string>(), row[2].as<std::string>()});
    }
  }
  return ids;
}

std::vector<OpenLeadRow> ModeSwitchRepository::LockOpen(const std::vector<int64_t>& ids) {
  std::vector<OpenLeadRow> leads;
  for (const auto& row : work_.exec_prepared("mode_switch_lock_open_leads", pg::IntArray(ids))) {
    leads.push_back({row[0].as<int64_t>(), row[1].as<std::string>(), row[2].as<std::string>(),
                     row[3].as<std::string>(), row[4].as<int64_t>(), row[5].as<std::string>(),
                     row[6].as<int64_t>(), row[7].as<int64_t>(), row[8].as<std::string>(),
                     row[9].as<std::string>()});
  }
  return leads;
}

std::map<int64_t, std::pair<int64_t, int64_t>> ModeSwitchRepository::Holders(
    const std::vector<int64_t>& ids) {
  std::map<int64_t, std::pair<int64_t, int64_t>> holders;
  for (const auto& row : work_.exec_prepared("mode_switch_lead_holders", pg::IntArray(ids))) {
    holders[row[0].as<int64_t>()] = {row[1].as<int64_t>(), row[2].as<int64_t>()};
  }
  return holders;
}

std::vector<IdentityKey> ModeSwitchRepository::LeadIdentities(int64_t lead_id) {
  std::vector<IdentityKey> keys;
  for (const auto& row : work_.exec_prepared("mode_switch_lead_identities", lead_id)) {
    keys.push_back({row[0].as<std::string>(), row[1].as<std::string>()});
  }
  return keys;
}

void ModeSwitchRepository::CopyIdentitiesToContact(int64_t lead_id, int64_t contact_id) {
  work_.exec_prepared("mode_switch_copy_lead_identities_to_contact", lead_id, contact_id);
}

void ModeSwitchRepository::MoveActivitiesToDeal(int64_t lead_id, int64_t deal_id) {
  work_.exec_prepared("mode_switch_move_lead_activities_to_deal", lead_id, deal_id);
}

void ModeSwitchRepository::MarkConverted(int64_t lead_id, int64_t contact_id, int64_t deal_id,
                                         int64_t company_id) {
  work_.exec_prepared("mode_switch_mark_lead_converted", lead_id, contact_id, deal_id, company_id);
}

std::string ModeSwitchRepository::SuccessStatus() {
  pqxx::result rows = work_.exec_prepared("mode_switch_success_status");
  return rows.empty() ? std::string() : rows[0][0].as<std::string>();
}

void ModeSwitchRepository::Advance(int64_t job_id, int64_t last_lead_id, int64_t converted,
                                   int64_t total, bool finished,
                                   const std::vector<int64_t>& skipped,
                                   const std::string& failure) {
  work_.exec_prepared("advance_mode_switch_job", job_id, last_lead_id, converted, total, finished,
                      pg::IntArray(skipped), failure);
}

}  // namespace leadflow::crm
