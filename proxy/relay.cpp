#include "proxy/relay.hpp"

#include "protocol/backend_messages.hpp"
#include "proxy/gathered_write.hpp"
#include "proxy/message_io.hpp"

namespace sluice::proxy {

relay::relay(client_transport& client, byte_buffer& client_in, server_connection& server,
             pool::lease_fsm& fsm, stats_sink stats)
    : client_(client),
      client_in_(client_in),
      server_(server),
      fsm_(fsm),
      stats_(std::move(stats)),
      scratch_(relay_scratch_pool::of(client.get_executor()).take()),
      loops_done_(client.get_executor()) {
  if (fsm_.has_limits()) watchdog_timer_.emplace(client.get_executor());
}

relay::~relay() {
  relay_scratch_pool::of(client_.get_executor()).give_back(std::move(scratch_));
}

pool::time_point relay::now() const {
  // The limits and the statistics (query and transaction times) need the time: one read of the
  // monotonic clock per batch of bytes (about 35 ns here, through the vDSO).
  return pool::clock::now();
}

void relay::finish(relay_end why, stream_socket& wake) {
  fsm_.end_with(why);
  // Bytes that already arrived stay buffered; a write in progress is not touched.
  error_code ignored;
  wake.cancel(ignored);
  if (watchdog_timer_) watchdog_timer_->cancel();
}

void relay::spawn(awaitable<void> loop) {
  ++loops_running_;
  asio::co_spawn(client_.get_executor(), std::move(loop), [this](std::exception_ptr error) {
    if (error && !loop_error_) loop_error_ = error;
    --loops_running_;
    loops_done_.cancel();
  });
}

void relay::resume_client_if_needed() {
  if (client_loop_active_ || fsm_.ended()) return;
  // Blocked: the replies just handled may be the ones its next message waited for.
  if (fsm_.client_blocked() || fsm_.client_must_be_read()) {
    client_loop_active_ = true;
    spawn(client_loop());
  }
}

awaitable<relay_end> relay::run() {
  // One coroutine in the common case: forward the request the session already buffered, then
  // relay the replies until the lease ends. The client is read concurrently (a spawned loop)
  // only while the server cannot finish without it: a message half forwarded, COPY FROM
  // STDIN, an extended batch awaiting its Sync, or a transaction between statements. The
  // watchdog, when a limit is set, is spawned too. Everything spawned is joined below.
  if (watchdog_timer_) spawn(watchdog());
  try {
    const auto first = co_await forward_client();
    if (first == client_pass::must_read) {
      client_loop_active_ = true;
      spawn(client_loop());
    }
    if (!fsm_.ended()) co_await server_to_client();
  } catch (...) {
    // Not rethrown yet: the spawned loops refer to this relay and must end first.
    loop_error_ = std::current_exception();
    finish(relay_end::server_gone, client_.socket());
  }
  // Each spawned loop ends promptly once the lease has ended: finish() woke it.
  while (loops_running_ > 0) {
    loops_done_.expires_at(asio::steady_timer::time_point::max());
    co_await loops_done_.async_wait(use_nothrow);
  }
  if (loop_error_) std::rethrow_exception(loop_error_);
  co_return fsm_.end();
}

template <class Stream>
write_attempt relay::write_segments_now(Stream& socket, const protocol::output_segments& out,
                                        gather_list& buffers) {
  buffers.clear();
  out.for_each([&](const char* data, std::size_t size) { buffers.emplace_back(data, size); });
  return write_now(socket, buffers);
}

awaitable<relay::client_pass> relay::forward_client() {
  while (!fsm_.ended()) {
    auto& out = scratch_->to_server;
    out.clear();
    const auto scanned = fsm_.on_client_bytes(client_in_.readable(), out, now());
    if (scanned.violation) {
      std::string error;
      protocol::append_error_response(error, {.severity = "FATAL",
                                              .sqlstate = "08P01",
                                              .message = "invalid message length",
                                              .detail = {},
                                              .hint = {}});
      co_await write_all(client_, error);
      finish(relay_end::client_violation, server_.socket);
      co_return client_pass::ended;
    }
    if (!out.empty() && co_await write_to_server(out)) {
      client_in_.consume(scanned.consumed);
      finish(relay_end::server_gone, server_.socket);
      co_return client_pass::ended;
    }
    client_in_.consume(scanned.consumed);
    if (scanned.consumed == 0) break;
  }
  if (fsm_.ended()) {
    finish(fsm_.end(), server_.socket);  // a Terminate: wake the server loop
    co_return client_pass::ended;
  }
  // Pipelined bytes beyond this point wait in the socket: once the server has answered, the
  // relay reads them, or, if the lease ends there, the session does.
  co_return fsm_.client_must_be_read() ? client_pass::must_read : client_pass::parked;
}

awaitable<error_code> relay::write_to_server(const protocol::output_segments& out) {
  // One writer at a time: the client loop, or the server loop with what the fsm sends on its
  // own. A write is never interleaved with another.
  server_write_busy_ = true;
  auto& buffers = scratch_->server_buffers;
  const auto attempt = write_segments_now(server_.socket, out, buffers);
  auto ec = attempt.error;
  if (!ec && !attempt.complete) ec = co_await write_rest(server_.socket, buffers, attempt.written);
  server_write_busy_ = false;
  co_return ec;
}

awaitable<void> relay::client_loop() {
  constexpr std::size_t read_chunk = 16384;
  for (;;) {
    const auto pass = co_await forward_client();
    if (pass != client_pass::must_read) break;
    auto space = client_in_.prepare(read_chunk);
    auto [ec, n] =
        co_await client_.async_read_some(asio::buffer(space.data(), space.size()), use_nothrow);
    client_in_.commit(n);
    if (fsm_.ended()) break;
    if (ec) {
      finish(relay_end::client_gone, server_.socket);
      break;
    }
  }
  // Now, not when the spawn's completion runs: the server loop must see at once that a new
  // client loop is needed.
  client_loop_active_ = false;
}

awaitable<void> relay::server_to_client() {
  auto& in = server_.buffer;
  for (;;) {
    auto& out = scratch_->to_client;
    out.clear();
    const bool ended_before = fsm_.ended();
    const auto scanned = fsm_.on_server_bytes(in.readable(), out, now());
    if (!out.empty()) {
      auto& buffers = scratch_->client_buffers;
      const auto attempt = write_segments_now(client_, out, buffers);
      auto ec = attempt.error;
      if (!ec && !attempt.complete) ec = co_await write_rest(client_, buffers, attempt.written);
      if (ec) {
        in.consume(scanned.consumed);
        finish(relay_end::client_gone, client_.socket());
        co_return;
      }
    }
    in.consume(scanned.consumed);
    // A batch the fsm runs again goes now, unless the client loop is writing: then it goes
    // right after that write, ahead of anything newer.
    if (fsm_.has_server_output() && !server_write_busy_) {
      auto& own = scratch_->own_to_server;
      own.clear();
      fsm_.take_server_output(own);
      if (co_await write_to_server(own)) {
        finish(relay_end::server_gone, client_.socket());
        co_return;
      }
    }
    // A lease that outlives its transactions (session mode, held cursors) reports each one as
    // it ends; a lease that ends here is reported by the session.
    if (stats_ && !fsm_.ended() && fsm_.counters().totals.transactions > 0)
      stats_(fsm_.take_counters());
    if (fsm_.ended()) {
      // A release point (a client loop, if one runs, stops reading), a server that broke
      // framing, or an end the client loop decided.
      if (!ended_before) finish(fsm_.end(), client_.socket());
      co_return;
    }
    if (scanned.consumed > 0) {
      resume_client_if_needed();
      continue;
    }
    auto space = in.prepare(fsm_.server_read_size(in.readable()));
    auto [ec, n] = co_await server_.socket.async_read_some(asio::buffer(space.data(), space.size()),
                                                           use_nothrow);
    in.commit(n);
    if (fsm_.ended()) co_return;
    if (ec) {  // the session tells the client, unless the server's own FATAL already did
      finish(relay_end::server_gone, client_.socket());
      co_return;
    }
  }
}

awaitable<void> relay::watchdog() {
  using action = pool::lease_fsm::limit_check::action;
  const auto beat = fsm_.limit_check_interval();
  while (!fsm_.ended()) {
    watchdog_timer_->expires_after(beat);
    co_await watchdog_timer_->async_wait(use_nothrow);
    if (fsm_.ended()) co_return;
    const auto now = pool::clock::now();
    const auto check = fsm_.check_limits(now);
    if (check.what == action::cancel_query) {
      fsm_.begin_query_cancel(now);
      spawn(cancel_query());
    } else if (check.what == action::end) {
      finish(check.end, client_.socket());
      error_code ignored;
      server_.socket.cancel(ignored);
      co_return;
    }
  }
}

awaitable<void> relay::cancel_query() {
  // As PostgreSQL's own cancel does: a connection of its own to the server's postmaster, waited
  // for until it has signalled the backend. Until then nothing more of the client's is sent.
  co_await cancel_and_wait(server_.endpoint, server_.backend_pid, server_.backend_secret);
  fsm_.query_cancel_delivered();
  resume_client_if_needed();
}

}  // namespace sluice::proxy
