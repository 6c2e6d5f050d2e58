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
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/container/deque.hpp>

#include "pool/prepared_statement.hpp"
#include "pool/server_bound_state.hpp"
#include "pool/server_statement_cache.hpp"
#include "protocol/output_segments.hpp"
#include "protocol/sql_effects.hpp"

namespace sluice::pool {

// A client's statement names → statements.
using client_statement_map = std::unordered_map<std::string, statement_ptr>;
// The daemon's registry, behind whatever lock it needs.
using intern_function =
    std::function<statement_ptr(std::string_view query, std::span<const std::uint32_t> types)>;
// The same for SQL `PREPARE name <definition>`; without one, PREPARE and EXECUTE pass through.
using intern_sql_function = std::function<statement_ptr(std::string_view definition)>;

struct statement_counters {
  std::uint64_t client_parses = 0;    // named Parse messages from clients
  std::uint64_t server_parses = 0;    // Parse messages sent to servers (rewritten or injected)
  std::uint64_t parses_saved = 0;     // client Parses answered without preparing again
  std::uint64_t binds = 0;            // Binds of a client's named statement
  std::uint64_t evictions = 0;        // statements the server cache dropped (and closed) for room
  std::uint64_t injected_parses = 0;  // Parses sent first because the server lacked a statement
  std::uint64_t plans_healed = 0;     // batches run again after a refused cached plan (0A000)
};

class statement_relay_fsm {
 public:
  // `bound`: what the client's session keeps on this server across leases (a private one when
  // absent). `renames`: false passes named statements through untouched (the statement cache
  // is off); the session's own checks (LISTEN, lastval, settings, cursors) still apply.
  statement_relay_fsm(client_statement_map& client, server_statement_cache& server,
                      intern_function intern, statement_counters& counters,
                      intern_sql_function intern_sql = {}, server_bound_state* bound = nullptr,
                      bool renames = true);
  statement_relay_fsm(statement_relay_fsm&& other) noexcept;
  statement_relay_fsm& operator=(statement_relay_fsm&&) = delete;

  // Whether a statement the client ran may have changed the session's settings in a way the
  // server does not report (SET of a setting without ParameterStatus, RESET, set_config(),
  // DO, CALL): before the server serves anyone else, its settings must be read back.
  bool settings_may_have_changed() const { return settings_changed_; }
  // The settings the client's statements named (see protocol::sql_effects::setting_names).
  const std::set<std::string>& settings_named() const { return settings_named_; }
  // Whether a statement that may advance a sequence ran outside a transaction block: a
  // lastval() in the client's next statement expects this server (see pool.lastval_window).
  bool advanced_sequence_in_autocommit() const { return autocommit_sequence_; }

  // The server's transaction status when the lease starts; ReadyForQuery keeps it current.
  // Commands whose answer depends on it (a failed transaction refuses nearly everything with
  // 25P02) are decided against it.
  void set_transaction_status(char status) { status_ = status; }

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
    swallow,   // drop it: the reply to something sluice sent on its own (a ReadyForQuery
               // swallowed answers a Sync sluice sent, which the client never counted)
    replaced,  // drop it: the fsm appended what the client gets instead to `out`
  };
  verdict on_server_message(char type, std::span<const char> body, protocol::output_segments& out);

  // True when `type`/`body` cannot be decided before replies already owed arrive. Decisions
  // rest on the client's names, the server's cache and the transaction status as they will be
  // when the server reaches this message; while an earlier batch, closed by its Sync, may still
  // fail and roll its changes back, or may still change the transaction status, they are not
  // known. The relay then holds the client's bytes until on_server_message has made progress.
  bool must_wait_for_replies(char type, std::span<const char> body) const;

  // No reply is owed and no failed batch is being skipped: the server may be released.
  bool idle() const { return pending_.empty() && !dropping_until_sync_ && server_output_.empty(); }

