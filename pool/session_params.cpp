#include "pool/session_params.hpp"

#include <algorithm>
#include <array>
#include <vector>

namespace sluice::pool {
namespace {

char fold(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// PostgreSQL's scanner_isspace.
bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && guc_name_equal(s.substr(0, prefix.size()), prefix);
}

// Settings flagged GUC_LIST_QUOTE in PostgreSQL's guc tables: SET quotes each element it is
// given as an identifier, so each element has to be passed as its own literal.
bool is_quoted_list(std::string_view name) {
  static constexpr std::array<std::string_view, 4> names = {
      "search_path", "temp_tablespaces", "session_preload_libraries", "local_preload_libraries"};
  return std::any_of(names.begin(), names.end(),
                     [&](std::string_view n) { return guc_name_equal(n, name); });
}

// The elements of a list setting, as PostgreSQL's SplitIdentifierString reads them: comma
// separated, "quoted" elements keep case with "" for ", unquoted ones are trimmed and
// lowercased. nullopt when the syntax is invalid.
std::optional<std::vector<std::string>> split_identifier_list(std::string_view raw) {
  std::vector<std::string> out;
  std::size_t i = 0;
  auto skip_space = [&] {
    while (i < raw.size() && is_space(raw[i])) ++i;
  };
  skip_space();
  if (i == raw.size()) return out;
  for (;;) {
    std::string element;
    if (raw[i] == '"') {
      ++i;
      for (;;) {
        if (i == raw.size()) return std::nullopt;  // unterminated quote
        if (raw[i] == '"') {
          if (i + 1 < raw.size() && raw[i + 1] == '"') {
            element += '"';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        element += raw[i++];
      }
    } else {
      const std::size_t start = i;
      while (i < raw.size() && raw[i] != ',' && !is_space(raw[i])) element += fold(raw[i++]);
      if (i == start) return std::nullopt;  // empty unquoted element
    }
    out.push_back(std::move(element));
    skip_space();
    if (i == raw.size()) return out;
    if (raw[i] != ',') return std::nullopt;
    ++i;
    skip_space();
  }
}

bool same_value(std::string_view name, std::string_view a, std::string_view b) {
  if (a == b) return true;
  if (!is_quoted_list(name)) return false;
  // `$user,public` and `"$user", public` are the same path; the server reports the latter.
  auto la = split_identifier_list(a);
  auto lb = split_identifier_list(b);
  return la && lb && *la == *lb;
}

void append_identifier(std::string& out, std::string_view name) {
  out += '"';
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
}

// https://www.postgresql.org/docs/current/sql-syntax-lexical.html#SQL-SYNTAX-STRINGS
void append_literal(std::string& out, std::string_view value) {
  const bool escape = value.find('\\') != std::string_view::npos;
  if (escape) out += 'E';
  out += '\'';
  for (char c : value) {
    if (c == '\'' || (escape && c == '\\')) out += c;
    out += c;
  }
  out += '\'';
}

void append_statement(std::string& out, std::string_view name, std::string_view value) {
  if (!out.empty()) out += "; ";
  if (is_quoted_list(name)) {
    auto elements = split_identifier_list(value);
    if (!elements || elements->empty()) {
      out += "SELECT pg_catalog.set_config(";
      append_literal(out, name);
      out += ", ";
      append_literal(out, value);
      out += ", false)";
      return;
    }
    out += "SET ";
    append_identifier(out, name);
    out += " TO ";
    for (std::size_t i = 0; i < elements->size(); ++i) {
      if (i > 0) out += ", ";
      append_literal(out, (*elements)[i]);
    }
    return;
  }
  out += "SET ";
  append_identifier(out, name);
  out += " TO ";
  append_literal(out, value);
}

}  // namespace

bool guc_name_less::operator()(std::string_view a, std::string_view b) const {
  return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(),
                                      [](char x, char y) { return fold(x) < fold(y); });
}

bool guc_name_equal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return fold(x) == fold(y); });
}

bool session_params::default_tracked(std::string_view name) {
  static constexpr std::array<std::string_view, 7> names = {
      "client_encoding", "DateStyle",        "TimeZone",
      "IntervalStyle",   "application_name", "standard_conforming_strings",
      "search_path"};
  return std::any_of(names.begin(), names.end(),
                     [&](std::string_view n) { return guc_name_equal(n, name); });
}

// https://www.postgresql.org/docs/current/protocol-message-formats.html
// #PROTOCOL-MESSAGE-FORMATS-STARTUPMESSAGE
bool session_params::is_setting(std::string_view name) {
  if (name.empty() || starts_with_ci(name, "_pq_.")) return false;
  static constexpr std::array<std::string_view, 4> keys = {"user", "database", "options",
                                                           "replication"};
  return std::none_of(keys.begin(), keys.end(),
                      [&](std::string_view k) { return guc_name_equal(k, name); });
}

void session_params::set(std::string_view name, std::string_view value) {
  if (auto it = entries_.find(name); it != entries_.end()) {
    if (it->second.value == value) return;  // a repeated ParameterStatus changes nothing
    it->second.value.assign(value);
    tracked_settings_stale_ = true;
    return;
  }
  entries_.emplace(std::string(name), entry{std::string(value), default_tracked(name)});
  tracked_settings_stale_ = true;
}

