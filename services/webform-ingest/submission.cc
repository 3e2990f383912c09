#include "webform-ingest/submission.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

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

std::string EventIdFromIdempotencyKey(const std::string& form_id, const std::string& key) {
  std::string data;
  Append(&data, "idempotency-key");
  Append(&data, form_id);
  Append(&data, key);
  return ingest::EventId(kIdChannel, data);
}

std::string Fingerprint(const events::v1::InboundEvent& event) {
  const auto& form = event.web_form();
  std::string data;
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
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    throw std::runtime_error("RAND_bytes failed");
  }
  // No provider id to derive it from: a random one, in the same shape as every event id.
  return ingest::EventId(kIdChannel, ingest::HexEncode(std::string_view(
                                         reinterpret_cast<const char*>(bytes), sizeof(bytes))));
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

  events::v1::InboundEvent& event = result.event;
  std::string email = get("email");
  std::string phone = get("phone");
  bool has_email = email.find_first_not_of(" \t\r\n") != std::string::npos;
  bool has_phone = phone.find_first_not_of(" \t\r\n") != std::string::npos;
  if (!has_email && !has_phone) {
    result.errors["email"] = "an email address or a phone number is required";
    result.errors["phone"] = "an email address or a phone number is required";
  }
  if (has_phone) {
    auto normalised = identity::NormalizePhone(phone, options.default_region);
    if (normalised.ok()) {
      Identity* identity = event.add_identities();
      identity->set_kind(Identity::PHONE);
      identity->set_value(*normalised);
    } else {
      result.errors["phone"] = "not a valid phone number";
    }
  }
  if (has_email) {
    auto normalised = identity::NormalizeEmail(email);
    if (normalised.ok()) {
      Identity* identity = event.add_identities();
      identity->set_kind(Identity::EMAIL);
      identity->set_value(*normalised);
    } else {
      result.errors["email"] = "not an email address";
    }
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
  auto* person = event.mutable_person();
  person->set_first_name(first_name);
  person->set_last_name(bounded("last_name", options.max_short_field_bytes));
  person->set_company(bounded("company", options.max_short_field_bytes));
  person->set_city(bounded("city", options.max_short_field_bytes));

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

  auto* source = event.mutable_source();
  source->set_service("webform-ingest");
  source->set_provider("webform");
  source->set_reference(info.form_id);
  source->set_client_ip(info.client_ip);
  source->set_user_agent(ingest::CleanHeaderText(info.user_agent, 512));
  *event.mutable_received_at() = ingest::ToTimestamp(info.received_at);
  // A web form is submitted the moment it reaches us.
  *event.mutable_occurred_at() = ingest::ToTimestamp(info.received_at);

  identity::Canonicalize(event.mutable_identities());
  result.key = identity::PrimaryKey(event.identities());
  return result;
}

}  // namespace leadflow::webform
