#include "protocol/sql_effects.hpp"

#include <array>
#include <cctype>
#include <vector>

#include "protocol/sql_command.hpp"

namespace sluice::protocol {
namespace {

// ASCII folding, as PostgreSQL folds unquoted identifiers, without the C locale's call per
// character: this runs over every byte of every simple Query.
char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c | 0x20) : c;
}

// Identifier characters as PostgreSQL's lexer has them (any byte of a multibyte character
// counts), as a table: the one-pass scan below asks for every byte of every simple Query.
constexpr auto word_chars = [] {
  std::array<bool, 256> table{};
  for (int c = 0; c < 256; ++c)
    table[c] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '$' || c >= 0x80;
  return table;
}();

bool is_word_char(char c) {
  return word_chars[static_cast<unsigned char>(c)];
}

bool is_blank(char c) {
  return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

// The functions whose calls matter anywhere in a text, found in one pass over it.
struct function_calls {
  bool advance_sequence = false;  // nextval(, setval(
  bool read_sequence = false;     // lastval(, currval(
  bool set_config = false;        // set_config(
  bool deallocate = false;        // the word DEALLOCATE, called or not
};

function_calls scan_function_calls(std::string_view sql) {
  function_calls found;
  const auto n = sql.size();
  std::size_t i = 0;
  while (i < n) {
    if (!is_word_char(sql[i])) {
      ++i;
      continue;
    }
    const auto start = i;
    while (i < n && is_word_char(sql[i])) ++i;
    const auto length = i - start;
    if (length < 6 || length > 10) continue;  // the names below are 6 to 10 letters long
    char folded[10];
    for (std::size_t k = 0; k < length; ++k) folded[k] = lower(sql[start + k]);
    const std::string_view word(folded, length);
    const bool advance = word == "nextval" || word == "setval";
    const bool read = word == "lastval" || word == "currval";
    const bool config = word == "set_config";
    if (word == "deallocate") found.deallocate = true;
    if (!advance && !read && !config) continue;
    auto open = i;
    while (open < n && is_blank(sql[open])) ++open;
    if (open >= n || sql[open] != '(') continue;
    found.advance_sequence |= advance;
    found.read_sequence |= read;
    found.set_config |= config;
  }
  return found;
}

// The first statement's opening word, folded, when it is a plain identifier of at most 8
// letters after blanks and comments; "" otherwise (a quoted word, an operator, nothing).
std::string_view opening_word(std::string_view sql, char (&buffer)[8]) {
  std::size_t i = 0;
  for (;;) {
    while (i < sql.size() && is_blank(sql[i])) ++i;
    if (sql.substr(i, 2) == "--") {
      while (i < sql.size() && sql[i] != '\n') ++i;
    } else if (sql.substr(i, 2) == "/*") {
      return {};  // nested comments: left to the full look
    } else {
      break;
    }
  }
  std::size_t length = 0;
  while (i + length < sql.size() && is_word_char(sql[i + length])) {
    if (length == sizeof buffer) return {};
    buffer[length] = lower(sql[i + length]);
    ++length;
  }
  return {buffer, length};
}

// Whether `word` opens a statement inspect_statement acts on.
bool is_effect_keyword(std::string_view word) {
  static constexpr std::array<std::string_view, 11> keywords{"set",    "reset",  "discard", "do",
                                                             "call",   "listen", "declare", "close",
                                                             "insert", "with",   "copy"};
  for (auto keyword : keywords)
    if (word == keyword) return true;
  return false;
}

// Whether the text may hold more than one statement: a ';' with anything but blanks after it.
// (A ';' inside a literal counts: the safe side, which only costs the full look.)
bool may_hold_several_statements(std::string_view sql) {
  const auto semicolon = sql.find(';');
  if (semicolon == std::string_view::npos) return false;
  for (auto i = semicolon + 1; i < sql.size(); ++i)
    if (!is_blank(sql[i])) return true;
  return false;
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
    while (i < text.size() && is_blank(text[i])) ++i;
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
      bool closed = false;
      ++i;
      while (i < sql.size()) {
        if (sql[i] == '"') {
          if (i + 1 < sql.size() && sql[i + 1] == '"') {
            word += '"';
            i += 2;
            continue;
          }
          ++i;
          closed = true;
          break;
        }
        word += sql[i++];
      }
      // Left open, it is no identifier (PostgreSQL refuses the text): a word that matches no
      // keyword, so that SET "constraints reads as a SET, as it does with a blank after it.
      if (!closed) word.insert(word.begin(), '"');
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
    // With CLOSE ALL among the statements, every cursor goes: no one name is left to report
    // (unless a WITH HOLD cursor is declared there too, which `cursor` then names).
    if (second == "all") {
      out.all_cursors = true;
      if (!out.holdable_cursor) out.cursor.clear();
    } else if (!out.all_cursors || out.holdable_cursor) {
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
  // Function calls first, anywhere in the text, in one pass that finds nothing in most queries.
  const auto calls = scan_function_calls(sql);
  out.advances_sequence = calls.advance_sequence;
  out.reads_sequence = calls.read_sequence;
  out.mentions_deallocate = calls.deallocate;
  if (calls.set_config && !set_config_calls_are_local(sql)) {
    out.settings = true;
    collect_set_config_names(sql, out.setting_names);
  }
  // Most queries are one statement opening with a word that leaves nothing behind (SELECT,
  // UPDATE, BEGIN...): settled without splitting or copying anything.
  char buffer[8];
  const auto word = opening_word(sql, buffer);
  if (!word.empty() && !is_effect_keyword(word) && !may_hold_several_statements(sql)) return out;
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
