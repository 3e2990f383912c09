#include "redis/client.h"
#include "redis/pipelined_client.h"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <atomic>
#include <mutex>
#include <random>
#include <thread>

#include "testing/testing.h"

namespace leadflow::redis {
namespace {

// Protects: the pipeline's own formatting writes exactly hiredis's bytes (redisFormatCommandArgv)
// for every command, binary and empty arguments included; nothing reaches Redis any other way.
TEST(FormatCommandsTest, SameBytesAsHiredis) {
  std::mt19937 random(7);
  std::vector<Command> commands = {{},
                                   {"PING"},
                                   {"SET", "", std::string("a\0\r\nb", 6)},
                                   {"SET", "k", std::string(100000, 'x')}};
  for (int i = 0; i < 2000; ++i) {
    Command command;
    for (size_t n = random() % 6; n > 0; --n) {
      std::string argument;
      for (size_t k = random() % (i % 10 == 0 ? 2000 : 40); k > 0; --k) {
        argument.push_back(static_cast<char>(random() % 256));
      }
      command.push_back(argument);
    }
    commands.push_back(command);
  }
  std::string expected;
  for (const Command& command : commands) {
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    for (const std::string& argument : command) {
      argv.push_back(argument.data());
      lengths.push_back(argument.size());
    }
    char* formatted = nullptr;
    int length = redisFormatCommandArgv(&formatted, static_cast<int>(argv.size()), argv.data(),
                                        lengths.data());
    ASSERT_GE(length, 0);
    expected.append(formatted, static_cast<size_t>(length));
    redisFreeCommand(formatted);
  }
  EXPECT_EQ(FormatCommands(commands), expected);
  EXPECT_EQ(FormatCommands({}), "");
}

// Protects: a pipeline sends all commands in one go and returns one reply per command, in order,
// with Redis errors as error replies rather than a failed call.
TEST(RedisClientTest, PipelineRepliesInOrder) {
  Options options = testing::RedisTestOptions();
  Client client(options);
  std::string key = options.key_prefix + "k";
  auto replies = client.Pipeline({{"SET", key, "v", "EX", "60"},
                                  {"GET", key},
                                  {"INCR", key + "n"},
                                  {"GET", key + "missing"},
                                  {"INCR", key}});
  ASSERT_TRUE(replies.ok()) << replies.status();
  ASSERT_EQ(replies->size(), 5u);
  EXPECT_EQ((*replies)[0].type, Reply::Type::kStatus);
  EXPECT_EQ((*replies)[1].text, "v");
  EXPECT_EQ((*replies)[2].integer, 1);
  EXPECT_TRUE((*replies)[3].IsNil());
  EXPECT_EQ((*replies)[4].type, Reply::Type::kError);
}

// Protects: binary-safe values (NUL bytes) survive the round trip.
TEST(RedisClientTest, BinarySafe) {
  Options options = testing::RedisTestOptions();
  Client client(options);
  std::string value("a\0b\r\nc", 6);
  ASSERT_TRUE(client.Run({"SET", options.key_prefix + "bin", value}).ok());
  auto reply = client.Run({"GET", options.key_prefix + "bin"});
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->text, value);
}

// Protects: an unreachable Redis is an Unavailable status, quickly, never a hang or a crash;
// the same client works once Redis is there (reconnect on the next call).
TEST(RedisClientTest, UnreachableIsUnavailable) {
  Options options;
  options.port = testing::FreePort();
  options.timeout = std::chrono::milliseconds(200);
  Client client(options);
  auto reply = client.Run({"PING"});
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kUnavailable);
}

// Protects: after the server drops the connection, the next call reconnects by itself.
TEST(RedisClientTest, ReconnectsAfterServerClosedConnection) {
  Options options = testing::RedisTestOptions();
  Client client(options);
  auto name = options.key_prefix + "victim";
  ASSERT_TRUE(client.Run({"CLIENT", "SETNAME", name.substr(0, 60)}).ok());
  Client killer(options);
  ASSERT_TRUE(killer
                  .Run({"CLIENT", "KILL", "SKIPME", "no", "ID",
                        std::to_string(client.Run({"CLIENT", "ID"})->integer)})
                  .ok());
  // The first call after the kill may fail; one of the next two must succeed.
  bool ok = client.Run({"PING"}).ok() || client.Run({"PING"}).ok();
  EXPECT_TRUE(ok);
}

