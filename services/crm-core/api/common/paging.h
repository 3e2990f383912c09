#pragma once

#include <google/protobuf/message.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace leadflow::crm {

/// A List call's page, validated once for every List method: page_size (0: 50, at most 1000,
/// negative refused) and page_token.
///
/// A page token is opaque to clients and bound to the query that issued it: it carries the List
/// method (the request's message type), a digest of every other field of the request (filters,
/// order; page_size may change between pages), and the key the next page starts after, signed
/// with HMAC-SHA256 under the server's page token key (CRM_PAGE_TOKEN_KEY, else the database's,
/// migration 0023). A token this server did not issue, altered, or sent with another method or
/// other filters is refused with INVALID_ARGUMENT saying which; one sent back with the same
/// query keeps working across restarts and replicas, which share the key.
struct Page {
  int size = 0;
  int64_t after_id = 0;  // 0: the first page
  /// Rows to read: one more than the page, to know whether there is a next one.
  int limit() const { return size + 1; }
  /// The token of the page after `after_id`, bound to the same query.
  std::string NextToken(int64_t after_id) const;

  std::string_view key;
  std::string method;  // the request's full message name
  std::string query;   // digest of the request without page_size and page_token
};

/// Reads `request`'s page_size and page_token (every List request has both) and checks the
/// token against `request` under `key` (not empty).
absl::StatusOr<Page> ParsePage(std::string_view key, const google::protobuf::Message& request);

/// Adds the page's records (read with Page::limit()) to a response through `add`, and sets the
/// next page token when there was one more.
template <typename Record, typename Add>
void FillPage(const std::vector<Record>& records, const Page& page, Add add,
              std::string* next_page_token) {
  for (size_t i = 0; i < records.size() && static_cast<int>(i) < page.size; ++i) {
    add(records[i]);
  }
  if (static_cast<int>(records.size()) > page.size) {
    *next_page_token = page.NextToken(records[static_cast<size_t>(page.size) - 1].id);
  }
}

}  // namespace leadflow::crm
