#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace leadflow::crm {

/// A List call's page, validated once for every List method: page_size (0: 50, at most 1000,
/// negative refused) and page_token (opaque to clients: "the id the next page starts after",
/// encoded; refused when this server did not issue it).
struct Page {
  int size = 0;
  int64_t after_id = 0;  // 0: the first page
  /// Rows to read: one more than the page, to know whether there is a next one.
  int limit() const { return size + 1; }
};
absl::StatusOr<Page> ParsePage(int32_t page_size, const std::string& page_token);

std::string EncodePageToken(int64_t after_id);
absl::StatusOr<int64_t> DecodePageToken(const std::string& token);

/// Adds the page's records (read with Page::limit()) to a response through `add`, and sets the
/// next page token when there was one more.
template <typename Record, typename Add>
void FillPage(const std::vector<Record>& records, const Page& page, Add add,
              std::string* next_page_token) {
  for (size_t i = 0; i < records.size() && static_cast<int>(i) < page.size; ++i) {
    add(records[i]);
  }
  if (static_cast<int>(records.size()) > page.size) {
    *next_page_token = EncodePageToken(records[static_cast<size_t>(page.size) - 1].id);
  }
}

}  // namespace leadflow::crm
