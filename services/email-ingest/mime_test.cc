// The MIME front end on a corpus of real-shaped messages (testdata/, one file per case).

#include "email-ingest/mime.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "email-ingest/test_corpus.h"

namespace leadflow::email {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// Protects: an invitation sent as a calendar only (text/calendar METHOD:REQUEST, trial E14)
// gives readable text — its summary, start and end, organizer — instead of an empty text; an
// invitation with a text of its own keeps that text; the method is read from the calendar.
TEST(MimeTest, CalendarInvitationInWords) {
  ParsedMessage only = ParseMessage(Corpus("calendar_only.eml"));
  EXPECT_EQ(only.calendar_method, "REQUEST");
  EXPECT_EQ(only.text,
            "Demo LeadFlow\n"
            "When: 2026-12-02 09:00 – 09:30 UTC\n"
            "Organizer: Nadia Roux <nadia.roux@fabrikam.example>");
  ParsedMessage with_text = ParseMessage(Corpus("calendar_invitation.eml"));
  EXPECT_EQ(with_text.calendar_method, "REQUEST");
  EXPECT_EQ(with_text.text, "Je vous propose une démo mercredi à 10h.");
  ParsedMessage reply = ParseMessage(Corpus("calendar_reply.eml"));
  EXPECT_EQ(reply.calendar_method, "REPLY");
}

// Protects: the calendar reader's other shapes: a local time with its zone, an event over two
// days, a location, an organizer without a name, a description; a calendar libical cannot read,
// or one past kMaxCalendarBytes, gives no text and no method (the message is kept as it is).
TEST(MimeTest, CalendarShapesAndGarbage) {
  auto mail = [](const std::string& calendar) {
    return ParseMessage(
        "From: a@example.org\r\nSubject: s\r\nContent-Type: text/calendar; charset=utf-8\r\n"
        "\r\n" +
        calendar);
  };
  ParsedMessage zoned = mail(
      "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nSUMMARY:Visite chantier\\, Lyon\r\n"
      "DTSTART;TZID=Europe/Paris:20261203T140000\r\nDTEND;TZID=Europe/Paris:20261204T113000\r\n"
      "LOCATION:12 rue de la Ré\r\n publique\r\nORGANIZER:mailto:paul@example.org\r\n"
      "DESCRIPTION:Apporter les plans.\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n");
  EXPECT_EQ(zoned.calendar_method, "REQUEST");
  EXPECT_EQ(zoned.text,
            "Visite chantier, Lyon\n"
            "When: 2026-12-03 14:00 – 2026-12-04 11:30 Europe/Paris\n"
            "Where: 12 rue de la République\n"
            "Organizer: paul@example.org\n\n"
            "Apporter les plans.");
  ParsedMessage garbage = mail("BEGIN:VCALENDAR\r\n\x01\xff:;;\r\nBEGIN:VEVENT\r\nDTSTART:x\r\n");
  EXPECT_EQ(garbage.calendar_method, "");
  ParsedMessage huge =
      mail("BEGIN:VCALENDAR\r\nMETHOD:REPLY\r\nX-PAD:" + std::string(300 * 1024, 'a') +
           "\r\nEND:VCALENDAR\r\n");
  EXPECT_EQ(huge.calendar_method, "");
}

// Protects: multipart/alternative gives the text/plain part, decoded from quoted-printable
// UTF-8, and every address header is read (From lower-cased, Reply-To, To, Cc).
TEST(MimeTest, AlternativePrefersPlainText) {
  ParsedMessage m = ParseMessage(Corpus("alternative.eml"));
  EXPECT_EQ(m.message_id, "5f1c2e3a-8d4b-4c1e-9f00-0a1b2c3d4e5f@example.org");
  EXPECT_EQ(m.from_address, "marie.curie@example.org");
  EXPECT_EQ(m.from_name, "Marie Curie");
  EXPECT_EQ(m.reply_to_address, "marie@labo.example.org");
  EXPECT_THAT(m.to_addresses, ElementsAre("sales@acme.test"));
  EXPECT_THAT(m.cc_addresses, ElementsAre("pierre@example.org"));
  EXPECT_EQ(m.subject, "Demande de devis pour 20 licences");
  EXPECT_THAT(m.text, HasSubstr("livraison à Besançon."));
  EXPECT_THAT(m.text, Not(HasSubstr("HTML VERSION")));
  EXPECT_FALSE(m.text_from_html);
  ASSERT_TRUE(m.date.has_value());
  // Mon, 30 Nov 2026 09:12:40 +0100 = 08:12:40 UTC.
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::seconds>(m.date->time_since_epoch()).count(),
            1796026360);
  EXPECT_TRUE(m.attachments.empty());
}

