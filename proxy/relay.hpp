#pragma once
// The relay between one client and the server it holds, for the length of one lease.
//
// Flow, on the session's thread:
//   client → server: walk the buffered client bytes' message headers (bodies are forwarded by
//                    byte count, except the few the prepared-statement fsm rewrites), update
//                    the link state *before* writing, write the result on in one gathered write.
//   server → client: read bytes, walk headers, decode only what the proxy acts on
//                    (ReadyForQuery, ParameterStatus, ErrorResponse, CopyInResponse, and the
//                    replies the statement fsm matches), write the result on; at each
//                    ReadyForQuery ask the release policy whether the lease ends here.
// run() forwards the request the session already read, then relays replies in the same
// coroutine. The client is read at the same time only while the server needs it (a spawned
// client loop, which ends as soon as only the server can move things on again).
// Because a Sync/Query is counted before it is sent, a release can never be decided while a
// request is in flight; once decided, a running client loop stops forwarding at once and its
// read is cancelled without losing bytes (they stay in the buffer).
#include <chrono>
#include <cstdint>
#include <exception>
#include <optional>
#include <vector>

#include "pool/release_policy.hpp"
#include "pool/shared_session_params.hpp"
#include "pool/statement_relay_fsm.hpp"
#include "protocol/output_segments.hpp"
#include "proxy/asio.hpp"
#include "proxy/byte_buffer.hpp"
#include "proxy/gathered_write.hpp"
#include "proxy/relay_scratch.hpp"
#include "proxy/server_connection.hpp"

namespace sluice::proxy {

enum class relay_end {
  released,                     // the release policy handed the server back (transaction mode)
  client_gone,                  // the client closed its socket or sent Terminate
  server_gone,                  // the server closed or failed
  client_violation,             // the client broke framing (bad length); it was told 08P01
  query_timeout,                // a request ran longer than pool.query_timeout
  idle_in_transaction_timeout,  // the client sat inside a transaction past the limit
  client_idle_timeout,          // session mode: the client said nothing past the limit
};

// The client-side limits the relay enforces; nullopt = off.
struct relay_limits {
  std::optional<std::chrono::milliseconds> query_timeout;
  std::optional<std::chrono::milliseconds> idle_transaction_timeout;
  std::optional<std::chrono::milliseconds> client_idle_timeout;  // enforced here in session mode
  bool any() const { return query_timeout || idle_transaction_timeout || client_idle_timeout; }
};

// What the prepared-statement fsm works on; absent in session mode or when the cache is off.
struct statement_context {
  pool::client_statement_map& client;
  pool::intern_function intern;
  pool::statement_counters& counters;
  pool::intern_sql_function intern_sql;
};

class relay {
 public:
  relay(tcp::socket& client, byte_buffer& client_in, server_connection& server,
        pool::pool_mode mode, pool::shared_session_params& client_params,
        std::uint32_t max_message_size, std::optional<statement_context> statements,
        relay_limits limits = {});
  ~relay();
  relay(const relay&) = delete;
  relay& operator=(const relay&) = delete;

  awaitable<relay_end> run();
  const pool::link_state& link() const { return link_; }
  bool server_reported_fatal() const { return server_fatal_; }

 private:
  // Forwards every complete client message already buffered; never reads the client. Says
  // whether the client must now be read for the lease to go on.
  enum class client_pass {
    parked,     // only the server can move things on (or a message waits for owed replies)
    must_read,  // the server needs more from the client
    ended,      // the relay finished (Terminate, violation, a write failed)
  };
  awaitable<client_pass> forward_client();
  // Spawned while the client must be read alongside the server; ends once parked again.
  awaitable<void> client_loop();
  awaitable<void> server_to_client();
  // Flow: sleeps until the nearest limit could expire, then compares the link's state with
  // when it entered it; a violated limit ends the relay. Runs only when a limit is set.
  awaitable<void> watchdog();
  void finish(relay_end why, tcp::socket& wake);

  // How far a scan got through the bytes at the front of a buffer.
  struct scan_result {
    std::size_t consumed = 0;  // bytes dealt with: written on (via the segments) or dropped
    bool stop = false;         // a Terminate (client) or a release point (server) was reached
    bool violation = false;    // a length field was invalid
    bool blocked = false;      // (client) the next message must wait for owed replies
  };
  scan_result scan_client(std::span<const char> bytes, protocol::output_segments& out);
  scan_result scan_server(std::span<const char> bytes, protocol::output_segments& out);
  void note_client_message(char type);
  static std::size_t pass_through(std::span<const char> bytes, std::size_t& remaining,
                                  bool forwarding, protocol::output_segments& out);
  void on_server_message(char type, std::span<const char> body);
  // Lays out `out` as `buffers` and writes what the socket takes at once (see gathered_write).
  static write_attempt write_segments_now(tcp::socket& socket, const protocol::output_segments& out,
                                          gather_list& buffers);

  tcp::socket& client_;
  byte_buffer& client_in_;
  server_connection& server_;
  const pool::pool_mode mode_;
  pool::shared_session_params& client_params_;
  const std::uint32_t max_message_size_;
  std::optional<pool::statement_relay_fsm> statements_;

  pool::link_state link_;
  std::size_t client_remaining_ = 0;  // bytes of the current client message still to pass
  bool client_forwarding_ = true;     // ... and whether they go on or are dropped
  std::size_t server_remaining_ = 0;  // bytes of the current server message still to pass
  bool server_forwarding_ = true;
  // Output lists and gather buffers, from this thread's pool.
  std::unique_ptr<relay_scratch> scratch_;
  bool finished_ = false;
  relay_end end_ = relay_end::released;
  bool server_fatal_ = false;  // the server sent a FATAL/PANIC ErrorResponse
  relay_limits limits_;
  std::optional<asio::steady_timer> watchdog_timer_;
  // A spawned client loop is running its body; and whether its last pass found a message that
  // waits for owed replies.
  bool client_loop_active_ = false;
  bool client_blocked_ = false;
  // Starts a client loop when the replies just relayed leave the server waiting for the client.
  void resume_client_if_needed();
  void spawn(awaitable<void> loop);
  bool only_the_server_can_move() const;
  // run() sleeps on this until the loops it spawned have ended; each one cancels it as it
  // ends. An exception from any loop is kept here and rethrown once all have ended.
  asio::steady_timer loops_done_;
  int loops_running_ = 0;
  std::exception_ptr loop_error_;
  // When the link last became busy (a request sent with none outstanding) and idle (the last
  // ReadyForQuery arrived): what the watchdog measures the limits from.
  std::chrono::steady_clock::time_point busy_since_, idle_since_;
};

}  // namespace sluice::proxy
