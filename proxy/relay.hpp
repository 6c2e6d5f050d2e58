#pragma once
// The driver of one lease: reads, writes and a timer around pool::lease_fsm, which decides
// everything else (see there).
//
// Flow, on the session's thread: run() hands the request the session already buffered to the
// fsm and writes what it says to the server, then relays replies in the same coroutine until
// the lease ends. The client is read at the same time only while the fsm says the server needs
// it (a spawned client loop, which ends as soon as only the server can move things on again).
// A write in progress is never cancelled: it completes, so no server is ever left holding half
// a message; a read in progress is cancelled without losing bytes (they stay in the buffer).
#include <exception>
#include <functional>
#include <optional>

#include "pool/lease_fsm.hpp"
#include "protocol/output_segments.hpp"
#include "proxy/asio.hpp"
#include "proxy/byte_buffer.hpp"
#include "proxy/gathered_write.hpp"
#include "proxy/relay_scratch.hpp"
#include "proxy/server_connection.hpp"

namespace sluice::proxy {

using relay_end = pool::lease_end;

class relay {
 public:
  // Where the counts of each transaction a long lease finishes go (see lease_fsm::counters);
  // empty: the session takes them all when the lease ends.
  using stats_sink = std::function<void(pool::lease_counters&&)>;
  relay(client_transport& client, byte_buffer& client_in, server_connection& server,
        pool::lease_fsm& fsm, stats_sink stats = {});
  ~relay();
  relay(const relay&) = delete;
  relay& operator=(const relay&) = delete;

  awaitable<relay_end> run();

 private:
  // Hands every complete client message already buffered to the fsm and writes what it
  // gives the server; never reads the client.
  enum class client_pass {
    parked,     // only the server can move things on (or a message waits for owed replies)
    must_read,  // the server needs more from the client
    ended,      // the lease ended (Terminate, violation, a write failed)
  };
  awaitable<client_pass> forward_client();
  awaitable<error_code> write_to_server(const protocol::output_segments& out);
  // Spawned while the client must be read alongside the server; ends once parked again.
  awaitable<void> client_loop();
  awaitable<void> server_to_client();
  // Sleeps between the fsm's limit checks; a violated limit cancels the query or ends the
  // lease.
  awaitable<void> watchdog();
  // query_timeout: cancels what the server runs, then lets the client's next request go on.
  awaitable<void> cancel_query();
  // Ends the lease (the first reason sticks) and wakes a loop parked in a read on `wake`.
  void finish(relay_end why, stream_socket& wake);
  // Starts a client loop when the replies just relayed leave the server waiting for the client.
  void resume_client_if_needed();
  void spawn(awaitable<void> loop);
  pool::time_point now() const;
  // Lays out `out` as `buffers` and writes what the socket takes at once (see gathered_write).
  template <class Stream>
  static write_attempt write_segments_now(Stream& stream, const protocol::output_segments& out,
                                          gather_list& buffers);

  client_transport& client_;
  byte_buffer& client_in_;
  server_connection& server_;
  pool::lease_fsm& fsm_;
  stats_sink stats_;
  // Output lists and gather buffers, from this thread's pool.
  std::unique_ptr<relay_scratch> scratch_;
  std::optional<asio::steady_timer> watchdog_timer_;
  // A spawned client loop is running its body.
  bool client_loop_active_ = false;
  bool server_write_busy_ = false;  // a write to the server is in progress
  // run() sleeps on this until the loops it spawned have ended; each one cancels it as it
  // ends. An exception from any loop is kept here and rethrown once all have ended.
  asio::steady_timer loops_done_;
  int loops_running_ = 0;
  std::exception_ptr loop_error_;
};

}  // namespace sluice::proxy
