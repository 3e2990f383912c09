#pragma once

// A real IMAP server for tests: Debian's Dovecot (dovecot-imapd) started on a free loopback port
// with a throw-away maildir and configuration, one user leads:secret. email-ingest's IMAP tests
// and the email end-to-end test poll it.

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "testing/testing.h"

namespace leadflow::testing {

/// Dovecot on a free loopback port with one user, leads:secret, whose INBOX is a maildir the test
/// writes into. Runs as the current user; as root, mail is owned by the `dovecot` system user
/// (Dovecot refuses uid 0 for mail). Throws std::runtime_error when it cannot start.
class Dovecot {
 public:
  Dovecot();
  ~Dovecot();
  Dovecot(const Dovecot&) = delete;
  Dovecot& operator=(const Dovecot&) = delete;

  /// imap://127.0.0.1:<port>
  std::string url() const;
  /// Drops a message into INBOX as a mail server's delivery would (maildir new/).
  void Deliver(const std::string& name, const std::string& message);
  /// The same, received at `received` (a maildir's received date is its file's mtime).
  void Deliver(const std::string& name, const std::string& message,
               std::filesystem::file_time_type received);
  /// The folder deleted and made again (a new UIDVALIDITY), holding `messages` unflagged.
  void RecreateFolder(const std::vector<std::pair<std::string, std::string>>& messages);
  /// An IMAP command with the curl command-line client: its untagged answers.
  std::string Imap(const std::string& folder, const std::string& command) const;
  /// UIDs with (or without) the keyword, seen by another client: "* SEARCH 1 2", "?" on failure.
  std::string Search(const std::string& criterion) const;

 private:
  void MakeFolder();
  void Own(const std::string& path);

  std::string dir_;
  int port_ = 0;
  uid_t mail_uid_ = 0;
  gid_t mail_gid_ = 0;
  std::unique_ptr<Process> process_;
};

}  // namespace leadflow::testing
