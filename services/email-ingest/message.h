#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "email-ingest/mime.h"
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
  kAutoSubmitted,    // Auto-Submitted: anything but "no"
  kAutoReplyHeader,  // X-Autoreply, X-Autorespond, Precedence: auto_reply
  kBulkPrecedence,   // Precedence: bulk, junk, list
  kMailingList,      // List-Id, List-Unsubscribe
  kDeliveryReport,   // multipart/report (DSN, MDN)
  kDaemonSender,     // MAILER-DAEMON@, postmaster@
  kEmptyReturnPath,  // MAIL FROM:<> or Return-Path: <>
  kLoop,             // our own X-LeadFlow-Loop header
  kNoSender,         // no usable sender address at all
};
const char* DropReasonName(DropReason reason);
inline constexpr DropReason kAllDropReasons[] = {
    DropReason::kAutoSubmitted,   DropReason::kAutoReplyHeader,
    DropReason::kBulkPrecedence,  DropReason::kMailingList,
    DropReason::kDeliveryReport,  DropReason::kDaemonSender,
    DropReason::kEmptyReturnPath, DropReason::kLoop,
    DropReason::kNoSender};

/// The never-a-lead filters, first match wins; std::nullopt: the message goes on.
std::optional<DropReason> NeverALead(const ParsedMessage& message, const Envelope& envelope);

/// The event id: "email:" + SHA-256 of the Message-ID; without one, of the significant headers
/// (from, to, cc, date, subject) and the text, so that the same message received twice (an SMTP
/// retry, IMAP and SMTP) is still one event.
std::string EmailEventId(const ParsedMessage& message);

/// The sender: the From address, else the envelope sender.
std::string SenderAddress(const ParsedMessage& message, const Envelope& envelope);

/// The InboundEvent for a message that passed the filters. InvalidArgument when the sender's
/// address is not an email address crm-core can match on.
absl::StatusOr<ingest::EventBuilder::Built> BuildEmailEvent(const ParsedMessage& message,
                                                            const Envelope& envelope);

}  // namespace leadflow::email