// Protects: an HTML-only message (Outlook, windows-1252, quoted-printable) becomes readable
// text: curly quotes and the euro sign right, no script or style, list items and line breaks.
TEST(MimeTest, HtmlOnlyWindows1252BecomesText) {
  ParsedMessage m = ParseMessage(Corpus("html_only_windows1252.eml"));
  EXPECT_TRUE(m.text_from_html);
  EXPECT_THAT(m.text, HasSubstr("We’d like a quote for the “Pro” plan – budget 5\u00a0000 €."));
  EXPECT_THAT(m.text, HasSubstr("- 10 seats\n- Paris office"));
  EXPECT_THAT(m.text, HasSubstr("Regards,\nJohn Smith"));
  EXPECT_THAT(m.text, Not(HasSubstr("alert")));
  EXPECT_THAT(m.text, Not(HasSubstr("color")));
  EXPECT_EQ(m.from_name, "Smith, John");
}

// Protects: an HTML part declared windows-1252 whose <meta> names another charset is decoded
// once (by the MIME charset), not a second time by the HTML parser.
TEST(MimeTest, HtmlMetaCharsetIgnoredAfterConversion) {
  std::string raw =
      "From: a@example.org\r\nContent-Type: text/html; charset=windows-1252\r\n\r\n"
      "<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=iso-8859-15\">"
      "<meta charset=\"koi8-r\"></head><body><p>Caf\xe9 cr\xe8me</p></body></html>\r\n";
  ParsedMessage m = ParseMessage(raw);
  EXPECT_EQ(m.text, "Café crème");
  EXPECT_TRUE(m.text_from_html);
}

// Protects: ISO-8859-1 base64 bodies and RFC 2047 words in Q (ISO-8859-1) and B (UTF-8).
TEST(MimeTest, Latin1Base64AndEncodedWords) {
  ParsedMessage m = ParseMessage(Corpus("latin1_base64.eml"));
  EXPECT_EQ(m.from_name, "François Lévêque");
  EXPECT_EQ(m.subject, "Étude de prix - café ☕");
  EXPECT_THAT(m.text, HasSubstr("pour l'année prochaine.\nCordialement,\nFrançois"));
}

// Protects: adjacent encoded words join without the space between them (RFC 2047 §6.2).
TEST(MimeTest, Rfc2047AdjacentWords) {
  ParsedMessage m = ParseMessage(Corpus("rfc2047_headers.eml"));
  EXPECT_EQ(m.subject, "Angebot für Büromöbel");
  EXPECT_EQ(m.from_name, "Jürgen Müller");
  EXPECT_EQ(m.message_id, "CAF=abc123+def@mail.gmail.com");
  EXPECT_THAT(m.text, HasSubstr("12 Bürostühle"));
}

// Protects: a subject or display name in several base64 (B) encoded words is read whole, each
// word on its own, when a word ends in padding (GMime 3.2.13 decodes adjacent B words as one
// base64 stream and lost what followed the padding: "Demande de" for "Demande de devis"):
// Python's folded Cyrillic subject, a padded Latin pair, Hebrew then Arabic, a one-line pair, a
// display name of two words; a character split across two Q or B words stays whole.
TEST(MimeTest, PaddedBase64WordsReadWhole) {
  EXPECT_EQ(ParseMessage(Corpus("b_words_russian_folded.eml")).subject,
            "Запрос коммерческого предложения на поставку оборудования для склада");
  EXPECT_EQ(ParseMessage(Corpus("b_words_russian_folded.eml")).from_name, "Светлана Кузнецова");
  EXPECT_EQ(ParseMessage(Corpus("b_words_padded.eml")).subject, "Demande de devis");
  ParsedMessage rtl = ParseMessage(Corpus("b_words_rtl.eml"));
  EXPECT_EQ(rtl.subject, "בקשה להצעת מחיר – طلب عرض سعر");
  EXPECT_EQ(rtl.from_name, "יוסי כהן");
  EXPECT_EQ(ParseMessage(Corpus("b_words_hebrew_one_line.eml")).subject, "בקשה מחיר");
  EXPECT_EQ(ParseMessage(Corpus("b_words_display_name.eml")).from_name, "Marie-Claire Dupont");
  // "é" (C3 A9) split between two words, in B then in Q; a word with its padding left out.
  EXPECT_EQ(ParseMessage("From: a@example.org\r\nSubject: =?UTF-8?B?Y2Fmw6k=?= =?UTF-8?B?w6k=?="
                         " =?UTF-8?B?IGNyw6htZQ?=\r\n\r\nx")
                .subject,
            "caféé crème");
  EXPECT_EQ(
      ParseMessage("From: a@example.org\r\nSubject: =?UTF-8?B?Y2Fmw6k=?= =?UTF-8?B?w6k=?=\r\n\r\nx")
          .subject,
      "caféé");
  EXPECT_EQ(
      ParseMessage("From: a@example.org\r\nSubject: =?UTF-8?B?Y2Fmww==?= =?UTF-8?B?qQ==?=\r\n\r\nx")
          .subject,
      "café");
  EXPECT_EQ(
      ParseMessage("From: a@example.org\r\nSubject: =?UTF-8?Q?caf=C3?= =?UTF-8?Q?=A9?=\r\n\r\nx")
          .subject,
      "café");
  // Broken words stay as they came: no charset, no end, a B word with a '?' in it.
  EXPECT_EQ(ParseMessage("From: a@example.org\r\nSubject: =??B?QUJD?= and =?utf-8?B?QUJD\r\n\r\nx")
                .subject,
            "=??B?QUJD?= and =?utf-8?B?QUJD");
}

