#include "redis/client.h"

#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>

#include "absl/strings/str_cat.h"

namespace leadflow::redis {
namespace {

struct ReplyDeleter {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};

Reply Convert(const redisReply& raw) {
  Reply reply;
  switch (raw.type) {
    case REDIS_REPLY_STRING:
      reply.type = Reply::Type::kString;
      reply.text.assign(raw.str, raw.len);
      break;
    case REDIS_REPLY_STATUS:
      reply.type = Reply::Type::kStatus;
      reply.text.assign(raw.str, raw.len);
      break;
    case REDIS_REPLY_ERROR:
      reply.type = Reply::Type::kError;
      reply.text.assign(raw.str, raw.len);
      break;
    case REDIS_REPLY_INTEGER:
      reply.type = Reply::Type::kInteger;
      reply.integer = raw.integer;
      break;
    case REDIS_REPLY_ARRAY:
      reply.type = Reply::Type::kArray;
      for (size_t i = 0; i < raw.elements; ++i) {
        reply.elements.push_back(Convert(*raw.element[i]));
      }
      break;
    case REDIS_REPLY_NIL:
    default:
      reply.type = Reply::Type::kNil;
      break;
  }
  return reply;
}

timeval ToTimeval(std::chrono::milliseconds duration) {
  return timeval{static_cast<time_t>(duration.count() / 1000),
                 static_cast<suseconds_t>((duration.count() % 1000) * 1000)};
}

}  // namespace

std::string FormatCommands(const std::vector<Command>& commands) {
  size_t size = 0;
  for (const Command& command : commands) {
    size += 16;
    for (const std::string& argument : command) {
      size += argument.size() + 24;
    }
  }
  std::string out;
  out.reserve(size);
  // "*<count>\r\n" and "$<length>\r\n" written by hand: StrAppend's pieces cost more than
  // the bytes they carry.
  auto header = [&out](char kind, size_t count) {
    char buffer[24];
    buffer[0] = kind;
    char* end = std::to_chars(buffer + 1, buffer + sizeof buffer - 2, count).ptr;
    *end++ = '\r';
    *end++ = '\n';
    out.append(buffer, end - buffer);
  };
  for (const Command& command : commands) {
    header('*', command.size());
    for (const std::string& argument : command) {
      header('$', argument.size());
      out.append(argument);
      out.append("\r\n", 2);
    }
  }
  return out;
}

void Client::ContextDeleter::operator()(redisContext* context) const { redisFree(context); }

Client::Client(Options options) : options_(std::move(options)) {
  options_.connections = std::max(1, options_.connections);
}

Client::~Client() = default;

absl::StatusOr<Client::ContextPtr> Client::Connect() const {
  timeval timeout = ToTimeval(options_.timeout);
  ContextPtr context(redisConnectWithTimeout(options_.host.c_str(), options_.port, timeout));
  if (!context || context->err != 0) {
    std::string reason = !context ? "out of memory" : context->errstr;
    return absl::UnavailableError(
        absl::StrCat("redis ", options_.host, ":", options_.port, ": ", reason));
  }
  redisSetTimeout(context.get(), timeout);
  return context;
}

absl::StatusOr<std::vector<Reply>> Client::PipelineOn(ContextPtr& context,
                                                      const std::vector<Command>& commands) {
  // One formatted buffer for the whole pipeline: hiredis's own formatting (sdscatfmt, one
  // sds string per command) cost more than the rest of the Redis client.
  std::string formatted = FormatCommands(commands);
  if (!formatted.empty() &&
      redisAppendFormattedCommand(context.get(), formatted.data(), formatted.size()) != REDIS_OK) {
    context.reset();
    return absl::UnavailableError("redis: could not queue a command");
  }
  std::vector<Reply> replies;
  replies.reserve(commands.size());
  for (size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(context.get(), &raw) != REDIS_OK || raw == nullptr) {
      std::string reason = context->errstr;
      context.reset();  // a half-read pipeline leaves the connection unusable
      return absl::UnavailableError(absl::StrCat("redis: ", reason));
    }
    std::unique_ptr<redisReply, ReplyDeleter> reply(static_cast<redisReply*>(raw));
    replies.push_back(Convert(*reply));
  }
  return replies;
}

absl::StatusOr<std::vector<Reply>> Client::Pipeline(const std::vector<Command>& commands) {
  ContextPtr context;
  {
    std::unique_lock lock(mutex_);
    available_.wait(lock, [this] {
      return !idle_.empty() || checked_out_ + static_cast<int>(idle_.size()) < options_.connections;
    });
    ++checked_out_;
    if (!idle_.empty()) {
      context = std::move(idle_.back());
      idle_.pop_back();
    }
  }
  absl::StatusOr<std::vector<Reply>> result;
  if (!context) {
    auto connected = Connect();
    if (connected.ok()) {
      context = std::move(*connected);
    } else {
      result = connected.status();
    }
  }
  if (context) {
    result = PipelineOn(context, commands);
  }
  {
    std::lock_guard lock(mutex_);
    --checked_out_;
    if (context) {
      idle_.push_back(std::move(context));
    }
  }
  available_.notify_one();
  return result;
}

absl::StatusOr<Reply> Client::Run(const Command& command) {
  auto replies = Pipeline({command});
  if (!replies.ok()) {
    return replies.status();
  }
  return std::move(replies->front());
}

}  // namespace leadflow::redis
