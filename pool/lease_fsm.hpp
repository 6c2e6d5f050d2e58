#pragma once
// Everything that passes between one client and the server it holds, for the length of one
// lease, decided without I/O: which bytes go on, which are rewritten or answered by sluice,
// what is in flight, when the lease ends, and what a client that vanished leaves behind.
//
// Flow (the driver, proxy/relay.cpp, only reads, writes and runs a timer):
//   on_client_bytes(buffered client bytes) -> segments for the server and the bytes consumed.
//       Then client_must_be_read() says whether the server now waits for more from the client
//       (read it on) or whether only the server can move things on (leave the client parked).
//   on_server_bytes(buffered server bytes) -> segments for the client and the bytes consumed;
//       ended() turns true at a ReadyForQuery after which the release policy hands the server
//       back (transaction mode).
//   check_limits(now), every limit_check_interval() -> a client-side limit that was violated.
//   exit_plan() -> after the client left: what the server needs before anyone else gets it.
//   counters() / take_counters() -> what the lease did (queries, transactions, bytes, their
//       times, errors relayed), for the pool's statistics: the driver adds them to the pool when
//       the lease ends, or after each transaction of a long lease.
//
// Headers, not bodies: the relay decodes whole only the messages it acts on (ReadyForQuery,
// ParameterStatus, ErrorResponse, CopyInResponse, and what the prepared-statement fsm
// rewrites); everything else is forwarded by byte count, across as many calls as it takes to
// arrive. A Sync/Query/FunctionCall is counted before its bytes are handed to the driver, so a
// release can never be decided while a request is in flight; once decided, nothing more of
// the client's is taken (it stays buffered for the session, and the next lease).
//
// Threads: one per lease, the session's; nothing here is shared.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "pool/pool_counters.hpp"
#include "pool/release_policy.hpp"
#include "pool/session_params.hpp"
#include "pool/shared_session_params.hpp"
#include "pool/statement_relay_fsm.hpp"
#include "pool/time.hpp"
#include "protocol/output_segments.hpp"

namespace sluice::pool {

// The client-side limits a lease enforces; nullopt = off.
struct lease_limits {
  std::optional<duration> query_timeout;
  std::optional<duration> idle_transaction_timeout;
  std::optional<duration> client_idle_timeout;  // enforced here in session mode only
  bool any() const { return query_timeout || idle_transaction_timeout || client_idle_timeout; }
};

// How a lease ended.
enum class lease_end {
  released,                     // the release policy handed the server back (transaction mode)
  client_gone,                  // the client closed its socket or sent Terminate
  server_gone,                  // the server closed, failed, or broke framing
  client_violation,             // the client broke framing (a bad length)
  query_timeout,                // a request ran longer than query_timeout
  idle_in_transaction_timeout,  // the client sat inside a transaction past the limit
  client_idle_timeout,          // session mode: the client said nothing past the limit
};

// The server's side of the session that a lease reads and updates.
struct server_session_view {
  session_params& params;  // what the server has now: ParameterStatus updates it
  char& tx_status;         // from its last ReadyForQuery
};

// What a server needs once its client is gone, before it can serve another client. Each
// step runs only if the ones before it succeeded; a failed step closes the server.
struct exit_plan {
  bool close = false;         // mid-request or mid-message: only closing the server is safe
  bool cancel_first = false;  // close: a request still runs there; cancel it before closing
  bool rollback = false;      // a transaction is open: ROLLBACK, which must leave it idle
  bool discard = false;       // session mode: DISCARD ALL, so the next client starts clean
};

class lease_fsm {
 public:
  struct settings {
    pool_mode mode = pool_mode::transaction;
    std::uint32_t max_message_size = 64 * 1024 * 1024;
    lease_limits limits;
  };

  // `statements` is absent in session mode or when the statement cache is off.
  lease_fsm(const settings& settings, server_session_view server,
            shared_session_params& client_params, std::optional<statement_relay_fsm> statements,
            time_point now);

  // Turns statement accounting on, with the fsm built in place rather than moved in (a lease
  // per transaction: the move showed in profiles). Called before any bytes.
  template <class... Args>
  statement_relay_fsm& emplace_statements(Args&&... args) {
    auto& statements = statements_.emplace(std::forward<Args>(args)...);
    statements.set_transaction_status(link_.tx_status);
    return statements;
  }

  // How far one call got through the bytes at the front of a buffer.
  struct scan_result {
    std::size_t consumed = 0;  // bytes dealt with: handed on (via the segments) or dropped
    bool violation = false;    // a length field was invalid; nothing past `consumed` is taken
  };

