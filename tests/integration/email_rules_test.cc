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
  // What email-ingest's caps left out (EmailMessage.to_addresses_omitted, truncated_headers), and
  // To addresses after the mailbox.
  uint32_t to_omitted = 0;
  std::vector<std::string> truncated_headers;
  std::vector<std::string> more_to;
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
  for (const std::string& to : mail.more_to) email->add_to_addresses(to);
  email->set_to_addresses_omitted(mail.to_omitted);
  for (const std::string& name : mail.truncated_headers) email->add_truncated_headers(name);
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
  // boss@ (Cc'd on t1, Mail's default) and colleague@ (Cc'd on u1) are participants: neither
  // reply is counted as admitted by the colleague-domain rule.
  EXPECT_EQ(counters_.email.replies_by_colleague_domain.Value(), 0);
}

// Protects: a conversation stays one record when a reply is applied before the message it
// answers (trial E1: a backlog, a sender retrying after a 451, a mailbox polled with its
// history): Ana's first mail (Cc Bruno) arriving after Bruno's reply naming it joins the thread
// Bruno's reply started — one lead, one open reply activity, both messages in one thread — in a
// later batch or later in the same batch; and an outsider whose Message-ID a kept reply happens
// to name does not join.
TEST_F(EmailRulesTest, MessageAppliedAfterItsReplyJoinsTheReplysThread) {
  const Mail ana{.message_id = "ana-1@lagco.example",
                 .from = "ana@lagco.example",
                 .name = "Ana Silva",
                 .cc = "bruno@lagco.example",
                 .subject = "Offre"};
  const Mail bruno{.message_id = "bruno-1@lagco.example",
                   .from = "bruno@lagco.example",
                   .name = "Bruno Costa",
                   .cc = "ana@lagco.example",
                   .subject = "Re: Offre",
                   .in_reply_to = "ana-1@lagco.example",
                   .references = {"ana-1@lagco.example"}};
  Apply({Encode(bruno)});
  Apply({Encode(ana)});
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM activities"), 1);
  EXPECT_EQ(Count("SELECT count(DISTINCT thread_key) FROM email_messages"), 1);
  EXPECT_EQ(Count("SELECT count(DISTINCT activity_id) FROM email_messages"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM email_messages"), 2);
  EXPECT_EQ(Count("SELECT count(*) FROM lead_identities WHERE value = 'ana@lagco.example'"), 0);

  // One batch, the reply first (as a consumer may read two partitions).
  Mail ana2 = ana, bruno2 = bruno;
  for (Mail* mail : {&ana2, &bruno2}) {
    for (std::string* text : {&mail->message_id, &mail->from, &mail->cc, &mail->in_reply_to}) {
      if (const size_t at = text->find("lagco"); at != std::string::npos) {
        text->replace(at, 5, "batchco");
      }
    }
  }
  bruno2.references = {ana2.message_id};
  Apply({Encode(bruno2), Encode(ana2)});
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 2);
  EXPECT_EQ(Count("SELECT count(*) FROM activities"), 2);
  EXPECT_EQ(Count("SELECT count(DISTINCT activity_id) FROM email_messages WHERE from_address "
                  "LIKE '%batchco%'"),
            1);

  // Someone who had no part in the reply's thread sending a message with the id it names is a
  // contact attempt of their own.
  Apply({Encode({.message_id = "ghost-1@nowhere.example",
                 .from = "carl@elsewhere.example",
                 .name = "Carl Obs",
                 .cc = "nobody@elsewhere.example",
                 .in_reply_to = "ghost-0@nowhere.example"})});
  Apply({Encode({.message_id = "ghost-0@nowhere.example",
                 .from = "mallory@attacker.example",
                 .name = "Mal Lory",
                 .cc = "x@attacker.example"})});
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 4);
  EXPECT_EQ(Count("SELECT count(*) FROM lead_identities WHERE value = 'mallory@attacker.example'"),
            1);
}

