#pragma once

#include <string>
#include <string_view>

namespace leadflow::ingest {

/// Hex SHA-256 (OpenSSL EVP).
std::string Sha256Hex(std::string_view data);

/// The one spelling of an event id for every channel: "<channel>:" + hex SHA-256 of the
/// provider's own id for the thing (Message-Id, CallSid, wamid, form id + idempotency key…).
/// The same provider id always gives the same event id, so a redelivery by the provider or a
/// retry after a lost answer is applied once by crm-core. `channel` is a short fixed tag
/// ("wf", "email", "call", "msg").
std::string EventId(std::string_view channel, std::string_view provider_id);

/// An event id with no provider id to derive it from (a web form posted without an
/// Idempotency-Key): 256 random bits from OpenSSL's generator, spelt as EventId spells every
/// event id ("<channel>:" and 64 hex digits). Never the same twice in practice, so the caller
/// must record it (e.g. under the content's fingerprint) to recognise a double submit.
std::string RandomEventId(std::string_view channel);

/// Appends `part` as "<length>:<part>;", so that joined parts cannot be confused
/// ("ab"+"c" vs "a"+"bc") when several make one provider id.
void AppendPart(std::string* out, std::string_view part);

}  // namespace leadflow::ingest
