// The SMTP listener of email-ingest answering 250 to every message without parsing or
// publishing it: the baseline of bench/run.sh case (d).
//   smtp-baseline PORT

#include <csignal>
#include <cstdlib>
#include <iostream>

#include "email-ingest/smtp_server.h"
#include "metrics/metrics.h"

int main(int argc, char** argv) {
  using namespace leadflow::email;
  if (argc != 2) {
    std::cerr << "usage: smtp-baseline PORT\n";
    return 2;
  }
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  leadflow::metrics::Registry registry;
  SmtpServerOptions options;  // the defaults email-ingest runs with
  options.port = std::atoi(argv[1]);
  SmtpServer server(
      options, RecipientPolicy::Parse("acme.test"),
      [](ReceivedMessage, std::function<void(DeliveryOutcome, std::string)> done) {
        done(DeliveryOutcome::kAccepted, "");
      },
      &registry);
  if (!server.Start().ok()) return 1;
  int signal = 0;
  sigwait(&signals, &signal);
  server.Stop(std::chrono::seconds(1));
  return 0;
}
