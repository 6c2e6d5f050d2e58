#include "protocol/sql_command.hpp"

#include <cctype>
#include <vector>

namespace sluice::protocol {
namespace {

// Splits into words the way the commands above need: identifiers (lower-cased unless quoted,
// as PostgreSQL folds them), and a failure for anything else (strings, operators, a second
// statement).
struct word {
  std::string text;
  bool quoted = false;
};

// The end (one past the "*/") of the block comment that starts at `start` ("/*"), or npos when
// it is unterminated. PostgreSQL's comments nest ("/* a /* b */ c */" is one comment), so the
// first "*/" does not always end it: stopping there would read the inside of a comment as SQL.
std::size_t block_comment_end(std::string_view sql, std::size_t start) {
  int depth = 1;
  std::size_t i = start + 2;
  while (depth > 0) {
    if (i + 1 >= sql.size()) return std::string_view::npos;
    if (sql[i] == '/' && sql[i + 1] == '*') {
      ++depth;
      i += 2;
    } else if (sql[i] == '*' && sql[i + 1] == '/') {
      --depth;
      i += 2;
    } else {
      ++i;
    }
  }
  return i;
}

bool split_words(std::string_view sql, std::vector<word>& out) {
  std::size_t i = 0;
  bool ended = false;  // a ';' was seen: only blanks, comments and more ';' may follow
  while (i < sql.size()) {
    const char c = sql[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
    } else if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') {
      while (i < sql.size() && sql[i] != '\n') ++i;
    } else if (c == '/' && i + 1 < sql.size() && sql[i + 1] == '*') {
      i = block_comment_end(sql, i);
      if (i == std::string_view::npos) return false;
    } else if (c == ';') {
      ended = true;
      ++i;
    } else if (ended) {
      return false;
    } else if (c == '"') {
      word w{{}, true};
      ++i;
      for (;;) {
        if (i >= sql.size()) return false;
        if (sql[i] == '"') {
          if (i + 1 < sql.size() && sql[i + 1] == '"') {
            w.text.push_back('"');
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        w.text.push_back(sql[i++]);
      }
      out.push_back(std::move(w));
    } else if (std::isalnum(static_cast<unsigned char>(c)) || c == '_' ||
               static_cast<unsigned char>(c) >= 0x80) {
      word w;
      while (i < sql.size() && (std::isalnum(static_cast<unsigned char>(sql[i])) || sql[i] == '_' ||
                                sql[i] == '$' || static_cast<unsigned char>(sql[i]) >= 0x80)) {
        w.text.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(sql[i]))));
        ++i;
      }
      out.push_back(std::move(w));
    } else {
      return false;
    }
  }
  return true;
}

bool is_keyword(const word& w, std::string_view keyword) {
  return !w.quoted && w.text == keyword;
}

bool is_identifier_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '$' ||
         static_cast<unsigned char>(c) >= 0x80;
}

}  // namespace

// Splits `sql` at the ';' that end statements, skipping those inside literals, quoted
// identifiers, dollar quotes and comments. False when a literal or comment is unterminated.
// A statement of nothing but comments is blank, as it is to PostgreSQL: "PREPARE p AS SELECT 1;
// -- done" is one statement.
bool split_statements(std::string_view sql, std::vector<std::string_view>& statements) {
  std::size_t i = 0;
  std::size_t start = 0;
  bool blank = true;  // the current statement has only blanks and comments so far
  while (i < sql.size()) {
    const char c = sql[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
      continue;
    }
    const bool comment =
        i + 1 < sql.size() && ((c == '-' && sql[i + 1] == '-') || (c == '/' && sql[i + 1] == '*'));
    if (c != ';' && !comment) blank = false;
    if (c == ';') {
      if (!blank) statements.push_back(sql.substr(start, i - start));
      blank = true;
      start = ++i;
    } else if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') {
      while (i < sql.size() && sql[i] != '\n') ++i;
    } else if (c == '/' && i + 1 < sql.size() && sql[i + 1] == '*') {
      i = block_comment_end(sql, i);
      if (i == std::string_view::npos) return false;
    } else if (c == '\'' || c == '"') {
      const bool escapes = c == '\'' && i > 0 && (sql[i - 1] == 'e' || sql[i - 1] == 'E');
      ++i;
      for (;;) {
        if (i >= sql.size()) return false;
        if (escapes && sql[i] == '\\') {
          i += 2;
          continue;
        }
        if (sql[i] == c) {
          if (i + 1 < sql.size() && sql[i + 1] == c) {
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        ++i;
      }
    } else if (c == '$' && (i == 0 || !is_identifier_char(sql[i - 1]))) {
      // $tag$ ... $tag$; a $1 parameter is not a quote.
      std::size_t end = i + 1;
      while (end < sql.size() &&
             (std::isalnum(static_cast<unsigned char>(sql[end])) || sql[end] == '_'))
        ++end;
      const bool parameter = end > i + 1 && std::isdigit(static_cast<unsigned char>(sql[i + 1]));
      if (end < sql.size() && sql[end] == '$' && !parameter) {
        const auto tag = sql.substr(i, end - i + 1);
        const auto close = sql.find(tag, end + 1);
        if (close == std::string_view::npos) return false;
        i = close + tag.size();
      } else {
        i = end;
      }
    } else {
      ++i;
    }
  }
  if (!blank) statements.push_back(sql.substr(start));
  return true;
}

namespace {

bool single_statement(std::string_view sql) {
  std::vector<std::string_view> statements;
  return split_statements(sql, statements) && statements.size() <= 1;
}

// PREPARE/EXECUTE: the keyword, then the name (an identifier or a quoted one), then the rest.
sql_command classify_prepare_or_execute(std::string_view sql) {
  sql_command out;
  std::size_t i = sql.find_first_not_of(" \t\r\n");
  std::size_t keyword_end = i;
  while (keyword_end < sql.size() && std::isalpha(static_cast<unsigned char>(sql[keyword_end])))
    ++keyword_end;
  std::string keyword(sql.substr(i, keyword_end - i));
  for (auto& c : keyword) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  sql_command::kind what;
  if (keyword == "prepare") {
    what = sql_command::kind::prepare;
  } else if (keyword == "execute") {
    what = sql_command::kind::execute;
  } else {
    return out;
  }
  i = sql.find_first_not_of(" \t\r\n", keyword_end);
  if (i == std::string_view::npos || i == keyword_end) return out;
  std::string name;
  if (sql[i] == '"') {
    ++i;
    for (;;) {
      if (i >= sql.size()) return out;
      if (sql[i] == '"') {
        if (i + 1 < sql.size() && sql[i + 1] == '"') {
          name.push_back('"');
          i += 2;
          continue;
        }
        ++i;
        break;
      }
      name.push_back(sql[i++]);
    }
  } else {
    while (i < sql.size() && is_identifier_char(sql[i]))
      name.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(sql[i++]))));
  }
  if (name.empty() || !single_statement(sql)) return out;
  // PREPARE TRANSACTION 'gid' is two-phase commit, not a statement.
  if (what == sql_command::kind::prepare && name == "transaction") return out;
  out.what = what;
  out.name = std::move(name);
  out.rest = std::string(sql.substr(i));
  return out;
}

}  // namespace

