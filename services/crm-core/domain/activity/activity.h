#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

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

}  // namespace leadflow::crm
