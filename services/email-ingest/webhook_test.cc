// The webhook body readers: forms (urlencoded, multipart) and providers' parsed messages.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "email-ingest/message.h"
#include "email-ingest/provider.h"
#include "email-ingest/test_corpus.h"
#include "email-ingest/webhook_form.h"
#include "email-ingest/webhooks.h"

namespace leadflow::email {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

/// A multipart/form-data body of these fields (name, value) and one file.
std::string Multipart(const std::vector<std::pair<std::string, std::string>>& fields,
                      const std::string& file_field = "", const std::string& file_name = "") {
  std::string body;
  for (const auto& [name, value] : fields) {
    body +=
        "--XyZ\r\nContent-Disposition: form-data; name=\"" + name + "\"\r\n\r\n" + value + "\r\n";
  }
  if (!file_field.empty()) {
    body += "--XyZ\r\nContent-Disposition: form-data; name=\"" + file_field + "\"; filename=\"" +
            file_name + "\"\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.4\r\n";
  }
  return body + "--XyZ--\r\n";
}

// Protects: urlencoded fields are decoded ('+', %-escapes, UTF-8), and a bad escape is refused.
TEST(WebhookFormTest, Urlencoded) {
  auto form = ParseForm("application/x-www-form-urlencoded; charset=utf-8",
                        "sender=a%40example.org&subject=Caf%C3%A9+cr%C3%A8me&empty=&flag");
  ASSERT_TRUE(form.ok()) << form.status();
  EXPECT_EQ(form->Value("sender"), "a@example.org");
  EXPECT_EQ(form->Value("subject"), "Café crème");
  EXPECT_EQ(form->Value("empty"), "");
  EXPECT_NE(form->Find("flag"), nullptr);
  EXPECT_EQ(form->Value("missing"), "");
  EXPECT_FALSE(ParseForm("application/x-www-form-urlencoded", "a=%zz").ok());
  EXPECT_FALSE(ParseForm("application/json", "{}").ok());
}

// Protects: multipart fields are read, and a file part is described (name, type, size) without
// keeping its content.
TEST(WebhookFormTest, MultipartWithFile) {
  std::string body =
      "--XyZ\r\nContent-Disposition: form-data; name=\"from\"\r\n\r\nJean <jean@example.org>\r\n"
      "--XyZ\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\nline 1\r\nline 2\r\n"
      "--XyZ\r\nContent-Disposition: form-data; name=\"attachment1\"; filename=\"devis.pdf\"\r\n"
      "Content-Type: application/pdf\r\n\r\n%PDF-1.4 0123456789\r\n--XyZ--\r\n";
  auto form = ParseForm("multipart/form-data; boundary=XyZ", body);
  ASSERT_TRUE(form.ok()) << form.status();
  EXPECT_EQ(form->Value("from"), "Jean <jean@example.org>");
  EXPECT_EQ(form->Value("text"), "line 1\r\nline 2");
  const FormField* file = form->Find("attachment1");
  ASSERT_NE(file, nullptr);
  EXPECT_TRUE(file->is_file);
  EXPECT_EQ(file->filename, "devis.pdf");
  EXPECT_EQ(file->content_type, "application/pdf");
  EXPECT_EQ(file->size_bytes, 19);
  EXPECT_EQ(file->value, "");
  EXPECT_FALSE(
      ParseForm("multipart/form-data; boundary=XyZ", "not multipart at all").ok() &&
      ParseForm("multipart/form-data; boundary=XyZ", "not multipart at all")->Find("from"));
}

// Protects: a Mailgun-style message (header pairs, body-plain) reads like raw MIME: RFC 2047
// subject, thread headers, Message-ID, filter signals, the body's own headers ignored.
TEST(ProviderMessageTest, HeaderPairs) {
  ProviderMessage message;
  message.headers = {{"Message-Id", "<mg-1@example.org>"},
                     {"From", "=?UTF-8?Q?Andr=C3=A9?= <Andre@Example.org>"},
                     {"To", "sales@acme.test"},
                     {"Subject", "=?UTF-8?B?RGV2aXMgw6l0w6k=?="},
                     {"In-Reply-To", "<first@acme.test>"},
                     {"Content-Type", "multipart/alternative; boundary=zzz"},
                     {"X-Injected", "a\r\nAuto-Submitted: auto-replied"}};
  message.text =
      "Oui pour jeudi.\n\nOn Mon, Nov 30, 2026 at 9:00 AM Sales <sales@acme.test> wrote:\n> hi";
  ParsedMessage parsed = ParseProviderMessage(message);
  EXPECT_EQ(parsed.message_id, "mg-1@example.org");
  EXPECT_EQ(parsed.from_address, "andre@example.org");
  EXPECT_EQ(parsed.from_name, "André");
  EXPECT_EQ(parsed.subject, "Devis été");
  EXPECT_EQ(parsed.in_reply_to, "first@acme.test");
  EXPECT_EQ(parsed.text, "Oui pour jeudi.");
  EXPECT_TRUE(parsed.quoted_history_stripped);
  // A CR/LF inside a value cannot add a header.
  EXPECT_EQ(parsed.auto_submitted, "");
}

// Protects: Postmark-style separate fields win over headers; HTML-only becomes text; the
// attachments are kept as metadata; an auto-reply header in the list is still seen.
TEST(ProviderMessageTest, SeparateFieldsAndHtml) {
  ProviderMessage message;
  message.headers = {{"Message-ID", "<pm-1@example.org>"}, {"Auto-Submitted", "auto-replied"}};
  message.from_address = "Zoe@Example.org";
  message.from_name = "Zoé";
  message.to_addresses = {"sales@acme.test"};
  message.subject = "Bonjour";
  message.date = "Mon, 30 Nov 2026 09:12:40 +0100";
  message.html = "<p>Un <b>devis</b>, svp.</p>";
  message.attachments = {{.filename = "a.pdf", .content_type = "application/pdf", .size_bytes = 5}};
  ParsedMessage parsed = ParseProviderMessage(message);
  EXPECT_EQ(parsed.from_address, "zoe@example.org");
  EXPECT_EQ(parsed.subject, "Bonjour");
  EXPECT_EQ(parsed.text, "Un devis, svp.");
  EXPECT_TRUE(parsed.text_from_html);
  ASSERT_TRUE(parsed.date.has_value());
  EXPECT_EQ(
      std::chrono::duration_cast<std::chrono::seconds>(parsed.date->time_since_epoch()).count(),
      1796026360);
  EXPECT_THAT(parsed.to_addresses, ElementsAre("sales@acme.test"));
  ASSERT_EQ(parsed.attachments.size(), 1u);
  EXPECT_EQ(NeverALead(parsed, {.provider = "postmark"}), DropReason::kAutoSubmitted);
}

// Protects: a SendGrid header block (folded lines, the original Content-Type dropped) is read.
TEST(ProviderMessageTest, HeaderBlock) {
  ProviderMessage message;
  message.header_block =
      "Received: by mx.sendgrid.net\n with SMTP id abc\nMessage-ID: <sg-1@example.org>\n"
      "From: Ana <ana@example.org>\nTo: sales@acme.test\nSubject: Hello\n"
      "Content-Type: multipart/alternative;\n boundary=\"000\"\nList-Id: <x.example.org>\n";
  message.text = "Hello there";
  ParsedMessage parsed = ParseProviderMessage(message);
  EXPECT_EQ(parsed.message_id, "sg-1@example.org");
  EXPECT_EQ(parsed.from_address, "ana@example.org");
  EXPECT_EQ(parsed.text, "Hello there");
  EXPECT_TRUE(parsed.has_list_header);
}

// Protects: a Mailgun post's subject is the one Mailgun decoded (its `subject` field), not
// the header's encoded words (trial M1: the header lost its end after a padded base64 word);
// without the field, the header's; the message-headers' From before the `from` field.
TEST(ProviderWebhookTest, MailgunSubjectField) {
  std::string headers =
      R"([["Message-Id", "<mg-2@example.org>"], ["From", "Paul <paul@example.org>"],)"
      R"( ["Subject", "=?utf-8?b?RGVtYW5kZSBkZSA=?="]])";
  auto form = ParseForm("multipart/form-data; boundary=XyZ",
                        Multipart({{"message-headers", headers},
                                   {"subject", "Demande de devis urgent"},
                                   {"from", "Other <other@example.org>"},
                                   {"body-plain", "Bonjour"}}));
  ASSERT_TRUE(form.ok()) << form.status();
  ParsedMessage parsed = ParseProviderMessage(MailgunMessage(*form));
  EXPECT_EQ(parsed.subject, "Demande de devis urgent");
  EXPECT_EQ(parsed.from_address, "paul@example.org");
  auto without = ParseForm("multipart/form-data; boundary=XyZ",
                           Multipart({{"message-headers", headers}, {"body-plain", "Bonjour"}}));
  ASSERT_TRUE(without.ok()) << without.status();
  EXPECT_EQ(ParseProviderMessage(MailgunMessage(*without)).subject, "Demande de");
}

// Protects: a Postmark post without FromFull keeps the display name written in `From`
// ("\"Zoë O'Brien\" <zoe@…>", trial M15: the lead was titled by the address); FromName wins
// when given; FromFull first.
TEST(ProviderWebhookTest, PostmarkFromWithoutFromFull) {
  auto json = nlohmann::json::parse(
      R"({"From": "\"Zoë O'Brien\" <Zoe@OBrien.example>", "Subject": "Quote",)"
      R"( "TextBody": "Hi, a quote please.",)"
      R"( "Headers": [{"Name": "Message-ID", "Value": "<pm-2@obrien.example>"}]})");
  ParsedMessage parsed = ParseProviderMessage(PostmarkMessage(json));
  EXPECT_EQ(parsed.from_address, "zoe@obrien.example");
  EXPECT_EQ(parsed.from_name, "Zoë O'Brien");
  auto built = BuildEmailEvent(parsed, {.provider = "postmark"});
  ASSERT_TRUE(built.ok()) << built.status();
  EXPECT_EQ(built->event.person().first_name(), "Zoë");
  EXPECT_EQ(built->event.person().last_name(), "O'Brien");
  json["FromName"] = "Zoé";
  EXPECT_EQ(ParseProviderMessage(PostmarkMessage(json)).from_name, "Zoé");
  json["FromFull"] = {{"Email", "zoe@obrien.example"}, {"Name", "Z. O'Brien"}};
  EXPECT_EQ(ParseProviderMessage(PostmarkMessage(json)).from_name, "Z. O'Brien");
}

