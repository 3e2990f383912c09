// The fault suite: the four promises checked by counting while the stack is hurt. A load
// generator posts unique web forms over HTTP at a steady rate to a real webform-ingest, which
// publishes to librdkafka's mock cluster (owned by this process, so that the test can make it
// fail); a real crm-core consumes into a PostgreSQL and a Redis that this suite starts on its own
// ports, because it stops them. One fault per test, then the counts.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <pqxx/pqxx>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "e2e/stack.h"
#include "kafka/types.h"
#include "leadflow/events/v1/inbound_event.pb.h"
#include "testing/testing.h"

namespace leadflow::fault {
namespace {

constexpr int kPartitions = 6;
constexpr int kFormsPerSecond = 100;
constexpr int kSenders = 160;
constexpr auto kLoadDuration = std::chrono::seconds(10);
// The fault starts this long after the load and the load goes on after it ends, so that the
// stack is seen working before, during and after.
constexpr auto kFaultStart = std::chrono::seconds(3);
constexpr auto kFaultLength = std::chrono::seconds(3);

std::string ServicesScript() {
  return std::string(LEADFLOW_SOURCE_DIR) + "/deploy/local/services.sh";
}

void RunOrThrow(const std::string& command) {
  int code = 0;
  std::string output = testing::Shell(command + " 2>&1", &code);
  if (code != 0) {
    throw std::runtime_error(command + " failed: " + output);
  }
}

// True when a server could listen on `port` of the loopback now (with SO_REUSEADDR, as
// PostgreSQL and Redis bind, so that connections left in TIME_WAIT do not count).
bool PortFree(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) {
    return false;
  }
  int on = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool free = bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  close(fd);
  return free;
}

// Starts a server on a port fixed for the run. The port was only seen free when the suite
// began, not reserved: while the server is down anything on the machine may take it (an
// outgoing connection's ephemeral port, another test's free-port pick). Its clients' settings
// name that port, so the start is tried again on it: five starts at most, each after a bounded
// wait for the port to be free again.
void StartOnPort(const std::string& command, int port) {
  std::string output;
  for (int start = 0; start < 5; ++start) {
    if (start > 0) {
      testing::WaitFor([&] { return PortFree(port); }, std::chrono::seconds(10));
    }
    int code = 0;
    output = testing::Shell(command + " 2>&1", &code);
    if (code == 0) {
      return;
    }
    std::cerr << command << " failed (start " << start + 1 << " of 5): " << output << "\n";
  }
  throw std::runtime_error(command + " failed five times: " + output);
}

// A PostgreSQL and a Redis of the suite's own (the test command's are shared by other tests and
// must not be stopped), in a temporary directory readable by the postgres user.
class Servers {
 public:
  Servers() {
    char pattern[] = "/tmp/leadflow-fault.XXXXXX";
    dir_ = mkdtemp(pattern);
    std::filesystem::permissions(
        dir_, std::filesystem::perms::owner_all | std::filesystem::perms::group_read |
                  std::filesystem::perms::group_exec | std::filesystem::perms::others_read |
                  std::filesystem::perms::others_exec);
    pg_port_ = testing::FreePort();
    redis_port_ = testing::FreePort();
    StartPostgres();
    StartRedis();
  }
  ~Servers() {
    testing::Shell(ServicesScript() + " pg-stop " + dir_ + "/pg immediate >/dev/null 2>&1");
    testing::Shell(ServicesScript() + " redis-stop " + dir_ + "/redis >/dev/null 2>&1");
    std::filesystem::remove_all(dir_);
  }
  void StartPostgres() {
    StartOnPort(absl::StrCat(ServicesScript(), " pg-start ", dir_, "/pg ", pg_port_), pg_port_);
  }
  /// A crash of the database server: no shutdown checkpoint, every connection cut.
  void CrashPostgres() { RunOrThrow(ServicesScript() + " pg-stop " + dir_ + "/pg immediate"); }
  void StartRedis() {
    StartOnPort(absl::StrCat(ServicesScript(), " redis-start ", dir_, "/redis ", redis_port_),
                redis_port_);
  }
  void StopRedis() { RunOrThrow(ServicesScript() + " redis-stop " + dir_ + "/redis"); }
  std::string admin_url() const {
    return absl::StrCat("postgresql://postgres@127.0.0.1:", pg_port_, "/postgres");
  }
  redis::Options RedisOptions() const {
    return {.host = "127.0.0.1", .port = redis_port_, .key_prefix = testing::UniqueName("f") + ":"};
  }

