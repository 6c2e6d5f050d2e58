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
      const auto end = sql.find("*/", i + 2);
      if (end == std::string_view::npos) return false;
      i = end + 2;
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

}  // namespace

sql_command classify_sql_command(std::string_view sql) {
  sql_command out;
  // Cheap rejection first: this runs on every simple Query.
  std::size_t start = sql.find_first_not_of(" \t\r\n");
  if (start == std::string_view::npos) return out;
  const char first = static_cast<char>(std::tolower(static_cast<unsigned char>(sql[start])));
  if (first != 'd') return out;

  std::vector<word> words;
  if (!split_words(sql, words) || words.empty()) return out;
  if (is_keyword(words[0], "discard") && words.size() == 2 && is_keyword(words[1], "all")) {
    out.what = sql_command::kind::discard_all;
    return out;
  }
  if (!is_keyword(words[0], "deallocate")) return out;
  std::size_t next = 1;
  if (next < words.size() && is_keyword(words[next], "prepare")) ++next;
  if (next + 1 != words.size()) return out;
  if (is_keyword(words[next], "all")) {
    out.what = sql_command::kind::deallocate_all;
  } else {
    out.what = sql_command::kind::deallocate;
    out.name = words[next].text;
  }
  return out;
}

}  // namespace sluice::protocol
