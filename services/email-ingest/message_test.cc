// The never-a-lead filters, the event id and the event built from a parsed message.

#include "email-ingest/message.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "email-ingest/test_corpus.h"
#include "identity/identity.h"
#include "ingest/event_id.h"

namespace leadflow::email {
namespace {

using ::testing::ElementsAre;

Envelope Smtp(std::optional<std::string> mail_from = "someone@example.org") {
  return {.provider = "smtp",
          .mail_from = std::move(mail_from),
          .mailbox = "sales@acme.test",
          .client_ip = "203.0.113.7",
          .received = std::chrono::system_clock::time_point(std::chrono::seconds(1796030000))};
}

std::optional<DropReason> Filter(const std::string& raw, const Envelope& envelope = Smtp()) {
  return NeverALead(ParseMessage(raw), envelope);
}

const std::string kPlain =
    "Message-ID: <x@example.org>\r\nFrom: Jean <jean@example.org>\r\nTo: sales@acme.test\r\n"
    "Subject: hi\r\n";

// Protects: every never-a-lead rule of the issue drops with its own reason, and an ordinary
// message passes.
TEST(FiltersTest, EachRuleDropsWithItsReason) {
  EXPECT_EQ(Filter(kPlain + "\r\nHello"), std::nullopt);
  EXPECT_EQ(Filter(kPlain + "Auto-Submitted: no\r\n\r\nHello"), std::nullopt);
  EXPECT_EQ(Filter(Corpus("autoreply.eml")), DropReason::kAutoSubmitted);
  EXPECT_EQ(Filter(kPlain + "Auto-Submitted: Auto-Generated\r\n\r\nx"), DropReason::kAutoSubmitted);
  EXPECT_EQ(Filter(kPlain + "X-Autoreply: yes\r\n\r\nx"), DropReason::kAutoReplyHeader);
  EXPECT_EQ(Filter(kPlain + "X-Autorespond: x\r\n\r\nx"), DropReason::kAutoReplyHeader);
  EXPECT_EQ(Filter(kPlain + "Precedence: auto_reply\r\n\r\nx"), DropReason::kAutoReplyHeader);
  EXPECT_EQ(Filter(kPlain + "Precedence: bulk\r\n\r\nx"), DropReason::kBulkPrecedence);
  EXPECT_EQ(Filter(kPlain + "Precedence: junk\r\n\r\nx"), DropReason::kBulkPrecedence);
  EXPECT_EQ(Filter(kPlain + "Precedence: list\r\n\r\nx"), DropReason::kBulkPrecedence);
  EXPECT_EQ(Filter(kPlain + "List-Id: <news.example.org>\r\n\r\nx"), DropReason::kMailingList);
  EXPECT_EQ(Filter(kPlain + "List-Unsubscribe: <mailto:u@x>\r\n\r\nx"), DropReason::kMailingList);
  EXPECT_EQ(Filter(Corpus("newsletter.eml")), DropReason::kBulkPrecedence);
  EXPECT_EQ(Filter(Corpus("bounce.eml")), DropReason::kDeliveryReport);
  EXPECT_EQ(Filter("From: MAILER-DAEMON@mx.example.org\r\n\r\nx"), DropReason::kDaemonSender);
  EXPECT_EQ(Filter("From: Postmaster@mx.example.org\r\n\r\nx"), DropReason::kDaemonSender);
  EXPECT_EQ(Filter(kPlain + "\r\nx", Smtp("MAILER-DAEMON@mx.example.org")),
            DropReason::kDaemonSender);
  EXPECT_EQ(Filter(kPlain + "\r\nx", Smtp("")), DropReason::kEmptyReturnPath);
  EXPECT_EQ(Filter("Return-Path: <>\r\n" + kPlain + "\r\nx", Smtp(std::nullopt)),
            DropReason::kEmptyReturnPath);
  EXPECT_EQ(Filter(kPlain + "X-LeadFlow-Loop: acme\r\n\r\nx"), DropReason::kLoop);
  EXPECT_EQ(Filter("Subject: nobody\r\n\r\nx", Smtp(std::nullopt)), DropReason::kNoSender);
  // Without a From header, the envelope sender is the sender.
  EXPECT_EQ(Filter("Subject: s\r\n\r\nx", Smtp("a@example.org")), std::nullopt);
}

// Protects: an answer to an invitation (text/calendar METHOD:REPLY, "Accepted: …", sent with no
// auto-reply header) is dropped as calendar_reply instead of opening a reply task with no text
// (trial E6), whether the method is in the calendar or only in the Content-Type; an invitation
// itself (METHOD:REQUEST) is a lead.
TEST(FiltersTest, CalendarRepliesDropped) {
  EXPECT_EQ(Filter(Corpus("calendar_reply.eml")), DropReason::kCalendarReply);
  EXPECT_EQ(Filter(Corpus("calendar_reply_minimal.eml")), DropReason::kCalendarReply);
  EXPECT_EQ(Filter(kPlain + "Content-Type: text/calendar; method=REPLY\r\n\r\n"
                            "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:x\r\nEND:VEVENT\r\n"
                            "END:VCALENDAR\r\n"),
            DropReason::kCalendarReply);
  EXPECT_EQ(Filter(Corpus("calendar_only.eml")), std::nullopt);
  EXPECT_EQ(Filter(Corpus("calendar_invitation.eml")), std::nullopt);
  EXPECT_STREQ(DropReasonName(DropReason::kCalendarReply), "calendar_reply");
}

// Protects: out-of-office replies sent without Auto-Submitted or X-Autoreply are dropped by their
// subject, for each prefix of the documented default list and the trial's subjects, in any case;
// a subject that only mentions one later is a lead; the list is a setting (empty: no subject
// rule).
TEST(FiltersTest, AutoReplySubjects) {
  auto with_subject = [](const std::string& subject) {
    return "Message-ID: <o@example.org>\r\nFrom: Luc <luc@example.org>\r\nTo: sales@acme.test\r\n"
           "Subject: " +
           subject + "\r\n\r\nI am out of the office.";
  };
  for (const std::string& prefix : DefaultAutoReplySubjects()) {
    EXPECT_EQ(Filter(with_subject(prefix + ": Votre offre")), DropReason::kAutoReplySubject)
        << prefix;
  }
  for (const char* subject :
       {"Out of Office: Votre offre de novembre", "Automatic reply: Devis",
        "Réponse automatique : Votre offre", "Abwesenheitsnotiz: Ihre Anfrage", "Autosvar: Offert",
        "Risposta automatica: Offerta", "OUT OF OFFICE: x", "  automatic reply: x"}) {
    EXPECT_EQ(Filter(with_subject(subject)), DropReason::kAutoReplySubject) << subject;
  }
  EXPECT_EQ(Filter(with_subject("Re: Out of Office: ma question")), std::nullopt);
  EXPECT_EQ(Filter(with_subject("Devis (je serai out of office demain)")), std::nullopt);
  MessageRules none;
  none.autoreply_subjects.clear();
  EXPECT_EQ(NeverALead(ParseMessage(with_subject("Out of Office: x")), Smtp(), none), std::nullopt);
}

// Protects: Exchange's automatic replies and inbox-rule messages are dropped by their headers
// (X-MS-Exchange-Inbox-Rules-Loop; X-Auto-Response-Suppress naming All or OOF), while an
// ordinary Outlook mail is a lead.
TEST(FiltersTest, ExchangeAutoReplyHeaders) {
  EXPECT_EQ(Filter(kPlain + "X-MS-Exchange-Inbox-Rules-Loop: luc@example.org\r\n\r\nx"),
            DropReason::kAutoReplyHeader);
  EXPECT_EQ(Filter(kPlain + "X-Auto-Response-Suppress: All\r\n\r\nx"),
            DropReason::kAutoReplyHeader);
  EXPECT_EQ(Filter(kPlain + "X-Auto-Response-Suppress: DR, RN, NRN, OOF, AutoReply\r\n\r\nx"),
            DropReason::kAutoReplyHeader);
  EXPECT_EQ(Filter(kPlain + "Thread-Index: AQHZ1a2b3c4d\r\nX-MS-Has-Attach: yes\r\n\r\nx"),
            std::nullopt);
}

// Protects: mail whose From is one of our own accepted addresses or domains (a Bcc copy of what
// we sent, a loop without the loop header) is dropped as own_address, unless accepted by the
// setting; a sender elsewhere is a lead.
TEST(FiltersTest, OwnAddress) {
  MessageRules rules;
  rules.own_addresses = RecipientPolicy::Parse("sales@leads.localhost,support.acme.test");
  auto from = [&](const std::string& address) {
    return NeverALead(ParseMessage("Message-ID: <a@b>\r\nFrom: " + address +
                                   "\r\nTo: sales@leads.localhost\r\nSubject: s\r\n\r\nx"),
                      Smtp(address), rules);
  };
  EXPECT_EQ(from("sales@leads.localhost"), DropReason::kOwnAddress);
  EXPECT_EQ(from("Sales <SALES@leads.localhost>"), DropReason::kOwnAddress);
  EXPECT_EQ(from("anyone@support.acme.test"), DropReason::kOwnAddress);
  EXPECT_EQ(from("jean@example.org"), std::nullopt);
  rules.accept_own_address = true;
  EXPECT_EQ(from("sales@leads.localhost"), std::nullopt);
}

// Protects: a configured form builder's notification (From no-reply@crm.wix.com, Reply-To the
// customer) names the customer as the person, with the relay recorded: two customers are two
// people, not one lead holding the relay's address. Without the setting a no-reply From stays
// the person: anyone can send from a no-reply address of their own domain with a customer's
// address in Reply-To, and must not file their text on that customer. Without a Reply-To, or
// with an ordinary From, the From stays the person.
TEST(BuildEventTest, RelaySenderAndNoReplyFrom) {
  auto wix = [](const std::string& customer, const std::string& name) {
    return ParseMessage("Message-ID: <wix-" + customer +
                        ">\r\nFrom: Wix Forms <no-reply@crm.wix.com>\r\nReply-To: " + name + " <" +
                        customer + ">\r\nTo: sales@acme.test\r\nSubject: New form\r\n\r\nx");
  };
  MessageRules wix_relay;
  wix_relay.relay_senders = RecipientPolicy::Parse("crm.wix.com");
  auto a = BuildEmailEvent(wix("anna@example.org", "Anna Berg"), Smtp("bounce@wix.com"), wix_relay);
  auto b = BuildEmailEvent(wix("bob@example.net", "Bob Stone"), Smtp("bounce@wix.com"), wix_relay);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->event.identities(0).value(), "anna@example.org");
  EXPECT_EQ(a->event.email().from_address(), "anna@example.org");
  EXPECT_EQ(a->event.person().first_name(), "Anna");
  EXPECT_EQ(a->event.person().last_name(), "Berg");
  EXPECT_EQ(a->event.email().relay_address(), "no-reply@crm.wix.com");
  EXPECT_EQ(b->event.identities(0).value(), "bob@example.net");
  EXPECT_EQ(b->key, "email-thread:wix-bob@example.net");
  ParsedMessage spoof = ParseMessage(
      "From: No Reply <noreply@attacker.example>\r\nReply-To: victim@client.example\r\n"
      "Subject: s\r\n\r\nx");
  auto unconfigured = BuildEmailEvent(spoof, Smtp());
  ASSERT_TRUE(unconfigured.ok());
  EXPECT_EQ(unconfigured->event.identities(0).value(), "noreply@attacker.example");
  EXPECT_EQ(unconfigured->event.email().from_address(), "noreply@attacker.example");
  EXPECT_EQ(unconfigured->event.email().relay_address(), "");

