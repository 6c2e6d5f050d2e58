#include "proxy/relay.hpp"

#include <algorithm>

#include "protocol/backend_messages.hpp"
#include "protocol/framing.hpp"
#include "protocol/message_types.hpp"
#include "proxy/gathered_write.hpp"
#include "proxy/message_io.hpp"

namespace sluice::proxy {
namespace {

namespace fe = protocol::frontend_type;
namespace be = protocol::backend_type;

// Server messages the relay itself must see whole; everything else streams by byte count.
bool inspected_from_server(char type) {
  return type == be::ready_for_query || type == be::parameter_status ||
         type == be::error_response || type == be::copy_in_response;
}

constexpr std::size_t read_chunk = 16384;

}  // namespace

relay::relay(tcp::socket& client, byte_buffer& client_in, server_connection& server,
             pool::pool_mode mode, pool::shared_session_params& client_params,
             std::uint32_t max_message_size, std::optional<statement_context> statements,
             relay_limits limits)
    : client_(client),
      client_in_(client_in),
      server_(server),
      mode_(mode),
      client_params_(client_params),
      max_message_size_(max_message_size),
      limits_(limits),
      scratch_(relay_scratch_pool::of(client.get_executor()).take()),
      loops_done_(client.get_executor()) {
  link_.tx_status = server.tx_status;
  busy_since_ = idle_since_ = std::chrono::steady_clock::now();
  if (limits_.any()) watchdog_timer_.emplace(client.get_executor());
  if (statements)
    statements_.emplace(statements->client, server.statements, std::move(statements->intern),
                        statements->counters, std::move(statements->intern_sql));
}

relay::~relay() {
  relay_scratch_pool::of(client_.get_executor()).give_back(std::move(scratch_));
}

void relay::finish(relay_end why, tcp::socket& wake) {
  if (!finished_) {
    finished_ = true;
    end_ = why;
  }
  // Wake the other loop if it is parked in a read on `wake`; bytes that already arrived stay
  // buffered. A write in progress is never cancelled: it completes, so no server is ever left
  // holding half a message.
  error_code ignored;
  wake.cancel(ignored);
  if (watchdog_timer_) watchdog_timer_->cancel();
}

bool relay::only_the_server_can_move() const {
  // A request is complete and owed its ReadyForQuery, so the server will keep talking until
  // then without needing the client: not in COPY FROM STDIN (the server waits for data) and
  // not halfway through forwarding a message (the server waits for its rest).
  return link_.outstanding_syncs > 0 && !link_.copy_in_progress && client_remaining_ == 0;
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
  if (client_loop_active_ || finished_) return;
  // Blocked: the replies just handled may be the ones its next message waited for.
  if (client_blocked_ || !only_the_server_can_move()) {
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
    if (!finished_) co_await server_to_client();
  } catch (...) {
    // Not rethrown yet: the spawned loops refer to this relay and must end first.
    loop_error_ = std::current_exception();
    finish(relay_end::server_gone, client_);
  }
  // Each spawned loop ends promptly once finished_ is set: finish() woke it.
  while (loops_running_ > 0) {
    loops_done_.expires_at(asio::steady_timer::time_point::max());
    co_await loops_done_.async_wait(use_nothrow);
  }
  if (loop_error_) std::rethrow_exception(loop_error_);
  co_return end_;
}

write_attempt relay::write_segments_now(tcp::socket& socket, const protocol::output_segments& out,
                                        gather_list& buffers) {
  buffers.clear();
  out.for_each([&](const char* data, std::size_t size) { buffers.emplace_back(data, size); });
  return write_now(socket, buffers);
}

void relay::note_client_message(char type) {
  if (watchdog_timer_ && link_.outstanding_syncs == 0 &&
      (type == fe::query || type == fe::function_call || type == fe::sync))
    busy_since_ = std::chrono::steady_clock::now();
  switch (type) {
    case fe::query:
    case fe::function_call:
      ++link_.outstanding_syncs;
      break;
    case fe::sync:
      // A server in COPY FROM STDIN ignores Sync; counting it would pin the server forever.
      if (!link_.copy_in_progress) {
        ++link_.outstanding_syncs;
        link_.extended_batch_open = false;
      }
      break;
    case fe::copy_done:
    case fe::copy_fail:
      link_.copy_in_progress = false;
      break;
    case fe::copy_data:
      break;
    default:  // Parse, Bind, Describe, Execute, Close, Flush: a batch awaiting its Sync
      link_.extended_batch_open = true;
      break;
  }
}

// The rest of a message whose header was already dealt with, as far as `bytes` holds it:
// forwarded by byte count (or dropped), never looked at. Returns the bytes taken.
std::size_t relay::pass_through(std::span<const char> bytes, std::size_t& remaining,
                                bool forwarding, protocol::output_segments& out) {
  const auto n = std::min(remaining, bytes.size());
  if (forwarding) out.add_view(bytes.first(n));
  remaining -= n;
  return n;
}

relay::scan_result relay::scan_client(std::span<const char> bytes, protocol::output_segments& out) {
  scan_result result;
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    if (client_remaining_ > 0) {
      pos += pass_through(bytes.subspan(pos), client_remaining_, client_forwarding_, out);
      continue;
    }
    const auto header = protocol::peek_header(bytes.subspan(pos), max_message_size_);
    if (header.status == protocol::frame_status::need_more) break;
    if (header.status == protocol::frame_status::error) {
      result.violation = true;
      break;
    }
    const char type = header.header.type;
    if (type == fe::terminate) {
      result.stop = true;
      break;
    }
    if (statements_ && pool::statement_relay_fsm::wants_whole_request(type)) {
      const auto whole = protocol::frame_message(bytes.subspan(pos), max_message_size_);
      if (whole.status != protocol::frame_status::complete) break;  // wait for the rest
      if (statements_->must_wait_for_replies(type, whole.message.body)) {
        result.blocked = true;
        break;
      }
      if (statements_->on_client_message(type, whole.message.body, whole.message.wire, out))
        note_client_message(type);
      pos += whole.message.wire.size();
      continue;
    }
    client_forwarding_ = !statements_ || statements_->on_client_streamed(type);
    if (client_forwarding_) note_client_message(type);
    client_remaining_ = header.header.wire_size();
  }
  link_.message_partially_sent = client_remaining_ > 0 && client_forwarding_;
  result.consumed = pos;
  return result;
}

