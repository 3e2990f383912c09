// dev-broker: a Kafka cluster for the local stack and the tests, in one process and in memory.
// It is librdkafka's mock cluster, so clients speak the real Kafka protocol to it on loopback.
// It creates LeadFlow's topics, prints the bootstrap address (and writes it to a file when
// asked), and runs until SIGINT or SIGTERM. Nothing survives a restart.

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

volatile sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

void Usage() {
  std::fputs(
      "usage: dev-broker [--brokers N] [--partitions N] [--bootstrap-file PATH] [--topic NAME]...\n"
      "  Starts an in-memory Kafka cluster on 127.0.0.1 (librdkafka mock cluster).\n"
      "  --brokers N          brokers in the cluster (default 1)\n"
      "  --partitions N       partitions of each topic (default 6)\n"
      "  --bootstrap-file P   also write the bootstrap address to P (atomically)\n"
      "  --topic NAME         topic to create (default: LeadFlow's topics)\n",
      stderr);
}

}  // namespace

int main(int argc, char** argv) {
  int brokers = 1;
  int partitions = 6;
  std::string bootstrap_file;
  std::vector<std::string> topics;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        Usage();
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--brokers") {
      brokers = std::atoi(next().c_str());
    } else if (arg == "--partitions") {
      partitions = std::atoi(next().c_str());
    } else if (arg == "--bootstrap-file") {
      bootstrap_file = next();
    } else if (arg == "--topic") {
      topics.push_back(next());
    } else {
      Usage();
      return arg == "--help" ? 0 : 2;
    }
  }
  if (brokers < 1 || partitions < 1) {
    Usage();
    return 2;
  }
  if (topics.empty()) {
    topics = {"leadflow.inbound.v1", "leadflow.inbound.dlq.v1", "leadflow.crm-events.v1"};
  }

  char error[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "4", error, sizeof(error));
  rd_kafka_t* handle = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof(error));
  if (handle == nullptr) {
    std::fprintf(stderr, "dev-broker: %s\n", error);
    return 1;
  }
  rd_kafka_mock_cluster_t* cluster = rd_kafka_mock_cluster_new(handle, brokers);
  if (cluster == nullptr) {
    std::fprintf(stderr, "dev-broker: could not start the mock cluster\n");
    return 1;
  }
  for (const std::string& topic : topics) {
    rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(cluster, topic.c_str(), partitions, 1);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      std::fprintf(stderr, "dev-broker: topic %s: %s\n", topic.c_str(), rd_kafka_err2str(err));
      return 1;
    }
  }
  const char* bootstrap = rd_kafka_mock_cluster_bootstraps(cluster);
  if (!bootstrap_file.empty()) {
    std::string temporary = bootstrap_file + ".tmp";
    FILE* file = std::fopen(temporary.c_str(), "w");
    if (file == nullptr || std::fprintf(file, "%s\n", bootstrap) < 0 || std::fclose(file) != 0 ||
        std::rename(temporary.c_str(), bootstrap_file.c_str()) != 0) {
      std::fprintf(stderr, "dev-broker: cannot write %s: %s\n", bootstrap_file.c_str(),
                   std::strerror(errno));
      return 1;
    }
  }
  std::printf("%s\n", bootstrap);
  std::fflush(stdout);
  std::fprintf(stderr, "dev-broker: %d broker(s) at %s, %zu topics x %d partitions\n", brokers,
               bootstrap, topics.size(), partitions);

  struct sigaction action {};
  action.sa_handler = OnSignal;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  while (!g_stop) {
    pause();
  }
  rd_kafka_mock_cluster_destroy(cluster);
  rd_kafka_destroy(handle);
  if (!bootstrap_file.empty()) {
    std::remove(bootstrap_file.c_str());
  }
  return 0;
}
