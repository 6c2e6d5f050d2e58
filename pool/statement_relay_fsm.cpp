#include "pool/statement_relay_fsm.hpp"

#include <algorithm>
#include <vector>

#include "protocol/backend_messages.hpp"
#include "protocol/frontend_messages.hpp"
#include "protocol/sql_command.hpp"

namespace sluice::pool {
namespace {

// Names sluice uses for its no-ops and errors; they are never prepared anywhere.
constexpr std::string_view never_prepared = "sluice_never_prepared";

// Whether `reply` is the last message answering `request`.
// https://www.postgresql.org/docs/15/protocol-flow.html#PROTOCOL-FLOW-EXT-QUERY
bool completes(char request, char reply) {
  switch (request) {
    case 'P':
      return reply == '1' || reply == 'E';
    case 'B':
      return reply == '2' || reply == 'E';
    case 'D':  // ParameterDescription comes first for a statement, then one of these
      return reply == 'T' || reply == 'n' || reply == 'E';
    case 'E':  // CommandComplete, EmptyQueryResponse, PortalSuspended
      return reply == 'C' || reply == 'I' || reply == 's' || reply == 'E';
    case 'C':
      return reply == '3' || reply == 'E';
    default:  // Sync, Query, FunctionCall: everything up to ReadyForQuery
      return reply == 'Z';
  }
}

// Extended-protocol requests: an error answering one makes the server skip to the next Sync.
bool is_extended(char request) {
  return request == 'P' || request == 'B' || request == 'D' || request == 'E' || request == 'C';
}

std::string error_message(std::string_view sqlstate, const std::string& message) {
  std::string out;
  protocol::append_error_response(
      out,
      {.severity = "ERROR", .sqlstate = sqlstate, .message = message, .detail = {}, .hint = {}});
  return out;
}

bool is_plan_changed(std::span<const char> body) {
  auto error = protocol::decode_error_response(body);
  return error && error->sqlstate() == "0A000" &&
         error->message().find("cached plan must not change result type") != std::string_view::npos;
}

}  // namespace

statement_relay_fsm::statement_relay_fsm(client_statement_map& client,
                                         server_statement_cache& server, intern_function intern,
                                         statement_counters& counters,
                                         intern_sql_function intern_sql)
    : client_(client),
      server_(server),
      intern_(std::move(intern)),
      intern_sql_(std::move(intern_sql)),
      counters_(counters) {}

bool statement_relay_fsm::wants_whole_request(char type) {
  return type == 'P' || type == 'B' || type == 'D' || type == 'C' || type == 'Q';
}

bool statement_relay_fsm::wants_whole_reply(char type) {
  return type == 'E' || type == 'C';
}

void statement_relay_fsm::forward(char type, std::span<const char> wire, statement_ptr statement,
                                  protocol::output_segments& out) {
  out.add_view(wire);
  if (type == 'H' || type == 'd' || type == 'c' || type == 'f') return;  // no reply of their own
  pending_.push_back({kind::plain, type, std::move(statement), {}, {}});
}

void statement_relay_fsm::add_to_server(const statement_ptr& statement,
                                        protocol::output_segments& out) {
  // A stale statement (its plan was refused) is still on the server under its name: close it
  // before preparing it again.
  if (server_.take_stale(statement->id)) {
    const auto start = out.arena().size();
    protocol::append_close(out.arena(), 'S', statement->server_name);
    out.owned_from(start);
    pending_.push_back({kind::stale_close, 'C', statement, {}, {}});
  }
  // Room is made first: each statement the cache drops is closed on the server, and its
  // CloseComplete swallowed.
  for (auto& evicted : server_.insert(statement)) {
    const auto start = out.arena().size();
    protocol::append_close(out.arena(), 'S', evicted->server_name);
    out.owned_from(start);
    pending_.push_back({kind::evict_close, 'C', std::move(evicted), {}, {}});
  }
}

void statement_relay_fsm::send_parse(const statement_ptr& statement, kind what,
                                     std::string client_name, protocol::output_segments& out) {
  add_to_server(statement, out);
  const auto start = out.arena().size();
  out.arena().append(statement->parse_message);
  out.owned_from(start);
  ++counters_.server_parses;
  pending_.push_back({what, 'P', statement, std::move(client_name), {}});
}

void statement_relay_fsm::ensure_on_server(const statement_ptr& statement,
                                           protocol::output_segments& out) {
  if (server_.contains(statement->id)) {
    server_.touch(statement->id);
    return;
  }
  send_parse(statement, kind::injected_parse, {}, out);
}

void statement_relay_fsm::send_noop_close(kind what, statement_ptr statement,
                                          std::string client_name, protocol::output_segments& out) {
  const auto start = out.arena().size();
  protocol::append_close(out.arena(), 'S', never_prepared);
  out.owned_from(start);
  pending_.push_back({what, 'C', std::move(statement), std::move(client_name), {}});
}

void statement_relay_fsm::raise(std::string_view sqlstate, std::string message,
                                protocol::output_segments& out) {
  const auto start = out.arena().size();
  protocol::append_describe(out.arena(), 'S', never_prepared);
  out.owned_from(start);
  pending_.push_back({kind::raise_error, 'D', nullptr, {}, error_message(sqlstate, message)});
  dropping_until_sync_ = true;  // as PostgreSQL does after an error: ignore up to the Sync
}

bool statement_relay_fsm::on_client_message(char type, std::span<const char> body,
                                            std::span<const char> wire,
                                            protocol::output_segments& out) {
  if (dropping_until_sync_) return false;  // a Sync is never whole-buffered: on_client_streamed
  handle_client_message(type, body, wire, out);
  return true;
}

void statement_relay_fsm::handle_client_message(char type, std::span<const char> body,
                                                std::span<const char> wire,
                                                protocol::output_segments& out) {
  switch (type) {
    case 'P': {
      auto parse = protocol::decode_parse(body);
      if (parse && parse->name.empty()) return on_unnamed_parse(parse->query, wire, out);
      if (!parse) return forward(type, wire, nullptr, out);
      ++counters_.client_parses;
      std::string name(parse->name);
      if (client_.contains(name))
        return raise("42P05", "prepared statement \"" + name + "\" already exists", out);
      auto statement = intern_(parse->query, parse->param_types);
      client_[name] = statement;  // tentative until the reply
      if (server_.contains(statement->id)) {
        server_.touch(statement->id);
        ++counters_.parses_saved;
        return send_noop_close(kind::parse_answered, std::move(statement), std::move(name), out);
      }
      return send_parse(statement, kind::parse, std::move(name), out);
    }
    case 'B': {
      auto bind = protocol::decode_bind(body);
      if (bind && bind->statement.empty())
        unnamed_portal_tag_ = bind->portal.empty() ? unnamed_statement_tag_ : std::string();
      if (!bind || bind->statement.empty()) return forward(type, wire, nullptr, out);
      auto it = client_.find(std::string(bind->statement));
      if (it == client_.end())
        return raise("26000",
                     "prepared statement \"" + std::string(bind->statement) + "\" does not exist",
                     out);
      auto statement = it->second;
      ensure_on_server(statement, out);
      const auto rest = body.subspan(bind->params_offset);
      const auto start = out.arena().size();
      protocol::append_bind_prefix(out.arena(), bind->portal, statement->server_name, rest.size());
      out.owned_from(start);
      out.add_view(rest);  // parameter values go through untouched
      pending_.push_back({kind::plain, 'B', std::move(statement), {}, {}});
      return;
    }
    case 'D': {
      auto describe = protocol::decode_describe(body);
      if (!describe || describe->kind != 'S' || describe->name.empty())
        return forward(type, wire, nullptr, out);
      auto it = client_.find(std::string(describe->name));
      if (it == client_.end())
        return raise("26000",
                     "prepared statement \"" + std::string(describe->name) + "\" does not exist",
                     out);
      auto statement = it->second;
      ensure_on_server(statement, out);
      const auto start = out.arena().size();
      protocol::append_describe(out.arena(), 'S', statement->server_name);
      out.owned_from(start);
      pending_.push_back({kind::plain, 'D', std::move(statement), {}, {}});
      return;
    }
    case 'C': {
      auto close = protocol::decode_close(body);
      if (!close || close->kind != 'S' || close->name.empty())
        return forward(type, wire, nullptr, out);
      // Only the client's name goes; the server keeps the statement for other clients.
      std::string name(close->name);
      statement_ptr previous;
      if (auto it = client_.find(name); it != client_.end()) {
        previous = std::move(it->second);
        client_.erase(it);
      }
      return send_noop_close(kind::close_statement, std::move(previous), std::move(name), out);
    }
    case 'Q':
      return on_query(body, wire, out);
    default:
      return forward(type, wire, nullptr, out);
  }
}

void statement_relay_fsm::on_unnamed_parse(std::string_view query, std::span<const char> wire,
                                           protocol::output_segments& out) {
  unnamed_statement_tag_.clear();
  const auto command = protocol::classify_sql_command(query);
  using cmd = protocol::sql_command::kind;
  if (command.what == cmd::deallocate && client_.contains(command.name)) {
    client_.erase(command.name);
    unnamed_statement_tag_ = "DEALLOCATE";
  } else if (command.what == cmd::deallocate_all) {
    client_.clear();
    unnamed_statement_tag_ = "DEALLOCATE ALL";
  } else {
    return forward('P', wire, nullptr, out);
  }
  // The server keeps the statements for other clients: an empty statement stands in.
  const auto start = out.arena().size();
  protocol::append_parse(out.arena(), "", "", {});
  out.owned_from(start);
  pending_.push_back({kind::plain, 'P', nullptr, {}, {}});
}

bool statement_relay_fsm::must_wait_for_replies(char type, std::span<const char> body) const {
  if (pending_.empty()) return false;
  // The statement name the message depends on: a Parse's own, or the one a Bind, a
  // Describe('S') or a Close('S') refers to.
  std::string_view name;
  if (type == 'P') {
    auto parse = protocol::decode_parse(body);
    if (parse) name = parse->name;
  } else if (type == 'B') {
    auto bind = protocol::decode_bind(body);
    if (bind) name = bind->statement;
  } else if (type == 'D') {
    if (auto describe = protocol::decode_describe(body); describe && describe->kind == 'S')
      name = describe->name;
  } else if (type == 'C') {
    if (auto close = protocol::decode_close(body); close && close->kind == 'S') name = close->name;
  }
  std::string command_name;  // a DEALLOCATE's or EXECUTE's, which outlives `body` checks below
  if (type == 'Q') {
    auto query = protocol::decode_query(body);
    if (!query) return false;
    auto command = protocol::classify_sql_command(query->sql);
    using cmd = protocol::sql_command::kind;
    if (command.what != cmd::deallocate && command.what != cmd::execute) return false;
    command_name = std::move(command.name);
    name = command_name;
  }
  if (name.empty()) return false;
  bool unconfirmed = false;
  for (const auto& entry : pending_) {
    // A DISCARD ALL still in flight decides every name (unless it fails in a transaction).
    if (entry.what == kind::discard_all) return true;
    if ((entry.what == kind::parse || entry.what == kind::parse_answered ||
         entry.what == kind::close_statement) &&
        entry.client_name == name)
      unconfirmed = true;
    else if (unconfirmed && entry.request == 'S')
      return true;
  }
  return false;
}

void statement_relay_fsm::on_query(std::span<const char> body, std::span<const char> wire,
                                   protocol::output_segments& out) {
  auto query = protocol::decode_query(body);
  const auto command = query ? protocol::classify_sql_command(query->sql) : protocol::sql_command{};
  using cmd = protocol::sql_command::kind;
  switch (command.what) {
    case cmd::other:
      if (query && rewrite_deallocates(query->sql, out)) return;
      return forward('Q', wire, nullptr, out);
    case cmd::discard_all:
      out.add_view(wire);
      pending_.push_back({kind::discard_all, 'Q', nullptr, {}, {}});
      return;
    case cmd::deallocate:
      if (!client_.contains(command.name)) {
        // PostgreSQL's own error, with the client's name: the server has no such statement.
        return forward('Q', wire, nullptr, out);
      }
      client_.erase(command.name);
      break;
    case cmd::deallocate_all:
      client_.clear();
      break;
    case cmd::prepare: {
      if (!intern_sql_) return forward('Q', wire, nullptr, out);
      if (client_.contains(command.name)) {
        return send_query(
            "DEALLOCATE sluice_never_prepared",
            {kind::raise_error_query,
             'Q',
             nullptr,
             {},
             error_message("42P05", "prepared statement \"" + command.name + "\" already exists")},
            out);
      }
      auto statement = intern_sql_(command.rest);
      client_[command.name] = statement;  // tentative until the reply
      if (server_.contains(statement->id)) {
        server_.touch(statement->id);
        return send_query("", {kind::deallocate, 'Q', nullptr, {}, "PREPARE"}, out);
      }
      add_to_server(statement, out);
      ++counters_.server_parses;
      return send_query(statement->prepare_sql,
                        {kind::sql_prepare, 'Q', statement, command.name, {}}, out);
    }
    case cmd::execute: {
      auto it = client_.find(command.name);
      // Unknown: PostgreSQL's own error names the client's statement, so pass it through.
      if (!intern_sql_ || it == client_.end() || !it->second->from_sql())
        return forward('Q', wire, nullptr, out);
      auto statement = it->second;
      const auto execute = "EXECUTE " + statement->server_name + command.rest;
      if (server_.contains(statement->id)) {
        server_.touch(statement->id);
        return send_query(execute, {kind::plain, 'Q', statement, {}, {}}, out);
      }
      add_to_server(statement, out);
      ++counters_.server_parses;
      // The newline ends a trailing "--" comment in the definition.
      return send_query(statement->prepare_sql + "\n; " + execute,
                        {kind::sql_execute_prepare, 'Q', statement, {}, {}}, out);
    }
  }
  // The server keeps the statements for other clients; an empty Query stands in so the reply
  // arrives in order, and its EmptyQueryResponse becomes the client's CommandComplete.
  const auto start = out.arena().size();
  protocol::append_query(out.arena(), "");
  out.owned_from(start);
  pending_.push_back({kind::deallocate,
                      'Q',
                      nullptr,
                      {},
                      command.what == cmd::deallocate_all ? "DEALLOCATE ALL" : "DEALLOCATE"});
}

bool statement_relay_fsm::rewrite_deallocates(std::string_view sql,
                                              protocol::output_segments& out) {
  // Cheap test first: this runs on every simple Query.
  bool mentioned = false;
  for (std::size_t i = 0; i + 10 <= sql.size() && !mentioned; ++i)
    mentioned = (sql[i] == 'd' || sql[i] == 'D') &&
                std::equal(sql.begin() + static_cast<std::ptrdiff_t>(i),
                           sql.begin() + static_cast<std::ptrdiff_t>(i + 10), "deallocate",
                           [](char a, char b) { return (a | 0x20) == b; });
  if (!mentioned) return false;
  std::vector<std::string_view> statements;
  if (!protocol::split_statements(sql, statements) || statements.size() < 2) return false;

