// The email channel's rules in crm-core (docs/architecture.md, "Email: threads, messages,
// routes") against real PostgreSQL and the Kafka protocol (librdkafka's mock cluster for the
// dead-letter topic): threads, who may reply into one, one open reply activity per thread (also
// with two consumers), kept messages and their caps, Message-IDs delivered twice, the Reply-To,
// threads whose record is merged or converted meanwhile, and routes by recipient address.

#include <gtest/gtest.h>

#include <future>
#include <pqxx/pqxx>
#include <thread>

#include "crm-core/domain/identity/identity_key.h"
#include "crm-core/inbound/batch.h"
#include "crm-core/store/email_repository.h"
#include "crm-core/store/people_repository.h"
#include "crm-core/store/repositories.h"
#include "crm-core/store/statements.h"
#include "testing/crm.h"
#include "testing/testing.h"

namespace leadflow::crm {
namespace {

using events::v1::InboundEvent;

struct Mail {
  std::string message_id;
  std::string from;
  std::string name = "Jean Dupont";
  std::string cc;  // default: boss@<the sender's domain>
  std::string subject = "Devis";
  std::string body = "Bonjour, un devis pour 3 postes.";
  std::string in_reply_to;
  std::vector<std::string> references;
  std::string mailbox = "sales@acme.test";
  std::string reply_to;
  std::string event_id;  // default: from the Message-ID, as email-ingest makes it
  std::string relay;     // relay_address: the form builder that wrote on behalf of `from`
  // The relay also given as an identity of the event (a producer older than relay_address, or a
  // hostile one): crm-core must drop it all the same.
  bool relay_as_identity = false;
};

kafka::Message Encode(const Mail& mail) {
  InboundEvent event;
  event.set_event_id(!mail.event_id.empty() ? mail.event_id : "email:" + mail.message_id);
  auto* identity = event.add_identities();
  identity->set_kind(events::v1::Identity::EMAIL);
  identity->set_value(mail.from);
  if (mail.relay_as_identity) {
    auto* relay = event.add_identities();
    relay->set_kind(events::v1::Identity::EMAIL);
    relay->set_value(mail.relay);
  }
  const size_t space = mail.name.rfind(' ');
  event.mutable_person()->set_first_name(space == std::string::npos ? mail.name
                                                                    : mail.name.substr(0, space));
  if (space != std::string::npos)
    event.mutable_person()->set_last_name(mail.name.substr(space + 1));
  events::v1::EmailMessage* email = event.mutable_email();
  email->set_message_id(mail.message_id);
  email->set_from_address(mail.from);
  email->set_from_name(mail.name);
  email->add_to_addresses(mail.mailbox);
  email->add_cc_addresses(!mail.cc.empty() ? mail.cc
                                           : "boss@" + mail.from.substr(mail.from.find('@') + 1));
  email->set_subject(mail.subject);
  email->set_text_body(mail.body);
  email->set_in_reply_to(mail.in_reply_to);
  for (const std::string& reference : mail.references) email->add_references(reference);
  email->set_reply_to_address(mail.reply_to);
  email->set_mailbox(mail.mailbox);
  email->mutable_date()->set_seconds(1796029200);
  auto* attachment = email->add_attachments();
  attachment->set_filename("plan.pdf");
  attachment->set_content_type("application/pdf");
  attachment->set_size_bytes(12345);
  email->set_provider("smtp");
  email->set_relay_address(mail.relay);
  kafka::Message message;
  message.topic = kafka::kInboundTopic;
  static int64_t next_offset = 9000;
  message.offset = next_offset++;
  message.key = mail.from;
  event.SerializeToString(&message.value);
  return message;
}

class EmailRulesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    kafka_.CreateTopic(kafka::kInboundDlqTopic, 1);
    auto producer = kafka::Producer::Create({.brokers = kafka_.bootstrap()});
    ASSERT_TRUE(producer.ok());
    producer_ = std::move(*producer);
    processor_ = MakeProcessor(RuleSettings{}, counters_);
    alice_ = Count("INSERT INTO users (name) VALUES ('Alice') RETURNING id");
    bob_ = Count("INSERT INTO users (name) VALUES ('Bob') RETURNING id");
  }

  std::unique_ptr<BatchProcessor> MakeProcessor(RuleSettings rules, InboundCounters& counters) {
    return std::make_unique<BatchProcessor>(BatchProcessorOptions{.rules = std::move(rules)},
                                            database_.url(), nullptr, *producer_, counters);
  }
  int64_t Count(const std::string& sql) { return database_.Scalar(sql); }
  std::string Text(const std::string& sql) { return database_.Text(sql); }
  void Exec(const std::string& sql) { database_.Exec(sql); }
  void Apply(const std::vector<kafka::Message>& batch) {
    ASSERT_TRUE(processor_->Process(batch).ok());
  }
  std::vector<EmailMessageRecord> MessagesOf(domain::EntityRef owner, int64_t activity = 0) {
    pqxx::connection connection(database_.url());
    pg::PrepareAll(connection, Statements());
    pqxx::read_transaction work(connection);
    return EmailRepository(work).List(activity, owner, 0, 100);
  }
  // A lead of no thread, responsible `user`.
  int64_t Lead(int64_t user) {
    return Count(
        "INSERT INTO leads (title, status, source, responsible_user_id) VALUES ('Other', 'NEW', "
        "'EMAIL', " +
        std::to_string(user) + ") RETURNING id");
  }