// Protects: a References header longer than kMaxReferences keeps its first id (the thread's
// root) and the newest ones, so that a reply whose References list 150 unrelated ids before the
// message it answers still names that message (it was cut as the 151st).
TEST(MimeTest, LongReferencesKeepRootAndNewest) {
  ParsedMessage m = ParseMessage(Corpus("long_references.eml"));
  ASSERT_EQ(m.references.size(), kMaxReferences);
  EXPECT_EQ(m.references.front(), "old0@list.example");
  EXPECT_EQ(m.references[1], "old52@list.example");
  EXPECT_EQ(m.references[kMaxReferences - 2], "old149@list.example");
  EXPECT_EQ(m.references.back(), "lmtp-1@moreau.example");
  ParsedMessage short_list =
      ParseMessage("From: a@example.org\r\nReferences: <a@x> <b@x>\r\n <c@x>\r\n\r\nx");
  EXPECT_THAT(short_list.references, ElementsAre("a@x", "b@x", "c@x"));
}

// Protects: a message forwarded as an attachment (message/rfc822, Outlook's and Gmail's "forward
// as attachment") gives its text after the message's own, headed by its From, Date and Subject;
// the attachment is named by its Content-Disposition file name; the text stays within the bound.
TEST(MimeTest, ForwardedAsAttachmentGivesItsText) {
  ParsedMessage m = ParseMessage(Corpus("forwarded_as_attachment.eml"));
  EXPECT_EQ(m.text,
            "---------- Forwarded message ----------\n"
            "From: Marc Lefebvre <marc2@client-final.example>\n"
            "Date: Mon, 30 Nov 2026 19:00:00 +0000\n"
            "Subject: Demande urgente\n\n"
            "Bonjour, il nous faut 30 licences avant vendredi. Tel 06 12 12 12 12. Marc");
  EXPECT_EQ(m.from_address, "claire2@bernard-conseil.example");
  ASSERT_EQ(m.attachments.size(), 1u);
  EXPECT_EQ(m.attachments[0].filename, "Demande urgente.eml");
  EXPECT_EQ(m.attachments[0].content_type, "message/rfc822");

  std::string raw = Corpus("forwarded_as_attachment.eml");
  raw.replace(raw.find("Bonjour, il"), 6, std::string(100000, 'x'));
  ParsedMessage big = ParseMessage(raw, {.max_text_bytes = 1000});
  EXPECT_EQ(big.text.size(), 1000u);
  EXPECT_THAT(big.text, HasSubstr("From: Marc Lefebvre"));
}

// Protects: attachments are described (name decoded from RFC 2231, type, decoded size, inline
// or not) and their content is not taken as text.
TEST(MimeTest, AttachmentsAsMetadata) {
  ParsedMessage m = ParseMessage(Corpus("attachments.eml"));
  EXPECT_EQ(m.text, "Please find our specifications attached.");
  ASSERT_EQ(m.attachments.size(), 2u);
  EXPECT_EQ(m.attachments[0].filename, "logo.png");
  EXPECT_EQ(m.attachments[0].content_type, "image/png");
  EXPECT_EQ(m.attachments[0].size_bytes, 768);
  EXPECT_TRUE(m.attachments[0].inline_part);
  EXPECT_EQ(m.attachments[1].filename, "Cahier des charges été.pdf");
  EXPECT_EQ(m.attachments[1].content_type, "application/pdf");
  EXPECT_EQ(m.attachments[1].size_bytes, 9 + 256 * 20 + 7);
  EXPECT_FALSE(m.attachments[1].inline_part);
}

// Protects: a 10 MB attachment is measured, not kept: the text stays the text, the size is
// exact.
TEST(MimeTest, TenMegabyteAttachment) {
  std::string raw =
      "Message-ID: <big@example.com>\r\nFrom: big@example.com\r\nTo: sales@acme.test\r\n"
      "Subject: big\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"
      "--XX\r\nContent-Type: text/plain\r\n\r\nSee the video.\r\n"
      "--XX\r\nContent-Type: video/mp4\r\nContent-Disposition: attachment; filename=demo.mp4\r\n"
      "Content-Transfer-Encoding: base64\r\n\r\n";
  // 10 MiB of zero bytes in base64: "AAAA" encodes 3 bytes; 76-character lines.
  const size_t decoded = 10 * 1024 * 1024 - 1;  // a multiple of 3
  const size_t encoded = decoded / 3 * 4;
  for (size_t written = 0; written < encoded; written += 76) {
    raw.append(std::min<size_t>(76, encoded - written), 'A');
    raw.append("\r\n");
  }
  raw.append("--XX--\r\n");
  ParsedMessage m = ParseMessage(raw);
  EXPECT_EQ(m.text, "See the video.");
  ASSERT_EQ(m.attachments.size(), 1u);
  EXPECT_EQ(m.attachments[0].filename, "demo.mp4");
  EXPECT_EQ(m.attachments[0].size_bytes, static_cast<int64_t>(decoded));
}

