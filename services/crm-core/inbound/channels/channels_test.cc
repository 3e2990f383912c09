#include "crm-core/inbound/channels/channels.h"

#include <gtest/gtest.h>

#include "crm-core/domain/common/limits.h"
#include "crm-core/domain/lead/lead.h"
#include "crm-core/inbound/planner.h"
#include "testing/testing.h"

namespace leadflow::crm {
namespace {

using events::v1::CallEvent;
using events::v1::Identity;
using events::v1::InboundEvent;

InboundEvent From(const std::string& phone) {
  InboundEvent event;
  event.set_event_id("e1");
  auto* identity = event.add_identities();
  identity->set_kind(Identity::PHONE);
  identity->set_value(phone);
  return event;
}

// Protects: a web form's attempt carries its words, its title parts and every web-form detail
// (form id, page, referrer, UTM, custom fields) as source details; nothing is lost on the way.
TEST(ChannelsTest, WebFormDetails) {
  InboundEvent event = testing::WebFormEvent("e1", "+33612345678", "", "Jean", "Need a quote");
  event.mutable_web_form()->set_page_url("https://example.com/contact");
  event.mutable_web_form()->mutable_utm()->set_source("google");
  (*event.mutable_web_form()->mutable_custom_fields())["rooms"] = "3";
  ContactAttempt attempt = ToContactAttempt(event);
  EXPECT_EQ(attempt.source_id, "WEB_FORM");
  EXPECT_EQ(attempt.comments, "Need a quote");
  EXPECT_EQ(attempt.person.city, "Lyon");
  ASSERT_EQ(attempt.identities.size(), 1u);
  EXPECT_EQ(attempt.identities[0], (IdentityKey{"PHONE", "+33612345678"}));
  EXPECT_EQ(attempt.source_details.at("reference"), "contact");
  EXPECT_EQ(attempt.source_details.at("page_url"), "https://example.com/contact");
  EXPECT_EQ(attempt.source_details.at("utm_source"), "google");
  EXPECT_EQ(attempt.source_details.at("field:rooms"), "3");
  EXPECT_EQ(attempt.source_details.count("referrer"), 0u);  // not given: no empty column
  EXPECT_EQ(LeadTitle("{city} – {name} – {need}", attempt), "Lyon – Jean – Need a quote");
}

// Protects (A3): the attempt carries inbound text as the API would accept it, whatever the
// channel: a bidirectional override is removed from the name, the need and so the title, a
// control character becomes a space, a comment keeps its line breaks.
TEST(ChannelsTest, InboundTextIsNeutralised) {
  InboundEvent event = testing::WebFormEvent("e1", "+33612345678", "", "Bidi\u202e Test",
                                             "abc \u202e fdp.exe\x07\nline two");
  ContactAttempt attempt = ToContactAttempt(event);
  EXPECT_EQ(attempt.person.first_name, "Bidi Test");
  EXPECT_EQ(attempt.comments, "abc  fdp.exe \nline two");
  EXPECT_EQ(LeadTitle("{name} – {need}", attempt), "Bidi Test – abc  fdp.exe");
  EXPECT_EQ(attempt.activity.description.find("\u202e"), std::string::npos);
}

// Protects: a missed call asks for a call back (open, with the rules' deadline) and is titled
// "Missed call <number>"; an answered call is a completed call activity without a deadline.
// Neither carries web-form details.
TEST(ChannelsTest, CallsMissedAndAnswered) {
  InboundEvent missed = From("+33612345678");
  missed.mutable_call()->set_outcome(CallEvent::MISSED);
  missed.mutable_call()->set_from_number("+33612345678");
  missed.mutable_call()->set_to_number("+33100000000");
  ASSERT_EQ(ValidateEvent(missed), "");
  ContactAttempt attempt = ToContactAttempt(missed);
  EXPECT_EQ(attempt.source_id, "CALL");
  EXPECT_EQ(LeadTitle("{city} – {name} – {need}", attempt), "Missed call +33 6 12 34 56 78");
  EXPECT_EQ(attempt.source_details.at("reference"), "+33100000000");
  EXPECT_EQ(attempt.source_details.count("utm_source"), 0u);

  Planner planner({}, {}, {1});
  planner.Add(attempt);
  ASSERT_EQ(planner.plan().activities.size(), 1u);
  EXPECT_EQ(planner.plan().activities[0].type, "CALL");
  EXPECT_EQ(planner.plan().activities[0].subject, "Call back");
  EXPECT_FALSE(planner.plan().activities[0].completed);
  EXPECT_GT(planner.plan().activities[0].deadline_after.count(), 0);
  EXPECT_EQ(planner.plan().leads[0].source, "CALL");

  InboundEvent answered = From("+33699999999");
  answered.set_event_id("e2");
  answered.mutable_call()->set_outcome(CallEvent::ANSWERED);
  ContactAttempt done = ToContactAttempt(answered);
  planner.Add(done);
  ASSERT_EQ(planner.plan().activities.size(), 2u);
  EXPECT_TRUE(planner.plan().activities[1].completed);
  EXPECT_EQ(planner.plan().activities[1].deadline_after.count(), 0);
}

// Protects: a call whose end never came (telephony-ingest's `incomplete`: the PBX link was down
// when it hung up) says so on its activity and in its source details, and its unknown talk time
// is not shown as a "0 s" call; a complete call says nothing of the kind.
TEST(ChannelsTest, IncompleteCallSaysItsEndWasNotReported) {
  InboundEvent cut = From("+33612345678");
  cut.mutable_call()->set_outcome(CallEvent::ANSWERED);
  cut.mutable_call()->set_incomplete(true);
  ContactAttempt attempt = ToContactAttempt(cut);
  EXPECT_EQ(attempt.activity.description,
            "Answered call from +33 6 12 34 56 78, talk time unknown; its end was not reported "
            "(the link to the phone system was down)");
  EXPECT_EQ(attempt.source_details.at("incomplete"), "true");

  InboundEvent whole = From("+33612345678");
  whole.mutable_call()->set_outcome(CallEvent::ANSWERED);
  whole.mutable_call()->set_duration_seconds(42);
  ContactAttempt complete = ToContactAttempt(whole);
  EXPECT_EQ(complete.activity.description, "Answered call from +33 6 12 34 56 78, 42 s");
  EXPECT_EQ(complete.source_details.count("incomplete"), 0u);
}

// Protects: an email makes an open EMAIL "reply" activity; a messenger message an open reply
// task titled "<Platform>: <sender>" when nothing else names them.
TEST(ChannelsTest, EmailAndMessenger) {
  InboundEvent email = From("+1");
  email.mutable_email()->set_subject("Quote for a kitchen");
  email.mutable_email()->set_from_address("jean@example.com");
  email.mutable_email()->set_text_body("Hello");
  ContactAttempt mail = ToContactAttempt(email);
  EXPECT_EQ(mail.source_id, "EMAIL");
  EXPECT_EQ(mail.activity.type, "EMAIL");
  EXPECT_EQ(mail.activity.subject, "Reply: Quote for a kitchen");
  EXPECT_EQ(mail.source_details.at("subject"), "Quote for a kitchen");

  InboundEvent chat = From("+1");
  chat.mutable_messenger()->set_platform("telegram");
  chat.mutable_messenger()->set_sender_display_name("Jean-Pierre");
  chat.mutable_messenger()->set_conversation_id("c42");
  ContactAttempt message = ToContactAttempt(chat);
  EXPECT_EQ(message.source_id, "MESSENGER");
  EXPECT_EQ(LeadTitle("{name}", message), "Telegram: Jean-Pierre");
  EXPECT_EQ(message.source_details.at("reference"), "c42");
}

InboundEvent Mail(const std::string& from, const std::string& relay = "") {
  InboundEvent event;
  event.set_event_id("m1");
  auto* identity = event.add_identities();
  identity->set_kind(Identity::EMAIL);
  identity->set_value(from);
  event.mutable_email()->set_from_address(from);
  event.mutable_email()->set_subject("Devis");
  event.mutable_email()->set_relay_address(relay);
  return event;
}

// Protects: a sender without a display name is named by the address: the title's {name} (not the
// subject alone) and the first name; a sender with one keeps it.
TEST(ChannelsTest, EmailSenderWithoutNameIsNamedByTheAddress) {
  ContactAttempt bare = ToContactAttempt(Mail("jean@example.org"));
  EXPECT_EQ(LeadTitle("{city} – {name} – {need}", bare), "jean@example.org – Devis");
  EXPECT_EQ(bare.person.first_name, "jean@example.org");
  EXPECT_EQ(bare.person.last_name, "");

  InboundEvent named = Mail("jean@example.org");
  named.mutable_person()->set_first_name("Jean");
  named.mutable_person()->set_last_name("Dupont");
  EXPECT_EQ(LeadTitle("{city} – {name} – {need}", ToContactAttempt(named)), "Jean Dupont – Devis");
}

// Protects (D16): an inbound name nobody can see (a combining accent alone, a Hangul filler, a
// variation selector) is treated as no name, never refused: the sender is nameless and known by
// the address, as without a name; a name with a visible letter is kept as sent.
TEST(ChannelsTest, InvisibleInboundNameIsNoName) {
  InboundEvent unseen = Mail("jean@example.org");
  unseen.mutable_person()->set_first_name("\u0301");
  unseen.mutable_person()->set_last_name("\u3164\uFE0F");
  unseen.mutable_person()->set_company("\u2800");
  ContactAttempt attempt = ToContactAttempt(unseen);
  EXPECT_EQ(attempt.person.first_name, "jean@example.org");
  EXPECT_EQ(attempt.person.last_name, "");
  EXPECT_EQ(attempt.person.company, "");
  EXPECT_EQ(attempt.unnamed_as, "jean@example.org");
  EXPECT_EQ(LeadTitle("{city} – {name} – {need}", attempt), "jean@example.org – Devis");

  InboundEvent half = Mail("jean@example.org");
  half.mutable_person()->set_first_name("Jean");
  half.mutable_person()->set_last_name("\u034F");
  ContactAttempt kept = ToContactAttempt(half);
  EXPECT_EQ(kept.person.first_name, "Jean");
  EXPECT_EQ(kept.person.last_name, "");
  EXPECT_EQ(kept.unnamed_as, "");
}

// Protects (E15): a person who gave no name is known by how they reached us — a number as people
// write it, an address, a messenger id — so that the contacts made for them can be told apart; a
// person who gave a name (or a messenger profile name) is not.
TEST(ChannelsTest, NamelessPeopleAreKnownByHowTheyReachedUs) {
  InboundEvent call = From("+33612345678");
  call.mutable_call()->set_from_number("+33612345678");
  EXPECT_EQ(ToContactAttempt(call).unnamed_as, "+33 6 12 34 56 78");
  EXPECT_EQ(ToContactAttempt(Mail("jean@example.org")).unnamed_as, "jean@example.org");
  // The relay sender is nobody's: the person behind it is known by their own address.
  InboundEvent relayed = Mail("anna@example.org", "no-reply@crm.wix.com");
  Identity* relay = relayed.add_identities();
  relay->set_kind(Identity::EMAIL);
  relay->set_value("no-reply@crm.wix.com");
  EXPECT_EQ(ToContactAttempt(relayed).unnamed_as, "anna@example.org");
  InboundEvent chat;
  chat.set_event_id("t1");
  Identity* id = chat.add_identities();
  id->set_kind(Identity::MESSENGER);
  id->set_value("telegram:42");
  chat.mutable_messenger()->set_platform("telegram");
  EXPECT_EQ(ToContactAttempt(chat).unnamed_as, "telegram:42");

  InboundEvent named = From("+33612345678");
  named.mutable_call();
  named.mutable_person()->set_first_name("Jean");
  EXPECT_EQ(ToContactAttempt(named).unnamed_as, "");
  chat.mutable_messenger()->set_sender_display_name("山田 太郎");
  ContactAttempt profile = ToContactAttempt(chat);
  EXPECT_EQ(profile.unnamed_as, "");
  EXPECT_EQ(profile.person.first_name, "山田 太郎");  // split by naming's ContactName
  EXPECT_EQ(LeadTitle("{name}", profile), "Telegram: 山田 太郎");
}

// Protects: the title's {name} of a name given in two parts reads as the person writes it: family
// name first for a Chinese, Japanese or Korean name, given name first otherwise.
TEST(ChannelsTest, TitleNameFamilyFirstForEastAsianNames) {
  InboundEvent yamada = Mail("yamada@example.jp");
  yamada.mutable_person()->set_first_name("太郎");
  yamada.mutable_person()->set_last_name("山田");
  EXPECT_EQ(LeadTitle("{name} – {need}", ToContactAttempt(yamada)), "山田 太郎 – Devis");
  InboundEvent jean = Mail("jean@example.org");
  jean.mutable_person()->set_first_name("Jean");
  jean.mutable_person()->set_last_name("Dupont");
  EXPECT_EQ(LeadTitle("{name} – {need}", ToContactAttempt(jean)), "Jean Dupont – Devis");
}

// Protects: the relay sender of an email is no identity (dropped even when the event lists it),
// no match-only Reply-To, and a source detail; an email whose only identity it is, is refused.
TEST(ChannelsTest, EmailRelaySenderIsNobodys) {
  InboundEvent event = Mail("marc@client.example", "No-Reply@crm.wix.com");
  auto* relay = event.add_identities();
  relay->set_kind(Identity::EMAIL);
  relay->set_value("no-reply@crm.wix.com");
  event.mutable_email()->set_reply_to_address("no-reply@crm.wix.com");
  EXPECT_EQ(ValidateEvent(event), "");
  ContactAttempt attempt = ToContactAttempt(event);
  ASSERT_EQ(attempt.identities.size(), 1u);
  EXPECT_EQ(attempt.identities[0], (IdentityKey{"EMAIL", "marc@client.example"}));
  EXPECT_TRUE(attempt.match_only.empty());
  EXPECT_EQ(attempt.source_details.at("relay"), "no-reply@crm.wix.com");

  EXPECT_EQ(ValidateEvent(Mail("no-reply@crm.wix.com", "no-reply@crm.wix.com")),
            "the email's only identity is its relay sender (relay_address)");
}

// Protects: the names an event gives (first and last name, company, city) are cut to the API's
// bound for names (domain::kMaxNameBytes), so that the lead, contact or company made of them can be
// saved back over the API unchanged; the words stay within the text bound.
TEST(ChannelsTest, NamesFitTheApisBoundForNames) {
  const std::string long_name(domain::kMaxNameBytes + 100, 'n');
  InboundEvent event = testing::WebFormEvent("e1", "+33612345678", "", long_name,
                                             std::string(domain::kMaxTextBytes + 10, 'w'));
  event.mutable_person()->set_last_name(long_name);
  event.mutable_person()->set_company(long_name);
  event.mutable_person()->set_city(long_name);
  ContactAttempt attempt = ToContactAttempt(event);
  for (const std::string* name : {&attempt.person.first_name, &attempt.person.last_name,
                                  &attempt.person.company, &attempt.person.city}) {
    EXPECT_EQ(name->size(), domain::kMaxNameBytes);
  }
  EXPECT_EQ(attempt.comments.size(), domain::kMaxTextBytes);
}

// Protects: an event without a payload is refused with the dead-letter reason.
TEST(ChannelsTest, NoPayloadIsRefused) {
  EXPECT_EQ(ValidateEvent(From("+1")), "payload not handled by this crm-core version");
}

}  // namespace
}  // namespace leadflow::crm
