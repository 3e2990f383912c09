#pragma once

#include <chrono>
#include <map>
#include <string>

#include "leadflow/events/v1/inbound_event.pb.h"
#include "webform-ingest/body.h"

namespace leadflow::webform {

/// What the HTTP layer knows about a submission besides its fields.
struct RequestInfo {
  std::string form_id;
  std::string client_ip;
  std::string user_agent;
  std::string referer_header;  // page_url when the form sends none
  std::chrono::system_clock::time_point received_at;
};

struct SubmissionOptions {
  std::string default_region = "FR";
  std::string honeypot_field = "_hp";
  size_t max_custom_fields = 50;
  size_t max_custom_value_bytes = 2048;
  size_t max_message_bytes = 16 * 1024;
  size_t max_short_field_bytes = 512;  // names, company, city, utm_*
  size_t max_url_bytes = 2048;
};

/// The outcome of turning fields into an event.
struct Submission {
  /// Field name → why it is not acceptable; a non-empty map is a 422.
  std::map<std::string, std::string> errors;
  /// The honeypot field was filled: answer as if accepted, publish nothing.
  bool honeypot = false;
  /// From the `_idempotency_key` field (the Idempotency-Key header takes precedence upstream).
  std::string idempotency_key;
  /// event_id and occurred_at are left for the caller.
  events::v1::InboundEvent event;
  /// The Kafka key: the primary normalised identity.
  std::string key;
};

/// Validates and normalises the fields of a web form into an InboundEvent (without event id).
/// Needs at least one of email and phone; every one given must be valid.
Submission BuildSubmission(const Fields& fields, const RequestInfo& info,
                           const SubmissionOptions& options);

/// "wf:" + hex SHA-256 of the form id, the client's idempotency key and the content's
/// Fingerprint: a retry of the same submission gets the same event id, so crm-core applies it
/// once; the same key with other content is another event id, so that it can never be
/// deduplicated away (after the Redis binding expired, or while Redis is down).
std::string EventIdFromIdempotencyKey(const std::string& form_id, const std::string& key,
                                      const std::string& fingerprint);

/// Hex SHA-256 of the form id and the idempotency key: the Redis key ("idem:<this>") under
/// which the key is bound to the fingerprint of the content first sent with it.
std::string IdempotencyBinding(const std::string& form_id, const std::string& key);

/// Hex SHA-256 over the form id and every normalised field of the event (not the times, the
/// client address or the user agent): two identical submissions have the same fingerprint.
std::string Fingerprint(const events::v1::InboundEvent& event);

/// A fresh random event id ("wf:" + 64 hex digits, as every event id).
std::string RandomEventId();

/// Without Redis: "wf:" + hash of the fingerprint and its 10-minute time bucket, so identical
/// submissions within the same bucket still collapse in crm-core.
std::string EventIdFromFingerprintBucket(const std::string& fingerprint,
                                         std::chrono::system_clock::time_point now);

/// Hex SHA-256 (ingest::Sha256Hex).
std::string Sha256Hex(const std::string& data);

/// Whether a honeypot field's value marks the submission as spam: non-empty and not a false
/// value ("false", "0"), since JSON false or 0 is what a default checkbox or counter sends.
bool HoneypotFilled(const std::string& value);

/// The conventional field names (everything else is a custom field).
bool IsConventionalField(const std::string& name);

}  // namespace leadflow::webform
