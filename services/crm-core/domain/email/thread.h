#pragma once

// The email channel's rules as plain C++ (no I/O): which earlier messages a reply names, where a
// reply goes, and the bounds of what is kept of a message. The inbound consumer
// (inbound/email_thread.cc) reads the stored messages and applies these.
//
// Threads. A message whose In-Reply-To or References names a stored message goes to the record
// that message is attached to (lead, contact, company or deal) when its sender took part in the
// thread (the From, To, Cc or Reply-To of one of its kept messages), is an address the record
// knows (its own, or a contact linked to the company or deal), or writes from the same domain as
// one of the thread's senders or of the record's addresses — unless that domain is a public mail
// provider's (SharedMailDomain) or one of ours; no lead is made and the sender's address is added
// to nobody. Any other sender quoting a known Message-ID is a new contact attempt of their own: a
// Message-ID is no secret. In the
// thread, the open EMAIL activity takes the reply (one open "reply" activity per thread); once it
// is completed, the next message opens a new one on the same record.

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "crm-core/domain/common/limits.h"
#include "crm-core/domain/common/types.h"

namespace leadflow::crm::domain {

/// Bounds of a kept message (the schema CHECKs the same).
inline constexpr size_t kMaxMessageIdBytes = 998;              // RFC 5322 line length
inline constexpr size_t kMaxThreadLookups = 20;                // Message-IDs of a reply looked up
inline constexpr size_t kMaxKeptReferences = 50;               // References kept with the message
inline constexpr size_t kMaxKeptAddresses = 100;               // To, Cc each
inline constexpr size_t kMaxAddressBytes = kMaxIdentityBytes;  // one address
inline constexpr size_t kMaxKeptAttachments = 100;             // attachment descriptions
inline constexpr size_t kMaxSubjectBytes = 1000;               // kept subject
inline constexpr size_t kMaxBodyBytes = 64 * 1024;             // kept text
// From display names and attachment names: kMaxNameBytes (common/limits.h).

/// A Message-ID crm-core can keep, look up and lock: 1–998 bytes of printable ASCII (RFC 5322's
/// msg-id, angle brackets removed). Others (control bytes, 8-bit, oversized) are treated as
/// absent.
bool IsUsableMessageId(std::string_view id);

/// The Message-IDs a message names as earlier ones, the most telling first: In-Reply-To, then
/// References from the newest to the oldest; without duplicates, its own id, or ids that are not
/// usable (IsUsableMessageId); at most kMaxThreadLookups.
std::vector<std::string> ThreadCandidates(std::string_view own_message_id,
                                          std::string_view in_reply_to,
                                          const std::vector<std::string>& references);

/// A stored message a reply may name, as the consumer found it under the thread's lock.
struct ThreadMessage {
  std::string message_id;
  std::string thread_key;
  EntityRef owner;                       // following merges
  int64_t owner_responsible = 0;         // 0: nobody (or deactivated)
  std::optional<int64_t> open_activity;  // the thread's open EMAIL activity, if any
};

/// Where a reply goes.
struct ThreadDecision {
  std::string thread_key;
  EntityRef owner;
  /// Set: the reply joins this open activity. Unset: a new open EMAIL activity on `owner`, for
  /// `responsible` (0: nobody).
  std::optional<int64_t> join_activity;
  int64_t responsible = 0;
};

/// The decision for a reply whose candidates (ThreadCandidates, in that order) were looked up:
/// the first candidate that is stored decides. Nothing stored: not a reply of ours (nullopt), the
/// sender is matched as for any message.
std::optional<ThreadDecision> DecideThread(const std::vector<std::string>& candidates,
                                           const std::vector<ThreadMessage>& stored);

/// Public mail providers' domains by default (CRM_EMAIL_PUBLIC_DOMAINS): there, one address's
/// domain says nothing of whose colleague another one is. "name.*" stands for "name." followed by
/// any suffix (gmx.de, gmx.net, gmx.co.uk).
const std::vector<std::string>& DefaultPublicMailDomains();

/// A public mail domain pattern as configured, normalised (trimmed, lower case): a domain, or
/// "name.*". Empty when it is not one (no dot, a space, an "@", a "*" elsewhere).
std::string NormalizeMailDomainPattern(std::string_view pattern);

/// The domain of `address` (lower case, after its last "@"); empty without one.
std::string AddressDomain(std::string_view address);

/// Whether `domain` (lower case) matches one of `patterns` (NormalizeMailDomainPattern's form).
bool SharedMailDomain(const std::vector<std::string>& patterns, std::string_view domain);

/// The domain through which `sender` (lower case) may join a thread by writing from the same
/// domain as its senders: its domain, or empty when that says nothing — no domain, a public mail
/// provider's (`public_patterns`), one of ours (`own_domains`, or the domain of `mailbox`, the
/// address of ours the message came in through).
std::string ColleagueDomain(std::string_view sender,
                            const std::vector<std::string>& public_patterns,
                            const std::set<std::string>& own_domains, std::string_view mailbox);

/// Whether the Reply-To of mail that came in through `mailbox` (our address) may find the
/// sender's record: only for the addresses in `trusted` (normalised, lower case), e.g. a form
/// relay's mailbox. Elsewhere only the From matches.
bool ReplyToTrusted(const std::set<std::string>& trusted, std::string_view mailbox);

/// At most `max_bytes` of `text`, cut at a UTF-8 character boundary.
std::string CutUtf8(std::string_view text, size_t max_bytes);

/// A recipient address of ours for an email route, normalised (trimmed, lower-cased): "local@
/// domain" with 1–64 and 1–255 bytes, no space, no second "@". Empty when it is not one.
std::string NormalizeRouteAddress(std::string_view address);

}  // namespace leadflow::crm::domain