// Protects: a Postmark post carrying a 2 MB header is taken under the same rule as SMTP (M14c):
// the header is cut to the cap and named, and ToFull past 100 addresses is counted, not dropped
// silently.
TEST(ProviderWebhookTest, PostmarkOverlongHeaderAndRecipientsAreCut) {
  nlohmann::json to_full = nlohmann::json::array();
  for (int i = 0; i < 201; ++i) {
    to_full.push_back({{"Email", "r" + std::to_string(i) + "@b.example"}, {"Name", ""}});
  }
  nlohmann::json json = {{"FromFull", {{"Email", "jean@example.org"}, {"Name", "Jean Dupont"}}},
                         {"ToFull", to_full},
                         {"Subject", "Devis"},
                         {"TextBody", "Bonjour"},
                         {"Headers",
                          {{{"Name", "X-Tracking"}, {"Value", std::string(2 * 1024 * 1024, 't')}},
                           {{"Name", "Message-ID"}, {"Value", "<pm-long@example.org>"}}}}};
  ParsedMessage parsed = ParseProviderMessage(PostmarkMessage(json));
  EXPECT_THAT(parsed.truncated_headers, ElementsAre("X-Tracking"));
  EXPECT_EQ(parsed.message_id, "pm-long@example.org");
  EXPECT_EQ(parsed.to_addresses.size(), 100u);
  EXPECT_EQ(parsed.to_addresses_omitted, 101u);
  auto built = BuildEmailEvent(parsed, {.provider = "postmark"});
  ASSERT_TRUE(built.ok()) << built.status();
  EXPECT_EQ(built->event.email().to_addresses_omitted(), 101u);
  EXPECT_THAT(built->event.email().truncated_headers(), ElementsAre("X-Tracking"));
}

