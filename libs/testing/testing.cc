#include "testing/testing.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <pqxx/pqxx>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "absl/strings/str_cat.h"

namespace leadflow::testing {
namespace {

std::string RequiredEnv(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') {
    throw std::runtime_error(absl::StrCat(
        name, " is not set: run the tests through deploy/test.sh, which starts the services"));
  }
  return value;
}

std::string ReplaceDatabase(const std::string& url, const std::string& database) {
  // postgresql://user@host:port/dbname[?params]
  auto query = url.find('?');
  std::string base = url.substr(0, query);
  std::string params = query == std::string::npos ? "" : url.substr(query);
  auto slash = base.rfind('/');
  return base.substr(0, slash + 1) + database + params;
}

}  // namespace

std::string UniqueName(const std::string& stem) {
  static std::atomic<int> counter{0};
  return absl::StrCat(stem, "_", getpid(), "_",
                      std::chrono::steady_clock::now().time_since_epoch().count() % 100000000, "_",
                      counter++);
}

TempDatabase::TempDatabase(std::string admin_url) : admin_url_(std::move(admin_url)) {
  if (admin_url_.empty()) {
    admin_url_ = RequiredEnv("LEADFLOW_TEST_PG_URL");
  }
  name_ = UniqueName("lf_test");
  pqxx::connection connection(admin_url_);
  pqxx::nontransaction work(connection);
  work.exec0("CREATE DATABASE " + connection.quote_name(name_));
  url_ = ReplaceDatabase(admin_url_, name_);
}

TempDatabase::~TempDatabase() {
  try {
    pqxx::connection connection(admin_url_);
    pqxx::nontransaction work(connection);
    work.exec0("DROP DATABASE IF EXISTS " + connection.quote_name(name_) + " WITH (FORCE)");
  } catch (const std::exception& error) {
    std::fprintf(stderr, "could not drop %s: %s\n", name_.c_str(), error.what());
  }
}

redis::Options RedisTestOptions() {
  redis::Options options;
  options.host = RequiredEnv("LEADFLOW_TEST_REDIS_HOST");
  options.port = std::stoi(RequiredEnv("LEADFLOW_TEST_REDIS_PORT"));
  options.key_prefix = UniqueName("t") + ":";
  return options;
}

MockKafka::MockKafka(int brokers) {
  char error[256];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "3", error, sizeof(error));
  handle_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof(error));
  if (handle_ == nullptr) {
    throw std::runtime_error(error);
  }
  auto* cluster = rd_kafka_mock_cluster_new(handle_, brokers);
  if (cluster == nullptr) {
    throw std::runtime_error("could not start the mock Kafka cluster");
  }
  cluster_ = cluster;
  bootstrap_ = rd_kafka_mock_cluster_bootstraps(cluster);
}

MockKafka::~MockKafka() {
  rd_kafka_mock_cluster_destroy(static_cast<rd_kafka_mock_cluster_t*>(cluster_));
  rd_kafka_destroy(handle_);
}

void MockKafka::CreateTopic(const std::string& name, int partitions) {
  rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(
      static_cast<rd_kafka_mock_cluster_t*>(cluster_), name.c_str(), partitions, 1);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw std::runtime_error(absl::StrCat("create topic ", name, ": ", rd_kafka_err2str(err)));
  }
}

// The Kafka protocol's ProduceRequest (librdkafka keeps its RD_KAFKAP_ names private).
constexpr int16_t kProduceApiKey = 0;

void MockKafka::FailProduceRequests() {
  // More errors than the test can use up; RestoreProduceRequests clears what is left.
  std::vector<rd_kafka_resp_err_t> errors(1000000, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS);
  rd_kafka_mock_push_request_errors_array(static_cast<rd_kafka_mock_cluster_t*>(cluster_),
                                          kProduceApiKey, errors.size(), errors.data());
}

void MockKafka::RestoreProduceRequests() {
  rd_kafka_mock_clear_request_errors(static_cast<rd_kafka_mock_cluster_t*>(cluster_),
                                     kProduceApiKey);
}

namespace {

using KafkaHandle = std::unique_ptr<rd_kafka_t, decltype(&rd_kafka_destroy)>;
using PartitionList = std::unique_ptr<rd_kafka_topic_partition_list_t,
                                      decltype(&rd_kafka_topic_partition_list_destroy)>;

KafkaHandle NewConsumer(const std::string& bootstrap, const std::string& group) {
  char error[256];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), error, sizeof(error));
  rd_kafka_conf_set(conf, "group.id", group.c_str(), error, sizeof(error));
  rd_kafka_conf_set(conf, "enable.auto.commit", "false", error, sizeof(error));
  rd_kafka_conf_set(conf, "log_level", "3", error, sizeof(error));
  rd_kafka_t* handle = rd_kafka_new(RD_KAFKA_CONSUMER, conf, error, sizeof(error));
  if (handle == nullptr) {
    throw std::runtime_error(error);
  }
  return KafkaHandle(handle, &rd_kafka_destroy);
}

}  // namespace