  testing::CrmDatabase database_;
  testing::MockKafka kafka_;
  std::unique_ptr<kafka::Producer> producer_;
  metrics::Registry registry_;
  InboundCounters counters_{registry_};
  std::unique_ptr<BatchProcessor> processor_;
  int64_t alice_ = 0;
  int64_t bob_ = 0;
};

// Protects: a first mail from an unknown sender makes a lead (source EMAIL, "{name} – {subject}"
// without a city) with one open EMAIL activity, and the message is kept with every field, linked
// to that activity and lead.
TEST_F(EmailRulesTest, FirstMailMakesLeadAndKeepsMessage) {
  Apply({Encode({.message_id = "m1@example.org", .from = "jean@example.org"})});
  ASSERT_EQ(Count("SELECT count(*) FROM leads"), 1);
  const int64_t lead = Count("SELECT id FROM leads");
  EXPECT_EQ(Text("SELECT source FROM leads"), "EMAIL");
  EXPECT_EQ(Text("SELECT title FROM leads"), "Jean Dupont – Devis");
  ASSERT_EQ(Count("SELECT count(*) FROM activities WHERE type = 'EMAIL' AND NOT completed"), 1);
  const int64_t activity = Count("SELECT id FROM activities");
  std::vector<EmailMessageRecord> kept = MessagesOf({domain::EntityKind::kLead, lead});
  ASSERT_EQ(kept.size(), 1u);
  const EmailMessageRecord& message = kept[0];
  EXPECT_EQ(message.message_id, "m1@example.org");
  EXPECT_EQ(message.activity_id, activity);
  EXPECT_EQ(message.thread_key, "m1@example.org");
  EXPECT_EQ(message.from_address, "jean@example.org");
  EXPECT_EQ(message.from_name, "Jean Dupont");
  EXPECT_EQ(message.to_addresses, std::vector<std::string>{"sales@acme.test"});
  EXPECT_EQ(message.cc_addresses, std::vector<std::string>{"boss@example.org"});
  EXPECT_EQ(message.subject, "Devis");
  EXPECT_EQ(message.body, "Bonjour, un devis pour 3 postes.");
  EXPECT_EQ(message.sent_micros, int64_t{1796029200} * 1000000);
  ASSERT_EQ(message.attachments.size(), 1u);
  EXPECT_EQ(message.attachments[0].filename, "plan.pdf");
  EXPECT_EQ(message.attachments[0].size_bytes, 12345);
  EXPECT_EQ(MessagesOf({}, activity).size(), 1u);
}

// Protects: a reply in the thread from another address that took part in it (Cc of the first
// message) goes to the thread's lead and joins its open activity — no new lead, no second
// activity, the new address added to nobody — whether the first message came in an earlier batch
// or earlier in the same batch.
TEST_F(EmailRulesTest, ReplyFromAnotherAddressJoinsThread) {
  Apply({Encode({.message_id = "t1@example.org", .from = "jean@example.org"})});
  Apply({Encode({.message_id = "t2@other.example",
                 .from = "boss@example.org",
                 .name = "Paul Martin",
                 .subject = "Re: Devis",
                 .in_reply_to = "t1@example.org",
                 .references = {"t1@example.org"}})});
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM activities"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM lead_identities WHERE value = 'boss@example.org'"), 0);
  EXPECT_EQ(Count("SELECT repeat_count FROM leads"), 0);
  EXPECT_EQ(Count("SELECT count(DISTINCT activity_id) FROM email_messages"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM email_messages WHERE thread_key = 't1@example.org'"), 2);

  // The same within one batch, the reply naming the first only in References.
  Apply({Encode({.message_id = "u1@example.net",
                 .from = "anna@example.net",
                 .name = "Anna",
                 .cc = "colleague@elsewhere.example"}),
         Encode({.message_id = "u2@elsewhere.example",
                 .from = "colleague@elsewhere.example",
                 .cc = "anna@example.net",
                 .references = {"u0@nowhere.example", "u1@example.net"}})});
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 2);
  EXPECT_EQ(Count("SELECT count(*) FROM activities"), 2);
  EXPECT_EQ(Count("SELECT count(DISTINCT activity_id) FROM email_messages WHERE thread_key = "
                  "'u1@example.net'"),
            1);
  EXPECT_EQ(Count("SELECT count(*) FROM lead_identities WHERE value LIKE 'colleague@%'"), 0);
  EXPECT_EQ(counters_.email.replies_threaded.Value(), 2);
}

// Protects: one open reply activity per thread: once it is completed the next message of the
// thread opens a new one on the same record, and the message after that joins the new one.
TEST_F(EmailRulesTest, CompletedReplyActivityThenNewOne) {
  Apply({Encode({.message_id = "c1@example.org", .from = "jean@example.org"})});
  Exec("UPDATE activities SET completed = true, completed_at = now()");
  Apply({Encode({.message_id = "c2@example.org",
                 .from = "jean@example.org",
                 .subject = "Re: Devis",
                 .in_reply_to = "c1@example.org"})});
  Apply({Encode({.message_id = "c3@example.org",
                 .from = "boss@example.org",
                 .subject = "Re: Re: Devis",
                 .in_reply_to = "c1@example.org"})});
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM activities"), 2);
  EXPECT_EQ(Count("SELECT count(*) FROM activities WHERE NOT completed AND type = 'EMAIL' AND "
                  "owner_type = 'LEAD'"),
            1);
  const int64_t open = Count("SELECT id FROM activities WHERE NOT completed");
  EXPECT_EQ(
      Count("SELECT count(*) FROM email_messages WHERE activity_id = " + std::to_string(open)), 2);
  EXPECT_EQ(Count("SELECT repeat_count FROM leads"), 0);
}

