#pragma once

#include <map>
#include <optional>
#include <string>

namespace leadflow::crm {

/// Renders a lead title template such as "{city} – {name} – {need}". A placeholder whose value
/// is empty disappears together with the separator before it, so a form with only a name gives
/// "Jean Dupont", not " – Jean Dupont – ". Unknown placeholders render as empty.
std::string RenderTitle(const std::string& title_template,
                        const std::map<std::string, std::string>& values);

/// The placeholders a title template may name: {city}, {company}, {form}, {name}, {need}.
inline constexpr const char* kTitlePlaceholders[] = {"city", "company", "form", "name", "need"};

/// The first placeholder of `title_template` that is not one of kTitlePlaceholders ("{}"
/// included), or nullopt when every one is known. RenderTitle renders an unknown one as empty, so a
/// misspelt "{nmae}" in the settings would silently drop the name from every new lead's title;
/// settings refuse it.
std::optional<std::string> UnknownPlaceholder(const std::string& title_template);

/// The first line of a free-text message, cut at a word boundary to at most `max_chars`
/// characters (UTF-8 aware), with "…" when cut.
std::string Summarize(const std::string& text, size_t max_chars);

}  // namespace leadflow::crm