// Protects: SendGrid's parsed fields: the `subject` field when the headers have no Subject
// (trial M5a: no subject, the lead titled by its text); a raw windows-1251 Subject in the
// headers read in the charset `charsets` names for it, not as windows-1252 (M5b: "Ñ÷¸ò íà
// îïëàòó"); the attachment named as attachment-info names it ("счёт.pdf", not the part's
// "schet.pdf"); the text in its charset.
TEST(ProviderWebhookTest, SendgridSubjectCharsetsAndAttachmentInfo) {
  auto no_subject =
      ParseForm("multipart/form-data; boundary=XyZ",
                Multipart({{"headers",
                            "Message-ID: <sg-2@example.org>\nFrom: Ana <ana@example.org>\n"
                            "To: sales@acme.test\n"},
                           {"subject", "Devis urgent"},
                           {"text", "Bonjour"},
                           {"charsets", R"({"subject":"UTF-8","text":"UTF-8"})"}}));
  ASSERT_TRUE(no_subject.ok()) << no_subject.status();
  EXPECT_EQ(ParseProviderMessage(SendgridMessage(*no_subject)).subject, "Devis urgent");

  auto cyrillic = ParseForm(
      "multipart/form-data; boundary=XyZ",
      Multipart(
          {{"headers", Corpus("sendgrid_headers_windows1251.txt")},
           {"subject", Corpus("sendgrid_subject_windows1251.txt")},
           {"text", "\xc4\xee\xe1\xf0\xfb\xe9 \xe4\xe5\xed\xfc"},
           {"charsets", R"({"subject":"windows-1251","text":"windows-1251","from":"UTF-8"})"},
           {"attachment-info",
            R"({"attachment1":{"filename":"счёт.pdf","name":"счёт.pdf","type":"application/pdf"}})"}},
          "attachment1", "schet.pdf"));
  ASSERT_TRUE(cyrillic.ok()) << cyrillic.status();
  ParsedMessage parsed = ParseProviderMessage(SendgridMessage(*cyrillic));
  EXPECT_EQ(parsed.subject, "Счёт на оплату");
  EXPECT_EQ(parsed.from_address, "sidorov@sidorov.example");
  EXPECT_EQ(parsed.text, "Добрый день");
  ASSERT_EQ(parsed.attachments.size(), 1u);
  EXPECT_EQ(parsed.attachments[0].filename, "счёт.pdf");
  EXPECT_EQ(parsed.attachments[0].content_type, "application/pdf");
}

