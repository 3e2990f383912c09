#pragma once

// The email channel's tables (migrations/0005_email.sql): kept messages and their threads, and
// the routes of recipient addresses of ours. Over the caller's transaction; one statement per
// call whatever the number of rows.

#include <cstdint>
#include <map>
#include <pqxx/pqxx>
#include <set>
#include <string>
#include <vector>

#include "crm-core/domain/email/thread.h"

namespace leadflow::crm {

/// One kept message.
struct EmailMessageRecord {
  int64_t id = 0;          // 0 until stored
  std::string message_id;  // empty: the message had none
  std::string event_id;
  std::string thread_key;
  domain::EntityRef owner;
  int64_t activity_id = 0;  // 0: none
  std::string mailbox;
  std::string from_address;
  std::string from_name;
  std::string reply_to_address;
  std::vector<std::string> to_addresses;
  std::vector<std::string> cc_addresses;
  int64_t sent_micros = 0;  // 0: no readable Date
  std::string subject;
  std::string body;
  std::string in_reply_to;
  std::vector<std::string> references;
  struct Attachment {
    std::string filename;
    std::string content_type;
    int64_t size_bytes = 0;
    bool inline_part = false;
  };
  std::vector<Attachment> attachments;
  int64_t received_micros = 0;
  /// False past the per-thread or per-record cap: only the headers were kept.
  bool content_kept = true;
  /// The relay sender that wrote on behalf of the person (a form builder), empty when none: kept
  /// to be shown, never an identity.
  std::string relay_address;
  /// Addresses of To (Cc) the message named beyond those kept (email-ingest's cap, crm-core's).
  int64_t to_addresses_omitted = 0;
  int64_t cc_addresses_omitted = 0;
  /// Header fields email-ingest cut to its caps, by name.
  std::vector<std::string> truncated_headers;
};

/// Where mail to one of our addresses goes.
struct EmailRoute {
  std::string address;
  int64_t pipeline_id = 0;     // 0: the inbound pipeline
  std::string first_stage_id;  // the pipeline's first PROCESS stage (read by the consumer)
  std::string queue;           // empty: the channel's queue
};

class EmailRepository {
 public:
  explicit EmailRepository(pqxx::transaction_base& work) : work_(work) {}

  /// The stored messages among `message_ids`, as a reply's thread sees them.
  std::vector<domain::ThreadMessage> FindThreadMessages(
      const std::vector<std::string>& message_ids);
  /// Locks the records replies are about to be filed under (FOR KEY SHARE): a merge, a
  /// conversion or a delete of one of them waits for this transaction, or committed before and
  /// is seen by the next FindThreadMessages.
  void LockOwners(const std::vector<domain::EntityRef>& owners);
  /// A reply's sender and the thread it names: which may file the message there (the sender
  /// took part in the thread, is an address the owner knows, or writes from the domain of one of
  /// the thread's senders or of the owner's addresses, that domain not being ours).
  struct SenderInThread {
    std::string thread_key;
    domain::EntityRef owner;
    std::string sender;  // lower case
    // The sender's domain when writing from the domain of the thread's senders or of the owner's
    // addresses may file it (domain::ColleagueDomain); empty: never by the domain.
    std::string domain;
  };
  /// The indexes of `candidates` that may; `max_thread_messages` bounds the messages read.
  std::set<size_t> SendersKnown(const std::vector<SenderInThread>& candidates,
                                size_t max_thread_messages);
  /// Messages kept per thread and per record, each counted up to its cap.
  struct KeptCounts {
    std::map<std::string, size_t> threads;
    std::map<std::pair<domain::EntityKind, int64_t>, size_t> owners;
  };
  KeptCounts CountKept(const std::vector<std::string>& thread_keys,
                       const std::vector<domain::EntityRef>& owners, size_t max_per_thread,
                       size_t max_per_record);
  /// For each of `senders` (lower case) with an open EMAIL activity holding a message kept from
  /// that address: the newest such message's Message-ID, by sender.
  std::map<std::string, std::string> OpenReplyMessagesOfSenders(
      const std::vector<std::string>& senders);
  /// Which of `message_ids` are stored, each with its message's sender.
  std::map<std::string, std::string> StoredMessageIds(const std::vector<std::string>& message_ids);
  /// The routes of these recipient addresses (lower case), by address.
  std::map<std::string, EmailRoute> ReadRoutes(const std::vector<std::string>& addresses);
  /// The EMAIL activity each event made: event id → (activity id, owner).
  std::map<std::string, std::pair<int64_t, domain::EntityRef>> ActivitiesOfEvents(
      const std::vector<std::string>& event_ids);
  /// Open EMAIL activities for replies (one per event); event id → new activity id.
  struct NewReplyActivity {
    domain::EntityRef owner;
    std::string subject;
    std::string description;
    int64_t responsible_user_id = 0;
    int64_t deadline_minutes = 0;
    std::string event_id;
  };
  std::map<std::string, int64_t> InsertReplyActivities(
      const std::vector<NewReplyActivity>& activities);
  /// Stores the messages (a Message-ID stored meanwhile is skipped).
  void InsertMessages(const std::vector<EmailMessageRecord>& messages);
  /// The messages of an activity (activity_id > 0) or of a record, oldest first, after id
  /// `after_id`, at most `limit`.
  std::vector<EmailMessageRecord> List(int64_t activity_id, domain::EntityRef owner,
                                       int64_t after_id, int limit);

  /// Settings: every route, by address; replaced as a whole (their queues are created).
  std::vector<EmailRoute> ListRoutes();
  void ReplaceRoutes(const std::vector<EmailRoute>& routes);
  /// The pipeline exists and has a PROCESS stage for new deals.
  bool PipelineTakesDeals(int64_t pipeline_id);

 private:
  pqxx::transaction_base& work_;
};

}  // namespace leadflow::crm
