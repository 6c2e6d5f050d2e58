#pragma once
// Whole-message reads and plain writes for the phases that are not on the hot path:
// startup, authentication, server login, pings and resets. The relay streams instead.
#include <chrono>
#include <string>

#include "protocol/framing.hpp"
#include "proxy/asio.hpp"
#include "proxy/byte_buffer.hpp"
#include "proxy/client_transport.hpp"

namespace sluice::proxy {

enum class read_kind {
  typed,    // 1 type byte + int32 length: every message after the startup packet
  startup,  // int32 length only: StartupMessage, SSLRequest, GSSENCRequest, CancelRequest
};

struct read_outcome {
  error_code error;                  // socket error, EOF, or operation_aborted on deadline
  std::error_code protocol_error;    // framing failed (bad or over-long length)
  protocol::message_view message{};  // valid until the caller consumes wire.size() bytes
  explicit operator bool() const { return !error && !protocol_error; }
};

// Reads until `buffer` holds one complete message. The length is checked against
// `max_length` from the header alone, before anything of the body is buffered.
// `Stream` is a server's stream_socket or a client's client_transport (instantiated for both).
template <class Stream>
awaitable<read_outcome> read_message(Stream& stream, byte_buffer& buffer, read_kind kind,
                                     std::uint32_t max_length);

template <class Stream>
awaitable<error_code> write_all(Stream& stream, std::string_view bytes);

// Runs `op` but gives up after `timeout`, cancelling the socket's operations.
// Returns the op's result, or operation_aborted/timed_out when the deadline wins.
template <class T, class Stream>
awaitable<T> with_deadline(Stream& socket, std::chrono::milliseconds timeout, awaitable<T> op) {
  using namespace asio::experimental::awaitable_operators;
  asio::steady_timer timer(socket.get_executor(), timeout);
  auto winner = co_await (std::move(op) || timer.async_wait(use_nothrow));
  if (winner.index() == 0) co_return std::get<0>(std::move(winner));
  T timed_out{};
  timed_out.error = asio::error::timed_out;
  co_return timed_out;
}

}  // namespace sluice::proxy