sql_command classify_sql_command(std::string_view sql) {
  sql_command out;
  // Cheap rejection first: this runs on every simple Query. Leading blanks and comments
  // ("/* app */ DISCARD ALL") do not hide a command.
  std::size_t start = 0;
  for (;;) {
    while (start < sql.size() && std::isspace(static_cast<unsigned char>(sql[start]))) ++start;
    if (sql.substr(start, 2) == "--") {
      const auto end = sql.find('\n', start);
      if (end == std::string_view::npos) return out;
      start = end + 1;
    } else if (sql.substr(start, 2) == "/*") {
      start = block_comment_end(sql, start);
      if (start == std::string_view::npos) return out;
    } else {
      break;
    }
  }
  if (start >= sql.size()) return out;
  const char first = static_cast<char>(std::tolower(static_cast<unsigned char>(sql[start])));
  if (first == 'p' || first == 'e') return classify_prepare_or_execute(sql.substr(start));
  if (first != 'd') return out;

  std::vector<word> words;
  if (!split_words(sql, words) || words.empty()) return out;
  if (is_keyword(words[0], "discard") && words.size() == 2 && is_keyword(words[1], "all")) {
    out.what = sql_command::kind::discard_all;
    return out;
  }
  if (!is_keyword(words[0], "deallocate")) return out;
  std::size_t next = 1;
  // PREPARE is optional noise here, and also an unreserved keyword: a lone "DEALLOCATE
  // prepare" names the statement called prepare, as in PostgreSQL's grammar.
  if (next + 1 < words.size() && is_keyword(words[next], "prepare")) ++next;
  if (next + 1 != words.size()) return out;
  if (is_keyword(words[next], "all")) {
    out.what = sql_command::kind::deallocate_all;
  } else {
    out.what = sql_command::kind::deallocate;
    out.name = words[next].text;
  }
  return out;
}

std::string_view prepared_statement_body(std::string_view definition) {
  std::size_t i = 0;
  const auto skip_space = [&] {
    while (i < definition.size() && std::isspace(static_cast<unsigned char>(definition[i]))) ++i;
  };
  skip_space();
  if (i < definition.size() && definition[i] == '(') {
    // The type list: nested parentheses (numeric(10, 2)) and quoted identifiers.
    int depth = 0;
    while (i < definition.size()) {
      const char c = definition[i++];
      if (c == '"') {
        while (i < definition.size() && definition[i] != '"') ++i;
        if (i == definition.size()) return {};
        ++i;
      } else if (c == '(') {
        ++depth;
      } else if (c == ')' && --depth == 0) {
        break;
      }
    }
    if (depth != 0) return {};
    skip_space();
  }
  if (i + 2 > definition.size() || (definition[i] | 0x20) != 'a' ||
      (definition[i + 1] | 0x20) != 's')
    return {};
  i += 2;
  if (i >= definition.size() || !std::isspace(static_cast<unsigned char>(definition[i]))) return {};
  skip_space();
  return definition.substr(i);
}

}  // namespace sluice::protocol