// Protects: callers on many threads share the pool's connections without mixing up replies.
TEST(RedisClientTest, ConcurrentCallersGetTheirOwnReplies) {
  Options options = testing::RedisTestOptions();
  options.connections = 3;
  Client client(options);
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        std::string key = options.key_prefix + std::to_string(t) + ":" + std::to_string(i);
        auto replies = client.Pipeline({{"SET", key, key}, {"GET", key}});
        if (!replies.ok() || (*replies)[1].text != key) {
          ++wrong;
        }
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  EXPECT_EQ(wrong.load(), 0);
}

// Protects: auto-pipelining answers every submitter with exactly its own replies, in order, even
// when thousands of submissions from several threads are merged into shared round trips.
TEST(PipelinedClientTest, EverySubmitterGetsItsOwnReplies) {
  Options options = testing::RedisTestOptions();
  std::atomic<int> answered{0};
  std::atomic<int> wrong{0};
  {
    PipelinedClient client(options);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 500; ++i) {
          std::string key = options.key_prefix + "p" + std::to_string(t) + ":" + std::to_string(i);
          client.Submit({{"SET", key, key}, {"GET", key}, {"INCR", key}},
                        [&, key](absl::StatusOr<std::vector<Reply>> replies) {
                          if (!replies.ok() || replies->size() != 3 || (*replies)[1].text != key ||
                              (*replies)[2].type != Reply::Type::kError) {
                            ++wrong;
                          }
                          ++answered;
                        });
        }
      });
    }
    for (auto& thread : threads) {
      thread.join();
    }
  }  // the destructor answers everything still queued
  EXPECT_EQ(answered.load(), 2000);
  EXPECT_EQ(wrong.load(), 0);
}

// Protects: with Redis unreachable every submitter is answered Unavailable, nobody hangs.
TEST(PipelinedClientTest, UnreachableAnswersEveryone) {
  Options options;
  options.port = testing::FreePort();
  options.timeout = std::chrono::milliseconds(100);
  std::atomic<int> unavailable{0};
  {
    PipelinedClient client(options);
    for (int i = 0; i < 50; ++i) {
      client.Submit({{"PING"}}, [&](absl::StatusOr<std::vector<Reply>> replies) {
        if (replies.status().code() == absl::StatusCode::kUnavailable) {
          ++unavailable;
        }
      });
    }
  }
  EXPECT_EQ(unavailable.load(), 50);
}

// Protects: a service can stop its Redis client at shutdown (everything queued answered, later
// submissions refused at once) while the object, which a metrics gauge reads, stays alive until
// the operations server is gone (before: the only way to stop it was to destroy it, and the
// webform_redis_pending gauge then read freed memory during the Kafka flush).
TEST(PipelinedClientTest, ShutdownAnswersQueuedAndStaysReadable) {
  PipelinedClient client(testing::RedisTestOptions());
  std::atomic<int> answered{0};
  for (int i = 0; i < 100; ++i) {
    client.Submit({{"PING"}}, [&](absl::StatusOr<std::vector<Reply>> replies) {
      if (replies.ok()) {
        ++answered;
      }
    });
  }
  client.Shutdown();
  EXPECT_EQ(answered.load(), 100);
  EXPECT_EQ(client.pending(), 0u);
  absl::Status late;
  client.Submit({{"PING"}},
                [&](absl::StatusOr<std::vector<Reply>> replies) { late = replies.status(); });
  EXPECT_EQ(late.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(client.pending(), 0u);
  client.Shutdown();  // idempotent; the destructor runs it once more
}

// Protects: with no callback threads, every reply's callback runs on the Redis thread itself
// (no hand-off to another thread per round trip), a callback may submit again, and nothing is
// left unanswered at shutdown.
TEST(PipelinedClientTest, NoCallbackThreadsRunsCallbacksOnTheRedisThread) {
  Options options = testing::RedisTestOptions();
  std::atomic<int> answered{0};
  std::atomic<int> elsewhere{0};
  {
    PipelinedClient client(options, /*callback_threads=*/0);
    const std::thread::id redis_thread = client.redis_thread_id();
    auto check = [&](const absl::StatusOr<std::vector<Reply>>& replies) {
      if (!replies.ok() || std::this_thread::get_id() != redis_thread) {
        ++elsewhere;
      }
      ++answered;
    };
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < 200; ++i) {
          client.Submit({{"PING"}}, [&](absl::StatusOr<std::vector<Reply>> replies) {
            check(replies);
            // Submitted from the callback: queued for the next round trip, answered too.
            client.Submit({{"PING"}}, check);
          });
        }
      });
    }
    for (auto& thread : threads) {
      thread.join();
    }
    testing::WaitFor([&] { return answered.load() == 800; }, std::chrono::seconds(10));
  }
  EXPECT_EQ(answered.load(), 800);
  EXPECT_EQ(elsewhere.load(), 0);
}