void relay::on_server_message(char type, std::span<const char> body) {
  switch (type) {
    case be::ready_for_query:
      if (auto ready = protocol::decode_ready_for_query(body)) {
        link_.tx_status = ready->status;
        server_.tx_status = ready->status;
      }
      if (link_.outstanding_syncs > 0) --link_.outstanding_syncs;
      link_.copy_in_progress = false;
      if (watchdog_timer_ && link_.outstanding_syncs == 0)
        idle_since_ = std::chrono::steady_clock::now();
      break;
    case be::parameter_status:
      if (auto status = protocol::decode_parameter_status(body)) {
        server_.params.set(status->name, status->value);
        client_params_.set(status->name, status->value);
      }
      break;
    case be::error_response:
      if (auto error = protocol::decode_error_response(body)) {
        const auto severity = error->field('V').empty() ? error->field('S') : error->field('V');
        if (severity == "FATAL" || severity == "PANIC") server_fatal_ = true;
      }
      break;
    case be::copy_in_response:
      link_.copy_in_progress = true;
      break;
    default:
      break;
  }
}

relay::scan_result relay::scan_server(std::span<const char> bytes, protocol::output_segments& out) {
  using verdict = pool::statement_relay_fsm::verdict;
  scan_result result;
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    if (server_remaining_ > 0) {
      pos += pass_through(bytes.subspan(pos), server_remaining_, server_forwarding_, out);
      continue;
    }
    const auto header = protocol::peek_header(bytes.subspan(pos), max_message_size_);
    if (header.status == protocol::frame_status::need_more) break;
    if (header.status == protocol::frame_status::error) {
      result.violation = true;
      break;
    }
    const char type = header.header.type;
    const bool whole_needed = inspected_from_server(type) ||
                              (statements_ && pool::statement_relay_fsm::wants_whole_reply(type));
    if (!whole_needed) {
      server_forwarding_ =
          !statements_ || statements_->on_server_message(type, {}, out) == verdict::forward;
      server_remaining_ = header.header.wire_size();
      continue;
    }
    const auto whole = protocol::frame_message(bytes.subspan(pos), max_message_size_);
    if (whole.status != protocol::frame_status::complete) break;  // wait for the rest
    on_server_message(type, whole.message.body);
    if (!statements_ ||
        statements_->on_server_message(type, whole.message.body, out) == verdict::forward)
      out.add_view(whole.message.wire);
    pos += whole.message.wire.size();
    if (type == be::ready_for_query &&
        pool::decide_release(mode_, link_) == pool::release_decision::release &&
        (!statements_ || statements_->idle())) {
      // Decided now, not after the write: while that write is in flight the client loop may
      // wake with the client's next request, and it must not forward it to a server that is
      // about to go back to the pool.
      result.stop = true;
      finished_ = true;
      end_ = relay_end::released;
      break;
    }
  }
  result.consumed = pos;
  return result;
}

