#include "email-ingest/imap.h"

#include <curl/curl.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <sstream>

namespace leadflow::email {
namespace {

struct Sink {
  std::string* out;
  size_t max_bytes;
  bool overflow = false;
};

size_t Write(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<Sink*>(user);
  size_t bytes = size * count;
  if (sink->out->size() + bytes > sink->max_bytes) {
    sink->overflow = true;
    return 0;  // aborts the transfer
  }
  sink->out->append(data, bytes);
  return bytes;
}

std::string EscapePath(const std::string& folder) {
  char* escaped = curl_easy_escape(nullptr, folder.data(), static_cast<int>(folder.size()));
  std::string result = escaped ? escaped : folder;
  curl_free(escaped);
  return result;
}

}  // namespace

ImapClient::ImapClient(ImapOptions options) : options_(std::move(options)) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  curl_ = curl_easy_init();
}

ImapClient::~ImapClient() {
  if (curl_ != nullptr) curl_easy_cleanup(static_cast<CURL*>(curl_));
}

absl::StatusOr<std::string> ImapClient::Command(const std::string& path, const std::string& command,
                                                size_t max_bytes) {
  CURL* curl = static_cast<CURL*>(curl_);
  if (curl == nullptr) return absl::InternalError("libcurl did not initialise");
  std::string url = options_.url;
  while (!url.empty() && url.back() == '/') url.pop_back();
  url += "/" + path;
  std::string out;
  Sink sink{&out, max_bytes};
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_USERNAME, options_.user.c_str());
  curl_easy_setopt(curl, CURLOPT_PASSWORD, options_.password.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, command.empty() ? nullptr : command.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &Write);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.timeout.count()));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout.count()));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_TRY));
  if (options_.insecure_tls) {
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  CURLcode code = curl_easy_perform(curl);
  if (sink.overflow) return absl::OutOfRangeError("larger than the limit");
  if (code != CURLE_OK) {
    return absl::UnavailableError(
        std::string("imap ") +
        (command.empty() ? "FETCH" : command.substr(0, command.find(' ', 4))) + ": " +
        curl_easy_strerror(code));
  }
  return out;
}

absl::StatusOr<uint32_t> ImapClient::UidValidity() {
  // Each round starts on a new connection: servers drop idle ones between rounds, and a
  // long-lived session may keep a stale view of a folder recreated behind it.
  if (curl_ != nullptr) curl_easy_cleanup(static_cast<CURL*>(curl_));
  curl_ = curl_easy_init();
  auto out = Command("", "STATUS \"" + options_.folder + "\" (UIDVALIDITY)", 64 * 1024);
  if (!out.ok()) return out.status();
  size_t at = out->find("UIDVALIDITY ");
  if (at == std::string::npos) return absl::UnavailableError("no UIDVALIDITY in STATUS answer");
  return static_cast<uint32_t>(std::stoul(out->substr(at + 12)));
}

absl::StatusOr<std::vector<uint32_t>> ImapClient::Unmarked(uint32_t uid_validity) {
  std::string search = "UID SEARCH UNKEYWORD " + options_.keyword;
  if (options_.since_days > 0) {
    // IMAP's date ("1-Nov-2026", RFC 3501 date-text), in UTC: a day's difference of zone only
    // widens the window.
    static const char* const kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    std::chrono::year_month_day day{std::chrono::floor<std::chrono::days>(
        std::chrono::system_clock::now() - std::chrono::days(options_.since_days))};
    search += " SINCE " + std::to_string(static_cast<unsigned>(day.day())) + "-" +
              kMonths[static_cast<unsigned>(day.month()) - 1] + "-" +
              std::to_string(static_cast<int>(day.year()));
  }
  auto out = Command(EscapePath(options_.folder) + ";UIDVALIDITY=" + std::to_string(uid_validity),
                     search, 16 * 1024 * 1024);
  if (!out.ok()) return out.status();
  std::vector<uint32_t> uids;
  std::istringstream lines(*out);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("* SEARCH", 0) != 0) continue;
    std::istringstream numbers(line.substr(8));
    uint32_t uid = 0;
    while (numbers >> uid) uids.push_back(uid);
  }
  std::sort(uids.begin(), uids.end());
  return uids;
}

absl::StatusOr<std::string> ImapClient::Fetch(uint32_t uid_validity, uint32_t uid) {
  // libcurl's own FETCH ("UID FETCH <uid> BODY[]"): it hands over the literal, which it does
  // not for a custom command. Reading sets \Seen, as any mail client reading it would.
  auto out = Command(EscapePath(options_.folder) + ";UIDVALIDITY=" + std::to_string(uid_validity) +
                         "/;UID=" + std::to_string(uid),
                     "", options_.max_message_bytes);
  if (!out.ok()) return out.status();
  if (out->empty()) return absl::NotFoundError("message gone");
  return out;
}