 private:
  std::string dir_;
  int pg_port_ = 0;
  int redis_port_ = 0;
};

Servers* g_servers = nullptr;

class ServersEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { g_servers = new Servers(); }
  void TearDown() override {
    delete g_servers;
    g_servers = nullptr;
  }
};

struct Answer {
  int status = 0;  // 0: no HTTP answer (connection refused or cut)
  std::string event_id;
};

// One HTTP/1.1 POST over a fresh loopback connection; the answer is read to the end.
Answer Post(int port, const std::string& path, const std::string& json) {
  Answer answer;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) {
    return answer;
  }
  timeval timeout{.tv_sec = 15, .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    close(fd);
    return answer;
  }
  std::string request = absl::StrCat("POST ", path,
                                     " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                                     "application/json\r\nConnection: close\r\nContent-Length: ",
                                     json.size(), "\r\n\r\n", json);
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    close(fd);
    return answer;
  }
  std::string response;
  char buffer[4096];
  for (int reads = 0; reads < 1000; ++reads) {
    ssize_t got = recv(fd, buffer, sizeof(buffer), 0);
    if (got <= 0) {
      break;
    }
    response.append(buffer, static_cast<size_t>(got));
  }
  close(fd);
  if (response.rfind("HTTP/1.1 ", 0) != 0 || response.size() < 12) {
    return answer;
  }
  answer.status = std::atoi(response.substr(9, 3).c_str());
  const std::string marker = "\"event_id\":\"";
  auto at = response.find(marker);
  if (at != std::string::npos) {
    auto end = response.find('"', at + marker.size());
    answer.event_id = response.substr(at + marker.size(), end - at - marker.size());
  }
  return answer;
}

// Form k comes from sender SenderOf(k): most forms from a new person, every fifth from the sender
// of an earlier form (a repeat contact), so that both "new lead" and "repeat" are exercised.
int SenderOf(int form) { return form % 5 == 4 ? form - 3 : form; }

std::string PhoneOf(int sender) { return "+3367" + std::to_string(1000000 + sender); }

// Posts kFormsPerSecond unique forms a second for kLoadDuration, each on time whatever the
// answers before it, and records every answer.
class LoadGenerator {
 public:
  LoadGenerator(int port, std::string run) : port_(port), run_(std::move(run)) {
    total_ = kFormsPerSecond * static_cast<int>(kLoadDuration.count());
    answers_.resize(static_cast<size_t>(total_));
  }

  void Start() {
    start_ = std::chrono::steady_clock::now();
    // Enough threads that answers held back by a fault (up to the delivery timeout, 1.2 s) do
    // not slow the sending down: the rate stays steady through the fault.
    for (int i = 0; i < kSenders; ++i) {
      threads_.emplace_back([this] { Work(); });
    }
  }
  void Join() {
    for (std::thread& thread : threads_) {
      thread.join();
    }
  }
  std::chrono::steady_clock::time_point start() const { return start_; }
  /// From now on posts go to `port` (webform-ingest restarted on a new port).
  void Follow(int port) { port_ = port; }
  int total() const { return total_; }
  const Answer& answer(int form) const { return answers_[static_cast<size_t>(form)]; }
  /// The form number written in a message's text, -1 when it is not one of this run's.
  int FormOf(const std::string& message) const {
    std::string prefix = "fault form " + run_ + " #";
    if (message.rfind(prefix, 0) != 0) {
      return -1;
    }
    return std::atoi(message.c_str() + prefix.size());
  }

