#include "proxy/config/env_expansion.hpp"

namespace sluice::config {
namespace {

bool is_name_start(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}
bool is_name_char(char c) {
  return is_name_start(c) || (c >= '0' && c <= '9');
}

bool is_valid_name(std::string_view name) {
  if (name.empty() || !is_name_start(name.front())) return false;
  for (const char c : name) {
    if (!is_name_char(c)) return false;
  }
  return true;
}

}  // namespace

expansion expand_env(std::string_view text, const env_lookup& env) {
  expansion out;
  out.text.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    if (text.substr(i).starts_with("$${")) {  // escaped: a literal "${"
      out.text += "${";
      i += 3;
      continue;
    }
    if (!text.substr(i).starts_with("${")) {
      out.text += text[i++];
      continue;
    }
    const auto close = text.find('}', i + 2);
    if (close == std::string_view::npos) {
      out.syntax = "unterminated \"${\" (write \"$${\" for a literal \"${\")";
      out.text += text.substr(i);
      break;
    }
    const auto name = text.substr(i + 2, close - i - 2);
    i = close + 1;
    if (!is_valid_name(name)) {
      if (!out.syntax) {
        // The text between the braces is not echoed: it may be part of a literal password.
        out.syntax = "malformed \"${...}\": a variable name is letters, digits and _";
      }
      continue;
    }
    std::optional<std::string> value = env ? env(name) : std::nullopt;
    if (!value) {
      out.missing.emplace_back(name);
      continue;
    }
    out.used_env = true;
    out.text += *value;
  }
  return out;
}

}  // namespace sluice::config