// Protects: SubmitKeeping hands every submission its own commands back, unchanged, with its
// own replies — mixed in one round trip with plain and built submissions, and when Redis is
// unreachable; SubmitBuilt's commands are built on the Redis thread when sent, so what was
// gathered after the submission goes in them, and a build of no command answers no reply.
TEST(PipelinedClientTest, KeptAndBuiltCommands) {
  Options options = testing::RedisTestOptions();
  std::atomic<int> wrong{0};
  std::atomic<int> answered{0};
  std::mutex mutex;
  std::vector<std::string> gathered;  // outlives the client: its builds run until it stops
  {
    PipelinedClient client(options, /*callback_threads=*/0);
    for (int i = 0; i < 300; ++i) {
      const std::string key = options.key_prefix + "k" + std::to_string(i);
      const std::string big(1000 + i, 'v');
      client.SubmitKeeping(
          {{"SET", key, big}, {"GET", key}},
          [&, key, big](absl::StatusOr<std::vector<Reply>> replies, std::vector<Command> commands) {
            const bool right = replies.ok() && replies->size() == 2 && (*replies)[1].text == big &&
                               commands.size() == 2 && commands[0] == Command{"SET", key, big} &&
                               commands[1] == Command{"GET", key};
            wrong += right ? 0 : 1;
            ++answered;
          });
      client.Submit({{"ECHO", key}}, [&, key](absl::StatusOr<std::vector<Reply>> replies) {
        wrong += (replies.ok() && (*replies)[0].text == key) ? 0 : 1;
        ++answered;
      });
      {
        std::lock_guard lock(mutex);
        gathered.push_back(key);
      }
      if (i % 50 == 0) {
        auto built = std::make_shared<size_t>(0);
        client.SubmitBuilt(
            [&, built] {
              EXPECT_EQ(std::this_thread::get_id(), client.redis_thread_id());
              std::lock_guard lock(mutex);
              *built = gathered.size();  // at least i + 1: gathered after the submission too
              Command exists = {"EXISTS"};
              exists.insert(exists.end(), gathered.begin(), gathered.end());
              return std::vector<Command>{std::move(exists)};
            },
            [&, built, i](absl::StatusOr<std::vector<Reply>> replies) {
              // Built when sent: it names the keys gathered by then (at least the i + 1 of its
              // submission, whose SETs went before it on the one connection); a key gathered
              // after the send began may have its SET in the next round trip.
              const int64_t found =
                  replies.ok() && replies->size() == 1 ? (*replies)[0].integer : -1;
              wrong += (*built >= static_cast<size_t>(i) + 1 && found >= i + 1 &&
                        found <= static_cast<int64_t>(*built))
                           ? 0
                           : 1;
              ++answered;
            });
      }
    }
    client.SubmitBuilt([] { return std::vector<Command>{}; },
                       [&](absl::StatusOr<std::vector<Reply>> replies) {
                         wrong += (replies.ok() && replies->empty()) ? 0 : 1;
                         ++answered;
                       });
  }
  EXPECT_EQ(answered.load(), 300 * 2 + 6 + 1);
  EXPECT_EQ(wrong.load(), 0);

  Options unreachable;
  unreachable.port = testing::FreePort();
  unreachable.timeout = std::chrono::milliseconds(100);
  std::atomic<int> returned{0};
  {
    PipelinedClient client(unreachable);
    for (int i = 0; i < 20; ++i) {
      client.SubmitKeeping(
          {{"ECHO", std::to_string(i)}},
          [&, i](absl::StatusOr<std::vector<Reply>> replies, std::vector<Command> commands) {
            if (replies.status().code() == absl::StatusCode::kUnavailable &&
                commands == std::vector<Command>{{"ECHO", std::to_string(i)}}) {
              ++returned;
            }
          });
    }
  }
  EXPECT_EQ(returned.load(), 20);
}

}  // namespace
}  // namespace leadflow::redis
