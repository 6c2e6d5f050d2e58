#pragma once
// A small model of PostgreSQL's extended-query protocol for pool tests: it keeps named
// statements and portals, answers each message the way PostgreSQL does, and skips to Sync after
// an error. Fed a client's own messages it stands for "a direct PostgreSQL".
#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "tests/pool/wire_fixtures.hpp"

namespace sluice::pool::testing {

// --- A model of PostgreSQL ----------------------------------------------------------------------

// SQL the model understands: "bad ..." does not parse (42601), "SELECT ..." returns one row,
// "... boom" fails when executed (22012), BEGIN, COMMIT and ROLLBACK open and end a transaction
// block (in which a failure leaves the block failed, refusing all but COMMIT and ROLLBACK with
// 25P02), anything else returns no rows.
class model_backend {
 public:
  struct statement {
    std::string sql;
    std::vector<std::uint32_t> types;
  };
  std::map<std::string, statement> statements;  // "" is the unnamed statement
  std::map<std::string, statement> portals;
  // The next Bind fails with this error (sqlstate, message), once.
  std::optional<std::pair<std::string, std::string>> next_bind_error;
  // Statements whose plan no longer fits (DDL changed a result type): every Bind and EXECUTE
  // fails with 0A000 until the statement is dropped and prepared again.
  std::set<std::string> stale;
  // Every message received, for checks on what the server was sent.
  std::vector<message> received;
  // The transaction status: 'I' idle, 'T' in a transaction block, 'E' in a failed one.
  char status = 'I';

  std::string receive(std::string_view bytes) {
    std::string out;
    for (auto& m : split(bytes)) {
      handle(m, out);
      received.push_back(std::move(m));
    }
    return out;
  }

  std::set<std::string> named() const {
    std::set<std::string> out;
    for (const auto& [name, s] : statements)
      if (!name.empty()) out.insert(name);
    return out;
  }

 private:
  bool skipping_ = false;

  static bool returns_rows(const statement& s) { return s.sql.starts_with("SELECT"); }
  static std::string not_exist(std::string_view name) {
    return name.empty() ? "unnamed prepared statement does not exist"
                        : "prepared statement \"" + std::string(name) + "\" does not exist";
  }

  void fail(std::string& out, std::string_view sqlstate, std::string_view text, bool extended) {
    out += be::error(sqlstate, text);
    if (extended) skipping_ = true;
    if (status == 'T') status = 'E';
  }

  static bool is_exit(const std::string& sql) {
    const auto u = upper(sql);
    return u.starts_with("COMMIT") || u.starts_with("ROLLBACK");
  }
  // PostgreSQL's refusal of all but COMMIT and ROLLBACK in a failed transaction block.
  bool refused(const std::string& sql, std::string& out, bool extended) {
    if (status != 'E' || is_exit(sql)) return false;
    fail(out, "25P02",
         "current transaction is aborted, commands ignored until end of transaction block",
         extended);
    return true;
  }

  void describe_result(const statement& s, std::string& out) {
    if (returns_rows(s)) {
      out += be::row_description();
    } else {
      protocol::append_no_data(out);
    }
  }