 private:
  void Work() {
    for (int form = next_++; form < total_; form = next_++) {
      std::this_thread::sleep_until(start_ +
                                    std::chrono::microseconds(1000000LL * form / kFormsPerSecond));
      int sender = SenderOf(form);
      std::string json =
          absl::StrCat(R"({"name":"Sender )", sender, R"(","phone":")", PhoneOf(sender),
                       R"(","city":"Lyon","message":"fault form )", run_, " #", form, R"("})");
      answers_[static_cast<size_t>(form)] =
          Post(port_.load(), "/v1/forms/contact/submissions", json);
    }
  }

  std::atomic<int> port_;
  std::string run_;
  int total_ = 0;
  std::atomic<int> next_{0};
  std::vector<Answer> answers_;
  std::vector<std::thread> threads_;
  std::chrono::steady_clock::time_point start_;
};

class FaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(g_servers, nullptr);
    database_ = std::make_unique<testing::TempDatabase>(g_servers->admin_url());
    ASSERT_TRUE(e2e::Migrate(database_->url()));
    kafka_.CreateTopic(kafka::kInboundTopic, kPartitions);
    kafka_.CreateTopic(kafka::kInboundDlqTopic, 1);
    group_ = testing::UniqueName("fault");
    core_ = std::make_unique<e2e::CrmCore>(
        database_->url(), kafka_.bootstrap(), group_,
        std::map<std::string, std::string>{{"CRM_BATCH_MAX_EVENTS", "50"}},
        g_servers->RedisOptions());
    // A delivery timeout well inside the fault, so that produce failures become 503s.
    ingest_ = std::make_unique<e2e::WebformIngest>(
        kafka_.bootstrap(),
        std::map<std::string, std::string>{{"WEBFORM_DELIVERY_TIMEOUT_MS", "1000"}},
        g_servers->RedisOptions());
    ASSERT_TRUE(core_->WaitReady()) << core_->process().Log();
    ASSERT_TRUE(ingest_->WaitReady()) << ingest_->process().Log();
  }

  void TearDown() override {
    // Servers a failed case left stopped are started again for the next one.
    g_servers->StartPostgres();
    g_servers->StartRedis();
    kafka_.RestoreProduceRequests();
    ingest_.reset();
    core_.reset();
    database_.reset();
  }

  // Runs the load with `fault` started kFaultStart into it and `recover` kFaultLength later,
  // then counts (see the file comment) and prints the counts under `name`.
  void RunCase(const std::string& name, const std::function<void()>& fault,
               const std::function<void()>& recover) {
    LoadGenerator load(ingest_->port(), testing::UniqueName(name));
    load_ = &load;
    load.Start();
    std::this_thread::sleep_until(load.start() + kFaultStart);
    fault();
    std::this_thread::sleep_until(load.start() + kFaultStart + kFaultLength);
    recover();
    load.Join();
    load_ = nullptr;

    // What HTTP said.
    std::set<std::string> accepted;
    int refused = 0;
    int unavailable = 0;
    int other = 0;
    for (int form = 0; form < load.total(); ++form) {
      const Answer& answer = load.answer(form);
      if (answer.status >= 200 && answer.status < 300) {
        ASSERT_FALSE(answer.event_id.empty()) << "form " << form;
        accepted.insert(answer.event_id);
      } else if (answer.status == 503) {
        ++unavailable;
      } else if (answer.status == 0) {
        ++refused;
      } else {
        ++other;
      }
    }
    unavailable_ = unavailable;
    refused_ = refused;

    // What Kafka took: the topic read back, each event mapped to the form (and so the sender)
    // that the load generator made it from.
    std::vector<kafka::Message> messages = testing::ReadTopic(
        kafka_.bootstrap(), kafka::kInboundTopic, kPartitions, std::chrono::seconds(60));
    std::set<std::string> on_topic;
    std::set<int> senders;
    for (const kafka::Message& message : messages) {
      events::v1::InboundEvent event;
      ASSERT_TRUE(event.ParseFromString(message.value));
      int form = load.FormOf(event.web_form().message());
      ASSERT_GE(form, 0) << event.web_form().message();
      on_topic.insert(event.event_id());
      senders.insert(SenderOf(form));
    }
    int64_t accepted_not_on_topic = 0;
    for (const std::string& id : accepted) {
      accepted_not_on_topic += on_topic.count(id) == 0 ? 1 : 0;
    }

    // crm-core has consumed the whole topic: its group committed every partition's end.
    ASSERT_TRUE(testing::WaitFor(
        [&] {
          return testing::GroupReachedEnd(kafka_.bootstrap(), group_, kafka::kInboundTopic,
                                          kPartitions);
        },
        std::chrono::seconds(120)))
        << core_->process().Log();

    // What the database holds.
    pqxx::connection connection(database_->url());
    pqxx::read_transaction work(connection);
    std::map<std::string, int> processed;
    for (const auto& row : work.exec("SELECT event_id FROM processed_events")) {
      ++processed[row[0].as<std::string>()];
    }
    int64_t accepted_not_processed = 0;
    int64_t accepted_processed_twice = 0;
    for (const std::string& id : accepted) {
      auto found = processed.find(id);
      accepted_not_processed += found == processed.end() ? 1 : 0;
      accepted_processed_twice += found != processed.end() && found->second > 1 ? 1 : 0;
    }
    int64_t on_topic_not_processed = 0;
    for (const std::string& id : on_topic) {
      on_topic_not_processed += processed.count(id) == 0 ? 1 : 0;
    }
    auto count = [&](const std::string& sql) { return work.exec1(sql)[0].as<int64_t>(); };
    int64_t leads = count("SELECT count(*) FROM leads");
    int64_t activities = count("SELECT count(*) FROM activities");
    int64_t shared_identities = count(
        "SELECT count(*) FROM (SELECT kind, value FROM lead_identities GROUP BY kind, value"
        " HAVING count(DISTINCT lead_id) > 1) AS shared");
    int64_t dead_lettered = static_cast<int64_t>(
        testing::ReadTopic(kafka_.bootstrap(), kafka::kInboundDlqTopic, 1, std::chrono::seconds(30))
            .size());

    std::cout << "fault " << name << ": posted " << load.total() << ", 2xx " << accepted.size()
              << ", 503 " << unavailable << ", no answer " << refused << ", other " << other
              << "; on the topic " << messages.size() << " messages, " << on_topic.size()
              << " events; processed_events " << processed.size() << "; 2xx not on the topic "
              << accepted_not_on_topic << ", 2xx not processed " << accepted_not_processed
              << ", 2xx processed twice " << accepted_processed_twice << "; leads " << leads
              << " for " << senders.size() << " senders; activities " << activities
              << "; identities on two leads " << shared_identities << "; dead-lettered "
              << dead_lettered << "\n";

    EXPECT_GT(accepted.size(), 0u);
    EXPECT_EQ(other, 0);
    EXPECT_EQ(accepted_not_on_topic, 0) << "2xx given for events Kafka did not take";
    EXPECT_EQ(accepted_not_processed, 0) << "accepted events lost";
    EXPECT_EQ(accepted_processed_twice, 0);
    EXPECT_EQ(on_topic_not_processed, 0) << "events on the topic never applied";
    EXPECT_EQ(static_cast<int64_t>(processed.size()), static_cast<int64_t>(on_topic.size()));
    EXPECT_EQ(activities, static_cast<int64_t>(on_topic.size())) << "an event without one effect";
    EXPECT_EQ(leads, static_cast<int64_t>(senders.size()));
    EXPECT_EQ(shared_identities, 0);
    EXPECT_EQ(dead_lettered, 0);
  }

  int64_t Sql(const std::string& sql) { return e2e::Count(database_->url(), sql); }

  // Messages below crm-core's committed offsets, all partitions together; -1 when the broker
  // did not answer.
  int64_t MessagesBelowCommitted() {
    auto committed =
        testing::CommittedOffsets(kafka_.bootstrap(), group_, kafka::kInboundTopic, kPartitions);
    if (committed.size() != static_cast<size_t>(kPartitions)) {
      return -1;
    }
    int64_t below = 0;
    for (const auto& [partition, offset] : committed) {
      below += std::max<int64_t>(offset, 0);  // -1: nothing committed yet
    }
    return below;
  }

  // SIGKILLs crm-core at a moment when it has applied events whose offsets its group has not
  // committed yet, and returns how many: events the restarted crm-core must receive again and
  // skip. Offsets are stored after a batch is applied and committed every second, so such
  // events exist almost always, but not at every instant (a commit may just have caught up).
  // crm-core is frozen (SIGSTOP) for a consistent look: applied events (processed_events, each
  // message of the load a distinct event, applied in partition order) minus the messages below
  // the committed offsets. When nothing is behind it runs on until it has applied more and is
  // looked at again, twenty looks at most; it is killed frozen, so the kill leaves what was seen.
  int64_t KillCrmCoreBehindTheDatabase() {
    testing::Process& process = core_->process();
    auto frozen = [&] {
      std::ifstream stat("/proc/" + std::to_string(process.pid()) + "/stat");
      std::string line;
      std::getline(stat, line);
      auto end = line.rfind(')');
      return end != std::string::npos && end + 2 < line.size() &&
             (line[end + 2] == 'T' || line[end + 2] == 't');
    };
    int64_t behind = 0;
    for (int look = 0; look < 20 && behind <= 0; ++look) {
      process.Signal(SIGSTOP);
      if (testing::WaitFor(frozen, std::chrono::seconds(5))) {
        // The offsets are read before and after the database, so that an offset commit sent
        // just before the freeze cannot land unseen between the two reads.
        int64_t committed = MessagesBelowCommitted();
        int64_t applied = Sql("SELECT count(*) FROM processed_events");
        if (committed >= 0 && committed == MessagesBelowCommitted()) {
          behind = applied - committed;
        }
      }
      if (behind <= 0) {
        process.Signal(SIGCONT);
        int64_t applied = Sql("SELECT count(*) FROM processed_events");
        testing::WaitFor([&] { return Sql("SELECT count(*) FROM processed_events") > applied; },
                         std::chrono::seconds(2));
      }
    }
    process.Signal(SIGKILL);
    return behind;
  }

  // The restarted crm-core's /metrics.
  std::string CoreMetrics() {
    return testing::Shell("curl -s http://127.0.0.1:" + std::to_string(core_->http_port()) +
                          "/metrics");
  }

  testing::MockKafka kafka_;
  std::unique_ptr<testing::TempDatabase> database_;
  std::string group_;
  std::unique_ptr<e2e::CrmCore> core_;
  std::unique_ptr<e2e::WebformIngest> ingest_;
  int unavailable_ = 0;
  int refused_ = 0;
  LoadGenerator* load_ = nullptr;  // during RunCase
};