// Protects: the thread's record may be a deal (simple mode: contact + deal): a reply from
// another address of the thread (its Cc) goes on that deal's open activity; no second contact or
// deal is made.
TEST_F(EmailRulesTest, ReplyGoesToTheThreadsDeal) {
  Exec("UPDATE crm_settings SET mode = 'SIMPLE', last_name_placeholder = 'Inconnu'");
  Apply({Encode({.message_id = "d1@example.org",
                 .from = "marie@example.org",
                 .name = "Marie",
                 .cc = "someone@example.com"})});
  ASSERT_EQ(Count("SELECT count(*) FROM deals"), 1);
  EXPECT_EQ(Text("SELECT first_name || '/' || last_name FROM contacts"), "Marie/Inconnu");
  EXPECT_EQ(Text("SELECT source_id FROM deals"), "EMAIL");
  const int64_t deal = Count("SELECT id FROM deals");
  Apply({Encode({.message_id = "d2@example.org",
                 .from = "someone@example.com",
                 .cc = "marie@example.org",
                 .in_reply_to = "d1@example.org"})});
  EXPECT_EQ(Count("SELECT count(*) FROM deals"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM contacts"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM activities"), 1);
  EXPECT_EQ(MessagesOf({domain::EntityKind::kDeal, deal}).size(), 2u);
  EXPECT_EQ(Count("SELECT count(*) FROM contact_identities WHERE value = 'someone@example.com'"),
            0);
}

// Protects: a thread whose lead was converted follows it to the deal it became: the reply opens
// a reply activity on that deal (the lead is closed), no new lead.
TEST_F(EmailRulesTest, ReplyFollowsConvertedLeadToItsDeal) {
  Apply({Encode({.message_id = "k1@example.org", .from = "jean@example.org"})});
  const int64_t lead = Count("SELECT id FROM leads");
  const int64_t deal = Count(
      "INSERT INTO deals (title, pipeline_id, stage_id, stage_semantics, responsible_user_id) "
      "VALUES ('Kitchen', 1, 'NEW', 'PROCESS', " +
      std::to_string(bob_) + ") RETURNING id");
  Exec("UPDATE leads SET status = 'CONVERTED', converted_deal_id = " + std::to_string(deal) +
       " WHERE id = " + std::to_string(lead));
  Apply({Encode({.message_id = "k2@example.org",
                 .from = "jean@example.org",
                 .subject = "Re: Devis",
                 .in_reply_to = "k1@example.org"})});
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM activities WHERE owner_type = 'DEAL' AND owner_id = " +
                  std::to_string(deal) +
                  " AND type = 'EMAIL' AND NOT completed AND "
                  "responsible_user_id = " +
                  std::to_string(bob_)),
            1);
  EXPECT_EQ(MessagesOf({domain::EntityKind::kDeal, deal}).size(), 1u);
}

// Protects: a Message-ID is no secret: an outsider quoting a customer's Message-ID (In-Reply-To
// or References) files nothing on the customer's record — their mail is a contact attempt of
// their own (a lead of theirs), the customer's lead keeps one activity, one message and its
// identities. A sender who is an address of the record, though new to the thread, replies into
// it.
TEST_F(EmailRulesTest, OutsiderQuotingAMessageIdMakesTheirOwnLead) {
  Apply({Encode({.message_id = "v1@victim.example", .from = "victim@victim.example"})});
  const int64_t victim = Count("SELECT id FROM leads");
  Apply({Encode({.message_id = "x1@attacker.example",
                 .from = "mallory@attacker.example",
                 .in_reply_to = "v1@victim.example"}),
         Encode({.message_id = "x2@attacker.example",
                 .from = "eve@attacker.example",
                 .references = {"v1@victim.example"}})});
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 3);
  EXPECT_EQ(Count("SELECT count(*) FROM activities WHERE owner_type = 'LEAD' AND owner_id = " +
                  std::to_string(victim)),
            1);
  EXPECT_EQ(MessagesOf({domain::EntityKind::kLead, victim}).size(), 1u);
  EXPECT_EQ(Count("SELECT count(*) FROM lead_identities WHERE lead_id = " + std::to_string(victim)),
            1);
  EXPECT_EQ(Count("SELECT count(*) FROM email_messages WHERE thread_key = 'v1@victim.example'"), 1);
  EXPECT_EQ(counters_.email.replies_refused.Value(), 2);
  EXPECT_EQ(counters_.email.replies_threaded.Value(), 0);

  // An address of the record (added to the lead by a user) replies into the thread.
  Exec(
      "INSERT INTO lead_identities (kind, value, lead_id) VALUES ('EMAIL', "
      "'victim.private@home.example', " +
      std::to_string(victim) + ")");
  Apply({Encode({.message_id = "v2@home.example",
                 .from = "victim.private@home.example",
                 .in_reply_to = "v1@victim.example"})});
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 3);
  EXPECT_EQ(Count("SELECT count(*) FROM email_messages WHERE thread_key = 'v1@victim.example'"), 2);
  EXPECT_EQ(MessagesOf({domain::EntityKind::kLead, victim}).size(), 2u);
}

