// The webhook body readers: forms (urlencoded, multipart) and providers' parsed messages.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "email-ingest/message.h"
#include "email-ingest/provider.h"
#include "email-ingest/webhook_form.h"

namespace leadflow::email {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

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

}  // namespace
}  // namespace leadflow::email
