#include "proxy/config/pgbouncer_ini.hpp"

#include <cctype>

#include <fmt/format.h>

namespace sluice::config::pgbouncer {
namespace {

// PgBouncer's cfparser stops at this depth too (MAX_INCLUDE).
constexpr int max_include_depth = 10;

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The characters cfparser takes in an unquoted key.
bool is_key_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-' ||
         c == '*';
}

struct ini_reader {
  const file_reader& read_file;
  ini_file out;

  void problem(std::string_view file, int line, std::string_view what) {
    out.problems.push_back(fmt::format("{}:{}: {}", file, line, what));
  }

  void add(std::string key, std::string value, std::string_view file, int line) {
    if (out.sections.empty()) {
      problem(file, line, "a setting before any [section]; ignored, as PgBouncer refuses it");
      return;
    }
    out.sections.back().entries.push_back(
        {std::move(key), std::move(value), {std::string(file), line}});
  }

  void parse(std::string_view text, std::string_view file, int depth) {
    int line_number = 0;
    std::size_t start = 0;
    while (start < text.size()) {
      auto end = text.find('\n', start);
      if (end == std::string_view::npos) end = text.size();
      const std::string_view raw = text.substr(start, end - start);
      start = end + 1;
      ++line_number;
      parse_line(trim(raw), file, line_number, depth);
    }
  }

  void parse_line(std::string_view line, std::string_view file, int line_number, int depth) {
    if (line.empty() || line.front() == ';' || line.front() == '#') return;
    if (line.starts_with("%include") && line.size() > 8 && (line[8] == ' ' || line[8] == '\t')) {
      const std::string path(trim(line.substr(8)));
      if (depth >= max_include_depth) {
        problem(file, line_number, "includes nested too deep; " + path + " not read");
        return;
      }
      auto text = read_file(path);
      if (!text) {
        problem(file, line_number, "could not read the included file " + path);
        return;
      }
      out.included.push_back(path);
      parse(*text, path, depth + 1);
      return;
    }
    if (line.front() == '[') {
      const auto close = line.find(']');
      if (close == std::string_view::npos) {
        problem(file, line_number, "a section header without ']'");
        return;
      }
      out.sections.push_back({lower(trim(line.substr(1, close - 1))), {}});
      return;
    }
    std::string key;
    std::size_t pos = 0;
    if (line.front() == '\'' || line.front() == '"') {
      // A quoted key: cfparser's '...', or the "SQL identifier" form the docs give for
      // database names, kept with its quotes for unquote_identifier().
      const char quote = line.front();
      std::size_t close = 1;
      while (true) {
        close = line.find(quote, close);
        if (close == std::string_view::npos) break;
        if (quote == '"' && close + 1 < line.size() && line[close + 1] == '"') {
          close += 2;
          continue;
        }
        break;
      }
      if (close == std::string_view::npos || close == 1) {
        problem(file, line_number, "an unterminated or empty quoted name");
        return;
      }
      key = quote == '"' ? std::string(line.substr(0, close + 1))
                         : std::string(line.substr(1, close - 1));
      pos = close + 1;
    } else {
      while (pos < line.size() && is_key_char(line[pos])) ++pos;
      key = std::string(line.substr(0, pos));
    }
    while (pos < line.size() && (line[pos] == ' ' || line[pos] == '\t')) ++pos;
    if (key.empty() || pos >= line.size() || line[pos] != '=') {
      problem(file, line_number, "not a `key = value` line; ignored");
      return;
    }
    add(std::move(key), std::string(trim(line.substr(pos + 1))), file, line_number);
  }
};

}  // namespace

ini_file parse_ini(std::string_view text, std::string_view file_name,
                   const file_reader& read_file) {
  ini_reader reader{read_file, {}};
  reader.parse(text, file_name, 0);
  return std::move(reader.out);
}

connstr_result parse_connstr(std::string_view text) {
  connstr_result out;
  std::size_t pos = 0;
  const auto skip_space = [&] {
    while (pos < text.size() && is_space(text[pos])) ++pos;
  };
  while (true) {
    skip_space();
    if (pos >= text.size()) break;
    const std::size_t key_start = pos;
    while (pos < text.size() && text[pos] != '=' && !is_space(text[pos])) ++pos;
    const std::string_view key = text.substr(key_start, pos - key_start);
    skip_space();
    if (key.empty() || pos >= text.size() || text[pos] != '=') {
      out.problem = "expected key=value";
      return out;
    }
    ++pos;
    skip_space();
    std::string value;
    if (pos < text.size() && text[pos] == '\'') {
      // PgBouncer's quoting: '' is a quote; libpq also takes \' and \\, which PgBouncer would
      // keep as written, so only '' is read here.
      ++pos;
      bool closed = false;
      while (pos < text.size()) {
        if (text[pos] == '\'') {
          if (pos + 1 < text.size() && text[pos + 1] == '\'') {
            value += '\'';
            pos += 2;
            continue;
          }
          ++pos;
          closed = true;
          break;
        }
        value += text[pos++];
      }
      if (!closed) {
        out.problem = "a quoted value without its closing quote";
        return out;
      }
    } else {
      const std::size_t value_start = pos;
      while (pos < text.size() && !is_space(text[pos])) ++pos;
      value = std::string(text.substr(value_start, pos - value_start));
    }
    if (value.empty()) {
      out.problem = "an empty value for " + std::string(key);
      return out;
    }
    out.params.push_back({lower(key), std::move(value)});
  }
  return out;
}

userlist parse_userlist(std::string_view text, std::string_view file_name) {
  userlist out;
  int line_number = 0;
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = trim(text.substr(start, end - start));
    start = end + 1;
    ++line_number;
    if (line.empty() || line.front() == ';' || line.front() == '#') continue;
    // Two fields in double quotes, "" standing for a quote; the rest is ignored.
    std::vector<std::string> fields;
    std::size_t pos = 0;
    bool broken = false;
    while (fields.size() < 2) {
      while (pos < line.size() && is_space(line[pos])) ++pos;
      if (pos >= line.size() || line[pos] != '"') {
        broken = true;
        break;
      }
      ++pos;
      std::string field;
      bool closed = false;
      while (pos < line.size()) {
        if (line[pos] == '"') {
          if (pos + 1 < line.size() && line[pos + 1] == '"') {
            field += '"';
            pos += 2;
            continue;
          }
          ++pos;
          closed = true;
          break;
        }
        field += line[pos++];
      }
      if (!closed) {
        broken = true;
        break;
      }
      fields.push_back(std::move(field));
    }
    if (broken || fields[0].empty()) {
      out.problems.push_back(fmt::format("{}:{}: not a `\"user\" \"password\"` line; ignored",
                                         file_name, line_number));
      continue;
    }
    out.users.push_back(
        {std::move(fields[0]), std::move(fields[1]), {std::string(file_name), line_number}});
  }
  return out;
}

std::string unquote_identifier(std::string_view name) {
  if (name.size() < 2 || name.front() != '"' || name.back() != '"') return std::string(name);
  std::string out;
  const std::string_view inner = name.substr(1, name.size() - 2);
  for (std::size_t i = 0; i < inner.size(); ++i) {
    out += inner[i];
    if (inner[i] == '"' && i + 1 < inner.size() && inner[i + 1] == '"') ++i;
  }
  return out;
}

}  // namespace sluice::config::pgbouncer