// Protects: one open reply activity per correspondent when the thread is unknown (trial E6): a
// customer's answer to mail our salesperson sent from their own mail program (In-Reply-To names
// a message never kept, no References) joins the reply activity already open for that customer
// instead of stacking a second one; once that activity is completed, such an answer opens a new
// one; a fresh message (naming nothing) is a new request as before.
TEST_F(EmailRulesTest, ReplyToUnknownMailJoinsTheSendersOpenReplyActivity) {
  Apply({Encode({.message_id = "claire-1@acme-btp.fr",
                 .from = "claire.martin@acme-btp.fr",
                 .name = "Claire Martin",
                 .subject = "Demande de devis chantier Lyon"})});
  ASSERT_EQ(Count("SELECT count(*) FROM activities WHERE NOT completed"), 1);
  const int64_t open = Count("SELECT id FROM activities");
  Apply({Encode({.message_id = "claire-2@acme-btp.fr",
                 .from = "claire.martin@acme-btp.fr",
                 .name = "Claire Martin",
                 .subject = "RE: Demande de devis chantier Lyon",
                 .in_reply_to = "our-rep-answer-1@leads.localhost"})});
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM activities"), 1);
  EXPECT_EQ(
      Count("SELECT count(*) FROM email_messages WHERE activity_id = " + std::to_string(open)), 2);

  Exec("UPDATE activities SET completed = true, completed_at = now()");
  Apply({Encode({.message_id = "claire-3@acme-btp.fr",
                 .from = "claire.martin@acme-btp.fr",
                 .name = "Claire Martin",
                 .subject = "RE: Demande de devis chantier Lyon",
                 .in_reply_to = "our-rep-answer-2@leads.localhost"})});
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM activities WHERE NOT completed"), 1);
  // Another correspondent's answer to unknown mail is theirs.
  Apply({Encode({.message_id = "other-1@example.net",
                 .from = "other@example.net",
                 .name = "Otto Other",
                 .in_reply_to = "our-rep-answer-1@leads.localhost"})});
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 2);
  EXPECT_EQ(Count("SELECT count(*) FROM activities WHERE NOT completed"), 2);
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

