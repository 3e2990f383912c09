#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <pqxx/pqxx>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "metrics/metrics.h"

namespace leadflow::crm {

struct ModeSwitchOptions {
  std::string database_url;
  /// Leads converted in one transaction at most.
  int64_t batch_leads = 200;
  /// How often an idle job runner looks for a RUNNING job.
  std::chrono::milliseconds poll{1000};
  /// The identity cap of an existing contact a lead converts into
  /// (RuleSettings::max_inbound_identities, CRM_LEAD_MAX_INBOUND_IDENTITIES).
  size_t max_identities = 20;
};

struct ModeSwitchCounters {
  explicit ModeSwitchCounters(metrics::Registry& registry);
  metrics::Counter& steps;            // committed steps (batches) of a job
  metrics::Counter& leads_converted;  // open leads converted into contact + deal
  metrics::Counter& jobs_finished;
  metrics::Counter& failures;       // steps that failed (rolled back, retried after a pause)
  metrics::Counter& leads_skipped;  // leads a constraint refused: skipped, listed on the job
  // A converted lead's phones and emails another contact holds: left off the contact it was
  // converted into (one person, one record), named on the lead's timeline
  metrics::Counter& identities_not_copied;
  // A converted lead's phones and emails left off the existing contact it was converted into
  // because the contact reached the identity cap (`max_identities`), named on the lead's timeline
  metrics::Counter& identities_capped;
};

/// One step of the running mode_switch_jobs row, in one transaction: classic → simple converts
/// up to `batch_leads` open leads after last_lead_id into contact + deal (identities copied to the
/// contact, activities moved to the deal, the lead CONVERTED and linked to both), under the
/// leads' identity locks; a lead whose person is a contact already converts into it, which takes
/// the lead's identities through AddIdentitiesToExisting (a new etag, FIELD_CHANGED) except those
/// another contact holds and those past `max_identities` on the contact (each counted, and named
/// on the lead's CONVERTED entry); and records the
/// progress in the row; a lead whose conversion the data refuses (a constraint, under a savepoint
/// of its own) is skipped, counted and listed on the row (the first 100) instead of failing the
/// step for ever; a step that finds no more open leads finishes the job. A switch back to classic
/// has nothing to convert and finishes at once (new traffic makes leads again from the next batch).
/// A crash loses at most the uncommitted step, redone from last_lead_id. Returns whether a job was
/// worked on.
absl::StatusOr<bool> RunModeSwitchStep(pqxx::connection& connection, int64_t batch_leads,
                                       ModeSwitchCounters& counters, size_t max_identities = 20);

/// The background runner in crm-core: steps while a job runs, polls when none does, pauses after
/// a failure; until `stop` is set.
class ModeSwitchRunner {
 public:
  ModeSwitchRunner(ModeSwitchOptions options, ModeSwitchCounters& counters,
                   const std::atomic<bool>& stop);
  ~ModeSwitchRunner();
  void Join();

 private:
  void Run();
  ModeSwitchOptions options_;
  ModeSwitchCounters& counters_;
  const std::atomic<bool>& stop_;
  std::thread thread_;
};

}  // namespace leadflow::crm
