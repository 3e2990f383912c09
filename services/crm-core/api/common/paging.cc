#include "crm-core/api/common/paging.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <memory>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace leadflow::crm {
namespace {

constexpr int kDefaultPageSize = 50;
constexpr int kMaxPageSize = 1000;

// A token, before base64url: version, method digest, query digest, the key to start after
// (big-endian), then the first bytes of the HMAC-SHA256 of all that.
constexpr char kVersion = 1;
constexpr size_t kMethodBytes = 8;
constexpr size_t kQueryBytes = 16;
constexpr size_t kAfterBytes = 8;
constexpr size_t kMacBytes = 16;
constexpr size_t kSignedBytes = 1 + kMethodBytes + kQueryBytes + kAfterBytes;
constexpr size_t kTokenBytes = kSignedBytes + kMacBytes;
// Longer than any token this server issues: refused before decoding.
constexpr size_t kMaxTokenLength = 128;

std::string Sha256(std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), digest.data(), &length, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<const char*>(digest.data()), length);
}

std::string Mac(std::string_view key, std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac.data(), &length);
  return std::string(reinterpret_cast<const char*>(mac.data()),
                     std::min<size_t>(length, kMacBytes));
}

// The request as the query it asks, without where the page starts or how long it is: the
// deterministic serialization of every other field (filters, order, …).
std::string QueryDigest(const google::protobuf::Message& request) {
  std::unique_ptr<google::protobuf::Message> query(request.New());
  query->CopyFrom(request);
  const google::protobuf::Descriptor* descriptor = query->GetDescriptor();
  const google::protobuf::Reflection* reflection = query->GetReflection();
  for (const char* name : {"page_size", "page_token"}) {
    if (const google::protobuf::FieldDescriptor* field = descriptor->FindFieldByName(name)) {
      reflection->ClearField(query.get(), field);
    }
  }
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    query->SerializeToCodedStream(&coded);
  }
  return Sha256(bytes).substr(0, kQueryBytes);
}

absl::Status Refused(const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat(
      "page_token ", why,
      "; send back the next_page_token of the previous page with the same request, or none for "
      "the first page"));
}

}  // namespace

std::string Page::NextToken(int64_t after) const {
  std::string signed_part;
  signed_part.reserve(kTokenBytes);
  signed_part.push_back(kVersion);
  signed_part += method;
  signed_part += query;
  auto value = static_cast<uint64_t>(after);
  for (int shift = 56; shift >= 0; shift -= 8) {
    signed_part.push_back(static_cast<char>((value >> shift) & 0xff));
  }
  return absl::WebSafeBase64Escape(signed_part + Mac(key, signed_part));
}

absl::StatusOr<Page> ParsePage(std::string_view key, const google::protobuf::Message& request) {
  const google::protobuf::Descriptor* descriptor = request.GetDescriptor();
  const google::protobuf::Reflection* reflection = request.GetReflection();
  const google::protobuf::FieldDescriptor* size_field = descriptor->FindFieldByName("page_size");
  const google::protobuf::FieldDescriptor* token_field = descriptor->FindFieldByName("page_token");
  if (size_field == nullptr || token_field == nullptr ||
      size_field->cpp_type() != google::protobuf::FieldDescriptor::CPPTYPE_INT32 ||
      token_field->cpp_type() != google::protobuf::FieldDescriptor::CPPTYPE_STRING ||
      size_field->is_repeated() || token_field->is_repeated()) {
    return absl::InternalError(absl::StrCat(descriptor->full_name(), " is not a List request"));
  }
  const int32_t page_size = reflection->GetInt32(request, size_field);
  const std::string token = reflection->GetString(request, token_field);
  Page page{.key = key,
            .method = Sha256(descriptor->full_name()).substr(0, kMethodBytes),
            .query = QueryDigest(request)};
  if (!token.empty()) {
    std::string decoded;
    if (token.size() > kMaxTokenLength || !absl::WebSafeBase64Unescape(token, &decoded) ||
        decoded.size() != kTokenBytes || decoded[0] != kVersion) {
      return Refused("is not one this server issued");
    }
    std::string_view signed_part = std::string_view(decoded).substr(0, kSignedBytes);
    std::string expected = Mac(key, signed_part);
    if (CRYPTO_memcmp(expected.data(), decoded.data() + kSignedBytes, kMacBytes) != 0) {
      return Refused("is not one this server issued (forged or altered)");
    }
    if (signed_part.substr(1, kMethodBytes) != page.method) {
      return Refused(
          absl::StrCat("was issued by another List method, not for ", descriptor->full_name()));
    }
    if (signed_part.substr(1 + kMethodBytes, kQueryBytes) != page.query) {
      return Refused(
          "was issued for other filters or order than this request's (only page_size may change "
          "between pages)");
    }
    uint64_t value = 0;
    for (size_t i = 1 + kMethodBytes + kQueryBytes; i < kSignedBytes; ++i) {
      value = (value << 8) | static_cast<unsigned char>(signed_part[i]);
    }
    page.after_id = static_cast<int64_t>(value);
    if (page.after_id <= 0) {
      return Refused("is not one this server issued");
    }
  }
  if (page_size < 0) {
    return absl::InvalidArgumentError("page_size must not be negative");
  }
  page.size = page_size == 0 ? kDefaultPageSize : std::min(page_size, kMaxPageSize);
  return page;
}

}  // namespace leadflow::crm