// Protects: the thread rules over EMAIL activities changed through ActivityService (the real API
// server over its own database, the consumer's batch processor beside it): an activity completed
// then reopened by UpdateActivity takes its thread's next reply (no second activity); once it is
// deleted, the thread's messages stay on the lead with no activity and the next reply opens a new
// open one, with the reply on it.
TEST_F(EmailRulesTest, ReopenedOrDeletedReplyActivityOverTheApi) {
  constexpr char kKey[] = "test-admin-key-0123456789";
  testing::CrmApi api(testing::CrmApiOptions{.keys = {{kKey, Role::kAdmin}}});
  BatchProcessor processor(BatchProcessorOptions{}, api.database_url(), nullptr, *producer_,
                           counters_);
  auto apply = [&](const Mail& mail) { ASSERT_TRUE(processor.Process({Encode(mail)}).ok()); };
  auto stub = api.Stub<v1::ActivityService>();
  auto set_completed = [&](int64_t id, bool completed) {
    v1::UpdateActivityRequest request;
    request.mutable_activity()->set_id(id);
    request.mutable_activity()->set_completed(completed);
    request.mutable_update_mask()->add_paths("completed");
    v1::Activity response;
    return stub->UpdateActivity(testing::CallContext(kKey, std::chrono::seconds(20)).get(), request,
                                &response);
  };
  apply({.message_id = "o1@example.org", .from = "jean@example.org"});
  const int64_t first = api.Scalar("SELECT id FROM activities WHERE type = 'EMAIL'");
  ASSERT_NE(first, 0);
  ASSERT_TRUE(set_completed(first, true).ok());
  ASSERT_TRUE(set_completed(first, false).ok());
  apply({.message_id = "o2@example.org",
         .from = "jean@example.org",
         .subject = "Re: Devis",
         .in_reply_to = "o1@example.org"});
  EXPECT_EQ(api.Scalar("SELECT count(*) FROM activities"), 1);
  EXPECT_EQ(api.Scalar("SELECT count(*) FROM email_messages WHERE activity_id = " +
                       std::to_string(first)),
            2);

  v1::DeleteActivityRequest remove;
  remove.set_id(first);
  google::protobuf::Empty empty;
  ASSERT_TRUE(stub->DeleteActivity(testing::CallContext(kKey, std::chrono::seconds(20)).get(),
                                   remove, &empty)
                  .ok());
  EXPECT_EQ(api.Scalar("SELECT count(*) FROM email_messages WHERE activity_id IS NULL"), 2);
  apply({.message_id = "o3@example.org",
         .from = "jean@example.org",
         .subject = "Re: Re: Devis",
         .in_reply_to = "o2@example.org"});
  const int64_t second = api.Scalar(
      "SELECT coalesce(max(id), 0) FROM activities WHERE type = 'EMAIL' AND NOT "
      "completed AND owner_type = 'LEAD'");
  EXPECT_NE(second, 0);
  EXPECT_NE(second, first);
  EXPECT_EQ(api.Scalar("SELECT count(*) FROM activities"), 1);
  EXPECT_EQ(api.Scalar("SELECT activity_id FROM email_messages WHERE message_id = "
                       "'o3@example.org'"),
            second);
  EXPECT_EQ(api.Scalar("SELECT count(*) FROM leads"), 1);
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

// Protects: the issue's threading rule for a colleague (new-user pass E12): a reply in the thread
// from an address that never took part in it, at the domain of the thread's sender, goes to the
// thread's lead and joins its open reply activity — no lead of her own, her address added to
// nobody, kept as the message's from — in a later batch or later in the same batch.
TEST_F(EmailRulesTest, ColleagueAtTheCustomersDomainJoinsTheThread) {
  Apply({Encode({.message_id = "devis-1@acme-btp.fr",
                 .from = "jean.dupont@acme-btp.fr",
                 .cc = "achats@acme-btp.fr",
                 .subject = "Demande de devis chantier Lyon"})});
  ASSERT_EQ(Count("SELECT count(*) FROM leads"), 1);
  const int64_t lead = Count("SELECT id FROM leads");
  const int64_t activity = Count("SELECT id FROM activities");
  Apply({Encode({.message_id = "sophie-1@acme-btp.fr",
                 .from = "Sophie.Durand@Acme-BTP.fr",
                 .name = "Sophie Durand",
                 .cc = "jean.dupont@acme-btp.fr",
                 .subject = "Re: Demande de devis chantier Lyon",
                 .body = "Je reprends le dossier de Jean.",
                 .in_reply_to = "devis-1@acme-btp.fr",
                 .references = {"devis-1@acme-btp.fr"}})});
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM activities"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM activities WHERE NOT completed AND id = " +
                  std::to_string(activity)),
            1);
  EXPECT_EQ(Count("SELECT count(*) FROM lead_identities WHERE value LIKE 'sophie%'"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM contact_identities WHERE value LIKE 'sophie%'"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM leads WHERE title LIKE '%Sophie%'"), 0);
  std::vector<EmailMessageRecord> kept = MessagesOf({}, activity);
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_EQ(kept[1].from_address, "Sophie.Durand@Acme-BTP.fr");
  EXPECT_EQ(kept[1].from_name, "Sophie Durand");
  EXPECT_EQ(kept[1].body, "Je reprends le dossier de Jean.");
  EXPECT_EQ(kept[1].owner.id, lead);
  EXPECT_EQ(counters_.email.replies_threaded.Value(), 1);
  EXPECT_EQ(counters_.email.replies_refused.Value(), 0);
  // Told apart from replies of participants (M16): this one only the domain admitted.
  EXPECT_EQ(counters_.email.replies_by_colleague_domain.Value(), 1);

  // The same within one batch: the first mail and the colleague's reply.
  Apply({Encode({.message_id = "q-1@fabrikam.example",
                 .from = "anna@fabrikam.example",
                 .name = "Anna Berg",
                 .cc = "sales@acme.test"}),
         Encode({.message_id = "q-2@fabrikam.example",
                 .from = "lars@fabrikam.example",
                 .name = "Lars Berg",
                 .cc = "sales@acme.test",
                 .in_reply_to = "q-1@fabrikam.example"})});
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 2);
  EXPECT_EQ(Count("SELECT count(*) FROM activities"), 2);
  EXPECT_EQ(Count("SELECT count(DISTINCT activity_id) FROM email_messages WHERE from_address LIKE "
                  "'%@fabrikam.example'"),
            1);
  EXPECT_EQ(counters_.email.replies_threaded.Value(), 2);
  EXPECT_EQ(counters_.email.replies_by_colleague_domain.Value(), 2);
  // A participant's reply (Jean, the thread's sender) is threaded without the domain rule.
  Apply({Encode({.message_id = "devis-2@acme-btp.fr",
                 .from = "jean.dupont@acme-btp.fr",
                 .subject = "Re: Demande de devis chantier Lyon",
                 .in_reply_to = "sophie-1@acme-btp.fr"})});
  EXPECT_EQ(counters_.email.replies_threaded.Value(), 3);
  EXPECT_EQ(counters_.email.replies_by_colleague_domain.Value(), 2);
}

