#include "email-ingest/webhooks.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "email-ingest/provider.h"
#include "email-ingest/webhook_form.h"
#include "ingest/basic_auth.h"
#include "ingest/event_id.h"

namespace leadflow::email {
namespace {

/// The first address of a list: "sales@x", "<sales@x>" or "Sales <sales@x>".
std::string FirstAddress(std::string_view list) {
  std::string first(list.substr(0, list.find(',')));
  if (size_t open = first.find('<'); open != std::string::npos) {
    size_t close = first.find('>', open);
    first =
        first.substr(open + 1, close == std::string::npos ? std::string::npos : close - open - 1);
  }
  size_t begin = first.find_first_not_of(" \t");
  size_t end = first.find_last_not_of(" \t");
  if (begin == std::string::npos) return "";
  std::string address = first.substr(begin, end - begin + 1);
  for (char& c : address) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return address;
}

/// Whether `type` reads as a media type ("type/subtype", printable ASCII, no parameters).
bool IsMediaType(std::string_view type) {
  size_t slash = type.find('/');
  if (type.size() > 255 || slash == 0 || slash == std::string_view::npos ||
      slash + 1 == type.size()) {
    return false;
  }
  return std::all_of(type.begin(), type.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("/!#$&-^_.+").find(c) != std::string_view::npos;
  });
}

std::string JsonString(const nlohmann::json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

/// The files of a form as attachments; `info` (SendGrid's attachment-info: field name → the
/// original part's "filename", "type" and "content-id") describes them: its name and type are
/// the sender's, where the form part's own type is SendGrid's guess (application/octet-stream
/// for an .xlsx), and a part with a content-id is an inline part (a cid: image of the HTML).
std::vector<Attachment> FileAttachments(const Form& form,
                                        const nlohmann::json& info = nlohmann::json()) {
  std::vector<Attachment> attachments;
  for (const FormField& field : form.fields) {
    if (!field.is_file || field.name == "email" || field.name == "body-mime") continue;
    Attachment attachment{.filename = field.filename,
                          .content_type = field.content_type,
                          .size_bytes = field.size_bytes};
    if (info.is_object()) {
      if (auto described = info.find(field.name);
          described != info.end() && described->is_object()) {
        if (std::string name = JsonString(*described, "filename"); !name.empty()) {
          attachment.filename = CharsetToUtf8(name, "utf-8");
        }
        if (std::string type = absl::AsciiStrToLower(JsonString(*described, "type"));
            IsMediaType(type)) {
          attachment.content_type = type;
        }
        if (!JsonString(*described, "content-id").empty()) attachment.inline_part = true;
      }
    }
    attachments.push_back(std::move(attachment));
  }
  return attachments;
}

/// Whether a header block has a header of this name.
bool BlockHasHeader(std::string_view block, std::string_view name) {
  size_t start = 0;
  while (start < block.size()) {
    size_t end = block.find('\n', start);
    std::string_view line =
        block.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    size_t colon = line.find(':');
    if (colon != std::string_view::npos &&
        absl::EqualsIgnoreCase(
            absl::StripTrailingAsciiWhitespace(std::string(line.substr(0, colon))),
            std::string(name))) {
      return true;
    }
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return false;
}

/// What a Mailgun request carries besides its signature, the same on each of Mailgun's retries
/// (a multipart boundary may change, the fields do not): the digest a token is bound to.
std::string MailgunDigest(const Form& form) {
  std::vector<std::pair<std::string, std::string>> parts;
  for (const FormField& field : form.fields) {
    if (field.name == "signature" || field.name == "timestamp" || field.name == "token") continue;
    parts.emplace_back(field.name, field.is_file
                                       ? field.filename + ";" + std::to_string(field.size_bytes)
                                       : field.value);
  }
  std::sort(parts.begin(), parts.end());
  std::string joined;
  for (const auto& [name, value] : parts) {
    ingest::AppendPart(&joined, name);
    ingest::AppendPart(&joined, value);
  }
  return ingest::Sha256Hex(joined);
}

}  // namespace

ProviderMessage MailgunMessage(const Form& form) {
  ProviderMessage message;
  auto headers = nlohmann::json::parse(form.Value("message-headers"), nullptr, false);
  if (headers.is_array()) {
    for (const auto& pair : headers) {
      if (pair.is_array() && pair.size() == 2 && pair[0].is_string() && pair[1].is_string()) {
        message.headers.emplace_back(pair[0].get<std::string>(), pair[1].get<std::string>());
      }
    }
  }
  // Without them in its headers, the fields Mailgun always sends; a message naming none of its
  // recipients (a Bcc) was still sent to the route's `recipient`.
  auto has_header = [&message](const char* name) {
    return std::any_of(message.headers.begin(), message.headers.end(), [name](const auto& header) {
      return absl::EqualsIgnoreCase(header.first, name);
    });
  };
  if (!has_header("From")) message.headers.emplace_back("From", form.Value("from"));
  // The subject as Mailgun decoded it (UTF-8), rather than the header's encoded words.
  if (const FormField* subject = form.Find("subject"); subject != nullptr && !subject->is_file) {
    message.subject = CharsetToUtf8(subject->value, "utf-8");
  }
  message.text = form.Value("body-plain");
  message.html = form.Value("body-html");
  message.attachments = FileAttachments(form);
  return message;
}

ProviderMessage PostmarkMessage(const nlohmann::json& json) {
  ProviderMessage message;
  if (!json.is_object()) return message;
  if (auto headers = json.find("Headers"); headers != json.end() && headers->is_array()) {
    for (const auto& header : *headers) {
      if (header.is_object()) {
        message.headers.emplace_back(JsonString(header, "Name"), JsonString(header, "Value"));
      }
    }
  }
  if (auto from = json.find("FromFull"); from != json.end() && from->is_object()) {
    message.from_address = JsonString(*from, "Email");
    message.from_name = JsonString(*from, "Name");
  } else {
    // "\"Zoë O'Brien\" <zoe@obrien.example>": the name is in `From` itself when FromName
    // is not given.
    auto [address, name] = FirstMailboxOf(JsonString(json, "From"));
    message.from_address = address.empty() ? FirstAddress(JsonString(json, "From")) : address;
    message.from_name = JsonString(json, "FromName");
    if (message.from_name.empty()) message.from_name = name;
  }
  auto addresses = [&json](const char* full, std::vector<std::string>* out) {
    if (auto list = json.find(full); list != json.end() && list->is_array()) {
      for (const auto& entry : *list) {
        if (entry.is_object() && !JsonString(entry, "Email").empty()) {
          out->push_back(JsonString(entry, "Email"));
        }
      }
    }
  };
  addresses("ToFull", &message.to_addresses);
  addresses("CcFull", &message.cc_addresses);
  // As a header, so that its display name is read too.
  if (std::string reply_to = JsonString(json, "ReplyTo"); !reply_to.empty()) {
    message.headers.emplace_back("Reply-To", reply_to);
  }
  if (json.contains("Subject")) message.subject = JsonString(json, "Subject");
  message.date = JsonString(json, "Date");
  message.text = JsonString(json, "TextBody");
  message.html = JsonString(json, "HtmlBody");
  if (auto attachments = json.find("Attachments");
      attachments != json.end() && attachments->is_array()) {
    for (const auto& attachment : *attachments) {
      if (!attachment.is_object()) continue;
      int64_t size = 0;
      if (auto length = attachment.find("ContentLength");
          length != attachment.end() && length->is_number_integer()) {
        size = length->get<int64_t>();
      }
      message.attachments.push_back({.filename = JsonString(attachment, "Name"),
                                     .content_type = JsonString(attachment, "ContentType"),
                                     .size_bytes = size});
    }
  }
  return message;
}

ProviderMessage SendgridMessage(const Form& form) {
  // Each text field in the charset SendGrid names for it.
  auto charsets = nlohmann::json::parse(form.Value("charsets"), nullptr, false);
  auto charset_of = [&charsets](const char* field) {
    return charsets.is_object() ? JsonString(charsets, field) : std::string("utf-8");
  };
  ProviderMessage message;
  // The header block as SendGrid passes it on: Subject, From, To and Cc lines in raw 8-bit text
  // are in the charset named for that field (encoded words are ASCII and read as ever).
  std::string block = form.Value("headers");
  std::string converted;
  std::string charset;  // of the current header, "" when it is not converted
  size_t start = 0;
  while (start < block.size()) {
    size_t end = block.find('\n', start);
    size_t next = end == std::string::npos ? block.size() : end + 1;
    std::string_view line(block.data() + start, next - start);
    if (!line.empty() && line.front() != ' ' && line.front() != '\t') {
      std::string name = absl::AsciiStrToLower(absl::StripAsciiWhitespace(
          std::string(line.substr(0, std::min(line.find(':'), line.size())))));
      charset = name == "subject" || name == "from" || name == "to" || name == "cc"
                    ? charset_of(name.c_str())
                    : "";
    }
    bool eight_bit = std::any_of(line.begin(), line.end(),
                                 [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
    converted += eight_bit && !charset.empty() ? CharsetToUtf8(line, charset) : std::string(line);
    start = next;
  }
  message.header_block = std::move(converted);
  if (!BlockHasHeader(message.header_block, "From") && !form.Value("from").empty()) {
    message.headers.emplace_back("From", CharsetToUtf8(form.Value("from"), charset_of("from")));
  }
  if (!BlockHasHeader(message.header_block, "Subject") && form.Find("subject") != nullptr) {
    message.subject = CharsetToUtf8(form.Value("subject"), charset_of("subject"));
  }
  message.text = CharsetToUtf8(form.Value("text"), charset_of("text"));
  message.html = CharsetToUtf8(form.Value("html"), charset_of("html"));
  message.attachments =
      FileAttachments(form, nlohmann::json::parse(form.Value("attachment-info"), nullptr, false));
  return message;
}

Webhooks::Webhooks(WebhookOptions options, Intake* intake, metrics::Registry* registry, Clock clock)
    : options_(std::move(options)),
      intake_(intake),
      clock_(clock ? std::move(clock) : [] { return std::chrono::system_clock::now(); }),
      mailgun_tokens_(options_.replay_capacity, options_.mailgun_window * 2),
      requests_(&registry->AddCounter(
          "email_webhook_requests_total",
          "Webhook requests by provider and outcome (accepted, dropped, unauthenticated, "
          "forged, stale, replayed, repeated, in_progress, malformed, rejected, unavailable).",
          {"provider", "outcome"})) {
  registry->AddCallbackGauge("email_mailgun_tokens",
                             "Mailgun tokens remembered (pending or accepted), at most "
                             "EMAIL_MAILGUN_TOKEN_CAPACITY.",
                             [this] { return static_cast<double>(mailgun_tokens_.size()); });
  registry->AddCallbackGauge(
      "email_mailgun_tokens_evicted",
      "Mailgun tokens forgotten before their time because the ledger was full (a repeat of "
      "their request is then published again, applied once by crm-core).",
      [this] { return static_cast<double>(mailgun_tokens_.evicted()); });
}

void Webhooks::Register(http::Server* server) {
  if (!options_.mailgun_signing_key.empty()) {
    server->Route("POST", "/v1/email/mailgun",
                  [this](const http::Request& request, http::Responder responder) {
                    HandleMailgun(request, std::move(responder), false);
                  });
    server->Route("POST", "/v1/email/mailgun/mime",
                  [this](const http::Request& request, http::Responder responder) {
                    HandleMailgun(request, std::move(responder), true);
                  });
  }
  if (!options_.postmark_basic_auth.empty()) {
    server->Route("POST", "/v1/email/postmark",
                  [this](const http::Request& request, http::Responder responder) {
                    HandlePostmark(request, std::move(responder));
                  });
  }
  if (!options_.sendgrid_basic_auth.empty()) {
    server->Route("POST", "/v1/email/sendgrid",
                  [this](const http::Request& request, http::Responder responder) {
                    HandleSendgrid(request, std::move(responder));
                  });
  }
}

http::Response Webhooks::Refuse(const std::string& provider, int status, const std::string& outcome,
                                const std::string& reason) {
  requests_->WithLabels({provider, outcome}).Increment();
  spdlog::info("email: {} webhook refused ({}): {}", provider, outcome, reason);
  http::Response response = http::Response::Error(status, outcome, reason);
  if (status == 401) {
    response.WithHeader("WWW-Authenticate", "Basic realm=\"email-ingest\"");
  }
  return response;
}

void Webhooks::Submit(const std::string& provider, const http::Request& request, Answers answers,
                      const std::function<void(Intake::Done)>& submit, http::Responder responder,
                      std::function<void(const IntakeResult&)> settled) {
  submit([this, provider, answers, responder, settled](const IntakeResult& result) {
    if (settled) settled(result);
    switch (result.kind) {
      case IntakeResult::Kind::kPublished:
        requests_->WithLabels({provider, "accepted"}).Increment();
        responder.Send(http::Response::Json(
            200, nlohmann::json{{"status", "accepted"}, {"event_id", result.event_id}}.dump()));
        return;
      case IntakeResult::Kind::kDropped:
        requests_->WithLabels({provider, "dropped"}).Increment();
        responder.Send(http::Response::Json(
            200,
            nlohmann::json{{"status", "not_a_lead"}, {"reason", DropReasonName(result.drop_reason)}}
                .dump()));
        return;
      case IntakeResult::Kind::kRejected:
        requests_->WithLabels({provider, "rejected"}).Increment();
        responder.Send(http::Response::Error(answers.rejected, "rejected", result.detail));
        return;
      case IntakeResult::Kind::kTemporary:
        requests_->WithLabels({provider, "unavailable"}).Increment();
        responder.Send(http::Response::Error(503, "unavailable", "retry later")
                           .WithHeader("Retry-After", "60"));
        return;
    }
  });
}

void Webhooks::HandleMailgun(const http::Request& request, http::Responder responder,
                             bool raw_mime) {
  const std::string provider = "mailgun";
  auto form = ParseForm(request.Header("Content-Type").value_or(""), request.body);
  if (!form.ok()) {
    // Nothing can be verified in a body that cannot be read: refused for good.
    responder.Send(Refuse(provider, 406, "malformed", std::string(form.status().message())));
    return;
  }
  std::string timestamp = form->Value("timestamp");
  std::string token = form->Value("token");
  std::string signature = form->Value("signature");
  if (timestamp.empty() || token.empty() || signature.empty()) {
    responder.Send(
        Refuse(provider, 401, "unauthenticated", "signature, timestamp and token required"));
    return;
  }
  absl::Status verified = ingest::VerifyMailgunSignature(
      options_.mailgun_signing_key, timestamp, token, signature, clock_(), options_.mailgun_window);
  if (!verified.ok()) {
    bool stale = verified.code() == absl::StatusCode::kFailedPrecondition;
    responder.Send(
        Refuse(provider, 403, stale ? "stale" : "forged", std::string(verified.message())));
    return;
  }
  if (raw_mime && form->Value("body-mime").empty()) {
    responder.Send(Refuse(provider, 406, "malformed", "body-mime required"));
    return;
  }
  // The token is used once its message is taken (published, or never a lead): a retry of a
  // request refused with 503 is taken, a repeat of an accepted one is told 200 again.
  switch (mailgun_tokens_.Begin(token, MailgunDigest(*form), std::chrono::steady_clock::now())) {
    case TokenLedger::Claim::kFresh:
      break;
    case TokenLedger::Claim::kMismatch:
      responder.Send(Refuse(provider, 403, "replayed", "token already used with another message"));
      return;
    case TokenLedger::Claim::kPending:
      requests_->WithLabels({provider, "in_progress"}).Increment();
      responder.Send(http::Response::Error(503, "in_progress", "the same request is in progress")
                         .WithHeader("Retry-After", "60"));
      return;
    case TokenLedger::Claim::kAccepted:
      requests_->WithLabels({provider, "repeated"}).Increment();
      spdlog::info("email: mailgun request repeated after it was accepted: not published again");
      responder.Send(
          http::Response::Json(200, nlohmann::json{{"status", "already_accepted"}}.dump()));
      return;
  }
  auto settle = [this, token](const IntakeResult& result) {
    if (result.kind == IntakeResult::Kind::kTemporary) {
      mailgun_tokens_.Release(token);
    } else {
      mailgun_tokens_.Accept(token, std::chrono::steady_clock::now());
    }
  };
  Envelope envelope{.provider = provider,
                    .mail_from = std::nullopt,
                    .mailbox = FirstAddress(form->Value("recipient")),
                    .client_ip = request.remote_address,
                    .received = clock_()};
  if (const FormField* sender = form->Find("sender"))
    envelope.mail_from = FirstAddress(sender->value);
  if (raw_mime) {
    std::string raw = form->Value("body-mime");
    Submit(
        provider, request, {.rejected = 406},
        [this, raw, envelope](Intake::Done done) {
          intake_->SubmitRaw(raw, envelope, std::move(done));
        },
        responder, settle);
    return;
  }
  ParsedMessage parsed = ParseProviderMessage(MailgunMessage(*form), intake_->limits());
  Submit(
      provider, request, {.rejected = 406},
      [this, parsed, envelope](Intake::Done done) {
        intake_->SubmitParsed(parsed, envelope, std::move(done));
      },
      responder, settle);
}

void Webhooks::HandlePostmark(const http::Request& request, http::Responder responder) {
  const std::string provider = "postmark";
  if (absl::Status auth =
          ingest::VerifyBasicAuth(options_.postmark_basic_auth, request.Header("Authorization"));
      !auth.ok()) {
    // 401, never 403: Postmark stops retrying on 403, and a wrong password must not lose mail.
    responder.Send(Refuse(provider, 401, "unauthenticated", std::string(auth.message())));
    return;
  }
  auto json = nlohmann::json::parse(request.body, nullptr, false);
  if (!json.is_object()) {
    responder.Send(Refuse(provider, 403, "malformed", "a JSON object is expected"));
    return;
  }
  ProviderMessage message = PostmarkMessage(json);
  std::string mailbox = FirstAddress(JsonString(json, "OriginalRecipient"));
  if (mailbox.empty() && !message.to_addresses.empty())
    mailbox = FirstAddress(message.to_addresses[0]);
  Envelope envelope{.provider = provider,
                    .mail_from = std::nullopt,
                    .mailbox = mailbox,
                    .client_ip = request.remote_address,
                    .received = clock_()};
  ParsedMessage parsed = ParseProviderMessage(message, intake_->limits());
  Submit(
      provider, request, {.rejected = 403},
      [this, parsed, envelope](Intake::Done done) {
        intake_->SubmitParsed(parsed, envelope, std::move(done));
      },
      responder);
}

void Webhooks::HandleSendgrid(const http::Request& request, http::Responder responder) {
  const std::string provider = "sendgrid";
  if (absl::Status auth =
          ingest::VerifyBasicAuth(options_.sendgrid_basic_auth, request.Header("Authorization"));
      !auth.ok()) {
    responder.Send(Refuse(provider, 401, "unauthenticated", std::string(auth.message())));
    return;
  }
  auto form = ParseForm(request.Header("Content-Type").value_or(""), request.body);
  if (!form.ok()) {
    responder.Send(Refuse(provider, 400, "malformed", std::string(form.status().message())));
    return;
  }
  Envelope envelope{.provider = provider,
                    .mail_from = std::nullopt,
                    .mailbox = "",
                    .client_ip = request.remote_address,
                    .received = clock_()};
  auto sg_envelope = nlohmann::json::parse(form->Value("envelope"), nullptr, false);
  if (sg_envelope.is_object()) {
    if (auto from = sg_envelope.find("from"); from != sg_envelope.end() && from->is_string()) {
      envelope.mail_from = FirstAddress(from->get<std::string>());
    }
    if (auto to = sg_envelope.find("to");
        to != sg_envelope.end() && to->is_array() && !to->empty() && (*to)[0].is_string()) {
      envelope.mailbox = FirstAddress((*to)[0].get<std::string>());
    }
  }
  if (envelope.mailbox.empty()) envelope.mailbox = FirstAddress(form->Value("to"));
  if (const FormField* raw = form->Find("email"); raw != nullptr) {
    std::string mime = raw->value;
    Submit(
        provider, request, {.rejected = 400},
        [this, mime, envelope](Intake::Done done) {
          intake_->SubmitRaw(mime, envelope, std::move(done));
        },
        responder);
    return;
  }
  if (form->Find("headers") == nullptr) {
    responder.Send(Refuse(provider, 400, "malformed", "headers or email field required"));
    return;
  }
  ParsedMessage parsed = ParseProviderMessage(SendgridMessage(*form), intake_->limits());
  Submit(
      provider, request, {.rejected = 400},
      [this, parsed, envelope](Intake::Done done) {
        intake_->SubmitParsed(parsed, envelope, std::move(done));
      },
      responder);
}

}  // namespace leadflow::email