// Protects: the same Message-ID under two event ids (two deliveries that did not agree on the
// id) has one effect, in one batch or two.
TEST_F(EmailRulesTest, SameMessageIdTwiceHasOneEffect) {
  Apply({Encode({.message_id = "dup@example.org", .from = "jean@example.org", .event_id = "a"}),
         Encode({.message_id = "dup@example.org", .from = "jean@example.org", .event_id = "b"})});
  Apply({Encode({.message_id = "dup@example.org", .from = "jean@example.org", .event_id = "c"})});
  EXPECT_EQ(Count("SELECT count(*) FROM processed_events"), 3);
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM activities"), 1);
  EXPECT_EQ(Count("SELECT repeat_count FROM leads"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM email_messages"), 1);
  EXPECT_EQ(counters_.email.duplicate_messages.Value(), 2);
}

// Protects: the same Message-ID from another sender is another message (a mailer that reuses ids,
// or someone copying a customer's id): it is applied (its sender gets a lead), kept without the
// id, and counted; it neither joins nor replaces the first. The first sender's redelivery is
// still a duplicate, in one batch or two.
TEST_F(EmailRulesTest, SameMessageIdFromAnotherSenderIsAnotherMessage) {
  Apply({Encode({.message_id = "reused@mailer.example", .from = "jean@example.org"})});
  Apply({Encode({.message_id = "reused@mailer.example",
                 .from = "claire@example.net",
                 .body = "Une autre demande",
                 .event_id = "claire-1"}),
         Encode({.message_id = "reused@mailer.example",
                 .from = "JEAN@example.org",
                 .event_id = "jean-again"})});
  Apply({Encode({.message_id = "other@mailer.example", .from = "paul@example.com"}),
         Encode({.message_id = "other@mailer.example",
                 .from = "marc@example.com",
                 .event_id = "marc-1"})});
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 4);
  EXPECT_EQ(Count("SELECT count(*) FROM email_messages"), 4);
  EXPECT_EQ(Text("SELECT from_address FROM email_messages WHERE message_id = "
                 "'reused@mailer.example'"),
            "jean@example.org");
  EXPECT_EQ(Count("SELECT count(*) FROM email_messages WHERE message_id IS NULL AND "
                  "from_address IN ('claire@example.net', 'marc@example.com')"),
            2);
  EXPECT_EQ(Count("SELECT count(*) FROM email_messages WHERE body = 'Une autre demande'"), 1);
  EXPECT_EQ(counters_.email.duplicate_messages.Value(), 1);
  EXPECT_EQ(counters_.email.reused_message_ids.Value(), 2);
}

// Protects: the Reply-To is not a match identity by default (anyone can write a customer's address
// there): a relay's mail with a customer's Reply-To makes a lead of its own. Through a mailbox
// configured as trusted (a form relay's), the Reply-To finds the sender's record, and neither it
// nor the From is added to a record found that way.
TEST_F(EmailRulesTest, ReplyToMatchesOnlyThroughATrustedMailbox) {
  Apply({Encode({.message_id = "r1@example.org", .from = "jean@example.org"})});
  const int64_t jean = Count("SELECT id FROM leads");
  Apply({Encode({.message_id = "r2@relay.example",
                 .from = "noreply@relay.example",
                 .subject = "Formulaire",
                 .mailbox = "forms@acme.test",
                 .reply_to = "Jean@Example.org"})});
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 2);
  EXPECT_EQ(Count("SELECT repeat_count FROM leads WHERE id = " + std::to_string(jean)), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM activities WHERE owner_id = " + std::to_string(jean)), 1);

  metrics::Registry trusted_registry;
  InboundCounters trusted_counters(trusted_registry);
  processor_ = MakeProcessor(RuleSettings{.reply_to_trusted_mailboxes = {"forms@acme.test"}},
                             trusted_counters);
  Apply({Encode({.message_id = "r3@relay.example",
                 .from = "noreply2@relay.example",
                 .subject = "Formulaire",
                 .mailbox = "Forms@Acme.test",
                 .reply_to = "Jean@Example.org"})});
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 2);
  EXPECT_EQ(Count("SELECT repeat_count FROM leads WHERE id = " + std::to_string(jean)), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM lead_identities WHERE lead_id = " + std::to_string(jean)),
            1);
  // The same through another mailbox: the From only.
  Apply({Encode({.message_id = "r4@relay.example",
                 .from = "noreply3@relay.example",
                 .mailbox = "sales@acme.test",
                 .reply_to = "jean@example.org"})});
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 3);
  // Nothing known: the new lead holds the From only.
  Apply({Encode({.message_id = "r5@relay.example",
                 .from = "noreply@relay.example",
                 .mailbox = "forms@acme.test",
                 .reply_to = "new@example.com"})});
  EXPECT_EQ(Count("SELECT count(*) FROM lead_identities WHERE value = 'new@example.com'"), 0);
}

