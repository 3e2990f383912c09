#include "crm-core/inbound/mode_switch.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "crm-core/domain/naming/naming.h"
#include "crm-core/store/history_repository.h"
#include "crm-core/store/inbound_repository.h"
#include "crm-core/store/mode_switch_repository.h"
#include "crm-core/store/repositories.h"
#include "crm-core/store/statements.h"
#include "pg/pg.h"

namespace leadflow::crm {

ModeSwitchCounters::ModeSwitchCounters(metrics::Registry& registry)
    : steps(registry
                .AddCounter("crm_mode_switch_steps_total",
                            "Committed steps (bounded batches) of CRM mode switch jobs")
                .WithLabels({})),
      leads_converted(registry
                          .AddCounter("crm_mode_switch_leads_converted_total",
                                      "Open leads converted into contact + deal by the classic → "
                                      "simple switch")
                          .WithLabels({})),
      jobs_finished(
          registry.AddCounter("crm_mode_switch_jobs_finished_total", "Mode switch jobs finished")
              .WithLabels({})),
      failures(registry
                   .AddCounter("crm_mode_switch_failures_total",
                               "Mode switch steps that failed and were rolled back")
                   .WithLabels({})) {}

absl::StatusOr<bool> RunModeSwitchStep(pqxx::connection& connection, int64_t batch_leads,
                                       ModeSwitchCounters& counters) {
  pqxx::work work(connection);
  ModeSwitchRepository jobs(work);
  std::optional<ModeSwitchJobRow> job = jobs.ClaimRunning();
  if (!job) {
    return false;
  }
  if (job->to_mode != "SIMPLE") {
    // Back to classic: nothing to convert; the consumer makes leads from its next batch.
    jobs.Advance(job->id, job->last_lead_id, 0, job->total, true);
    work.commit();
    counters.jobs_finished.Increment();
    return true;
  }
  const int64_t total =
      job->total > 0 ? job->total : job->done + jobs.CountOpenLeadsAfter(job->last_lead_id);
  std::vector<IdentityKey> identities;
  const std::vector<int64_t> ids = jobs.NextOpenLeads(job->last_lead_id, batch_leads, identities);
  if (ids.empty()) {
    jobs.Advance(job->id, job->last_lead_id, 0, total, true);
    work.commit();
    counters.jobs_finished.Increment();
    spdlog::info("mode switch job {} done: {} leads converted", job->id, job->done);
    return true;
  }
  // The consumer may be deciding about these people right now: take their identity locks (in
  // the consumer's global order) before reading the leads' state.
  std::vector<std::string> lock_keys;
  for (const IdentityKey& key : identities) {
    lock_keys.push_back(IdentityLockKey(key));
  }
  EventRepository(work).LockIdentities(lock_keys);
  const std::vector<OpenLeadRow> leads = jobs.LockOpen(ids);

  InboundRepository inbound(work);
  const InboundSettings settings = inbound.ReadSettings();
  if (settings.inbound_first_stage_id.empty()) {
    return absl::FailedPreconditionError("the inbound pipeline has no PROCESS stage");
  }
  size_t new_contacts = 0;
  for (const OpenLeadRow& lead : leads) {
    new_contacts += lead.contact_id == 0 ? 1 : 0;
  }
  const std::vector<int64_t> contact_ids = inbound.AllocateContactIds(new_contacts);
  const std::vector<int64_t> deal_ids = inbound.AllocateDealIds(leads.size());
  std::vector<NewContactRow> contacts;
  std::vector<NewDealRow> deals;
  std::vector<int64_t> lead_contact;
  std::vector<HistoryRecord> history;
  size_t next_contact = 0;
  for (size_t i = 0; i < leads.size(); ++i) {
    const OpenLeadRow& lead = leads[i];
    int64_t contact = lead.contact_id;
    if (contact == 0) {
      contact = contact_ids[next_contact++];
      domain::PersonName name =
          domain::ContactName(lead.first_name, lead.last_name, settings.last_name_placeholder);
      contacts.push_back({contact, std::move(name.first), std::move(name.last),
                          lead.responsible_user_id, lead.source, "", lead.origin_event_id});
      history.push_back(HistoryRecord::Of(domain::EntityKind::kContact, contact, "CREATED")
                            .RelatedTo({domain::EntityKind::kLead, lead.id}));
    }
    lead_contact.push_back(contact);
    const std::string title = lead.title.find_first_not_of(" \t") == std::string::npos
                                  ? "Deal from lead " + std::to_string(lead.id)
                                  : lead.title;
    deals.push_back({.id = deal_ids[i],
                     .title = title,
                     .pipeline_id = settings.inbound_pipeline_id,
                     .stage_id = settings.inbound_first_stage_id,
                     .company_id = lead.company_id,
                     .contact_id = contact,
                     .responsible_user_id = lead.responsible_user_id,
                     .source_id = lead.source,
                     .lead_id = lead.id,
                     .origin_event_id = lead.origin_event_id});
    history.push_back(HistoryRecord::Of(domain::EntityKind::kDeal, deal_ids[i], "CREATED")
                          .RelatedTo({domain::EntityKind::kLead, lead.id}));
    history.push_back(HistoryRecord::Of(domain::EntityKind::kLead, lead.id, "CONVERTED")
                          .RelatedTo({domain::EntityKind::kDeal, deal_ids[i]}));
  }
  inbound.InsertContacts(contacts);
  inbound.InsertDeals(deals);
  for (size_t i = 0; i < leads.size(); ++i) {
    jobs.CopyIdentitiesToContact(leads[i].id, lead_contact[i]);
    jobs.MoveActivitiesToDeal(leads[i].id, deal_ids[i]);
    jobs.MarkConverted(leads[i].id, lead_contact[i], deal_ids[i]);
  }
  HistoryRepository(work).Append(history);
  jobs.Advance(job->id, ids.back(), static_cast<int64_t>(leads.size()), total, false);
  work.commit();
  counters.steps.Increment();
  counters.leads_converted.Increment(static_cast<double>(leads.size()));
  return true;
}

ModeSwitchRunner::ModeSwitchRunner(ModeSwitchOptions options, ModeSwitchCounters& counters,
                                   const std::atomic<bool>& stop)
    : options_(std::move(options)), counters_(counters), stop_(stop) {
  thread_ = std::thread([this] { Run(); });
}

ModeSwitchRunner::~ModeSwitchRunner() { Join(); }

void ModeSwitchRunner::Join() {
  if (thread_.joinable()) {
    thread_.join();
  }
}

void ModeSwitchRunner::Run() {
  std::unique_ptr<pqxx::connection> connection;
  // Waits `pause` unless stopped, in short slices so that shutdown is never held.
  auto wait = [&](std::chrono::milliseconds pause) {
    const auto until = std::chrono::steady_clock::now() + pause;
    while (!stop_ && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  };
  while (!stop_) {
    absl::StatusOr<bool> worked;
    try {
      if (!connection || !connection->is_open()) {
        connection = std::make_unique<pqxx::connection>(options_.database_url);
        pg::PrepareAll(*connection, Statements());
      }
      worked = RunModeSwitchStep(*connection, options_.batch_leads, counters_);
    } catch (const std::exception& error) {
      worked = pg::ToStatus(error);
      connection.reset();
    }
    if (!worked.ok()) {
      counters_.failures.Increment();
      spdlog::warn("mode switch step failed ({}); retrying", worked.status().ToString());
      wait(options_.poll);
    } else if (!*worked) {
      wait(options_.poll);
    }
  }
}

}  // namespace leadflow::crm
