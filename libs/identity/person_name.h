#pragma once

// Person names written in a script whose names put the family name first — Chinese, Japanese and
// Korean — shared by every place that splits a display name into first and last name
// (email-ingest's From display name, crm-core's naming for a form's single "name" field, a
// messenger profile name and CreateContact's full_name). Plain C++ over ICU: no protobuf, so
// crm-core's domain layer links it too.

#include <optional>
#include <string>
#include <string_view>

namespace leadflow::identity {

/// A name split into the given name (a contact's first name) and the family name (its last name).
struct NameParts {
  std::string given;
  std::string family;
};

/// True when every letter of `name` is Han, Hiragana, Katakana or Hangul (ICU's Script property
/// of each code point; spaces, punctuation and marks — ICU's Common and Inherited — do not
/// count) and it has at least one. A name mixing these with Latin or any other script is not one.
bool IsFamilyNameFirst(std::string_view name);

/// Splits a name written family name first (IsFamilyNameFirst), or nullopt for any other name
/// (the caller's Western rules then apply). Invalid UTF-8 is never such a name.
///  - with a space (any Unicode white space, the ideographic space U+3000 included): family =
///    the first part, given = the rest ("山田 太郎" → 太郎 / 山田, "김 민준" → 민준 / 김);
///  - without one, by script:
///    - Japanese (any Hiragana or Katakana; or Han with either): no safe split, the whole is the
///      family name and the given name is empty ("やまだたろう");
///    - Chinese (Han only, 2–4 characters): family = the first character, or the first two
///      when they are a compound surname and a given name remains (欧阳, 司马, 诸葛, 上官, 东方,
///      皇甫, 令狐, 慕容, 司徒, 夏侯, 尉迟, 长孙, … in simplified and traditional forms):
///      "王伟" → 伟 / 王, "欧阳修" → 修 / 欧阳;
///    - Korean (Hangul only, 2–4 syllables): family = the first syllable, or 남궁, 황보, 제갈,
///      선우, 독고 when a given name remains: "김민준" → 민준 / 김, "남궁민수" → 민수 / 남궁;
///    - anything else (one character, five or more, Han mixed with Hangul): the whole is the
///      family name.
/// The text is NFC-normalised first (decomposed Hangul jamo count as syllables) and the ends
/// trimmed; runs of white space inside become one ASCII space.
std::optional<NameParts> SplitFamilyNameFirst(std::string_view name);

/// True when `text` holds at least one character a reader sees: a letter, number, punctuation
/// or symbol. Not seen, by ICU's properties: white space, controls, combining marks alone (Mn,
/// Mc, Me: U+0301), format characters (Cf: U+200B, U+FEFF, U+00AD, tag characters U+E0000–
/// U+E007F), default-ignorable code points (U+034F, variation selectors U+FE00–U+FE0F, the Hangul
/// fillers U+115F, U+1160, U+3164, U+FFA0) and the braille blank U+2800 (a symbol that prints as
/// nothing). A name made only of these is no name: the API refuses it (INVALID_ARGUMENT naming
/// the field), inbound traffic treats the person as nameless. Invalid UTF-8 is not seen either.
bool HasVisibleCharacter(std::string_view text);

/// A full name for reading from its parts: "given family" ("Jean Dupont"), or family first when
/// the name is written that way ("山田 太郎"); either part may be empty.
std::string FullName(std::string_view given, std::string_view family);

}  // namespace leadflow::identity