// Protects: mail to sales@ and support@ rotates over each route's queue, and simple-mode deals
// go to the route's pipeline; an address without a route uses the channel's queue and the
// inbound pipeline.
TEST_F(EmailRulesTest, RoutesByRecipientAddress) {
  Exec(
      "INSERT INTO assignment_queues (queue_key) VALUES ('mail-sales'), ('mail-support');"
      "INSERT INTO assignment_queue_members VALUES ('mail-sales', " +
      std::to_string(alice_) + ", 1), ('mail-support', " + std::to_string(bob_) +
      ", 1);"
      "INSERT INTO pipelines (id, name, sort) VALUES (2, 'Support', 20);"
      "INSERT INTO pipeline_stages (pipeline_id, id, name, sort, semantics) VALUES "
      "(2, 'OPEN', 'Open', 10, 'PROCESS'), (2, 'SOLVED', 'Solved', 20, 'SUCCESS'), "
      "(2, 'DROPPED', 'Dropped', 30, 'FAILURE');"
      "INSERT INTO email_routes VALUES ('sales@acme.test', NULL, 'mail-sales'), "
      "('support@acme.test', 2, 'mail-support')");
  Apply(
      {Encode({.message_id = "s1@a.example", .from = "a@a.example", .mailbox = "sales@acme.test"}),
       Encode(
           {.message_id = "s2@b.example", .from = "b@b.example", .mailbox = "Support@Acme.test"})});
  EXPECT_EQ(Count("SELECT responsible_user_id FROM leads WHERE source_details->>'message_id' = "
                  "'s1@a.example'"),
            alice_);
  EXPECT_EQ(Count("SELECT responsible_user_id FROM leads WHERE source_details->>'message_id' = "
                  "'s2@b.example'"),
            bob_);
  EXPECT_EQ(Count("SELECT position FROM assignment_queues WHERE queue_key = 'channel:EMAIL'"), 0);
  Apply(
      {Encode({.message_id = "s3@c.example", .from = "c@c.example", .mailbox = "info@acme.test"})});
  EXPECT_EQ(Count("SELECT position FROM assignment_queues WHERE queue_key = 'channel:EMAIL'"), 1);

  Exec("UPDATE crm_settings SET mode = 'SIMPLE'");
  Apply({Encode(
             {.message_id = "s4@d.example", .from = "d@d.example", .mailbox = "support@acme.test"}),
         Encode(
             {.message_id = "s5@e.example", .from = "e@e.example", .mailbox = "sales@acme.test"})});
  EXPECT_EQ(Text("SELECT pipeline_id || '/' || stage_id || '/' || responsible_user_id FROM deals "
                 "WHERE origin_event_id = 'email:s4@d.example'"),
            "2/OPEN/" + std::to_string(bob_));
  EXPECT_EQ(Text("SELECT pipeline_id || '/' || stage_id || '/' || responsible_user_id FROM deals "
                 "WHERE origin_event_id = 'email:s5@e.example'"),
            "1/NEW/" + std::to_string(alice_));
}

// Protects: a thread's record merged along a chain (A into B, B into C) is followed to its end:
// a message left on A (written by a batch that raced the merge) still takes the next reply to C,
// never to a folded lead, with C's responsible.
TEST_F(EmailRulesTest, ReplyFollowsAMergeChainToItsEnd) {
  Apply({Encode({.message_id = "h1@example.org", .from = "jean@example.org"})});
  const int64_t a = Count("SELECT id FROM leads");
  const int64_t b = Lead(alice_);
  const int64_t c = Lead(bob_);
  Exec("UPDATE activities SET completed = true, completed_at = now()");
  // The merges as recorded, the message left on A.
  Exec("INSERT INTO merges (entity_type, folded_id, kept_id) VALUES ('LEAD', " + std::to_string(a) +
       ", " + std::to_string(b) + "), ('LEAD', " + std::to_string(b) + ", " + std::to_string(c) +
       ");" + "UPDATE leads SET merged_into = " + std::to_string(b) + " WHERE id = " +
       std::to_string(a) + "; UPDATE leads SET merged_into = " + std::to_string(c) +
       " WHERE id = " + std::to_string(b));
  Apply({Encode({.message_id = "h2@example.org",
                 .from = "jean@example.org",
                 .subject = "Re: Devis",
                 .in_reply_to = "h1@example.org"})});
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 3);
  EXPECT_EQ(Text("SELECT owner_type || ':' || owner_id || ':' || responsible_user_id FROM "
                 "activities WHERE NOT completed"),
            "LEAD:" + std::to_string(c) + ":" + std::to_string(bob_));
  EXPECT_EQ(MessagesOf({domain::EntityKind::kLead, c}).size(), 1u);
}

// A transaction holding a merge (or conversion) of the thread's lead, committed only once the
// batch is seen waiting, or has finished without waiting.
class EmailThreadOwnerRaceTest : public EmailRulesTest,
                                 public ::testing::WithParamInterface<const char*> {};