// Protects: accepted means durable and exactly-once effects while PostgreSQL crashes
// (`pg_ctl stop -m immediate`) and comes back: crm-core retries its batch, nothing accepted is
// lost or doubled.
TEST_F(FaultTest, PostgresCrashAndRestart) {
  RunCase(
      "postgres-crash", [] { g_servers->CrashPostgres(); }, [] { g_servers->StartPostgres(); });
  // The crash really hit crm-core: batches failed and were retried.
  EXPECT_NE(core_->process().Log().find("not applied"), std::string::npos);
}

// Protects: Redis is a fast path only: stopped and started again under load, nothing accepted is
// lost or doubled (webform-ingest's double-submit check and crm-core's processed marks fail open).
TEST_F(FaultTest, RedisStopAndStart) {
  RunCase(
      "redis-stop", [] { g_servers->StopRedis(); }, [] { g_servers->StartRedis(); });
  // The outage really reached crm-core: its Redis calls failed (and it went on without them).
  std::string metrics = CoreMetrics();
  std::optional<double> failures = testing::MetricValue(metrics, "crm_redis_failures_total");
  ASSERT_TRUE(failures.has_value()) << metrics;
  EXPECT_GT(*failures, 0) << metrics;
  // And an operator reading the log sees it begin and end.
  const std::string log = core_->process().Log();
  EXPECT_NE(log.find("redis failed"), std::string::npos) << log;
  EXPECT_NE(log.find("redis answers again"), std::string::npos) << log;
}

