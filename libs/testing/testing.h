#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kafka/types.h"
#include "leadflow/events/v1/inbound_event.pb.h"
#include "redis/client.h"

struct rd_kafka_s;

namespace leadflow::testing {

/// A fresh, empty PostgreSQL database with a unique name on the test server
/// (LEADFLOW_TEST_PG_URL, set by deploy/test.sh); dropped at destruction.
class TempDatabase {
 public:
  /// `admin_url`: the server to create it on; empty means LEADFLOW_TEST_PG_URL.
  explicit TempDatabase(std::string admin_url = "");
  ~TempDatabase();
  const std::string& url() const { return url_; }
  const std::string& name() const { return name_; }

 private:
  std::string admin_url_;
  std::string name_;
  std::string url_;
};

/// The test Redis (LEADFLOW_TEST_REDIS_HOST/PORT) with a key prefix unique to this call.
redis::Options RedisTestOptions();

/// librdkafka's mock cluster in this process: real Kafka protocol on loopback.
class MockKafka {
 public:
  explicit MockKafka(int brokers = 1);
  ~MockKafka();
  const std::string& bootstrap() const { return bootstrap_; }
  void CreateTopic(const std::string& name, int partitions);
  /// From now on every produce request fails with a retriable error (NOT_ENOUGH_REPLICAS), as
  /// when the cluster has lost its in-sync replicas; other requests are served as usual.
  void FailProduceRequests();
  /// Produce requests are served again.
  void RestoreProduceRequests();

 private:
  rd_kafka_s* handle_ = nullptr;
  void* cluster_ = nullptr;
  std::string bootstrap_;
};

/// The offsets `group` committed on each partition of `topic` (-1 where it committed none),
/// asked of the broker as any client of the group would; empty when the broker did not answer.
std::map<int32_t, int64_t> CommittedOffsets(const std::string& bootstrap, const std::string& group,
                                            const std::string& topic, int partitions);

/// The high watermark (offset of the next message to be written) of each partition of `topic`;
/// empty when the broker did not answer.
std::map<int32_t, int64_t> HighWatermarks(const std::string& bootstrap, const std::string& topic,
                                          int partitions);

/// True when `group` has committed every partition of `topic` up to its high watermark: a
/// consumer of that group has processed the whole topic (and will not see any of it again).
bool GroupReachedEnd(const std::string& bootstrap, const std::string& group,
                     const std::string& topic, int partitions);

/// Every message of `topic` from the beginning up to the high watermarks at the call, read
/// without a consumer group; throws when they cannot all be read within `timeout`.
std::vector<kafka::Message> ReadTopic(const std::string& bootstrap, const std::string& topic,
                                      int partitions, std::chrono::milliseconds timeout);

/// A port nobody listens on right now.
int FreePort();

/// The value of one series in a Prometheus text exposition (`series`: the metric name with its
/// labels as the exposition spells them, e.g. `crm_inbound_duplicates_total{detected_by="redis"}`);
/// std::nullopt when the series is not there. Matches the whole series name, so `x_total 1` is
/// never mistaken for `x_total 12`.
std::optional<double> MetricValue(const std::string& exposition, const std::string& series);

/// A name unique within this test run, for groups, prefixes and ids.
std::string UniqueName(const std::string& stem);

/// Polls `condition` every few milliseconds until it holds or `timeout` passes.
bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

/// The build tree (LEADFLOW_BUILD_DIR, set by CTest), where the service binaries are.
std::string BuildDir();

/// A child process (a built service binary) with its output in a log file.
class Process {
 public:
  Process(std::vector<std::string> argv, std::map<std::string, std::string> env,
          std::string log_name);
  ~Process();  // SIGKILL if still running
  pid_t pid() const { return pid_; }
  void Signal(int signal);
  /// Exit status as from waitpid; -1 when it did not end in time.
  int Wait(std::chrono::milliseconds timeout);
  bool Running();
  std::string Log() const;
  const std::string& log_path() const { return log_path_; }

 private:
  pid_t pid_ = -1;
  int status_ = 0;
  bool reaped_ = false;
  std::string log_path_;
};

/// The built dev-broker binary (librdkafka's mock cluster in its own process), started with
/// `partitions` per topic; the constructor returns once its bootstrap address is known.
class DevBroker {
 public:
  explicit DevBroker(int partitions = 6);
  const std::string& bootstrap() const { return bootstrap_; }
  Process& process() { return *process_; }
  /// SIGKILL: the cluster and everything in it are gone (for "Kafka is down" tests).
  void Kill();

 private:
  std::unique_ptr<Process> process_;
  std::string bootstrap_;
};

/// A web-form InboundEvent as webform-ingest publishes it (identities already normalised);
/// empty phone or email means "not given".
events::v1::InboundEvent WebFormEvent(const std::string& event_id, const std::string& phone,
                                      const std::string& email, const std::string& name = "Jean",
                                      const std::string& message = "Need a quote");

/// `event` as a message of the inbound topic the way the consumer loop hands it over: partition 0,
/// keyed by its first identity, each call at the next offset of this process (from 1000 up; the
/// batch processor tells messages apart by topic, partition and offset).
kafka::Message InboundMessage(const events::v1::InboundEvent& event);

/// `text` quoted for a POSIX shell command line.
std::string ShellQuote(const std::string& text);

/// Runs a shell command, returns its standard output; `exit_code` gets its exit code.
std::string Shell(const std::string& command, int* exit_code = nullptr);

}  // namespace leadflow::testing