// Protects: a Gmail reply keeps the new text only (wrapped attribution line, '>' lines), and
// its thread headers are read oldest first.
TEST(MimeTest, GmailReplyQuotedHistoryStripped) {
  ParsedMessage m = ParseMessage(Corpus("reply_gmail.eml"));
  EXPECT_EQ(m.text, "Merci, le devis nous convient. Pouvez-vous envoyer le contrat ?\n\nMarie");
  EXPECT_TRUE(m.quoted_history_stripped);
  EXPECT_EQ(m.in_reply_to, "first-1@acme.test");
  EXPECT_THAT(m.references, ElementsAre("lead-0@acme.test", "first-1@acme.test"));
}

// Protects: an Outlook reply in French ("De : … Envoyé : … À : …") loses the quoted message.
TEST(MimeTest, OutlookFrenchReplyStripped) {
  ParsedMessage m = ParseMessage(Corpus("reply_outlook_fr.eml"));
  EXPECT_EQ(m.text, "D'accord pour jeudi.\n\nPaul");
  EXPECT_TRUE(m.quoted_history_stripped);
  EXPECT_EQ(m.in_reply_to, "first-1@acme.test");
}

// Protects: broken MIME (never-closed boundary, garbage in base64) gives what can be read,
// without failing.
TEST(MimeTest, BrokenMimeReadsWhatItCan) {
  ParsedMessage m = ParseMessage(Corpus("broken_mime.eml"));
  EXPECT_EQ(m.from_address, "someone@example.net");
  EXPECT_THAT(m.text, HasSubstr("Hello, I would like a call back."));
  ASSERT_EQ(m.attachments.size(), 1u);
  EXPECT_EQ(m.attachments[0].filename, "x.bin");
}

// Protects: a message without Message-ID parses, with an empty id (the event id then hashes).
TEST(MimeTest, NoMessageId) {
  ParsedMessage m = ParseMessage(Corpus("no_message_id.eml"));
  EXPECT_EQ(m.message_id, "");
  EXPECT_EQ(m.from_address, "old@example.com");
  EXPECT_EQ(m.text, "My mail program does not set a Message-ID.");
}

// Protects: raw 8-bit headers are read as UTF-8 when valid, windows-1252 otherwise.
TEST(MimeTest, EightBitHeaders) {
  ParsedMessage utf8 = ParseMessage(Corpus("eight_bit_headers.eml"));
  EXPECT_EQ(utf8.from_name, "Zoë Ñúñez");
  EXPECT_EQ(utf8.subject, "Café près de Genève");
  EXPECT_EQ(utf8.text, "Une question sur vos tarifs.");
  ParsedMessage latin1 = ParseMessage(Corpus("latin1_raw_header.eml"));
  EXPECT_EQ(latin1.from_name, "Hélène Dupré");
  EXPECT_EQ(latin1.subject, "Réunion à Orléans");
}

// Protects: nested multiparts are walked to the first text/plain, and a forwarded message
// (message/rfc822) is an attachment whose text comes after the message's own.
TEST(MimeTest, NestedMultipartsAndForwardedMessage) {
  ParsedMessage m = ParseMessage(Corpus("nested_multipart.eml"));
  EXPECT_EQ(m.text,
            "Deep plain text wins.\n\n---------- Forwarded message ----------\n"
            "From: inner@example.com\nSubject: Forwarded thing\n\ninner body");
  ASSERT_EQ(m.attachments.size(), 1u);
  EXPECT_EQ(m.attachments[0].content_type, "message/rfc822");
  EXPECT_EQ(m.attachments[0].filename, "Forwarded thing");
}

// Protects: the filter signals are read: Auto-Submitted, Precedence, List-*, multipart/report,
// Return-Path <>.
TEST(MimeTest, FilterSignals) {
  ParsedMessage autoreply = ParseMessage(Corpus("autoreply.eml"));
  EXPECT_EQ(autoreply.auto_submitted, "auto-replied");
  ParsedMessage bounce = ParseMessage(Corpus("bounce.eml"));
  EXPECT_TRUE(bounce.is_report);
  EXPECT_TRUE(bounce.has_return_path);
  EXPECT_EQ(bounce.return_path, "");
  EXPECT_EQ(bounce.from_address, "mailer-daemon@mx.example.com");
  ParsedMessage news = ParseMessage(Corpus("newsletter.eml"));
  EXPECT_TRUE(news.has_list_header);
  EXPECT_EQ(news.precedence, "bulk");
  ParsedMessage plain = ParseMessage(Corpus("alternative.eml"));
  EXPECT_FALSE(plain.is_report || plain.has_list_header || plain.has_loop_header);
  EXPECT_EQ(plain.return_path, "marie.curie@example.org");
}

