#pragma once

#include <string>

#include "crm-core/domain/attempt/contact_attempt.h"
#include "leadflow/events/v1/inbound_event.pb.h"

namespace leadflow::crm {

/// Why an event cannot be processed (empty when it can): no id, no identity, an identity of an
/// unknown kind or empty value, or no payload this version handles.
std::string ValidateEvent(const events::v1::InboundEvent& event);

/// "PHONE", "EMAIL" or "MESSENGER" for a proto identity kind; empty for others.
std::string IdentityKindName(events::v1::Identity::Kind kind);

/// The channel-neutral contact attempt of a validated event, by its payload kind (one file per
/// kind beside this one). The inbound rules read only this.
ContactAttempt ToContactAttempt(const events::v1::InboundEvent& event);

// One per payload kind; each fills what is particular to its channel on top of the envelope's
// part (who, identities, event id) that ToContactAttempt fills.
void FromWebForm(const events::v1::InboundEvent& event, ContactAttempt& attempt);
void FromEmail(const events::v1::InboundEvent& event, ContactAttempt& attempt);
void FromCall(const events::v1::InboundEvent& event, ContactAttempt& attempt);
void FromMessenger(const events::v1::InboundEvent& event, ContactAttempt& attempt);

/// The relay sender of an email (its relay_address: a form builder writing on behalf of the
/// person), trimmed and lower case; empty when none. Never an identity, never matched.
std::string RelayAddress(const events::v1::EmailMessage& email);

/// "Jean Dupont" from the envelope's person; empty when no name was given.
std::string PersonName(const events::v1::InboundEvent& event);

/// The first line of the sender's words, cut for a lead title's {need}.
std::string Need(const std::string& text);

}  // namespace leadflow::crm
