#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "email-ingest/intake.h"
#include "email-ingest/provider.h"
#include "email-ingest/token_ledger.h"
#include "email-ingest/webhook_form.h"
#include "http/server.h"
#include "ingest/signature.h"
#include "metrics/metrics.h"

namespace leadflow::email {

struct WebhookOptions {
  /// Mailgun's HTTP webhook signing key; empty: the Mailgun routes are not served.
  std::string mailgun_signing_key;
  /// How far Mailgun's timestamp may be from now, either side. Mailgun retries a delivery that
  /// was not answered 200 or 406 for 8 hours (after 10 min, 15 min, 30 min, 1 h, 2 h, 4 h), and a
  /// retry may carry the first attempt's signature: the window covers the whole schedule, or the
  /// last retries of a message refused while Kafka was down would be refused as stale and lost.
  std::chrono::seconds mailgun_window{9 * 3600};
  /// "user:password" Postmark / SendGrid put in the webhook URL; empty: route not served.
  std::string postmark_basic_auth;
  std::string sendgrid_basic_auth;
  /// Mailgun tokens remembered (each for twice the window) so that none is used twice.
  size_t replay_capacity = 100000;
};

/// The message of a Mailgun forward() post (parsed fields): `message-headers`; the subject
/// Mailgun decoded (`subject`) rather than the header's, `from` when the headers lack From;
/// `body-plain`, `body-html`; the files as attachments.
ProviderMessage MailgunMessage(const Form& form);
/// The message of a Postmark inbound post: `Headers`; the sender from `FromFull`, else `From`
/// with its display name (or `FromName`); `ToFull`, `CcFull`, `ReplyTo`, `Subject`, `Date`,
/// `TextBody`, `HtmlBody`; `Attachments` as metadata.
ProviderMessage PostmarkMessage(const nlohmann::json& json);
/// The message of a SendGrid Inbound Parse post in parsed mode (no `email` field): `headers`,
/// whose raw 8-bit Subject, From, To and Cc lines are read in the charset `charsets` names for
/// them; `subject` and `from` when the headers lack them; `text` and `html` in their charsets;
/// the files as attachments, named as `attachment-info` names them.
ProviderMessage SendgridMessage(const Form& form);

/// The inbound-mail providers' webhooks. Each request is authenticated before anything is
/// read from it, and answered after the intake decided, in the provider's own retry terms
/// (docs/email-ingest.md):
/// - Mailgun (POST /v1/email/mailgun, raw MIME: /v1/email/mailgun/mime): 200 stops delivery,
///   406 rejects for good, anything else is retried → 401 unsigned, 403 forged, stale or its
///   token reused with another message, 406 malformed or unusable, 503 when Kafka did not take
///   the event (the token is then free for Mailgun's retry) or while the same request is still
///   being published; a repeat of an accepted request is 200 again, with nothing published.
/// - Postmark (POST /v1/email/postmark, Basic auth): 403 stops retries, anything else non-200 is
///   retried → 401 for missing or wrong credentials (a misconfigured password is retried, not
///   lost), 403 for a malformed or unusable message, 503 when Kafka did not take it.
/// - SendGrid Inbound Parse (POST /v1/email/sendgrid, Basic auth, raw or parsed): 5xx is retried,
///   anything else is not → 401 credentials, 400 malformed or unusable, 503 Kafka.
/// A message that is never a lead (auto-reply, bounce…) is 200: taken, on purpose not published.
class Webhooks {
 public:
  using Clock = std::function<std::chrono::system_clock::time_point()>;
  Webhooks(WebhookOptions options, Intake* intake, metrics::Registry* registry, Clock clock = {});

  void Register(http::Server* server);

  void HandleMailgun(const http::Request& request, http::Responder responder, bool raw_mime);
  void HandlePostmark(const http::Request& request, http::Responder responder);
  void HandleSendgrid(const http::Request& request, http::Responder responder);

 private:
  /// What the provider is told for the intake's result.
  struct Answers {
    int rejected;  // never acceptable: the provider must not retry
  };
  /// `settled` runs with the intake's result before the answer is sent.
  void Submit(const std::string& provider, const http::Request& request, Answers answers,
              const std::function<void(Intake::Done)>& submit, http::Responder responder,
              std::function<void(const IntakeResult&)> settled = {});
  http::Response Refuse(const std::string& provider, int status, const std::string& outcome,
                        const std::string& reason);

  const WebhookOptions options_;
  Intake* intake_;
  Clock clock_;
  TokenLedger mailgun_tokens_;
  metrics::Family<metrics::Counter>* requests_;
};

}  // namespace leadflow::email
