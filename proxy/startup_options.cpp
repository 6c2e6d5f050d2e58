#include "proxy/startup_options.hpp"

namespace sluice::proxy {
namespace {

// Splits on unescaped whitespace and removes the escaping backslashes (pg_split_opts).
std::vector<std::string> split_words(std::string_view options) {
  std::vector<std::string> words;
  std::string current;
  bool in_word = false;
  for (std::size_t i = 0; i < options.size(); ++i) {
    const char c = options[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      if (in_word) words.push_back(std::move(current));
      current.clear();
      in_word = false;
      continue;
    }
    in_word = true;
    if (c == '\\' && i + 1 < options.size()) {
      current.push_back(options[++i]);
    } else {
      current.push_back(c);
    }
  }
  if (in_word) words.push_back(std::move(current));
  return words;
}

bool add_setting(std::string_view assignment, parsed_options& out) {
  const auto eq = assignment.find('=');
  if (eq == std::string_view::npos || eq == 0) return false;
  std::string name(assignment.substr(0, eq));
  // PostgreSQL accepts dashes for underscores in command-line settings.
  for (auto& c : name)
    if (c == '-') c = '_';
  out.settings.emplace_back(std::move(name), std::string(assignment.substr(eq + 1)));
  return true;
}

}  // namespace

parsed_options parse_startup_options(std::string_view options) {
  parsed_options out;
  const auto words = split_words(options);
  for (std::size_t i = 0; i < words.size(); ++i) {
    const std::string_view word = words[i];
    bool ok = false;
    if (word == "-c" && i + 1 < words.size()) {
      ok = add_setting(words[++i], out);
    } else if (word.starts_with("-c") && word.size() > 2) {
      ok = add_setting(word.substr(2), out);
    } else if (word.starts_with("--")) {
      ok = add_setting(word.substr(2), out);
    }
    if (!ok) {
      out.unsupported = std::string(word);
      return out;
    }
  }
  return out;
}

}  // namespace sluice::proxy