absl::Status ImapClient::Mark(uint32_t uid_validity, uint32_t uid) {
  auto out =
      Command(EscapePath(options_.folder) + ";UIDVALIDITY=" + std::to_string(uid_validity),
              "UID STORE " + std::to_string(uid) + " +FLAGS (" + options_.keyword + ")", 64 * 1024);
  return out.status();
}

ImapPoller::ImapPoller(ImapOptions options, ImapClient* client, Intake* intake,
                       metrics::Registry* registry)
    : options_(std::move(options)),
      client_(client),
      intake_(intake),
      rounds_(&registry->AddCounter("email_imap_polls_total",
                                    "IMAP polling rounds, by outcome (ok, error).", {"outcome"})),
      messages_(&registry->AddCounter(
          "email_imap_messages_total",
          "IMAP messages handled: published, dropped (not a lead), rejected, too_large (marked "
          "without an event), retry (Kafka did not take it: left unmarked).",
          {"outcome"})),
      uid_validity_changes_(
          &registry
               ->AddCounter("email_imap_uidvalidity_changes_total",
                            "Times the polled folder's UIDVALIDITY changed (folder recreated).")
               .WithLabels({})) {}

ImapPoller::~ImapPoller() { Stop(); }

absl::StatusOr<ImapPoller::Round> ImapPoller::PollOnce() {
  Round round;
  auto failed = [this](const absl::Status& status) {
    rounds_->WithLabels({"error"}).Increment();
    spdlog::warn("imap: {}", status.ToString());
    return status;
  };
  absl::StatusOr<uint32_t> validity = client_->UidValidity();
  if (!validity.ok()) return failed(validity.status());
  if (last_uid_validity_ != 0 && *validity != last_uid_validity_) {
    uid_validity_changes_->Increment();
    spdlog::warn("imap: UIDVALIDITY of {} changed ({} → {}): importing its unmarked messages",
                 options_.folder, last_uid_validity_, *validity);
  }
  last_uid_validity_ = *validity;
  absl::StatusOr<std::vector<uint32_t>> uids = client_->Unmarked(*validity);
  if (!uids.ok()) return failed(uids.status());
  size_t handled = 0;
  for (uint32_t uid : *uids) {
    if (handled++ >= options_.max_per_poll) break;
    absl::StatusOr<std::string> raw = client_->Fetch(*validity, uid);
    if (!raw.ok() && raw.status().code() == absl::StatusCode::kNotFound) continue;  // expunged
    if (!raw.ok() && raw.status().code() != absl::StatusCode::kOutOfRange) {
      return failed(raw.status());
    }
    std::string outcome;
    if (!raw.ok()) {
      outcome = "too_large";
    } else {
      Envelope envelope{.provider = "imap",
                        .mail_from = std::nullopt,
                        .mailbox = options_.address,
                        .client_ip = "",
                        .received = std::chrono::system_clock::now()};
      auto promise = std::make_shared<std::promise<IntakeResult>>();
      std::future<IntakeResult> future = promise->get_future();
      intake_->SubmitRaw(*raw, envelope,
                         [promise](const IntakeResult& result) { promise->set_value(result); });
      // The intake answers by the producer's delivery timeout; the bound is a safety net.
      if (future.wait_for(std::chrono::minutes(2)) != std::future_status::ready) {
        return failed(absl::DeadlineExceededError("no answer from the intake"));
      }
      IntakeResult result = future.get();
      switch (result.kind) {
        case IntakeResult::Kind::kPublished:
          outcome = "published";
          break;
        case IntakeResult::Kind::kDropped:
          outcome = "dropped";
          break;
        case IntakeResult::Kind::kRejected:
          outcome = "rejected";
          break;
        case IntakeResult::Kind::kTemporary:
          outcome = "retry";
          break;
      }
    }
    messages_->WithLabels({outcome}).Increment();
    if (outcome == "retry") {
      // Left unmarked: the next round tries it again, and the ones after it.
      round.kafka_failed = true;
      break;
    }
    if (absl::Status marked = client_->Mark(*validity, uid); !marked.ok()) {
      // Imported but not marked: the next round publishes it again (same event id).
      return failed(marked);
    }
    if (outcome == "published")
      ++round.published;
    else if (outcome == "dropped")
      ++round.dropped;
    else
      ++round.rejected;
  }
  rounds_->WithLabels({"ok"}).Increment();
  return round;
}

void ImapPoller::Start() {
  thread_ = std::thread([this] {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      lock.unlock();
      (void)PollOnce();
      lock.lock();
      wake_.wait_for(lock, options_.interval, [this] { return stopping_; });
    }
  });
}

void ImapPoller::Stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace leadflow::email
