#include "protocol/sql_effects.hpp"

#include <array>
#include <cctype>
#include <vector>

#include "protocol/sql_command.hpp"

namespace sluice::protocol {
namespace {

char lower(char c) {
  return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

bool is_word_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '$' ||
         static_cast<unsigned char>(c) >= 0x80;
}

// Where `word` (lower case) starts in `text`, compared without case, as a whole word; npos if
// absent.
std::size_t find_word(std::string_view text, std::string_view word, std::size_t from = 0) {
  for (std::size_t i = from; i + word.size() <= text.size(); ++i) {
    bool match = true;
    for (std::size_t k = 0; k < word.size() && match; ++k) match = lower(text[i + k]) == word[k];
    if (!match) continue;
    const bool starts = i == 0 || !is_word_char(text[i - 1]);
    const bool ends = i + word.size() == text.size() || !is_word_char(text[i + word.size()]);
    if (starts && ends) return i;
  }
  return std::string_view::npos;
}

// Where a call of function `name` opens its parenthesis (after the name, blanks allowed).
std::size_t find_call(std::string_view text, std::string_view name, std::size_t from = 0) {
  for (auto at = find_word(text, name, from); at != std::string_view::npos;
       at = find_word(text, name, at + 1)) {
    auto i = at + name.size();
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    if (i < text.size() && text[i] == '(') return i;
  }
  return std::string_view::npos;
}

// The first words of a statement, folded as identifiers are (quoted ones kept as written),
// skipping blanks and comments; at most `count`.
std::vector<std::string> first_words(std::string_view sql, std::size_t count) {
  std::vector<std::string> words;
  std::size_t i = 0;
  while (i < sql.size() && words.size() < count) {
    const char c = sql[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
    } else if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') {
      while (i < sql.size() && sql[i] != '\n') ++i;
    } else if (c == '/' && i + 1 < sql.size() && sql[i + 1] == '*') {
      const auto end = sql.find("*/", i + 2);
      if (end == std::string_view::npos) break;
      i = end + 2;
    } else if (c == '"') {
      std::string word;
      ++i;
      while (i < sql.size()) {
        if (sql[i] == '"') {
          if (i + 1 < sql.size() && sql[i + 1] == '"') {
            word += '"';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        word += sql[i++];
      }
      words.push_back(std::move(word));
    } else if (is_word_char(c)) {
      std::string word;
      while (i < sql.size() && is_word_char(sql[i])) word += lower(sql[i++]);
      words.push_back(std::move(word));
    } else {
      break;  // an operator or a literal: the words that matter come before any
    }
  }
  return words;
}

// set_config(name, value, is_local): whether every call in `sql` passes a literal true as
// is_local (then nothing outlives the transaction). A parameter or anything else: false.
bool set_config_calls_are_local(std::string_view sql) {
  for (auto open = find_call(sql, "set_config"); open != std::string_view::npos;
       open = find_call(sql, "set_config", open)) {
    // The third argument, at depth 1, outside quotes.
    int depth = 0;
    int argument = 0;
    std::string third;
    std::size_t i = open;
    for (; i < sql.size(); ++i) {
      const char c = sql[i];
      if (c == '\'') {  // a literal, '' inside it standing for one quote
        const auto start = i++;
        while (i < sql.size()) {
          if (sql[i] != '\'') {
            ++i;
          } else if (i + 1 < sql.size() && sql[i + 1] == '\'') {
            i += 2;
          } else {
            break;
          }
        }
        if (argument == 2 && depth == 1)
          for (char q : sql.substr(start, i + 1 - start)) third += lower(q);
        continue;
      }
      if (c == '(') {
        if (++depth == 1) continue;
      } else if (c == ')') {
        if (--depth == 0) break;
      } else if (c == ',' && depth == 1) {
        ++argument;
        continue;
      }
      if (argument == 2 && depth >= 1 && !std::isspace(static_cast<unsigned char>(c)))
        third += lower(c);
    }
    static constexpr std::array<std::string_view, 6> local{"true", "'t'",   "'true'",
                                                           "'on'", "'yes'", "'1'"};
    bool is_local = false;
    for (auto word : local) is_local = is_local || third == word;
    if (!is_local) return false;
    open = i;
  }
  return true;
}

// The setting name after SET [SESSION] or RESET: an identifier, dots allowed (custom settings),
// or a quoted one.
std::string setting_name_after(std::string_view sql, std::size_t keyword_count) {
  std::size_t i = 0;
  for (std::size_t k = 0; k < keyword_count; ++k) {
    while (i < sql.size() && !is_word_char(sql[i])) ++i;
    while (i < sql.size() && is_word_char(sql[i])) ++i;
  }
  while (i < sql.size() && std::isspace(static_cast<unsigned char>(sql[i]))) ++i;
  std::string name;
  while (i < sql.size()) {
    if (sql[i] == '"') {
      const auto end = sql.find('"', i + 1);
      if (end == std::string_view::npos) return {};
      name.append(sql.substr(i + 1, end - i - 1));
      i = end + 1;
    } else if (is_word_char(sql[i]) || sql[i] == '.') {
      name += lower(sql[i++]);
    } else {
      break;
    }
  }
  return name;
}

// The first argument of each set_config('name', ...) call, when it is a plain literal.
void collect_set_config_names(std::string_view sql, std::vector<std::string>& names) {
  for (auto open = find_call(sql, "set_config"); open != std::string_view::npos;
       open = find_call(sql, "set_config", open + 1)) {
    auto i = open + 1;
    while (i < sql.size() && std::isspace(static_cast<unsigned char>(sql[i]))) ++i;
    if (i >= sql.size() || sql[i] != '\'') continue;
    const auto end = sql.find('\'', i + 1);
    if (end == std::string_view::npos) continue;
    std::string name;
    for (char c : sql.substr(i + 1, end - i - 1)) name += lower(c);
    if (!name.empty()) names.push_back(std::move(name));
  }
}

void inspect_statement(std::string_view sql, sql_effects& out) {
  const auto words = first_words(sql, 4);
  if (words.empty()) return;
  const auto& first = words[0];
  const auto second = words.size() > 1 ? words[1] : std::string();
  if (first == "set") {
    // SET LOCAL ends with the transaction; SET TRANSACTION and SET CONSTRAINTS act on it alone.
    if (second != "local" && second != "transaction" && second != "constraints") {
      out.settings = true;
      auto name = setting_name_after(sql, second == "session" ? 2 : 1);
      if (!name.empty()) out.setting_names.push_back(std::move(name));
    }
  } else if (first == "reset") {
    out.settings = true;
    auto name = setting_name_after(sql, 1);
    if (!name.empty() && name != "all") out.setting_names.push_back(std::move(name));
  } else if (first == "discard" || first == "do" || first == "call") {
    out.settings = true;
  } else if (first == "listen") {
    out.listen = true;
  } else if (first == "declare" && words.size() > 1) {
    // DECLARE name [BINARY] [ASENSITIVE | INSENSITIVE] [[NO] SCROLL] CURSOR [WITH HOLD] FOR ...
    const auto cursor_at = find_word(sql, "cursor");
    const auto for_at = find_word(sql, "for", cursor_at == std::string_view::npos ? 0 : cursor_at);
    const auto with_at =
        find_word(sql, "with", cursor_at == std::string_view::npos ? 0 : cursor_at);
    if (with_at != std::string_view::npos && with_at < for_at &&
        find_word(sql.substr(0, for_at), "hold", with_at) != std::string_view::npos) {
      out.holdable_cursor = true;
      out.cursor = second;
    }
  } else if (first == "close" && words.size() > 1) {
    out.closes_cursor = true;
    if (second == "all") {
      out.all_cursors = true;
    } else {
      out.cursor = second;
    }
  } else if (first == "insert" ||
             (first == "with" && find_word(sql, "insert") != std::string_view::npos)) {
    if (find_word(sql, "returning") == std::string_view::npos) out.advances_sequence = true;
  } else if (first == "copy" && find_word(sql, "from") != std::string_view::npos) {
    out.advances_sequence = true;
  }
}

}  // namespace

sql_effects inspect_sql(std::string_view sql) {
  sql_effects out;
  // Function calls first, anywhere in the text: cheap scans that find nothing in most queries.
  if (find_call(sql, "nextval") != std::string_view::npos ||
      find_call(sql, "setval") != std::string_view::npos)
    out.advances_sequence = true;
  if (find_call(sql, "lastval") != std::string_view::npos ||
      find_call(sql, "currval") != std::string_view::npos)
    out.reads_sequence = true;
  if (find_call(sql, "set_config") != std::string_view::npos && !set_config_calls_are_local(sql)) {
    out.settings = true;
    collect_set_config_names(sql, out.setting_names);
  }
  // A statement ends at a ';' outside quotes and comments; without one, the text is one.
  if (sql.find(';') == std::string_view::npos) {
    inspect_statement(sql, out);
    return out;
  }
  std::vector<std::string_view> statements;
  if (!split_statements(sql, statements)) {
    inspect_statement(sql, out);
    return out;
  }
  for (auto statement : statements) inspect_statement(statement, out);
  return out;
}

}  // namespace sluice::protocol