void session_params::set_tracked(std::string_view name, std::string_view value) {
  if (!is_setting(name)) return;
  tracked_settings_stale_ = true;
  if (auto it = entries_.find(name); it != entries_.end()) {
    it->second = entry{std::string(value), true};
    return;
  }
  entries_.emplace(std::string(name), entry{std::string(value), true});
}

bool session_params::affects_statements(std::string_view name) {
  static constexpr std::array<std::string_view, 13> names = {"search_path",
                                                             "role",
                                                             "session_authorization",
                                                             "DateStyle",
                                                             "TimeZone",
                                                             "IntervalStyle",
                                                             "client_encoding",
                                                             "lc_monetary",
                                                             "standard_conforming_strings",
                                                             "backslash_quote",
                                                             "escape_string_warning",
                                                             "transform_null_equals",
                                                             "default_text_search_config"};
  return std::any_of(names.begin(), names.end(),
                     [&](std::string_view n) { return guc_name_equal(n, name); });
}

const std::string& session_params::tracked_settings() const {
  if (!tracked_settings_stale_) return tracked_settings_;
  tracked_settings_.clear();
  statement_context_.clear();
  const auto append = [](std::string& out, std::string_view name, std::string_view value) {
    for (char c : name) out += fold(c);
    out += '\0';
    out += value;
    out += '\0';
  };
  for (const auto& [name, e] : entries_) {
    if (affects_statements(name)) append(statement_context_, name, e.value);
    if (e.tracked && is_setting(name)) append(tracked_settings_, name, e.value);
  }
  tracked_settings_stale_ = false;
  return tracked_settings_;
}

const std::string& session_params::statement_context() const {
  tracked_settings();  // builds both
  return statement_context_;
}

std::optional<std::string_view> session_params::get(std::string_view name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) return std::nullopt;
  return std::string_view(it->second.value);
}

bool session_params::is_tracked(std::string_view name) const {
  auto it = entries_.find(name);
  return it != entries_.end() && it->second.tracked;
}

bool session_params::erase(std::string_view name) {
  auto it = entries_.find(name);
  if (it == entries_.end()) return false;
  entries_.erase(it);
  tracked_settings_stale_ = true;
  return true;
}

std::string sync_sql(const session_params& client, const session_params& server) {
  // Equal canonical strings mean every tracked client value is on the server verbatim and
  // the server tracks nothing the client lacks: exactly the case where the loops below
  // would produce nothing. The common case on a lease, so it is checked first.
  if (client.tracked_settings() == server.tracked_settings()) return {};
  std::string sql;
  // SET SESSION AUTHORIZATION resets the role: it goes first, whatever the name order says.
  const auto is_authorization = [](std::string_view name) {
    return guc_name_equal(name, "session_authorization");
  };
  for (const bool authorization_pass : {true, false}) {
    for (const auto& [name, e] : client.entries()) {
      if (!e.tracked || !session_params::is_setting(name)) continue;
      if (is_authorization(name) != authorization_pass) continue;
      auto have = server.get(name);
      if (have && same_value(name, e.value, *have)) continue;
      append_statement(sql, name, e.value);
    }
  }
  for (const auto& [name, e] : server.entries()) {
    if (!e.tracked || !session_params::is_setting(name) || client.is_tracked(name)) continue;
    if (!sql.empty()) sql += "; ";
    sql += "RESET ";
    append_identifier(sql, name);
  }
  return sql;
}

void apply_settings_audit(const std::vector<std::pair<std::string, std::string>>& session_level,
                          const session_params& reported, const session_params& baseline,
                          session_params& client, session_params& server) {
  const auto overridden = [&](std::string_view name) {
    return std::any_of(session_level.begin(), session_level.end(),
                       [&](const auto& setting) { return guc_name_equal(setting.first, name); });
  };
  // Settings no longer overridden, and not kept right by ParameterStatus: gone.
  const auto forget_reset = [&](session_params& record, const session_params* keep_from) {
    std::vector<std::string> reset;
    for (const auto& [name, e] : record.entries())
      if (e.tracked && session_params::is_setting(name) && !reported.get(name) && !overridden(name))
        reset.push_back(name);
    for (const auto& name : reset) {
      record.erase(name);
      if (keep_from)
        if (auto startup = keep_from->get(name); startup && keep_from->is_tracked(name))
          record.set_tracked(name, *startup);
    }
  };
  forget_reset(server, nullptr);
  forget_reset(client, &baseline);
  for (const auto& [name, value] : session_level) {
    if (!session_params::is_setting(name)) continue;
    server.set_tracked(name, value);
    client.set_tracked(name, value);
  }
}

void record_sync(const session_params& client, session_params& server) {
  if (client.tracked_settings() == server.tracked_settings()) return;
  std::vector<std::string> reset;
  for (const auto& [name, e] : server.entries()) {
    if (e.tracked && session_params::is_setting(name) && !client.is_tracked(name))
      reset.push_back(name);
  }
  for (const auto& name : reset) server.erase(name);
  for (const auto& [name, e] : client.entries()) {
    if (e.tracked && session_params::is_setting(name)) server.set_tracked(name, e.value);
  }
}

}  // namespace sluice::pool