// Protects: text is cut to the limit on a character boundary, never inside a UTF-8 sequence.
TEST(MimeTest, TextLimitOnCharacterBoundary) {
  std::string body(100, 'a');
  std::string raw = "From: a@example.com\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
                    std::string(9, 'x') + "é" + body + "\r\n";
  ParsedMessage m = ParseMessage(raw, {.max_text_bytes = 10});
  EXPECT_EQ(m.text, std::string(9, 'x'));
  EXPECT_EQ(TruncateUtf8("aé", 2), "a");
}

// Protects: a reply that is only quotation keeps its text (nothing would be left otherwise),
// and a text without quotation is unchanged.
TEST(MimeTest, StripKeepsTextWhenNothingElse) {
  bool stripped = true;
  EXPECT_EQ(StripQuotedHistory("> only a quote\n> more", &stripped), "> only a quote\n> more");
  EXPECT_FALSE(stripped);
  EXPECT_EQ(StripQuotedHistory("Hello\nFrom: the shop we met", &stripped),
            "Hello\nFrom: the shop we met");
  EXPECT_FALSE(stripped);
}

// Protects: a forward is not a reply: the forwarded text is the content and is kept whole, for
// each mail program's forward shape (Gmail, Thunderbird, Apple Mail, Outlook's header block), by
// the body's first line as by the subject (Fwd:, FW:, TR:, WG:); the trial's Gmail forward kept
// only its separator line.
TEST(QuotedHistoryTest, ForwardsKeepTheForwardedText) {
  const std::string customer = "Bonjour, quel est votre tarif pour 50 postes ?";
  const std::vector<std::string> bodies = {
      "---------- Forwarded message ---------\nFrom: Claire Durand <claire.durand@laposte.net>\n"
      "Date: Mon, 30 Nov 2026 at 14:00\nSubject: Demande de tarif\nTo: <vendeur@acme.test>\n\n" +
          customer,
      "-------- Original Message --------\nSubject: Demande de tarif\nDate: Mon, 30 Nov 2026\n"
      "From: Claire Durand <claire.durand@laposte.net>\n\n" +
          customer,
      "\nBegin forwarded message:\n\nFrom: Claire Durand <claire.durand@laposte.net>\n"
      "Subject: Demande de tarif\nDate: 30 November 2026 at 14:00:00 CET\n\n" +
          customer,
      "________________________________\nFrom: Claire Durand <claire.durand@laposte.net>\n"
      "Sent: Monday, November 30, 2026 2:00 PM\nTo: vendeur@acme.test\nSubject: Demande\n\n" +
          customer,
      "From: Claire Durand <claire.durand@laposte.net>\nSent: Monday, November 30, 2026 2:00 PM\n"
      "To: vendeur@acme.test\n\n" +
          customer,
      // A note above the forwarded message: the whole is kept.
      "Client important, à rappeler.\n\n---------- Forwarded message ---------\n"
      "From: Claire Durand <claire.durand@laposte.net>\nDate: Mon, 30 Nov 2026 at 14:00\n\n" +
          customer};
  for (const std::string& body : bodies) {
    bool stripped = true;
    std::string text = StripQuotedHistory(body, &stripped);
    EXPECT_THAT(text, HasSubstr(customer)) << body;
    EXPECT_FALSE(stripped) << body;
  }
  // By the subject: even an "On … wrote:" inside a forward is kept.
  for (const char* subject :
       {"Fwd: Demande", "FW: Demande", "TR: Demande", "WG: Anfrage", "fwd: demande"}) {
    ParsedMessage m = ParseMessage(std::string("From: v@acme.test\r\nSubject: ") + subject +
                                   "\r\n\r\nVoir ci-dessous.\r\n\r\nOn Mon, 30 Nov 2026, Claire "
                                   "<c@laposte.net> wrote:\r\n> " +
                                   customer + "\r\n");
    EXPECT_THAT(m.text, HasSubstr(customer)) << subject;
    EXPECT_FALSE(m.quoted_history_stripped) << subject;
  }
  EXPECT_FALSE(IsForwardSubject("Re: Fwd: Demande"));
  EXPECT_FALSE(IsForwardSubject("Forward planning"));
}

