#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "email-ingest/intake.h"
#include "metrics/metrics.h"

namespace leadflow::email {

struct ImapOptions {
  /// imap://host:port or imaps://host:port (libcurl; IMAPS verifies the certificate).
  std::string url;
  std::string user;
  std::string password;
  std::string folder = "INBOX";
  /// The address mail to this mailbox was sent to (the event's mailbox: routing in crm-core).
  std::string address;
  /// Set on a message once Kafka acknowledged its event (or it was decided never to be one).
  std::string keyword = "$LeadFlowImported";
  std::chrono::milliseconds interval{30000};
  /// Only messages the server received in the last `since_days` days are imported (IMAP
  /// SEARCH SINCE, by date, the server's received date): a mailbox with years of history
  /// connected for the first time does not make a lead of each old message. 0: every message.
  int since_days = 30;
  /// Messages imported per round at most (the rest wait for the next round).
  size_t max_per_poll = 100;
  /// Larger messages are marked without being published (counted as too_large).
  size_t max_message_bytes = 25 * 1024 * 1024;
  /// Connect and per-command time limit.
  std::chrono::milliseconds timeout{30000};
  /// Accept any certificate (tests against a throw-away server only).
  bool insecure_tls = false;
};

/// The IMAP commands the poller needs, over libcurl. Virtual so that a test can stand between
/// the poller and the real server (e.g. to "crash" before a mark).
class ImapClient {
 public:
  explicit ImapClient(ImapOptions options);
  virtual ~ImapClient();
  ImapClient(const ImapClient&) = delete;
  ImapClient& operator=(const ImapClient&) = delete;

  /// STATUS <folder> (UIDVALIDITY), on a new connection (the first command of a round).
  virtual absl::StatusOr<uint32_t> UidValidity();
  /// UID SEARCH UNKEYWORD <keyword> [SINCE <today - since_days>], ascending.
  virtual absl::StatusOr<std::vector<uint32_t>> Unmarked(uint32_t uid_validity);
  /// UID FETCH <uid> BODY[] (sets \Seen). OutOfRange when larger than the limit.
  virtual absl::StatusOr<std::string> Fetch(uint32_t uid_validity, uint32_t uid);
  /// UID STORE <uid> +FLAGS (<keyword>); fails when UIDVALIDITY changed since.
  virtual absl::Status Mark(uint32_t uid_validity, uint32_t uid);

 private:
  absl::StatusOr<std::string> Command(const std::string& path, const std::string& command,
                                      size_t max_bytes);
  const ImapOptions options_;
  void* curl_ = nullptr;  // CURL*, reused so the connection stays open between commands
};

/// Polls one mailbox: every message without the keyword is published through the intake and,
/// only after Kafka's acknowledgement (or a decision that it is never a lead), marked with the
/// keyword in the mailbox itself. A crash between the two publishes it again on the next round:
/// harmless, the event id comes from the Message-ID. A message is never skipped. A UIDVALIDITY
/// change (the folder was recreated) is counted; nothing depends on remembered UIDs, so the
/// unmarked messages of the new folder are simply imported.
class ImapPoller {
 public:
  ImapPoller(ImapOptions options, ImapClient* client, Intake* intake, metrics::Registry* registry);
  ~ImapPoller();

  struct Round {
    size_t published = 0;
    size_t dropped = 0;         // not a lead (marked)
    size_t rejected = 0;        // unusable or too large (marked, never importable)
    bool kafka_failed = false;  // stopped at a message Kafka did not take (not marked)
  };
  /// One round, on the caller's thread.
  absl::StatusOr<Round> PollOnce();

  /// Polls every interval on its own thread until Stop() (which waits for the round).
  void Start();
  void Stop();

 private:
  const ImapOptions options_;
  ImapClient* client_;
  Intake* intake_;
  uint32_t last_uid_validity_ = 0;
  metrics::Family<metrics::Counter>* rounds_;
  metrics::Family<metrics::Counter>* messages_;
  metrics::Counter* uid_validity_changes_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace leadflow::email
