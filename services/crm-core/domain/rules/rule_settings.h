#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace leadflow::crm {

/// Settings of the inbound rules (ARCHITECTURE.md, "Inbound processing rules").
struct RuleSettings {
  std::string title_template = "{city} – {name} – {need}";
  /// Deadline of the activity an inbound contact implies ("process the request", "call back"),
  /// from the moment the event is processed.
  std::chrono::minutes task_deadline{60};
  /// Identities a lead may hold through inbound traffic. Past it, an event still joins the lead
  /// (an activity, a repeat) but adds no identity: otherwise anyone who knows a person's phone
  /// could attach any number of addresses to their lead, and every later batch would lock and
  /// read them all.
  size_t max_inbound_identities = 20;
};

}  // namespace leadflow::crm
