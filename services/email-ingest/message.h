#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "email-ingest/mime.h"
#include "email-ingest/smtp_session.h"
#include "ingest/event.h"

namespace leadflow::email {

/// How a message reached us, besides its own headers.
struct Envelope {
  /// "smtp", "lmtp", "imap", "mailgun", "postmark", "sendgrid".
  std::string provider;
  /// The envelope sender (MAIL FROM, Mailgun's `sender`…): "" for the null sender `<>` of
  /// bounces and notifications; std::nullopt when the channel does not say.
  std::optional<std::string> mail_from;
  /// Our address it came in through (first accepted recipient, the polled mailbox…).
  std::string mailbox;
  std::string client_ip;
  std::chrono::system_clock::time_point received;
};

/// Why a message is never a lead. Each is a label of email_dropped_total{reason}.
enum class DropReason {
  kAutoSubmitted,     // Auto-Submitted: anything but "no"
  kAutoReplyHeader,   // X-Autoreply, X-Autorespond, Precedence: auto_reply
  kBulkPrecedence,    // Precedence: bulk, junk, list
  kMailingList,       // List-Id, List-Unsubscribe
  kDeliveryReport,    // multipart/report (DSN, MDN)
  kDaemonSender,      // MAILER-DAEMON@, postmaster@
  kEmptyReturnPath,   // MAIL FROM:<> or Return-Path: <>
  kLoop,              // our own X-LeadFlow-Loop header
  kNoSender,          // no usable sender address at all
  kAutoReplySubject,  // an out-of-office subject ("Automatic reply:", "Abwesenheitsnotiz"…)
  kOwnAddress,        // sent from one of our own accepted addresses or domains
  kCalendarReply,     // an answer to an invitation (text/calendar METHOD:REPLY: "Accepted: …")
};
const char* DropReasonName(DropReason reason);
inline constexpr DropReason kAllDropReasons[] = {
    DropReason::kAutoSubmitted,   DropReason::kAutoReplyHeader,
    DropReason::kBulkPrecedence,  DropReason::kMailingList,
    DropReason::kDeliveryReport,  DropReason::kDaemonSender,
    DropReason::kEmptyReturnPath, DropReason::kLoop,
    DropReason::kNoSender,        DropReason::kAutoReplySubject,
    DropReason::kOwnAddress,      DropReason::kCalendarReply};

/// The out-of-office subject prefixes of the common mail programs (EMAIL_AUTOREPLY_SUBJECTS'
/// default), compared case-insensitively with the start of the Subject.
std::vector<std::string> DefaultAutoReplySubjects();

/// The settings the filters and the event builder read (docs/email-ingest.md).
struct MessageRules {
  /// Our own addresses (EMAIL_RECIPIENTS, same spelling): mail *from* them is not a lead
  /// (own_address)…
  RecipientPolicy own_addresses;
  /// …unless this is set (EMAIL_OWN_ADDRESS_MAIL=accept).
  bool accept_own_address = false;
  /// Subject prefixes of automatic replies.
  std::vector<std::string> autoreply_subjects = DefaultAutoReplySubjects();
  /// Senders that write on behalf of the person in Reply-To (form builders' notifications):
  /// the Reply-To is the person (EMAIL_RELAY_SENDERS).
  RecipientPolicy relay_senders;
};

/// A no-reply address ("no-reply@", "noreply@", "do-not-reply@", "forms-receipts-noreply@"…):
/// nobody reads it, so it is never the person who wrote.
bool IsNoReplyAddress(std::string_view address);

/// Who the message is from, as the event names the person.
struct Sender {
  std::string address;
  std::string name;
  /// The relay the message came through when the person is the Reply-To ("" otherwise).
  std::string relay;
};
/// The person: the From (else the envelope sender); the Reply-To instead when the From is a
/// configured relay sender or a no-reply address and a Reply-To is given.
Sender PersonOf(const ParsedMessage& message, const Envelope& envelope, const MessageRules& rules);

/// The never-a-lead filters, first match wins; std::nullopt: the message goes on.
std::optional<DropReason> NeverALead(const ParsedMessage& message, const Envelope& envelope,
                                     const MessageRules& rules = {});

/// The event id: "email:" + SHA-256 of the Message-ID together with the From address
/// (lower-case), so that the same message received twice (an SMTP retry, IMAP and SMTP, a
/// webhook) is still one event while another sender reusing a Message-ID is another event.
/// Without a Message-ID, of the significant headers (from, to, cc, date, subject) and the text.
std::string EmailEventId(const ParsedMessage& message);
/// The provider id EmailEventId hashes for a message with a Message-ID.
std::string MessageIdKey(std::string_view message_id, std::string_view from_address);

/// The Kafka key of a message: its thread's first Message-ID as the message knows it (the first
/// of References, else In-Reply-To, else its own Message-ID), "email-thread:<id>"; without any,
/// empty (the sender's identity keys it). A thread's messages, whoever sent them, are therefore
/// on one partition and applied by crm-core in the order they were published: keyed by sender,
/// a colleague's reply could be applied before the message it answers. The one-person rule does
/// not rest on the key (crm-core locks every identity of an event: docs/architecture.md).
std::string ThreadPartitionKey(const ParsedMessage& message);

/// The sender: the From address, else the envelope sender.
std::string SenderAddress(const ParsedMessage& message, const Envelope& envelope);

/// The InboundEvent for a message that passed the filters. InvalidArgument when the sender's
/// address is not an email address crm-core can match on.
absl::StatusOr<ingest::EventBuilder::Built> BuildEmailEvent(const ParsedMessage& message,
                                                            const Envelope& envelope,
                                                            const MessageRules& rules = {});

}  // namespace leadflow::email
