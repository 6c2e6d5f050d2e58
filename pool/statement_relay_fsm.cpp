#include "pool/statement_relay_fsm.hpp"

#include <algorithm>
#include <vector>

#include "protocol/backend_messages.hpp"
#include "protocol/framing.hpp"
#include "protocol/frontend_messages.hpp"
#include "protocol/sql_command.hpp"

namespace sluice::pool {
namespace {

// Names sluice uses for its no-ops and errors; they are never prepared anywhere.
constexpr std::string_view never_prepared = "sluice_never_prepared";

// What a client's DISCARD ALL becomes: its effects on the session, without DEALLOCATE ALL (the
// server's statements serve other clients; the client's names are dropped by sluice).
// Session-level advisory locks, LISTEN and temp tables are not the client's alone in
// transaction mode, so they are left as they are.
constexpr std::string_view discard_all_sql =
    "CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL";
constexpr int discard_all_statements = 3;

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

// Requests answered by a ReadyForQuery: each closes a batch.
bool closes_batch(char request) {
  return request == 'S' || request == 'Q' || request == 'F';
}

std::string error_message(std::string_view sqlstate, const std::string& message) {
  std::string out;
  protocol::append_error_response(
      out,
      {.severity = "ERROR", .sqlstate = sqlstate, .message = message, .detail = {}, .hint = {}});
  return out;
}

std::string already_exists(std::string_view name) {
  return "prepared statement \"" + std::string(name) + "\" already exists";
}

std::string does_not_exist(std::string_view name) {
  return "prepared statement \"" + std::string(name) + "\" does not exist";
}

std::string cannot_use(std::string_view name) {
  return "prepared statement \"" + std::string(name) +
         "\" was made by SQL PREPARE and sluice cannot tell its parameter types to this server";
}

bool is_plan_changed(std::span<const char> body) {
  auto error = protocol::decode_error_response(body);
  return error && error->sqlstate() == "0A000" &&
         error->message().find("cached plan must not change result type") != std::string_view::npos;
}

// COMMIT, ROLLBACK and their synonyms: the only statements a failed transaction accepts
// (PostgreSQL's IsTransactionExitStmt). A cheap look at the first word is enough here.
bool is_transaction_exit(std::string_view sql) {
  std::size_t i = 0;
  while (i < sql.size() && (sql[i] == ' ' || sql[i] == '\t' || sql[i] == '\n' || sql[i] == '\r'))
    ++i;
  std::string word;
  while (i < sql.size() && std::isalpha(static_cast<unsigned char>(sql[i])))
    word.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(sql[i++]))));
  return word == "commit" || word == "rollback" || word == "end" || word == "abort";
}

}  // namespace

statement_relay_fsm::statement_relay_fsm(client_statement_map& client,
                                         server_statement_cache& server, intern_function intern,
                                         statement_counters& counters,
                                         intern_sql_function intern_sql, server_bound_state* bound,
                                         bool renames)
    : client_(client),
      server_(server),
      intern_(std::move(intern)),
      intern_sql_(std::move(intern_sql)),
      counters_(counters),
      bound_(bound ? *bound : own_bound_),
      renames_(renames) {}

statement_relay_fsm::statement_relay_fsm(statement_relay_fsm&& other) noexcept
    : client_(other.client_),
      server_(other.server_),
      intern_(std::move(other.intern_)),
      intern_sql_(std::move(other.intern_sql_)),
      counters_(other.counters_),
      pending_(std::move(other.pending_)),
      dropping_until_sync_(other.dropping_until_sync_),
      failed_(other.failed_),
      status_(other.status_),
      unnamed_statement_effect_(std::move(other.unnamed_statement_effect_)),
      unnamed_portal_effect_(std::move(other.unnamed_portal_effect_)),
      unnamed_statement_sql_(std::move(other.unnamed_statement_sql_)),
      unnamed_portal_sql_(std::move(other.unnamed_portal_sql_)),
      own_bound_(std::move(other.own_bound_)),
      bound_(&other.bound_ == &other.own_bound_ ? own_bound_ : other.bound_),
      renames_(other.renames_),
      settings_changed_(other.settings_changed_),
      settings_named_(std::move(other.settings_named_)),
      autocommit_sequence_(other.autocommit_sequence_),
      declared_in_transaction_(std::move(other.declared_in_transaction_)),
      rolled_back_(other.rolled_back_),
      heal_copy_(other.heal_copy_),
      heal_bytes_(std::move(other.heal_bytes_)),
      heal_describes_(other.heal_describes_),
      healing_(other.healing_),
      server_output_(std::move(other.server_output_)) {}

bool statement_relay_fsm::wants_whole_request(char type) {
  return type == 'P' || type == 'B' || type == 'D' || type == 'C' || type == 'Q' || type == 'E';
}

bool statement_relay_fsm::wants_whole_reply(char type) {
  return type == 'E' || type == 'C' || type == 't';
}

void statement_relay_fsm::append_owned(protocol::output_segments& out, std::string_view bytes) {
  const auto start = out.arena().size();
  out.arena().append(bytes);
  out.owned_from(start);
}

