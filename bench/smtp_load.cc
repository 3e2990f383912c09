// SMTP load: SENDERS connections (as relays keep them open), each sending one message after
// the other (MAIL, RCPT and DATA pipelined, then the message), for SECONDS. Prints the messages
// answered 250 per second, and the other answers. Each message has its own Message-ID.
//   smtp-load PORT SENDERS SECONDS

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Connection {
  int fd = -1;
  std::string buffer;
  bool Send(const std::string& data) {
    size_t sent = 0;
    while (sent < data.size()) {
      ssize_t n = send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  }
  /// One final reply line's code ("250"), or "" when the connection failed.
  std::string Reply() {
    while (true) {
      size_t end = buffer.find("\r\n");
      while (end != std::string::npos) {
        std::string line = buffer.substr(0, end);
        buffer.erase(0, end + 2);
        if (line.size() >= 4 && line[3] == ' ') return line.substr(0, 3);
        end = buffer.find("\r\n");
      }
      char chunk[4096];
      ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
      if (n <= 0) return "";
      buffer.append(chunk, static_cast<size_t>(n));
    }
  }
};

const std::string kBody =
    "From: Jean Dupont <jean.dupont@example.org>\r\nTo: sales@acme.test\r\n"
    "Subject: Demande de devis\r\nDate: Mon, 30 Nov 2026 09:00:00 +0100\r\n"
    "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    "Bonjour,\r\n\r\nNous souhaiterions recevoir un devis pour 20 licences, avec installation\r\n"
    "sur site dans nos bureaux de Lyon et une formation de deux jours pour l'équipe.\r\n\r\n"
    "Merci d'avance,\r\nJean Dupont\r\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: smtp-load PORT SENDERS SECONDS\n");
    return 2;
  }
  int port = std::atoi(argv[1]);
  int senders = std::atoi(argv[2]);
  auto duration = std::chrono::seconds(std::atoi(argv[3]));
  std::atomic<long> accepted{0};
  std::atomic<long> other{0};
  std::atomic<long> failed{0};
  auto start = std::chrono::steady_clock::now();
  auto deadline = start + duration;
  std::vector<std::thread> threads;
  for (int s = 0; s < senders; ++s) {
    threads.emplace_back([&, s] {
      Connection c;
      c.fd = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in address{};
      address.sin_family = AF_INET;
      address.sin_port = htons(static_cast<uint16_t>(port));
      address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (connect(c.fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
          c.Reply() != "220" || !c.Send("EHLO load.example\r\n") || c.Reply() != "250") {
        ++failed;
        close(c.fd);
        return;
      }
      for (long n = 0; std::chrono::steady_clock::now() < deadline; ++n) {
        std::string id = "<load-" + std::to_string(s) + "-" + std::to_string(n) + "-" +
                         std::to_string(start.time_since_epoch().count()) + "@example.org>";
        if (!c.Send(
                "MAIL FROM:<jean.dupont@example.org>\r\nRCPT TO:<sales@acme.test>\r\nDATA\r\n") ||
            c.Reply() != "250" || c.Reply() != "250" || c.Reply() != "354" ||
            !c.Send("Message-ID: " + id + "\r\n" + kBody + ".\r\n")) {
          ++failed;
          break;
        }
        std::string code = c.Reply();
        if (code == "250") {
          ++accepted;
        } else if (code.empty()) {
          ++failed;
          break;
        } else {
          ++other;
        }
      }
      c.Send("QUIT\r\n");
      close(c.fd);
    });
  }
  for (auto& thread : threads) thread.join();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%.1f %ld %ld\n", static_cast<double>(accepted.load()) / seconds, other.load(),
              failed.load());
  return 0;
}
