#include "ingest/event.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "identity/identity.h"

namespace leadflow::ingest {

using events::v1::Identity;

bool ValidTraceparent(std::string_view value) {
  if (value.size() != 55) {
    return false;
  }
  for (size_t i = 0; i < value.size(); ++i) {
    bool dash = i == 2 || i == 35 || i == 52;
    if (dash ? value[i] != '-' : !absl::ascii_isxdigit(value[i])) {
      return false;
    }
  }
  return true;
}

std::string CleanHeaderText(std::string_view text, size_t max_bytes) {
  std::string out;
  for (char c : text.substr(0, max_bytes)) {
    auto byte = static_cast<unsigned char>(c);
    out.push_back(byte >= 0x20 && byte < 0x7f ? c : '?');
  }
  return out;
}

google::protobuf::Timestamp ToTimestamp(std::chrono::system_clock::time_point time) {
  auto nanos =
      std::chrono::duration_cast<std::chrono::nanoseconds>(time.time_since_epoch()).count();
  google::protobuf::Timestamp timestamp;
  timestamp.set_seconds(nanos / 1000000000);
  timestamp.set_nanos(static_cast<int32_t>(nanos % 1000000000));
  return timestamp;
}

EventBuilder::EventBuilder(std::string service, std::string provider, std::string event_type)
    : event_type_(std::move(event_type)) {
  event_.mutable_source()->set_service(std::move(service));
  event_.mutable_source()->set_provider(std::move(provider));
}

EventBuilder& EventBuilder::Reference(std::string reference) {
  event_.mutable_source()->set_reference(std::move(reference));
  return *this;
}

EventBuilder& EventBuilder::Client(std::string client_ip, std::string_view user_agent) {
  event_.mutable_source()->set_client_ip(std::move(client_ip));
  event_.mutable_source()->set_user_agent(CleanHeaderText(user_agent, 512));
  return *this;
}

EventBuilder& EventBuilder::Person(std::string first_name, std::string last_name,
                                   std::string company, std::string city) {
  auto* person = event_.mutable_person();
  person->set_first_name(std::move(first_name));
  person->set_last_name(std::move(last_name));
  person->set_company(std::move(company));
  person->set_city(std::move(city));
  return *this;
}

EventBuilder& EventBuilder::Times(std::chrono::system_clock::time_point occurred,
                                  std::chrono::system_clock::time_point received) {
  *event_.mutable_occurred_at() = ToTimestamp(occurred);
  *event_.mutable_received_at() = ToTimestamp(received);
  return *this;
}

EventBuilder& EventBuilder::Traceparent(const std::optional<std::string>& traceparent) {
  if (traceparent && ValidTraceparent(*traceparent)) {
    traceparent_ = *traceparent;
  } else {
    traceparent_.reset();
  }
  return *this;
}

EventBuilder& EventBuilder::EventId(std::string event_id) {
  event_.set_event_id(std::move(event_id));
  return *this;
}

absl::Status EventBuilder::AddPhone(std::string_view raw, std::string_view default_region) {
  auto normalised = identity::NormalizePhone(raw, default_region);
  if (!normalised.ok()) {
    return normalised.status();
  }
  Identity* identity = event_.add_identities();
  identity->set_kind(Identity::PHONE);
  identity->set_value(*normalised);
  return absl::OkStatus();
}

absl::Status EventBuilder::AddEmail(std::string_view raw) {
  auto normalised = identity::NormalizeEmail(raw);
  if (!normalised.ok()) {
    return normalised.status();
  }
  Identity* identity = event_.add_identities();
  identity->set_kind(Identity::EMAIL);
  identity->set_value(*normalised);
  return absl::OkStatus();
}

void EventBuilder::AddMessenger(std::string_view platform, std::string_view id) {
  Identity* identity = event_.add_identities();
  identity->set_kind(Identity::MESSENGER);
  identity->set_value(absl::StrCat(absl::string_view(platform.data(), platform.size()), ":",
                                   absl::string_view(id.data(), id.size())));
}

absl::StatusOr<EventBuilder::Built> EventBuilder::Finish() && {
  if (event_.identities().empty()) {
    return absl::FailedPreconditionError("an event needs at least one identity");
  }
  if (event_.event_id().empty()) {
    return absl::FailedPreconditionError("an event needs an event id");
  }
  return std::move(*this).Draft();
}

EventBuilder::Built EventBuilder::Draft() && {
  identity::Canonicalize(event_.mutable_identities());
  Built built;
  built.key = identity::PrimaryKey(event_.identities());
  built.headers.push_back({"event-type", event_type_});
  if (traceparent_) {
    built.headers.push_back({"traceparent", *traceparent_});
  }
  built.event = std::move(event_);
  return built;
}

}  // namespace leadflow::ingest