void statement_relay_fsm::forward(char type, std::span<const char> wire, statement_ptr statement,
                                  protocol::output_segments& out) {
  out.add_view(wire);
  if (type == 'H' || type == 'd' || type == 'c' || type == 'f') return;  // no reply of their own
  pending_.push_back({kind::plain, type, std::move(statement), {}, {}, {}, 0});
}

void statement_relay_fsm::add_to_server(const statement_ptr& statement,
                                        protocol::output_segments& out) {
  // A stale statement (its plan was refused) is still on the server under its name: close it
  // before preparing it again.
  if (server_.take_stale(statement->id)) {
    const auto start = out.arena().size();
    protocol::append_close(out.arena(), 'S', statement->server_name);
    out.owned_from(start);
    pending_.push_back({kind::stale_close, 'C', statement, {}, {}, {}, 0});
  }
  // Room is made first: each statement the cache drops is closed on the server, and its
  // CloseComplete swallowed.
  for (auto& evicted : server_.insert(statement)) {
    ++counters_.evictions;
    const auto start = out.arena().size();
    protocol::append_close(out.arena(), 'S', evicted->server_name);
    out.owned_from(start);
    pending_.push_back({kind::evict_close, 'C', std::move(evicted), {}, {}, {}, 0});
  }
}

void statement_relay_fsm::send_parse(const statement_ptr& statement, kind what,
                                     std::string client_name, protocol::output_segments& out) {
  add_to_server(statement, out);
  append_owned(out, statement->protocol_parse());
  ++counters_.server_parses;
  if (what == kind::injected_parse || what == kind::injected_parse_synced)
    ++counters_.injected_parses;
  pending_.push_back({what, 'P', statement, std::move(client_name), {}, {}, 0});
}

bool statement_relay_fsm::ensure_on_server(const statement_ptr& statement,
                                           protocol::output_segments& out) {
  if (server_.contains(statement->id)) {
    server_.touch(statement->id);
    return true;
  }
  if (statement->protocol_parse().empty()) return false;
  send_parse(statement, kind::injected_parse, {}, out);
  return true;
}

void statement_relay_fsm::send_sync(protocol::output_segments& out) {
  const auto start = out.arena().size();
  protocol::append_sync(out.arena());
  out.owned_from(start);
  pending_.push_back({kind::injected_sync, 'S', nullptr, {}, {}, {}, 0});
}

void statement_relay_fsm::learn_types_after(const statement_ptr& statement,
                                            protocol::output_segments& out) {
  // Right after the PREPARE that made it: a Describe of its own, in a batch of its own.
  if (!statement->protocol_parse().empty() || statement->sql_statement.empty()) return;
  const auto start = out.arena().size();
  protocol::append_describe(out.arena(), 'S', statement->server_name);
  out.owned_from(start);
  pending_.push_back({kind::learn_types, 'D', statement, {}, {}, {}, 0});
  send_sync(out);
}

void statement_relay_fsm::send_noop_close(kind what, statement_ptr statement,
                                          std::string client_name, protocol::output_segments& out) {
  const auto start = out.arena().size();
  protocol::append_close(out.arena(), 'S', never_prepared);
  out.owned_from(start);
  pending_.push_back({what, 'C', std::move(statement), std::move(client_name), {}, {}, 0});
}

void statement_relay_fsm::raise(std::string_view sqlstate, std::string message,
                                protocol::output_segments& out) {
  const auto start = out.arena().size();
  protocol::append_describe(out.arena(), 'S', never_prepared);
  out.owned_from(start);
  pending_.push_back(
      {kind::raise_error, 'D', nullptr, {}, error_message(sqlstate, message), {}, 0});
  dropping_until_sync_ = true;  // as PostgreSQL does after an error: ignore up to the Sync
}

std::vector<std::pair<std::string, statement_ptr>> statement_relay_fsm::forget(
    bool all, const std::string& name) {
  std::vector<std::pair<std::string, statement_ptr>> forgotten;
  if (all) {
    for (auto& entry : client_) forgotten.emplace_back(entry.first, std::move(entry.second));
    client_.clear();
  } else if (auto it = client_.find(name); it != client_.end()) {
    forgotten.emplace_back(it->first, std::move(it->second));
    client_.erase(it);
  }
  return forgotten;
}

void statement_relay_fsm::restore(std::vector<std::pair<std::string, statement_ptr>>& forgotten) {
  // A name taken again since (by a later Parse that the same failure also rolls back, newest
  // first, before this) is left alone.
  for (auto& [name, statement] : forgotten) client_.try_emplace(name, std::move(statement));
  forgotten.clear();
}

bool statement_relay_fsm::on_client_message(char type, std::span<const char> body,
                                            std::span<const char> wire,
                                            protocol::output_segments& out) {
  if (dropping_until_sync_) return false;  // a Sync is never whole-buffered: on_client_streamed
  capture_for_heal(type, wire);
  handle_client_message(type, body, wire, out);
  return true;
}