// Protects: the thread's record is locked before a reply is filed on it and looked up again under
// the lock: a MergeLeads or ConvertLead of that lead committing between the batch's first lookup
// and its insert cannot leave the reply on the folded or converted lead. The batch waits for it
// and files the reply on the kept lead (merge) or the deal (conversion), joining the activity the
// merge or conversion moved there. Seen to fail without the lock (the reply and its message on
// the folded lead).
TEST_P(EmailThreadOwnerRaceTest, MergeOrConversionMeanwhileMovesTheReply) {
  const std::string what = GetParam();
  Apply({Encode({.message_id = "w1@example.org", .from = "jean@example.org"})});
  const int64_t lead = Count("SELECT id FROM leads");
  const int64_t activity = Count("SELECT id FROM activities");
  const int64_t kept = Lead(alice_);
  const int64_t deal = Count(
      "INSERT INTO deals (title, pipeline_id, stage_id, stage_semantics, responsible_user_id) "
      "VALUES ('Kitchen', 1, 'NEW', 'PROCESS', " +
      std::to_string(bob_) + ") RETURNING id");

  pqxx::connection other(database_.url());
  pg::PrepareAll(other, Statements());
  pqxx::work change(other);
  // The lead's identity locks, as both take them (the reply's sender, a Cc of the thread, is none
  // of them: nothing else makes the batch wait).
  EventRepository(change).LockIdentities({IdentityLockKey({"EMAIL", "jean@example.org"})});
  if (what == std::string("merge")) {
    // As LeadService.MergeLeads does it: the rows locked, then folded.
    MergeRepository merges(change);
    ASSERT_EQ(merges.Lock("LEAD", {lead, kept}).size(), 2u);
    merges.Fold("LEAD", kept, {lead}, alice_);
  } else {
    // As LeadService.ConvertLead does it: the lead locked, marked converted, its activities moved.
    change.exec_prepared("lock_lead_for_conversion", lead);
    change.exec0("UPDATE leads SET status = 'CONVERTED', converted_deal_id = " +
                 std::to_string(deal) + " WHERE id = " + std::to_string(lead));
    change.exec0("UPDATE activities SET owner_type = 'DEAL', owner_id = " + std::to_string(deal) +
                 " WHERE owner_type = 'LEAD' AND owner_id = " + std::to_string(lead));
  }
  const std::string change_pid = std::to_string(other.backendpid());

  auto reply = std::async(std::launch::async, [&] {
    return processor_->Process({Encode({.message_id = "w2@example.org",
                                        .from = "boss@example.org",
                                        .subject = "Re: Devis",
                                        .in_reply_to = "w1@example.org"})});
  });
  // Bounded wait: the batch blocked by the change's transaction, or done without it.
  const bool waited = testing::WaitFor(
      [&] {
        return Count("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND " +
                     change_pid + " = ANY(pg_blocking_pids(pid))") > 0;
      },
      std::chrono::seconds(10));
  const bool finished_first = reply.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
  change.commit();
  ASSERT_TRUE(reply.get().ok());
  EXPECT_TRUE(waited && !finished_first) << "the batch did not wait for the " << what;

  const std::string owner = what == std::string("merge") ? "LEAD:" + std::to_string(kept)
                                                         : "DEAL:" + std::to_string(deal);
  EXPECT_EQ(Text("SELECT owner_type || ':' || owner_id || ':' || activity_id FROM email_messages "
                 "WHERE message_id = 'w2@example.org'"),
            owner + ":" + std::to_string(activity));
  EXPECT_EQ(Text("SELECT owner_type || ':' || owner_id FROM activities"), owner);
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 2);
}

INSTANTIATE_TEST_SUITE_P(Changes, EmailThreadOwnerRaceTest, ::testing::Values("merge", "convert"));

// Protects: one open reply activity per thread with two consumers at once: two replies naming
// different messages of one thread (whose activity was completed), from two senders of the
// thread, through two processors at the same moment — held back together by a transaction that
// has the thread's lead locked (as a merge or conversion would), then released at once — open
// one activity, and the second reply joins it. Seen to fail without the thread lock (both open
// one).
TEST_F(EmailRulesTest, TwoConsumersOneOpenReplyActivityPerThread) {
  Apply({Encode(
      {.message_id = "p1@example.org", .from = "paul@example.org", .cc = "q@example.com"})});
  Apply({Encode({.message_id = "p2@example.org",
                 .from = "paul@example.org",
                 .cc = "q@example.com",
                 .in_reply_to = "p1@example.org"})});
  const int64_t lead = Count("SELECT id FROM leads");
  ASSERT_EQ(Count("SELECT count(*) FROM activities"), 1);
  Exec("UPDATE activities SET completed = true, completed_at = now()");

  pqxx::connection holder_connection(database_.url());
  pqxx::work holder(holder_connection);
  holder.exec1("SELECT id FROM leads WHERE id = " + std::to_string(lead) + " FOR UPDATE");
  metrics::Registry other_registry;
  InboundCounters other_counters(other_registry);
  auto other = MakeProcessor(RuleSettings{}, other_counters);
  auto by_customer = std::async(std::launch::async, [&] {
    return processor_->Process({Encode({.message_id = "p3@example.org",
                                        .from = "paul@example.org",
                                        .in_reply_to = "p1@example.org"})});
  });
  auto by_colleague = std::async(std::launch::async, [&] {
    return other->Process({Encode({.message_id = "q4@example.com",
                                   .from = "q@example.com",
                                   .in_reply_to = "p2@example.org"})});
  });
  // Bounded wait: both batches waiting on a lock (the lead's, or the first batch's thread lock).
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        return Count("SELECT count(*) FROM pg_stat_activity WHERE datname = '" + database_.name() +
                     "' AND wait_event_type = 'Lock'") >= 2;
      },
      std::chrono::seconds(10)));
  holder.commit();
  EXPECT_TRUE(by_customer.get().ok());
  EXPECT_TRUE(by_colleague.get().ok());

  EXPECT_EQ(Count("SELECT count(*) FROM activities WHERE NOT completed"), 1);
  EXPECT_EQ(Count("SELECT count(DISTINCT activity_id) FROM email_messages WHERE message_id IN "
                  "('p3@example.org', 'q4@example.com')"),
            1);
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 1);
}