  MessageRules rules;
  rules.relay_senders = RecipientPolicy::Parse("typeform.io");
  ParsedMessage typeform = ParseMessage(
      "From: Typeform <notifications@typeform.io>\r\nReply-To: c@example.org\r\n"
      "Subject: New response\r\n\r\nx");
  EXPECT_EQ(BuildEmailEvent(typeform, Smtp(), rules)->event.identities(0).value(), "c@example.org");
  EXPECT_EQ(BuildEmailEvent(typeform, Smtp())->event.identities(0).value(),
            "notifications@typeform.io");
  EXPECT_EQ(BuildEmailEvent(typeform, Smtp())->event.email().relay_address(), "");
  ParsedMessage ordinary = ParseMessage(
      "From: Jean <jean@example.org>\r\nReply-To: assistant@example.org\r\nSubject: s\r\n\r\nx");
  EXPECT_EQ(BuildEmailEvent(ordinary, Smtp(), rules)->event.identities(0).value(),
            "jean@example.org");
  ParsedMessage no_reply_to =
      ParseMessage("From: Wix Forms <no-reply@crm.wix.com>\r\nSubject: s\r\n\r\nx");
  EXPECT_EQ(BuildEmailEvent(no_reply_to, Smtp())->event.identities(0).value(),
            "no-reply@crm.wix.com");
  for (const char* address : {"no-reply@x.test", "noreply@x.test", "do-not-reply@x.test",
                              "forms-receipts-noreply@google.com", "DoNotReply@x.test"}) {
    EXPECT_TRUE(IsNoReplyAddress(address)) << address;
  }
  EXPECT_FALSE(IsNoReplyAddress("nora.reply@x.test"));
  EXPECT_FALSE(IsNoReplyAddress("jean@x.test"));
}

// Protects: a message naming none of our addresses in To (a Bcc, a Mailgun post whose headers
// leave To out) still carries our mailbox as its To and reference; a display name that is an
// address is no name (crm-core then titles by the subject, and the address is the identity).
TEST(BuildEventTest, BccMailboxAndAddressAsName) {
  ParsedMessage m =
      ParseMessage("From: \"jean@example.org\" <jean@example.org>\r\nSubject: s\r\n\r\nx");
  Envelope envelope = Smtp();
  envelope.mailbox = "sales@leads.localhost";
  auto built = BuildEmailEvent(m, envelope);
  ASSERT_TRUE(built.ok());
  ASSERT_EQ(built->event.email().to_addresses_size(), 1);
  EXPECT_EQ(built->event.email().to_addresses(0), "sales@leads.localhost");
  EXPECT_EQ(built->event.email().mailbox(), "sales@leads.localhost");
  EXPECT_EQ(built->event.source().reference(), "sales@leads.localhost");
  EXPECT_EQ(built->event.person().first_name(), "");
  EXPECT_EQ(built->event.email().from_name(), "");
  ParsedMessage quoted = ParseMessage("From: 'J. Dupont' <jd@example.org>\r\nSubject: s\r\n\r\nx");
  EXPECT_EQ(BuildEmailEvent(quoted, envelope)->event.person().last_name(), "Dupont");
}

// Protects: a From display name in Han, Kana or Hangul (RFC 2047-encoded, as mail clients send
// it) is split family name first — the family name is the last name — while Western display
// names keep their split.
TEST(BuildEventTest, EastAsianDisplayNameFamilyNameFirst) {
  struct Case {
    std::string encoded;
    std::string first;
    std::string last;
  };
  const Case cases[] = {
      {"=?UTF-8?B?5bGx55SwIOWkqumDjg==?=", "太郎", "山田"},          // 山田 太郎
      {"=?UTF-8?B?546L5Lyf?=", "伟", "王"},                          // 王伟
      {"=?UTF-8?B?5qyn6Ziz5L+u?=", "修", "欧阳"},                    // 欧阳修
      {"=?UTF-8?B?64Ko6raB66+87IiY?=", "민수", "남궁"},              // 남궁민수
      {"=?UTF-8?B?44KE44G+44Gg44Gf44KN44GG?=", "", "やまだたろう"},  // やまだたろう
      {"Marie Curie", "Marie", "Curie"},
      {"Curie, Marie", "Marie", "Curie"},
  };
  for (const Case& c : cases) {
    ParsedMessage m =
        ParseMessage("From: " + c.encoded + " <p@example.org>\r\nSubject: s\r\n\r\nx");
    auto built = BuildEmailEvent(m, Smtp());
    ASSERT_TRUE(built.ok()) << c.encoded;
    EXPECT_EQ(built->event.person().first_name(), c.first) << c.encoded;
    EXPECT_EQ(built->event.person().last_name(), c.last) << c.encoded;
  }
}

// Protects: the event id is the channel's hash of the Message-ID with the From address, whatever
// else differs (an SMTP and an IMAP copy of one message are one event, the address's case does
// not matter); another sender reusing the Message-ID is another event, not dropped as a copy.
TEST(EventIdTest, FromMessageIdAndSender) {
  ParsedMessage a = ParseMessage(kPlain + "\r\nHello");
  ParsedMessage b = ParseMessage(kPlain + "Received: by another hop\r\n\r\nHello");
  ParsedMessage upper = ParseMessage(
      "Message-ID: <x@example.org>\r\nFrom: JEAN@Example.ORG\r\nSubject: other\r\n\r\nHi");
  ParsedMessage other = ParseMessage(
      "Message-ID: <x@example.org>\r\nFrom: other.person@example.com\r\nSubject: hi\r\n\r\nHi");
  EXPECT_EQ(EmailEventId(a),
            ingest::EventId("email", MessageIdKey("x@example.org", "jean@example.org")));
  EXPECT_EQ(EmailEventId(a), EmailEventId(b));
  EXPECT_EQ(EmailEventId(a), EmailEventId(upper));
  EXPECT_NE(EmailEventId(a), EmailEventId(other));
  // The envelope sender plays no part: a provider's bounce address differs from SMTP's.
  EXPECT_EQ(BuildEmailEvent(a, Smtp("bounces+123@mailgun.example"))->event.event_id(),
            BuildEmailEvent(a, Smtp("jean@example.org"))->event.event_id());
}

// Protects: without a Message-ID the id hashes the significant headers and the body: the same
// message twice is one id (even through other hops); another body, sender or subject is another.
TEST(EventIdTest, WithoutMessageIdHashesHeadersAndBody) {
  const std::string headers =
      "From: a@example.org\r\nTo: sales@acme.test\r\nDate: Mon, 30 Nov 2026 12:00:00 +0000\r\n";
  std::string id = EmailEventId(ParseMessage(headers + "Subject: s\r\n\r\nbody"));
  EXPECT_EQ(id.rfind("email:", 0), 0u);
  EXPECT_EQ(id,
            EmailEventId(ParseMessage("Received: hop\r\n" + headers + "Subject: s\r\n\r\nbody")));
  EXPECT_NE(id, EmailEventId(ParseMessage(headers + "Subject: s\r\n\r\nbody 2")));
  EXPECT_NE(id, EmailEventId(ParseMessage(headers + "Subject: t\r\n\r\nbody")));
  EXPECT_NE(id, EmailEventId(ParseMessage(
                    "From: b@example.org\r\nTo: sales@acme.test\r\nDate: Mon, 30 Nov 2026 "
                    "12:00:00 +0000\r\nSubject: s\r\n\r\nbody")));
  EXPECT_NE(id,
            EmailEventId(ParseMessage(headers + "Cc: c@example.org\r\nSubject: s\r\n\r\nbody")));
}

// Protects: the event carries everything crm-core's email rules need: sender identity, person,
// thread headers, Reply-To, cc, Date, the mailbox, attachment metadata, the HTML flag, the
// provider; and it is keyed on its thread (its own Message-ID: it starts one).
TEST(BuildEventTest, CarriesWhatCrmCoreNeeds) {
  ParsedMessage m = ParseMessage(Corpus("alternative.eml"));
  auto built = BuildEmailEvent(m, Smtp());
  ASSERT_TRUE(built.ok()) << built.status();
  const events::v1::InboundEvent& event = built->event;
  EXPECT_EQ(built->key, "email-thread:5f1c2e3a-8d4b-4c1e-9f00-0a1b2c3d4e5f@example.org");
  EXPECT_EQ(
      event.event_id(),
      ingest::EventId("email", MessageIdKey("5f1c2e3a-8d4b-4c1e-9f00-0a1b2c3d4e5f@example.org",
                                            "marie.curie@example.org")));
  EXPECT_EQ(event.source().service(), "email-ingest");
  EXPECT_EQ(event.source().provider(), "smtp");
  EXPECT_EQ(event.source().reference(), "sales@acme.test");
  EXPECT_EQ(event.source().client_ip(), "203.0.113.7");
  ASSERT_EQ(event.identities_size(), 1);
  EXPECT_EQ(event.identities(0).kind(), events::v1::Identity::EMAIL);
  EXPECT_EQ(event.identities(0).value(), "marie.curie@example.org");
  EXPECT_EQ(event.person().first_name(), "Marie");
  EXPECT_EQ(event.person().last_name(), "Curie");
  EXPECT_EQ(event.occurred_at().seconds(), 1796026360);  // the Date header
  EXPECT_EQ(event.received_at().seconds(), 1796030000);
  const events::v1::EmailMessage& email = event.email();
  EXPECT_EQ(email.message_id(), "5f1c2e3a-8d4b-4c1e-9f00-0a1b2c3d4e5f@example.org");
  EXPECT_EQ(email.from_address(), "marie.curie@example.org");
  EXPECT_THAT(email.to_addresses(), ElementsAre("sales@acme.test"));
  EXPECT_THAT(email.cc_addresses(), ElementsAre("pierre@example.org"));
  EXPECT_EQ(email.reply_to_address(), "marie@labo.example.org");
  EXPECT_EQ(email.date().seconds(), 1796026360);
  EXPECT_EQ(email.mailbox(), "sales@acme.test");
  EXPECT_EQ(email.provider(), "smtp");
  EXPECT_FALSE(email.text_from_html());

  auto reply = BuildEmailEvent(ParseMessage(Corpus("reply_gmail.eml")), Smtp());
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->event.email().in_reply_to(), "first-1@acme.test");
  EXPECT_THAT(reply->event.email().references(),
              ElementsAre("lead-0@acme.test", "first-1@acme.test"));
  EXPECT_TRUE(reply->event.email().quoted_history_stripped());

