#include "crm-core/domain/lead/title.h"

#include <vector>

namespace leadflow::crm {
namespace {

std::string Trim(const std::string& text) {
  size_t begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) {
    return "";
  }
  size_t end = text.find_last_not_of(" \t\r\n");
  return text.substr(begin, end - begin + 1);
}

bool IsContinuationByte(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

}  // namespace

std::string RenderTitle(const std::string& title_template,
                        const std::map<std::string, std::string>& values) {
  // Split into (literal before, placeholder) pairs plus a trailing literal.
  struct Part {
    std::string before;
    std::string value;
  };
  std::vector<Part> parts;
  std::string literal;
  size_t i = 0;
  while (i < title_template.size()) {
    size_t open = title_template.find('{', i);
    size_t close = open == std::string::npos ? std::string::npos : title_template.find('}', open);
    if (close == std::string::npos) {
      literal += title_template.substr(i);
      break;
    }
    literal += title_template.substr(i, open - i);
    std::string name = title_template.substr(open + 1, close - open - 1);
    auto found = values.find(name);
    parts.push_back({literal, found == values.end() ? "" : Trim(found->second)});
    literal.clear();
    i = close + 1;
  }
  // The first literal is a prefix and always stays; a later one separates two placeholders and
  // stays only when something visible came before it.
  std::string out = parts.empty() ? "" : parts.front().before;
  bool any = false;
  for (const Part& part : parts) {
    if (part.value.empty()) {
      continue;
    }
    if (any) {
      out += part.before;
    }
    out += part.value;
    any = true;
  }
  if (!any) {
    return "";
  }
  return Trim(out + literal);
}

std::optional<std::string> UnknownPlaceholder(const std::string& title_template) {
  size_t i = 0;
  while (i < title_template.size()) {
    size_t open = title_template.find('{', i);
    size_t close = open == std::string::npos ? std::string::npos : title_template.find('}', open);
    if (close == std::string::npos) {
      break;
    }
    std::string name = title_template.substr(open + 1, close - open - 1);
    bool known = false;
    for (const char* placeholder : kTitlePlaceholders) {
      known = known || name == placeholder;
    }
    if (!known) {
      return name;
    }
    i = close + 1;
  }
  return std::nullopt;
}

std::string Summarize(const std::string& text, size_t max_chars) {
  std::string line = Trim(text.substr(0, text.find('\n')));
  size_t chars = 0;
  size_t cut = std::string::npos;
  size_t last_space = std::string::npos;
  for (size_t i = 0; i < line.size(); ++i) {
    if (IsContinuationByte(line[i])) {
      continue;
    }
    if (chars == max_chars) {
      cut = i;
      break;
    }
    if (line[i] == ' ') {
      last_space = i;
    }
    ++chars;
  }
  if (cut == std::string::npos) {
    return line;
  }
  size_t end = (last_space != std::string::npos && last_space > cut / 2) ? last_space : cut;
  return Trim(line.substr(0, end)) + "…";
}

}  // namespace leadflow::crm
