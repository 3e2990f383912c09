#include "crm-core/inbound/email_thread.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "crm-core/domain/common/text.h"
#include "crm-core/inbound/channels/channels.h"
#include "crm-core/store/inbound_repository.h"
#include "crm-core/store/repositories.h"
#include "identity/identity.h"
#include "pg/pg.h"

namespace leadflow::crm {
namespace {

// The sender as kept in email_messages.from_address (lower case for the comparison): a message's
// sender is what tells the same message delivered twice from another one reusing its Message-ID.
std::string StoredSender(const events::v1::EmailMessage& email) {
  if (email.from_address().size() > domain::kMaxAddressBytes) {
    return "";
  }
  return domain::AsciiLower(pg::StripNul(email.from_address()));  // as Record() keeps it
}

using domain::EntityKind;
using domain::EntityRef;
using events::v1::EmailMessage;
using events::v1::InboundEvent;

// Advisory lock key of a Message-ID: taken for a message's own id and the ids it names, so a reply
// and the message it answers, or two replies of one thread, are decided one after the other.
std::string MessageLockKey(const std::string& message_id) { return "EMAIL_MESSAGE:" + message_id; }
// Advisory lock key of a thread (its key: the first kept message's Message-ID).
std::string ThreadLockKey(const std::string& thread_key) { return "EMAIL_THREAD:" + thread_key; }
// Advisory lock key of a record's count of kept contents: held from the count to the commit, so
// two batches filing mail on one record count one after the other.
std::string KeptOnRecordLockKey(const EntityRef& owner) {
  return absl::StrCat("EMAIL_KEPT:", std::string(domain::ToString(owner.kind)), ":", owner.id);
}

// Whoever took part in a message: its From, Reply-To, To and Cc, lower case — never its relay
// sender, which writes for everybody's forms and so belongs to no thread.
void AddParticipants(const EmailMessage& email, std::set<std::string>& into) {
  const std::string relay = RelayAddress(email);
  auto add = [&](const std::string& address) {
    std::string normalized = domain::AsciiLower(domain::TrimAscii(address));
    if (!normalized.empty() && normalized != relay) into.insert(std::move(normalized));
  };
  add(email.from_address());
  add(email.reply_to_address());
  for (const std::string& address : email.to_addresses()) add(address);
  for (const std::string& address : email.cc_addresses()) add(address);
}

// Lists kept within their bounds; counts what was cut (in `cut`, and in `omitted`, the
// message's own count of addresses left out, which the reader sees).
std::vector<std::string> KeptAddresses(const google::protobuf::RepeatedPtrField<std::string>& given,
                                       size_t& cut, int64_t& omitted) {
  std::vector<std::string> kept;
  for (const std::string& address : given) {
    if (kept.size() >= domain::kMaxKeptAddresses || address.size() > domain::kMaxAddressBytes) {
      ++cut;
      ++omitted;
      continue;
    }
    kept.push_back(address);
  }
  return kept;
}

}  // namespace

EmailCounters::EmailCounters(metrics::Registry& registry)
    : replies_threaded(registry
                           .AddCounter("crm_email_replies_threaded_total",
                                       "Email replies filed under their thread's record (no "
                                       "lead made, no identity added)")
                           .WithLabels({})),
      replies_by_colleague_domain(
          registry
              .AddCounter("crm_email_replies_colleague_domain_total",
                          "Email replies filed under their thread's record by the colleague-domain "
                          "rule alone: a sender at the domain of the thread's customer "
                          "(CRM_EMAIL_OWN_DOMAINS and CRM_EMAIL_PUBLIC_DOMAINS excluded), neither "
                          "a participant nor an address the record knows; also counted in "
                          "crm_email_replies_threaded_total")
              .WithLabels({})),
      duplicate_messages(registry
                             .AddCounter("crm_email_duplicate_messages_total",
                                         "Email messages with no effect: their Message-ID was "
                                         "kept already from the same sender")
                             .WithLabels({})),
      reused_message_ids(registry
                             .AddCounter("crm_email_reused_message_ids_total",
                                         "Email messages whose Message-ID another sender's "
                                         "message holds: kept and applied, without that id")
                             .WithLabels({})),
      fields_cut(registry
                     .AddCounter("crm_email_fields_cut_total",
                                 "Texts or lists of kept email messages cut to their bounds")
                     .WithLabels({})),
      replies_refused(registry
                          .AddCounter("crm_email_replies_refused_total",
                                      "Email messages naming a kept message whose sender had no "
                                      "part in its thread: matched as new contact attempts")
                          .WithLabels({})),
      contents_omitted(registry
                           .AddCounter("crm_email_contents_omitted_total",
                                       "Email messages kept with their headers only: their "
                                       "thread or record had reached its cap")
                           .WithLabels({})),
      owner_lock_rounds_exhausted(registry
                                      .AddCounter("crm_email_owner_lock_rounds_exhausted_total",
                                                  "Batches retried because their threads' "
                                                  "records kept being merged or converted")
                                      .WithLabels({})) {}

void EmailCounters::Add(const EmailBatchResult& result) {
  replies_threaded.Increment(static_cast<double>(result.replies_threaded));
  replies_by_colleague_domain.Increment(static_cast<double>(result.replies_by_colleague_domain));
  duplicate_messages.Increment(static_cast<double>(result.duplicate_messages));
  reused_message_ids.Increment(static_cast<double>(result.reused_message_ids));
  fields_cut.Increment(static_cast<double>(result.fields_cut));
  replies_refused.Increment(static_cast<double>(result.replies_refused));
  contents_omitted.Increment(static_cast<double>(result.contents_omitted));
  owner_lock_rounds_exhausted.Increment(static_cast<double>(result.owner_lock_rounds_exhausted));
}

void ApplyReplyToTrust(const RuleSettings& rules, const InboundEvent& event,
                       ContactAttempt& attempt) {
  if (event.payload_case() == InboundEvent::kEmail &&
      !domain::ReplyToTrusted(rules.reply_to_trusted_mailboxes, event.email().mailbox())) {
    attempt.match_only.clear();
  }
}

EmailBatch::EmailBatch(pqxx::transaction_base& work, const std::vector<const InboundEvent*>& events,
                       std::vector<ContactAttempt>& attempts, const std::set<std::string>& claimed,
                       const RuleSettings& rules)
    : work_(work),
      events_(events),
      attempts_(attempts),
      claimed_(claimed),
      rules_(rules),
      repository_(work) {}

std::string EmailBatch::ColleagueDomainOf(size_t index) const {
  return domain::ColleagueDomain(Sender(index), rules_.public_mail_domains, rules_.own_mail_domains,
                                 pg::StripNul(events_[index]->email().mailbox()));
}

std::string EmailBatch::Sender(size_t index) const {
  const InboundEvent& event = *events_[index];
  // In the form EMAIL identities are stored in (identity::NormalizeEmail: the local part folded
  // beyond ASCII too), since it is compared with them; ASCII lower case when it is no address.
  absl::StatusOr<std::string> normalized = identity::NormalizeEmail(event.email().from_address());
  std::string from = normalized.ok()
                         ? *normalized
                         : domain::AsciiLower(domain::TrimAscii(event.email().from_address()));
  if (from.empty() && event.identities_size() > 0) {
    from = domain::AsciiLower(domain::TrimAscii(event.identities(0).value()));
  }
  return pg::StripNul(from);
}

absl::StatusOr<std::vector<domain::ThreadMessage>> EmailBatch::LockedThreads(
    const std::vector<std::string>& named) {
  // The threads and their records as a first look finds them; then each round locks the thread
  // keys (one open reply activity per thread: two replies naming different messages of one
  // thread are decided one after the other) and the records (a merge or conversion cannot move
  // them before this batch commits), and looks again: a record that moved before its lock was
  // granted shows as a new one, locked in the next round.
  std::vector<domain::ThreadMessage> threads = repository_.FindThreadMessages(named);
  std::set<std::string> locked_threads;
  std::set<std::pair<EntityKind, int64_t>> locked_owners;
  for (int round = 0; round < kMaxThreadOwnerLockRounds; ++round) {
    std::vector<std::string> thread_keys;
    std::vector<EntityRef> owners;
    for (const domain::ThreadMessage& message : threads) {
      if (locked_threads.insert(message.thread_key).second) {
        thread_keys.push_back(ThreadLockKey(message.thread_key));
      }
      if (locked_owners.insert({message.owner.kind, message.owner.id}).second) {
        owners.push_back(message.owner);
      }
    }
    if (thread_keys.empty() && owners.empty()) {
      return threads;  // every record found is locked, and was found under its lock
    }
    EventRepository(work_).LockIdentities(thread_keys);
    repository_.LockOwners(owners);
    threads = repository_.FindThreadMessages(named);
  }
  ++result_.owner_lock_rounds_exhausted;
  spdlog::warn("email threads of a batch still moving after {} lock rounds; retrying it",
               kMaxThreadOwnerLockRounds);
  return absl::AbortedError(absl::StrCat("email thread records still moving after ",
                                         kMaxThreadOwnerLockRounds, " lock rounds"));
}

absl::Status EmailBatch::Prepare() {
  std::vector<std::vector<std::string>> candidates(events_.size());
  std::vector<std::string> lock_keys;
  std::vector<std::string> own_ids;
  std::vector<std::string> named;
  for (size_t i = 0; i < events_.size(); ++i) {
    if (events_[i]->payload_case() != InboundEvent::kEmail ||
        claimed_.count(events_[i]->event_id()) == 0) {
      continue;
    }
    emails_.push_back(i);
    const EmailMessage& email = events_[i]->email();
    std::string own(domain::TrimAscii(email.message_id()));
    if (domain::IsUsableMessageId(own)) {
      own_[i] = own;
      own_ids.push_back(own);
      lock_keys.push_back(MessageLockKey(own));
    }
    candidates[i] = domain::ThreadCandidates(
        own, email.in_reply_to(),
        std::vector<std::string>(email.references().begin(), email.references().end()));
    for (const std::string& id : candidates[i]) {
      named.push_back(id);
      lock_keys.push_back(MessageLockKey(id));
    }
  }
  if (emails_.empty()) {
    return absl::OkStatus();
  }
  EventRepository(work_).LockIdentities(lock_keys);

  // The same message again (SMTP and IMAP, a redelivery under another event id): no effect. The
  // same Message-ID from another sender is not the same message (a mailer reusing ids, or someone
  // quoting a customer's id): it is applied like any other mail, kept without the id, which
  // stays the first message's.
  const std::map<std::string, std::string> stored = repository_.StoredMessageIds(own_ids);
  std::map<std::string, size_t> earlier;  // Message-ID → the batch's message that has it
  std::vector<size_t> fresh;
  for (size_t i : emails_) {
    auto own = own_.find(i);
    if (own != own_.end()) {
      const std::string sender = StoredSender(events_[i]->email());
      auto kept = stored.find(own->second);
      auto first = earlier.find(own->second);
      if ((kept != stored.end() && domain::AsciiLower(kept->second) == sender) ||
          (first != earlier.end() && StoredSender(events_[first->second]->email()) == sender)) {
        taken_out_.insert(i);
        ++result_.duplicate_messages;
        continue;
      }
      if (kept != stored.end() || first != earlier.end()) {
        ++result_.reused_message_ids;
        spdlog::info(
            "email event {}: its Message-ID is held by another sender's message; kept "
            "without it",
            events_[i]->event_id());
        own_.erase(own);
      } else {
        earlier[own->second] = i;
      }
    }
    fresh.push_back(i);
  }
  emails_ = fresh;
  // A message may arrive after a reply naming it (the reply was applied first: a backlog, its
  // sender retrying after a 451, a mailbox polled with its history): its own Message-ID is looked
  // up among the ids kept messages name, so that it joins the thread the reply started rather
  // than making a second record of the conversation. Its lock is held already (lock_keys).
  for (size_t i : emails_) {
    if (auto own = own_.find(i); own != own_.end()) named.push_back(own->second);
  }
  // A reply naming only messages never kept (a salesperson answered from their own mail
  // program, and the customer replied to that) belongs with the reply task already open for its
  // sender, if any: one open reply activity per correspondent on a record, as per thread.
  std::vector<std::string> replying_senders;
  for (size_t i : emails_) {
    if (!candidates[i].empty()) replying_senders.push_back(Sender(i));
  }
  const std::map<std::string, std::string> open_of_sender =
      repository_.OpenReplyMessagesOfSenders(replying_senders);
  for (const auto& [sender, message_id] : open_of_sender) named.push_back(message_id);

  absl::StatusOr<std::vector<domain::ThreadMessage>> threads = LockedThreads(named);
  if (!threads.ok()) {
    return threads.status();
  }

  // What each message names first: a stored message (its thread's decision), or an earlier
  // message of this batch.
  struct Named {
    std::optional<domain::ThreadDecision> stored;
    std::optional<size_t> earlier;
  };
  // Else, for a message that names none: a stored message naming it, or an earlier message of
  // the batch naming it (a reply applied before the message it answers). Else, for a reply
  // whose thread is unknown: the thread of its sender's open reply activity.
  std::map<size_t, Named> first_named;
  {
    std::set<size_t> seen;
    std::map<std::string, size_t>
        named_by;  // Message-ID → the first message of the batch naming it
    for (size_t i : emails_) {
      for (const std::string& candidate : candidates[i]) {
        if (std::optional<domain::ThreadDecision> decision =
                domain::DecideThread({candidate}, *threads)) {
          first_named[i].stored = decision;
          break;
        }
        if (auto found = earlier.find(candidate);
            found != earlier.end() && seen.count(found->second) != 0) {
          first_named[i].earlier = found->second;
          break;
        }
      }
      if (auto own = own_.find(i);
          own != own_.end() && !first_named[i].stored && !first_named[i].earlier) {
        if (std::optional<domain::ThreadDecision> decision =
                domain::DecideThread({own->second}, *threads)) {
          first_named[i].stored = decision;
        } else if (auto found = named_by.find(own->second); found != named_by.end()) {
          first_named[i].earlier = found->second;
        }
      }
      if (!candidates[i].empty() && !first_named[i].stored && !first_named[i].earlier) {
        if (auto open = open_of_sender.find(Sender(i)); open != open_of_sender.end()) {
          first_named[i].stored = domain::DecideThread({open->second}, *threads);
        }
      }
      for (const std::string& candidate : candidates[i]) named_by.emplace(candidate, i);
      seen.insert(i);
    }
  }
  // The stored thread a message would reach, directly or through earlier messages of the batch.
  std::map<size_t, domain::ThreadDecision> reaches;
  for (size_t i : emails_) {
    const Named& it = first_named[i];
    if (it.stored) {
      reaches[i] = *it.stored;
    } else if (it.earlier) {
      if (auto found = reaches.find(*it.earlier); found != reaches.end()) {
        reaches[i] = found->second;
      }
    }
  }
  // Whether each sender took part in the stored thread it would reach, or is an address of that
  // thread's record: one statement for the batch.
  std::vector<EmailRepository::SenderInThread> asked;
  std::map<size_t, size_t> asked_for;  // email index → its row in `asked`
  for (const auto& [i, decision] : reaches) {
    asked_for[i] = asked.size();
    asked.push_back({.thread_key = decision.thread_key,
                     .owner = decision.owner,
                     .sender = Sender(i),
                     .domain = ColleagueDomainOf(i)});
  }
  const std::set<size_t> known = repository_.SendersKnown(asked, rules_.max_messages_per_thread);
  // The same question without the colleague-domain rule, for the senders it could have admitted:
  // which replies that rule alone files (crm_email_replies_colleague_domain_total). Asked only
  // when the first answer admitted such a sender.
  std::set<size_t> known_without_domain = known;
  {
    std::vector<EmailRepository::SenderInThread> by_domain = asked;
    bool any = false;
    for (size_t row = 0; row < by_domain.size(); ++row) {
      if (!by_domain[row].domain.empty() && known.count(row) != 0) any = true;
      by_domain[row].domain.clear();
    }
    if (any) {
      known_without_domain = repository_.SendersKnown(by_domain, rules_.max_messages_per_thread);
    }
  }

  // In batch order: a reply is filed in its thread when its sender belongs there (known above, or
  // a participant of a message of the batch filed in that thread before it); otherwise it is a
  // contact attempt of its own, for the planner.
  std::map<std::string, std::set<std::string>> participants;  // thread key → in this batch
  // Thread key → the domains of the From of its messages in this batch, and of the addresses of
  // ours they came in through.
  std::map<std::string, std::set<std::string>> sender_domains, mailbox_domains;
  std::map<size_t, std::string> thread_of;  // email index → its thread key
  std::set<size_t> filed_in_stored;         // replies filed in a stored thread
  std::vector<std::string> mailboxes;
  for (size_t i : emails_) {
    const Named& it = first_named[i];
    std::optional<Reply> reply;
    std::string thread_key;
    if (it.stored) {
      thread_key = it.stored->thread_key;
      reply = Reply{.index = i, .stored = it.stored};
    } else if (it.earlier && thread_of.count(*it.earlier) != 0) {
      thread_key = thread_of[*it.earlier];
      reply = Reply{.index = i, .earlier = *it.earlier};
    }
    if (reply) {
      // Known to the stored thread: when the reply goes there (naming it, or an earlier message
      // of the batch filed in it).
      const bool in_stored_thread =
          it.stored || (it.earlier && filed_in_stored.count(*it.earlier) != 0);
      const std::string colleague_domain = ColleagueDomainOf(i);
      const bool asked_row = in_stored_thread && asked_for.count(i) != 0;
      const bool belongs_without_domain =
          (asked_row && known_without_domain.count(asked_for[i]) != 0) ||
          participants[thread_key].count(Sender(i)) != 0;
      const bool belongs =
          belongs_without_domain || (asked_row && known.count(asked_for[i]) != 0) ||
          (!colleague_domain.empty() && sender_domains[thread_key].count(colleague_domain) != 0 &&
           mailbox_domains[thread_key].count(colleague_domain) == 0);
      if (belongs && in_stored_thread) filed_in_stored.insert(i);
      if (!belongs) {
        reply.reset();
        ++result_.replies_refused;
      } else {
        reply->by_colleague_domain = !belongs_without_domain;
      }
    }
    if (reply) {
      taken_out_.insert(i);
      replies_.push_back(*reply);
    } else {
      auto own = own_.find(i);
      thread_key = own != own_.end() ? own->second : events_[i]->event_id();
      planned_.push_back(i);
      mailboxes.push_back(domain::AsciiLower(pg::StripNul(events_[i]->email().mailbox())));
    }
    thread_of[i] = thread_key;
    AddParticipants(events_[i]->email(), participants[thread_key]);
    if (std::string from = domain::AddressDomain(Sender(i)); !from.empty()) {
      sender_domains[thread_key].insert(std::move(from));
    }
    if (std::string ours = domain::AddressDomain(pg::StripNul(events_[i]->email().mailbox()));
        !ours.empty()) {
      mailbox_domains[thread_key].insert(std::move(ours));
    }
  }

  // Routes of the addresses the planner's messages came in through.
  const std::map<std::string, EmailRoute> routes = repository_.ReadRoutes(mailboxes);
  for (size_t i : planned_) {
    auto route = routes.find(domain::AsciiLower(pg::StripNul(events_[i]->email().mailbox())));
    if (route == routes.end()) {
      continue;  // the channel's defaults
    }
    ContactAttempt::Route& target = attempts_[i].route;
    target.queue = route->second.queue;
    if (route->second.pipeline_id > 0 && !route->second.first_stage_id.empty()) {
      target.pipeline_id = route->second.pipeline_id;
      target.first_stage_id = route->second.first_stage_id;
    }
  }
  return absl::OkStatus();
}

EmailMessageRecord EmailBatch::Record(size_t index) {
  const InboundEvent& event = *events_[index];
  const EmailMessage& email = event.email();
  EmailMessageRecord record;
  if (auto own = own_.find(index); own != own_.end()) record.message_id = own->second;
  record.event_id = event.event_id();
  record.thread_key = record.message_id.empty() ? event.event_id() : record.message_id;
  size_t& cut = result_.fields_cut;
  auto bounded = [&](const std::string& text, size_t max_bytes) {
    if (text.size() > max_bytes) ++cut;
    return domain::CutUtf8(text, max_bytes);
  };
  record.mailbox = email.mailbox().size() <= domain::kMaxAddressBytes ? email.mailbox() : "";
  record.from_address =
      email.from_address().size() <= domain::kMaxAddressBytes ? email.from_address() : "";
  record.from_name = bounded(email.from_name(), domain::kMaxNameBytes);
  record.reply_to_address =
      email.reply_to_address().size() <= domain::kMaxAddressBytes ? email.reply_to_address() : "";
  record.relay_address =
      email.relay_address().size() <= domain::kMaxAddressBytes ? email.relay_address() : "";
  record.to_addresses_omitted = email.to_addresses_omitted();
  record.cc_addresses_omitted = email.cc_addresses_omitted();
  record.to_addresses = KeptAddresses(email.to_addresses(), cut, record.to_addresses_omitted);
  record.cc_addresses = KeptAddresses(email.cc_addresses(), cut, record.cc_addresses_omitted);
  // Names only, bounded in number and length (a producer may send anything).
  for (const std::string& name : email.truncated_headers()) {
    if (record.truncated_headers.size() >= 16) {
      ++cut;
      break;
    }
    record.truncated_headers.push_back(bounded(name, 64));
  }
  if (email.has_date()) {
    record.sent_micros = email.date().seconds() * 1000000 + email.date().nanos() / 1000;
  }
  record.subject = bounded(email.subject(), domain::kMaxSubjectBytes);
  record.body = bounded(email.text_body(), domain::kMaxBodyBytes);
  record.in_reply_to = domain::IsUsableMessageId(email.in_reply_to()) ? email.in_reply_to() : "";
  // The newest references are the telling ones, and the first is the thread's root: past the
  // bound, those in between are dropped.
  const int total = email.references_size();
  const int kept_from =
      std::max(0, total - static_cast<int>(domain::kMaxKeptReferences) + (total > 0 ? 1 : 0));
  for (int k = 0; k < total; ++k) {
    if ((k == 0 || k >= kept_from) && domain::IsUsableMessageId(email.references(k))) {
      record.references.push_back(email.references(k));
    }
  }
  if (static_cast<size_t>(total) > domain::kMaxKeptReferences) ++cut;
  for (const events::v1::EmailAttachment& attachment : email.attachments()) {
    if (record.attachments.size() >= domain::kMaxKeptAttachments) {
      ++cut;
      break;
    }
    record.attachments.push_back({bounded(attachment.filename(), domain::kMaxNameBytes),
                                  bounded(attachment.content_type(), 200), attachment.size_bytes(),
                                  attachment.inline_part()});
  }
  return record;
}

EmailBatchResult EmailBatch::Write() {
  if (emails_.empty()) {
    return result_;
  }
  // What each kept message went to. An activity is an id, or "the one this event opens" until
  // those are inserted.
  struct Filed {
    std::string thread_key;
    EntityRef owner;
    int64_t activity_id = 0;
    std::string opened_by;  // event id of a reply activity not inserted yet
  };
  std::map<size_t, Filed> filed;
  std::map<std::string, Filed> open_by_thread;  // the thread's open activity in this batch

  // The planner's messages: the EMAIL activity each made, on the record it chose.
  std::vector<std::string> planned_events;
  for (size_t i : planned_) planned_events.push_back(events_[i]->event_id());
  const auto activities = repository_.ActivitiesOfEvents(planned_events);
  for (size_t i : planned_) {
    auto made = activities.find(events_[i]->event_id());
    if (made == activities.end()) {
      spdlog::error("email event {} made no EMAIL activity; its message is not kept",
                    events_[i]->event_id());
      continue;
    }
    auto own = own_.find(i);
    Filed entry{.thread_key = own != own_.end() ? own->second : events_[i]->event_id(),
                .owner = made->second.second,
                .activity_id = made->second.first};
    filed[i] = entry;
    open_by_thread[entry.thread_key] = entry;
  }

  // Replies, in batch order: the thread's open activity, else a new one on its record.
  std::vector<EmailRepository::NewReplyActivity> opened;
  std::set<int64_t> touched_deals;
  for (const Reply& reply : replies_) {
    const ContactAttempt& attempt = attempts_[reply.index];
    Filed entry;
    int64_t responsible = 0;
    if (reply.stored) {
      entry.thread_key = reply.stored->thread_key;
      entry.owner = reply.stored->owner;
      responsible = reply.stored->responsible;
      if (reply.stored->join_activity) entry.activity_id = *reply.stored->join_activity;
    } else {
      auto earlier = filed.find(reply.earlier);
      if (earlier == filed.end()) {
        continue;  // its thread's first message was not kept (logged above)
      }
      entry.thread_key = earlier->second.thread_key;
      entry.owner = earlier->second.owner;
    }
    if (auto open = open_by_thread.find(entry.thread_key); open != open_by_thread.end()) {
      entry.activity_id = open->second.activity_id;
      entry.opened_by = open->second.opened_by;
    }
    ++result_.replies_threaded;
    if (reply.by_colleague_domain) ++result_.replies_by_colleague_domain;
    if (entry.activity_id != 0 || !entry.opened_by.empty()) {
      ++result_.replies_joined;
    } else {
      entry.opened_by = events_[reply.index]->event_id();
      opened.push_back({.owner = entry.owner,
                        .subject = attempt.activity.subject,
                        .description = attempt.activity.description,
                        .responsible_user_id = responsible,
                        .deadline_minutes = rules_.task_deadline.count(),
                        .event_id = entry.opened_by});
    }
    if (entry.owner.kind == EntityKind::kDeal) touched_deals.insert(entry.owner.id);
    filed[reply.index] = entry;
    open_by_thread[entry.thread_key] = entry;
  }
  const std::map<std::string, int64_t> opened_ids = repository_.InsertReplyActivities(opened);
  InboundRepository(work_).TouchDeals(touched_deals);

  // The caps: past the messages kept with their content in a thread or on a record, only the
  // headers are kept (threading and duplicates still work), the effect above stays. The counts
  // are exact across consumers: a thread's are taken under its lock (a stored thread's
  // ThreadLockKey, a new one's MessageLockKey, held since Prepare), and a record's under
  // KeptOnRecordLockKey, taken here. The owner lock of LockedThreads is KEY SHARE, which two
  // batches hold at once, and records matched by the planner have none: without this lock, two
  // batches filing on one record would both count the same committed rows and each keep one batch
  // of contents past the cap. An advisory lock, not the record's row: nothing else waits for it,
  // and it is the batch's last lock (only its inserts follow), so it adds no deadlock.
  std::vector<std::string> thread_keys;
  std::vector<EntityRef> owners;
  std::vector<std::string> owner_lock_keys;
  for (const auto& [index, entry] : filed) {
    thread_keys.push_back(entry.thread_key);
    owners.push_back(entry.owner);
    owner_lock_keys.push_back(KeptOnRecordLockKey(entry.owner));
  }
  EventRepository(work_).LockIdentities(owner_lock_keys);
  EmailRepository::KeptCounts kept = repository_.CountKept(
      thread_keys, owners, rules_.max_messages_per_thread, rules_.max_messages_per_record);

  std::vector<EmailMessageRecord> records;
  for (auto& [index, entry] : filed) {
    EmailMessageRecord record = Record(index);
    size_t& in_thread = kept.threads[entry.thread_key];
    size_t& on_record = kept.owners[{entry.owner.kind, entry.owner.id}];
    if (in_thread >= rules_.max_messages_per_thread ||
        on_record >= rules_.max_messages_per_record) {
      record.content_kept = false;
      record.body.clear();
      record.to_addresses.clear();
      record.cc_addresses.clear();
      record.references.clear();
      record.attachments.clear();
      ++result_.contents_omitted;
    }
    ++in_thread;
    ++on_record;
    record.thread_key = entry.thread_key;
    record.owner = entry.owner;
    record.activity_id = entry.activity_id;
    if (!entry.opened_by.empty()) {
      auto id = opened_ids.find(entry.opened_by);
      record.activity_id = id != opened_ids.end() ? id->second : 0;
    }
    records.push_back(std::move(record));
  }
  // `filed` is by batch index: ids follow arrival.
  repository_.InsertMessages(records);
  result_.messages_kept = records.size();
  return result_;
}

}  // namespace leadflow::crm
