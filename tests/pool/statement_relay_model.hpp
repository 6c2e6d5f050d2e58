#pragma once
// A model of PostgreSQL's extended-query protocol and the relay around statement_relay_fsm, shared
// by the unit tests (tests/pool/test_statement_relay_fsm.cpp) and the fuzz target
// (tests/fuzz/fuzz_statement_relay.cpp).
//
// The fsm is driven the way proxy/relay.cpp drives it: client messages go through
// on_client_message (Parse, Bind, Describe, Close, Query; held back while must_wait_for_replies)
// or on_client_streamed (the rest), the output segments become the bytes the server gets; server
// replies go through on_server_message and the verdicts decide what the client gets.
//
// The server is a small model of PostgreSQL (model_backend below): it keeps named statements and
// portals, answers each message the way PostgreSQL does, and skips to Sync after an error. The
// same model, fed the client's own messages, stands for "a direct PostgreSQL": the client must
// see the same replies through sluice as without it. random_run drives two clients and two
// servers with random batches, its choices taken from a choice_source.
//
// A broken expectation of the model itself throws model_error: a failed test in Catch2, a crash
// under the fuzzer. Neither framework is needed here.
#include <algorithm>
#include <array>
#include <cctype>
#include <deque>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "pool/local_parse_answer.hpp"
#include "pool/statement_registry.hpp"
#include "pool/statement_relay_fsm.hpp"
#include "protocol/backend_messages.hpp"
#include "protocol/framing.hpp"
#include "protocol/frontend_messages.hpp"
#include "tests/protocol/message_builder.hpp"