  // A DEALLOCATE of the client's statement among other statements: it becomes a DEALLOCATE of
  // the server-side name (prepared first if this server lacks it), so the reply is PostgreSQL's
  // own. The statement is then stale on this server whether or not that part ran.
  std::string rewritten;
  std::vector<statement_ptr> deallocated;
  for (auto statement_sql : statements) {
    if (!rewritten.empty()) rewritten += "; ";
    const auto command = protocol::classify_sql_command(statement_sql);
    auto it = command.what == protocol::sql_command::kind::deallocate ? client_.find(command.name)
                                                                      : client_.end();
    if (it == client_.end() || it->second->from_sql()) {
      rewritten += statement_sql;
      continue;
    }
    ensure_on_server(it->second, out);
    rewritten += "DEALLOCATE " + it->second->server_name;
    deallocated.push_back(it->second);
    client_.erase(it);
  }
  if (deallocated.empty()) return false;
  for (const auto& statement : deallocated) server_.mark_stale(statement->id);
  send_query(rewritten, {kind::plain, 'Q', nullptr, {}, {}}, out);
  return true;
}

void statement_relay_fsm::send_query(std::string_view sql, pending entry,
                                     protocol::output_segments& out) {
  const auto start = out.arena().size();
  protocol::append_query(out.arena(), sql);
  out.owned_from(start);
  pending_.push_back(std::move(entry));
}

bool statement_relay_fsm::on_client_streamed(char type) {
  if (dropping_until_sync_) {
    if (type != 'S') return false;
    dropping_until_sync_ = false;
  }
  if (type == 'E' && !unnamed_portal_tag_.empty()) {
    pending_.push_back({kind::deallocate, 'E', nullptr, {}, unnamed_portal_tag_});
  } else if (type != 'H' && type != 'd' && type != 'c' && type != 'f') {
    pending_.push_back({kind::plain, type, nullptr, {}, {}});
  }
  return true;
}

void statement_relay_fsm::forget_missing_statement(std::span<const char> error_body) {
  // A server that lost one of sluice's statements (someone ran DEALLOCATE on it in a way sluice
  // could not see) reports it as 26000: forget it there, so its next use prepares it again.
  auto error = protocol::decode_error_response(error_body);
  if (!error || error->sqlstate() != "26000") return;
  const auto message = error->message();
  static constexpr std::string_view prefix = "\"sluice_";
  const auto at = message.find(prefix);
  if (at == std::string_view::npos) return;
  std::uint64_t id = 0;
  for (auto i = at + prefix.size(); i < message.size() && message[i] >= '0' && message[i] <= '9';
       ++i)
    id = id * 10 + static_cast<std::uint64_t>(message[i] - '0');
  server_.erase(id);
}

void statement_relay_fsm::roll_back(const pending& entry) {
  switch (entry.what) {
    case kind::parse:
      server_.erase(entry.statement->id);
      [[fallthrough]];
    case kind::parse_answered:
      if (auto it = client_.find(entry.client_name);
          it != client_.end() && it->second == entry.statement)
        client_.erase(it);
      break;
    case kind::close_statement:
      if (entry.statement) client_.try_emplace(entry.client_name, entry.statement);
      break;
    case kind::injected_parse:
      server_.erase(entry.statement->id);
      break;
    case kind::evict_close:
      server_.restore(entry.statement);
      break;
    case kind::stale_close:
      server_.mark_stale(entry.statement->id);
      break;
    default:
      break;
  }
}

void statement_relay_fsm::skip_to_sync() {
  // PostgreSQL ignores everything up to the Sync, simple Queries included. Their effects are
  // undone newest first, so each rollback sees the state its entry saw when it was made.
  std::vector<pending> skipped;
  while (!pending_.empty() && pending_.front().request != 'S') {
    skipped.push_back(std::move(pending_.front()));
    pending_.pop_front();
  }
  for (auto it = skipped.rbegin(); it != skipped.rend(); ++it) roll_back(*it);
  // No Sync queued yet: the client's next messages up to its Sync are ignored by the server.
  if (pending_.empty()) dropping_until_sync_ = true;
}

statement_relay_fsm::verdict statement_relay_fsm::on_server_message(
    char type, std::span<const char> body, protocol::output_segments& out) {
  // Asynchronous messages can arrive at any time and answer nothing.
  if (type == 'N' || type == 'S' || type == 'A' || pending_.empty()) return verdict::forward;
  if (type == 'C') {
    auto tag = protocol::decode_command_complete(body);
    if (tag && (tag->tag == "DISCARD ALL" || tag->tag == "DEALLOCATE ALL")) {
      // However it got there (a multi-statement Query, say), the server dropped every
      // statement, other clients' included: they are prepared again on their next use. The
      // client's own names are gone, as PostgreSQL would have it.
      client_.clear();
      server_.clear();
    }
  }
  if (type == 'E') forget_missing_statement(body);
  auto& head = pending_.front();
  if (type == 'E' && head.request == 'Q' && head.statement && is_plan_changed(body))
    server_.mark_stale(head.statement->id);  // prepared afresh on next use
  if (head.what == kind::deallocate && type == 'I') {
    const auto start = out.arena().size();
    protocol::append_command_complete(out.arena(), head.error);
    out.owned_from(start);
    if (head.request == 'E') pending_.pop_front();  // an Execute ends with it
    return verdict::replaced;
  }
  if (head.what == kind::discard_all && type == 'C') return verdict::forward;
  if (head.what == kind::sql_prepare || head.what == kind::sql_execute_prepare ||
      head.what == kind::raise_error_query) {
    if (type == 'E' && head.what == kind::raise_error_query) {
      const auto start = out.arena().size();
      out.arena().append(head.error);
      out.owned_from(start);
      return verdict::replaced;
    }
    if (type == 'E' && !failed_) {  // the PREPARE failed: the server does not have it
      failed_ = true;
      server_.erase(head.statement->id);
      if (auto it = client_.find(head.client_name);
          head.what == kind::sql_prepare && it != client_.end() && it->second == head.statement)
        client_.erase(it);
      return verdict::forward;
    }
    if (type == 'C' && !failed_) {
      head.statement->verified.store(true, std::memory_order_relaxed);
      if (head.what == kind::sql_execute_prepare) {
        failed_ = true;  // only the first CommandComplete is the PREPARE's
        return verdict::swallow;
      }
    }
    if (type != 'Z') return verdict::forward;
    failed_ = false;
  }
  if (!completes(head.request, type)) return verdict::forward;

  auto entry = std::move(head);
  pending_.pop_front();
  const bool failed = type == 'E';
  // The entries after a failed one were made on top of it: undo them first.
  if (failed && is_extended(entry.request)) skip_to_sync();
  verdict result = verdict::forward;
  switch (entry.what) {
    case kind::plain:
      if (failed && entry.request == 'B' && entry.statement && is_plan_changed(body))
        server_.mark_stale(entry.statement->id);  // prepared afresh on next use
      break;
    case kind::parse:
    case kind::injected_parse:
      if (failed) {
        roll_back(entry);  // the client sees the server's own error
        break;
      }
      entry.statement->verified.store(true, std::memory_order_relaxed);
      if (entry.what == kind::injected_parse) result = verdict::swallow;
      break;
    case kind::parse_answered:
      if (failed) {
        roll_back(entry);
      } else {
        const auto start = out.arena().size();
        protocol::append_parse_complete(out.arena());
        out.owned_from(start);
        result = verdict::replaced;
      }
      break;
    case kind::close_statement:
      if (failed) roll_back(entry);
      break;  // its CloseComplete is the client's
    case kind::evict_close:
    case kind::stale_close:
      if (!failed) result = verdict::swallow;
      break;
    case kind::raise_error: {
      const auto start = out.arena().size();
      out.arena().append(entry.error);
      out.owned_from(start);
      result = verdict::replaced;
      break;
    }
    case kind::deallocate:
      break;  // completed by ReadyForQuery; see below for its EmptyQueryResponse
    case kind::discard_all:
    case kind::sql_prepare:
    case kind::sql_execute_prepare:
    case kind::raise_error_query:
      break;  // handled as their replies arrived; ReadyForQuery completes them
  }
  return result;
}

}  // namespace sluice::pool
