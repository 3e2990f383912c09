#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "absl/status/status.h"

#include "crm-core/domain/call/call.h"

namespace leadflow::crm {

/// An activity (task, email, meeting, call, call list, visit) owned by one record.
struct Activity {
  int64_t id = 0;
  std::string type;        // TASK, EMAIL, MEETING, CALL, CALL_LIST, VISIT
  std::string owner_type;  // LEAD, CONTACT, COMPANY, DEAL
  int64_t owner_id = 0;
  std::string subject;
  std::string description;
  int64_t responsible_user_id = 0;
  bool completed = false;
  std::optional<int64_t> deadline_micros;  // none: no deadline (0 is 1970-01-01T00:00:00Z)
  int64_t create_micros = 0;
  int64_t complete_micros = 0;  // 0: open
  std::string origin_event_id;  // empty for planned activities
  int64_t version = 0;          // the etag: moves with every write of the row (0030's trigger)

  /// A CALL activity made by a call event (domain/call/call.h).
  struct Call {
    domain::CallFacts facts;  // for a call-back, its latest missed call
    bool call_back = false;
    int64_t missed_calls = 0;
    int64_t last_attempt_micros = 0;  // 0: none
    std::string completed_by_event_id;
  };
  std::optional<Call> call;
};

/// The owner kinds an activity may have (the activities.owner_type CHECK).
bool IsOwnerType(std::string_view owner_type);

/// Whether UpdateActivity may change the fields `paths` of `current` without going against the
/// inbound rules (FAILED_PRECONDITION naming the activity otherwise). An activity an inbound event
/// made (origin_event_id set) keeps its subject and description: they say what came in (the
/// mail's subject, the call as the provider reported it), and a call-back's description is
/// rewritten by every further missed call, so an edit would be lost without a word. Its deadline,
/// responsible and completion may change like any activity's. Whether a call-back may be reopened
/// depends on the record's other call-backs (at most one open): the caller checks that.
absl::Status CheckActivityUpdate(const Activity& current, const std::set<std::string>& paths);

}  // namespace leadflow::crm