// Protects: SendGrid's attachment-info gives the sender's media type over the form part's
// (trial 89c #11: budget.xlsx posted as application/octet-stream) and marks a part with a
// content-id inline (the logo of the HTML); a file it does not describe, or describes with a
// malformed type, keeps its part's type and is not inline.
TEST(ProviderWebhookTest, SendgridAttachmentInfoTypeAndContentId) {
  auto file = [](const std::string& field, const std::string& name, const std::string& type) {
    return "--XyZ\r\nContent-Disposition: form-data; name=\"" + field + "\"; filename=\"" + name +
           "\"\r\nContent-Type: " + type + "\r\n\r\nbytes\r\n";
  };
  std::string body =
      "--XyZ\r\nContent-Disposition: form-data; name=\"headers\"\r\n\r\n"
      "Message-ID: <sg-3@example.org>\nFrom: Jules <jules@example.org>\nTo: sales@acme.test\n"
      "Subject: Trois fichiers\r\n"
      "--XyZ\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\nVoici.\r\n"
      "--XyZ\r\nContent-Disposition: form-data; name=\"attachment-info\"\r\n\r\n"
      R"({"attachment1":{"filename":"budget.xlsx","type":"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},)"
      R"("attachment2":{"filename":"logo.png","type":"image/png","content-id":"ii_logo"},)"
      R"("attachment3":{"filename":"notes.txt","type":"text/plain; charset=\"x\""}})"
      "\r\n" +
      file("attachment1", "budget.xlsx", "application/octet-stream") +
      file("attachment2", "logo.png", "application/octet-stream") +
      file("attachment3", "notes.txt", "text/plain") +
      file("attachment4", "devis.pdf", "application/pdf") + "--XyZ--\r\n";
  auto form = ParseForm("multipart/form-data; boundary=XyZ", body);
  ASSERT_TRUE(form.ok()) << form.status();
  ParsedMessage parsed = ParseProviderMessage(SendgridMessage(*form));
  ASSERT_EQ(parsed.attachments.size(), 4u);
  EXPECT_EQ(parsed.attachments[0].filename, "budget.xlsx");
  EXPECT_EQ(parsed.attachments[0].content_type,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet");
  EXPECT_FALSE(parsed.attachments[0].inline_part);
  EXPECT_EQ(parsed.attachments[1].content_type, "image/png");
  EXPECT_TRUE(parsed.attachments[1].inline_part);
  EXPECT_EQ(parsed.attachments[2].content_type, "text/plain");
  EXPECT_FALSE(parsed.attachments[2].inline_part);
  EXPECT_EQ(parsed.attachments[3].content_type, "application/pdf");
  EXPECT_FALSE(parsed.attachments[3].inline_part);
}

}  // namespace
}  // namespace leadflow::email