  // Bytes the fsm must send the server on its own, decided while handling a reply (a batch it
  // runs again, see heal): the driver sends them before anything more of the client's.
  bool has_server_output() const { return !server_output_.empty(); }
  void take_server_output(protocol::output_segments& out);

 private:
  // What a message sent to the server means for its reply.
  enum class kind : std::uint8_t {
    plain,                // the client's own message, forwarded: its replies go through
    parse,                // the client's Parse, renamed: on failure, forget the statement
    parse_answered,       // the client's Parse of a statement the server has: a no-op Close stands
                          // in, and its CloseComplete becomes ParseComplete
    parse_refused,        // the client's Parse sent only for PostgreSQL's own answer, which is an
                          // error (a duplicate name, a failed transaction): under a name the server
                          // has, so nothing is created; a 42P05 for it is reworded for the client's
    close_statement,      // the client's Close('S'): a no-op Close; if skipped, the mapping returns
    injected_parse,       // sluice's Parse before a Bind/Describe: ParseComplete swallowed
    evict_close,          // sluice's Close of an evicted statement: CloseComplete swallowed
    stale_close,          // sluice's Close of a statement whose plan PostgreSQL refused
    raise_error,          // sluice's failing Describe: its error replaced by `text`
    retag,                // work sluice answers for the client alone (DEALLOCATE, PREPARE of a
                          // statement the server has): an empty statement stands in, and its
                          // EmptyQueryResponse (or CommandComplete) becomes CommandComplete(`text`)
    discard_rewritten,    // the client's DISCARD ALL, as the statements that reset its session
                          // without dropping the server's statements: their CommandCompletes are
                          // swallowed but the last, which becomes CommandComplete(`text`)
    multi_deallocate,     // a multi-statement Query with DEALLOCATEs of client names, renamed:
                          // each "DEALLOCATE" tag confirms the next of `forgotten`
    sql_prepare,          // the client's PREPARE, renamed: on failure, forget the statement
    sql_execute_prepare,  // "PREPARE ...; EXECUTE ..." for a server lacking the statement: the
                          // PREPARE's CommandComplete is swallowed; an error before it is the
                          // PREPARE failing
    raise_error_query,    // sluice's failing simple Query: its error replaced by `text`
    injected_sync,        // sluice's own Sync after injected work: its ReadyForQuery swallowed
    injected_parse_synced,  // sluice's Parse before an EXECUTE of a Parse-made statement, in a
                            // batch of its own: every reply swallowed, a failure too (the
                            // EXECUTE then fails on its own)
    learn_types,  // sluice's Describe after a SQL PREPARE: the ParameterDescription tells the
                  // parameter OIDs (see prepared_statement::protocol_parse); all swallowed
  };
  struct pending {
    kind what;
    char request;  // the frontend message type sent, which decides which reply completes it
    statement_ptr statement;
    std::string client_name;
    std::string text;  // raise_error(_query): the ErrorResponse; retag and the like: the tag
    // Client names given up when this was sent; they come back if the work never happens.
    std::vector<std::pair<std::string, statement_ptr>> forgotten;
    int swallow = 0;  // discard_rewritten: CommandCompletes still to swallow
    // A cursor the statement opens WITH HOLD or closes: confirmed by its CommandComplete.
    enum class cursor_change : std::uint8_t { none, declare, close, close_all } cursor_op{};
    std::string cursor;
    // A Bind that starts a batch run in an implicit transaction: if PostgreSQL refuses its
    // cached plan (0A000 after DDL), the batch can be prepared afresh and run again unseen.
    bool heals_plan = false;
  };
  // What the unnamed statement, and a portal bound from it, does for the client when executed:
  // an extended-protocol DEALLOCATE, answered by sluice.
  struct unnamed_effect {
    std::string tag;   // "" = nothing: the statement is the client's own
    bool all = false;  // DEALLOCATE ALL
    std::string name;  // DEALLOCATE name
    bool empty() const { return tag.empty(); }
  };