// Protects: in a reply, Outlook's "________________________________" line with From:/Sent: below
// it, the "Get Outlook for iOS" signature, and German (Von:/Gesendet:/An:/Betreff:) and French
// (De :/Envoyé :) header blocks start the quoted history.
TEST(QuotedHistoryTest, OutlookAndGermanQuoteStarts) {
  struct Case {
    std::string body;
    std::string reply;
  };
  const std::vector<Case> cases = {
      {"Oui, jeudi 10h.\n\n________________________________\nFrom: Sales <sales@acme.test>\n"
       "Sent: Monday, November 30, 2026 9:00 AM\nTo: Jean <jean@example.org>\nSubject: RDV\n\n"
       "Quand êtes-vous disponible ?",
       "Oui, jeudi 10h."},
      {"Oui, jeudi 10h.\n\nGet Outlook for iOS<https://aka.ms/o0ukef>\n"
       "________________________________\nFrom: Sales <sales@acme.test>\nSent: Monday\n\nQuand ?",
       "Oui, jeudi 10h."},
      {"Ja, Donnerstag passt.\n\nVon: Sales <sales@acme.test>\nGesendet: Montag, 30. November "
       "2026 09:00\nAn: Jan <jan@example.de>\nBetreff: Termin\n\nWann passt es Ihnen?",
       "Ja, Donnerstag passt."},
      {"Ja, Donnerstag passt.\n\nVon: Sales <sales@acme.test>\nDatum: 30. November 2026\n"
       "An: Jan <jan@example.de>\n\nWann passt es Ihnen?",
       "Ja, Donnerstag passt."},
      {"Oui.\n\nDe : Sales <sales@acme.test>\nEnvoyé : lundi 30 novembre 2026 09:00\n"
       "À : Jean <jean@example.fr>\nObjet : RDV\n\nQuand ?",
       "Oui."},
  };
  for (const Case& c : cases) {
    bool stripped = false;
    EXPECT_EQ(StripQuotedHistory(c.body, &stripped), c.reply) << c.body;
    EXPECT_TRUE(stripped) << c.body;
  }
}

// Protects: the quick tests that spare a line the quoted-history patterns never spare a line a
// pattern matches: white space after the closing ':' or '-', before a rule line, an attribution
// wrapped with a blank after "wrote:", and the Outlook signature in capitals still start the
// quotation.
TEST(QuotedHistoryTest, QuoteStartsWithBlanksAndCapitals) {
  const std::string reply = "Oui, jeudi 10h.";
  const std::vector<std::string> starts = {
      "On Mon, 30 Nov 2026 at 14:00, Claire <c@laposte.net> wrote:  \t",
      "Le lun. 30 nov. 2026 à 14:00, Claire <c@laposte.net> a écrit : ",
      "On Mon, 30 Nov 2026 at 14:00, Claire Durand\n<claire.durand@laposte.net> wrote: ",
      "  -----Original Message-----  ",
      "-----Message d'origine-----\t",
      "   ________________________________ \nFrom: Sales <sales@acme.test>\nSent: Monday",
      "GET OUTLOOK FOR IOS",
      "From: Sales <sales@acme.test> \nSent: Monday, November 30, 2026 9:00 AM  ",
  };
  for (const std::string& start : starts) {
    std::string body = reply + "\n\n" + start + "\n\n> Quand êtes-vous disponible ?\n";
    bool stripped = false;
    EXPECT_EQ(StripQuotedHistory(body, &stripped), reply) << start;
    EXPECT_TRUE(stripped) << start;
  }
  // Lines without what a quotation start needs are kept as they are.
  bool stripped = true;
  const std::string plain = "Bonjour,\nNous souhaiterions un devis - 20 licences\nMerci : Jean\n";
  EXPECT_EQ(StripQuotedHistory(plain, &stripped),
            "Bonjour,\nNous souhaiterions un devis - 20 "
            "licences\nMerci : Jean");
  EXPECT_FALSE(stripped);
}

// Protects: a quotation start written with a no-break space before the colon, as French
// typography has it (Apple Mail, Outlook: "a écrit\u00a0:", "De\u202f:"), or with another
// Unicode space anywhere the patterns have a space, is cut as its ASCII spelling is (trial 89c
// #3: the whole quoted history, a confidential price, was kept as the customer's words); the
// reply's own no-break spaces are kept as written.
TEST(QuotedHistoryTest, UnicodeSpacesInQuoteStarts) {
  const std::string reply = "Oui pour mardi\u00a0!";
  for (const std::string space : {" ", "\u00a0", "\u202f", "\u2009", "\u3000"}) {
    const std::vector<std::string> starts = {
        "Le 30 nov. 2026 à 10:00, Sales <sales@acme.test> a écrit" + space + ":",
        "Le" + space + "30 nov. 2026," + space + "Sales <sales@acme.test> a" + space + "écrit" +
            space + ":" + space,
        "Am 30.11.2026 um 10:00 schrieb Sales <sales@acme.test>" + space + ":",
        "Am Mo., 30. Nov. 2026 um 10:00 Uhr schrieb" + space + "Sales" + space + ":",
        "El 30 nov 2026, a las 10:00, Sales <sales@acme.test> escribió" + space + ":",
        "-----Message" + space + "d'origine-----",
        "De" + space + ": Sales <sales@acme.test>\nEnvoyé" + space +
            ": lundi 30 novembre 2026 10:00",
        "Von" + space + ": Sales <sales@acme.test>\nGesendet" + space + ": Montag",
    };
    for (const std::string& start : starts) {
      std::string body = reply + "\n\n" + start + "\nAncienne offre confidentielle.\n";
      bool stripped = false;
      EXPECT_EQ(StripQuotedHistory(body, &stripped), reply) << start;
      EXPECT_TRUE(stripped) << start;
    }
  }
  // A line of no-break spaces only is blank, not text: it neither ends the reply nor stays.
  bool stripped = false;
  EXPECT_EQ(StripQuotedHistory("Bonjour,\n\u00a0\nOui.\n\u00a0\n> vieux texte", &stripped),
            "Bonjour,\n\nOui.");
  EXPECT_TRUE(stripped);
}

