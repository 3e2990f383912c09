#include "telephony-ingest/ami_peer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

namespace leadflow::telephony::testing {

std::vector<std::string> LoadTranscript(const std::string& path) {
  std::ifstream file(path);
  if (!file) {
    throw std::runtime_error("cannot read " + path);
  }
  std::vector<std::string> blocks;
  std::string block;
  std::string line;
  while (std::getline(file, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty() && line[0] == '#') continue;
    if (line.empty()) {
      if (!block.empty()) blocks.push_back(block + "\r\n");
      block.clear();
      continue;
    }
    block += line + "\r\n";
  }
  if (!block.empty()) blocks.push_back(block + "\r\n");
  return blocks;
}

AmiPeer::AmiPeer(std::string username, std::string secret)
    : username_(std::move(username)), secret_(std::move(secret)) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::listen(listen_fd_, 8) != 0) {
    throw std::runtime_error("AmiPeer: cannot listen");
  }
  socklen_t length = sizeof(address);
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length);
  port_ = ntohs(address.sin_port);
  thread_ = std::thread([this] { Serve(); });
}

AmiPeer::~AmiPeer() {
  stopping_ = true;
  Cut();
  thread_.join();
  ::close(listen_fd_);
}

void AmiPeer::Serve() {
  while (!stopping_) {
    pollfd poll_fd{listen_fd_, POLLIN, 0};
    if (::poll(&poll_fd, 1, 50) <= 0) continue;
    int fd = ::accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) continue;
    ++connections_;
    {
      std::lock_guard lock(mutex_);
      client_fd_ = fd;
    }
    Handle(fd);
    {
      std::lock_guard lock(mutex_);
      if (client_fd_ == fd) client_fd_ = -1;
    }
    ::close(fd);
    changed_.notify_all();
  }
}

// Reads the client's actions and answers them as Asterisk does.
void AmiPeer::Handle(int fd) {
  Send("Asterisk Call Manager/9.0.0\r\n");
  std::string buffer;
  char chunk[4096];
  while (!stopping_) {
    pollfd poll_fd{fd, POLLIN, 0};
    int ready = ::poll(&poll_fd, 1, 50);
    if (ready == 0) continue;
    ssize_t read = ::recv(fd, chunk, sizeof(chunk), 0);
    if (read <= 0) return;
    buffer.append(chunk, static_cast<size_t>(read));
    size_t end;
    while ((end = buffer.find("\r\n\r\n")) != std::string::npos) {
      std::map<std::string, std::string> action;
      std::istringstream lines(buffer.substr(0, end));
      std::string line;
      while (std::getline(lines, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        size_t colon = line.find(": ");
        if (colon != std::string::npos) action[line.substr(0, colon)] = line.substr(colon + 2);
      }
      buffer.erase(0, end + 4);
      const std::string id = action["ActionID"];
      const std::string name = action["Action"];
      if (name == "Login") {
        if (action["Username"] == username_ && action["Secret"] == secret_) {
          Send("Response: Success\r\nActionID: " + id +
               "\r\nMessage: Authentication accepted\r\n\r\n");
          Send("Event: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted\r\n\r\n");
          ++logins_;
        } else {
          ++refused_;
          Send("Response: Error\r\nActionID: " + id + "\r\nMessage: Authentication failed\r\n\r\n");
          return;  // Asterisk closes the connection after a failed login
        }
      } else if (name == "CoreShowChannels") {
        std::vector<std::pair<std::string, std::string>> live;
        std::vector<std::string> listed;
        {
          std::lock_guard lock(mutex_);
          live = live_;
          listed = listed_channels_;
        }
        std::string listing = "Response: Success\r\nActionID: " + id +
                              "\r\nEventList: start\r\nMessage: Channels will follow\r\n\r\n";
        for (const auto& [unique, linked] : live) {
          listing += "Event: CoreShowChannel\r\nActionID: " + id + "\r\nChannel: PJSIP/x-" +
                     unique + "\r\nUniqueid: " + unique + "\r\nLinkedid: " + linked +
                     "\r\nApplication: Dial\r\n\r\n";
        }
        for (const std::string& event : listed) {
          // Asterisk writes the ActionID right after the Event line.
          const size_t first_line = event.find("\r\n") + 2;
          listing +=
              event.substr(0, first_line) + "ActionID: " + id + "\r\n" + event.substr(first_line);
        }
        listing +=
            "Event: CoreShowChannelsComplete\r\nActionID: " + id +
            "\r\nEventList: Complete\r\nListItems: " + std::to_string(live.size() + listed.size()) +
            "\r\n\r\n";
        Send(listing);
        ++listed_;
        changed_.notify_all();
      } else if (name == "Ping") {
        Send("Response: Success\r\nActionID: " + id + "\r\nPing: Pong\r\nTimestamp: 0.0\r\n\r\n");
      } else {
        Send("Response: Error\r\nActionID: " + id + "\r\nMessage: Invalid/unknown command\r\n\r\n");
      }
    }
  }
}

bool AmiPeer::Send(const std::string& bytes) {
  std::lock_guard lock(mutex_);
  if (client_fd_ < 0) return false;
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = ::send(client_fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

bool AmiPeer::SendAll(const std::vector<std::string>& blocks) {
  for (const std::string& block : blocks) {
    if (!Send(block)) return false;
  }
  return true;
}

void AmiPeer::Cut() {
  std::lock_guard lock(mutex_);
  if (client_fd_ >= 0) {
    ::shutdown(client_fd_, SHUT_RDWR);
  }
}

void AmiPeer::SetLiveChannels(std::vector<std::pair<std::string, std::string>> channels) {
  std::lock_guard lock(mutex_);
  live_ = std::move(channels);
}

void AmiPeer::SetListedChannels(std::vector<std::string> events) {
  std::lock_guard lock(mutex_);
  listed_channels_ = std::move(events);
}

bool AmiPeer::WaitLoggedIn(int count, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return logins_ >= count && listed_ >= count; });
}

}  // namespace leadflow::telephony::testing
