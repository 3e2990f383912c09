#include "crm-core/domain/lead/title.h"

#include <gtest/gtest.h>

namespace leadflow::crm {
namespace {

const std::string kTemplate = "{city} – {name} – {need}";

// Protects: the default template with everything given.
TEST(TitleTest, AllParts) {
  EXPECT_EQ(RenderTitle(kTemplate, {{"city", "Lyon"}, {"name", "Jean"}, {"need", "A quote"}}),
            "Lyon – Jean – A quote");
}

// Protects: missing parts vanish with their separator, never leaving dangling dashes.
TEST(TitleTest, MissingPartsCollapse) {
  EXPECT_EQ(RenderTitle(kTemplate, {{"name", "Jean"}}), "Jean");
  EXPECT_EQ(RenderTitle(kTemplate, {{"city", "Lyon"}, {"need", "A quote"}}), "Lyon – A quote");
  EXPECT_EQ(RenderTitle(kTemplate, {{"need", "  A quote "}}), "A quote");
  EXPECT_EQ(RenderTitle(kTemplate, {}), "");
  EXPECT_EQ(RenderTitle("Lead: {name}!", {{"name", "Ann"}}), "Lead: Ann!");
  EXPECT_EQ(RenderTitle("{unknown} {name", {{"name", "Ann"}}), "");
}

// Protects: the "need" is one short line, cut on a character boundary (never splitting UTF-8).
// Protects: a template naming a placeholder no channel fills (a typo such as {nmae}) is found,
// so that settings refuse it instead of every title silently losing that part.
TEST(TitleTest, UnknownPlaceholderIsFound) {
  EXPECT_EQ(UnknownPlaceholder(kTemplate), std::nullopt);
  EXPECT_EQ(UnknownPlaceholder("{company} / {form}: {name}"), std::nullopt);
  EXPECT_EQ(UnknownPlaceholder("{city} – {nmae}"), "nmae");
  EXPECT_EQ(UnknownPlaceholder("Lead {}"), "");
  EXPECT_EQ(UnknownPlaceholder("{NAME}"), "NAME");
  EXPECT_EQ(UnknownPlaceholder("no placeholder, {unclosed"), std::nullopt);
}

TEST(TitleTest, SummarizeCutsCleanly) {
  EXPECT_EQ(Summarize("Need a quote\nfor 3 rooms", 60), "Need a quote");
  EXPECT_EQ(Summarize("short", 60), "short");
  std::string accents = "éééééééééé";  // 10 characters, 20 bytes
  EXPECT_EQ(Summarize(accents, 4), "éééé…");
  EXPECT_EQ(Summarize("one two three four", 9), "one two…");
  EXPECT_EQ(Summarize("", 10), "");
}

}  // namespace
}  // namespace leadflow::crm