// Protects: a shared domain is no colleagueship where it says nothing: a stranger at a public
// mail provider quoting a customer's Message-ID gets a lead of their own — whether the customer
// writes from their company's domain or from the same provider (gmail.com, a gmx.* domain) —
// in a later batch or in the same one; CRM_EMAIL_PUBLIC_DOMAINS replaces the list.
TEST_F(EmailRulesTest, StrangerAtAPublicMailDomainGetsTheirOwnLead) {
  Apply({Encode({.message_id = "c-1@acme-btp.fr", .from = "jean.dupont@acme-btp.fr"}),
         Encode({.message_id = "g-1@mail.gmail.com",
                 .from = "claire.petit@gmail.com",
                 .name = "Claire Petit",
                 .cc = "sales@acme.test"}),
         Encode({.message_id = "x-1@gmx.net",
                 .from = "hans@gmx.de",
                 .name = "Hans Meier",
                 .cc = "sales@acme.test"})});
  ASSERT_EQ(Count("SELECT count(*) FROM leads"), 3);
  Apply({Encode({.message_id = "m-1@mail.gmail.com",
                 .from = "mallory@gmail.com",
                 .name = "Mal Lory",
                 .cc = "sales@acme.test",
                 .in_reply_to = "c-1@acme-btp.fr"}),
         Encode({.message_id = "m-2@mail.gmail.com",
                 .from = "eve@gmail.com",
                 .name = "Eve Ning",
                 .cc = "sales@acme.test",
                 .in_reply_to = "g-1@mail.gmail.com"}),
         Encode({.message_id = "m-3@gmx.net",
                 .from = "fritz@GMX.de",
                 .name = "Fritz Rau",
                 .cc = "sales@acme.test",
                 .references = {"x-1@gmx.net"}})});
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 6);
  EXPECT_EQ(Count("SELECT count(*) FROM activities"), 6);
  EXPECT_EQ(Count("SELECT count(*) FROM email_messages WHERE thread_key IN ('c-1@acme-btp.fr', "
                  "'g-1@mail.gmail.com', 'x-1@gmx.net')"),
            3);
  EXPECT_EQ(counters_.email.replies_refused.Value(), 3);
  EXPECT_EQ(counters_.email.replies_threaded.Value(), 0);

  // The first mail and the stranger's reply in one batch.
  Apply({Encode({.message_id = "b-1@mail.gmail.com",
                 .from = "bea@gmail.com",
                 .name = "Bea Blanc",
                 .cc = "sales@acme.test"}),
         Encode({.message_id = "b-2@mail.gmail.com",
                 .from = "oscar@gmail.com",
                 .name = "Oscar Noir",
                 .cc = "sales@acme.test",
                 .in_reply_to = "b-1@mail.gmail.com"})});
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 8);
  EXPECT_EQ(counters_.email.replies_refused.Value(), 4);

  // With a list of its own that leaves gmail.com out, a shared gmail.com domain joins.
  RuleSettings rules;
  rules.public_mail_domains = {"gmx.*"};
  InboundCounters counters{registry_};
  processor_ = MakeProcessor(rules, counters);
  Apply({Encode({.message_id = "m-4@mail.gmail.com",
                 .from = "zoe@gmail.com",
                 .name = "Zoe Zed",
                 .cc = "sales@acme.test",
                 .in_reply_to = "g-1@mail.gmail.com"})});
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 8);
  EXPECT_EQ(Count("SELECT count(*) FROM email_messages WHERE thread_key = 'g-1@mail.gmail.com'"),
            2);
}

