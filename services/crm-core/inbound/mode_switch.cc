#include "crm-core/inbound/mode_switch.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "crm-core/domain/history/deal_birth.h"
#include "crm-core/domain/naming/naming.h"
#include "crm-core/store/history_repository.h"
#include "crm-core/store/inbound_repository.h"
#include "crm-core/store/mode_switch_repository.h"
#include "crm-core/store/people_repository.h"
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
                   .WithLabels({})),
      leads_skipped(registry
                        .AddCounter("crm_mode_switch_leads_skipped_total",
                                    "Open leads the classic → simple switch could not convert "
                                    "(refused by a constraint) and skipped")
                        .WithLabels({})),
      identities_not_copied(
          registry
              .AddCounter("crm_mode_switch_identities_not_copied_total",
                          "Phones, emails and messenger ids of leads the classic → simple switch "
                          "converted into an existing contact, left off it because another "
                          "contact holds them")
              .WithLabels({})),
      identities_capped(
          registry
              .AddCounter("crm_mode_switch_identities_capped_total",
                          "Phones, emails and messenger ids of leads the classic → simple switch "
                          "converted into an existing contact, left off it because the contact "
                          "reached the identity cap (CRM_LEAD_MAX_INBOUND_IDENTITIES)")
              .WithLabels({})) {}

namespace {

// A lead whose conversion the data refuses: an integrity constraint (class 23) or a value out of
// range (class 22). Retrying changes nothing for those, so the lead is skipped.
bool SkipsTheLead(const std::string& sqlstate) {
  return sqlstate.starts_with("23") || sqlstate.starts_with("22");
}

}  // namespace