bool statement_relay_fsm::refuse_session_sql(const protocol::sql_effects& effects,
                                             bool simple_query, protocol::output_segments& out) {
  // A failed transaction refuses these too, with 25P02: PostgreSQL's own answer comes first.
  if (status_ == 'E') return false;
  std::string_view sqlstate;
  std::string message;
  if (effects.listen) {
    sqlstate = "0A000";
    message =
        "LISTEN is not supported in transaction mode by sluice: the notifications "
        "would reach whichever client holds this server connection next; use a database with "
        "pool.mode: session for listeners";
  } else if (effects.reads_sequence && !effects.advances_sequence && !bound_.sequence_here) {
    // The server's lastval()/currval() would be whatever its last client's sequences returned.
    sqlstate = "55000";
    message =
        "lastval() and currval() are not available here: in transaction mode this server "
        "connection is not the one that advanced the client's sequence; use INSERT ... "
        "RETURNING, or call them in the same transaction as the nextval()";
  } else {
    return false;
  }
  if (simple_query) {
    send_query("DEALLOCATE sluice_never_prepared",
               {kind::raise_error_query, 'Q', nullptr, {}, error_message(sqlstate, message), {}, 0},
               out);
  } else {
    raise(sqlstate, message, out);
  }
  return true;
}

void statement_relay_fsm::note_effects(const protocol::sql_effects& effects, pending& entry) {
  if (effects.settings) settings_changed_ = true;
  settings_named_.insert(effects.setting_names.begin(), effects.setting_names.end());
  if (effects.advances_sequence) {
    bound_.sequence_here = true;
    if (status_ == 'I' && !earlier_batch_pending()) autocommit_sequence_ = true;
  }
  if (effects.holdable_cursor) {
    entry.cursor_op = pending::cursor_change::declare;
    entry.cursor = effects.cursor;
  } else if (effects.closes_cursor) {
    entry.cursor_op =
        effects.all_cursors ? pending::cursor_change::close_all : pending::cursor_change::close;
    entry.cursor = effects.cursor;
  }
}

void statement_relay_fsm::confirm_cursor(const pending& entry, char type,
                                         std::span<const char> body) {
  using change = pending::cursor_change;
  if (entry.cursor_op == change::none) return;
  if (type == 'E') {
    // A CLOSE of a cursor that does not exist: it is not open, whatever sluice thought.
    auto error = protocol::decode_error_response(body);
    if (entry.cursor_op == change::close && error && error->sqlstate() == "34000")
      bound_.holdable_cursors.erase(entry.cursor);
    return;
  }
  if (type != 'C') return;
  auto tag = protocol::decode_command_complete(body);
  if (!tag) return;
  if (entry.cursor_op == change::declare && tag->tag == "DECLARE CURSOR") {
    bound_.holdable_cursors.insert(entry.cursor);
    if (status_ != 'I') declared_in_transaction_.push_back(entry.cursor);
  } else if (entry.cursor_op == change::close && tag->tag == "CLOSE CURSOR") {
    bound_.holdable_cursors.erase(entry.cursor);
  } else if (entry.cursor_op == change::close_all && tag->tag == "CLOSE CURSOR ALL") {
    bound_.holdable_cursors.clear();
  }
}

void statement_relay_fsm::on_named_parse(std::string name, std::string_view query,
                                         std::span<const std::uint32_t> types,
                                         protocol::output_segments& out) {
  ++counters_.client_parses;
  // PostgreSQL parses the query, then refuses it in a failed transaction (25P02), then
  // analyses it, and only then finds the name taken (42P05). A Parse under a name the server
  // holds gets every one of those answers from PostgreSQL itself, and creates nothing.
  if (auto it = client_.find(name); it != client_.end()) {
    const auto existing = it->second;
    // No Parse can make it here (its types are not known): answer the name check here.
    if (!ensure_on_server(existing, out)) return raise("42P05", already_exists(name), out);
    const auto start = out.arena().size();
    protocol::append_parse(out.arena(), existing->server_name, query, types);
    out.owned_from(start);
    pending_.push_back({kind::parse_refused, 'P', existing, std::move(name), {}, {}, 0});
    return;
  }
  auto statement = intern_(query, types);
  if (server_.contains(statement->id)) {
    server_.touch(statement->id);
    if (status_ == 'E' && !is_transaction_exit(query)) {
      // A failed transaction refuses the Parse; only the server can say how (a syntax error
      // comes first). Under the statement's own name nothing can be created.
      append_owned(out, statement->parse_message);
      pending_.push_back({kind::parse_refused, 'P', statement, std::move(name), {}, {}, 0});
      return;
    }
    client_[name] = statement;  // tentative until the reply
    ++counters_.parses_saved;
    return send_noop_close(kind::parse_answered, std::move(statement), std::move(name), out);
  }
  client_[name] = statement;  // tentative until the reply
  return send_parse(statement, kind::parse, std::move(name), out);
}