std::map<int32_t, int64_t> CommittedOffsets(const std::string& bootstrap, const std::string& group,
                                            const std::string& topic, int partitions) {
  KafkaHandle consumer = NewConsumer(bootstrap, group);
  PartitionList list(rd_kafka_topic_partition_list_new(partitions),
                     &rd_kafka_topic_partition_list_destroy);
  for (int p = 0; p < partitions; ++p) {
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p);
  }
  std::map<int32_t, int64_t> offsets;
  if (rd_kafka_committed(consumer.get(), list.get(), 10000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return offsets;
  }
  for (int i = 0; i < list->cnt; ++i) {
    const auto& entry = list->elems[i];
    if (entry.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return {};
    }
    offsets[entry.partition] = entry.offset < 0 ? -1 : entry.offset;
  }
  return offsets;
}

std::map<int32_t, int64_t> HighWatermarks(const std::string& bootstrap, const std::string& topic,
                                          int partitions) {
  KafkaHandle consumer = NewConsumer(bootstrap, UniqueName("watermarks"));
  std::map<int32_t, int64_t> marks;
  for (int p = 0; p < partitions; ++p) {
    int64_t low = 0;
    int64_t high = 0;
    if (rd_kafka_query_watermark_offsets(consumer.get(), topic.c_str(), p, &low, &high, 10000) !=
        RD_KAFKA_RESP_ERR_NO_ERROR) {
      return {};
    }
    marks[p] = high;
  }
  return marks;
}

bool GroupReachedEnd(const std::string& bootstrap, const std::string& group,
                     const std::string& topic, int partitions) {
  auto marks = HighWatermarks(bootstrap, topic, partitions);
  auto committed = CommittedOffsets(bootstrap, group, topic, partitions);
  if (marks.size() != static_cast<size_t>(partitions) || committed.size() != marks.size()) {
    return false;
  }
  for (const auto& [partition, high] : marks) {
    // An empty partition needs no commit.
    if (high > 0 && committed[partition] != high) {
      return false;
    }
  }
  return true;
}

std::vector<kafka::Message> ReadTopic(const std::string& bootstrap, const std::string& topic,
                                      int partitions, std::chrono::milliseconds timeout) {
  auto marks = HighWatermarks(bootstrap, topic, partitions);
  if (marks.size() != static_cast<size_t>(partitions)) {
    throw std::runtime_error("no watermarks for " + topic);
  }
  KafkaHandle consumer = NewConsumer(bootstrap, UniqueName("reader"));
  PartitionList list(rd_kafka_topic_partition_list_new(partitions),
                     &rd_kafka_topic_partition_list_destroy);
  size_t expected = 0;
  for (const auto& [partition, high] : marks) {
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), partition)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
    expected += static_cast<size_t>(high);
  }
  rd_kafka_assign(consumer.get(), list.get());
  std::vector<kafka::Message> messages;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (messages.size() < expected && std::chrono::steady_clock::now() < deadline) {
    rd_kafka_message_t* raw = rd_kafka_consumer_poll(consumer.get(), 100);
    if (raw == nullptr) {
      continue;
    }
    if (raw->err == RD_KAFKA_RESP_ERR_NO_ERROR && raw->offset < marks[raw->partition]) {
      kafka::Message message;
      message.topic = topic;
      message.partition = raw->partition;
      message.offset = raw->offset;
      if (raw->key != nullptr) {
        message.key.assign(static_cast<const char*>(raw->key), raw->key_len);
      }
      if (raw->payload != nullptr) {
        message.value.assign(static_cast<const char*>(raw->payload), raw->len);
      }
      rd_kafka_headers_t* headers = nullptr;
      if (rd_kafka_message_headers(raw, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char* name = nullptr;
        const void* value = nullptr;
        size_t size = 0;
        for (size_t i = 0; rd_kafka_header_get_all(headers, i, &name, &value, &size) ==
                           RD_KAFKA_RESP_ERR_NO_ERROR;
             ++i) {
          message.headers.push_back(
              {name, value == nullptr ? "" : std::string(static_cast<const char*>(value), size)});
        }
      }
      messages.push_back(std::move(message));
    }
    rd_kafka_message_destroy(raw);
  }
  rd_kafka_consumer_close(consumer.get());
  if (messages.size() != expected) {
    throw std::runtime_error(
        absl::StrCat("read ", messages.size(), " of ", expected, " messages of ", topic));
  }
  return messages;
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  socklen_t length = sizeof(address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

std::optional<double> MetricValue(const std::string& exposition, const std::string& series) {
  std::istringstream lines(exposition);
  for (std::string line; std::getline(lines, line);) {
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
        line[series.size()] == ' ') {
      return std::strtod(line.c_str() + series.size() + 1, nullptr);
    }
  }
  return std::nullopt;
}

bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return condition();
}

