#pragma once
// The Asio vocabulary the daemon uses everywhere: coroutines that return errors as values.
#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

namespace sluice::proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
// Client and server connections alike: TCP, or a Unix-domain socket (a server on the same host,
// as libpq reaches it with host=/directory). The address family is a run-time property.
using stream_socket = asio::generic::stream_protocol::socket;
using stream_endpoint = asio::generic::stream_protocol::endpoint;
using error_code = boost::system::error_code;
template <class T = void>
using awaitable = asio::awaitable<T>;

// "address:port" for TCP, "unix:<path>" for a Unix-domain socket: for logs.
inline std::string to_text(const asio::generic::stream_protocol::endpoint& endpoint) {
  const auto family = endpoint.protocol().family();
  if (family == AF_INET || family == AF_INET6) {
    asio::ip::tcp::endpoint ip;
    if (endpoint.size() > ip.capacity()) return "unknown";
    std::memcpy(ip.data(), endpoint.data(), endpoint.size());
    ip.resize(endpoint.size());
    const auto address = ip.address().to_string();
    return (family == AF_INET6 ? "[" + address + "]" : address) + ":" + std::to_string(ip.port());
  }
  if (family == AF_UNIX) {
    const auto* path = reinterpret_cast<const char*>(endpoint.data()) + sizeof(sa_family_t);
    const auto length =
        endpoint.size() > sizeof(sa_family_t) ? endpoint.size() - sizeof(sa_family_t) : 0;
    return "unix:" + std::string(path, strnlen(path, length));
  }
  return "unknown";
}

// The address and port of a TCP endpoint, for SHOW CLIENTS and SHOW SERVERS; ("", 0) for
// anything else.
inline std::pair<std::string, std::uint16_t> address_and_port(
    const asio::generic::stream_protocol::endpoint& endpoint) {
  const auto family = endpoint.protocol().family();
  if (family != AF_INET && family != AF_INET6) return {};
  asio::ip::tcp::endpoint ip;
  if (endpoint.size() > ip.capacity()) return {};
  std::memcpy(ip.data(), endpoint.data(), endpoint.size());
  ip.resize(endpoint.size());
  return {ip.address().to_string(), ip.port()};
}

// Completion token that returns (error_code, results...) instead of throwing: a closed
// socket or an expired deadline is an ordinary outcome here, not an exception.
inline constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

}  // namespace sluice::proxy