  auto attachments = BuildEmailEvent(ParseMessage(Corpus("attachments.eml")), Smtp());
  ASSERT_TRUE(attachments.ok());
  ASSERT_EQ(attachments->event.email().attachments_size(), 2);
  EXPECT_EQ(attachments->event.email().attachments(1).filename(), "Cahier des charges été.pdf");
  EXPECT_EQ(attachments->event.email().attachments(1).size_bytes(), 5136);

  auto html = BuildEmailEvent(ParseMessage(Corpus("html_only_windows1252.eml")), Smtp());
  ASSERT_TRUE(html.ok());
  EXPECT_TRUE(html->event.email().text_from_html());
  EXPECT_EQ(html->event.person().first_name(), "John");
  EXPECT_EQ(html->event.person().last_name(), "Smith");
}

// Protects: a Date in the future is not believed: occurred_at is then the receipt time.
TEST(BuildEventTest, FutureDateIsNotOccurredAt) {
  auto built = BuildEmailEvent(
      ParseMessage("From: a@example.org\r\nDate: Fri, 1 Jan 2100 00:00:00 +0000\r\n\r\nx"), Smtp());
  ASSERT_TRUE(built.ok());
  EXPECT_EQ(built->event.occurred_at().seconds(), 1796030000);
}

// Protects: a sender that is not an email address is refused (crm-core could not match it).
TEST(BuildEventTest, InvalidSenderRefused) {
  auto built = BuildEmailEvent(ParseMessage("From: not an address\r\n\r\nx"), Smtp(std::nullopt));
  EXPECT_FALSE(built.ok());
}

}  // namespace
}  // namespace leadflow::email

