#include "crm-core/inbound/batch.h"

#include <spdlog/spdlog.h>

#include <map>
#include <pqxx/pqxx>
#include <set>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "crm-core/inbound/channels/channels.h"
#include "crm-core/inbound/writer.h"
#include "crm-core/store/inbound_repository.h"
#include "crm-core/store/repositories.h"
#include "crm-core/store/statements.h"

namespace leadflow::crm {
namespace {

using events::v1::InboundEvent;

std::string Clean(const std::string& text) { return pg::StripNul(text); }

std::string Coordinates(const kafka::Message& message) {
  return absl::StrCat(message.topic, "/", message.partition, "/", message.offset);
}

// What tells one message from another: its coordinates, and its bytes too, so that messages
// without real offsets (or a redelivery that is not the same message) are never confused.
std::string MessageKey(const kafka::Message& message) {
  return absl::StrCat(Coordinates(message), "#", std::hash<std::string>{}(message.key), "#",
                      std::hash<std::string>{}(message.value));
}

// The same batch passed again: every message the same, in the same order.
std::string BatchIdentity(const std::vector<kafka::Message>& batch) {
  std::string identity;
  for (const kafka::Message& message : batch) {
    absl::StrAppend(&identity, MessageKey(message), ";");
  }
  return identity;
}

metrics::Counter& BatchFailures(metrics::Registry& registry, const std::string& kind) {
  return registry
      .AddCounter("crm_inbound_batch_failures_total",
                  "Failed attempts to apply a batch or a part of one, by kind of failure", {"kind"})
      .WithLabels({kind});
}

}  // namespace

BatchProcessor::BatchProcessor(BatchProcessorOptions options, std::string database_url,
                               redis::Client* redis, kafka::Producer& dead_letters,
                               InboundCounters& counters)
    : options_(std::move(options)),
      database_url_(std::move(database_url)),
      redis_(redis),
      dead_letters_(dead_letters),
      counters_(counters) {}

InboundCounters::InboundCounters(metrics::Registry& registry)
    : batches(registry.AddCounter("crm_inbound_batches_total", "Kafka micro-batches processed")
                  .WithLabels({})),
      events_applied(registry
                         .AddCounter("crm_inbound_events_applied_total",
                                     "Inbound events whose effects were committed")
                         .WithLabels({})),
      duplicates_database(registry
                              .AddCounter("crm_inbound_duplicates_total",
                                          "Inbound events skipped as already processed",
                                          {"detected_by"})
                              .WithLabels({"database"})),
      duplicates_redis(registry
                           .AddCounter("crm_inbound_duplicates_total",
                                       "Inbound events skipped as already processed",
                                       {"detected_by"})
                           .WithLabels({"redis"})),
      duplicates_in_batch(registry
                              .AddCounter("crm_inbound_duplicates_total",
                                          "Inbound events skipped as already processed",
                                          {"detected_by"})
                              .WithLabels({"batch"})),
      dead_lettered(registry
                        .AddCounter("crm_inbound_dead_lettered_total",
                                    "Messages sent to the dead-letter topic")
                        .WithLabels({})),
      leads_created(
          registry.AddCounter("crm_leads_created_total", "Leads created from inbound events")
              .WithLabels({})),
      contacts_created(
          registry.AddCounter("crm_contacts_created_total", "Contacts created from inbound events")
              .WithLabels({})),
      deals_created(
          registry.AddCounter("crm_deals_created_total", "Deals created from inbound events")
              .WithLabels({})),
      activities_created(
          registry
              .AddCounter("crm_activities_created_total", "Activities created from inbound events")
              .WithLabels({})),
      redis_failures(registry
                         .AddCounter("crm_redis_failures_total",
                                     "Redis calls that failed (the fast path was skipped)")
                         .WithLabels({})),
      identities_capped(registry
                            .AddCounter("crm_inbound_identities_capped_total",
                                        "Identities not attached to a lead because it holds "
                                        "CRM_LEAD_MAX_INBOUND_IDENTITIES already")
                            .WithLabels({})),
      identities_held_elsewhere(
          registry
              .AddCounter("crm_inbound_identities_held_elsewhere_total",
                          "Identities of inbound events not attached to the record that took the "
                          "event because another record holds them (one person, one record)")
              .WithLabels({})),
      reassigned_inactive(registry
                              .AddCounter("crm_inbound_responsible_reassigned_total",
                                          "Activities inbound events put on an existing record "
                                          "given to the next active member of a queue instead "
                                          "of the record's responsible",
                                          {"reason"})
                              .WithLabels({"inactive"})),
      reassigned_unassigned(registry
                                .AddCounter("crm_inbound_responsible_reassigned_total",
                                            "Activities inbound events put on an existing record "
                                            "given to the next active member of a queue instead "
                                            "of the record's responsible",
                                            {"reason"})
                                .WithLabels({"unassigned"})),
      lock_closure_exhausted(registry
                                 .AddCounter("crm_inbound_lock_closure_exhausted_total",
                                             "Batches whose identity-lock closure did not settle "
                                             "within its rounds or lock budget (retried)")
                                 .WithLabels({})),
      batch_splits(registry
                       .AddCounter("crm_inbound_batch_splits_total",
                                   "Failing batches split in two to isolate the failing event")
                       .WithLabels({})),
      failures_transient(BatchFailures(registry, "transient")),
      failures_data(BatchFailures(registry, "data")),
      failures_persistent(BatchFailures(registry, "persistent")),
      email(registry),
      calls(registry) {}

namespace {

metrics::Counter& CallBacks(metrics::Registry& registry, const std::string& change) {
  return registry
      .AddCounter("crm_call_backs_total",
                  "Call-back activities of missed calls by the inbound path: created, updated (a "
                  "further missed call folded in), completed (by an answered call), and "
                  "already_reached (a missed call written completed at once: an answered call "
                  "already on its record came after it)",
                  {"change"})
      .WithLabels({change});
}

metrics::Counter& Recordings(metrics::Registry& registry, const std::string& result) {
  return registry
      .AddCounter("crm_call_recordings_total",
                  "Recordings in their own events: attached (after their call), deferred (before "
                  "their call was settled: the call's own event carries them), or unmatched (no "
                  "call holds their call id and none carries them; nothing written); and "
                  "recordings dropped past the cap per activity or unidentified call",
                  {"result"})
      .WithLabels({result});
}

}  // namespace

CallCounters::CallCounters(metrics::Registry& registry)
    : calls(registry.AddCounter("crm_calls_total", "Call events applied, by direction and outcome",
                                {"direction", "outcome"})),
      call_backs_created(CallBacks(registry, "created")),
      call_backs_updated(CallBacks(registry, "updated")),
      call_backs_completed(CallBacks(registry, "completed")),
      call_backs_already_reached(CallBacks(registry, "already_reached")),
      unidentified(registry
                       .AddCounter("crm_unidentified_calls_total",
                                   "Calls nobody could be matched to (withheld number, SIP user, "
                                   "outbound call to an unknown number), listed as unidentified")
                       .WithLabels({})),
      recordings_attached(Recordings(registry, "attached")),
      recordings_deferred(Recordings(registry, "deferred")),
      recordings_unmatched(Recordings(registry, "unmatched")),
      recordings_dropped(Recordings(registry, "dropped")) {}

void CallCounters::Add(const std::vector<const ContactAttempt*>& applied,
                       const CallWriteResult& result) {
  for (const ContactAttempt* attempt : applied) {
    if (!attempt->call || attempt->call->recording_only) continue;
    calls
        .WithLabels({absl::AsciiStrToLower(std::string(domain::ToString(attempt->call->direction))),
                     absl::AsciiStrToLower(std::string(domain::ToString(attempt->call->outcome)))})
        .Increment();
  }
  call_backs_created.Increment(static_cast<double>(result.call_backs_created));
  call_backs_updated.Increment(static_cast<double>(result.call_backs_updated));
  call_backs_completed.Increment(static_cast<double>(result.call_backs_completed));
  call_backs_already_reached.Increment(static_cast<double>(result.call_backs_already_reached));
  unidentified.Increment(static_cast<double>(result.unidentified));
  recordings_attached.Increment(static_cast<double>(result.recordings_attached));
  recordings_deferred.Increment(static_cast<double>(result.recordings_deferred));
  recordings_unmatched.Increment(static_cast<double>(result.recordings_unmatched));
  recordings_dropped.Increment(static_cast<double>(result.recordings_dropped));
  for (const std::string& event_id : result.recordings_unmatched_events) {
    // The event id only (the provider's ids): never the numbers or the recording's URL.
    spdlog::warn("recording of event {} matches no call; not attached", event_id);
  }
}

BatchProcessor::~BatchProcessor() = default;

absl::Status BatchProcessor::DeadLetter(const kafka::Message& message, const std::string& error) {
  const std::string key = MessageKey(message);
  if (in_flight_.dead_lettered.count(key) != 0) {
    return absl::OkStatus();  // an earlier attempt of this batch did it already
  }
  kafka::DeliveryResult result =
      dead_letters_.ProduceSync(kafka::kInboundDlqTopic, message.key, message.value,
                                {{"error", error},
                                 {"source-topic", message.topic},
                                 {"source-partition", std::to_string(message.partition)},
                                 {"source-offset", std::to_string(message.offset)}});
  if (!result.status.ok()) {
    return result.status;  // not acknowledged: the batch is retried, nothing is dropped
  }
  in_flight_.dead_lettered.insert(key);
  counters_.dead_lettered.Increment();
  spdlog::warn("dead-lettered {}[{}]@{}: {}", message.topic, message.partition, message.offset,
               error);
  return absl::OkStatus();
}

void BatchProcessor::MarkProcessed(const std::vector<std::string>& event_ids) {
  if (redis_ == nullptr || event_ids.empty()) {
    return;
  }
  std::vector<redis::Command> commands;
  commands.reserve(event_ids.size());
  const std::string ttl = std::to_string(options_.processed_mark_ttl_seconds);
  for (const std::string& id : event_ids) {
    commands.push_back(
        {"SET", absl::StrCat(options_.redis_prefix, "processed:", id), "1", "EX", ttl});
  }
  auto replies = redis_->Pipeline(commands);
  absl::Status status = replies.status();
  if (status.ok()) {
    // Redis may answer each command with an error (LOADING, OOM, READONLY): a mark not written.
    for (const redis::Reply& reply : *replies) {
      if (reply.type == redis::Reply::Type::kError) {
        status = absl::UnavailableError(reply.text);
        break;
      }
    }
  }
  NoteRedis(status);
}

void BatchProcessor::NoteRedis(const absl::Status& status) {
  if (status.ok()) {
    if (redis_warned_outage_) {
      spdlog::info("redis answers again: processed marks are read and written again");
    }
    redis_warned_outage_ = false;
    return;
  }
  counters_.redis_failures.Increment();
  // One line per outage, and at most one a minute when Redis comes and goes: an outage that
  // begins within the minute is told at its first failure after it.
  const auto now = std::chrono::steady_clock::now();
  if (!redis_warned_outage_ && now - redis_warned_ >= std::chrono::minutes(1)) {
    redis_warned_ = now;
    redis_warned_outage_ = true;
    spdlog::warn(
        "redis failed ({}): events are checked for duplicates in PostgreSQL only until it answers "
        "again (crm_redis_failures_total)",
        status.ToString());
  }
}

absl::Status BatchProcessor::Process(const std::vector<kafka::Message>& batch) {
  counters_.batches.Increment();
  if (batch.empty()) {
    return absl::OkStatus();
  }
  if (std::string identity = BatchIdentity(batch); in_flight_.identity != identity) {
    in_flight_ = InFlight{.identity = std::move(identity)};  // a new batch
  }
  absl::Status status = ProcessOnce(batch);
  if (status.ok()) {
    in_flight_ = InFlight{};  // done: its offsets are stored next
  }
  return status;
}

absl::Status BatchProcessor::ProcessOnce(const std::vector<kafka::Message>& batch) {
  // 1. Decode and validate; what cannot be used goes to the dead-letter topic.
  std::vector<Decoded> decoded;
  decoded.reserve(batch.size());
  std::set<std::string> seen;
  for (const kafka::Message& message : batch) {
    Decoded item{&message, {}};
    if (!item.event.ParseFromString(message.value)) {
      if (absl::Status status = DeadLetter(message, "undecodable InboundEvent protobuf");
          !status.ok()) {
        return status;
      }
      continue;
    }
    if (std::string problem = ValidateEvent(item.event); !problem.empty()) {
      if (absl::Status status = DeadLetter(message, problem); !status.ok()) {
        return status;
      }
      continue;
    }
    if (!seen.insert(item.event.event_id()).second) {
      counters_.duplicates_in_batch.Increment();
      continue;
    }
    decoded.push_back(std::move(item));
  }

  // 2. Redis fast path: events already committed earlier are skipped without a database trip.
  std::vector<const Decoded*> pending;
  pending.reserve(decoded.size());
  std::vector<bool> marked(decoded.size(), false);
  if (redis_ != nullptr && !decoded.empty()) {
    redis::Command mget = {"MGET"};
    for (const Decoded& item : decoded) {
      mget.push_back(absl::StrCat(options_.redis_prefix, "processed:", item.event.event_id()));
    }
    auto reply = redis_->Run(mget);
    if (reply.ok() && reply->elements.size() == decoded.size()) {
      for (size_t i = 0; i < decoded.size(); ++i) {
        marked[i] = !reply->elements[i].IsNil();
      }
      NoteRedis(absl::OkStatus());
    } else {
      NoteRedis(reply.ok() ? absl::UnavailableError("MGET: unexpected reply") : reply.status());
    }
  }
  for (size_t i = 0; i < decoded.size(); ++i) {
    if (marked[i]) {
      counters_.duplicates_redis.Increment();
    } else {
      pending.push_back(&decoded[i]);
    }
  }
  if (pending.empty()) {
    return absl::OkStatus();
  }
  return Apply(pending);
}

absl::Status BatchProcessor::Apply(const std::vector<const Decoded*>& events) {
  absl::Status status = TryApply(events);
  switch (pg::ClassifyFailure(status.code())) {
    case pg::FailureKind::kNone:
    case pg::FailureKind::kTransient:
      // Infrastructure (database down, a deadlock, a bad deploy): retry the batch as it is, and
      // never dead-letter good events because the database is unwell.
      return status;
    case pg::FailureKind::kData:
      // The data was refused: find the event(s) responsible and dead-letter only them.
      break;
    case pg::FailureKind::kPersistent:
      // Will likely fail again the same way, though possibly only because of what ran beside
      // it: a few attempts with the caller's backoff, then narrow it down.
      if (++in_flight_.persistent_failures < options_.attempts_before_split) {
        return status;
      }
      break;
  }
  return Narrow(events, status);
}

absl::Status BatchProcessor::TryApply(const std::vector<const Decoded*>& events) {
  absl::Status status;
  try {
    if (!database_ || !database_->is_open()) {
      database_ = std::make_unique<pqxx::connection>(database_url_);
      pg::PrepareAll(*database_, Statements());
    }
    if (!positions_ || !positions_->is_open()) {
      positions_ = std::make_unique<pqxx::connection>(database_url_);
      pg::PrepareAll(*positions_, Statements());
    }
    status = ApplyInTransaction(events);
  } catch (const std::exception& error) {
    status = pg::ToStatus(error);
  }
  switch (pg::ClassifyFailure(status.code())) {
    case pg::FailureKind::kNone:
      break;
    case pg::FailureKind::kTransient:
      counters_.failures_transient.Increment();
      if (status.code() == absl::StatusCode::kUnavailable) {
        database_.reset();  // reconnect on the next try
        positions_.reset();
      }
      break;
    case pg::FailureKind::kData:
      counters_.failures_data.Increment();
      break;
    case pg::FailureKind::kPersistent:
      counters_.failures_persistent.Increment();
      if (events.size() == 1) {
        ++in_flight_.failures_alone[MessageKey(*events.front()->message)];
      }
      break;
  }
  return status;
}

namespace {

// Two parts of one batch failing deterministically the same way (the same SQLSTATE class from
// the database, not a size limit that a smaller part would pass) point at the database, not at
// an event: a trigger raising on every row, an unlisted server condition.
bool FailAlike(const absl::Status& first, const absl::Status& second) {
  auto persistent_state = [](const absl::Status& status) -> std::string {
    if (pg::ClassifyFailure(status.code()) != pg::FailureKind::kPersistent ||
        status.code() == absl::StatusCode::kResourceExhausted) {
      return "";
    }
    return pg::SqlState(status).value_or("").substr(0, 2);
  };
  const std::string state = persistent_state(first);
  return !state.empty() && state == persistent_state(second);
}

}  // namespace

absl::Status BatchProcessor::Narrow(const std::vector<const Decoded*>& events,
                                    const absl::Status& failure) {
  if (events.size() == 1) {
    const kafka::Message& message = *events.front()->message;
    const bool data = pg::ClassifyFailure(failure.code()) == pg::FailureKind::kData;
    // An event that fails deterministically alone gets a few attempts alone, with the caller's
    // backoff, before it is blamed: the database may have begun failing for everyone just now.
    if (!data && in_flight_.failures_alone[MessageKey(message)] < options_.attempts_alone) {
      return failure;
    }
    return DeadLetter(
        message, absl::StrCat(data ? "rejected by the database: " : "fails alone, every time: ",
                              failure.message()));
  }
  // Bisect: a batch with one bad event among n costs about 2·log2(n) transactions.
  counters_.batch_splits.Increment();
  spdlog::warn("batch of {} failed ({}); splitting it to isolate the failing event", events.size(),
               failure.ToString());
  const auto middle = events.begin() + static_cast<std::ptrdiff_t>(events.size() / 2);
  const std::vector<const Decoded*> halves[2] = {
      std::vector<const Decoded*>(events.begin(), middle),
      std::vector<const Decoded*>(middle, events.end())};
  absl::Status results[2];
  for (int i = 0; i < 2; ++i) {
    results[i] = TryApply(halves[i]);
    if (pg::ClassifyFailure(results[i].code()) == pg::FailureKind::kTransient) {
      return results[i];  // the whole batch is retried; what committed is skipped by its id
    }
  }
  if (FailAlike(results[0], results[1])) {
    // Not one event's fault: bisecting on would dead-letter every good event of the stream.
    // Retried as an outage, with the caller's backoff, until the database recovers.
    spdlog::warn("both halves of a batch of {} fail alike ({}); retrying it as an outage",
                 events.size(), results[1].ToString());
    absl::Status outage = absl::UnavailableError(
        absl::StrCat("every part of the batch fails alike: ", results[1].message()));
    results[1].ForEachPayload([&](absl::string_view type, const absl::Cord& payload) {
      outage.SetPayload(type, payload);  // the SQLSTATE
    });
    return outage;
  }
  for (int i = 0; i < 2; ++i) {
    if (!results[i].ok()) {
      if (absl::Status part = Narrow(halves[i], results[i]); !part.ok()) {
        return part;
      }
    }
  }
  return absl::OkStatus();
}

absl::Status BatchProcessor::ApplyInTransaction(const std::vector<const Decoded*>& events) {
  pqxx::work work(*database_);
  EventRepository processed(work);
  LeadRepository leads(work);

  // Lock every identity of the batch before reading anything (guarantee 3).
  std::set<std::string> locked;
  std::vector<IdentityKey> locked_keys;
  auto lock = [&](const std::vector<IdentityKey>& keys) -> absl::StatusOr<size_t> {
    std::vector<std::string> fresh;
    for (const IdentityKey& key : keys) {
      std::string lock_key = IdentityLockKey(key);
      if (locked.count(lock_key) == 0) {
        if (locked.size() >= options_.max_identity_locks) {
          return absl::ResourceExhaustedError(absl::StrCat(
              "the batch needs more than ", options_.max_identity_locks, " identity locks"));
        }
        locked.insert(lock_key);
        fresh.push_back(lock_key);
        locked_keys.push_back(key);
      }
    }
#ifndef LEADFLOW_TEST_SKIP_IDENTITY_LOCKS  // deliberately wrong, only in a test-only binary
    processed.LockIdentities(fresh);
#endif
    return fresh.size();
  };
  auto closure_exhausted = [&](const std::string& why) {
    counters_.lock_closure_exhausted.Increment();
    spdlog::warn("identity lock closure of a batch of {} events exhausted ({}); retrying it",
                 events.size(), why);
    return absl::ResourceExhaustedError(absl::StrCat("identity lock closure exhausted: ", why));
  };
  // What each event is, channel-neutral: all the rules below read.
  std::vector<ContactAttempt> attempts;
  attempts.reserve(events.size());
  std::vector<std::string> ids;
  std::vector<IdentityKey> batch_keys;
  for (const Decoded* item : events) {
    ids.push_back(item->event.event_id());
    attempts.push_back(ToContactAttempt(item->event));
    // The Reply-To matches only for mail through a trusted mailbox (inbound/email_thread.h).
    ApplyReplyToTrust(options_.rules, item->event, attempts.back());
    for (const IdentityKey& key : attempts.back().identities) {
      batch_keys.push_back({key.kind, Clean(key.value)});
    }
    for (const IdentityKey& key : attempts.back().match_only) {
      batch_keys.push_back({key.kind, Clean(key.value)});
    }
  }
  if (auto first = lock(batch_keys); !first.ok()) {
    return closure_exhausted(std::string(first.status().message()));
  }

  // Claim the ids (guarantee 2): only those inserted now get effects.
  const std::set<std::string> claimed = processed.Claim(ids);
  counters_.duplicates_database.Increment(static_cast<double>(events.size() - claimed.size()));

  // Snapshot of the leads, contacts and companies sharing an identity with the batch, read under
  // the locks. A matched record's other identities are locked too, and the search repeated,
  // until nothing new turns up: otherwise two consumers holding a person's phone and email apart
  // (on a lead or a contact) could both decide that person has nothing open and make a record
  // each.
  InboundRepository inbound(work);
  Snapshot snapshot;
  bool settled = false;
  for (int round = 0; round < options_.lock_closure_rounds && !settled; ++round) {
    snapshot.leads = leads.FindByIdentities(locked_keys);
    snapshot.contacts = inbound.FindContacts(locked_keys);
    snapshot.companies = inbound.FindCompanies(locked_keys);
    // Open returning leads of these contacts and leads: they hold only their own message's
    // identities and are found through their links (planner.h).
    std::vector<int64_t> contact_ids;
    std::vector<int64_t> lead_ids;
    for (const KnownParty& contact : snapshot.contacts) contact_ids.push_back(contact.id);
    for (const KnownLead& lead : snapshot.leads) lead_ids.push_back(lead.id);
    snapshot.linked_leads = inbound.FindOpenLinkedLeads(contact_ids, lead_ids);
    std::vector<IdentityKey> linked;
    for (const auto* found : {&snapshot.leads, &snapshot.linked_leads}) {
      for (const KnownLead& lead : *found) {
        linked.insert(linked.end(), lead.identities.begin(), lead.identities.end());
      }
    }
    for (const auto* parties : {&snapshot.contacts, &snapshot.companies}) {
      for (const KnownParty& party : *parties) {
        linked.insert(linked.end(), party.identities.begin(), party.identities.end());
      }
    }
    auto fresh = lock(linked);
    if (!fresh.ok()) {
      return closure_exhausted(std::string(fresh.status().message()));
    }
    settled = *fresh == 0;
  }
  if (!settled) {
    // Records linked by shared identities further than the rounds reach: the snapshot could miss
    // one, so deciding now could split a person in two. The batch is retried (and split).
    return closure_exhausted(
        absl::StrCat("still growing after ", options_.lock_closure_rounds, " rounds"));
  }
  // crm_settings once per batch: one short indexed read, so a change applies from the next batch.
  snapshot.settings = inbound.ReadSettings();
  const std::vector<int64_t> active_users = UserRepository(work).ActiveIds();
  snapshot.active_users = std::set<int64_t>(active_users.begin(), active_users.end());
  snapshot.calls = ReadCallContext(work, attempts);
  Planner planner(options_.rules, std::move(snapshot));
  // Email threads, Message-IDs delivered again and mailbox routes (inbound/email_thread.h): a
  // reply of a known thread goes to its record, not to the planner.
  std::vector<const InboundEvent*> payloads;
  for (const Decoded* item : events) payloads.push_back(&item->event);
  EmailBatch email(work, payloads, attempts, claimed, options_.rules);
  if (absl::Status prepared = email.Prepare(); !prepared.ok()) {
    counters_.email.Add(email.result());
    return prepared;
  }
  std::vector<std::string> applied_ids;
  for (size_t i = 0; i < attempts.size(); ++i) {
    if (claimed.count(attempts[i].event_id) != 0) {
      if (!email.TakenOut(i)) planner.Add(attempts[i]);
      applied_ids.push_back(attempts[i].event_id);
    }
  }
  const Plan& plan = planner.plan();
  const WriteResult written =
      WritePlan(work, plan, active_users, [&](const std::string& queue, int64_t count) {
        return AdvanceQueue(*positions_, queue, count);
      });
  const EmailBatchResult mail = email.Write();
  work.commit();

  counters_.events_applied.Increment(static_cast<double>(applied_ids.size()));
  counters_.leads_created.Increment(static_cast<double>(written.leads));
  counters_.contacts_created.Increment(static_cast<double>(written.contacts));
  counters_.deals_created.Increment(static_cast<double>(written.deals));
  counters_.activities_created.Increment(static_cast<double>(written.activities));
  counters_.identities_capped.Increment(static_cast<double>(plan.identities_capped));
  counters_.identities_held_elsewhere.Increment(
      static_cast<double>(plan.identities_held_elsewhere));
  counters_.reassigned_inactive.Increment(static_cast<double>(plan.reassigned_inactive));
  counters_.reassigned_unassigned.Increment(static_cast<double>(plan.reassigned_unassigned));
  counters_.email.Add(mail);
  std::vector<const ContactAttempt*> calls;
  for (const ContactAttempt& attempt : attempts) {
    if (attempt.call && claimed.count(attempt.event_id) != 0) calls.push_back(&attempt);
  }
  counters_.calls.Add(calls, written.calls);
  // After the commit, never before: a mark must only ever mean "committed".
  MarkProcessed(ids);
  return absl::OkStatus();
}

}  // namespace leadflow::crm
