#include "identity/person_name.h"

#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/uscript.h>
#include <unicode/utf8.h>

#include <array>
#include <vector>

namespace leadflow::identity {
namespace {

// Two-character Chinese surnames, simplified and traditional forms.
constexpr std::array<std::u16string_view, 56> kChineseCompound = {
    u"欧阳", u"歐陽", u"司马", u"司馬", u"诸葛", u"諸葛", u"上官", u"东方", u"東方", u"皇甫",
    u"令狐", u"慕容", u"司徒", u"夏侯", u"尉迟", u"尉遲", u"长孙", u"長孫", u"公孙", u"公孫",
    u"宇文", u"轩辕", u"軒轅", u"端木", u"澹台", u"澹臺", u"南宫", u"南宮", u"西门", u"西門",
    u"独孤", u"獨孤", u"申屠", u"呼延", u"万俟", u"萬俟", u"闻人", u"聞人", u"赫连", u"赫連",
    u"钟离", u"鍾離", u"百里", u"东郭", u"東郭", u"濮阳", u"濮陽", u"太史", u"拓跋", u"司空",
    u"公冶", u"宗政", u"公羊", u"淳于", u"单于", u"單于"};

// Two-syllable Korean family names.
constexpr std::array<std::u16string_view, 5> kKoreanCompound = {u"남궁", u"황보", u"제갈", u"선우",
                                                                u"독고"};

enum class Script { kOther, kNeutral, kHan, kKana, kHangul };

Script ScriptOf(UChar32 c) {
  UErrorCode status = U_ZERO_ERROR;
  UScriptCode script = uscript_getScript(c, &status);
  if (U_FAILURE(status)) return Script::kOther;
  switch (script) {
    case USCRIPT_HAN:
      return Script::kHan;
    case USCRIPT_HIRAGANA:
    case USCRIPT_KATAKANA:
      return Script::kKana;
    case USCRIPT_HANGUL:
      return Script::kHangul;
    case USCRIPT_COMMON:
    case USCRIPT_INHERITED:
      return Script::kNeutral;
    default:
      return Script::kOther;
  }
}

std::string Utf8(const icu::UnicodeString& text) {
  std::string out;
  text.toUTF8String(out);
  return out;
}

// The name's words (split on Unicode white space) when it is written family name first.
std::optional<std::vector<icu::UnicodeString>> FamilyFirstWords(std::string_view name) {
  icu::UnicodeString text = icu::UnicodeString::fromUTF8(
      icu::StringPiece(name.data(), static_cast<int32_t>(name.size())));
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* nfc = icu::Normalizer2::getNFCInstance(status);
  if (U_FAILURE(status)) return std::nullopt;
  icu::UnicodeString normal = nfc->normalize(text, status);
  if (U_FAILURE(status)) return std::nullopt;
  std::vector<icu::UnicodeString> words;
  icu::UnicodeString current;
  bool letters = false;
  for (int32_t i = 0; i < normal.length();) {
    UChar32 c = normal.char32At(i);
    i += U16_LENGTH(c);
    if (c == 0xFFFD) return std::nullopt;  // invalid UTF-8, replaced by ICU
    if (u_isUWhiteSpace(c)) {
      if (!current.isEmpty()) words.push_back(current);
      current.remove();
      continue;
    }
    Script script = ScriptOf(c);
    if (script == Script::kOther) return std::nullopt;
    letters = letters || script != Script::kNeutral;
    current.append(c);
  }
  if (!current.isEmpty()) words.push_back(current);
  if (!letters) return std::nullopt;
  return words;
}

bool All(const icu::UnicodeString& word, Script script, int32_t& count) {
  count = 0;
  for (int32_t i = 0; i < word.length();) {
    UChar32 c = word.char32At(i);
    i += U16_LENGTH(c);
    if (ScriptOf(c) != script) return false;
    ++count;
  }
  return true;
}

template <size_t N>
bool StartsWithCompound(const icu::UnicodeString& word,
                        const std::array<std::u16string_view, N>& compounds) {
  for (std::u16string_view compound : compounds) {
    icu::UnicodeString prefix(compound.data(), static_cast<int32_t>(compound.size()));
    if (word.startsWith(prefix)) return true;
  }
  return false;
}

// One word written without a space: the family name's length in UTF-16 units, or the whole.
int32_t FamilyLength(const icu::UnicodeString& word) {
  int32_t count = 0;
  if (All(word, Script::kHan, count) && count >= 2 && count <= 4) {
    // A compound surname only when a given name remains after it.
    if (count >= 3 && StartsWithCompound(word, kChineseCompound)) return word.moveIndex32(0, 2);
    return word.moveIndex32(0, 1);
  }
  if (All(word, Script::kHangul, count) && count >= 2 && count <= 4) {
    if (count >= 3 && StartsWithCompound(word, kKoreanCompound)) return word.moveIndex32(0, 2);
    return word.moveIndex32(0, 1);
  }
  return word.length();  // Japanese, or no safe split
}

}  // namespace

bool IsFamilyNameFirst(std::string_view name) { return FamilyFirstWords(name).has_value(); }

std::optional<NameParts> SplitFamilyNameFirst(std::string_view name) {
  std::optional<std::vector<icu::UnicodeString>> words = FamilyFirstWords(name);
  if (!words) return std::nullopt;
  NameParts parts;
  if (words->size() >= 2) {
    parts.family = Utf8((*words)[0]);
    for (size_t i = 1; i < words->size(); ++i) {
      if (i > 1) parts.given.push_back(' ');
      parts.given += Utf8((*words)[i]);
    }
    return parts;
  }
  const icu::UnicodeString& word = (*words)[0];
  int32_t family = FamilyLength(word);
  parts.family = Utf8(word.tempSubString(0, family));
  parts.given = Utf8(word.tempSubString(family));
  return parts;
}

std::string FullName(std::string_view given, std::string_view family) {
  if (given.empty()) return std::string(family);
  if (family.empty()) return std::string(given);
  std::string whole;
  const bool family_first = IsFamilyNameFirst(family) && IsFamilyNameFirst(given);
  whole.append(family_first ? family : given);
  whole.push_back(' ');
  whole.append(family_first ? given : family);
  return whole;
}

bool HasVisibleCharacter(std::string_view text) {
  const auto* bytes = reinterpret_cast<const uint8_t*>(text.data());
  const int32_t length = static_cast<int32_t>(text.size());
  for (int32_t at = 0; at < length;) {
    UChar32 c = 0;
    U8_NEXT(bytes, at, length, c);
    if (c < 0) {
      continue;  // an ill-formed sequence shows nothing a reader can take for a name
    }
    const int8_t category = u_charType(c);
    const bool unseen = u_hasBinaryProperty(c, UCHAR_WHITE_SPACE) ||
                        u_hasBinaryProperty(c, UCHAR_DEFAULT_IGNORABLE_CODE_POINT) ||
                        category == U_CONTROL_CHAR || category == U_FORMAT_CHAR ||
                        category == U_NON_SPACING_MARK || category == U_COMBINING_SPACING_MARK ||
                        category == U_ENCLOSING_MARK || category == U_SPACE_SEPARATOR ||
                        category == U_LINE_SEPARATOR || category == U_PARAGRAPH_SEPARATOR ||
                        category == U_SURROGATE || c == 0x2800;
    if (!unseen) {
      return true;
    }
  }
  return false;
}

}  // namespace leadflow::identity
