#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "redis/client.h"
#include "telephony-ingest/call.h"

namespace leadflow::telephony {

/// The state of calls in Redis, shared by every replica of the service, so that the callbacks
/// of one call may reach any of them (Twilio's status callback at one, its <Dial> action at
/// another). Per call, under the client's key prefix:
/// - `call:<key>:u` a list of the serialized updates, in arrival order, appended by one Lua
///   step only while the call is not settled and holds fewer than the cap (two replicas
///   appending at once lose nothing; each folds the whole list); it expires `ttl` after its
///   first update;
/// - `call:<key>:s` the settled FinishedCall, written with SET NX: the first decision wins;
/// - `calls:due` a sorted set of the calls waiting for a decision or for their publication,
///   scored by when they are due; TakeDue moves the ones it takes one lease ahead in one Lua
///   step, so two replicas never take the same call in the same lease.
/// Every key expires (`ttl`), so Redis holds no call longer than that. One round trip per
/// call, on the calling thread (bounded by the client's timeout).
class RedisCallStore : public CallStore {
 public:
  explicit RedisCallStore(redis::Options options);
  absl::StatusOr<Snapshot> Append(const std::string& key, const std::string& update,
                                  std::chrono::seconds ttl, size_t max_updates) override;
  absl::StatusOr<Snapshot> Read(const std::string& key) override;
  absl::StatusOr<std::optional<std::string>> Settle(const std::string& key,
                                                    const std::string& finished,
                                                    std::chrono::seconds ttl) override;
  absl::Status Schedule(const std::string& key, Clock::time_point due) override;
  absl::Status Unschedule(const std::string& key) override;
  absl::Status Forget(const std::string& key) override;
  absl::StatusOr<std::vector<std::string>> TakeDue(Clock::time_point now,
                                                   std::chrono::seconds lease, size_t max) override;
  absl::StatusOr<size_t> OpenCalls() override;

 private:
  std::string Updates(const std::string& key) const;
  std::string Settled(const std::string& key) const;
  absl::StatusOr<std::vector<redis::Reply>> Run(const std::vector<redis::Command>& commands);

  redis::Client client_;
  const std::string due_;
};

}  // namespace leadflow::telephony
