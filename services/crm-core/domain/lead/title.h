#pragma once

#include <map>
#include <string>

namespace leadflow::crm {

/// Renders a lead title template such as "{city} – {name} – {need}". A placeholder whose value
/// is empty disappears together with the separator before it, so a form with only a name gives
/// "Jean Dupont", not " – Jean Dupont – ". Unknown placeholders render as empty.
std::string RenderTitle(const std::string& title_template,
                        const std::map<std::string, std::string>& values);

/// The first line of a free-text message, cut at a word boundary to at most `max_chars`
/// characters (UTF-8 aware), with "…" when cut.
std::string Summarize(const std::string& text, size_t max_chars);

}  // namespace leadflow::crm
