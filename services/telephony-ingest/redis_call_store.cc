#include "telephony-ingest/redis_call_store.h"

#include "absl/strings/str_cat.h"

namespace leadflow::telephony {
namespace {

std::string Millis(Clock::time_point time) {
  return std::to_string(
      std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count());
}

absl::StatusOr<CallStore::Snapshot> ToSnapshot(const redis::Reply& updates,
                                               const redis::Reply& settled,
                                               const redis::Reply& open_calls) {
  if (updates.type != redis::Reply::Type::kArray ||
      open_calls.type != redis::Reply::Type::kInteger ||
      !(settled.IsNil() || settled.type == redis::Reply::Type::kString)) {
    return absl::UnavailableError("redis: unexpected reply to the call state");
  }
  CallStore::Snapshot snapshot;
  for (const redis::Reply& element : updates.elements) {
    snapshot.updates.push_back(element.text);
  }
  if (!settled.IsNil()) {
    snapshot.settled = settled.text;
  }
  snapshot.open_calls = static_cast<size_t>(open_calls.integer);
  return snapshot;
}

}  // namespace

RedisCallStore::RedisCallStore(redis::Options options)
    : client_(options), due_(options.key_prefix + "calls:due") {}

std::string RedisCallStore::Updates(const std::string& key) const {
  return absl::StrCat(client_.options().key_prefix, "call:", key, ":u");
}

std::string RedisCallStore::Settled(const std::string& key) const {
  return absl::StrCat(client_.options().key_prefix, "call:", key, ":s");
}

absl::StatusOr<std::vector<redis::Reply>> RedisCallStore::Run(
    const std::vector<redis::Command>& commands) {
  auto replies = client_.Pipeline(commands);
  if (!replies.ok()) {
    return absl::UnavailableError(replies.status().message());
  }
  for (const redis::Reply& reply : *replies) {
    if (reply.type == redis::Reply::Type::kError) {
      return absl::UnavailableError(absl::StrCat("redis: ", reply.text));
    }
  }
  return replies;
}

absl::StatusOr<CallStore::Snapshot> RedisCallStore::Append(const std::string& key,
                                                           const std::string& update,
                                                           std::chrono::seconds ttl,
                                                           size_t max_updates) {
  // One step: a settled call takes nothing more (a provider replaying its callbacks), a call
  // holding max_updates takes nothing more, and the list's expiry is set when it is created,
  // never pushed back. Answers {what it did, the updates (none once settled), the settlement,
  // the calls scheduled}.
  static constexpr char kAppend[] =
      "local settled = redis.call('GET', KEYS[2]) "
      "if settled then return {'settled', {}, settled, redis.call('ZCARD', KEYS[3])} end "
      "local held = redis.call('LLEN', KEYS[1]) "
      "local done = 'full' "
      "if held < tonumber(ARGV[3]) then "
      "  redis.call('RPUSH', KEYS[1], ARGV[1]) "
      "  if held == 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end "
      "  done = 'appended' "
      "end "
      "return {done, redis.call('LRANGE', KEYS[1], 0, -1), false, redis.call('ZCARD', KEYS[3])}";
  auto replies = Run({{"EVAL", kAppend, "3", Updates(key), Settled(key), due_, update,
                       std::to_string(ttl.count()), std::to_string(max_updates)}});
  if (!replies.ok()) {
    return replies.status();
  }
  const redis::Reply& reply = (*replies)[0];
  if (reply.type != redis::Reply::Type::kArray || reply.elements.size() != 4 ||
      reply.elements[0].type != redis::Reply::Type::kString) {
    return absl::UnavailableError("redis: unexpected reply to the call append");
  }
  auto snapshot = ToSnapshot(reply.elements[1], reply.elements[2], reply.elements[3]);
  if (snapshot.ok()) {
    snapshot->appended = reply.elements[0].text == "appended";
  }
  return snapshot;
}

absl::StatusOr<CallStore::Snapshot> RedisCallStore::Read(const std::string& key) {
  auto replies = Run({{"LRANGE", Updates(key), "0", "-1"}, {"GET", Settled(key)}, {"ZCARD", due_}});
  if (!replies.ok()) {
    return replies.status();
  }
  return ToSnapshot((*replies)[0], (*replies)[1], (*replies)[2]);
}

absl::StatusOr<std::optional<std::string>> RedisCallStore::Settle(const std::string& key,
                                                                  const std::string& finished,
                                                                  std::chrono::seconds ttl) {
  // SET … NX GET (Redis ≥ 7): records when absent and gives the earlier value in one step.
  auto replies =
      Run({{"SET", Settled(key), finished, "NX", "GET", "EX", std::to_string(ttl.count())}});
  if (!replies.ok()) {
    return replies.status();
  }
  const redis::Reply& reply = (*replies)[0];
  if (reply.IsNil()) {
    return std::optional<std::string>();
  }
  if (reply.type != redis::Reply::Type::kString) {
    return absl::UnavailableError("redis: SET NX GET did not answer a string");
  }
  return std::optional<std::string>(reply.text);
}

absl::Status RedisCallStore::Schedule(const std::string& key, Clock::time_point due) {
  return Run({{"ZADD", due_, Millis(due), key}}).status();
}

absl::Status RedisCallStore::Unschedule(const std::string& key) {
  return Run({{"ZREM", due_, key}}).status();
}

absl::Status RedisCallStore::Forget(const std::string& key) {
  return Run({{"ZREM", due_, key}, {"DEL", Updates(key)}}).status();
}

absl::StatusOr<std::vector<std::string>> RedisCallStore::TakeDue(Clock::time_point now,
                                                                 std::chrono::seconds lease,
                                                                 size_t max) {
  // Take and push one lease ahead in one step: another replica's TakeDue at the same moment
  // finds them not due.
  static constexpr char kTake[] =
      "local keys = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3]) "
      "for _, key in ipairs(keys) do redis.call('ZADD', KEYS[1], ARGV[2], key) end "
      "return keys";
  auto replies =
      Run({{"EVAL", kTake, "1", due_, Millis(now), Millis(now + lease), std::to_string(max)}});
  if (!replies.ok()) {
    return replies.status();
  }
  std::vector<std::string> keys;
  for (const redis::Reply& element : (*replies)[0].elements) {
    keys.push_back(element.text);
  }
  return keys;
}

absl::StatusOr<size_t> RedisCallStore::OpenCalls() {
  auto replies = Run({{"ZCARD", due_}});
  if (!replies.ok()) {
    return replies.status();
  }
  return static_cast<size_t>((*replies)[0].integer);
}

}  // namespace leadflow::telephony
