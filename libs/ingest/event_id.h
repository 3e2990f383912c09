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

/// Appends `part` as "<length>:<part>;", so that joined parts cannot be confused
/// ("ab"+"c" vs "a"+"bc") when several make one provider id.
void AppendPart(std::string* out, std::string_view part);

}  // namespace leadflow::ingest
