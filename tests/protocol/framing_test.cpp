#include "protocol/framing.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "protocol/errc.hpp"
#include "protocol/message_limits.hpp"
#include "tests/protocol/fixtures.hpp"
#include "tests/protocol/hex.hpp"
#include "tests/protocol/message_builder.hpp"

namespace sluice::protocol {
namespace {

using test::as_bytes;
using test::from_hex;
using test::message_builder;
using test::to_hex;

constexpr std::uint32_t generous_limit = 1 << 20;

struct framed {
  char type;
  std::string wire;
  bool operator==(const framed&) const = default;
};

// Reads a stream the way a session does: append each chunk to a buffer, frame every complete
// message at its front, keep the rest for the next chunk.
std::vector<framed> frame_chunks(const std::vector<std::string>& chunks, std::string* leftover) {
  std::vector<framed> out;
  std::string buffer;
  for (const std::string& chunk : chunks) {
    buffer += chunk;
    for (;;) {
      const frame_result r = frame_message(as_bytes(buffer), generous_limit);
      if (r.status == frame_status::need_more) break;
      REQUIRE(r.status == frame_status::complete);
      out.push_back({r.message.type, std::string(test::as_text(r.message.wire))});
      buffer.erase(0, r.message.wire.size());
    }
  }
  *leftover = buffer;
  return out;
}

TEST_CASE("peek_header needs 5 bytes", "[framing]") {
  const std::string header = from_hex("51 0000000d");
  const std::size_t available = GENERATE(range(0, 5));
  const header_result r = peek_header(as_bytes(header).first(available), generous_limit);
  CHECK(r.status == frame_status::need_more);
  CHECK_FALSE(r.error);

  const header_result whole = peek_header(as_bytes(header), generous_limit);
  REQUIRE(whole.status == frame_status::complete);
  CHECK(whole.header.type == 'Q');
  CHECK(whole.header.length == 13);
  CHECK(whole.header.wire_size() == 14);
}

TEST_CASE("peek_header rejects lengths below 4 before any body arrives", "[framing]") {
  const std::uint32_t length = GENERATE(0u, 1u, 2u, 3u);
  const std::string header = message_builder{}.typed_with_length('Q', length);
  const header_result r = peek_header(as_bytes(header), generous_limit);
  CHECK(r.status == frame_status::error);
  CHECK(r.error == errc::bad_length);
  CHECK(frame_message(as_bytes(header), generous_limit).error == errc::bad_length);
}

TEST_CASE("peek_header caps the length from the header alone", "[framing]") {
  // Only 5 bytes are present: the decision cannot wait for a body that may never fit in memory.
  const auto [length, limit, status] = GENERATE(table<std::uint32_t, std::uint32_t, frame_status>({
      {100, 100, frame_status::complete},
      {101, 100, frame_status::error},
      {0xffffffff, 0x3ffffffe, frame_status::error},  // A negative Int32 is a huge length.
      {4, 4, frame_status::complete},
  }));
  const std::string header = message_builder{}.typed_with_length('D', length);
  const header_result r = peek_header(as_bytes(header), limit);
  CHECK(r.status == status);
  if (status == frame_status::error) {
    CHECK(r.error == errc::message_too_long);
    CHECK(frame_message(as_bytes(header), limit).error == errc::message_too_long);
  }
}

TEST_CASE("frame_message is need_more for every strict prefix, complete for the whole",
          "[framing]") {
  const std::string message =
      from_hex(GENERATE(as<std::string>{}, test::fixtures::psql_query, test::fixtures::terminate,
                        test::fixtures::auth_sasl_continue, test::fixtures::error_no_database));
  for (std::size_t n = 0; n < message.size(); ++n) {
    INFO("prefix " << n);
    CHECK(frame_message(as_bytes(message).first(n), generous_limit).status ==
          frame_status::need_more);
  }
  const frame_result r = frame_message(as_bytes(message), generous_limit);
  REQUIRE(r.status == frame_status::complete);
  CHECK(r.message.type == message[0]);
  CHECK(r.message.wire.data() == message.data());
  CHECK(r.message.wire.size() == message.size());
  CHECK(r.message.body.data() == message.data() + 5);
  CHECK(r.message.body.size() == message.size() - 5);
}

TEST_CASE("frame_message frames a real server stream in order", "[framing]") {
  const std::string stream = from_hex(test::fixtures::server_greeting);
  std::string leftover;
  const std::vector<framed> messages = frame_chunks({stream}, &leftover);
  CHECK(leftover.empty());
  std::string types;
  std::string rejoined;
  for (const framed& m : messages) {
    types += m.type;
    rejoined += m.wire;
  }
  CHECK(types == "RRSSSSSSSSSSSSSKZ");
  CHECK(rejoined == stream);
}

TEST_CASE("a stream split at every byte boundary frames the same way", "[framing]") {
  const std::string stream = from_hex(test::fixtures::server_greeting) +
                             from_hex(test::fixtures::query_response) +
                             from_hex(test::fixtures::pgbench_execute_reply);
  std::string leftover;
  const std::vector<framed> expected = frame_chunks({stream}, &leftover);
  REQUIRE(expected.size() == 17 + 4 + 5);
  for (std::size_t split = 0; split <= stream.size(); ++split) {
    INFO("split at " << split);
    const std::vector<framed> got =
        frame_chunks({stream.substr(0, split), stream.substr(split)}, &leftover);
    CHECK(got == expected);
    CHECK(leftover.empty());
  }
}

TEST_CASE("a stream fed one byte at a time frames the same way", "[framing]") {
  const std::string stream = from_hex(test::fixtures::pgbench_parse_sync) +
                             from_hex(test::fixtures::pgbench_bind_describe_execute_sync);
  std::vector<std::string> bytes;
  for (const char c : stream) bytes.emplace_back(1, c);
  std::string leftover;
  const std::vector<framed> got = frame_chunks(bytes, &leftover);
  std::string types;
  for (const framed& m : got) types += m.type;
  CHECK(types == "PSBDES");
  CHECK(leftover.empty());
}

TEST_CASE("a truncated stream leaves the partial message buffered", "[framing]") {
  const std::string stream = from_hex(test::fixtures::query_response);
  std::string leftover;
  const std::vector<framed> got = frame_chunks({stream.substr(0, stream.size() - 3)}, &leftover);
  CHECK(got.size() == 3);  // T, D, C; the ReadyForQuery is 3 bytes short.
  CHECK(leftover == stream.substr(stream.size() - 6, 3));
}

TEST_CASE("frame_startup_packet frames untyped packets", "[framing][startup]") {
  const std::string packet = from_hex(test::fixtures::psql_startup_message);
  for (std::size_t n = 0; n < packet.size(); ++n) {
    INFO("prefix " << n);
    CHECK(frame_startup_packet(as_bytes(packet).first(n)).status == frame_status::need_more);
  }
  const frame_result r = frame_startup_packet(as_bytes(packet));
  REQUIRE(r.status == frame_status::complete);
  CHECK(r.message.type == '\0');
  CHECK(r.message.wire.size() == packet.size());
  CHECK(r.message.body.size() == packet.size() - 4);
  CHECK(r.message.body.data() == packet.data() + 4);
}

TEST_CASE("frame_startup_packet frames packets back to back", "[framing][startup]") {
  const std::string stream =
      from_hex(test::fixtures::psql_ssl_request) + from_hex(test::fixtures::psql_startup_message);
  const frame_result first = frame_startup_packet(as_bytes(stream));
  REQUIRE(first.status == frame_status::complete);
  CHECK(first.message.wire.size() == 8);
  const frame_result second = frame_startup_packet(as_bytes(stream).subspan(8));
  REQUIRE(second.status == frame_status::complete);
  CHECK(second.message.wire.size() == stream.size() - 8);
}

TEST_CASE("frame_startup_packet rejects bad lengths from the length field alone",
          "[framing][startup]") {
  const auto [length, error] = GENERATE(table<std::uint32_t, errc>({
      {0, errc::bad_length},
      {4, errc::bad_length},
      {7, errc::bad_length},
      {10001, errc::message_too_long},
      {0x80000000, errc::message_too_long},
  }));
  const std::string header = message_builder{}.untyped_with_length(length);
  const frame_result r = frame_startup_packet(as_bytes(header));
  CHECK(r.status == frame_status::error);
  CHECK(r.error == error);
}

TEST_CASE("frame_startup_packet accepts exactly the maximum length", "[framing][startup]") {
  const std::string packet =
      message_builder{}.raw(std::string(max_startup_packet_length - 4, 'x')).untyped();
  CHECK(frame_startup_packet(as_bytes(packet)).status == frame_status::complete);
  CHECK(frame_startup_packet(as_bytes(packet).first(packet.size() - 1)).status ==
        frame_status::need_more);
}

TEST_CASE("frontend_length_limit mirrors PostgreSQL's per-type caps", "[framing][limits]") {
  const auto [type, limit] = GENERATE(table<char, std::uint32_t>({
      {'Q', large_message_limit},
      {'P', large_message_limit},
      {'B', large_message_limit},
      {'F', large_message_limit},
      {'d', large_message_limit},
      {'p', auth_message_limit},
      {'S', small_message_limit},
      {'H', small_message_limit},
      {'D', small_message_limit},
      {'E', small_message_limit},
      {'C', small_message_limit},
      {'X', small_message_limit},
      {'c', small_message_limit},
      {'f', small_message_limit},
      {'?', small_message_limit},
  }));
  CHECK(frontend_length_limit(type) == limit);
  // A Sync claiming 20000 bytes is refused from its header; a Query of that size is not.
  const std::string header = message_builder{}.typed_with_length(type, 20000);
  const header_result r = peek_header(as_bytes(header), frontend_length_limit(header[0]));
  CHECK((r.status == frame_status::complete) == (limit >= 20000));
}

}  // namespace
}  // namespace sluice::protocol