// Protects: the caps on kept contents: past the messages a thread or a record keeps with their
// content, a message still has its effect (it joins the thread's open activity) and is kept with
// its headers for threading and duplicates, but without its text, recipients, references and
// attachments; counted.
TEST_F(EmailRulesTest, CapsKeepHeadersOnlyPastThem) {
  processor_ = MakeProcessor(
      RuleSettings{.max_messages_per_thread = 2, .max_messages_per_record = 3}, counters_);
  Apply({Encode({.message_id = "cap1@example.org", .from = "jean@example.org"}),
         Encode({.message_id = "cap2@example.org",
                 .from = "jean@example.org",
                 .in_reply_to = "cap1@example.org"})});
  Apply({Encode({.message_id = "cap3@example.org",
                 .from = "jean@example.org",
                 .body = "third",
                 .in_reply_to = "cap2@example.org",
                 .references = {"cap1@example.org", "cap2@example.org"}})});
  const int64_t lead = Count("SELECT id FROM leads");
  std::vector<EmailMessageRecord> kept = MessagesOf({domain::EntityKind::kLead, lead});
  ASSERT_EQ(kept.size(), 3u);
  EXPECT_TRUE(kept[1].content_kept);
  EXPECT_FALSE(kept[2].content_kept);
  EXPECT_EQ(kept[2].message_id, "cap3@example.org");
  EXPECT_EQ(kept[2].subject, "Devis");
  EXPECT_EQ(kept[2].body, "");
  EXPECT_TRUE(kept[2].to_addresses.empty());
  EXPECT_TRUE(kept[2].attachments.empty());
  EXPECT_EQ(kept[2].activity_id, kept[0].activity_id);
  EXPECT_EQ(Count("SELECT count(*) FROM activities"), 1);
  // The same Message-ID again: still one effect.
  Apply({Encode({.message_id = "cap3@example.org", .from = "jean@example.org", .event_id = "x"})});
  EXPECT_EQ(Count("SELECT count(*) FROM email_messages"), 3);
  // A new thread of the same person on the same lead: under the thread cap, past the record's.
  Apply({Encode({.message_id = "cap4@example.org", .from = "jean@example.org", .body = "new"})});
  kept = MessagesOf({domain::EntityKind::kLead, lead});
  ASSERT_EQ(kept.size(), 4u);
  EXPECT_EQ(kept[3].thread_key, "cap4@example.org");
  EXPECT_FALSE(kept[3].content_kept);
  EXPECT_EQ(counters_.email.contents_omitted.Value(), 2);
}

// Protects: a sender without a display name: the title template's {name} is the sender's
// address ("jean@example.org – Devis", as Bitrix24 titles it), not the subject alone, and the
// address is the first name: a lead keeps no made-up last name, a contact (simple mode) gets the
// placeholder last name. Seen to fail without the rule (title "Devis", names empty, the contact
// named by the placeholder alone).
TEST_F(EmailRulesTest, SenderWithoutNameTitledAndNamedByAddress) {
  Apply({Encode({.message_id = "n1@example.org", .from = "jean@example.org", .name = ""})});
  EXPECT_EQ(Text("SELECT title FROM leads"), "jean@example.org – Devis");
  EXPECT_EQ(Text("SELECT first_name || '/' || last_name FROM leads"), "jean@example.org/");
  // A named sender is unchanged.
  Apply({Encode({.message_id = "n2@example.net", .from = "anna@example.net", .name = "Anna Roy"})});
  EXPECT_EQ(Text("SELECT title FROM leads WHERE first_name = 'Anna'"), "Anna Roy – Devis");

  Exec("UPDATE crm_settings SET mode = 'SIMPLE', last_name_placeholder = 'Inconnu'");
  Apply({Encode({.message_id = "n3@example.com", .from = "paul@example.com", .name = ""})});
  EXPECT_EQ(Text("SELECT first_name || '/' || last_name FROM contacts"),
            "paul@example.com/Inconnu");
  EXPECT_EQ(Text("SELECT title FROM deals"), "paul@example.com – Devis");
}

