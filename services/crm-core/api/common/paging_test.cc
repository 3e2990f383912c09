// Protects: a page token is honoured only with the query that issued it (api/common/paging.h).
// A token read back with the same method, filters and key gives the page after the key it
// carries, whatever the page_size; altered in any byte, forged in the former "after:<id>"
// format, made under another key, sent to another List method or with other filters, it is
// INVALID_ARGUMENT with a message saying which, and no page is read.

#include "crm-core/api/common/paging.h"

#include <gtest/gtest.h>

#include <string>

#include "absl/strings/escaping.h"
#include "leadflow/crm/v1/contact.pb.h"
#include "leadflow/crm/v1/lead.pb.h"

namespace leadflow::crm {
namespace {

const std::string kKey = "a-page-token-key-for-the-unit-test-0123456789";

v1::ListLeadsRequest NewLeads() {
  v1::ListLeadsRequest request;
  request.set_status_id("NEW");
  request.set_page_size(2);
  return request;
}

// The token a first page of `request` ends with when its last record is `after`.
std::string TokenFor(const google::protobuf::Message& request, int64_t after,
                     const std::string& key = kKey) {
  auto page = ParsePage(key, request);
  EXPECT_TRUE(page.ok()) << page.status();
  return page->NextToken(after);
}

void ExpectRefused(const absl::StatusOr<Page>& page, const std::string& words) {
  ASSERT_FALSE(page.ok());
  EXPECT_EQ(page.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(page.status().message().find(words), std::string::npos) << page.status();
}

TEST(Paging, FirstPageHasDefaultsAndBounds) {
  v1::ListLeadsRequest request;
  auto page = ParsePage(kKey, request);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->size, 50);
  EXPECT_EQ(page->after_id, 0);
  request.set_page_size(5000);
  EXPECT_EQ(ParsePage(kKey, request)->size, 1000);
  request.set_page_size(-1);
  ExpectRefused(ParsePage(kKey, request), "page_size must not be negative");
}

TEST(Paging, TokenGivesTheNextPageOfTheSameQuery) {
  v1::ListLeadsRequest request = NewLeads();
  request.set_page_token(TokenFor(NewLeads(), 42));
  auto page = ParsePage(kKey, request);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->after_id, 42);
  // page_size may change between pages; the token still fits the query.
  request.set_page_size(7);
  page = ParsePage(kKey, request);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->after_id, 42);
  EXPECT_EQ(page->size, 7);
}

TEST(Paging, FillPageSignsTheLastRecordShown) {
  struct Row {
    int64_t id;
  };
  v1::ListLeadsRequest request = NewLeads();
  auto page = ParsePage(kKey, request);
  ASSERT_TRUE(page.ok());
  std::vector<int64_t> shown;
  std::string next;
  FillPage(
      std::vector<Row>{{9}, {8}, {7}}, *page, [&](const Row& row) { shown.push_back(row.id); },
      &next);
  EXPECT_EQ(shown, (std::vector<int64_t>{9, 8}));
  request.set_page_token(next);
  EXPECT_EQ(ParsePage(kKey, request)->after_id, 8);
  // The last page has no token.
  std::string none;
  FillPage(
      std::vector<Row>{{1}}, *page, [](const Row&) {}, &none);
  EXPECT_EQ(none, "");
}

TEST(Paging, EveryAlteredByteIsRefused) {
  std::string raw;
  ASSERT_TRUE(absl::WebSafeBase64Unescape(TokenFor(NewLeads(), 42), &raw));
  for (size_t i = 0; i < raw.size(); ++i) {
    std::string altered = raw;
    altered[i] = static_cast<char>(altered[i] ^ 0x01);
    v1::ListLeadsRequest request = NewLeads();
    request.set_page_token(absl::WebSafeBase64Escape(altered));
    ExpectRefused(ParsePage(kKey, request), "not one this server issued");
  }
}

TEST(Paging, ForgedTokensAreRefused) {
  for (const std::string& forged :
       {absl::WebSafeBase64Escape("after:2"), std::string("not base64 at all!"),
        std::string(200, 'A'), absl::WebSafeBase64Escape(std::string(41, '\0'))}) {
    v1::ListLeadsRequest request = NewLeads();
    request.set_page_token(forged);
    ExpectRefused(ParsePage(kKey, request), "not one this server issued");
  }
}

TEST(Paging, TokenOfAnotherKeyIsRefused) {
  v1::ListLeadsRequest request = NewLeads();
  request.set_page_token(TokenFor(NewLeads(), 42, "another-key-another-key-another-key-0"));
  ExpectRefused(ParsePage(kKey, request), "not one this server issued");
}

TEST(Paging, TokenOfAnotherMethodIsRefused) {
  v1::ListContactsRequest contacts;
  contacts.set_page_token(TokenFor(v1::ListLeadsRequest(), 42));
  ExpectRefused(ParsePage(kKey, contacts), "another List method");
}

TEST(Paging, TokenWithOtherFiltersIsRefused) {
  const std::string token = TokenFor(NewLeads(), 42);
  v1::ListLeadsRequest other_status = NewLeads();
  other_status.set_status_id("IN_PROCESS");
  v1::ListLeadsRequest no_status = NewLeads();
  no_status.clear_status_id();
  v1::ListLeadsRequest more = NewLeads();
  more.set_responsible_user_id(3);
  for (v1::ListLeadsRequest* request : {&other_status, &no_status, &more}) {
    request->set_page_token(token);
    ExpectRefused(ParsePage(kKey, *request), "other filters");
  }
}

}  // namespace
}  // namespace leadflow::crm
