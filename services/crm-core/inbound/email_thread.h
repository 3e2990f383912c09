#pragma once

// The email channel's part of a batch (docs/architecture.md, "Email: threads, messages,
// routes"), around the planner, in the batch's transaction:
//  - before it (Prepare): the batch's Message-IDs, and those its messages name, are locked; a
//    message stored already (the same Message-ID delivered again) has no effect; the threads the
//    named messages belong to are locked, and the records they are filed under (followed along
//    merges and conversions) locked and read again until they hold still; a reply naming a
//    stored message, or an earlier message of the batch, whose sender took part in the thread,
//    is an address its record knows, or writes from the domain of one of its senders (not a
//    public mail provider's, not ours), is taken out of the planner's hands and goes to that record
//    (domain/email's DecideThread); any other sender's message is the planner's; those messages
//    get the route of the address they came in through (email_routes: pipeline, queue);
//  - after the plan is written (Write): the replies join their thread's open EMAIL activity or
//    open one, and every message is kept, linked to its activity and record (past the caps per
//    thread and per record, its headers only).
// Other channels' events pass through untouched.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <pqxx/pqxx>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "crm-core/domain/attempt/contact_attempt.h"
#include "crm-core/domain/email/thread.h"
#include "crm-core/domain/rules/rule_settings.h"
#include "crm-core/store/email_repository.h"
#include "leadflow/events/v1/inbound_event.pb.h"
#include "metrics/metrics.h"

namespace leadflow::crm {

/// What the email part of a batch did, for the counters.
struct EmailBatchResult {
  size_t replies_threaded = 0;             // replies that went to their thread's record
  size_t replies_by_colleague_domain = 0;  // of those, admitted by the colleague-domain rule
  size_t replies_joined = 0;               // of those, joined the thread's open activity
  size_t duplicate_messages = 0;           // a Message-ID stored already or twice in the batch
  size_t reused_message_ids = 0;  // a Message-ID another sender's message holds: kept without it
  size_t messages_kept = 0;
  size_t fields_cut = 0;        // texts or lists cut to the kept-message bounds
  size_t replies_refused = 0;   // named a kept message, but the sender had no part in its thread
  size_t contents_omitted = 0;  // kept with their headers only: past a cap
  size_t owner_lock_rounds_exhausted = 0;  // the thread records would not hold still
};

/// The email part's counters, in the process's metrics registry.
struct EmailCounters {
  explicit EmailCounters(metrics::Registry& registry);
  void Add(const EmailBatchResult& result);
  metrics::Counter& replies_threaded;
  metrics::Counter& replies_by_colleague_domain;
  metrics::Counter& duplicate_messages;
  metrics::Counter& reused_message_ids;
  metrics::Counter& fields_cut;
  metrics::Counter& replies_refused;
  metrics::Counter& contents_omitted;
  metrics::Counter& owner_lock_rounds_exhausted;
};

/// Rounds of "lock the thread records found, look the threads up again" before a batch gives up
/// (Aborted, retried): each round means a merge or conversion committed meanwhile.
inline constexpr int kMaxThreadOwnerLockRounds = 5;

/// Drops the Reply-To from what `attempt` matches unless the mail came in through a mailbox whose
/// Reply-To is trusted (RuleSettings::reply_to_trusted_mailboxes). Other payloads: untouched.
void ApplyReplyToTrust(const RuleSettings& rules, const events::v1::InboundEvent& event,
                       ContactAttempt& attempt);

class EmailBatch {
 public:
  /// `events[i]` is the event of `attempts[i]`; only those in `claimed` are looked at.
  /// `deadline`: a new reply activity's deadline from now (0: none).
  EmailBatch(pqxx::transaction_base& work,
             const std::vector<const events::v1::InboundEvent*>& events,
             std::vector<ContactAttempt>& attempts, const std::set<std::string>& claimed,
             const RuleSettings& rules);

  /// Before the planner. Sets the route of the messages the planner gets. Aborted when the
  /// threads' records kept moving (merged, converted) for kMaxThreadOwnerLockRounds rounds: the
  /// batch is retried.
  absl::Status Prepare();
  /// What Prepare or Write counted so far (also when Prepare failed).
  const EmailBatchResult& result() const { return result_; }
  /// True when the planner must not see attempts[i]: a reply of a known thread, or a message
  /// stored already.
  bool TakenOut(size_t i) const { return taken_out_.count(i) != 0; }
  /// After the planner's plan is written in the same transaction.
  EmailBatchResult Write();

 private:
  // Where a reply goes: a stored thread (decision), or the thread of an earlier message of this
  // batch (its index).
  struct Reply {
    size_t index = 0;
    std::optional<domain::ThreadDecision> stored;
    size_t earlier = 0;
    // Admitted only by the colleague-domain rule (docs/email-ingest.md, "Who may reply into a
    // thread", rule 3): its sender is neither a participant nor an address the record knows.
    bool by_colleague_domain = false;
  };
  EmailMessageRecord Record(size_t index);
  // The stored messages among `named`, their threads and records locked (see Prepare).
  absl::StatusOr<std::vector<domain::ThreadMessage>> LockedThreads(
      const std::vector<std::string>& named);
  // The sender's address (lower case) of email index i.
  std::string Sender(size_t index) const;
  // The domain through which that sender may join a thread as a colleague of its senders
  // (domain::ColleagueDomain); empty: not by the domain.
  std::string ColleagueDomainOf(size_t index) const;

  pqxx::transaction_base& work_;
  const std::vector<const events::v1::InboundEvent*>& events_;
  std::vector<ContactAttempt>& attempts_;
  const std::set<std::string>& claimed_;
  const RuleSettings& rules_;
  EmailRepository repository_;

  std::vector<size_t> emails_;         // indexes of the claimed email events, in batch order
  std::map<size_t, std::string> own_;  // index → its Message-ID (bounded; absent: none)
  std::set<size_t> taken_out_;
  std::vector<size_t> planned_;  // emails the planner decides
  std::vector<Reply> replies_;   // in batch order
  EmailBatchResult result_;
};

}  // namespace leadflow::crm
