#include "crm-core/domain/email/thread.h"

#include <algorithm>

#include "crm-core/domain/common/text.h"

namespace leadflow::crm::domain {

bool IsUsableMessageId(std::string_view id) {
  if (id.empty() || id.size() > kMaxMessageIdBytes) {
    return false;
  }
  return std::all_of(id.begin(), id.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

std::vector<std::string> ThreadCandidates(std::string_view own_message_id,
                                          std::string_view in_reply_to,
                                          const std::vector<std::string>& references) {
  std::vector<std::string> candidates;
  auto add = [&](std::string_view id) {
    id = TrimAscii(id);
    if (candidates.size() >= kMaxThreadLookups || !IsUsableMessageId(id) || id == own_message_id) {
      return;
    }
    if (std::find(candidates.begin(), candidates.end(), id) == candidates.end()) {
      candidates.emplace_back(id);
    }
  };
  add(in_reply_to);
  for (auto reference = references.rbegin(); reference != references.rend(); ++reference) {
    add(*reference);
  }
  return candidates;
}

std::optional<ThreadDecision> DecideThread(const std::vector<std::string>& candidates,
                                           const std::vector<ThreadMessage>& stored) {
  for (const std::string& candidate : candidates) {
    auto found = std::find_if(stored.begin(), stored.end(), [&](const ThreadMessage& message) {
      return message.message_id == candidate;
    });
    if (found == stored.end()) {
      continue;
    }
    return ThreadDecision{.thread_key = found->thread_key,
                          .owner = found->owner,
                          .join_activity = found->open_activity,
                          .responsible = found->owner_responsible};
  }
  return std::nullopt;
}

bool ReplyToTrusted(const std::set<std::string>& trusted, std::string_view mailbox) {
  if (trusted.empty()) {
    return false;
  }
  const std::string address = NormalizeRouteAddress(mailbox);
  return !address.empty() && trusted.count(address) != 0;
}

std::string CutUtf8(std::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) {
    return std::string(text);
  }
  size_t end = max_bytes;
  // Back off continuation bytes (10xxxxxx) so that no character is cut in two.
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) {
    --end;
  }
  return std::string(text.substr(0, end));
}

std::string NormalizeRouteAddress(std::string_view address) {
  std::string normalized = AsciiLower(TrimAscii(address));
  const size_t at = normalized.find('@');
  if (at == std::string::npos || at == 0 || at > 64 || normalized.size() - at - 1 == 0 ||
      normalized.size() - at - 1 > 255 || normalized.find('@', at + 1) != std::string::npos) {
    return "";
  }
  for (unsigned char c : normalized) {
    if (c <= 0x20 || c == 0x7f) {
      return "";
    }
  }
  return normalized;
}

}  // namespace leadflow::crm::domain
