#pragma once
// Keeps drivers' named prepared statements working while their requests move between servers.
//
// Flow, client → server (on_client_message): a named Parse is recorded in the client's map and
// sent under the statement's server-side name, unless this server already has it; a Bind or a
// Describe('S') of a statement the server lacks gets the Parse injected first; Close('S') only
// drops the client's mapping. Every message sent is queued with what its reply means.
//
// Flow, server → client (on_server_message): each reply is matched, in order, to the head of
// that queue and forwarded, swallowed (replies to what sluice injected) or replaced (the
// ParseComplete or CloseComplete a client expects for work the server did not need to do,
// the error PostgreSQL would have given). So a client sees exactly the replies a direct
// PostgreSQL would have sent, in their places, across pipelines and Flushes.
//
// Nothing sluice answers itself is written early: work that needs no server still sends the
// server a no-op (a Close of a statement that never exists, which PostgreSQL acknowledges) and
// turns its CloseComplete into the reply the client expects, at the right position. Errors
// sluice raises (42P05, 26000) likewise send a Describe that fails, so the server too skips to
// the next Sync and aborts the implicit transaction, exactly as it would have.
//
// State changes are tentative until their reply arrives: a Parse that fails, or that the server
// skips after an earlier error, leaves no trace in the client's map or the server's cache.
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include <boost/container/deque.hpp>

#include "pool/prepared_statement.hpp"
#include "pool/server_statement_cache.hpp"
#include "protocol/output_segments.hpp"

namespace sluice::pool {

// A client's statement names → statements.
using client_statement_map = std::unordered_map<std::string, statement_ptr>;
// The daemon's registry, behind whatever lock it needs.
using intern_function =
    std::function<statement_ptr(std::string_view query, std::span<const std::uint32_t> types)>;
// The same for SQL `PREPARE name <definition>`; without one, PREPARE and EXECUTE pass through.
using intern_sql_function = std::function<statement_ptr(std::string_view definition)>;

struct statement_counters {
  std::uint64_t client_parses = 0;  // named Parse messages from clients
  std::uint64_t server_parses = 0;  // Parse messages sent to servers (rewritten or injected)
  std::uint64_t parses_saved = 0;   // client Parses answered without preparing again
};

class statement_relay_fsm {
 public:
  statement_relay_fsm(client_statement_map& client, server_statement_cache& server,
                      intern_function intern, statement_counters& counters,
                      intern_sql_function intern_sql = {});

  // Client messages the fsm must see whole; others it only needs the type of.
  static bool wants_whole_request(char type);
  // A whole client message: appends to `out` what the server gets instead. False when it is
  // dropped (the batch already failed; the server would ignore it).
  bool on_client_message(char type, std::span<const char> body, std::span<const char> wire,
                         protocol::output_segments& out);
  // A streamed client message (only its type is known): true = forward its bytes, false = drop
  // them (the batch already failed; the server would ignore them).
  bool on_client_streamed(char type);

  // Server messages the fsm must see whole (to read an error's SQLSTATE or a command tag).
  static bool wants_whole_reply(char type);
  enum class verdict {
    forward,   // send the server's message on to the client
    swallow,   // drop it: the reply to something sluice sent on its own
    replaced,  // drop it: the fsm appended what the client gets instead to `out`
  };
  verdict on_server_message(char type, std::span<const char> body, protocol::output_segments& out);

  // True when `type`/`body` cannot be decided before replies already owed arrive: a Parse of a
  // name whose earlier Parse, in a batch already closed by its Sync, is still unconfirmed (if
  // the server skips or rejects that one, this one must succeed). The relay then holds the
  // client's bytes until on_server_message has made progress.
  bool must_wait_for_replies(char type, std::span<const char> body) const;

  // No reply is owed and no failed batch is being skipped: the server may be released.
  bool idle() const { return pending_.empty() && !dropping_until_sync_; }

 private:
  // What a message sent to the server means for its reply.
  enum class kind : std::uint8_t {
    plain,                // the client's own message, forwarded: its replies go through
    parse,                // the client's Parse, renamed: on failure, forget the statement
    parse_answered,       // the client's Parse of a statement the server has: a no-op Close stands
                          // in, and its CloseComplete becomes ParseComplete
    close_statement,      // the client's Close('S'): a no-op Close; if skipped, the mapping returns
    injected_parse,       // sluice's Parse before a Bind/Describe: ParseComplete swallowed
    evict_close,          // sluice's Close of an evicted statement: CloseComplete swallowed
    stale_close,          // sluice's Close of a statement whose plan PostgreSQL refused
    raise_error,          // sluice's failing Describe: its error replaced by `error`
    deallocate,           // the client's DEALLOCATE, sent as an empty Query: its EmptyQueryResponse
                          // becomes CommandComplete(`error` holds the tag)
    discard_all,          // the client's DISCARD ALL, forwarded: on success, forget everything
    sql_prepare,          // the client's PREPARE, renamed: on failure, forget the statement
    sql_execute_prepare,  // "PREPARE ...; EXECUTE ..." for a server lacking the statement: the
                          // PREPARE's CommandComplete is swallowed; an error before it is the
                          // PREPARE failing
    raise_error_query,    // sluice's failing simple Query: its error replaced by `error`
  };
  struct pending {
    kind what;
    char request;  // the frontend message type sent, which decides which reply completes it
    statement_ptr statement;
    std::string client_name;
    std::string error;  // raise_error: the ErrorResponse; deallocate: the command tag
  };

  void handle_client_message(char type, std::span<const char> body, std::span<const char> wire,
                             protocol::output_segments& out);
  void add_to_server(const statement_ptr& statement, protocol::output_segments& out);
  void ensure_on_server(const statement_ptr& statement, protocol::output_segments& out);
  void send_parse(const statement_ptr& statement, kind what, std::string client_name,
                  protocol::output_segments& out);
  void send_noop_close(kind what, statement_ptr statement, std::string client_name,
                       protocol::output_segments& out);
  void raise(std::string_view sqlstate, std::string message, protocol::output_segments& out);
  void forward(char type, std::span<const char> wire, statement_ptr statement,
               protocol::output_segments& out);
  void on_query(std::span<const char> body, std::span<const char> wire,
                protocol::output_segments& out);
  void send_query(std::string_view sql, pending entry, protocol::output_segments& out);
  void on_unnamed_parse(std::string_view query, std::span<const char> wire,
                        protocol::output_segments& out);
  void forget_missing_statement(std::span<const char> error_body);
  bool rewrite_deallocates(std::string_view sql, protocol::output_segments& out);
  bool failed_ = false;  // the head query entry already saw its error
  // DEALLOCATE sent through the extended protocol is prepared as an empty statement; its
  // Execute's EmptyQueryResponse becomes CommandComplete with this tag.
  std::string unnamed_statement_tag_, unnamed_portal_tag_;
  void roll_back(const pending& entry);
  void skip_to_sync();

  client_statement_map& client_;
  server_statement_cache& server_;
  intern_function intern_;
  intern_sql_function intern_sql_;
  statement_counters& counters_;
  // Boost's deque allocates nothing until used: most leases never queue a reply.
  boost::container::deque<pending> pending_;
  // A batch failed before its Sync reached the fsm: drop the client's messages up to that
  // Sync, as PostgreSQL ignores them.
  bool dropping_until_sync_ = false;
};

}  // namespace sluice::pool