absl::StatusOr<bool> RunModeSwitchStep(pqxx::connection& connection, int64_t batch_leads,
                                       ModeSwitchCounters& counters, size_t max_identities) {
  pqxx::work work(connection);
  ModeSwitchRepository jobs(work);
  std::optional<ModeSwitchJobRow> job = jobs.ClaimRunning();
  if (!job) {
    return false;
  }
  if (job->to_mode != "SIMPLE") {
    // Back to classic: nothing to convert; the consumer makes leads from its next batch.
    jobs.Advance(job->id, job->last_lead_id, 0, job->total, true, {}, "");
    work.commit();
    counters.jobs_finished.Increment();
    return true;
  }
  const int64_t total =
      job->total > 0 ? job->total : job->done + jobs.CountOpenLeadsAfter(job->last_lead_id);
  std::vector<IdentityKey> identities;
  const std::vector<int64_t> ids = jobs.NextOpenLeads(job->last_lead_id, batch_leads, identities);
  if (ids.empty()) {
    jobs.Advance(job->id, job->last_lead_id, 0, total, true, {}, "");
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
  const std::string success_status = jobs.SuccessStatus();
  // A lead whose person is a contact (or company) already converts into it, as inbound traffic
  // in simple mode finds them: never a second contact holding the same phone or email.
  std::vector<int64_t> locked_ids;
  for (const OpenLeadRow& lead : leads) locked_ids.push_back(lead.id);
  // Read before this step makes any contact: at most this many new ones (each lead's holder is
  // read again below).
  std::map<int64_t, std::pair<int64_t, int64_t>> holders = jobs.Holders(locked_ids);
  size_t new_contacts = 0;
  for (const OpenLeadRow& lead : leads) {
    new_contacts += lead.contact_id == 0 && holders[lead.id].first == 0 ? 1 : 0;
  }
  const std::vector<int64_t> contact_ids = inbound.AllocateContactIds(new_contacts);
  const std::vector<int64_t> deal_ids = inbound.AllocateDealIds(leads.size());
  size_t next_contact = 0;
  int64_t converted = 0;
  int64_t not_copied = 0;
  int64_t capped = 0;
  std::vector<int64_t> skipped;
  std::string failure;
  for (size_t i = 0; i < leads.size(); ++i) {
    const OpenLeadRow& lead = leads[i];
    std::vector<NewContactRow> contacts;
    std::vector<HistoryRecord> history;
    const domain::EntityRef lead_ref{domain::EntityKind::kLead, lead.id};
    const domain::EntityRef deal_ref{domain::EntityKind::kDeal, deal_ids[i]};
    // Read again for each lead: a contact this step made for an earlier lead of the batch may
    // hold this one's phone (two open leads of one person), and this lead then converts into it.
    const std::pair<int64_t, int64_t> holder = jobs.Holders({lead.id})[lead.id];
    int64_t contact = lead.contact_id != 0 ? lead.contact_id : holder.first;
    const int64_t company_id = lead.company_id != 0 ? lead.company_id : holder.second;
    const bool new_contact = contact == 0;
    if (contact == 0) {
      // The step's ids counted holders before it; a holder gone since (deleted) needs one more.
      contact = next_contact < contact_ids.size() ? contact_ids[next_contact++]
                                                  : inbound.AllocateContactIds(1).front();
      domain::PersonName name =
          domain::ContactName(lead.first_name, lead.last_name, settings.last_name_placeholder);
      contacts.push_back({contact, std::move(name.first), std::move(name.last),
                          lead.responsible_user_id, lead.source, "", lead.origin_event_id});
      history.push_back(
          HistoryRecord::Of(domain::EntityKind::kContact, contact, "CREATED").RelatedTo(lead_ref));
    }
    const domain::EntityRef contact_ref{domain::EntityKind::kContact, contact};
    const std::string title = lead.title.find_first_not_of(" \t") == std::string::npos
                                  ? "Deal from lead " + std::to_string(lead.id)
                                  : lead.title;
    const NewDealRow deal{.id = deal_ids[i],
                          .title = title,
                          .pipeline_id = settings.inbound_pipeline_id,
                          .stage_id = settings.inbound_first_stage_id,
                          .company_id = company_id,
                          .contact_id = contact,
                          .responsible_user_id = lead.responsible_user_id,
                          .source_id = lead.source,
                          .lead_id = lead.id,
                          .origin_event_id = lead.origin_event_id};
    // The lead's timeline says what ConvertLead's says: what it became, its status change, and
    // the new deal's links.
    history.push_back(
        DealCreated(deal_ids[i], deal.pipeline_id, deal.stage_id).RelatedTo(lead_ref));
    const size_t converted_entry = history.size();
    history.push_back(
        HistoryRecord::Of(domain::EntityKind::kLead, lead.id, "CONVERTED").RelatedTo(contact_ref));
    history.push_back(
        HistoryRecord::Of(domain::EntityKind::kLead, lead.id, "CONVERTED").RelatedTo(deal_ref));
    HistoryRecord& status = history.emplace_back(
        HistoryRecord::Of(domain::EntityKind::kLead, lead.id, "STATUS_CHANGED"));
    status.field = "status";
    status.old_value = lead.status;
    status.new_value = success_status;
    AppendDealLinked(history, deal_ids[i], contact_ref);
    if (company_id != 0) {
      AppendDealLinked(history, deal_ids[i], {domain::EntityKind::kCompany, company_id});
    }
    // Each lead under a savepoint of its own: one the data refuses (a constraint: e.g. a lead
    // reopened after an earlier conversion already has its conversions row) is skipped and
    // reported, and the others of the step commit. Its allocated ids are spent once; nothing is
    // retried. Any other error (connection, deadlock, a fault) fails the whole step, retried.
    // A savepoint in SQL (pqxx 6's subtransaction left the transaction aborted after a failed
    // statement): released on success, rolled back to on a refused lead.
    work.exec0("SAVEPOINT mode_switch_lead");
    try {
      inbound.InsertContacts(contacts);
      inbound.InsertDeals({deal});
      AddedIdentities added;
      if (new_contact) {
        jobs.CopyIdentitiesToContact(lead.id, contact);
      } else {
        // An existing contact: a new etag and FIELD_CHANGED for what it gains, never another
        // contact's phone or email (that person's traffic would come to this deal), and never
        // past the identity cap, as inbound traffic attaches them. The switch cannot refuse as
        // ConvertLead does: it leaves them, says so on the lead's timeline and counts them.
        added = AddIdentitiesToExisting(work, domain::EntityKind::kContact, contact,
                                        jobs.LeadIdentities(lead.id), 0, "", max_identities);
      }
      const std::vector<HeldIdentity>& left = added.left;
      if (!left.empty() || !added.capped.empty()) {
        std::string named;
        for (const HeldIdentity& identity : left) {
          absl::StrAppend(&named, named.empty() ? "" : ", ", identity.key.value, " (contact ",
                          identity.holder_id, ")");
        }
        for (const IdentityKey& key : added.capped) {
          absl::StrAppend(&named, named.empty() ? "" : ", ", key.value, " (over the cap of ",
                          max_identities, ")");
        }
        history[converted_entry].field = "identities_not_copied";
        history[converted_entry].new_value = named;
      }
      jobs.MoveActivitiesToDeal(lead.id, deal_ids[i]);
      jobs.MarkConverted(lead.id, contact, deal_ids[i], company_id);
      HistoryRepository(work).Append(history);
      work.exec0("RELEASE SAVEPOINT mode_switch_lead");
      ++converted;
      if (!left.empty()) {
        not_copied += static_cast<int64_t>(left.size());
        spdlog::info(
            "mode switch job {}: lead {} converted into contact {} without {} identities other "
            "contacts hold",
            job->id, lead.id, contact, left.size());
      }
      if (!added.capped.empty()) {
        capped += static_cast<int64_t>(added.capped.size());
        spdlog::info(
            "mode switch job {}: lead {} converted into contact {} without {} identities past "
            "the cap of {}",
            job->id, lead.id, contact, added.capped.size(), max_identities);
      }
    } catch (const pqxx::sql_error& error) {
      if (!SkipsTheLead(error.sqlstate())) {
        throw;
      }
      work.exec0("ROLLBACK TO SAVEPOINT mode_switch_lead");
      skipped.push_back(lead.id);
      failure = "lead " + std::to_string(lead.id) + ": " + error.what();
      spdlog::warn("mode switch job {}: lead {} skipped, not converted: {}", job->id, lead.id,
                   error.what());
    }
  }
  jobs.Advance(job->id, ids.back(), converted, total, false, skipped, failure);
  work.commit();
  counters.steps.Increment();
  counters.leads_converted.Increment(static_cast<double>(converted));
  counters.leads_skipped.Increment(static_cast<double>(skipped.size()));
  counters.identities_not_copied.Increment(static_cast<double>(not_copied));
  counters.identities_capped.Increment(static_cast<double>(capped));
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
      worked =
          RunModeSwitchStep(*connection, options_.batch_leads, counters_, options_.max_identities);
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