// Protects: our own domains are never a colleague's: a sender at the domain of the address of
// ours the mail came in through, at the domain of an address of ours the thread's mail came in
// through or of an email route, or at a domain of CRM_EMAIL_OWN_DOMAINS, does not join a thread
// whose sender wrote from that domain (a forward by our staff) by the domain alone.
TEST_F(EmailRulesTest, OwnDomainsAreNoColleagues) {
  RuleSettings rules;
  rules.own_mail_domains = {"staff.example"};
  InboundCounters counters{registry_};
  processor_ = MakeProcessor(rules, counters);
  Apply({Encode({.message_id = "f-1@acme.test",
                 .from = "rep@acme.test",
                 .name = "Rita Rep",
                 .cc = "sales@acme.test"}),
         Encode({.message_id = "f-2@staff.example",
                 .from = "rep@staff.example",
                 .name = "Sam Rep",
                 .cc = "sales@acme.test"}),
         Encode({.message_id = "f-3@routes.example",
                 .from = "rep@routes.example",
                 .name = "Ron Rep",
                 .cc = "sales@acme.test"})});
  Exec("INSERT INTO email_routes (address) VALUES ('info@routes.example')");
  ASSERT_EQ(Count("SELECT count(*) FROM leads"), 3);
  Apply({Encode({.message_id = "o-1@acme.test",
                 .from = "otto@acme.test",
                 .name = "Otto Other",
                 .cc = "sales@acme.test",
                 .in_reply_to = "f-1@acme.test",
                 .mailbox = "sales@inbound.example"}),
         Encode({.message_id = "o-2@acme.test",
                 .from = "oriane@acme.test",
                 .name = "Oriane Other",
                 .cc = "sales@acme.test",
                 .in_reply_to = "f-1@acme.test"}),
         Encode({.message_id = "o-3@staff.example",
                 .from = "other@staff.example",
                 .name = "Olga Other",
                 .cc = "sales@acme.test",
                 .in_reply_to = "f-2@staff.example"}),
         Encode({.message_id = "o-4@routes.example",
                 .from = "other@routes.example",
                 .name = "Oleg Other",
                 .cc = "sales@acme.test",
                 .in_reply_to = "f-3@routes.example"})});
  EXPECT_EQ(Count("SELECT count(*) FROM leads"), 7);
  EXPECT_EQ(counters.email.replies_refused.Value(), 4);
  EXPECT_EQ(counters.email.replies_threaded.Value(), 0);
}