// Protects: real-shaped French replies whose quotation starts with a no-break space: a plain
// text one (trial 89c e13), a French Outlook HTML-only one whose header block is
// "De&nbsp;:/Envoyé&nbsp;:/À&nbsp;:/Objet&nbsp;:" (e11: kept whole, with a line of only
// "\u00a0" from <o:p>&nbsp;</o:p>), and an Apple Mail HTML-only one, attribution
// "a écrit&nbsp;:" and the quoted message in <blockquote type="cite"> (e12: "Tarif
// confidentiel" was kept).
TEST(MimeTest, FrenchRepliesWithNoBreakSpaces) {
  ParsedMessage plain = ParseMessage(Corpus("reply_plain_fr_nbsp.eml"));
  EXPECT_EQ(plain.text, "Oui pour mardi.");
  EXPECT_TRUE(plain.quoted_history_stripped);

  ParsedMessage outlook = ParseMessage(Corpus("reply_outlook_html_fr_nbsp.eml"));
  EXPECT_EQ(outlook.text,
            "Bonjour,\n\nPouvez-vous m\u2019envoyer vos tarifs 2027 ?\n\nCordialement,\n\n"
            "Oscar");
  EXPECT_TRUE(outlook.quoted_history_stripped);

  ParsedMessage apple = ParseMessage(Corpus("reply_apple_html_fr.eml"));
  EXPECT_EQ(apple.text, "Mardi 14h me convient.\n\nEnvoyé de mon iPhone");
  EXPECT_THAT(apple.text, Not(HasSubstr("confidentiel")));
  EXPECT_TRUE(apple.quoted_history_stripped);
}

// Protects: HTML's <blockquote type="cite"> is quoted text ("> " lines); another blockquote (an
// indented passage) is the writer's own text; a paragraph of &nbsp; only is blank, while a
// no-break space in text stays one.
TEST(MimeTest, HtmlCitationsAndNoBreakSpaces) {
  EXPECT_EQ(HtmlToText("<p>Oui&nbsp;!</p><p><o:p>&nbsp;</o:p></p><blockquote "
                       "type=\"cite\"><div>Ancien<br>texte</div>"
                       "<blockquote type=cite>plus ancien</blockquote></blockquote>"
                       "<blockquote>Cit\u00e9 par moi</blockquote>"),
            "Oui\u00a0!\n\n> Ancien\n> texte\n> plus ancien\n\nCit\u00e9 par moi");
}

// Protects: format=flowed (RFC 3676) is decoded: soft breaks joined, DelSp=yes removes the
// space of the break (trial 89c #4: "logici \nel"), DelSp=no keeps it, space-stuffing is
// undone, a quote depth change ends a paragraph and each depth is written "> " once per joined
// line, the signature separator "-- " stays a line of its own; CRLF or LF line ends.
TEST(FlowedTest, DecodesSoftBreaksDelSpStuffingAndQuotes) {
  EXPECT_EQ(
      DecodeFlowed("un devis pour votre logici \r\nel de gestion, avec \r\nformation.\r\n", true),
      "un devis pour votre logiciel de gestion, avecformation.\n");
  EXPECT_EQ(DecodeFlowed("un devis pour votre \r\nlogiciel de gestion.\r\n", false),
            "un devis pour votre logiciel de gestion.\n");
  EXPECT_EQ(DecodeFlowed(" From me\n >not a quote\n", false), "From me\n>not a quote\n");
  EXPECT_EQ(DecodeFlowed("> Voici notre \n> offre.\n>> plus \n>> ancien\nOui \n", false),
            "> Voici notre offre.\n>> plus ancien\nOui \n");
  EXPECT_EQ(DecodeFlowed("> flowed into \nanother depth\n", false),
            "> flowed into \nanother depth\n");
  // A flowed line followed by an empty one ends its paragraph there (RFC 3676 §4.2).
  EXPECT_EQ(DecodeFlowed("Paul \n\n-- \nPaul Flow", false), "Paul \n-- \nPaul Flow");
  EXPECT_EQ(DecodeFlowed("Paul\n\n-- \nPaul Flow", false), "Paul\n\n-- \nPaul Flow");
  EXPECT_EQ(DecodeFlowed("", true), "");
}

// Protects: a text/plain; format=flowed; delsp=yes part (Thunderbird) reads as written: words
// whole, paragraphs on one line, a space-stuffed "From" line unstuffed, and its quoted history
// still cut.
TEST(MimeTest, FlowedPartUnwrapped) {
  ParsedMessage m = ParseMessage(Corpus("flowed_delsp_reply.eml"));
  EXPECT_EQ(m.text,
            "Bonjour, nous voudrions un devis pour vingt licences de votre logiciel de gestion, "
            "avec installation sur site et formation de nos équipes.\n"
            "From the start of a line, as typed.");
  EXPECT_TRUE(m.quoted_history_stripped);
}

