#pragma once
// Writing a gather list: first at once, with one non-blocking sendmsg, and only what the
// socket did not take through an asynchronous write.
//
// Why: a request or a reply almost always fits the socket's send buffer. Written at once, it
// costs no asynchronous operation: no coroutine frame for the operation, and no trip through
// the scheduler's queue (which costs an extra epoll_wait with a zero timeout) before the
// relay goes on.
#include <cstddef>

#include <boost/container/small_vector.hpp>

#include "proxy/asio.hpp"
#include "proxy/client_transport.hpp"

namespace sluice::proxy {

// One write's buffers; 16 entries cover a pipeline of rewritten messages without allocating.
using gather_list = boost::container::small_vector<asio::const_buffer, 16>;

struct write_attempt {
  std::size_t written = 0;  // bytes the socket took
  error_code error;         // a real error (never would_block)
  bool complete = false;    // every byte was taken
};

// One sendmsg with MSG_DONTWAIT | MSG_NOSIGNAL; retried only when interrupted by a signal.
write_attempt write_now(stream_socket& socket, const gather_list& buffers);
// The same for a client: over TLS nothing is written at once (the bytes must go through the
// TLS stream), so write_rest writes them all.
inline write_attempt write_now(client_transport& client, const gather_list& buffers) {
  if (client.encrypted()) return {};
  return write_now(client.socket(), buffers);
}

// The bytes of `buffers` after the first `skip`, written asynchronously (instantiated for a
// stream_socket and a client_transport).
template <class Stream>
awaitable<error_code> write_rest(Stream& stream, const gather_list& buffers, std::size_t skip);

}  // namespace sluice::proxy