// Protects: exactly-once effects across a crm-core crash: SIGKILLed under load and restarted, it
// receives again what it had applied but not committed, and skips it (each event applied once).
TEST_F(FaultTest, CrmCoreKilledAndRestarted) {
  int64_t behind = 0;
  RunCase(
      "crm-core-kill", [&] { behind = KillCrmCoreBehindTheDatabase(); },
      [&] { ASSERT_TRUE(core_->Restart()) << core_->process().Log(); });
  // The kill really left work to redo, and the restarted crm-core received all of it again and
  // skipped it: by the Redis marks its predecessor wrote after committing, or by the database's
  // unique event id for what it had committed without marking.
  std::string metrics = CoreMetrics();
  std::optional<double> by_redis =
      testing::MetricValue(metrics, R"(crm_inbound_duplicates_total{detected_by="redis"})");
  std::optional<double> by_database =
      testing::MetricValue(metrics, R"(crm_inbound_duplicates_total{detected_by="database"})");
  ASSERT_TRUE(by_redis.has_value() && by_database.has_value()) << metrics;
  std::cout << "fault crm-core-kill: applied events past the committed offsets at the kill "
            << behind << "; skipped as duplicates after the restart " << *by_redis << " by Redis, "
            << *by_database << " by the database\n";
  EXPECT_GT(behind, 0) << "no kill landed with applied events past the committed offsets";
  EXPECT_GE(*by_redis + *by_database, static_cast<double>(behind));
}