awaitable<void> relay::watchdog() {
  using std::chrono::milliseconds;
  // Checked at a quarter of the shortest limit: a limit fires at most 25% late.
  milliseconds shortest = milliseconds::max();
  for (auto limit :
       {limits_.query_timeout, limits_.idle_transaction_timeout, limits_.client_idle_timeout})
    if (limit) shortest = std::min(shortest, *limit);
  const auto beat = std::clamp(shortest / 4, milliseconds(20), milliseconds(1000));
  while (!finished_) {
    watchdog_timer_->expires_after(beat);
    co_await watchdog_timer_->async_wait(use_nothrow);
    if (finished_) co_return;
    const auto now = std::chrono::steady_clock::now();
    const bool busy = link_.outstanding_syncs > 0;
    std::optional<relay_end> violated;
    if (busy && limits_.query_timeout && now - busy_since_ > *limits_.query_timeout) {
      violated = relay_end::query_timeout;
    } else if (!busy && link_.tx_status != 'I' && limits_.idle_transaction_timeout &&
               now - idle_since_ > *limits_.idle_transaction_timeout) {
      violated = relay_end::idle_in_transaction_timeout;
    } else if (!busy && link_.tx_status == 'I' && !link_.extended_batch_open &&
               limits_.client_idle_timeout && now - idle_since_ > *limits_.client_idle_timeout) {
      violated = relay_end::client_idle_timeout;
    }
    if (violated) {
      finish(*violated, client_);
      error_code ignored;
      server_.socket.cancel(ignored);
      co_return;
    }
  }
}

awaitable<relay::client_pass> relay::forward_client() {
  while (!finished_) {
    scratch_->to_server.clear();
    const auto scanned = scan_client(client_in_.readable(), scratch_->to_server);
    if (scanned.consumed > 0) {
      if (!scratch_->to_server.empty()) {
        auto& buffers = scratch_->server_buffers;
        const auto attempt = write_segments_now(server_.socket, scratch_->to_server, buffers);
        auto ec = attempt.error;
        if (!ec && !attempt.complete)
          ec = co_await write_rest(server_.socket, buffers, attempt.written);
        client_in_.consume(scanned.consumed);
        if (ec) {
          finish(relay_end::server_gone, server_.socket);
          co_return client_pass::ended;
        }
      } else {
        client_in_.consume(scanned.consumed);  // all of it dropped
      }
      continue;
    }
    if (scanned.violation) {
      finished_ = true;
      end_ = relay_end::client_violation;
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
    if (scanned.stop) {  // Terminate: not forwarded, the server stays for the next client
      client_in_.consume(5);
      finish(relay_end::client_gone, server_.socket);
      co_return client_pass::ended;
    }
    client_blocked_ = scanned.blocked;
    // Pipelined bytes beyond this point wait in the socket: once the server has answered, the
    // relay reads them, or, if the lease ends there, the session does.
    if (scanned.blocked || only_the_server_can_move()) co_return client_pass::parked;
    co_return client_pass::must_read;
  }
  co_return client_pass::ended;
}

awaitable<void> relay::client_loop() {
  for (;;) {
    const auto pass = co_await forward_client();
    if (pass != client_pass::must_read) break;
    auto space = client_in_.prepare(read_chunk);
    auto [ec, n] =
        co_await client_.async_read_some(asio::buffer(space.data(), space.size()), use_nothrow);
    client_in_.commit(n);
    if (finished_) break;
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
    scratch_->to_client.clear();
    const auto scanned = scan_server(in.readable(), scratch_->to_client);
    if (!scratch_->to_client.empty()) {
      auto& buffers = scratch_->client_buffers;
      const auto attempt = write_segments_now(client_, scratch_->to_client, buffers);
      auto ec = attempt.error;
      if (!ec && !attempt.complete) ec = co_await write_rest(client_, buffers, attempt.written);
      if (ec) {
        in.consume(scanned.consumed);
        finish(relay_end::client_gone, client_);
        co_return;
      }
    }
    in.consume(scanned.consumed);
    if (scanned.stop) {  // a release point: a client loop, if one runs, stops reading
      finish(relay_end::released, client_);
      co_return;
    }
    if (finished_) co_return;  // the client loop ended the relay
    if (scanned.violation) {
      finish(relay_end::server_gone, client_);
      co_return;
    }
    if (scanned.consumed > 0) {
      resume_client_if_needed();
      continue;
    }
    // Room for the whole of a message that must be seen whole, or a chunk of a streamed one.
    std::size_t wanted = read_chunk;
    if (auto header = protocol::peek_header(in.readable(), max_message_size_);
        header.status == protocol::frame_status::complete && header.header.wire_size() > in.size())
      wanted = std::max(wanted, header.header.wire_size() - in.size());
    auto space = in.prepare(wanted);
    auto [ec, n] = co_await server_.socket.async_read_some(asio::buffer(space.data(), space.size()),
                                                           use_nothrow);
    in.commit(n);
    if (finished_) co_return;
    if (ec) {  // the session tells the client, unless the server's own FATAL already did
      finish(relay_end::server_gone, client_);
      co_return;
    }
  }
}

}  // namespace sluice::proxy
