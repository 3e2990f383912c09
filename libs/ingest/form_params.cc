#include "ingest/form_params.h"

#include "absl/strings/str_cat.h"
#include "identity/identity.h"
#include "ingest/signature.h"

namespace leadflow::ingest {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool Decode(std::string_view text, std::string* out) {
  out->clear();
  out->reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '+') {
      out->push_back(' ');
    } else if (c == '%') {
      if (i + 2 >= text.size()) {
        return false;
      }
      int high = HexValue(text[i + 1]);
      int low = HexValue(text[i + 2]);
      if (high < 0 || low < 0) {
        return false;
      }
      out->push_back(static_cast<char>(high * 16 + low));
      i += 2;
    } else {
      out->push_back(c);
    }
  }
  return true;
}

}  // namespace

absl::StatusOr<FormParams> ParseFormParams(std::string_view body, size_t max_pairs) {
  FormParams params;
  size_t start = 0;
  while (start <= body.size()) {
    size_t end = body.find('&', start);
    if (end == std::string_view::npos) {
      end = body.size();
    }
    std::string_view pair = body.substr(start, end - start);
    start = end + 1;
    if (pair.empty()) {
      if (end == body.size()) break;
      continue;
    }
    if (params.size() == max_pairs) {
      return absl::InvalidArgumentError(absl::StrCat("more than ", max_pairs, " parameters"));
    }
    size_t equals = pair.find('=');
    std::string name;
    std::string value;
    if (!Decode(pair.substr(0, equals), &name) ||
        (equals != std::string_view::npos && !Decode(pair.substr(equals + 1), &value))) {
      return absl::InvalidArgumentError("bad %-escape");
    }
    if (name.find('\0') != std::string::npos || value.find('\0') != std::string::npos ||
        !identity::IsValidUtf8(name) || !identity::IsValidUtf8(value)) {
      return absl::InvalidArgumentError("parameters must be UTF-8 text without NUL bytes");
    }
    params.emplace_back(std::move(name), std::move(value));
    if (end == body.size()) break;
  }
  return params;
}

std::optional<std::string> FindParam(const FormParams& params, std::string_view name) {
  for (const auto& [key, value] : params) {
    if (key == name) {
      return value;
    }
  }
  return std::nullopt;
}

absl::Status VerifyTwilioRequest(std::string_view auth_token, std::string_view public_url,
                                 std::string_view target, const FormParams& params,
                                 std::string_view signature_header) {
  std::string base(public_url);
  while (!base.empty() && base.back() == '/') {
    base.pop_back();
  }
  absl::Status status =
      VerifyTwilioSignature(auth_token, base + std::string(target), params, signature_header);
  if (status.ok()) {
    return status;
  }
  // Twilio signs some URLs with the scheme's default port written out and some without; its
  // own RequestValidator accepts both forms, so the other one is tried before refusing.
  if (std::optional<std::string> other = OtherDefaultPortForm(base)) {
    if (VerifyTwilioSignature(auth_token, *other + std::string(target), params, signature_header)
            .ok()) {
      return absl::OkStatus();
    }
  }
  return status;
}

std::optional<std::string> OtherDefaultPortForm(std::string_view url) {
  std::string_view port;
  if (url.rfind("https://", 0) == 0) {
    port = ":443";
  } else if (url.rfind("http://", 0) == 0) {
    port = ":80";
  } else {
    return std::nullopt;
  }
  const size_t host = url.find("://") + 3;
  size_t host_end = url.find_first_of("/?#", host);
  if (host_end == std::string_view::npos) {
    host_end = url.size();
  }
  std::string_view authority = url.substr(host, host_end - host);
  std::string text(url);
  if (authority.size() > port.size() && authority.substr(authority.size() - port.size()) == port) {
    return text.erase(host_end - port.size(), port.size());  // ":443" written: without it
  }
  // No port written (a colon after the last "]" of an IPv6 literal would be one): with it.
  size_t bracket = authority.rfind(']');
  if (authority.find(':', bracket == std::string_view::npos ? 0 : bracket) !=
      std::string_view::npos) {
    return std::nullopt;  // another port: one form only
  }
  return text.insert(host_end, port);
}

}  // namespace leadflow::ingest