// Protects: accepted means durable across a webform-ingest crash: requests in flight at the
// SIGKILL get no 2xx (the client retries), every 2xx already given is on the topic and applied.
TEST_F(FaultTest, WebformIngestKilledAndRestarted) {
  RunCase(
      "webform-ingest-kill", [&] { ingest_->process().Signal(SIGKILL); },
      [&] {
        // On new ports (the old one may have been taken meanwhile); the load follows.
        ASSERT_TRUE(ingest_->Restart()) << ingest_->process().Log();
        load_->Follow(ingest_->port());
      });
  // The crash really cost answers: posts while it was down found nobody listening.
  EXPECT_GT(refused_, 0);
}

// Protects: no 2xx for an event Kafka did not take: while the broker fails every produce request,
// webform-ingest answers 503 (the sender retries), and what it answered 2xx is on the topic.
TEST_F(FaultTest, BrokerRejectsProduceRequests) {
  RunCase(
      "broker-produce-errors", [&] { kafka_.FailProduceRequests(); },
      [&] { kafka_.RestoreProduceRequests(); });
  // The fault really reached the answers.
  EXPECT_GT(unavailable_, 0);
}

}  // namespace
}  // namespace leadflow::fault

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new leadflow::fault::ServersEnvironment());
  return RUN_ALL_TESTS();
}
