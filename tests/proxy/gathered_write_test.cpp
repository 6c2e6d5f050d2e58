// gathered_write over a real loopback socket pair: what the socket takes at once, then the
// rest asynchronously, arrives complete and in order.
#include "proxy/gathered_write.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <functional>
#include <string>

using namespace sluice::proxy;

namespace {

struct socket_pair {
  asio::io_context io;
  stream_socket writer{io}, reader{io};
  socket_pair() {
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    writer.connect(stream_endpoint(acceptor.local_endpoint()));
    acceptor.accept(reader);
  }
};

std::string pattern(std::size_t size, char seed) {
  std::string s(size, '\0');
  for (std::size_t i = 0; i < size; ++i) s[i] = static_cast<char>(seed + i % 23);
  return s;
}

}  // namespace

TEST_CASE("gathered_write: a small list goes out at once", "[proxy][gathered_write]") {
  socket_pair sockets;
  const std::string a = "Q\0\0\0\x0dSELECT 1", b = "tail";
  gather_list list{asio::buffer(a), asio::buffer(b)};
  const auto attempt = write_now(sockets.writer, list);
  CHECK_FALSE(attempt.error);
  CHECK(attempt.complete);
  CHECK(attempt.written == a.size() + b.size());
  std::string got(a.size() + b.size(), '\0');
  asio::read(sockets.reader, asio::buffer(got));
  CHECK(got == a + b);
}

TEST_CASE("gathered_write: what the socket refuses is written by write_rest",
          "[proxy][gathered_write]") {
  socket_pair sockets;
  // Far more than loopback socket buffers hold, split unevenly over three buffers.
  const std::string a = pattern(3 << 20, 'a'), b = pattern(17, 'k'), c = pattern(5 << 20, 'p');
  const std::string expected = a + b + c;
  gather_list list{asio::buffer(a), asio::buffer(b), asio::buffer(c)};

  const auto attempt = write_now(sockets.writer, list);
  REQUIRE_FALSE(attempt.error);
  CHECK_FALSE(attempt.complete);
  CHECK(attempt.written < expected.size());

  error_code written_with = asio::error::would_block;
  asio::co_spawn(
      sockets.io,
      [&]() -> awaitable<void> {
        written_with = co_await write_rest(sockets.writer, list, attempt.written);
      },
      asio::detached);
  std::string got(expected.size(), '\0');
  std::size_t received = 0;
  std::function<void()> read_more = [&] {
    sockets.reader.async_read_some(asio::buffer(got.data() + received, got.size() - received),
                                   [&](error_code ec, std::size_t n) {
                                     received += n;
                                     if (!ec && received < got.size()) read_more();
                                   });
  };
  read_more();
  sockets.io.run_for(std::chrono::seconds(20));
  CHECK_FALSE(written_with);
  REQUIRE(received == expected.size());
  CHECK(got == expected);
}

TEST_CASE("gathered_write: a closed peer is an error, not a signal", "[proxy][gathered_write]") {
  socket_pair sockets;
  sockets.reader.close();
  const std::string data = pattern(1 << 20, 'x');
  gather_list list{asio::buffer(data)};
  // The first send may still be accepted; a later one meets the reset connection.
  write_attempt attempt;
  for (int i = 0; i < 50 && !attempt.error; ++i) attempt = write_now(sockets.writer, list);
  CHECK(attempt.error);
}