  void handle(const message& m, std::string& out) {
    // https://www.postgresql.org/docs/15/protocol-flow.html#PROTOCOL-FLOW-EXT-QUERY
    if (skipping_ && m.type != 'S') return;
    const auto body = span_of(m.body);
    switch (m.type) {
      case 'P': {
        const auto p = protocol::decode_parse(body);
        model_require(bool(p), "p");
        const std::string name(p->name);
        const bool taken = !name.empty() && statements.contains(name);
        const auto duplicate = "prepared statement \"" + name + "\" already exists";
        if (p->query.starts_with("bad"))
          return fail(out, "42601", "syntax error at or near \"bad\"", true);
        if (refused(std::string(p->query), out, true)) return;
        if (taken) return fail(out, "42P05", duplicate, true);
        statements[name] = {std::string(p->query), p->param_types};
        stale.erase(name);
        protocol::append_parse_complete(out);
        return;
      }
      case 'B': {
        const auto b = protocol::decode_bind(body);
        model_require(bool(b), "b");
        const auto it = statements.find(std::string(b->statement));
        if (it == statements.end()) return fail(out, "26000", not_exist(b->statement), true);
        if (refused(it->second.sql, out, true)) return;
        if (next_bind_error) {
          const auto [sqlstate, text] = *next_bind_error;
          next_bind_error.reset();
          return fail(out, sqlstate, text, true);
        }
        if (stale.contains(it->first))
          return fail(out, "0A000", "cached plan must not change result type", true);
        portals[std::string(b->portal)] = it->second;
        protocol::append_bind_complete(out);
        return;
      }
      case 'D': {
        const auto d = protocol::decode_describe(body);
        model_require(bool(d), "d");
        if (d->kind == 'S') {
          const auto it = statements.find(std::string(d->name));
          if (it == statements.end()) return fail(out, "26000", not_exist(d->name), true);
          out += be::parameter_description(it->second.types);
          return describe_result(it->second, out);
        }
        const auto it = portals.find(std::string(d->name));
        if (it == portals.end())
          return fail(out, "34000", "portal \"" + std::string(d->name) + "\" does not exist", true);
        return describe_result(it->second, out);
      }
      case 'E': {
        const auto e = protocol::decode_execute(body);
        model_require(bool(e), "e");
        const auto it = portals.find(std::string(e->portal));
        if (it == portals.end())
          return fail(out, "34000", "portal \"" + std::string(e->portal) + "\" does not exist",
                      true);
        if (refused(it->second.sql, out, true)) return;
        if (it->second.sql.empty()) return protocol::append_empty_query_response(out);
        if (is_utility(it->second.sql) || is_transaction_control(it->second.sql)) {
          run_statement(it->second.sql, out, true);
          return;
        }
        if (it->second.sql.ends_with("boom")) return fail(out, "22012", "division by zero", true);
        if (returns_rows(it->second)) {
          out += be::data_row();
          out += be::command_complete("SELECT 1");
        } else {
          out += be::command_complete("UPDATE 1");
        }
        return;
      }
      case 'C': {
        const auto c = protocol::decode_close(body);
        model_require(bool(c), "c");
        if (c->kind == 'S') {
          statements.erase(std::string(c->name));
          stale.erase(std::string(c->name));
        } else {
          portals.erase(std::string(c->name));
        }
        protocol::append_close_complete(out);
        return;
      }
      case 'S':
        skipping_ = false;
        if (status == 'I') portals.clear();  // the implicit transaction ends
        out += be::ready(status);
        return;
      case 'H':
        return;
      case 'Q': {
        const auto q = protocol::decode_query(body);
        model_require(bool(q), "q");
        statements.erase("");  // a simple Query drops the unnamed statement
        portals.clear();
        simple_query(std::string(q->sql), out);
        out += be::ready(status);
        return;
      }
      default:
        model_fail(std::string("model_backend: unexpected message ") + m.type);
    }
  }

  // A simple Query: its statements (split at ';', after dropping "--" comments) are all parsed
  // first, then run in order until one fails.
  void simple_query(const std::string& sql, std::string& out) {
    std::string text;
    for (std::size_t i = 0; i < sql.size(); ++i) {
      if (sql.compare(i, 2, "--") == 0) {
        while (i < sql.size() && sql[i] != '\n') ++i;
        continue;
      }
      text.push_back(sql[i]);
    }
    std::vector<std::string> parts;
    std::size_t from = 0;
    for (;;) {
      const auto semicolon = text.find(';', from);
      auto part =
          text.substr(from, semicolon == std::string::npos ? std::string::npos : semicolon - from);
      part.erase(0, part.find_first_not_of(" \n"));
      part.erase(part.find_last_not_of(" \n") + 1);
      if (!part.empty()) parts.push_back(part);
      if (semicolon == std::string::npos) break;
      from = semicolon + 1;
    }
    if (parts.empty()) return protocol::append_empty_query_response(out);
    for (const auto& part : parts) {
      const auto as = part.find("AS ");
      if (part.starts_with("bad") || (part.starts_with("PREPARE ") && as != std::string::npos &&
                                      part.compare(as + 3, 3, "bad") == 0))
        return fail(out, "42601", "syntax error at or near \"bad\"", false);
    }
    for (const auto& part : parts)
      if (!run_statement(part, out)) return;
  }

