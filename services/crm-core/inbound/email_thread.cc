#include "crm-core/inbound/email_thread.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "crm-core/domain/common/text.h"
#include "crm-core/store/inbound_repository.h"
#include "crm-core/store/repositories.h"
#include "pg/pg.h"

namespace leadflow::crm {
namespace {

using domain::EntityKind;
using domain::EntityRef;
using events::v1::EmailMessage;
using events::v1::InboundEvent;

// Advisory lock key of a Message-ID: taken for a message's own id and the ids it names, so a reply
// and the message it answers, or two replies of one thread, are decided one after the other.
std::string MessageLockKey(const std::string& message_id) { return "EMAIL_MESSAGE:" + message_id; }

// Lists kept within their bounds; counts what was cut.
std::vector<std::string> KeptAddresses(const google::protobuf::RepeatedPtrField<std::string>& given,
                                       size_t& cut) {
  std::vector<std::string> kept;
  for (const std::string& address : given) {
    if (kept.size() >= domain::kMaxKeptAddresses || address.size() > domain::kMaxAddressBytes) {
      ++cut;
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
      duplicate_messages(registry
                             .AddCounter("crm_email_duplicate_messages_total",
                                         "Email messages with no effect: their Message-ID was "
                                         "kept already")
                             .WithLabels({})),
      fields_cut(registry
                     .AddCounter("crm_email_fields_cut_total",
                                 "Texts or lists of kept email messages cut to their bounds")
                     .WithLabels({})) {}

void EmailCounters::Add(const EmailBatchResult& result) {
  replies_threaded.Increment(static_cast<double>(result.replies_threaded));
  duplicate_messages.Increment(static_cast<double>(result.duplicate_messages));
  fields_cut.Increment(static_cast<double>(result.fields_cut));
}

EmailBatch::EmailBatch(pqxx::transaction_base& work, const std::vector<const InboundEvent*>& events,
                       std::vector<ContactAttempt>& attempts, const std::set<std::string>& claimed,
                       std::chrono::minutes deadline)
    : work_(work),
      events_(events),
      attempts_(attempts),
      claimed_(claimed),
      deadline_(deadline),
      repository_(work) {}

void EmailBatch::Prepare() {
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
    return;
  }
  EventRepository(work_).LockIdentities(lock_keys);

  // The same message again (SMTP and IMAP, a redelivery under another event id): no effect.
  const std::set<std::string> stored = repository_.StoredMessageIds(own_ids);
  std::map<std::string, size_t> earlier;  // Message-ID → the batch's message that has it
  std::vector<size_t> fresh;
  for (size_t i : emails_) {
    auto own = own_.find(i);
    if (own != own_.end() && (stored.count(own->second) != 0 || earlier.count(own->second) != 0)) {
      taken_out_.insert(i);
      ++result_.duplicate_messages;
      continue;
    }
    fresh.push_back(i);
    if (own != own_.end()) earlier[own->second] = i;
  }
  emails_ = fresh;

  // Replies: the first named message that is stored, or is an earlier message of this batch.
  const std::vector<domain::ThreadMessage> threads = repository_.FindThreadMessages(named);
  std::set<size_t> seen;
  std::vector<std::string> mailboxes;
  for (size_t i : emails_) {
    std::optional<Reply> reply;
    for (const std::string& candidate : candidates[i]) {
      if (std::optional<domain::ThreadDecision> decision =
              domain::DecideThread({candidate}, threads)) {
        reply = Reply{.index = i, .stored = decision};
        break;
      }
      if (auto found = earlier.find(candidate);
          found != earlier.end() && seen.count(found->second) != 0) {
        reply = Reply{.index = i, .earlier = found->second};
        break;
      }
    }
    seen.insert(i);
    if (reply) {
      taken_out_.insert(i);
      replies_.push_back(*reply);
      continue;
    }
    planned_.push_back(i);
    mailboxes.push_back(domain::AsciiLower(pg::StripNul(events_[i]->email().mailbox())));
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
  record.to_addresses = KeptAddresses(email.to_addresses(), cut);
  record.cc_addresses = KeptAddresses(email.cc_addresses(), cut);
  if (email.has_date()) {
    record.sent_micros = email.date().seconds() * 1000000 + email.date().nanos() / 1000;
  }
  record.subject = bounded(email.subject(), domain::kMaxSubjectBytes);
  record.body = bounded(email.text_body(), domain::kMaxBodyBytes);
  record.in_reply_to = domain::IsUsableMessageId(email.in_reply_to()) ? email.in_reply_to() : "";
  // The newest references are the telling ones; the oldest are dropped past the bound.
  const int total = email.references_size();
  for (int k = std::max(0, total - static_cast<int>(domain::kMaxKeptReferences)); k < total; ++k) {
    if (domain::IsUsableMessageId(email.references(k))) {
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
    if (entry.activity_id != 0 || !entry.opened_by.empty()) {
      ++result_.replies_joined;
    } else {
      entry.opened_by = events_[reply.index]->event_id();
      opened.push_back({.owner = entry.owner,
                        .subject = attempt.activity.subject,
                        .description = attempt.activity.description,
                        .responsible_user_id = responsible,
                        .deadline_minutes = deadline_.count(),
                        .event_id = entry.opened_by});
    }
    if (entry.owner.kind == EntityKind::kDeal) touched_deals.insert(entry.owner.id);
    filed[reply.index] = entry;
    open_by_thread[entry.thread_key] = entry;
  }
  const std::map<std::string, int64_t> opened_ids = repository_.InsertReplyActivities(opened);
  InboundRepository(work_).TouchDeals(touched_deals);

  std::vector<EmailMessageRecord> records;
  for (auto& [index, entry] : filed) {
    EmailMessageRecord record = Record(index);
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
