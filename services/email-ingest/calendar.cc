#include "email-ingest/calendar.h"

#include <libical/ical.h>

#include <memory>
#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_format.h"

namespace leadflow::email {
namespace {

struct ComponentFree {
  void operator()(icalcomponent* component) const { icalcomponent_free(component); }
};

const char* MethodName(icalproperty_method method) {
  switch (method) {
    case ICAL_METHOD_PUBLISH:
      return "PUBLISH";
    case ICAL_METHOD_REQUEST:
      return "REQUEST";
    case ICAL_METHOD_REPLY:
      return "REPLY";
    case ICAL_METHOD_ADD:
      return "ADD";
    case ICAL_METHOD_CANCEL:
      return "CANCEL";
    case ICAL_METHOD_REFRESH:
      return "REFRESH";
    case ICAL_METHOD_COUNTER:
      return "COUNTER";
    case ICAL_METHOD_DECLINECOUNTER:
      return "DECLINECOUNTER";
    default:
      return "";
  }
}

// "2026-12-02 09:00" (a date-only value: "2026-12-02"); `with_date` false gives "09:30".
std::string TimeText(const icaltimetype& time, bool with_date) {
  if (time.is_date) {
    return absl::StrFormat("%04d-%02d-%02d", time.year, time.month, time.day);
  }
  if (!with_date) {
    return absl::StrFormat("%02d:%02d", time.hour, time.minute);
  }
  return absl::StrFormat("%04d-%02d-%02d %02d:%02d", time.year, time.month, time.day, time.hour,
                         time.minute);
}

// The zone a time is written in: "UTC", the TZID parameter, or nothing (floating time).
std::string ZoneOf(icalproperty* property, const icaltimetype& time) {
  if (time.is_date) {
    return "";
  }
  if (icaltime_is_utc(time)) {
    return "UTC";
  }
  if (icalparameter* tzid = icalproperty_get_first_parameter(property, ICAL_TZID_PARAMETER)) {
    if (const char* name = icalparameter_get_tzid(tzid)) {
      return name;
    }
  }
  return "";
}

std::string Text(const char* value) { return value != nullptr ? std::string(value) : ""; }

}  // namespace

std::optional<CalendarPart> ReadCalendar(std::string_view ics,
                                         std::string_view content_type_method) {
  if (ics.size() > kMaxCalendarBytes) {
    return std::nullopt;
  }
  static std::once_flag once;
  std::call_once(once, [] { icalerror_set_errors_are_fatal(0); });
  const std::string copy(ics);  // libical reads a NUL-terminated string
  std::unique_ptr<icalcomponent, ComponentFree> root(icalparser_parse_string(copy.c_str()));
  if (root == nullptr) {
    return std::nullopt;
  }
  icalcomponent* calendar = root.get();
  if (icalcomponent_isa(calendar) != ICAL_VCALENDAR_COMPONENT) {
    calendar = icalcomponent_get_first_component(root.get(), ICAL_VCALENDAR_COMPONENT);
    if (calendar == nullptr) {
      return std::nullopt;
    }
  }
  CalendarPart part;
  part.method = MethodName(icalcomponent_get_method(calendar));
  if (part.method.empty()) {
    part.method = absl::AsciiStrToUpper(absl::StripAsciiWhitespace(
        absl::string_view(content_type_method.data(), content_type_method.size())));
  }
  icalcomponent* event = icalcomponent_get_first_component(calendar, ICAL_VEVENT_COMPONENT);
  if (event == nullptr) {
    return part;
  }
  std::string text;
  auto line = [&text](const std::string& value) {
    if (value.empty()) return;
    if (!text.empty()) text += '\n';
    text += value;
  };
  line(Text(icalcomponent_get_summary(event)));
  if (icalproperty* start = icalcomponent_get_first_property(event, ICAL_DTSTART_PROPERTY)) {
    const icaltimetype from = icalproperty_get_dtstart(start);
    if (!icaltime_is_null_time(from) && icaltime_is_valid_time(from)) {
      std::string when = "When: " + TimeText(from, true);
      const std::string zone = ZoneOf(start, from);
      if (icalproperty* end = icalcomponent_get_first_property(event, ICAL_DTEND_PROPERTY)) {
        const icaltimetype to = icalproperty_get_dtend(end);
        if (!icaltime_is_null_time(to) && icaltime_is_valid_time(to) && !from.is_date) {
          const bool same_day =
              to.year == from.year && to.month == from.month && to.day == from.day;
          when += " – " + TimeText(to, !same_day);
        }
      }
      if (!zone.empty()) when += " " + zone;
      line(when);
    }
  }
  if (std::string where = Text(icalcomponent_get_location(event)); !where.empty()) {
    line("Where: " + where);
  }
  if (icalproperty* organizer = icalcomponent_get_first_property(event, ICAL_ORGANIZER_PROPERTY)) {
    std::string address = Text(icalproperty_get_organizer(organizer));
    if (absl::StartsWithIgnoreCase(address, "mailto:")) address.erase(0, 7);
    std::string name;
    if (icalparameter* cn = icalproperty_get_first_parameter(organizer, ICAL_CN_PARAMETER)) {
      name = Text(icalparameter_get_cn(cn));
    }
    if (!name.empty() && !address.empty()) {
      line("Organizer: " + name + " <" + address + ">");
    } else if (!name.empty() || !address.empty()) {
      line("Organizer: " + (name.empty() ? address : name));
    }
  }
  if (std::string description = Text(icalcomponent_get_description(event)); !description.empty()) {
    text += text.empty() ? description : "\n\n" + description;
  }
  part.text = std::move(text);
  return part;
}

}  // namespace leadflow::email