namespace leadflow::email {
namespace {

// Protects: a thread's messages share one Kafka key whoever sent them (trial E1: keyed by the
// sender, a colleague's reply went to another partition and crm-core applied it before the
// message it answers, making a second lead): the first message is keyed by its own Message-ID,
// a reply by the first of its References, else its In-Reply-To; a message without any id by its
// sender, as before.
TEST(BuildEventTest, KeyedByThreadNotSender) {
  auto key = [](const std::string& headers) {
    auto built = BuildEmailEvent(
        ParseMessage(headers + "To: sales@acme.test\r\nSubject: Offre\r\n\r\ntext"), Smtp());
    EXPECT_TRUE(built.ok()) << built.status();
    return built.ok() ? built->key : std::string();
  };
  const std::string first =
      key("Message-ID: <ana-1@lagco.example>\r\nFrom: Ana <ana@lagco.example>\r\n");
  EXPECT_EQ(first, "email-thread:ana-1@lagco.example");
  // Bruno's reply, another sender, names Ana's message.
  EXPECT_EQ(key("Message-ID: <bruno-1@lagco.example>\r\nFrom: Bruno <bruno@lagco.example>\r\n"
                "In-Reply-To: <ana-1@lagco.example>\r\nReferences: <ana-1@lagco.example>\r\n"),
            first);
  // Deeper in the thread: the root, not the parent.
  EXPECT_EQ(key("Message-ID: <ana-2@lagco.example>\r\nFrom: Ana <ana@lagco.example>\r\n"
                "In-Reply-To: <bruno-1@lagco.example>\r\nReferences: <ana-1@lagco.example> "
                "<bruno-1@lagco.example>\r\n"),
            first);
  // Outlook: In-Reply-To only.
  EXPECT_EQ(key("Message-ID: <out-1@lagco.example>\r\nFrom: Carla <carla@lagco.example>\r\n"
                "In-Reply-To: <ana-1@lagco.example>\r\n"),
            first);
  EXPECT_EQ(key("From: Dan <dan@lagco.example>\r\nDate: Mon, 30 Nov 2026 12:00:00 +0000\r\n"),
            "dan@lagco.example");
}

}  // namespace
}  // namespace leadflow::email

