#pragma once
// A client connection's byte stream: the plain socket, or TLS over it once the client asked
// for it (SSLRequest, or PostgreSQL 17's direct TLS).
//
// Why not a virtual interface or an any_io_object: the plain path is the hot one (a relay
// batch is one read and one write), and each operation here costs one predictable branch on
// `tls_`, no virtual call and no allocation. It models Asio's AsyncReadStream and
// AsyncWriteStream, so asio::async_write and the awaitable operators take it like a socket.
//
// Ownership: the session owns its transport; the TLS stream borrows the socket, which stays
// the one to cancel, shut down and close, and whose descriptor the gathered write uses while
// the connection is plain.
#include <memory>

#include <boost/asio/ssl.hpp>

#include "proxy/asio.hpp"

namespace sluice::proxy {

class client_transport {
 public:
  using executor_type = stream_socket::executor_type;
  using tls_stream = asio::ssl::stream<stream_socket&>;

  explicit client_transport(stream_socket socket) : socket_(std::move(socket)) {}
  client_transport(client_transport&&) = delete;  // the TLS stream refers to socket_

  executor_type get_executor() { return socket_.get_executor(); }
  stream_socket& socket() { return socket_; }
  const stream_socket& socket() const { return socket_; }
  // Null while the connection is plain.
  tls_stream* tls() { return tls_.get(); }
  bool encrypted() const { return tls_ != nullptr; }

  // Runs the server side of the TLS handshake; the connection is encrypted from then on, or
  // (on failure) unusable. The caller bounds it with a deadline.
  awaitable<error_code> start_tls(asio::ssl::context& context) {
    tls_ = std::make_unique<tls_stream>(socket_, context);
    auto [ec] = co_await tls_->async_handshake(asio::ssl::stream_base::server, use_nothrow);
    co_return ec;
  }

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return asio::async_initiate<Token, void(error_code, std::size_t)>(
        [this](auto handler, const MutableBuffers& b) {
          if (tls_) {
            tls_->async_read_some(b, std::move(handler));
          } else {
            socket_.async_read_some(b, std::move(handler));
          }
        },
        token, buffers);
  }

  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return asio::async_initiate<Token, void(error_code, std::size_t)>(
        [this](auto handler, const ConstBuffers& b) {
          if (tls_) {
            tls_->async_write_some(b, std::move(handler));
          } else {
            socket_.async_write_some(b, std::move(handler));
          }
        },
        token, buffers);
  }

  // Wakes every operation in progress (they complete with operation_aborted).
  void cancel(error_code& ec) { socket_.cancel(ec); }

 private:
  stream_socket socket_;
  std::unique_ptr<tls_stream> tls_;
};

}  // namespace sluice::proxy
