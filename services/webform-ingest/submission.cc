#include "webform-ingest/submission.h"

#include <algorithm>
#include <memory>
#include <set>
#include <stdexcept>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "identity/identity.h"
#include "ingest/event.h"
#include "ingest/event_id.h"
#include "ingest/signature.h"

namespace leadflow::webform {
namespace {

using events::v1::Identity;

constexpr char kIdChannel[] = "wf";
constexpr int kBucketSeconds = 600;

const std::set<std::string>& ConventionalFields() {
  static const auto* names = new std::set<std::string>{
      "name",     "first_name", "last_name",  "email",           "phone",        "company",
      "city",     "message",    "utm_source", "utm_medium",      "utm_campaign", "utm_content",
      "utm_term", "page_url",   "referrer",   "_idempotency_key"};
  return *names;
}

void Append(std::string* out, const std::string& text) { ingest::AppendPart(out, text); }

}  // namespace

bool IsConventionalField(const std::string& name) { return ConventionalFields().count(name) > 0; }

std::string Sha256Hex(const std::string& data) { return ingest::Sha256Hex(data); }

bool HoneypotFilled(const std::string& value) {
  // JSON false and 0 arrive as "false" and "0": a checkbox or counter left at its default,
  // not a bot. Only a non-empty, non-false value is spam.
  std::string trimmed(absl::StripAsciiWhitespace(value));
  return !trimmed.empty() && trimmed != "false" && trimmed != "0";
}

std::string EventIdFromIdempotencyKey(const std::string& form_id, const std::string& key,
                                      const std::string& fingerprint) {
  std::string data;
  Append(&data, "idempotency-key");
  Append(&data, form_id);
  Append(&data, key);
  Append(&data, fingerprint);
  return ingest::EventId(kIdChannel, data);
}

std::string IdempotencyBinding(const std::string& form_id, const std::string& key) {
  std::string data;
  Append(&data, "idempotency-binding");
  Append(&data, form_id);
  Append(&data, key);
  return Sha256Hex(data);
}

std::string Fingerprint(const events::v1::InboundEvent& event) {
  const auto& form = event.web_form();
  std::string data;
  data.reserve(512);  // a usual submission's parts, without regrowing the buffer
  Append(&data, "fingerprint");
  Append(&data, form.form_id());
  for (const Identity& identity : event.identities()) {
    Append(&data, absl::StrCat(identity.kind(), "=", identity.value()));
  }
  const auto& person = event.person();
  for (const std::string* text :
       {&person.first_name(), &person.last_name(), &person.company(), &person.city(),
        &form.message(), &form.utm().source(), &form.utm().medium(), &form.utm().campaign(),
        &form.utm().content(), &form.utm().term(), &form.page_url(), &form.referrer()}) {
    Append(&data, *text);
  }
  // Protobuf maps have no stable order.
  std::vector<std::pair<std::string, std::string>> custom(form.custom_fields().begin(),
                                                          form.custom_fields().end());
  std::sort(custom.begin(), custom.end());
  for (const auto& [name, value] : custom) {
    Append(&data, name);
    Append(&data, value);
  }
  return Sha256Hex(data);
}

std::string RandomEventId() {
  // No provider id to derive it from: random, spelt as every event id by libs/ingest.
  return ingest::RandomEventId(kIdChannel);
}

std::string EventIdFromFingerprintBucket(const std::string& fingerprint,
                                         std::chrono::system_clock::time_point now) {
  int64_t bucket =
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count() /
      kBucketSeconds;
  std::string data;
  Append(&data, "fingerprint-bucket");
  Append(&data, fingerprint);
  Append(&data, std::to_string(bucket));
  return ingest::EventId(kIdChannel, data);
}

Submission BuildSubmission(const Fields& fields, const RequestInfo& info,
                           const SubmissionOptions& options) {
  Submission result;
  auto get = [&](const std::string& name) -> std::string {
    auto found = fields.find(name);
    return found == fields.end() ? std::string() : found->second;
  };
  if (!options.honeypot_field.empty()) {
    auto trap = fields.find(options.honeypot_field);
    if (trap != fields.end() && HoneypotFilled(trap->second)) {
      result.honeypot = true;
      return result;
    }
  }

  ingest::EventBuilder builder("webform-ingest", "webform", "web_form");
  events::v1::InboundEvent& event = builder.event();
  std::string email = get("email");
  std::string phone = get("phone");
  bool has_email = email.find_first_not_of(" \t\r\n") != std::string::npos;
  bool has_phone = phone.find_first_not_of(" \t\r\n") != std::string::npos;
  if (!has_email && !has_phone) {
    result.errors["email"] = "an email address or a phone number is required";
    result.errors["phone"] = "an email address or a phone number is required";
  }
  if (has_phone && !builder.AddPhone(phone, options.default_region).ok()) {
    result.errors["phone"] = "not a valid phone number";
  }
  if (has_email && !builder.AddEmail(email).ok()) {
    result.errors["email"] = "not an email address";
  }

  auto bounded = [&](const std::string& name, size_t limit) {
    std::string value = get(name);
    if (value.size() > limit) {
      result.errors[name] = absl::StrCat("longer than ", limit, " bytes");
    }
    return value;
  };
  std::string first_name = bounded("name", options.max_short_field_bytes);
  if (first_name.empty()) {
    first_name = bounded("first_name", options.max_short_field_bytes);
  }
  builder.Person(first_name, bounded("last_name", options.max_short_field_bytes),
                 bounded("company", options.max_short_field_bytes),
                 bounded("city", options.max_short_field_bytes));

  auto* form = event.mutable_web_form();
  form->set_form_id(info.form_id);
  form->set_message(bounded("message", options.max_message_bytes));
  auto* utm = form->mutable_utm();
  utm->set_source(bounded("utm_source", options.max_short_field_bytes));
  utm->set_medium(bounded("utm_medium", options.max_short_field_bytes));
  utm->set_campaign(bounded("utm_campaign", options.max_short_field_bytes));
  utm->set_content(bounded("utm_content", options.max_short_field_bytes));
  utm->set_term(bounded("utm_term", options.max_short_field_bytes));
  std::string page_url = bounded("page_url", options.max_url_bytes);
  if (page_url.empty()) {
    page_url = ingest::CleanHeaderText(info.referer_header, options.max_url_bytes);
  }
  form->set_page_url(page_url);
  form->set_referrer(bounded("referrer", options.max_url_bytes));

  size_t custom_count = 0;
  for (const auto& [name, value] : fields) {
    if (IsConventionalField(name) || name == options.honeypot_field) {
      continue;
    }
    if (++custom_count > options.max_custom_fields) {
      result.errors["custom_fields"] =
          absl::StrCat("at most ", options.max_custom_fields, " custom fields");
      break;
    }
    if (value.size() > options.max_custom_value_bytes) {
      result.errors[name] = absl::StrCat("longer than ", options.max_custom_value_bytes, " bytes");
      continue;
    }
    (*form->mutable_custom_fields())[name] = value;
  }
  result.idempotency_key = get("_idempotency_key");

  builder.Reference(info.form_id).Client(info.client_ip, info.user_agent);
  // A web form is submitted the moment it reaches us.
  builder.Times(info.received_at, info.received_at);
  // The event id is decided after the Redis round trip (idempotency key or fingerprint).
  ingest::EventBuilder::Built draft = std::move(builder).Draft();
  result.event = std::move(draft.event);
  result.key = std::move(draft.key);
  return result;
}

}  // namespace leadflow::webform
