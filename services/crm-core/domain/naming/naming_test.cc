// Protects: a single "name" is split the way a person writes it (particles start the family
// name), a missing last name becomes the placeholder and is never refused, and the search key
// makes "lea" find "Léa" whatever the case, accents or script.

#include "crm-core/domain/naming/naming.h"

#include <gtest/gtest.h>

namespace leadflow::crm::domain {
namespace {

void ExpectSplit(std::string_view full, std::string_view first, std::string_view last) {
  PersonName name = SplitName(full);
  EXPECT_EQ(name.first, first) << full;
  EXPECT_EQ(name.last, last) << full;
  EXPECT_FALSE(name.last_is_placeholder) << full;
}

TEST(SplitName, FirstAndLast) {
  ExpectSplit("Marie Curie", "Marie", "Curie");
  ExpectSplit("Jean Paul Sartre", "Jean Paul", "Sartre");
}

TEST(SplitName, ParticlesStartTheFamilyName) {
  ExpectSplit("Jean-Pierre de la Tour", "Jean-Pierre", "de la Tour");
  ExpectSplit("Ludwig van Beethoven", "Ludwig", "van Beethoven");
  ExpectSplit("Rembrandt van der Rijn", "Rembrandt", "van der Rijn");
  ExpectSplit("Alexander von Humboldt", "Alexander", "von Humboldt");
  ExpectSplit("Leonardo da Vinci", "Leonardo", "da Vinci");
  ExpectSplit("Anne Le Pen", "Anne", "Le Pen");
  ExpectSplit("Mohammed bin Salman", "Mohammed", "bin Salman");
  ExpectSplit("Gabriel García del Valle", "Gabriel García", "del Valle");
  ExpectSplit("Luiz dos Santos", "Luiz", "dos Santos");
  ExpectSplit("Valéry Giscard d' Estaing", "Valéry Giscard", "d' Estaing");
}

TEST(SplitName, AParticleIsNeverTheFirstOrTheLastWord) {
  // "De" as last word is a family name, "La" as first word a first name.
  ExpectSplit("Robert De", "Robert", "De");
  ExpectSplit("La Toya Jackson", "La Toya", "Jackson");
  ExpectSplit("Charles d'Artagnan", "Charles", "d'Artagnan");
}

TEST(SplitName, OneWordGetsThePlaceholder) {
  PersonName name = SplitName("Marie");
  EXPECT_EQ(name.first, "Marie");
  EXPECT_EQ(name.last, "Unknown");
  EXPECT_TRUE(name.last_is_placeholder);
  EXPECT_EQ(SplitName("Marie", "Inconnu").last, "Inconnu");
}

TEST(SplitName, WhitespaceIsCollapsedAndTrimmed) {
  ExpectSplit("  Marie \t  Curie \n", "Marie", "Curie");
  ExpectSplit(
      "Marie\xC2\xA0"
      "Curie",
      "Marie", "Curie");
}

TEST(SplitName, BlankGivesAnEmptyFirstNameAndThePlaceholder) {
  for (std::string_view blank : {"", "   ", "\t\n"}) {
    PersonName name = SplitName(blank);
    EXPECT_EQ(name.first, "");
    EXPECT_EQ(name.last, "Unknown");
    EXPECT_TRUE(name.last_is_placeholder);
  }
}

// Protects: a name in Han, Kana or Hangul is split family name first (the family name is the last
// name), never the Western way; Western names around it are unchanged.
TEST(SplitName, EastAsianNamesPutTheFamilyNameFirst) {
  ExpectSplit("山田 太郎", "太郎", "山田");
  ExpectSplit("山田\u3000太郎", "太郎", "山田");
  ExpectSplit("王伟", "伟", "王");
  ExpectSplit("欧阳修", "修", "欧阳");
  ExpectSplit("诸葛亮", "亮", "诸葛");
  ExpectSplit("김민준", "민준", "김");
  ExpectSplit("남궁민수", "민수", "남궁");
  ExpectSplit("김 민준", "민준", "김");
  // Japanese without a space: no safe split, the whole is the last name (not the placeholder).
  ExpectSplit("やまだたろう", "", "やまだたろう");
  ExpectSplit("ヤマダタロウ", "", "ヤマダタロウ");
  // Mixed with Latin: the Western rules.
  ExpectSplit("Taro 山田", "Taro", "山田");
  ExpectSplit("Marie Curie", "Marie", "Curie");
}

// Protects: a form's single "name" field in a CJK script (first-name field, no last name) gives a
// contact family name first; given both fields, they are kept as given.
TEST(ContactName, AnEastAsianWholeNameIsSplitFamilyFirst) {
  PersonName yamada = ContactName("山田 太郎", "");
  EXPECT_EQ(yamada.first, "太郎");
  EXPECT_EQ(yamada.last, "山田");
  EXPECT_FALSE(yamada.last_is_placeholder);
  PersonName given = ContactName("太郎", "山田");
  EXPECT_EQ(given.first, "太郎");
  EXPECT_EQ(given.last, "山田");
}

// Protects: a record whose whole name sits in the first-name field (a web form's single "name")
// gives a contact with the name split; the placeholder only when there is really one word; a
// given last name is kept as given.
TEST(ContactName, AWholeNameInTheFirstNameFieldIsSplit) {
  PersonName jean = ContactName("Jean Dupont", "");
  EXPECT_EQ(jean.first, "Jean");
  EXPECT_EQ(jean.last, "Dupont");
  EXPECT_FALSE(jean.last_is_placeholder);
  PersonName tour = ContactName(" Jean-Pierre de la Tour ", " \t", "Inconnu");
  EXPECT_EQ(tour.first, "Jean-Pierre");
  EXPECT_EQ(tour.last, "de la Tour");
  EXPECT_FALSE(tour.last_is_placeholder);
  PersonName one = ContactName("Marie", "", "Inconnu");
  EXPECT_EQ(one.first, "Marie");
  EXPECT_EQ(one.last, "Inconnu");
  EXPECT_TRUE(one.last_is_placeholder);
  PersonName none = ContactName("", "\xC2\xA0");
  EXPECT_EQ(none.first, "");
  EXPECT_EQ(none.last, "Unknown");
  EXPECT_TRUE(none.last_is_placeholder);
  PersonName given = ContactName("Jean  Paul", " Sartre ");
  EXPECT_EQ(given.first, "Jean Paul");
  EXPECT_EQ(given.last, "Sartre");
  EXPECT_FALSE(given.last_is_placeholder);
}

// Protects: a contact nobody named is shown by how they reached us, not by the placeholder that
// every such contact shares; a named one as "first last", family name first for CJK names.
TEST(ContactDisplayName, NamelessContactsAreShownByHowToReachThem) {
  EXPECT_EQ(ContactDisplayName("Marie", "Curie", false, "marie@example.org"), "Marie Curie");
  EXPECT_EQ(ContactDisplayName("太郎", "山田", false, ""), "山田 太郎");
  EXPECT_EQ(ContactDisplayName("", "やまだたろう", false, "+81 3-1234-5678"), "やまだたろう");
  EXPECT_EQ(ContactDisplayName("+33 6 12 34 56 78", "Unknown", true, "+33 6 12 34 56 78"),
            "+33 6 12 34 56 78");
  EXPECT_EQ(ContactDisplayName("jean@example.org", "Unknown", true, ""), "jean@example.org");
  EXPECT_EQ(ContactDisplayName("Cher", "Unknown", true, "cher@example.org"), "Cher");
  // Stored before nameless contacts were named by their identity: "" / placeholder.
  EXPECT_EQ(ContactDisplayName("", "Unknown", true, "+33 6 12 34 56 78"), "+33 6 12 34 56 78");
  EXPECT_NE(ContactDisplayName("", "Unknown", true, "+33 6 12 34 56 78"),
            ContactDisplayName("", "Unknown", true, "+33 6 98 76 54 32"));
  EXPECT_EQ(ContactDisplayName(" ", "Unknown", true, ""), "Unknown");
}

TEST(LastNameOrPlaceholder, NeverEmpty) {
  EXPECT_EQ(LastNameOrPlaceholder("  Curie ", "Unknown"), "Curie");
  EXPECT_EQ(LastNameOrPlaceholder("", "Inconnu"), "Inconnu");
  EXPECT_EQ(LastNameOrPlaceholder(" ", ""), "Unknown");
  EXPECT_EQ(LastNameOrPlaceholder("", "  "), "Unknown");
}

TEST(FoldForSearch, CaseAndAccents) {
  EXPECT_EQ(FoldForSearch("Léa"), "lea");
  EXPECT_EQ(FoldForSearch("LÉA"), "lea");
  EXPECT_EQ(FoldForSearch("Ærø"), "aero");
  EXPECT_EQ(FoldForSearch("Straße"), "strasse");
  EXPECT_EQ(FoldForSearch("Łódź"), "lodz");
  EXPECT_EQ(FoldForSearch("François Müller-Lüdenscheidt"), "francois muller-ludenscheidt");
  // Decomposed input (e + combining acute) folds the same as precomposed.
  EXPECT_EQ(FoldForSearch("Le\xCC\x81"
                          "a"),
            "lea");
}

TEST(FoldForSearch, OtherScriptsAreFoldedNotDropped) {
  EXPECT_EQ(FoldForSearch("Ёлка"), "елка");
  EXPECT_EQ(FoldForSearch("ΣΟΦΙΑ"), FoldForSearch("σοφια"));
}

TEST(FoldForSearch, WhitespaceAndInvalidInput) {
  EXPECT_EQ(FoldForSearch("  Léa   Martin "), "lea martin");
  EXPECT_EQ(FoldForSearch(""), "");
  EXPECT_FALSE(FoldForSearch("Caf\xE9").empty());  // Latin-1 byte: replaced, not refused
}

TEST(PersonKeys, BothOrders) {
  PersonSearchKeys keys = PersonKeys("Léa", "de la Tour");
  EXPECT_EQ(keys.first_last, "lea de la tour");
  EXPECT_EQ(keys.last_first, "de la tour lea");
  EXPECT_EQ(PersonKeys("", "Curie").first_last, "curie");
}

// Protects (D24): an emoji inside a word does not cut it. "Pe«family emoji»ña" (a ZWJ
// sequence: three emoji joined by U+200D) is stored as "pena", the key "pena" and "peña" fold to;
// an emoji between words is no word; skin tones, flags, keycaps and tag sequences go too, letters
// of every script stay, and configured names' FoldForSearch keeps them ("🔥 Hot" is not "Hot" as a
// stage name).
TEST(SearchKey, SymbolsInsideWordsAreDropped) {
  EXPECT_EQ(SearchKey("Pe\U0001F468\u200D\U0001F469\u200D\U0001F467ña"), "pena");
  EXPECT_EQ(SearchKey("peña"), "pena");
  EXPECT_EQ(SearchKey("Jean \U0001F389 Dupont"), "jean dupont");
  EXPECT_EQ(SearchKey("\U0001F44D\U0001F3FDMarc"), "marc");                  // skin tone
  EXPECT_EQ(SearchKey("Anne\U0001F1EB\U0001F1F7"), "anne");                  // a flag
  EXPECT_EQ(SearchKey("Lot 1\uFE0F\u20E3"), "lot 1");                        // keycap
  EXPECT_EQ(SearchKey("Ян\U0001F3F4\U000E0067\U000E0062\U000E007F"), "ян");  // tag sequence
  EXPECT_EQ(SearchKey("山田 太郎"), "山田 太郎");
  EXPECT_EQ(SearchKey("\U0001F525"), "");
  EXPECT_EQ(FoldForSearch("\U0001F525 Hot"), "\U0001F525 hot");
  EXPECT_EQ(PersonKeys("Pe\U0001F468\u200D\U0001F469\u200D\U0001F467ña", "Roux").last_first,
            "roux pena");
}

}  // namespace

// The readings StoredSearchKey joins, in order.
std::vector<std::string> Readings(const std::string& key) {
  std::vector<std::string> readings;
  for (size_t start = 0;;) {
    const size_t end = key.find(kSearchReadingSeparator, start);
    readings.push_back(key.substr(start, end == std::string::npos ? end : end - start));
    if (end == std::string::npos) return readings;
    start = end + kSearchReadingSeparator.size();
  }
}

// Protects: a name without umlauts, apostrophes or initialisms is stored exactly as SearchKey
// folds it (one reading: the previous release searches these keys as they are), and what already
// worked keeps its key: accents, ß → ss, œ → oe, Ō, an en dash read as a hyphen, emoji inside a
// word.
TEST(StoredSearchKey, PlainNamesKeepTheirOneReading) {
  for (const char* name : {"Léa Martin", "Straße", "Œuvre Cœur", "Ōtsuka", "Ærø",
                           "Électricité–Générale", "Compagnie Générale-du-Rhône",
                           "Pe\U0001F468\u200D\U0001F469\u200D\U0001F467ña", "山田 太郎"}) {
    EXPECT_EQ(StoredSearchKey(name), SearchKey(name)) << name;
  }
  EXPECT_EQ(StoredSearchKey("Straße"), "strasse");
  EXPECT_EQ(StoredSearchKey("Œuvre Cœur"), "oeuvre coeur");
  EXPECT_EQ(StoredSearchKey("Ōtsuka"), "otsuka");
  EXPECT_EQ(StoredSearchKey("Électricité–Générale"), "electricite-generale");
  EXPECT_EQ(StoredSearchKey(""), "");
  EXPECT_EQ(StoredSearchKey("\U0001F525"), "");
}

// Protects (D2): the German transliteration. "Müller & Söhne" is stored with a second reading,
// ü → ue, ö → oe, as Germans type without umlauts ("mueller", "soehne"), after the first one
// ("muller" keeps finding it); decomposed input (u + U+0308) reads the same; capitals too.
TEST(StoredSearchKey, GermanReadingOfUmlauts) {
  EXPECT_EQ(Readings(StoredSearchKey("Müller & Söhne")),
            (std::vector<std::string>{"muller & sohne", "mueller & soehne"}));
  EXPECT_EQ(StoredSearchKey("Mu\u0308ller"), StoredSearchKey("Müller"));
  EXPECT_EQ(Readings(StoredSearchKey("ÄRGER Bäckerei")),
            (std::vector<std::string>{"arger backerei", "aerger baeckerei"}));
  // Other diaereses are no German umlaut: one reading.
  EXPECT_EQ(StoredSearchKey("Noël Citroën"), "noel citroen");
}

// Protects (D1): an apostrophe. The name keeps its first reading with the apostrophes (FindByName
// reads a word as starting after one, so "epi" and "or" find it, and so does "l'epi"); the joined
// reading holds the forms typed without them ("loreal", "obrien", "dartagnan").
TEST(StoredSearchKey, ApostrophesJoinedInASecondReading) {
  EXPECT_EQ(Readings(StoredSearchKey("Boulangerie L'Épi d'Or")),
            (std::vector<std::string>{"boulangerie l'epi d'or", "boulangerie lepi dor"}));
  // A typographic apostrophe is folded to the ASCII one first (Latin-ASCII).
  EXPECT_EQ(StoredSearchKey("L’Oréal"), StoredSearchKey("L'Oréal"));
  EXPECT_EQ(Readings(StoredSearchKey("O'Brien")), (std::vector<std::string>{"o'brien", "obrien"}));
  EXPECT_EQ(Readings(StoredSearchKey("Rock ' Roll")),
            (std::vector<std::string>{"rock ' roll", "rock roll"}));
}

// Protects (D2): an initialism written with dots is also stored joined ("abc" finds
// "A.B.C. Conseil"); a single initial, an abbreviation or a word with a dot inside is not one.
TEST(StoredSearchKey, InitialismsJoinedInASecondReading) {
  EXPECT_EQ(Readings(StoredSearchKey("A.B.C. Conseil")),
            (std::vector<std::string>{"a.b.c. conseil", "abc conseil"}));
  EXPECT_EQ(Readings(StoredSearchKey("S.A.R.L Dupont")),
            (std::vector<std::string>{"s.a.r.l dupont", "sarl dupont"}));
  EXPECT_EQ(Readings(StoredSearchKey("Я.Б. Петров")),
            (std::vector<std::string>{"я.б. петров", "яб петров"}));
  for (const char* name : {"E. Leclerc", "St. Louis", "www.example.com", "ab.c. x", "a..b"}) {
    EXPECT_EQ(StoredSearchKey(name), SearchKey(name)) << name;
  }
  // Every rule at once: each base reading, then each joined, never twice.
  EXPECT_EQ(
      Readings(StoredSearchKey("Müller's A.G.")),
      (std::vector<std::string>{"muller's a.g.", "mueller's a.g.", "mullers ag", "muellers ag"}));
}

// Protects: a person's keys hold the same readings, in both orders; the first reading of each is
// what the previous release stored.
TEST(PersonKeys, ReadingsInBothOrders) {
  PersonSearchKeys keys = PersonKeys("Jürgen", "O'Neil");
  EXPECT_EQ(Readings(keys.first_last), (std::vector<std::string>{"jurgen o'neil", "juergen o'neil",
                                                                 "jurgen oneil", "juergen oneil"}));
  EXPECT_EQ(Readings(keys.last_first), (std::vector<std::string>{"o'neil jurgen", "o'neil juergen",
                                                                 "oneil jurgen", "oneil juergen"}));
  EXPECT_EQ(PersonKeys("", "Müller").last_first, StoredSearchKey("Müller"));
}

// Protects (D2): the forms a FindByName prefix is looked for by: its SearchKey; with a hyphen,
// also with spaces for it ("Électricité-Gén" finds "Électricité Générale"); with an umlaut, also
// its German reading ("Müller" finds a name stored as "Mueller"); nothing else for a plain
// prefix, and none for a blank one.
TEST(SearchQueryForms, HyphensAndUmlauts) {
  EXPECT_EQ(SearchQueryForms("Léa"), std::vector<std::string>{"lea"});
  EXPECT_EQ(SearchQueryForms("Électricité-Gén"),
            (std::vector<std::string>{"electricite-gen", "electricite gen"}));
  EXPECT_EQ(SearchQueryForms("Électricité–Gén"), SearchQueryForms("Électricité-Gén"));
  EXPECT_EQ(SearchQueryForms("generale-du"),
            (std::vector<std::string>{"generale-du", "generale du"}));
  EXPECT_EQ(SearchQueryForms("Müller"), (std::vector<std::string>{"muller", "mueller"}));
  EXPECT_EQ(SearchQueryForms("Söhne-Mü"),
            (std::vector<std::string>{"sohne-mu", "soehne-mue", "sohne mu", "soehne mue"}));
  EXPECT_EQ(SearchQueryForms("l'epi"), std::vector<std::string>{"l'epi"});
  EXPECT_EQ(SearchQueryForms(" \U0001F525 "), std::vector<std::string>{});
  EXPECT_EQ(SearchQueryForms("-"), std::vector<std::string>{"-"});
}

}  // namespace leadflow::crm::domain
