#include "proxy/relay.hpp"

#include <algorithm>

#include "protocol/backend_messages.hpp"
#include "protocol/framing.hpp"
#include "protocol/message_types.hpp"
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
             pool::pool_mode mode, pool::session_params& client_params,
             std::uint32_t max_message_size, std::optional<statement_context> statements,
             relay_limits limits)
    : client_(client),
      client_in_(client_in),
      server_(server),
      mode_(mode),
      client_params_(client_params),
      max_message_size_(max_message_size),
      limits_(limits),
      progress_(client.get_executor()) {
  link_.tx_status = server.tx_status;
  busy_since_ = idle_since_ = std::chrono::steady_clock::now();
  if (limits_.any()) watchdog_timer_.emplace(client.get_executor());
  if (statements)
    statements_.emplace(statements->client, server.statements, std::move(statements->intern),
                        statements->counters, std::move(statements->intern_sql));
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
  progress_.cancel();
}

awaitable<relay_end> relay::run() {
  using namespace asio::experimental::awaitable_operators;
  if (watchdog_timer_) {
    co_await (client_to_server() && server_to_client() && watchdog());
  } else {
    co_await (client_to_server() && server_to_client());
  }
  co_return end_;
}

awaitable<error_code> relay::write_segments(tcp::socket& socket,
                                            const protocol::output_segments& out,
                                            std::vector<asio::const_buffer>& buffers) {
  buffers.clear();
  out.for_each([&](const char* data, std::size_t size) { buffers.emplace_back(data, size); });
  auto [ec, n] = co_await asio::async_write(socket, buffers, use_nothrow);
  co_return ec;
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

awaitable<void> relay::client_to_server() {
  while (!finished_) {
    to_server_.clear();
    const auto scanned = scan_client(client_in_.readable(), to_server_);
    if (scanned.consumed > 0) {
      if (!to_server_.empty()) {
        auto ec = co_await write_segments(server_.socket, to_server_, server_buffers_);
        client_in_.consume(scanned.consumed);
        if (ec) {
          finish(relay_end::server_gone, server_.socket);
          co_return;
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
      co_return;
    }
    if (scanned.blocked) {
      progress_.expires_after(std::chrono::milliseconds(100));
      co_await progress_.async_wait(use_nothrow);
      continue;
    }
    if (scanned.stop) {  // Terminate: not forwarded, the server stays for the next client
      client_in_.consume(5);
      finish(relay_end::client_gone, server_.socket);
      co_return;
    }
    auto space = client_in_.prepare(read_chunk);
    auto [ec, n] =
        co_await client_.async_read_some(asio::buffer(space.data(), space.size()), use_nothrow);
    client_in_.commit(n);
    if (finished_) co_return;
    if (ec) {
      finish(relay_end::client_gone, server_.socket);
      co_return;
    }
  }
}

awaitable<void> relay::server_to_client() {
  auto& in = server_.buffer;
  for (;;) {
    to_client_.clear();
    const auto scanned = scan_server(in.readable(), to_client_);
    if (!to_client_.empty()) {
      auto ec = co_await write_segments(client_, to_client_, client_buffers_);
      if (ec) {
        in.consume(scanned.consumed);
        finish(relay_end::client_gone, client_);
        co_return;
      }
    }
    in.consume(scanned.consumed);
    if (scanned.consumed > 0 && statements_) progress_.cancel();
    if (scanned.stop) {  // a release point: the client loop stops reading
      finish(relay_end::released, client_);
      co_return;
    }
    if (finished_) co_return;  // the client loop ended the relay
    if (scanned.violation) {
      finish(relay_end::server_gone, client_);
      co_return;
    }
    if (scanned.consumed > 0) continue;
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
