// Protects: a name written in Han, Kana or Hangul is split family name first (the family name is
// a contact's last name), with Chinese and Korean compound surnames kept whole and a Japanese name
// without a space never cut; any other name is left to the Western rules.

#include "identity/person_name.h"

#include <gtest/gtest.h>

namespace leadflow::identity {
namespace {

void ExpectSplit(std::string_view name, std::string_view given, std::string_view family) {
  std::optional<NameParts> parts = SplitFamilyNameFirst(name);
  ASSERT_TRUE(parts.has_value()) << name;
  EXPECT_EQ(parts->given, given) << name;
  EXPECT_EQ(parts->family, family) << name;
}

TEST(SplitFamilyNameFirst, WithASpaceTheFirstPartIsTheFamilyName) {
  ExpectSplit("山田 太郎", "太郎", "山田");
  ExpectSplit("山田\u3000太郎", "太郎", "山田");  // ideographic space
  ExpectSplit("  王  伟 ", "伟", "王");
  ExpectSplit("김 민준", "민준", "김");
  ExpectSplit("やまだ たろう", "たろう", "やまだ");
  ExpectSplit("ヤマダ タロウ", "タロウ", "ヤマダ");
  ExpectSplit("欧阳 娜 娜", "娜 娜", "欧阳");
}

TEST(SplitFamilyNameFirst, ChineseWithoutASpace) {
  ExpectSplit("王伟", "伟", "王");
  ExpectSplit("毛泽东", "泽东", "毛");
  ExpectSplit("欧阳修", "修", "欧阳");
  ExpectSplit("諸葛亮", "亮", "諸葛");
  ExpectSplit("司马相如", "相如", "司马");
  ExpectSplit("上官婉儿", "婉儿", "上官");
  // Two characters: a compound surname would leave no given name.
  ExpectSplit("欧阳", "阳", "欧");
  // One character, or more than four: no safe split.
  ExpectSplit("王", "", "王");
  ExpectSplit("爱新觉罗溥仪", "", "爱新觉罗溥仪");
}

TEST(SplitFamilyNameFirst, JapaneseWithoutASpaceIsKeptWhole) {
  ExpectSplit("やまだたろう", "", "やまだたろう");
  ExpectSplit("ヤマダタロウ", "", "ヤマダタロウ");
  ExpectSplit("山田たろう", "", "山田たろう");
  ExpectSplit("スズキ・イチロー", "", "スズキ・イチロー");
}

TEST(SplitFamilyNameFirst, KoreanWithoutASpace) {
  ExpectSplit("김민준", "민준", "김");
  ExpectSplit("이수", "수", "이");
  ExpectSplit("남궁민수", "민수", "남궁");
  ExpectSplit("황보관", "관", "황보");
  ExpectSplit("제갈성렬", "성렬", "제갈");
  ExpectSplit("선우은숙", "은숙", "선우");
  ExpectSplit("독고영재", "영재", "독고");
  ExpectSplit("남궁", "궁", "남");
  ExpectSplit("김", "", "김");
  // Decomposed jamo (NFD) count as the syllables they compose.
  ExpectSplit("\u1100\u1175\u11B7\u1106\u1175\u11AB\u110C\u116E\u11AB", "민준", "김");
}

TEST(SplitFamilyNameFirst, OtherNamesAreLeftToTheWesternRules) {
  for (std::string_view name :
       {"Marie Curie", "Jean-Pierre de la Tour", "Léa", "Ёлка Иванова", "", "   ", "12 34",
        "John 王", "王 John", "山田 Taro", "Caf\xE9", "\xE7\x8E"}) {
    EXPECT_FALSE(SplitFamilyNameFirst(name).has_value()) << name;
    EXPECT_FALSE(IsFamilyNameFirst(name)) << name;
  }
}

TEST(FullName, FamilyFirstOnlyForThoseNames) {
  EXPECT_EQ(FullName("太郎", "山田"), "山田 太郎");
  EXPECT_EQ(FullName("민준", "김"), "김 민준");
  EXPECT_EQ(FullName("Jean", "Dupont"), "Jean Dupont");
  EXPECT_EQ(FullName("", "やまだたろう"), "やまだたろう");
  EXPECT_EQ(FullName("Jean", ""), "Jean");
  EXPECT_EQ(FullName("Taro", "山田"), "Taro 山田");
}

// Protects (D16): a name nobody can see is no name. Each of these alone — a combining accent,
// the combining grapheme joiner, the braille blank, a Hangul filler, a tag letter, a variation
// selector, a byte-order mark, a soft hyphen, zero-width and no-break spaces — holds nothing
// visible, nor do several together; one letter, digit, punctuation mark or symbol anywhere
// does, and a letter with its combining accent is a letter.
TEST(HasVisibleCharacterTest, OnlyMarksFillersAndFormatCharactersAreNotSeen) {
  for (std::string_view unseen :
       {"", " \t", "\u0301", "\u034F", "\u2800", "\u3164", "\U000E0041", "\uFE0F", "\uFEFF",
        "\u00AD", "\u200B", "\u00A0", "\u115F\u1160", "\uFFA0", "\u20DD", "\u3000\u0301\u200D",
        "\U000E0001\U000E0067\U000E007F"}) {
    EXPECT_FALSE(HasVisibleCharacter(unseen)) << unseen;
  }
  for (std::string_view seen : {"a", "\u3164x", "e\u0301", "\u0301e", "7", ".", "\u2801",
                                "\U0001F600", "\u5C71", "\u200B-"}) {
    EXPECT_TRUE(HasVisibleCharacter(seen)) << seen;
  }
  EXPECT_FALSE(HasVisibleCharacter("\xC3"));  // a truncated sequence shows nothing
}

}  // namespace
}  // namespace leadflow::identity