  // Client bytes. Appends what the server gets to `to_server`. A Terminate ends the lease
  // (client_gone) and is consumed, not forwarded: the server stays for the next client.
  scan_result on_client_bytes(std::span<const char> bytes, protocol::output_segments& to_server,
                              time_point now);
  // After on_client_bytes consumed nothing: true when the server needs more from the client
  // for the lease to go on; false when only the server can move things on (a request is
  // complete and owed its ReadyForQuery), or the next message waits for replies owed.
  bool client_must_be_read() const;
  // The next client message must wait for replies still owed (see statement_relay_fsm).
  bool client_blocked() const { return client_blocked_; }

  // Server bytes. Appends what the client gets to `to_client`. Stops right after a
  // ReadyForQuery at which the lease ends (ended() is then true, with lease_end::released).
  scan_result on_server_bytes(std::span<const char> bytes, protocol::output_segments& to_client,
                              time_point now);
  // Bytes the lease must send the server on its own (a batch run again after a refused plan):
  // the next on_client_bytes hands them out first; a driver not reading the client calls
  // take_server_output to send them at once.
  bool has_server_output() const { return statements_ && statements_->has_server_output(); }
  void take_server_output(protocol::output_segments& to_server) {
    if (statements_) statements_->take_server_output(to_server);
  }

  // How much to read from the server next: a chunk, or all that is missing of a message that
  // must be seen whole.
  std::size_t server_read_size(std::span<const char> buffered) const;

  // The driver saw something end the lease (a socket closed, a limit hit). The first reason
  // sticks.
  void end_with(lease_end why);
  bool ended() const { return ended_; }
  lease_end end() const { return end_; }

  bool has_limits() const { return settings_.limits.any(); }
  // How often check_limits should run: a quarter of the shortest limit, within [20 ms, 1 s], so
  // a limit fires at most 25% late.
  duration limit_check_interval() const;
  // What a limit asks of the driver at `now`:
  //   cancel_query: query_timeout passed: send PostgreSQL a CancelRequest for this server and
  //     call begin_query_cancel; the client gets 57014 as from statement_timeout, and its
  //     session goes on (its next request waits until the cancel has been delivered, so the
  //     cancel can only hit the query it was meant for);
  //   end: end the lease with `end` (the other limits, or a query the cancel did not stop
  //     within another query_timeout: the server is then dropped).
  struct limit_check {
    enum class action { none, cancel_query, end } what = action::none;
    lease_end end = lease_end::query_timeout;
  };
  limit_check check_limits(time_point now) const;
  void begin_query_cancel(time_point now);
  void query_cancel_delivered();
  bool query_cancel_in_flight() const { return cancel_in_flight_; }

  const link_state& link() const { return link_; }
  // The prepared-statement fsm, when the lease has one (for inspection).
  const statement_relay_fsm* statements() const { return statements_ ? &*statements_ : nullptr; }
  bool server_reported_fatal() const { return server_fatal_; }
  // After the client left (or its lease ended otherwise): what its server needs.
  exit_plan plan_exit() const;

  // What the lease did so far. A query runs from the first client message after the link was
  // idle to the ReadyForQuery that leaves no reply owed; a transaction from its first query to
  // a ReadyForQuery with status 'I'; both are counted when they end, as `now` says.
  const lease_counters& counters() const { return counters_; }
  // The same, handing them over: the next call counts from zero.
  lease_counters take_counters();

 private:
  void note_client_message(char type, time_point now);
  void on_server_message(char type, std::span<const char> body, time_point now);
  static std::size_t pass_through(std::span<const char> bytes, std::size_t& remaining,
                                  bool forwarding, protocol::output_segments& out);
  bool only_the_server_can_move() const;
  // The 57014 of query_timeout's cancel, with a message that says so. True when it replaced the
  // server's ErrorResponse in `to_client`.
  bool reword_timeout_cancel(char type, std::span<const char> body,
                             protocol::output_segments& to_client);

  const settings settings_;
  server_session_view server_;
  shared_session_params& client_params_;
  std::optional<statement_relay_fsm> statements_;

  link_state link_;
  std::size_t client_remaining_ = 0;  // bytes of the current client message still to pass
  bool client_forwarding_ = true;     // ... and whether they go on or are dropped
  std::size_t server_remaining_ = 0;  // bytes of the current server message still to pass
  bool server_forwarding_ = true;
  bool client_blocked_ = false;
  bool ended_ = false;
  lease_end end_ = lease_end::released;
  bool server_fatal_ = false;  // the server sent a FATAL/PANIC ErrorResponse
  // When the link last became busy (a request sent with none outstanding) and idle (the last
  // ReadyForQuery arrived): what the limits are measured from.
  time_point busy_since_, idle_since_;
  // query_timeout's cancel: sent for the request that began at busy_since_, not yet delivered
  // (the client's next messages wait), and whether its 57014 is still to come.
  bool cancel_in_flight_ = false;
  bool cancelled_by_timeout_ = false;
  std::optional<time_point> cancel_sent_at_;
  // Statistics (see counters()).
  lease_counters counters_;
  bool query_open_ = false, transaction_open_ = false;
  time_point query_since_, transaction_since_;
};

}  // namespace sluice::pool
