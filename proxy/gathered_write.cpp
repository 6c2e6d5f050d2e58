#include "proxy/gathered_write.hpp"

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <span>

namespace sluice::proxy {

write_attempt write_now(stream_socket& socket, const gather_list& buffers) {
  write_attempt attempt;
  std::size_t total = 0;
  // Gather lists are short (a relay batch is a handful of segments); a longer one just
  // leaves its tail to write_rest.
  std::array<iovec, 64> vectors;
  const std::size_t count = std::min(buffers.size(), vectors.size());
  for (std::size_t i = 0; i < count; ++i) {
    vectors[i].iov_base = const_cast<void*>(buffers[i].data());
    vectors[i].iov_len = buffers[i].size();
    total += buffers[i].size();
  }
  msghdr message{};
  message.msg_iov = vectors.data();
  message.msg_iovlen = count;
  ssize_t sent;
  do {
    sent = ::sendmsg(socket.native_handle(), &message, MSG_DONTWAIT | MSG_NOSIGNAL);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      attempt.error = error_code(errno, asio::error::get_system_category());
    return attempt;
  }
  attempt.written = static_cast<std::size_t>(sent);
  attempt.complete = attempt.written == total && count == buffers.size();
  return attempt;
}

template <class Stream>
awaitable<error_code> write_rest(Stream& socket, const gather_list& buffers, std::size_t skip) {
  gather_list rest;
  for (const auto& buffer : buffers) {
    if (skip >= buffer.size()) {
      skip -= buffer.size();
      continue;
    }
    rest.push_back(buffer + skip);
    skip = 0;
  }
  // A span, so the operation copies two words, not the list; `rest` lives in this frame.
  const std::span<const asio::const_buffer> remaining(rest.data(), rest.size());
  auto [ec, n] = co_await asio::async_write(socket, remaining, use_nothrow);
  co_return ec;
}

template awaitable<error_code> write_rest(stream_socket&, const gather_list&, std::size_t);
template awaitable<error_code> write_rest(client_transport&, const gather_list&, std::size_t);

}  // namespace sluice::proxy
