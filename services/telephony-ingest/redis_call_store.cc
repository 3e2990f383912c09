#include "telephony-ingest/redis_call_store.h"

#include <openssl/sha.h>

#include <future>
#include <iterator>
#include <memory>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "telephony-ingest/generic.h"

namespace leadflow::telephony {
namespace {

using redis::Reply;

// What a call's settlement key holds while the call keeps reports and is not settled: so that a
// new call's deciding report is one plain SET … NX (it fails on a call with reports), never a
// script. A settlement is a JSON object: never this.
constexpr char kOpenMark[] = "open";

// Lua: whether a settlement key's value (KEYS[n] read by GET) is a settlement, not the mark.
std::string IsSettled() {
  return absl::StrCat("local function is_settled(value) return value and value ~= '", kOpenMark,
                      "' end ");
}

std::string Millis(Clock::time_point time) {
  return std::to_string(
      std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count());
}

absl::StatusOr<CallStore::Snapshot> ToSnapshot(const Reply& updates, const Reply& settled,
                                               const Reply& open_calls) {
  if (updates.type != Reply::Type::kArray || open_calls.type != Reply::Type::kInteger ||
      !(settled.IsNil() || settled.type == Reply::Type::kString)) {
    return absl::UnavailableError("redis: unexpected reply to the call state");
  }
  CallStore::Snapshot snapshot;
  for (const Reply& element : updates.elements) {
    snapshot.updates.push_back(element.text);
  }
  if (!settled.IsNil() && settled.text != kOpenMark) {
    snapshot.settled = settled.text;
  }
  snapshot.open_calls = static_cast<size_t>(open_calls.integer);
  return snapshot;
}

// One step: a settled call takes nothing more (a provider replaying its callbacks), and is
// answered with whether its publication was confirmed (off the due set), a call
// holding max_updates takes nothing more, and the list's expiry is set when it is created,
// never pushed back. When the update is the call's first, the decision on it alone is taken in
// the same step: a settlement, when given, is recorded instead of the update (a settled call's
// updates are never read again: every later step answers the settlement) and the call
// scheduled until its publication is confirmed; without a settlement, the update is kept and
// the call scheduled at the given score (an open call's expiry, a settling call's deadline),
// unless as many calls as the given bound are scheduled already: then nothing is kept
// ('refused': a new call refused leaves nothing behind, in this same step). Answers {what it
// did, the updates (none once settled, decided or refused), the settlement, the calls scheduled
// before this one (not counted for a settled or decided call: only an open call's decision
// reads it), 1 when the call is settled and off the due set}, or only 'decided' when it
// decided a new call.
// A later update (kept after others) pushes the call's score to the given open expiry when it
// is above the given threshold: it is an open call's expiry then, never a settle deadline or a
// lease ('refreshed').
// The first report kept also writes the open mark (kOpenMark) where the settlement goes, with
// the reports' expiry. A new call's deciding report is not this step but RedisCallStore::Decide
// (plain commands), whose SET … NX fails on the mark and which then sends the report here; the
// step still decides a call it finds without reports (they expired, or were forgotten, since).
// KEYS: updates, settlement, due set. ARGV: update, ttl, max updates, settlement if first (or
// empty), the due score if first (or empty), the call's member in the due set, the bound on
// scheduled calls for a first report without a settlement (or empty: none), the open expiry
// for a later update (or empty), the score above which it is pushed.
const RedisCallStore::Script& AppendScript() {
  static const RedisCallStore::Script script(
      absl::StrCat(IsSettled(),
                   "local held = redis.call('LLEN', KEYS[1]) "
                   "local settled "
                   "if held == 0 and ARGV[4] ~= '' then "
                   "  settled = redis.call('SET', KEYS[2], ARGV[4], 'NX', 'GET', 'EX', ARGV[2]) "
                   "  if not settled then "
                   "    redis.call('ZADD', KEYS[3], ARGV[5], ARGV[6]) "
                   "    return 'decided' "
                   "  end "
                   "else "
                   "  settled = redis.call('GET', KEYS[2]) "
                   "end "
                   "if is_settled(settled) then "
                   "  local published = 1 "
                   "  if redis.call('ZSCORE', KEYS[3], ARGV[6]) then published = 0 end "
                   "  return {'settled', {}, settled, 0, published} "
                   "end "
                   "if held >= tonumber(ARGV[3]) then "
                   "  return {'full', redis.call('LRANGE', KEYS[1], 0, -1), false, "
                   "          redis.call('ZCARD', KEYS[3]), 0} "
                   "end "
                   "local open = redis.call('ZCARD', KEYS[3]) "
                   "if held == 0 and ARGV[7] ~= '' and open >= tonumber(ARGV[7]) then "
                   "  return {'refused', {}, false, open, 0} "
                   "end "
                   "redis.call('RPUSH', KEYS[1], ARGV[1]) "
                   "local done = 'appended' "
                   "if held == 0 then "
                   "  redis.call('EXPIRE', KEYS[1], ARGV[2]) "
                   "  redis.call('SET', KEYS[2], '",
                   kOpenMark,
                   "', 'EX', ARGV[2]) "
                   "  if ARGV[5] ~= '' then "
                   "    redis.call('ZADD', KEYS[3], ARGV[5], ARGV[6]) "
                   "    return {'scheduled', {ARGV[1]}, false, open, 0} "
                   "  end "
                   "elseif ARGV[8] ~= '' then "
                   "  local current = redis.call('ZSCORE', KEYS[3], ARGV[6]) "
                   "  if current and tonumber(current) > tonumber(ARGV[9]) then "
                   "    redis.call('ZADD', KEYS[3], ARGV[8], ARGV[6]) "
                   "    done = 'refreshed' "
                   "  end "
                   "end "
                   "return {done, redis.call('LRANGE', KEYS[1], 0, -1), false, open, 0}"));
  return script;
}

// The settlement unless one is recorded (the earlier one answered; the open mark is replaced),
// and when recorded the call scheduled until its publication is confirmed (unless no due score
// is given), in one step. KEYS: settlement, due set. ARGV: settlement, ttl, due score (or
// empty), the call's member.
const RedisCallStore::Script& SettleScript() {
  static const RedisCallStore::Script script(
      absl::StrCat(IsSettled(),
                   "local earlier = redis.call('GET', KEYS[1]) "
                   "if is_settled(earlier) then return earlier end "
                   "redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) "
                   "if ARGV[3] ~= '' then redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4]) end "
                   "return false"));
  return script;
}

// Forget: the updates, open mark and schedule of a call not settled (a new call refused); a
// call settled meanwhile (another report, another replica) stays scheduled until its
// publication is confirmed. KEYS: updates, settlement, due set. ARGV: the call's member.
const RedisCallStore::Script& ForgetScript() {
  static const RedisCallStore::Script script(
      absl::StrCat(IsSettled(),
                   "if is_settled(redis.call('GET', KEYS[2])) then return 0 end "
                   "redis.call('ZREM', KEYS[3], ARGV[1]) "
                   "redis.call('DEL', KEYS[1], KEYS[2]) "
                   "return 1"));
  return script;
}

// Whether the call (KEYS[3], its updates) took a report after its first `held`, or holds fewer:
// what follows them is read only when there is something (at most max updates per call), and
// a recording (kStoredRecordingMark) decides nothing.
std::string ReportedSince() {
  return absl::StrCat(IsSettled(),
                      "local function reported_since(held) "
                      "  local size = redis.call('LLEN', KEYS[3]) "
                      "  if size < held then return true end "
                      "  if size == held then return false end "
                      "  for _, update in ipairs(redis.call('LRANGE', KEYS[3], held, -1)) do "
                      "    if not string.find(update, '",
                      std::string(kStoredRecordingMark),
                      "', 1, true) then return true end "
                      "  end "
                      "  return false "
                      "end ");
}

// UnscheduleUnsettled: off the due set unless settled or reported since the given number of
// updates; answers 1 when it took the call off. KEYS: settlement, due set, updates. ARGV: the
// call's member, the updates read.
const RedisCallStore::Script& UnscheduleUnsettledScript() {
  static const RedisCallStore::Script script(
      absl::StrCat(ReportedSince(),
                   "if is_settled(redis.call('GET', KEYS[1])) then return 0 end "
                   "if reported_since(tonumber(ARGV[2])) then return 0 end "
                   "return redis.call('ZREM', KEYS[2], ARGV[1])"));
  return script;
}

// ScheduleHeld: scheduled unless settled or reported since the given number of updates;
// answers 1 when scheduled. KEYS: settlement, due set, updates. ARGV: the due score, the call's
// member, the updates the decision read.
const RedisCallStore::Script& ScheduleHeldScript() {
  static const RedisCallStore::Script script(
      absl::StrCat(ReportedSince(),
                   "if is_settled(redis.call('GET', KEYS[1])) then return 0 end "
                   "if reported_since(tonumber(ARGV[3])) then return 0 end "
                   "redis.call('ZADD', KEYS[2], ARGV[1], ARGV[2]) "
                   "return 1"));
  return script;
}

// AdmitLateRecording: 'repeated' when the set holds the recording, else 'admitted' and added
// while it holds fewer than the cap, else 'capped'; the set expires with the call's settlement
// (the given ttl when the settlement has none). KEYS: late recordings, settlement. ARGV: the
// recording's event id, the cap, ttl.
const RedisCallStore::Script& AdmitLateRecordingScript() {
  static const RedisCallStore::Script script(
      "if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 'repeated' end "
      "if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 'capped' end "
      "redis.call('SADD', KEYS[1], ARGV[1]) "
      "local left = redis.call('PTTL', KEYS[2]) "
      "if left > 0 then redis.call('PEXPIRE', KEYS[1], left) "
      "else redis.call('EXPIRE', KEYS[1], ARGV[3]) end "
      "return 'admitted'");
  return script;
}

absl::StatusOr<CallStore::LateRecording> ToLateRecording(absl::StatusOr<Reply> reply) {
  if (!reply.ok()) {
    return reply.status();
  }
  if (reply->type == Reply::Type::kString || reply->type == Reply::Type::kStatus) {
    if (reply->text == "admitted") {
      return CallStore::LateRecording::kAdmitted;
    }
    if (reply->text == "repeated") {
      return CallStore::LateRecording::kRepeated;
    }
    if (reply->text == "capped") {
      return CallStore::LateRecording::kCapped;
    }
  }
  return absl::UnavailableError("redis: unexpected reply to the late recording step");
}

// Take and push one lease ahead in one step: another replica's TakeDue at the same moment finds
// them not due. KEYS: due set. ARGV: now, now + lease, max.
const RedisCallStore::Script& TakeScript() {
  static const RedisCallStore::Script script(
      "local keys = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3]) "
      "for _, key in ipairs(keys) do redis.call('ZADD', KEYS[1], ARGV[2], key) end "
      "return keys");
  return script;
}

absl::StatusOr<CallStore::Snapshot> ToAppended(absl::StatusOr<Reply> reply) {
  if (!reply.ok()) {
    return reply.status();
  }
  if (reply->type == Reply::Type::kString && reply->text == "decided") {
    CallStore::Snapshot snapshot;
    snapshot.appended = true;
    snapshot.decided = true;
    return snapshot;
  }
  if (reply->type != Reply::Type::kArray || reply->elements.size() != 5 ||
      reply->elements[0].type != Reply::Type::kString ||
      reply->elements[4].type != Reply::Type::kInteger) {
    return absl::UnavailableError("redis: unexpected reply to the call append");
  }
  auto snapshot = ToSnapshot(reply->elements[1], reply->elements[2], reply->elements[3]);
  if (snapshot.ok()) {
    const std::string& done = reply->elements[0].text;
    snapshot->appended =
        done == "appended" || done == "decided" || done == "scheduled" || done == "refreshed";
    snapshot->decided = done == "decided";
    snapshot->scheduled = done == "scheduled";
    snapshot->refused = done == "refused";
    snapshot->refreshed = done == "refreshed";
    snapshot->published = done == "settled" && reply->elements[4].integer == 1;
  }
  return snapshot;
}

absl::StatusOr<std::optional<std::string>> ToEarlier(absl::StatusOr<Reply> reply) {
  if (!reply.ok()) {
    return reply.status();
  }
  if (reply->IsNil()) {
    return std::optional<std::string>();
  }
  if (reply->type != Reply::Type::kString) {
    return absl::UnavailableError("redis: the settlement step did not answer a string");
  }
  return std::optional<std::string>(std::move(reply->text));
}

}  // namespace

RedisCallStore::Script::Script(std::string script_text) : text(std::move(script_text)) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  sha1 = absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

RedisCallStore::RedisCallStore(redis::Options options, size_t max_pending)
    // Callbacks on the Redis thread: one wake-up of another thread fewer per round trip.
    : client_(options, /*callback_threads=*/0, max_pending),
      prefix_(options.key_prefix + kFormat),
      due_(prefix_ + "calls:due") {}

RedisCallStore::~RedisCallStore() { Shutdown(); }

std::string RedisCallStore::Updates(const std::string& key) const {
  return absl::StrCat(prefix_, "call:", key, ":u");
}

std::string RedisCallStore::Settled(const std::string& key) const {
  return absl::StrCat(prefix_, "call:", key, ":s");
}

std::string RedisCallStore::LateRecordings(const std::string& key) const {
  return absl::StrCat(prefix_, "call:", key, ":r");
}

void RedisCallStore::Submit(std::vector<redis::Command> commands, RepliesDone done) {
  client_.Submit(std::move(commands),
                 [done = std::move(done)](absl::StatusOr<std::vector<Reply>> replies) {
                   if (!replies.ok()) {
                     // A failed connection, or too many steps waiting: the same to callers
                     // (nothing recorded; a webhook is answered 503 and retried).
                     done(absl::UnavailableError(replies.status().message()));
                     return;
                   }
                   for (const Reply& reply : *replies) {
                     if (reply.type == Reply::Type::kError) {
                       done(absl::UnavailableError(absl::StrCat("redis: ", reply.text)));
                       return;
                     }
                   }
                   done(std::move(replies));
                 });
}

absl::StatusOr<std::vector<Reply>> RedisCallStore::Wait(std::vector<redis::Command> commands) {
  auto promise = std::make_shared<std::promise<absl::StatusOr<std::vector<Reply>>>>();
  auto future = promise->get_future();
  Submit(std::move(commands), [promise](absl::StatusOr<std::vector<Reply>> replies) {
    promise->set_value(std::move(replies));
  });
  return future.get();
}

void RedisCallStore::Eval(const Script& script, std::vector<std::string> keys_and_args,
                          ReplyDone done) {
  // The arguments moved into the command, not copied again (a report and its settlement are a
  // kilobyte): the command comes back with the answer, to be sent again as EVAL if needed.
  redis::Command command;
  command.reserve(2 + keys_and_args.size());
  command.emplace_back("EVALSHA");
  command.push_back(script.sha1);
  std::move(keys_and_args.begin(), keys_and_args.end(), std::back_inserter(command));
  std::vector<redis::Command> commands;
  commands.push_back(std::move(command));
  client_.SubmitKeeping(std::move(commands), [this, &script, done = std::move(done)](
                                                 absl::StatusOr<std::vector<Reply>> replies,
                                                 std::vector<redis::Command> sent) mutable {
    if (replies.ok() && replies->size() == 1 && (*replies)[0].type == Reply::Type::kError &&
        absl::StartsWith((*replies)[0].text, "NOSCRIPT") && sent.size() == 1 &&
        sent[0].size() >= 2) {
      // Redis does not hold the script (restarted, flushed): sent whole once, which also
      // caches it for the next EVALSHA.
      redis::Command eval = std::move(sent[0]);
      eval[0] = "EVAL";
      eval[1] = script.text;
      Submit({std::move(eval)},
             [done = std::move(done)](absl::StatusOr<std::vector<Reply>> replies) {
               if (!replies.ok()) {
                 done(replies.status());
                 return;
               }
               done(std::move((*replies)[0]));
             });
      return;
    }
    if (!replies.ok()) {
      done(absl::UnavailableError(replies.status().message()));
      return;
    }
    if (replies->size() != 1) {
      done(absl::UnavailableError("redis: unexpected number of replies"));
      return;
    }
    if ((*replies)[0].type == Reply::Type::kError) {
      done(absl::UnavailableError(absl::StrCat("redis: ", (*replies)[0].text)));
      return;
    }
    done(std::move((*replies)[0]));
  });
}

absl::StatusOr<Reply> RedisCallStore::WaitEval(const Script& script,
                                               std::vector<std::string> keys_and_args) {
  auto promise = std::make_shared<std::promise<absl::StatusOr<Reply>>>();
  auto future = promise->get_future();
  Eval(script, std::move(keys_and_args),
       [promise](absl::StatusOr<Reply> reply) { promise->set_value(std::move(reply)); });
  return future.get();
}

void RedisCallStore::AppendAsync(const std::string& key, const std::string& update,
                                 std::chrono::seconds ttl, size_t max_updates,
                                 std::optional<FirstDecision> if_first, SnapshotDone done) {
  if (if_first && !if_first->finished.empty()) {
    Decide(key, update, ttl, max_updates, std::move(*if_first), std::move(done));
    return;
  }
  AppendStep(key, update, ttl, max_updates, std::move(if_first), std::move(done));
}

void RedisCallStore::Decide(const std::string& key, const std::string& update,
                            std::chrono::seconds ttl, size_t max_updates, FirstDecision decision,
                            SnapshotDone done) {
  // The report settles the call if it is the call's first: its settlement recorded unless the
  // key holds one or the open mark (the call keeps reports), and the call scheduled until its
  // publication is confirmed, in one MULTI (both or neither, whatever else runs in Redis).
  // ZADD … NX never moves a member already there: an open call's expiry or settle deadline, a
  // settled call's lease. Plain commands: the same work as a script costs Redis about 2.5
  // times as much (docs/performance.md, "A new call decided without a script").
  std::vector<redis::Command> commands;
  commands.reserve(4);
  commands.push_back({"MULTI"});
  commands.push_back({"SET", Settled(key), std::move(decision.finished), "NX", "GET", "EX",
                      std::to_string(ttl.count())});
  commands.push_back({"ZADD", due_, "NX", Millis(decision.due), key});
  commands.push_back({"EXEC"});
  client_.SubmitKeeping(
      std::move(commands),
      [this, key, update, ttl, max_updates, decision = std::move(decision), done = std::move(done)](
          absl::StatusOr<std::vector<Reply>> replies, std::vector<redis::Command> sent) mutable {
        if (!replies.ok()) {
          done(absl::UnavailableError(replies.status().message()));
          return;
        }
        if (replies->size() != 4 || (*replies)[3].type != Reply::Type::kArray ||
            (*replies)[3].elements.size() != 2) {
          // An error reply (a command refused, EXECABORT), or not the two results.
          for (const Reply& reply : *replies) {
            if (reply.type == Reply::Type::kError) {
              done(absl::UnavailableError(absl::StrCat("redis: ", reply.text)));
              return;
            }
          }
          done(absl::UnavailableError("redis: unexpected reply to the call decision"));
          return;
        }
        Reply& earlier = (*replies)[3].elements[0];
        const Reply& added = (*replies)[3].elements[1];
        if (earlier.type == Reply::Type::kError || added.type != Reply::Type::kInteger) {
          done(absl::UnavailableError(absl::StrCat("redis: ", earlier.text, added.text)));
          return;
        }
        Snapshot snapshot;
        if (earlier.IsNil()) {
          if (added.integer == 0) {
            // A member was there already (a call whose reports expired while it stayed
            // scheduled): due at this settlement's lease, as every settlement is, before its
            // publication can be confirmed (the connection keeps the order).
            client_.Submit({{"ZADD", due_, "XX", Millis(decision.due), key}},
                           [](absl::StatusOr<std::vector<Reply>>) {});
          }
          snapshot.appended = true;
          snapshot.decided = true;
          done(std::move(snapshot));
          return;
        }
        if (earlier.type != Reply::Type::kString) {
          done(absl::UnavailableError("redis: unexpected reply to the call decision"));
          return;
        }
        if (earlier.text == kOpenMark) {
          // The call keeps reports: this one joins them in the append step, which answers them
          // all (or the settlement recorded meanwhile). Its ZADD … NX left a scheduled call as
          // it was; one kept without a schedule (a recording) is due at this report's lease
          // until the decision over its reports schedules it.
          decision.finished = std::move(sent[1][2]);
          AppendStep(key, update, ttl, max_updates, std::move(decision), std::move(done));
          return;
        }
        // Settled before. A settled call is scheduled in the step that records it and taken off
        // only once its publication is confirmed: the ZADD … NX that added it found it
        // published, and its member is taken off again (should that be lost, the call comes due
        // once more and is published again under the same event id, which crm-core skips).
        snapshot.appended = false;
        snapshot.settled = std::move(earlier.text);
        snapshot.published = added.integer == 1;
        if (snapshot.published) {
          UnscheduleAsync(key, [](absl::Status) {});
        }
        done(std::move(snapshot));
      });
}

void RedisCallStore::AppendStep(const std::string& key, const std::string& update,
                                std::chrono::seconds ttl, size_t max_updates,
                                std::optional<FirstDecision> if_first, SnapshotDone done) {
  // Built in place rather than from an initializer list, whose strings (among them the update
  // and the settlement, a few hundred bytes each) would each be copied once more.
  std::vector<std::string> keys_and_args;
  keys_and_args.reserve(13);
  keys_and_args.emplace_back("3");
  keys_and_args.push_back(Updates(key));
  keys_and_args.push_back(Settled(key));
  keys_and_args.push_back(due_);
  keys_and_args.push_back(update);
  keys_and_args.push_back(std::to_string(ttl.count()));
  keys_and_args.push_back(std::to_string(max_updates));
  keys_and_args.push_back(if_first ? std::move(if_first->finished) : std::string());
  keys_and_args.push_back(if_first ? Millis(if_first->due) : std::string());
  keys_and_args.push_back(key);
  keys_and_args.push_back(if_first && if_first->max_open_calls
                              ? std::to_string(*if_first->max_open_calls)
                              : std::string());
  keys_and_args.push_back(if_first && if_first->open_expiry ? Millis(*if_first->open_expiry)
                                                            : std::string());
  keys_and_args.push_back(if_first && if_first->open_expiry ? Millis(if_first->open_above)
                                                            : std::string());
  Eval(AppendScript(), std::move(keys_and_args),
       [done = std::move(done)](absl::StatusOr<Reply> reply) {
         done(ToAppended(std::move(reply)));
       });
}

absl::StatusOr<CallStore::Snapshot> RedisCallStore::Append(const std::string& key,
                                                           const std::string& update,
                                                           std::chrono::seconds ttl,
                                                           size_t max_updates) {
  return ToAppended(WaitEval(
      AppendScript(), {"3", Updates(key), Settled(key), due_, update, std::to_string(ttl.count()),
                       std::to_string(max_updates), "", "", key, "", "", ""}));
}

absl::StatusOr<CallStore::Snapshot> RedisCallStore::Read(const std::string& key) {
  auto replies = Wait({{"LRANGE", Updates(key), "0", "-1"},
                       {"GET", Settled(key)},
                       {"ZCARD", due_},
                       {"ZSCORE", due_, key}});
  if (!replies.ok()) {
    return replies.status();
  }
  auto snapshot = ToSnapshot((*replies)[0], (*replies)[1], (*replies)[2]);
  if (snapshot.ok()) {
    snapshot->published = snapshot->settled.has_value() && (*replies)[3].IsNil();
  }
  return snapshot;
}

absl::StatusOr<std::optional<std::string>> RedisCallStore::Settle(const std::string& key,
                                                                  const std::string& finished,
                                                                  std::chrono::seconds ttl) {
  return ToEarlier(WaitEval(
      SettleScript(), {"2", Settled(key), due_, finished, std::to_string(ttl.count()), "", key}));
}

void RedisCallStore::SettleAsync(const std::string& key, const std::string& finished,
                                 std::chrono::seconds ttl, Clock::time_point due, SettleDone done) {
  Eval(
      SettleScript(),
      {"2", Settled(key), due_, finished, std::to_string(ttl.count()), Millis(due), key},
      [done = std::move(done)](absl::StatusOr<Reply> reply) { done(ToEarlier(std::move(reply))); });
}

absl::Status RedisCallStore::Schedule(const std::string& key, Clock::time_point due) {
  return Wait({{"ZADD", due_, Millis(due), key}}).status();
}

absl::StatusOr<bool> RedisCallStore::ScheduleHeld(const std::string& key, Clock::time_point due,
                                                  size_t held) {
  auto reply = WaitEval(ScheduleHeldScript(), {"3", Settled(key), due_, Updates(key), Millis(due),
                                               key, std::to_string(held)});
  if (!reply.ok()) {
    return reply.status();
  }
  return reply->type == Reply::Type::kInteger && reply->integer == 1;
}

void RedisCallStore::ScheduleHeldAsync(const std::string& key, Clock::time_point due, size_t held,
                                       StatusDone done) {
  Eval(ScheduleHeldScript(),
       {"3", Settled(key), due_, Updates(key), Millis(due), key, std::to_string(held)},
       [done = std::move(done)](absl::StatusOr<Reply> reply) { done(reply.status()); });
}

absl::Status RedisCallStore::Unschedule(const std::string& key) {
  return Wait({{"ZREM", due_, key}}).status();
}

size_t RedisCallStore::unschedules_waiting() const {
  std::lock_guard lock(unscheduling_mutex_);
  return unscheduling_.size();
}

void RedisCallStore::UnscheduleAsync(const std::string& key, StatusDone done) {
  // Every call published costs one of these: the ones confirmed while a round trip is under
  // way go together as one ZREM in the next (built when it is sent), not one command each.
  {
    std::lock_guard lock(unscheduling_mutex_);
    unscheduling_.push_back({key, std::move(done)});
    if (unscheduling_submitted_) {
      return;
    }
    unscheduling_submitted_ = true;
  }
  auto taken = std::make_shared<std::vector<Unscheduling>>();
  auto take = [this, taken] {
    std::lock_guard lock(unscheduling_mutex_);
    taken->swap(unscheduling_);
    unscheduling_submitted_ = false;
  };
  client_.SubmitBuilt(
      [this, taken, take] {
        take();
        redis::Command command = {"ZREM", due_};
        command.reserve(2 + taken->size());
        for (const Unscheduling& entry : *taken) {
          command.push_back(entry.key);
        }
        return std::vector<redis::Command>{std::move(command)};
      },
      [taken, take](absl::StatusOr<std::vector<Reply>> replies) {
        if (!replies.ok() && taken->empty()) {
          take();  // refused before it was built (too many steps waiting, stopping)
        }
        absl::Status status = replies.status();
        if (status.ok() && !replies->empty() && (*replies)[0].type == Reply::Type::kError) {
          status = absl::UnavailableError(absl::StrCat("redis: ", (*replies)[0].text));
        } else if (!status.ok()) {
          status = absl::UnavailableError(status.message());
        }
        for (Unscheduling& entry : *taken) {
          entry.done(status);
        }
      });
}

absl::StatusOr<bool> RedisCallStore::UnscheduleUnsettled(const std::string& key, size_t held) {
  auto reply = WaitEval(UnscheduleUnsettledScript(),
                        {"3", Settled(key), due_, Updates(key), key, std::to_string(held)});
  if (!reply.ok()) {
    return reply.status();
  }
  return reply->type == Reply::Type::kInteger && reply->integer == 1;
}

absl::Status RedisCallStore::Forget(const std::string& key) {
  return WaitEval(ForgetScript(), {"3", Updates(key), Settled(key), due_, key}).status();
}

void RedisCallStore::ForgetAsync(const std::string& key, StatusDone done) {
  Eval(ForgetScript(), {"3", Updates(key), Settled(key), due_, key},
       [done = std::move(done)](absl::StatusOr<Reply> reply) { done(reply.status()); });
}

absl::StatusOr<std::vector<std::string>> RedisCallStore::TakeDue(Clock::time_point now,
                                                                 std::chrono::seconds lease,
                                                                 size_t max) {
  auto reply =
      WaitEval(TakeScript(), {"1", due_, Millis(now), Millis(now + lease), std::to_string(max)});
  if (!reply.ok()) {
    return reply.status();
  }
  std::vector<std::string> keys;
  for (const Reply& element : reply->elements) {
    keys.push_back(element.text);
  }
  return keys;
}

namespace {

// ZCARD, then ZRANGE 0 0 WITHSCORES: [member, score] or nothing.
absl::StatusOr<CallStore::DueState> ToDueState(absl::StatusOr<std::vector<Reply>> replies) {
  if (!replies.ok()) {
    return absl::UnavailableError(replies.status().message());
  }
  if (replies->size() != 2 || (*replies)[0].type != Reply::Type::kInteger ||
      (*replies)[1].type != Reply::Type::kArray) {
    return absl::UnavailableError("redis: unexpected reply to the due calls");
  }
  CallStore::DueState state{.scheduled = static_cast<size_t>((*replies)[0].integer)};
  const std::vector<Reply>& first = (*replies)[1].elements;
  double millis = 0;
  if (first.size() == 2 && absl::SimpleAtod(first[1].text, &millis) && millis >= 0 &&
      millis < static_cast<double>(LastClockSecond()) * 1000) {
    state.earliest = Clock::time_point(std::chrono::milliseconds(static_cast<int64_t>(millis)));
  }
  return state;
}

}  // namespace

void RedisCallStore::ReadDueAsync(std::function<void(absl::StatusOr<DueState>)> done) {
  Submit({{"ZCARD", due_}, {"ZRANGE", due_, "0", "0", "WITHSCORES"}},
         [done = std::move(done)](absl::StatusOr<std::vector<Reply>> replies) {
           done(ToDueState(std::move(replies)));
         });
}

absl::StatusOr<CallStore::DueState> RedisCallStore::ReadDue() {
  return ToDueState(Wait({{"ZCARD", due_}, {"ZRANGE", due_, "0", "0", "WITHSCORES"}}));
}

absl::StatusOr<CallStore::LateRecording> RedisCallStore::AdmitLateRecording(
    const std::string& key, const std::string& recording, size_t max, std::chrono::seconds ttl) {
  return ToLateRecording(
      WaitEval(AdmitLateRecordingScript(), {"2", LateRecordings(key), Settled(key), recording,
                                            std::to_string(max), std::to_string(ttl.count())}));
}

void RedisCallStore::AdmitLateRecordingAsync(
    const std::string& key, const std::string& recording, size_t max, std::chrono::seconds ttl,
    std::function<void(absl::StatusOr<LateRecording>)> done) {
  Eval(AdmitLateRecordingScript(),
       {"2", LateRecordings(key), Settled(key), recording, std::to_string(max),
        std::to_string(ttl.count())},
       [done = std::move(done)](absl::StatusOr<Reply> reply) {
         done(ToLateRecording(std::move(reply)));
       });
}

absl::StatusOr<size_t> RedisCallStore::OpenCalls() {
  auto replies = Wait({{"ZCARD", due_}});
  if (!replies.ok()) {
    return replies.status();
  }
  return static_cast<size_t>((*replies)[0].integer);
}

}  // namespace leadflow::telephony
