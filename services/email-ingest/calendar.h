#pragma once

// Calendar parts (text/calendar, RFC 5545 with iTIP's METHOD, RFC 5546), read with libical: an
// answer to an invitation (METHOD:REPLY, "Accepted: …") is an automatic message, never a lead;
// an invitation sent as its only content gets readable text.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace leadflow::email {

/// The longest calendar part looked at; a longer one is only described as an attachment.
inline constexpr size_t kMaxCalendarBytes = 256 * 1024;

struct CalendarPart {
  std::string method;  // iTIP method, upper case ("REQUEST", "REPLY", "CANCEL"…); may be empty
  /// The first event in words, one line each when present: its summary, when, where, organizer:
  ///   Demo LeadFlow
  ///   When: 2026-12-02 09:00 – 09:30 UTC
  ///   Where: Salle 1
  ///   Organizer: Nadia Roux <nadia.roux@fabrikam.example>
  std::string text;
};

/// The calendar in `ics` (UTF-8); `content_type_method` (the Content-Type's `method=`) stands in
/// when the calendar names none. nullopt when it is no calendar or longer than kMaxCalendarBytes.
std::optional<CalendarPart> ReadCalendar(std::string_view ics,
                                         std::string_view content_type_method = "");

}  // namespace leadflow::email
