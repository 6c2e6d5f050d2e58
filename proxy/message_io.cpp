#include "proxy/message_io.hpp"

namespace sluice::proxy {

template <class Stream>
awaitable<read_outcome> read_message(Stream& socket, byte_buffer& buffer, read_kind kind,
                                     std::uint32_t max_length) {
  read_outcome out;
  for (;;) {
    const auto framed = kind == read_kind::typed
                            ? protocol::frame_message(buffer.readable(), max_length)
                            : protocol::frame_startup_packet(buffer.readable());
    if (framed.status == protocol::frame_status::complete) {
      out.message = framed.message;
      co_return out;
    }
    if (framed.status == protocol::frame_status::error) {
      out.protocol_error = framed.error;
      co_return out;
    }
    auto space = buffer.prepare(4096);
    auto [ec, n] =
        co_await socket.async_read_some(asio::buffer(space.data(), space.size()), use_nothrow);
    if (ec) {
      out.error = ec;
      co_return out;
    }
    buffer.commit(n);
  }
}

template <class Stream>
awaitable<error_code> write_all(Stream& socket, std::string_view bytes) {
  auto [ec, n] =
      co_await asio::async_write(socket, asio::buffer(bytes.data(), bytes.size()), use_nothrow);
  co_return ec;
}

template awaitable<read_outcome> read_message(stream_socket&, byte_buffer&, read_kind,
                                              std::uint32_t);
template awaitable<read_outcome> read_message(client_transport&, byte_buffer&, read_kind,
                                              std::uint32_t);
template awaitable<error_code> write_all(stream_socket&, std::string_view);
template awaitable<error_code> write_all(client_transport&, std::string_view);

}  // namespace sluice::proxy
