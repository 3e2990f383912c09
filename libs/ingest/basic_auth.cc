#include "ingest/basic_auth.h"

#include <openssl/evp.h>

#include <cctype>

#include "ingest/signature.h"

namespace leadflow::ingest {

std::optional<std::string> Base64Decode(std::string_view text) {
  std::string padded(text);
  if (padded.size() % 4 == 2) padded += "==";
  if (padded.size() % 4 == 3) padded += "=";
  if (padded.size() % 4 != 0) return std::nullopt;
  for (char c : padded) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '/' && c != '=') {
      return std::nullopt;
    }
  }
  std::string out(padded.size() / 4 * 3, '\0');
  int written = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(padded.data()),
                                static_cast<int>(padded.size()));
  if (written < 0) return std::nullopt;
  // EVP_DecodeBlock counts the padding as zero bytes.
  size_t padding = 0;
  for (size_t i = padded.size(); i > 0 && padded[i - 1] == '='; --i) ++padding;
  if (padding > 2) return std::nullopt;
  out.resize(static_cast<size_t>(written) - padding);
  return out;
}

absl::Status VerifyBasicAuth(std::string_view expected,
                             const std::optional<std::string>& authorization) {
  if (expected.empty()) {
    return absl::FailedPreconditionError("no credentials configured");
  }
  if (!authorization) {
    return absl::UnauthenticatedError("missing credentials");
  }
  std::string_view header = *authorization;
  if (header.size() < 6) return absl::UnauthenticatedError("malformed credentials");
  std::string scheme(header.substr(0, 6));
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme != "basic ") return absl::UnauthenticatedError("not Basic credentials");
  std::string_view encoded = header.substr(6);
  while (!encoded.empty() && encoded.front() == ' ') encoded.remove_prefix(1);
  while (!encoded.empty() && encoded.back() == ' ') encoded.remove_suffix(1);
  std::optional<std::string> decoded = Base64Decode(encoded);
  if (!decoded) return absl::UnauthenticatedError("malformed credentials");
  if (!ConstantTimeEquals(*decoded, expected)) {
    return absl::UnauthenticatedError("wrong credentials");
  }
  return absl::OkStatus();
}

}  // namespace leadflow::ingest