namespace sluice::pool::test {

using verdict = statement_relay_fsm::verdict;

struct model_error : std::logic_error {
  using std::logic_error::logic_error;
};
[[noreturn]] inline void model_fail(const std::string& what) {
  throw model_error(what);
}
inline void model_require(bool ok, const char* what) {
  if (!ok) model_fail(std::string("model: expected ") + what);
}

constexpr std::uint32_t max_message = 1 << 20;

// --- Messages -----------------------------------------------------------------------------------

struct message {
  char type;
  std::string body;
  std::string wire;
};

inline std::vector<message> split(std::string_view bytes) {
  std::vector<message> out;
  std::span<const char> rest(bytes.data(), bytes.size());
  while (!rest.empty()) {
    const auto framed = protocol::frame_message(rest, max_message);
    model_require(framed.status == protocol::frame_status::complete, "a whole message");
    const auto& m = framed.message;
    out.push_back({m.type, std::string(m.body.data(), m.body.size()),
                   std::string(m.wire.data(), m.wire.size())});
    rest = rest.subspan(m.wire.size());
  }
  return out;
}

inline std::span<const char> span_of(const std::string& s) {
  return {s.data(), s.size()};
}

// Message types in order, one character each: "12DCZ".
inline std::string types(std::string_view bytes) {
  std::string out;
  for (const auto& m : split(bytes)) out.push_back(m.type);
  return out;
}

// Backend messages, readable: ErrorResponse with its SQLSTATE and message, CommandComplete with
// its tag. Two streams with equal descriptions are what a client can tell apart.
inline std::string describe_replies(std::string_view bytes) {
  std::string out;
  for (const auto& m : split(bytes)) {
    if (!out.empty()) out += ' ';
    out.push_back(m.type);
    if (m.type == 'E' || m.type == 'N') {
      const auto error = protocol::decode_error_response(span_of(m.body));
      model_require(bool(error), "a message that decodes");
      out += "[" + std::string(error->sqlstate()) + " " + std::string(error->message()) + "]";
    } else if (m.type == 'C') {
      const auto tag = protocol::decode_command_complete(span_of(m.body));
      model_require(bool(tag), "a message that decodes");
      out += "[" + std::string(tag->tag) + "]";
    }
  }
  return out;
}

// Frontend messages, readable, for failure traces.
inline std::string describe_requests(std::string_view bytes) {
  std::string out;
  for (const auto& m : split(bytes)) {
    if (!out.empty()) out += ' ';
    out.push_back(m.type);
    const auto body = span_of(m.body);
    switch (m.type) {
      case 'P': {
        const auto p = protocol::decode_parse(body);
        model_require(bool(p), "a message that decodes");
        out += "(" + std::string(p->name) + "," + std::string(p->query);
        for (auto t : p->param_types) out += "," + std::to_string(t);
        out += ")";
        break;
      }
      case 'B': {
        const auto b = protocol::decode_bind(body);
        model_require(bool(b), "a message that decodes");
        out += "(" + std::string(b->portal) + "," + std::string(b->statement) + ")";
        break;
      }
      case 'D':
      case 'C': {
        const auto d = protocol::decode_describe(body);  // same layout as Close
        model_require(bool(d), "a message that decodes");
        out += "(" + std::string(1, d->kind) + "," + std::string(d->name) + ")";
        break;
      }
      case 'Q': {
        const auto q = protocol::decode_query(body);
        model_require(bool(q), "a message that decodes");
        out += "(" + std::string(q->sql) + ")";
        break;
      }
      default:
        break;
    }
  }
  return out;
}

// Client → server builders.
namespace fe {
inline std::string parse(std::string_view name, std::string_view sql,
                         std::vector<std::uint32_t> t = {}) {
  std::string out;
  protocol::append_parse(out, name, sql, t);
  return out;
}
// Bind with text parameters; `params` are the values, sent as they are.
inline std::string bind(std::string_view statement, std::vector<std::string> params = {},
                        std::string_view portal = "") {
  protocol::test::message_builder rest;
  rest.int16(0);  // no parameter format codes: all text
  rest.int16(static_cast<std::int16_t>(params.size()));
  for (const auto& p : params) rest.int32(static_cast<std::int32_t>(p.size())).raw(p);
  rest.int16(1).int16(1);  // one result format code: binary
  std::string out;
  protocol::append_bind_header(out, portal, statement, span_of(rest.body()));
  return out;
}
inline std::string describe(char kind, std::string_view name) {
  std::string out;
  protocol::append_describe(out, kind, name);
  return out;
}
inline std::string execute(std::string_view portal = "") {
  std::string out;
  protocol::append_execute(out, portal, 0);
  return out;
}
inline std::string close(char kind, std::string_view name) {
  std::string out;
  protocol::append_close(out, kind, name);
  return out;
}
inline std::string sync() {
  std::string out;
  protocol::append_sync(out);
  return out;
}
inline std::string flush() {
  std::string out;
  protocol::append_flush(out);
  return out;
}
inline std::string query(std::string_view sql) {
  std::string out;
  protocol::append_query(out, sql);
  return out;
}
}  // namespace fe

// Server → client builders.
namespace be {
inline std::string error(std::string_view sqlstate, std::string_view message) {
  std::string out;
  protocol::append_error_response(
      out,
      {.severity = "ERROR", .sqlstate = sqlstate, .message = message, .detail = {}, .hint = {}});
  return out;
}
inline std::string notice(std::string_view message) {
  std::string out;
  protocol::append_notice_response(
      out,
      {.severity = "NOTICE", .sqlstate = "00000", .message = message, .detail = {}, .hint = {}});
  return out;
}
inline std::string parameter_status(std::string_view name, std::string_view value) {
  std::string out;
  protocol::append_parameter_status(out, name, value);
  return out;
}
inline std::string notification() {
  protocol::test::message_builder b;
  b.int32(4242).cstr("channel").cstr("payload");
  return b.typed('A');
}
inline std::string parameter_description(const std::vector<std::uint32_t>& oids) {
  protocol::test::message_builder b;
  b.int16(static_cast<std::int16_t>(oids.size()));
  for (auto oid : oids) b.uint32(oid);
  return b.typed('t');
}
inline std::string row_description() {
  std::string out;
  const std::array<protocol::column_description, 1> columns{{{.name = "?column?", .type_oid = 23}}};
  protocol::append_row_description(out, columns);
  return out;
}
inline std::string data_row() {
  std::string out;
  const std::array<std::optional<std::string_view>, 1> values{{"1"}};
  protocol::append_data_row(out, values);
  return out;
}
inline std::string command_complete(std::string_view tag) {
  std::string out;
  protocol::append_command_complete(out, tag);
  return out;
}
inline std::string ready(char status = 'I') {
  std::string out;
  protocol::append_ready_for_query(out, status);
  return out;
}
}  // namespace be

// --- A model of PostgreSQL ----------------------------------------------------------------------

// SQL the model understands: "bad ..." does not parse (42601), "SELECT ..." returns one row,
// "... boom" fails when executed (22012), anything else returns no rows.
class model_backend {
 public:
  struct statement {
    std::string sql;
    std::vector<std::uint32_t> types;
  };
  std::map<std::string, statement> statements;  // "" is the unnamed statement
  std::map<std::string, statement> portals;
  // PostgreSQL parses and analyses a named Parse's query before it checks the name is free;
  // set to check the name first instead.
  bool duplicate_before_syntax = false;
  // The next Bind fails with this error (sqlstate, message), once.
  std::optional<std::pair<std::string, std::string>> next_bind_error;
  // Statements whose plan no longer fits (DDL changed a result type): every Bind and EXECUTE
  // fails with 0A000 until the statement is dropped and prepared again.
  std::set<std::string> stale;
  // Every message received, for checks on what the server was sent.
  std::vector<message> received;

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
        model_require(bool(p), "a message that decodes");
        const std::string name(p->name);
        const bool taken = !name.empty() && statements.contains(name);
        const auto duplicate = "prepared statement \"" + name + "\" already exists";
        if (taken && duplicate_before_syntax) return fail(out, "42P05", duplicate, true);
        if (p->query.starts_with("bad"))
          return fail(out, "42601", "syntax error at or near \"bad\"", true);
        if (taken) return fail(out, "42P05", duplicate, true);
        statements[name] = {std::string(p->query), p->param_types};
        stale.erase(name);
        protocol::append_parse_complete(out);
        return;
      }
      case 'B': {
        const auto b = protocol::decode_bind(body);
        model_require(bool(b), "a message that decodes");
        const auto it = statements.find(std::string(b->statement));
        if (it == statements.end()) return fail(out, "26000", not_exist(b->statement), true);
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
        model_require(bool(d), "a message that decodes");
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
        model_require(bool(e), "a message that decodes");
        const auto it = portals.find(std::string(e->portal));
        if (it == portals.end())
          return fail(out, "34000", "portal \"" + std::string(e->portal) + "\" does not exist",
                      true);
        if (it->second.sql.empty()) return protocol::append_empty_query_response(out);
        if (is_utility(it->second.sql)) {
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
        model_require(bool(c), "a message that decodes");
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
        portals.clear();  // the implicit transaction ends
        out += be::ready();
        return;
      case 'H':
        return;
      case 'Q': {
        const auto q = protocol::decode_query(body);
        model_require(bool(q), "a message that decodes");
        statements.erase("");  // a simple Query drops the unnamed statement
        portals.clear();
        simple_query(std::string(q->sql), out);
        out += be::ready();
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
  static bool is_utility(const std::string& sql) {
    const auto u = upper(sql);
    return u.starts_with("DEALLOCATE") || u.starts_with("DISCARD");
  }

  // One statement of a simple Query, or the query of an executed portal (`extended`).
  bool run_statement(const std::string& raw, std::string& out, bool extended = false) {
    // Keywords in any case; "DEALLOCATE PREPARE x" is "DEALLOCATE x".
    std::string sql = raw;
    if (is_utility(sql)) {
      sql = upper(sql.substr(0, sql.find(' '))) + sql.substr(std::min(sql.size(), sql.find(' ')));
      if (upper(sql).starts_with("DEALLOCATE PREPARE ")) sql = "DEALLOCATE " + sql.substr(19);
      if (upper(sql) == "DEALLOCATE ALL" || upper(sql) == "DISCARD ALL") sql = upper(sql);
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

// --- The relay, as proxy/relay.cpp drives the fsm -----------------------------------------------

class link {
 public:
  link(client_statement_map& client, server_statement_cache& server, statement_registry& registry,
       statement_counters& counters)
      : fsm(
            client, server,
            [&registry](std::string_view q, std::span<const std::uint32_t> t) {
              return registry.intern(q, t);
            },
            counters,
            [&registry](std::string_view definition) { return registry.intern_sql(definition); }) {}

  // Client bytes (whole messages) → the bytes the server gets. Like the relay, stops before a
  // message the fsm says must wait for owed replies; those bytes stay held until resume().
  std::string from_client(const std::string& bytes) {
    held_ += bytes;
    return resume();
  }
  std::string resume() {
    protocol::output_segments out;
    std::span<const char> rest = span_of(held_);
    std::size_t used = 0;
    while (!rest.empty()) {
      const auto framed = protocol::frame_message(rest, max_message);
      model_require(framed.status == protocol::frame_status::complete, "a whole message");
      const auto& m = framed.message;
      if (statement_relay_fsm::wants_whole_request(m.type)) {
        if (fsm.must_wait_for_replies(m.type, m.body)) break;
        fsm.on_client_message(m.type, m.body, m.wire, out);
      } else if (fsm.on_client_streamed(m.type)) {
        out.add_view(m.wire);
      }
      rest = rest.subspan(m.wire.size());
      used += m.wire.size();
    }
    auto sent = flatten(out);  // before the held bytes it points into go
    held_.erase(0, used);
    return sent;
  }
  // Client bytes waiting for replies.
  bool blocked() const { return !held_.empty(); }

  // Server bytes (whole messages) → the bytes the client gets.
  std::string from_server(const std::string& bytes) {
    protocol::output_segments out;
    std::span<const char> rest = span_of(bytes);
    while (!rest.empty()) {
      const auto framed = protocol::frame_message(rest, max_message);
      model_require(framed.status == protocol::frame_status::complete, "a whole message");
      const auto& m = framed.message;
      // The relay reads the body only of the messages the fsm asks for.
      const auto body =
          statement_relay_fsm::wants_whole_reply(m.type) ? m.body : std::span<const char>{};
      const auto v = fsm.on_server_message(m.type, body, out);
      if (v == verdict::forward) out.add_view(m.wire);
      rest = rest.subspan(m.wire.size());
    }
    return flatten(out);
  }

  statement_relay_fsm fsm;

 private:
  std::string held_;
  static std::string flatten(const protocol::output_segments& out) {
    std::string s;
    out.for_each([&](const char* data, std::size_t size) { s.append(data, size); });
    model_require(s.size() == out.total_size(), "every output segment flattened");
    return s;
  }
};

struct server {
  explicit server(std::size_t capacity) : cache(capacity) {}
  server_statement_cache cache;
  model_backend pg;
};

struct exchange_result {
  std::string to_server;
  std::string to_client;
};

// Two clients, two servers, one registry: the daemon in miniature.
struct world {
  explicit world(std::size_t capacity = 8) {
    servers.emplace_back(capacity);
    servers.emplace_back(capacity);
  }
  statement_registry registry;
  statement_counters counters;
  std::deque<server> servers;
  std::array<client_statement_map, 2> clients;

  link attach(int client, int server_index) {
    return link(clients[client], servers[server_index].cache, registry, counters);
  }
  // Where the server caches and the servers disagree: a statement one lists and the other lacks.
  std::string cache_mismatch() {
    std::string out;
    for (std::size_t i = 0; i < servers.size(); ++i) {
      auto& srv = servers[i];
      for (const auto& name : srv.pg.named()) {
        const auto id = std::stoull(name.substr(name.find('_') + 1));
        if (!srv.cache.contains(id))
          out += " server " + std::to_string(i) + " has " + name + ", its cache does not;";
      }
      std::size_t found = 0;
      for (std::uint64_t id = 1; id < 1000000 && found < srv.cache.size(); ++id) {
        if (!srv.cache.contains(id)) continue;
        ++found;
        if (!srv.pg.statements.contains("sluice_" + std::to_string(id)))
          out += " server " + std::to_string(i) + "'s cache lists sluice_" + std::to_string(id) +
                 ", the server lacks it;";
      }
    }
    return out;
  }
  // Client bytes in, the server answers all of it, replies out.
  // Held client bytes are sent as soon as the replies they wait for are in.
  exchange_result exchange(link& l, int server_index, const std::string& client_bytes) {
    exchange_result r;
    auto sent = l.from_client(client_bytes);
    for (;;) {
      r.to_server += sent;
      r.to_client += l.from_server(servers[server_index].pg.receive(sent));
      if (!l.blocked()) break;
      sent = l.resume();
      if (sent.empty()) model_fail("the relay waits for replies nothing will send");
    }
    return r;
  }
  // One round trip on a fresh link, which must be idle afterwards.
  exchange_result round_trip(int client, int server_index, const std::string& client_bytes) {
    auto l = attach(client, server_index);
    auto r = exchange(l, server_index, client_bytes);
    model_require(l.fsm.idle(), "idle after a round trip");
    return r;
  }
  // The registry's statement for this content (alive while something holds it).
  statement_ptr statement(std::string_view sql, std::vector<std::uint32_t> t = {}) {
    return registry.intern(sql, t);
  }
  // Prepares `name` for `client` on `server_index`, checking it worked.
  void prepare(int client, int server_index, std::string_view name, std::string_view sql,
               std::vector<std::uint32_t> t = {}) {
    const auto r = round_trip(client, server_index, fe::parse(name, sql, t) + fe::sync());
    model_require(types(r.to_client) == "1Z", "ParseComplete, ReadyForQuery");
    model_require(clients[client].contains(std::string(name)), "the name is mapped");
  }
};

// What a client sees from a direct PostgreSQL for the same messages.
inline std::string direct(const std::string& client_bytes, model_backend& pg) {
  return describe_replies(pg.receive(client_bytes));
}

inline message only(std::string_view bytes, char type) {
  const auto messages = split(bytes);
  const auto it =
      std::find_if(messages.begin(), messages.end(), [&](const auto& m) { return m.type == type; });
  model_require(it != messages.end(), "a message of that type");
  return *it;
}

// --- Random pipelines against a direct PostgreSQL -----------------------------------------------

// Random batches of Parse/Bind/Describe/Execute/Close/Flush/Sync (and now and then a simple
// Query) from two clients over a few names and statements, on two servers with small caches,
// with requests and replies interleaved at random. Each client also talks to its own model of a
// direct PostgreSQL; through sluice it must see exactly the same replies, and its statement
// names must be exactly the ones PostgreSQL would hold.
//
// The client either reads each batch's ReadyForQuery before sending the next (`waits`, what
// drivers do outside pipeline mode) or sends batches before earlier ones are answered
// (`pipelines`). Within a batch, requests and replies always interleave at random.
enum class client_mode { waits, pipelines };

struct random_options {
  client_mode mode = client_mode::waits;
  std::size_t capacity = 100;  // of each server's statement cache
  // Messages naming a statement (Parse, Bind, Describe, Close) per batch.
  std::size_t max_statement_messages = 100;
  // No name is both parsed and closed, or parsed twice, in one batch.
  bool distinct_parse_close_names = false;
  // The server also sends NoticeResponses at random places, as PostgreSQL may at any time: the
  // client must get each one, once, with the other replies unchanged around it.
  bool async_notices = false;
};

// Where random_run's choices come from: a seeded generator in the unit tests, the fuzzer's input
// in tests/fuzz/fuzz_statement_relay.cpp.
class choice_source {
 public:
  virtual ~choice_source() = default;
  virtual std::size_t pick(std::size_t n) = 0;  // in [0, n)
  virtual bool chance(double p) = 0;            // true with probability p
};

class seeded_choices : public choice_source {
 public:
  explicit seeded_choices(std::uint64_t seed) : rng_(seed) {}
  std::size_t pick(std::size_t n) override {
    return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng_);
  }
  bool chance(double p) override { return std::bernoulli_distribution(p)(rng_); }

 private:
  std::mt19937_64 rng_;
};

class random_run {
 public:
  random_run(choice_source& choices, random_options options)
      : choices_(choices), options_(options), w_(options.capacity) {
    // The duplicate-name-with-bad-SQL difference has its own test above ([!mayfail]).
    for (auto& pg : direct_) pg.duplicate_before_syntax = true;
  }

  // Returns "" or the first difference, with the trace of the attachment that showed it.
  std::string run(int attachments) {
    for (int i = 0; i < attachments; ++i) {
      auto problem = attach_once();
      if (!problem.empty()) return "attachment " + std::to_string(i) + ": " + problem;
    }
    return {};
  }

  std::size_t local_answers = 0;  // batches answered by answer_parses_locally
  std::size_t server_batches = 0;

 private:
  struct sql_choice {
    const char* sql;
    std::vector<std::uint32_t> types;
  };

  std::size_t pick(std::size_t n) { return choices_.pick(n); }
  bool chance(double p) { return choices_.chance(p); }

  std::string name() {
    static constexpr std::array<const char*, 4> names{"a", "b", "c", "zz"};
    return names[pick(names.size())];
  }
  const sql_choice& sql() {
    static const std::array<sql_choice, 6> choices{{
        {"SELECT 1", {}},
        {"SELECT $1", {23}},
        {"SELECT $1", {25}},
        {"UPDATE t SET x = 1", {}},
        {"UPDATE t SET x = 1 / 0 -- boom", {}},
        {"bad sql", {}},
    }};
    return choices[pick(choices.size())];
  }

  // Batches, each ending with its Sync.
  std::vector<std::string> batches() {
    std::vector<std::string> out;
    const auto count = 1 + pick(3);
    while (out.size() < count) {
      if (chance(0.1)) {
        static constexpr std::array<const char*, 6> queries{
            "DEALLOCATE a", "DEALLOCATE zz", "DEALLOCATE ALL", "DISCARD ALL", "SELECT 1", ""};
        out.push_back(fe::query(queries[pick(queries.size())]));
        continue;
      }
      std::string batch;
      bool unnamed = false;  // an unnamed statement is used only after its Parse in the batch
      std::set<std::string> parsed_or_closed;
      std::size_t statements = 0;  // messages that touch a named statement
      // Adds a message naming statement `n`, unless the options rule it out.
      const auto named = [&](const std::string& n, bool parse_or_close, std::string message) {
        if (!n.empty()) {
          if (statements >= options_.max_statement_messages) return;
          if (options_.distinct_parse_close_names && parse_or_close &&
              !parsed_or_closed.insert(n).second)
            return;
          ++statements;
        }
        batch += message;
      };
      const auto n = 1 + pick(6);
      for (std::size_t i = 0; i < n; ++i) {
        const auto roll = pick(100);
        if (roll < 25) {
          const auto& s = sql();
          const auto nm = name();
          named(nm, true, fe::parse(nm, s.sql, s.types));
        } else if (roll < 30) {
          const auto& s = sql();
          batch += fe::parse("", s.sql, s.types);
          unnamed = true;
        } else if (roll < 50) {
          const auto nm = unnamed && chance(0.3) ? std::string() : name();
          named(nm, false, fe::bind(nm, {"1"}));
        } else if (roll < 58) {
          const auto nm = unnamed && chance(0.3) ? std::string() : name();
          named(nm, false, fe::describe('S', nm));
        } else if (roll < 62) {
          batch += fe::describe('P', "");
        } else if (roll < 77) {
          batch += fe::execute();
        } else if (roll < 87) {
          const auto nm = name();
          named(nm, true, fe::close('S', nm));
        } else if (roll < 90) {
          batch += fe::close('P', "");
        } else {
          batch += fe::flush();
        }
      }
      out.push_back(batch + fe::sync());
    }
    return out;
  }

  // Client messages and server replies interleaved at random until every reply is in.
  std::string relay(link& l, model_backend& pg, const std::string& requests) {
    std::string got;
    const auto messages = split(requests);
    std::size_t next = 0;
    std::deque<std::string> in_flight;  // server replies not yet read by the relay
    const auto send = [&](const std::string& bytes) {
      for (auto& m : split(pg.receive(bytes))) {
        if (options_.async_notices && chance(0.1)) {
          in_flight.push_back(be::notice("async " + std::to_string(notices_sent_)));
          ++notices_sent_;
        }
        in_flight.push_back(m.wire);
      }
    };
    while (next < messages.size() || !in_flight.empty() || l.blocked()) {
      if (next < messages.size() && (in_flight.empty() || chance(0.5))) {
        std::string chunk;
        for (auto k = 1 + pick(4); k > 0 && next < messages.size(); --k)
          chunk += messages[next++].wire;
        send(l.from_client(chunk));
      } else if (!in_flight.empty()) {
        std::string chunk;
        for (auto k = 1 + pick(4); k > 0 && !in_flight.empty(); --k) {
          chunk += in_flight.front();
          in_flight.pop_front();
        }
        got += l.from_server(chunk);
        if (l.blocked()) send(l.resume());  // the relay retries once replies have come in
      } else {
        problem_ = "held client bytes wait for replies nothing will send";
        return got;
      }
      if (l.fsm.idle() && !in_flight.empty()) {
        problem_ = "idle() with replies still to come";
        return got;
      }
    }
    if (!l.fsm.idle()) problem_ = "not idle after every reply";
    return got;
  }

  std::string attach_once() {
    const auto c = static_cast<int>(pick(2));
    const auto s = static_cast<int>(pick(2));
    const auto list = batches();
    std::string requests;
    for (const auto& b : list) requests += b;
    std::ostringstream trace;
    trace << "client " << c << " on server " << s << ": " << describe_requests(requests);

    const auto expected = describe_replies(direct_[c].receive(requests));
    std::string got;

    // Before taking a server: Parse...Sync batches of verified statements are answered here.
    std::size_t first = 0;
    std::string rest = requests;
    while (!rest.empty() && rest[0] == 'P') {
      auto answered = answer_parses_locally(
          span_of(rest), max_message, w_.clients[c],
          [this](std::string_view q, auto t) { return w_.registry.intern(q, t); });
      if (!answered) break;
      trace << "\n  answered locally: " << answered->parses << " Parse(s)";
      ++local_answers;
      got += answered->reply;
      rest.erase(0, answered->consumed);
      model_require(answered->consumed == list[first].size(), "a whole batch answered locally");
      ++first;
    }

    if (!rest.empty()) {
      ++server_batches;
      auto l = w_.attach(c, s);
      auto& pg = w_.servers[s].pg;
      problem_.clear();
      if (options_.mode == client_mode::pipelines) {
        got += relay(l, pg, rest);
      } else {
        for (std::size_t i = first; i < list.size() && problem_.empty(); ++i)
          got += relay(l, pg, list[i]);
      }
      if (!problem_.empty()) return trace.str() + "\n  " + problem_;
    }

    if (const auto mismatch = w_.cache_mismatch(); !mismatch.empty())
      return trace.str() + "\n " + mismatch;
    if (options_.async_notices) {
      // Each notice once, in the order sent; then the rest must be what PostgreSQL sent.
      std::string without;
      for (const auto& m : split(got)) {
        if (m.type != 'N') {
          without += m.wire;
          continue;
        }
        const auto notice = protocol::decode_error_response(span_of(m.body));
        if (!notice || notice->message() != "async " + std::to_string(notices_seen_))
          return trace.str() + "\n  a notice lost, repeated or out of order";
        ++notices_seen_;
      }
      if (notices_seen_ != notices_sent_) return trace.str() + "\n  a notice was not forwarded";
      got = std::move(without);
    }
    const auto seen = describe_replies(got);
    if (seen != expected) return trace.str() + "\n  direct: " + expected + "\n  sluice: " + seen;

    // Bounded state: a server's cache within its capacity, a client's map within the names used.
    for (const auto& srv : w_.servers)
      if (srv.cache.size() > options_.capacity) return trace.str() + "\n  a cache over capacity";
    if (w_.clients[c].size() > 4) return trace.str() + "\n  a client maps names it never used";

    // The client's names are exactly PostgreSQL's, for the same statements.
    std::set<std::string> names;
    for (const auto& [n, st] : w_.clients[c]) {
      names.insert(n);
      const auto it = direct_[c].statements.find(n);
      if (it == direct_[c].statements.end() || it->second.sql != st->query ||
          it->second.types != st->param_types)
        return trace.str() + "\n  sluice maps " + n + " to '" + st->query +
               "', PostgreSQL does not";
    }
    if (names != direct_[c].named())
      return trace.str() + "\n  PostgreSQL holds names sluice forgot";
    return {};
  }

  choice_source& choices_;
  random_options options_;
  world w_;
  std::array<model_backend, 2> direct_;
  std::string problem_;
  std::size_t notices_sent_ = 0, notices_seen_ = 0;
};

}  // namespace sluice::pool::test
