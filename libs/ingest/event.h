#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kafka/types.h"
#include "leadflow/events/v1/inbound_event.pb.h"

namespace leadflow::ingest {

/// W3C trace context: "00-<32 hex>-<16 hex>-<2 hex>"; anything else is not passed on.
bool ValidTraceparent(std::string_view value);

/// Header text from a client (User-Agent, Referer): at most `max_bytes`, printable ASCII, every
/// other byte a '?' (headers are not UTF-8 by contract; logs and JSON stay clean).
std::string CleanHeaderText(std::string_view text, size_t max_bytes);

/// Builds the InboundEvent every channel publishes, with the parts every channel shares:
/// source, person, canonical identities, times, event id, Kafka key and headers. The
/// channel-specific payload (web_form, email, call, messenger) is set on event() directly.
class EventBuilder {
 public:
  /// `service`: "webform-ingest"…; `provider`: "webform", "mailgun", "twilio"…;
  /// `event_type`: the Kafka `event-type` header ("web_form", "email"…).
  EventBuilder(std::string service, std::string provider, std::string event_type);

  EventBuilder& Reference(std::string reference);
  EventBuilder& Client(std::string client_ip, std::string_view user_agent);
  EventBuilder& Person(std::string first_name, std::string last_name, std::string company,
                       std::string city);
  /// When it happened (the provider's time) and when we received it.
  EventBuilder& Times(std::chrono::system_clock::time_point occurred,
                      std::chrono::system_clock::time_point received);
  /// Passed on as a Kafka header when it is valid W3C trace context; dropped otherwise.
  EventBuilder& Traceparent(const std::optional<std::string>& traceparent);
  EventBuilder& EventId(std::string event_id);

  /// Normalised to E.164 with `default_region` for numbers without a country code.
  absl::Status AddPhone(std::string_view raw, std::string_view default_region);
  /// Normalised (lower-case domain, trimmed).
  absl::Status AddEmail(std::string_view raw);
  /// A messenger identity, "<platform>:<id>" (already stable: no normalisation).
  void AddMessenger(std::string_view platform, std::string_view id);

  events::v1::InboundEvent& event() { return event_; }

  /// The event to publish: identities in canonical order, the primary one as Kafka key.
  struct Built {
    events::v1::InboundEvent event;
    std::string key;
    std::vector<kafka::Header> headers;
  };
  /// FailedPrecondition without an identity (crm-core needs one to find the person) or
  /// without an event id.
  absl::StatusOr<Built> Finish() &&;
  /// The same without the checks, for a service that decides the event id later (after a
  /// Redis round trip) and validates identities itself: identities canonical, key and headers
  /// set, event id possibly empty.
  Built Draft() &&;

 private:
  events::v1::InboundEvent event_;
  std::string event_type_;
  std::optional<std::string> traceparent_;
};

/// protobuf's Timestamp of a time point.
google::protobuf::Timestamp ToTimestamp(std::chrono::system_clock::time_point time);

}  // namespace leadflow::ingest