// Protects: the relay sender of a form builder's mail (relay_address) is kept with the message
// and on the lead's source details, and is nobody's identity: given as an identity as well (an
// older or hostile producer) it is not added to the lead, and it matches no record — not a lead
// that holds it from before relay senders were configured, nor the lead of another person whose
// form came through the same relay. An email whose only identity is its relay is refused
// (dead-lettered), nothing made. Seen to fail without the rule (the relay on the lead, the
// second person's form filed on the first lead).
TEST_F(EmailRulesTest, RelayAddressKeptNeverAnIdentity) {
  // A lead of the relay's own address, made before EMAIL_RELAY_SENDERS listed it.
  Apply({Encode({.message_id = "old@crm.wix.com", .from = "no-reply@crm.wix.com", .name = ""})});
  const int64_t old_lead = Count("SELECT id FROM leads");

  Apply({Encode({.message_id = "f1@crm.wix.com",
                 .from = "marc@client.example",
                 .name = "Marc Petit",
                 .subject = "Nouvelle soumission",
                 .reply_to = "marc@client.example",
                 .relay = "No-Reply@crm.wix.com",
                 .relay_as_identity = true})});
  ASSERT_EQ(Count("SELECT count(*) FROM leads"), 2);
  const int64_t marc = Count("SELECT id FROM leads WHERE id <> " + std::to_string(old_lead));
  EXPECT_EQ(Count("SELECT count(*) FROM lead_identities WHERE lead_id = " + std::to_string(marc)),
            1);
  EXPECT_EQ(Text("SELECT value FROM lead_identities WHERE lead_id = " + std::to_string(marc)),
            "marc@client.example");
  EXPECT_EQ(Text("SELECT source_details->>'relay' FROM leads WHERE id = " + std::to_string(marc)),
            "no-reply@crm.wix.com");
  std::vector<EmailMessageRecord> kept = MessagesOf({domain::EntityKind::kLead, marc});
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0].relay_address, "No-Reply@crm.wix.com");
  EXPECT_EQ(kept[0].from_address, "marc@client.example");
  EXPECT_EQ(Count("SELECT repeat_count FROM leads WHERE id = " + std::to_string(old_lead)), 0);

  // Another person's form through the same relay: a lead of their own.
  Apply({Encode({.message_id = "f2@crm.wix.com",
                 .from = "lea@other.example",
                 .name = "Léa Roy",
                 .reply_to = "lea@other.example",
                 .relay = "no-reply@crm.wix.com",
                 .relay_as_identity = true})});
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 3);
  EXPECT_EQ(Count("SELECT count(*) FROM lead_identities WHERE value = 'no-reply@crm.wix.com'"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM email_messages WHERE owner_id = " + std::to_string(marc)),
            1);

  // Only the relay: refused, nothing made.
  const double dead_before = counters_.dead_lettered.Value();
  Apply({Encode({.message_id = "f3@crm.wix.com",
                 .from = "no-reply@crm.wix.com",
                 .name = "",
                 .relay = "no-reply@crm.wix.com"})});
  EXPECT_EQ(counters_.dead_lettered.Value(), dead_before + 1);
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 3);
  EXPECT_EQ(Count("SELECT count(*) FROM email_messages"), 3);
  EXPECT_EQ(Count("SELECT repeat_count FROM leads WHERE id = " + std::to_string(old_lead)), 0);
}

// Protects: the caps on kept contents are exact with two consumers at once: two replies in two
// threads of one lead, through two processors, both past their threads' locks and the lead's
// KEY SHARE lock together, held back before their inserts by a transaction holding the threads'
// activities (as nothing in the batch does) — the record's count is taken under its own lock, so
// with one content left under the cap, one reply is kept whole and the other with its headers
// only. Seen to fail without the record's lock (both kept whole: one past the cap).
TEST_F(EmailRulesTest, CapsExactWithTwoConsumers) {
  processor_ = MakeProcessor(RuleSettings{.max_messages_per_record = 3}, counters_);
  Apply(
      {Encode({.message_id = "ea1@example.org", .from = "jean@example.org", .cc = "a@a.example"})});
  Apply(
      {Encode({.message_id = "eb1@example.org", .from = "jean@example.org", .cc = "b@b.example"})});
  ASSERT_EQ(Count("SELECT count(*) FROM leads"), 1);
  const int64_t lead = Count("SELECT id FROM leads");
  ASSERT_EQ(Count("SELECT count(*) FROM email_messages WHERE content_kept"), 2);

  pqxx::connection holder_connection(database_.url());
  pqxx::work holder(holder_connection);
  holder.exec("SELECT id FROM activities ORDER BY id FOR UPDATE");
  metrics::Registry other_registry;
  InboundCounters other_counters(other_registry);
  auto other = MakeProcessor(RuleSettings{.max_messages_per_record = 3}, other_counters);
  auto in_a = std::async(std::launch::async, [&] {
    return processor_->Process({Encode({.message_id = "ea2@a.example",
                                        .from = "a@a.example",
                                        .cc = "jean@example.org",
                                        .in_reply_to = "ea1@example.org"})});
  });
  auto in_b = std::async(std::launch::async, [&] {
    return other->Process({Encode({.message_id = "eb2@b.example",
                                   .from = "b@b.example",
                                   .cc = "jean@example.org",
                                   .in_reply_to = "eb1@example.org"})});
  });
  // Bounded wait: both batches waiting on a lock (the activities' rows, or the record's count).
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        return Count("SELECT count(*) FROM pg_stat_activity WHERE datname = '" + database_.name() +
                     "' AND wait_event_type = 'Lock'") >= 2;
      },
      std::chrono::seconds(10)));
  holder.commit();
  EXPECT_TRUE(in_a.get().ok());
  EXPECT_TRUE(in_b.get().ok());

  EXPECT_EQ(
      counters_.email.replies_threaded.Value() + other_counters.email.replies_threaded.Value(), 2);
  EXPECT_EQ(Count("SELECT count(*) FROM email_messages WHERE owner_id = " + std::to_string(lead)),
            4);
  EXPECT_EQ(Count("SELECT count(*) FROM email_messages WHERE content_kept"), 3);
  EXPECT_EQ(
      counters_.email.contents_omitted.Value() + other_counters.email.contents_omitted.Value(), 1);
}

}  // namespace
}  // namespace leadflow::crm