void statement_relay_fsm::handle_client_message(char type, std::span<const char> body,
                                                std::span<const char> wire,
                                                protocol::output_segments& out) {
  switch (type) {
    case 'P': {
      auto parse = protocol::decode_parse(body);
      if (!parse) return forward(type, wire, nullptr, out);
      if (parse->name.empty()) return on_unnamed_parse(parse->query, wire, out);
      if (!renames_) return forward(type, wire, nullptr, out);
      return on_named_parse(std::string(parse->name), parse->query, parse->param_types, out);
    }
    case 'B': {
      auto bind = protocol::decode_bind(body);
      if (!bind) return forward(type, wire, nullptr, out);
      // What the portal will run: the unnamed statement, or the client's named one.
      const protocol::sql_effects* runs = &unnamed_statement_sql_;
      statement_ptr statement;
      if (!bind->statement.empty() && renames_) {
        auto it = client_.find(std::string(bind->statement));
        if (it == client_.end()) return raise("26000", does_not_exist(bind->statement), out);
        statement = it->second;
        runs = &statement->effects;
        ++counters_.binds;
      } else if (!bind->statement.empty()) {
        runs = nullptr;  // passed through: sluice does not know the statement
      }
      if (runs && refuse_session_sql(*runs, false, out)) return;
      if (bind->portal.empty()) {
        unnamed_portal_effect_ =
            bind->statement.empty() ? unnamed_statement_effect_ : unnamed_effect{};
        unnamed_portal_sql_ = runs ? *runs : protocol::sql_effects{};
      }
      if (!statement) return forward(type, wire, nullptr, out);
      if (!ensure_on_server(statement, out))
        return raise("0A000", cannot_use(bind->statement), out);
      const auto rest = body.subspan(bind->params_offset);
      const auto start = out.arena().size();
      protocol::append_bind_prefix(out.arena(), bind->portal, statement->server_name, rest.size());
      out.owned_from(start);
      out.add_view(rest);  // parameter values go through untouched
      pending entry{kind::plain, 'B', std::move(statement), {}, {}, {}, 0};
      // Nothing before it in an implicit transaction has run: it can be healed (see heal).
      if (heal_copy_ == heal_copy::copying &&
          heal_bytes_ == std::string_view(wire.data(), wire.size()))
        entry.heals_plan = true;
      pending_.push_back(std::move(entry));
      return;
    }
    case 'D': {
      auto describe = protocol::decode_describe(body);
      if (!describe || describe->kind != 'S' || describe->name.empty() || !renames_)
        return forward(type, wire, nullptr, out);
      auto it = client_.find(std::string(describe->name));
      if (it == client_.end()) return raise("26000", does_not_exist(describe->name), out);
      auto statement = it->second;
      if (!ensure_on_server(statement, out)) return raise("0A000", cannot_use(describe->name), out);
      const auto start = out.arena().size();
      protocol::append_describe(out.arena(), 'S', statement->server_name);
      out.owned_from(start);
      pending_.push_back({kind::plain, 'D', std::move(statement), {}, {}, {}, 0});
      return;
    }
    case 'C': {
      auto close = protocol::decode_close(body);
      if (!close || close->kind != 'S' || close->name.empty() || !renames_)
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
    case 'E':
      return on_execute(body, wire, out);
    case 'Q':
      return on_query(body, wire, out);
    default:
      return forward(type, wire, nullptr, out);
  }
}

void statement_relay_fsm::on_unnamed_parse(std::string_view query, std::span<const char> wire,
                                           protocol::output_segments& out) {
  unnamed_statement_effect_ = {};
  unnamed_statement_sql_ = protocol::inspect_sql(query);
  if (!renames_) return forward('P', wire, nullptr, out);
  const auto command = protocol::classify_sql_command(query);
  using cmd = protocol::sql_command::kind;
  // A failed transaction refuses the Parse: PostgreSQL's own error, from the query as it is.
  const bool answered_here =
      status_ != 'E' && ((command.what == cmd::deallocate && client_.contains(command.name)) ||
                         command.what == cmd::deallocate_all);
  if (!answered_here) return forward('P', wire, nullptr, out);
  // The server keeps the statements for other clients: an empty statement stands in, and the
  // client's names go when a portal bound from it is executed, as PostgreSQL's would.
  unnamed_statement_effect_ = {
      command.what == cmd::deallocate_all ? "DEALLOCATE ALL" : "DEALLOCATE",
      command.what == cmd::deallocate_all, command.name};
  const auto start = out.arena().size();
  protocol::append_parse(out.arena(), "", "", {});
  out.owned_from(start);
  pending_.push_back({kind::plain, 'P', nullptr, {}, {}, {}, 0});
}

void statement_relay_fsm::on_execute(std::span<const char> body, std::span<const char> wire,
                                     protocol::output_segments& out) {
  auto execute = protocol::decode_execute(body);
  out.add_view(wire);
  if (!execute || !execute->portal.empty() || unnamed_portal_effect_.empty()) {
    pending entry{kind::plain, 'E', nullptr, {}, {}, {}, 0};
    if (execute && execute->portal.empty()) note_effects(unnamed_portal_sql_, entry);
    pending_.push_back(std::move(entry));
    return;
  }
  // A DEALLOCATE sluice answers: the names go now, tentatively, and come back if the Execute
  // fails or is skipped. Executed once: the portal has then run to completion.
  const auto effect = std::exchange(unnamed_portal_effect_, {});
  pending_.push_back(
      {kind::retag, 'E', nullptr, {}, effect.tag, forget(effect.all, effect.name), 0});
}

bool statement_relay_fsm::is_tentative(kind what) {
  // Changes to the client's names or the server's cache that a failure or a skip undoes.
  switch (what) {
    case kind::parse:
    case kind::parse_answered:
    case kind::close_statement:
    case kind::injected_parse:
    case kind::injected_parse_synced:
    case kind::evict_close:
    case kind::stale_close:
    case kind::retag:
    case kind::discard_rewritten:
    case kind::multi_deallocate:
    case kind::sql_prepare:
    case kind::sql_execute_prepare:
      return true;
    default:
      return false;
  }
}

bool statement_relay_fsm::earlier_batch_pending() const {
  return std::any_of(pending_.begin(), pending_.end(),
                     [](const pending& entry) { return closes_batch(entry.request); });
}

bool statement_relay_fsm::tentative_changes_pending() const {
  // Only changes made for a request whose batch is already closed: within the open batch, a
  // failure skips everything after it, and the roll back is exact.
  bool tentative = false;
  for (const auto& entry : pending_) {
    if (is_tentative(entry.what)) tentative = true;
    if (tentative && closes_batch(entry.request)) return true;
  }
  return false;
}

bool statement_relay_fsm::must_wait_for_replies(char type, std::span<const char> body) const {
  if (pending_.empty()) return false;
  using cmd = protocol::sql_command::kind;
  switch (type) {
    case 'P': {
      auto parse = protocol::decode_parse(body);
      if (!parse) return false;
      if (!parse->name.empty()) return earlier_batch_pending();  // status, names and cache
      const auto command = protocol::classify_sql_command(parse->query);
      return (command.what == cmd::deallocate || command.what == cmd::deallocate_all) &&
             earlier_batch_pending();
    }
    case 'B': {
      auto bind = protocol::decode_bind(body);
      return bind && !bind->statement.empty() && tentative_changes_pending();
    }
    case 'D': {
      auto describe = protocol::decode_describe(body);
      return describe && describe->kind == 'S' && !describe->name.empty() &&
             tentative_changes_pending();
    }
    case 'C': {
      auto close = protocol::decode_close(body);
      return close && close->kind == 'S' && !close->name.empty() && tentative_changes_pending();
    }
    case 'Q': {
      auto query = protocol::decode_query(body);
      if (!query) return false;
      // Commands sluice answers or rewrites depend on the status and the names; other SQL only
      // on whether a rewritten DEALLOCATE may be in it.
      if (protocol::classify_sql_command(query->sql).what != cmd::other)
        return earlier_batch_pending();
      return tentative_changes_pending();
    }
    default:
      return false;
  }
}

void statement_relay_fsm::on_query(std::span<const char> body, std::span<const char> wire,
                                   protocol::output_segments& out) {
  // A simple Query drops the unnamed statement and portal.
  unnamed_statement_effect_ = unnamed_portal_effect_ = {};
  auto query = protocol::decode_query(body);
  if (!query) return forward('Q', wire, nullptr, out);
  const auto effects = protocol::inspect_sql(query->sql);
  if (refuse_session_sql(effects, true, out)) return;
  const auto command =
      renames_ ? protocol::classify_sql_command(query->sql) : protocol::sql_command{};
  using cmd = protocol::sql_command::kind;
  if (command.what == cmd::other) {
    if (renames_ && effects.mentions_deallocate && rewrite_deallocates(query->sql, out)) {
      note_effects(effects, pending_.back());
      return;
    }
    pending entry{kind::plain, 'Q', nullptr, {}, {}, {}, 0};
    note_effects(effects, entry);
    out.add_view(wire);
    pending_.push_back(std::move(entry));
    return;
  }
  // A failed transaction refuses each of these commands with 25P02: PostgreSQL's own answer,
  // and nothing changes. (Their status is known: see must_wait_for_replies.)
  if (status_ == 'E') return forward('Q', wire, nullptr, out);
  switch (command.what) {
    case cmd::other:
      break;
    case cmd::discard_all: {
      // Inside a transaction block PostgreSQL refuses DISCARD ALL: let it say so.
      if (status_ != 'I') return forward('Q', wire, nullptr, out);
      pending entry{kind::discard_rewritten,   'Q', nullptr, {}, "DISCARD ALL", forget(true, {}),
                    discard_all_statements - 1};
      note_effects(effects, entry);
      return send_query(discard_all_sql, std::move(entry), out);
    }
    case cmd::deallocate:
      // PostgreSQL's own error, with the client's name: the server has no such statement.
      if (!client_.contains(command.name)) return forward('Q', wire, nullptr, out);
      [[fallthrough]];
    case cmd::deallocate_all: {
      // The server keeps the statements for other clients; an empty Query stands in so the
      // reply arrives in order, and its EmptyQueryResponse becomes the client's CommandComplete.
      const bool all = command.what == cmd::deallocate_all;
      pending entry{kind::retag,
                    'Q',
                    nullptr,
                    {},
                    all ? "DEALLOCATE ALL" : "DEALLOCATE",
                    forget(all, command.name),
                    0};
      return send_query("", std::move(entry), out);
    }
    case cmd::prepare: {
      if (!intern_sql_) return forward('Q', wire, nullptr, out);
      if (client_.contains(command.name)) {
        return send_query("DEALLOCATE sluice_never_prepared",
                          {kind::raise_error_query,
                           'Q',
                           nullptr,
                           {},
                           error_message("42P05", already_exists(command.name)),
                           {},
                           0},
                          out);
      }
      auto statement = intern_sql_(command.rest);
      client_[command.name] = statement;  // tentative until the reply
      if (server_.contains(statement->id)) {
        server_.touch(statement->id);
        return send_query("", {kind::retag, 'Q', statement, command.name, "PREPARE", {}, 0}, out);
      }
      add_to_server(statement, out);
      ++counters_.server_parses;
      send_query(statement->prepare_sql,
                 {kind::sql_prepare, 'Q', statement, command.name, {}, {}, 0}, out);
      return learn_types_after(statement, out);
    }
    case cmd::execute: {
      auto it = client_.find(command.name);
      // Unknown: PostgreSQL's own error names the client's statement, so pass it through.
      if (it == client_.end()) return forward('Q', wire, nullptr, out);
      auto statement = it->second;
      const auto execute = "EXECUTE " + statement->server_name + command.rest;
      pending run{kind::plain, 'Q', statement, command.name, {}, {}, 0};
      note_effects(statement->effects, run);
      if (server_.contains(statement->id)) {
        server_.touch(statement->id);
        return send_query(execute, std::move(run), out);
      }
      if (!statement->from_sql()) {
        // Made by a Parse: the same Parse first, in a batch of its own, then the EXECUTE.
        send_parse(statement, kind::injected_parse_synced, {}, out);
        send_sync(out);
        return send_query(execute, std::move(run), out);
      }
      add_to_server(statement, out);
      ++counters_.server_parses;
      // The newline ends a trailing "--" comment in the definition.
      send_query(statement->prepare_sql + "\n; " + execute,
                 {kind::sql_execute_prepare, 'Q', statement, {}, {}, {}, 0}, out);
      return learn_types_after(statement, out);
    }
  }
}

bool statement_relay_fsm::rewrite_deallocates(std::string_view sql,
                                              protocol::output_segments& out) {
  std::vector<std::string_view> statements;
  if (!protocol::split_statements(sql, statements) || statements.size() < 2) return false;

  // A DEALLOCATE of the client's statement among other statements: it becomes a DEALLOCATE of
  // the server-side name (prepared first if this server lacks it), so the reply is PostgreSQL's
  // own. The statement is then stale on this server whether or not that part ran; the client's
  // name goes only if it ran (each "DEALLOCATE" tag confirms the next one, in order).
  std::string rewritten;
  pending entry{kind::multi_deallocate, 'Q', nullptr, {}, {}, {}, 0};
  for (auto statement_sql : statements) {
    if (!rewritten.empty()) rewritten += "; ";
    const auto command = protocol::classify_sql_command(statement_sql);
    auto it = command.what == protocol::sql_command::kind::deallocate ? client_.find(command.name)
                                                                      : client_.end();
    if (it == client_.end() || it->second->from_sql()) {
      rewritten += statement_sql;
      continue;
    }
    if (!ensure_on_server(it->second, out)) {  // then it cannot be on this server either
      rewritten += statement_sql;
      continue;
    }
    rewritten += "DEALLOCATE " + it->second->server_name;
    entry.forgotten.emplace_back(it->first, it->second);
    client_.erase(it);
  }
  if (entry.forgotten.empty()) return false;
  for (const auto& [name, statement] : entry.forgotten) server_.mark_stale(statement->id);
  send_query(rewritten, std::move(entry), out);
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
  if (type == 'S' || type == 'H') {
    std::string message;
    type == 'S' ? protocol::append_sync(message) : protocol::append_flush(message);
    capture_for_heal(type, {message.data(), message.size()});
  } else {
    capture_for_heal(type, {});
  }
  if (type != 'H' && type != 'd' && type != 'c' && type != 'f')
    pending_.push_back({kind::plain, type, nullptr, {}, {}, {}, 0});
  return true;
}

void statement_relay_fsm::capture_for_heal(char type, std::span<const char> wire) {
  switch (heal_copy_) {
    case heal_copy::off: {
      // A Bind of a renamed statement that opens a batch in an implicit transaction, with no
      // earlier batch still to answer (so its status is known) and not already a second run.
      const bool opens_batch =
          std::none_of(pending_.begin(), pending_.end(), [](const pending& entry) {
            return entry.request == 'E' || entry.request == 'B' || closes_batch(entry.request);
          });
      if (type == 'B' && renames_ && !healing_ && status_ == 'I' && opens_batch &&
          wire.size() <= heal_limit) {
        heal_bytes_.assign(wire.data(), wire.size());
        heal_describes_ = false;
        heal_copy_ = heal_copy::copying;
      }
      return;
    }
    case heal_copy::copying:
      if (wire.empty() || heal_bytes_.size() + wire.size() > heal_limit) {
        heal_copy_ = heal_copy::off;  // a message that cannot be copied: no second run
        heal_bytes_.clear();
        return;
      }
      heal_bytes_.append(wire.data(), wire.size());
      if (type == 'D') heal_describes_ = true;
      if (type == 'S') heal_copy_ = heal_copy::complete;
      return;
    case heal_copy::complete:
      // Something behind the batch: a second run would overtake it.
      heal_copy_ = heal_copy::off;
      heal_bytes_.clear();
      return;
  }
}

void statement_relay_fsm::heal(protocol::output_segments& out) {
  // The failed batch's ReadyForQuery is not the client's: the second run's is.
  if (!pending_.empty() && pending_.front().request == 'S')
    pending_.front().what = kind::injected_sync;
  healing_ = true;
  heal_copy_ = heal_copy::off;
  const auto bytes = std::move(heal_bytes_);
  heal_bytes_.clear();
  protocol::output_segments again;
  std::span<const char> rest(bytes.data(), bytes.size());
  while (!rest.empty()) {
    const auto framed = protocol::frame_message(rest, ~std::uint32_t{0});
    if (framed.status != protocol::frame_status::complete) break;
    const auto& message = framed.message;
    if (wants_whole_request(message.type)) {
      handle_client_message(message.type, message.body, message.wire, again);
    } else if (on_client_streamed(message.type)) {
      again.add_view(message.wire);
    }
    rest = rest.subspan(message.wire.size());
  }
  again.for_each([&](const char* data, std::size_t size) { server_output_.append(data, size); });
  static_cast<void>(out);
}

void statement_relay_fsm::take_server_output(protocol::output_segments& out) {
  if (server_output_.empty()) return;
  append_owned(out, server_output_);
  server_output_.clear();
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

void statement_relay_fsm::roll_back(pending& entry) {
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
    case kind::injected_parse_synced:
      server_.erase(entry.statement->id);
      break;
    case kind::evict_close:
      server_.restore(entry.statement);
      break;
    case kind::stale_close:
      server_.mark_stale(entry.statement->id);
      break;
    case kind::retag:  // a PREPARE answered here names its statement
    case kind::sql_prepare:
      if (auto it = client_.find(entry.client_name);
          entry.statement && it != client_.end() && it->second == entry.statement)
        client_.erase(it);
      if (entry.what == kind::sql_prepare) server_.erase(entry.statement->id);
      restore(entry.forgotten);
      break;
    case kind::sql_execute_prepare:
      server_.erase(entry.statement->id);
      break;
    case kind::discard_rewritten:
    case kind::multi_deallocate:
      restore(entry.forgotten);
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

// The replies to a simple Query that sluice sent in the client's stead, up to its
// ReadyForQuery (which completes it).
statement_relay_fsm::verdict statement_relay_fsm::on_query_reply(pending& head, char type,
                                                                 std::span<const char> body,
                                                                 protocol::output_segments& out) {
  switch (head.what) {
    case kind::retag:
      if (type == 'I') {  // the empty Query's EmptyQueryResponse
        const auto start = out.arena().size();
        protocol::append_command_complete(out.arena(), head.text);
        out.owned_from(start);
        return verdict::replaced;
      }
      if (type == 'E') roll_back(head);
      return verdict::forward;
    case kind::discard_rewritten:
      if (type == 'C') {
        if (head.swallow > 0) {
          --head.swallow;
          return verdict::swallow;
        }
        head.forgotten.clear();  // it ran: the names stay gone
        bound_ = {};             // CLOSE ALL closed every cursor; no sequence is current
        const auto start = out.arena().size();
        protocol::append_command_complete(out.arena(), head.text);
        out.owned_from(start);
        return verdict::replaced;
      }
      if (type == 'E') restore(head.forgotten);
      return verdict::forward;
    case kind::multi_deallocate:
      if (type == 'C') {
        auto tag = protocol::decode_command_complete(body);
        if (tag && tag->tag == "DEALLOCATE" && !head.forgotten.empty())
          head.forgotten.erase(head.forgotten.begin());  // that one ran
      } else if (type == 'E') {
        restore(head.forgotten);  // the rest never runs
      }
      return verdict::forward;
    case kind::raise_error_query:
      if (type == 'E') {
        append_owned(out, head.text);
        return verdict::replaced;
      }
      return verdict::forward;
    case kind::sql_prepare:
    case kind::sql_execute_prepare:
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
      return verdict::forward;
    default:
      confirm_cursor(head, type, body);
      if (type == 'E' && head.statement && !head.client_name.empty()) {
        // An EXECUTE sluice renamed: PostgreSQL named the server's statement.
        auto error = protocol::decode_error_response(body);
        if (error && error->sqlstate() == "26000" &&
            error->message().find(head.statement->server_name) != std::string_view::npos) {
          append_owned(out, error_message("26000", does_not_exist(head.client_name)));
          return verdict::replaced;
        }
      }
      return verdict::forward;
  }
}

statement_relay_fsm::verdict statement_relay_fsm::on_server_message(
    char type, std::span<const char> body, protocol::output_segments& out) {
  if (type == 'Z') {
    if (auto ready = protocol::decode_ready_for_query(body)) status_ = ready->status;
    // The second run's batch is answered (or the first run's is, and none was needed).
    if (healing_ && !pending_.empty() && pending_.front().what != kind::injected_sync)
      healing_ = false;
    // The transaction block ended: holdable cursors it declared survive a COMMIT only.
    if (status_ == 'I' && !declared_in_transaction_.empty()) {
      if (rolled_back_)
        for (const auto& cursor : declared_in_transaction_) bound_.holdable_cursors.erase(cursor);
      declared_in_transaction_.clear();
    }
  }
  // Asynchronous messages can arrive at any time and answer nothing.
  if (type == 'N' || type == 'S' || type == 'A' || pending_.empty()) return verdict::forward;
  auto& head = pending_.front();
  if (type == 'C') {
    auto tag = protocol::decode_command_complete(body);
    rolled_back_ = tag && tag->tag == "ROLLBACK";
    if (tag && head.what != kind::discard_rewritten &&
        (tag->tag == "DISCARD ALL" || tag->tag == "DEALLOCATE ALL")) {
      // However it got there (a multi-statement Query, say), the server dropped every
      // statement, other clients' included: they are prepared again on their next use. The
      // client's own names are gone, as PostgreSQL would have it.
      client_.clear();
      server_.clear();
    }
  }
  if (type == 'E') forget_missing_statement(body);
  if (type == 'E' && head.request == 'Q' && head.statement && is_plan_changed(body))
    server_.mark_stale(head.statement->id);  // prepared afresh on next use
  if (head.request == 'Q' && type != 'Z') return on_query_reply(head, type, body, out);
  if (head.what == kind::learn_types && type == 't') {
    std::vector<std::uint32_t> oids;
    if (body.size() >= 2) {
      const auto count =
          (static_cast<unsigned char>(body[0]) << 8) | static_cast<unsigned char>(body[1]);
      for (std::size_t i = 0; i < static_cast<std::size_t>(count) && 2 + 4 * i + 4 <= body.size();
           ++i) {
        std::uint32_t oid = 0;
        for (int b = 0; b < 4; ++b)
          oid = (oid << 8) |
                static_cast<unsigned char>(body[2 + 4 * i + static_cast<std::size_t>(b)]);
        oids.push_back(oid);
      }
      if (oids.size() == static_cast<std::size_t>(count))
        head.statement->learn_parameter_types(oids);
    }
    return verdict::swallow;
  }
  if (!completes(head.request, type)) return verdict::forward;

  auto entry = std::move(head);
  pending_.pop_front();
  if (entry.request == 'Q') failed_ = false;
  const bool failed = type == 'E';
  // The entries after a failed one were made on top of it: undo them first.
  if (failed && is_extended(entry.request)) skip_to_sync();
  verdict result = verdict::forward;
  switch (entry.what) {
    case kind::plain:
      confirm_cursor(entry, type, body);
      if (failed && entry.request == 'B' && entry.statement && is_plan_changed(body)) {
        server_.mark_stale(entry.statement->id);  // prepared afresh on next use
        if (entry.heals_plan && heal_copy_ == heal_copy::complete && heal_describes_) {
          ++counters_.plans_healed;
          heal(out);
          result = verdict::swallow;
        }
      }
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
    case kind::parse_refused:
      if (auto error = protocol::decode_error_response(body);
          failed && error && error->sqlstate() == "42P05") {
        // PostgreSQL named the server's statement; the client named its own.
        append_owned(out, error_message("42P05", already_exists(entry.client_name)));
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
    case kind::raise_error:
      append_owned(out, entry.text);
      result = verdict::replaced;
      break;
    case kind::retag:  // an Execute's: its EmptyQueryResponse becomes the command's tag
      if (entry.request != 'E') break;  // a Query's: its ReadyForQuery completes it
      if (failed) {
        roll_back(entry);
      } else {
        const auto start = out.arena().size();
        protocol::append_command_complete(out.arena(), entry.text);
        out.owned_from(start);
        result = verdict::replaced;
      }
      break;
    case kind::injected_sync:
    case kind::learn_types:
      result = verdict::swallow;
      break;
    case kind::injected_parse_synced:
      if (failed) {
        roll_back(entry);
      } else {
        entry.statement->verified.store(true, std::memory_order_relaxed);
      }
      result = verdict::swallow;
      break;
    case kind::discard_rewritten:
    case kind::multi_deallocate:
    case kind::sql_prepare:
    case kind::sql_execute_prepare:
    case kind::raise_error_query:
      break;  // handled as their replies arrived; ReadyForQuery completes them
  }
  return result;
}

}  // namespace sluice::pool
