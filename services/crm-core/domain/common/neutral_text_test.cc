#include "crm-core/domain/common/neutral_text.h"

#include <gtest/gtest.h>

namespace leadflow::crm::domain {
namespace {

// Protects (A3): bidirectional embeddings, overrides and isolates are removed from inbound text,
// so "abc \u202e fdp.exe" cannot display as "abc exe.pdf" in a title, a name or a comment.
TEST(NeutralizeTextTest, RemovesBidirectionalControls) {
  EXPECT_EQ(NeutralizeText("abc \u202e fdp.exe"), "abc  fdp.exe");
  EXPECT_EQ(NeutralizeText("\u202aa\u202bb\u202cc\u202dd\u2066e\u2067f\u2068g\u2069"), "abcdefg");
}

// Protects: other control characters become a space (a line break kept only in multi-line text:
// comments, descriptions); a NUL is dropped, no end of text; bytes that are not UTF-8 become
// U+FFFD.
TEST(NeutralizeTextTest, ControlsBecomeSpacesAndBadBytesAReplacement) {
  EXPECT_EQ(NeutralizeText(std::string("a\0b\x01"
                                       "c\x7f"
                                       "d\u0085e",
                                       10)),
            "ab c d e");
  EXPECT_EQ(NeutralizeText("one\ntwo\tthree"), "one two three");
  EXPECT_EQ(NeutralizeText("one\r\ntwo\tthree", true), "one\r\ntwo\tthree");
  EXPECT_EQ(NeutralizeText("a\xff"
                           "b\xc3"),
            "a\xEF\xBF\xBD"
            "b\xEF\xBF\xBD");
  EXPECT_EQ(NeutralizeText("\xc0\xaf"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong '/'
  EXPECT_EQ(NeutralizeText("\xed\xa0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
}

// Protects: what the API accepts comes back unchanged (accents, emoji, right-to-left script and
// the marks U+200E/U+200F, which reorder nothing after them).
TEST(NeutralizeTextTest, AcceptedTextIsUnchanged) {
  for (const std::string text : {"Léa Dupont – devis", "😀 Ǆ 𝔘 ﬁ", "مرحبا \u200f", "東京"}) {
    EXPECT_EQ(NeutralizeText(text), text);
  }
}

// Protects: text longer than the API's limit is cut to it on a character boundary.
TEST(NeutralizeTextTest, CutToTheLimitOnACharacterBoundary) {
  std::string long_text = "a";
  for (size_t i = 0; i < kMaxTextBytes; ++i) long_text += "é";
  const std::string cut = NeutralizeText(long_text);
  EXPECT_LE(cut.size(), kMaxTextBytes);
  EXPECT_EQ(cut.size(), kMaxTextBytes - 1);  // "a" + 4999 × "é" (2 bytes each)
  EXPECT_EQ(cut.substr(cut.size() - 2), "é");
}

// Protects: a name is cut to the names' limit (kMaxNameBytes), on a character boundary, and a
// name within it comes back whole.
TEST(NeutralizeTextTest, NameCutToTheNamesLimit) {
  std::string long_name = "a";
  for (size_t i = 0; i < kMaxNameBytes; ++i) long_name += "é";
  const std::string cut = NeutralizeText(long_name, false, kMaxNameBytes);
  EXPECT_EQ(cut.size(), kMaxNameBytes - 1);  // "a" + 249 × "é"
  EXPECT_EQ(cut.substr(cut.size() - 2), "é");
  const std::string fits(kMaxNameBytes, 'n');
  EXPECT_EQ(NeutralizeText(fits, false, kMaxNameBytes), fits);
}

}  // namespace
}  // namespace leadflow::crm::domain