std::string BuildDir() { return RequiredEnv("LEADFLOW_BUILD_DIR"); }

Process::Process(std::vector<std::string> argv, std::map<std::string, std::string> env,
                 std::string log_name) {
  log_path_ = absl::StrCat(BuildDir(), "/test-logs/", UniqueName(log_name), ".log");
  std::system(absl::StrCat("mkdir -p ", BuildDir(), "/test-logs").c_str());
  pid_ = fork();
  if (pid_ < 0) {
    throw std::runtime_error("fork failed");
  }
  if (pid_ == 0) {
    int fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    int null_fd = open("/dev/null", O_RDONLY);
    dup2(null_fd, STDIN_FILENO);
    for (const auto& [name, value] : env) {
      setenv(name.c_str(), value.c_str(), 1);
    }
    std::vector<char*> args;
    for (std::string& arg : argv) {
      args.push_back(arg.data());
    }
    args.push_back(nullptr);
    execv(args[0], args.data());
    std::perror("execv");
    _exit(127);
  }
}

Process::~Process() {
  if (Running()) {
    Signal(SIGKILL);
    Wait(std::chrono::seconds(10));
  }
}

void Process::Signal(int signal) {
  if (!reaped_) {
    kill(pid_, signal);
  }
}

bool Process::Running() {
  if (reaped_) {
    return false;
  }
  pid_t result = waitpid(pid_, &status_, WNOHANG);
  if (result == pid_) {
    reaped_ = true;
    return false;
  }
  return true;
}

int Process::Wait(std::chrono::milliseconds timeout) {
  if (!WaitFor([this] { return !Running(); }, timeout)) {
    return -1;
  }
  return status_;
}

std::string Process::Log() const {
  std::ifstream file(log_path_);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

DevBroker::DevBroker(int partitions) {
  std::string file = absl::StrCat(BuildDir(), "/test-logs/", UniqueName("bootstrap"), ".txt");
  process_ = std::make_unique<Process>(
      std::vector<std::string>{BuildDir() + "/deploy/local/dev-broker", "--partitions",
                               std::to_string(partitions), "--bootstrap-file", file},
      std::map<std::string, std::string>{}, "dev-broker");
  WaitFor(
      [&] {
        std::ifstream in(file);
        std::getline(in, bootstrap_);
        return !bootstrap_.empty();
      },
      std::chrono::seconds(20));
  if (bootstrap_.empty()) {
    throw std::runtime_error("dev-broker did not start: " + process_->Log());
  }
}

void DevBroker::Kill() {
  process_->Signal(SIGKILL);
  process_->Wait(std::chrono::seconds(10));
}

events::v1::InboundEvent WebFormEvent(const std::string& event_id, const std::string& phone,
                                      const std::string& email, const std::string& name,
                                      const std::string& message) {
  events::v1::InboundEvent event;
  event.set_event_id(event_id);
  if (!phone.empty()) {
    auto* identity = event.add_identities();
    identity->set_kind(events::v1::Identity::PHONE);
    identity->set_value(phone);
  }
  if (!email.empty()) {
    auto* identity = event.add_identities();
    identity->set_kind(events::v1::Identity::EMAIL);
    identity->set_value(email);
  }
  event.mutable_person()->set_first_name(name);
  event.mutable_person()->set_city("Lyon");
  event.mutable_web_form()->set_form_id("contact");
  event.mutable_web_form()->set_message(message);
  return event;
}

kafka::Message InboundMessage(const events::v1::InboundEvent& event) {
  static std::atomic<int64_t> next_offset{1000};
  kafka::Message message;
  message.topic = kafka::kInboundTopic;
  message.partition = 0;
  message.offset = next_offset++;
  message.key = event.identities_size() > 0 ? event.identities(0).value() : "";
  event.SerializeToString(&message.value);
  return message;
}

std::string ShellQuote(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

std::string Shell(const std::string& command, int* exit_code) {
  std::string output;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    throw std::runtime_error("popen failed");
  }
  char buffer[4096];
  size_t read = 0;
  while ((read = fread(buffer, 1, sizeof(buffer), pipe)) > 0) {
    output.append(buffer, read);
  }
  int status = pclose(pipe);
  if (exit_code != nullptr) {
    *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  return output;
}

}  // namespace leadflow::testing