  void handle_client_message(char type, std::span<const char> body, std::span<const char> wire,
                             protocol::output_segments& out);
  void on_named_parse(std::string name, std::string_view query,
                      std::span<const std::uint32_t> types, protocol::output_segments& out);
  void add_to_server(const statement_ptr& statement, protocol::output_segments& out);
  // False when the statement cannot be made here (a SQL PREPARE whose types are not known).
  [[nodiscard]] bool ensure_on_server(const statement_ptr& statement,
                                      protocol::output_segments& out);
  void send_sync(protocol::output_segments& out);
  void learn_types_after(const statement_ptr& statement, protocol::output_segments& out);
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
  void on_execute(std::span<const char> body, std::span<const char> wire,
                  protocol::output_segments& out);
  void forget_missing_statement(std::span<const char> error_body);
  bool rewrite_deallocates(std::string_view sql, protocol::output_segments& out);
  // Takes the client's names away, tentatively: `name`, or every name when `all`.
  std::vector<std::pair<std::string, statement_ptr>> forget(bool all, const std::string& name);
  void restore(std::vector<std::pair<std::string, statement_ptr>>& forgotten);
  // Whether an earlier request closed by its Sync (or a simple Query) still awaits its
  // ReadyForQuery: the transaction status at the server's next message is then not known.
  bool earlier_batch_pending() const;
  // Whether such an earlier request may still roll back changes made for it.
  bool tentative_changes_pending() const;
  static bool is_tentative(kind what);
  void roll_back(pending& entry);
  void skip_to_sync();
  verdict on_query_reply(pending& head, char type, std::span<const char> body,
                         protocol::output_segments& out);
  void append_owned(protocol::output_segments& out, std::string_view bytes);
  // The batch whose first Bind met "cached plan must not change result type": nothing of it
  // ran, so its statements are prepared again and it is sent once more, and the client never
  // sees the refusal. Only when that is safe: the result's shape changed, so the batch must
  // describe the result again (a Describe after the Bind) or the client would read new rows
  // with its old RowDescription; and nothing may be pipelined behind it. The copy is kept from
  // that Bind to its Sync, at most heal_limit bytes.
  void capture_for_heal(char type, std::span<const char> wire);
  void heal(protocol::output_segments& out);
  static constexpr std::size_t heal_limit = 64 * 1024;
  // The session checks on SQL about to run: true when the fsm refused it (an error stands in).
  bool refuse_session_sql(const protocol::sql_effects& effects, bool simple_query,
                          protocol::output_segments& out);
  // Notes what SQL sent to run leaves in the session, on its pending entry.
  void note_effects(const protocol::sql_effects& effects, pending& entry);
  // A reply completed `entry` (a CommandComplete, or an error): confirm its cursor change.
  void confirm_cursor(const pending& entry, char type, std::span<const char> body);

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
  bool failed_ = false;  // the head query entry already saw its error
  char status_ = 'I';    // the transaction status of the last ReadyForQuery
  unnamed_effect unnamed_statement_effect_, unnamed_portal_effect_;
  // What the unnamed statement, and the unnamed portal bound from a statement, run.
  protocol::sql_effects unnamed_statement_sql_, unnamed_portal_sql_;
  server_bound_state own_bound_;
  server_bound_state& bound_;
  const bool renames_;
  bool settings_changed_ = false;
  std::set<std::string> settings_named_;
  bool autocommit_sequence_ = false;
  // Holdable cursors declared inside the current transaction block: a ROLLBACK drops them.
  std::vector<std::string> declared_in_transaction_;
  bool rolled_back_ = false;  // the last CommandComplete was a ROLLBACK
  // See heal: off, copying the batch, or complete (its Sync copied, nothing behind it yet).
  enum class heal_copy : std::uint8_t { off, copying, complete } heal_copy_ = heal_copy::off;
  std::string heal_bytes_;
  bool heal_describes_ = false;  // the copied batch has a Describe after its Bind
  bool healing_ = false;         // the batch runs again: no second try
  std::string server_output_;    // see has_server_output
};

}  // namespace sluice::pool
