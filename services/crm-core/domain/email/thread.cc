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

const std::vector<std::string>& DefaultPublicMailDomains() {
  static const std::vector<std::string> domains = {
      // International
      "gmail.com", "googlemail.com", "outlook.com", "outlook.fr", "outlook.de", "hotmail.com",
      "hotmail.fr", "hotmail.de", "hotmail.it", "hotmail.es", "hotmail.co.uk", "live.com",
      "live.fr", "live.de", "live.co.uk", "msn.com", "yahoo.com", "yahoo.fr", "yahoo.de",
      "yahoo.it", "yahoo.es", "yahoo.co.uk", "ymail.com", "aol.com", "icloud.com", "me.com",
      "mac.com", "proton.me", "protonmail.com", "pm.me", "gmx.*", "mail.com", "zoho.com",
      "fastmail.com", "tutanota.com", "tuta.io", "hey.com",
      // France
      "orange.fr", "wanadoo.fr", "free.fr", "sfr.fr", "neuf.fr", "laposte.net", "bbox.fr",
      "numericable.fr", "aliceadsl.fr",
      // Germany, Italy, Spain, Benelux, Central Europe
      "web.de", "t-online.de", "freenet.de", "libero.it", "virgilio.it", "tiscali.it",
      "telefonica.net", "skynet.be", "telenet.be", "ziggo.nl", "seznam.cz", "wp.pl", "o2.pl",
      "interia.pl", "onet.pl",
      // Russia and neighbours
      "mail.ru", "inbox.ru", "list.ru", "bk.ru", "internet.ru", "yandex.ru", "yandex.com", "ya.ru",
      "rambler.ru", "ukr.net",
      // Asia
      "qq.com", "163.com", "126.com", "sina.com", "naver.com", "daum.net", "rediffmail.com"};
  return domains;
}

std::string NormalizeMailDomainPattern(std::string_view pattern) {
  std::string normalized = AsciiLower(TrimAscii(pattern));
  std::string_view name = normalized;
  const bool wildcard = name.size() > 2 && name.substr(name.size() - 2) == ".*";
  if (wildcard) name.remove_suffix(2);
  if (name.empty() || name.size() > 255 || name.front() == '.' || name.back() == '.' ||
      (!wildcard && name.find('.') == std::string_view::npos)) {
    return "";
  }
  for (unsigned char c : name) {
    if (c <= 0x20 || c == 0x7f || c == '@' || c == '*' || c == ',') {
      return "";
    }
  }
  return normalized;
}

std::string AddressDomain(std::string_view address) {
  const size_t at = address.rfind('@');
  if (at == std::string_view::npos) {
    return "";
  }
  return AsciiLower(TrimAscii(address.substr(at + 1)));
}

bool SharedMailDomain(const std::vector<std::string>& patterns, std::string_view domain) {
  return std::any_of(patterns.begin(), patterns.end(), [&](const std::string& pattern) {
    if (pattern.size() > 2 && pattern.compare(pattern.size() - 2, 2, ".*") == 0) {
      // "gmx.*": "gmx." and at least one more character.
      const std::string_view stem = std::string_view(pattern).substr(0, pattern.size() - 1);
      return domain.size() > stem.size() && domain.substr(0, stem.size()) == stem;
    }
    return domain == pattern;
  });
}

std::string ColleagueDomain(std::string_view sender,
                            const std::vector<std::string>& public_patterns,
                            const std::set<std::string>& own_domains, std::string_view mailbox) {
  std::string domain = AddressDomain(sender);
  if (domain.empty() || domain.find('.') == std::string::npos ||
      SharedMailDomain(public_patterns, domain) || own_domains.count(domain) != 0 ||
      domain == AddressDomain(mailbox)) {
    return "";
  }
  return domain;
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