// Protects: a Date far outside what a time point holds is no date (found by the fuzzer: the
// conversion overflowed).
TEST(MimeTest, AbsurdDateIsNoDate) {
  EXPECT_FALSE(ParseMessage("From: a@example.org\r\nDate: Mon, 1 Jan 99999 00:00:00 +0000\r\n\r\nx")
                   .date.has_value());
  EXPECT_TRUE(ParseDate("Fri, 31 Dec 2100 23:59:59 +0000").has_value());
}

// Protects: garbage and empty input never crash the parser.
TEST(MimeTest, GarbageInput) {
  EXPECT_EQ(ParseMessage("").from_address, "");
  ParsedMessage m = ParseMessage(std::string("\0\xff\xfe--\r\n\r\n\x80", 10));
  EXPECT_EQ(m.message_id, "");
}

// `count` addresses "r<i>@b.example", comma-separated on one line.
std::string AddressList(int count) {
  std::string list;
  for (int i = 0; i < count; ++i) {
    if (i > 0) list += ", ";
    list += "r" + std::to_string(i) + "@b.example";
  }
  return list;
}

// Protects: a To of 201 addresses keeps the first 100 and says 101 were left out (M14a: the cut
// was silent); a Cc within the cap is whole (nothing omitted, no header named).
TEST(MimeTest, RecipientsPastTheCapAreCounted) {
  ParsedMessage parsed =
      ParseMessage("From: jean@example.org\r\nTo: " + AddressList(201) +
                   "\r\nCc: a@b.example, c@d.example\r\nSubject: many\r\n\r\nhi\r\n");
  ASSERT_EQ(parsed.to_addresses.size(), 100u);
  EXPECT_EQ(parsed.to_addresses.front(), "r0@b.example");
  EXPECT_EQ(parsed.to_addresses.back(), "r99@b.example");
  EXPECT_EQ(parsed.to_addresses_omitted, 101u);
  EXPECT_THAT(parsed.cc_addresses, ElementsAre("a@b.example", "c@d.example"));
  EXPECT_EQ(parsed.cc_addresses_omitted, 0u);
  EXPECT_TRUE(parsed.truncated_headers.empty());
}

// Protects: a header field past 64 KiB is cut and named (M14b/c: one rule on every channel);
// the rest of the message is read as usual. An over-long To is cut after a whole address and the
// addresses in the cut part are counted with those past the cap: 8000 named, 100 kept, 7900
// omitted. A Subject past 998 bytes is cut and named too.
TEST(MimeTest, OverlongHeaderFieldsAreCutAndNamed) {
  const std::string campaign(100 * 1024, 'c');
  const std::string subject(2000, 's');
  ParsedMessage parsed = ParseMessage("From: jean@example.org\r\nTo: " + AddressList(8000) +
                                      "\r\nX-Campaign: " + campaign + "\r\nSubject: " + subject +
                                      "\r\nMessage-ID: <long@example.org>\r\n\r\nBonjour\r\n");
  EXPECT_THAT(parsed.truncated_headers, ElementsAre("To", "X-Campaign", "Subject"));
  EXPECT_EQ(parsed.to_addresses.size(), 100u);
  EXPECT_EQ(parsed.to_addresses_omitted, 7900u);
  EXPECT_EQ(parsed.subject.size(), kMaxSubjectBytes);
  EXPECT_EQ(parsed.message_id, "long@example.org");
  EXPECT_EQ(parsed.from_address, "jean@example.org");
  EXPECT_EQ(parsed.text, "Bonjour");
}

// Protects: the address fields together stay within their budget (a memory bound: GMime makes an
// object per address): 60 To fields of 3 KiB each, every one within the per-field cap, are cut
// past 128 KiB and every address left out is still counted.
TEST(MimeTest, ManyAddressFieldsStayWithinTheirBudget) {
  std::string headers = "From: jean@example.org\r\n";
  int total = 0;
  for (int field = 0; field < 60; ++field) {
    std::string list;
    for (int i = 0; i < 150; ++i, ++total) {
      if (i > 0) list += ",";
      list += "p" + std::to_string(total) + "@x.example";
    }
    headers += "To: " + list + "\r\n";
  }
  ASSERT_GT(headers.size(), 128u * 1024);
  ParsedMessage parsed = ParseMessage(headers + "Subject: budget\r\n\r\nhi\r\n");
  EXPECT_THAT(parsed.truncated_headers, ElementsAre("To"));
  EXPECT_EQ(parsed.to_addresses.size(), 100u);
  EXPECT_EQ(parsed.to_addresses.size() + parsed.to_addresses_omitted, static_cast<size_t>(total));
  EXPECT_EQ(parsed.subject, "budget");
}

}  // namespace
}  // namespace leadflow::email