// Protects: a sender the thread's record knows joins it though new to the thread: a contact
// linked to the company of the thread's deal (an address at a public provider: no domain rule
// helps), and on a company's thread a contact linked to that company; someone else at that
// provider does not.
TEST_F(EmailRulesTest, AddressKnownToTheRecordJoinsTheThread) {
  Exec("UPDATE crm_settings SET mode = 'SIMPLE', last_name_placeholder = 'Inconnu'");
  Apply({Encode({.message_id = "k-1@contoso.example", .from = "marie@contoso.example"})});
  ASSERT_EQ(Count("SELECT count(*) FROM deals"), 1);
  const std::string deal = std::to_string(Count("SELECT id FROM deals"));
  const std::string company = std::to_string(
      Count("INSERT INTO companies (name, search_name) VALUES ('Contoso', 'contoso') RETURNING "
            "id"));
  Exec("UPDATE deals SET company_id = " + company);
  const std::string paul = std::to_string(
      Count("INSERT INTO contacts (first_name, last_name, search_first_last, search_last_first) "
            "VALUES ('Paul', 'Roux', 'paul roux', 'roux paul') RETURNING id"));
  Exec("INSERT INTO contact_companies (contact_id, company_id) VALUES (" + paul + ", " + company +
       ")");
  Exec(
      "INSERT INTO contact_identities (kind, value, contact_id) VALUES ('EMAIL', "
      "'paul.roux@gmail.com', " +
      paul + ")");
  const int64_t contacts = Count("SELECT count(*) FROM contacts");
  Apply({Encode({.message_id = "k-2@mail.gmail.com",
                 .from = "paul.roux@gmail.com",
                 .name = "Paul Roux",
                 .cc = "sales@acme.test",
                 .in_reply_to = "k-1@contoso.example"}),
         Encode({.message_id = "k-3@mail.gmail.com",
                 .from = "pierre@gmail.com",
                 .name = "Pierre Blanc",
                 .cc = "sales@acme.test",
                 .in_reply_to = "k-1@contoso.example"})});
  EXPECT_EQ(Count("SELECT count(*) FROM email_messages WHERE thread_key = 'k-1@contoso.example'"),
            2);
  EXPECT_EQ(
      Count("SELECT count(*) FROM email_messages WHERE owner_type = 'DEAL' AND owner_id = " + deal),
      2);
  EXPECT_EQ(Count("SELECT count(*) FROM contacts"), contacts + 1);  // Pierre's

  // A company's thread: the company's contact joins it.
  Exec(
      "INSERT INTO email_messages (thread_key, message_id, event_id, owner_type, owner_id, "
      "from_address, mailbox) VALUES ('co-1@contoso.example', 'co-1@contoso.example', "
      "'email:co-1', 'COMPANY', " +
      company + ", 'info@contoso.example', 'sales@acme.test')");
  Apply({Encode({.message_id = "co-2@mail.gmail.com",
                 .from = "paul.roux@gmail.com",
                 .name = "Paul Roux",
                 .cc = "sales@acme.test",
                 .in_reply_to = "co-1@contoso.example"})});
  EXPECT_EQ(Count("SELECT count(*) FROM email_messages WHERE owner_type = 'COMPANY' AND "
                  "owner_id = " +
                  company),
            2);
  EXPECT_EQ(Count("SELECT count(*) FROM contacts"), contacts + 1);
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

// Protects: what the caps left out is kept with the message (M14): email-ingest's count of To
// addresses past its cap, plus those crm-core's own cap drops (a producer sending more than 100),
// and the names of the header fields email-ingest cut — read back as stored, so that a cut list
// is never taken for the whole.
TEST_F(EmailRulesTest, KeptMessageSaysWhatWasCut) {
  std::vector<std::string> more;
  for (int i = 0; i < 119; ++i) more.push_back("r" + std::to_string(i) + "@b.example");
  Apply({Encode({.message_id = "cut-1@example.org",
                 .from = "jean@example.org",
                 .to_omitted = 81,
                 .truncated_headers = {"X-Campaign", "Subject"},
                 .more_to = more})});
  std::vector<EmailMessageRecord> kept = MessagesOf({}, Count("SELECT id FROM activities"));
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0].to_addresses.size(), 100u);
  EXPECT_EQ(kept[0].to_addresses_omitted, 81 + 20);  // 120 given, 100 kept, 81 cut before
  EXPECT_EQ(kept[0].cc_addresses_omitted, 0);
  EXPECT_EQ(kept[0].truncated_headers, (std::vector<std::string>{"X-Campaign", "Subject"}));
  // A whole message says nothing was cut.
  Apply({Encode({.message_id = "cut-2@example.net", .from = "anna@example.net"})});
  kept = MessagesOf({}, Count("SELECT max(id) FROM activities"));
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0].to_addresses_omitted, 0);
  EXPECT_TRUE(kept[0].truncated_headers.empty());
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
