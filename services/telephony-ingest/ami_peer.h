#pragma once

// A scripted Asterisk Manager Interface peer for tests: it listens on loopback and speaks the
// real protocol over TCP — the banner, Login answered "Response: Success" (or an error for a
// wrong secret), CoreShowChannels answered with the channels the test says are up, Ping — and
// sends the event blocks the test gives it, in AMI's text form, recorded transcripts included.

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace leadflow::telephony::testing {

/// Event blocks of a transcript file: AMI text, blocks separated by blank lines, lines starting
/// with '#' ignored. Each block is returned with CRLF line ends and the blank line after it.
std::vector<std::string> LoadTranscript(const std::string& path);

class AmiPeer {
 public:
  /// `secret`: the one Login must give.
  explicit AmiPeer(std::string username = "leadflow", std::string secret = "s3cret");
  ~AmiPeer();
  int port() const { return port_; }

  /// Sends raw bytes to the connected client (as one write).
  bool Send(const std::string& bytes);
  /// Sends each block, one write each.
  bool SendAll(const std::vector<std::string>& blocks);
  /// Closes the current connection (a cut); the next client connection is accepted.
  void Cut();
  /// The channels CoreShowChannels lists: Uniqueid → Linkedid.
  void SetLiveChannels(std::vector<std::pair<std::string, std::string>> channels);
  /// Channels CoreShowChannels lists as well, each a whole CoreShowChannel event as Asterisk
  /// writes it (from a transcript: "Event: CoreShowChannel", then all its fields) without its
  /// ActionID, which the peer adds from the action as Asterisk does.
  void SetListedChannels(std::vector<std::string> events);

  /// Waits until `count` logins succeeded and the channel list was asked for after the last.
  bool WaitLoggedIn(int count, std::chrono::milliseconds timeout);
  int logins() const { return logins_; }
  int refused_logins() const { return refused_; }
  int connections() const { return connections_; }

 private:
  void Serve();
  void Handle(int fd);

  const std::string username_;
  const std::string secret_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::mutex mutex_;
  std::condition_variable changed_;
  int client_fd_ = -1;
  std::vector<std::pair<std::string, std::string>> live_;
  std::vector<std::string> listed_channels_;
  std::atomic<int> logins_{0};
  std::atomic<int> listed_{0};
  std::atomic<int> refused_{0};
  std::atomic<int> connections_{0};
  std::thread thread_;
};

}  // namespace leadflow::telephony::testing