  // The first word after `keyword `: a statement name.
  static std::string name_after(const std::string& sql, std::size_t keyword_size) {
    const auto end = sql.find_first_of(" (;", keyword_size);
    return sql.substr(keyword_size,
                      end == std::string::npos ? std::string::npos : end - keyword_size);
  }

  static std::string upper(std::string text) {
    for (auto& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return text;
  }
  static bool is_transaction_control(const std::string& sql) {
    const auto u = upper(sql);
    return u == "BEGIN" || u.starts_with("COMMIT") || u.starts_with("ROLLBACK");
  }
  static bool is_utility(const std::string& sql) {
    const auto u = upper(sql);
    return u.starts_with("DEALLOCATE") || u.starts_with("DISCARD");
  }

  // One statement of a simple Query, or the query of an executed portal (`extended`).
  bool run_statement(const std::string& raw, std::string& out, bool extended = false) {
    if (!extended && refused(raw, out, false)) return false;
    if (is_transaction_control(raw)) {
      const auto u = upper(raw);
      if (u == "BEGIN") {
        if (status == 'I') status = 'T';
        out += be::command_complete("BEGIN");
      } else {
        const bool commit = u.starts_with("COMMIT") && status == 'T';
        status = 'I';
        out += be::command_complete(commit ? "COMMIT" : "ROLLBACK");
      }
      return true;
    }
    // Keywords in any case; "DEALLOCATE PREPARE x" is "DEALLOCATE x".
    std::string sql = raw;
    if (is_utility(sql)) {
      sql = upper(sql.substr(0, sql.find(' '))) + sql.substr(std::min(sql.size(), sql.find(' ')));
      if (upper(sql).starts_with("DEALLOCATE PREPARE ")) sql = "DEALLOCATE " + sql.substr(19);
      if (upper(sql) == "DEALLOCATE ALL" || upper(sql) == "DISCARD ALL") sql = upper(sql);
    }
    if (sql == "DISCARD ALL" && status != 'I') {
      fail(out, "25001", "DISCARD ALL cannot run inside a transaction block", extended);
      return false;
    }
    if (sql == "DISCARD ALL") {
      statements.clear();
      stale.clear();
      out += be::command_complete("DISCARD ALL");
    } else if (sql == "DEALLOCATE ALL") {
      std::erase_if(statements, [](const auto& e) { return !e.first.empty(); });
      out += be::command_complete("DEALLOCATE ALL");
    } else if (sql.starts_with("DEALLOCATE ")) {
      const auto name = sql.substr(11);
      if (statements.erase(name) == 0) {
        fail(out, "26000", not_exist(name), extended);
        return false;
      }
      stale.erase(name);
      out += be::command_complete("DEALLOCATE");
    } else if (sql.starts_with("PREPARE ")) {
      const auto name = name_after(sql, 8);
      if (statements.contains(name)) {
        fail(out, "42P05", "prepared statement \"" + name + "\" already exists", extended);
        return false;
      }
      statements[name] = {sql.substr(sql.find("AS ") + 3), {}};
      stale.erase(name);
      out += be::command_complete("PREPARE");
    } else if (sql.starts_with("EXECUTE ")) {
      const auto name = name_after(sql, 8);
      const auto it = statements.find(name);
      if (it == statements.end()) {
        fail(out, "26000", not_exist(name), extended);
        return false;
      }
      if (stale.contains(name)) {
        fail(out, "0A000", "cached plan must not change result type", extended);
        return false;
      }
      if (it->second.sql.ends_with("boom")) {
        fail(out, "22012", "division by zero", extended);
        return false;
      }
      if (returns_rows(it->second)) {
        out += be::row_description();
        out += be::data_row();
        out += be::command_complete("SELECT 1");
      } else {
        out += be::command_complete("UPDATE 1");
      }
    } else if (sql.ends_with("boom")) {
      fail(out, "22012", "division by zero", extended);
      return false;
    } else if (sql.starts_with("SELECT")) {
      out += be::row_description();
      out += be::data_row();
      out += be::command_complete("SELECT 1");
    } else {
      out += be::command_complete("UPDATE 1");
    }
    return true;
  }
};

}  // namespace sluice::pool::testing
