#pragma once

// The telephony channel's rules in the inbound path (docs/architecture.md, "Calls"; the rules
// themselves are domain/call/call.h). The planner asks them at four points of a call's contact
// attempt; the writer hands them the call activities it resolved, and they write those, the
// completed call-backs, the recordings and the unidentified calls.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <pqxx/pqxx>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "crm-core/domain/attempt/contact_attempt.h"
#include "crm-core/domain/call/call.h"
#include "crm-core/domain/matching/matching.h"
#include "crm-core/store/call_repository.h"

namespace leadflow::crm {

struct Plan;
struct PlannedActivity;
using Ref = int64_t;

/// What the call rules read once per batch, under the identity locks.
struct CallContext {
  domain::CallSettings settings;
  CallOperators operators;
};

/// Reads the call settings, and the users the batch's calls name as operators.
CallContext ReadCallContext(pqxx::transaction_base& work,
                            const std::vector<ContactAttempt>& attempts);

/// A batch's call effects besides the activities (which are in Plan::activities with `call` set).
struct CallPlan {
  /// An answered outbound call: it completes the open call-backs of these records and of the
  /// records holding the phone identity it dialled, as of its place in the batch (after the
  /// first `position` activities).
  struct Completion {
    size_t position = 0;
    std::vector<std::pair<domain::EntityKind, Ref>> owners;
    std::string phone;  // the normalised (E.164) identity the call was matched on
    std::string event_id;
  };
  std::vector<Completion> completions;
  std::vector<UnidentifiedCall> unidentified;
  /// Recordings arriving after their call: (call id, URL) in batch order, several per call.
  std::vector<std::pair<std::string, std::string>> recordings;
  std::map<std::string, std::string> recording_events;  // call id → the recording's event id
  /// The call ids of recordings no call's own event carries (CallFacts::carried_by_call unset):
  /// one of these that finds no call is lost, the others are deferred to their call's event.
  std::set<std::string> recordings_not_carried;
  /// The recordings the batch's calls carry themselves: (call id, URL), for their lists.
  std::vector<std::pair<std::string, std::string>> own_recordings;
};

/// What a batch's call effects were, for the counters (inbound/batch.h's CallCounters).
struct CallWriteResult {
  std::vector<int64_t> deals;  // whose call-backs were completed (their last activity time moves)
  size_t call_backs_created = 0;
  size_t call_backs_updated = 0;  // further missed calls folded into an open call-back
  size_t call_backs_completed = 0;
  /// Missed calls written as a call-back completed at once by an answered call already on the
  /// record (it came late): nobody was asked to call back. Not in the three above.
  size_t call_backs_already_reached = 0;
  size_t unidentified = 0;
  size_t recordings_attached = 0;
  /// Recordings past domain::kMaxRecordingsPerCall on their activity or unidentified call.
  size_t recordings_dropped = 0;
  /// Recordings that came before their call was settled and find no call yet: the call's own
  /// event, applied later, carries them onto its activity.
  size_t recordings_deferred = 0;
  /// Recordings whose call nothing holds and that no call's event carries: how many, and their
  /// events' ids (never numbers or URLs, for the log).
  size_t recordings_unmatched = 0;
  std::vector<std::string> recordings_unmatched_events;
};

class CallRules {
 public:
  explicit CallRules(CallContext context) : context_(std::move(context)) {}

  /// First: what the call does (`known`: a record holds its number). Nullopt when it is fully
  /// planned already (an unidentified call, a late recording): the usual rules do not apply.
  std::optional<domain::CallPolicy> Admit(const ContactAttempt& attempt, bool known, Plan& plan);
  /// The queue new records rotate over: the line's, else the CALL channel's (`channel_queue`).
  std::string Queue(const ContactAttempt& attempt, const std::string& channel_queue) const;
  /// The usual decision, adjusted: a known number never makes a record, and a call an operator
  /// took or made is theirs.
  void Adjust(const ContactAttempt& attempt, const domain::CallPolicy& policy,
              const domain::MatchInput& input, domain::MatchDecision& decision) const;
  /// The activity the usual rules planned, made the call's: a call-back (open, due the SLA) or a
  /// completed call, with the call's facts.
  void Shape(const ContactAttempt& attempt, const domain::CallPolicy& policy,
             PlannedActivity& activity) const;
  /// An answered outbound call completes the open call-backs of `owners` (the records it
  /// matched and their open deals).
  void Complete(const ContactAttempt& attempt,
                std::vector<std::pair<domain::EntityKind, Ref>> owners, Plan& plan) const;

 private:
  /// The active user who took or made the call (by extension, then by e-mail); 0: none known.
  int64_t Operator(const domain::CallFacts& call) const;

  CallContext context_;
};

/// A call activity of the plan with its owner and responsible resolved by the writer.
struct ResolvedCallActivity {
  size_t position = 0;  // in Plan::activities
  const PlannedActivity* activity = nullptr;
  int64_t owner_id = 0;
  int64_t responsible_user_id = 0;
  /// A call-back on an existing record nobody active holds: the queue it rotates over, its turn
  /// taken by WriteCalls only if it is a call-back to make (PlannedActivity::queue).
  std::string queue;
};

/// The next turn of each of `queues` (one per entry, in order; a queue named twice gives two
/// turns): the users they give, 0 for nobody.
using QueueTurns = std::function<std::vector<int64_t>(const std::vector<std::string>& queues)>;

/// Writes a batch's call effects in the caller's transaction: the call activities, a record's
/// call-backs folded into one open call-back per record (further missed calls raise its count),
/// call-backs completed by answered outbound calls in batch order, recordings, unidentified
/// calls. `id` resolves a plan's reference to a record id. A call-back with a `queue` and no
/// responsible takes its turn through `turns` when it is a call-back to make; one an answered
/// call already on its record makes moot goes to that call's responsible, and no queue moves.
CallWriteResult WriteCalls(pqxx::transaction_base& work, const CallPlan& plan,
                           const std::vector<ResolvedCallActivity>& activities,
                           const std::function<int64_t(domain::EntityKind, Ref)>& id,
                           const QueueTurns& turns);

}  // namespace leadflow::crm