namespace leadflow::email {
namespace {

// Protects: inbound mail and the API agree on an internationalised sender (trial E5): mail from
// max@bücher.example and from max@xn--bcher-kva.example carries the identity the API's
// normalisation gives for either spelling (FindByCommunication, upsert by identity), so they
// are one person.
TEST(BuildEventTest, InternationalisedSenderMatchesTheApisForm) {
  const std::string api_unicode = *identity::NormalizeEmail("Max@Bücher.example");
  const std::string api_ascii = *identity::NormalizeEmail("MAX@XN--BCHER-KVA.EXAMPLE");
  EXPECT_EQ(api_unicode, api_ascii);
  for (const char* from : {"max@bücher.example", "max@xn--bcher-kva.example"}) {
    auto built = BuildEmailEvent(ParseMessage(std::string("From: Max Mustermann <") + from +
                                              ">\r\nTo: sales@leads.localhost\r\nMessage-ID: "
                                              "<idn@xn--bcher-kva.example>\r\n\r\nhallo"),
                                 Smtp());
    ASSERT_TRUE(built.ok()) << from << ": " << built.status();
    ASSERT_EQ(built->event.identities_size(), 1);
    EXPECT_EQ(built->event.identities(0).value(), api_unicode) << from;
  }
}

}  // namespace
}  // namespace leadflow::email
