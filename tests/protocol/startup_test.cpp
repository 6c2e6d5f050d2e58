#include "protocol/startup.hpp"

#include <catch2/catch.hpp>
#include <random>

#include "protocol/backend_messages.hpp"
#include "protocol/framing.hpp"
#include "tests/protocol/fixtures.hpp"
#include "tests/protocol/hex.hpp"
#include "tests/protocol/message_builder.hpp"

namespace sluice::protocol {
namespace {

using test::as_bytes;
using test::from_hex;
using test::message_builder;
using test::to_hex;
using parameter_list = std::vector<std::pair<std::string, std::string>>;

// Frames `packet` as one startup packet and decodes its body.
result<startup_packet> frame_and_decode(const std::string& packet) {
  const frame_result framed = frame_startup_packet(as_bytes(packet));
  REQUIRE(framed.status == frame_status::complete);
  REQUIRE(framed.message.wire.size() == packet.size());
  return decode_startup_packet(framed.message.body);
}

TEST_CASE("decodes psql's StartupMessage", "[startup]") {
  const auto packet = frame_and_decode(from_hex(test::fixtures::psql_startup_message));
  REQUIRE(packet);
  CHECK(packet->kind == startup_kind::startup);
  CHECK(packet->version == protocol_3_0);
  CHECK(packet->parameters ==
        parameter_list{{"user", "sluice"}, {"database", "postgres"}, {"application_name", "psql"}});
}

TEST_CASE("decodes psql's SSLRequest and rebuilds it byte for byte", "[startup]") {
  const std::string fixture = from_hex(test::fixtures::psql_ssl_request);
  const auto packet = frame_and_decode(fixture);
  REQUIRE(packet);
  CHECK(packet->kind == startup_kind::ssl_request);
  CHECK(packet->version == ssl_request_code);
  std::string built;
  append_ssl_request(built);
  CHECK(to_hex(built) == to_hex(fixture));
}

TEST_CASE("decodes psql's CancelRequest for the key the backend gave it", "[startup]") {
  const std::string fixture = from_hex(test::fixtures::psql_cancel_request);
  const auto packet = frame_and_decode(fixture);
  REQUIRE(packet);
  CHECK(packet->kind == startup_kind::cancel_request);

  const std::string key_message = from_hex(test::fixtures::psql_cancel_backend_key_data);
  const auto key = decode_backend_key_data(as_bytes(key_message).subspan(5));
  REQUIRE(key);
  CHECK(packet->cancel.process_id == key->process_id);
  CHECK(packet->cancel.secret_key == key->secret_key);

  std::string built;
  append_cancel_request(built, {key->process_id, key->secret_key});
  CHECK(to_hex(built) == to_hex(fixture));
}

TEST_CASE("GSSENCRequest round-trips", "[startup]") {
  std::string built;
  append_gssenc_request(built);
  CHECK(to_hex(built) == "0000000804d21630");
  const auto packet = frame_and_decode(built);
  REQUIRE(packet);
  CHECK(packet->kind == startup_kind::gssenc_request);
  CHECK(packet->version == gssenc_request_code);
}

TEST_CASE("StartupMessage round-trips", "[startup]") {
  const parameter_list params = GENERATE(
      parameter_list{}, parameter_list{{"user", "sluice"}},
      parameter_list{{"user", "sluice"}, {"database", "postgres"}, {"application_name", "psql"}},
      parameter_list{{"user", "u"}, {"options", "-c search_path=a,b -c statement_timeout=5s"}},
      parameter_list{{"user", "u"}, {"application_name", ""}},
      parameter_list{{"user", "u"}, {"_pq_.some_extension", "on"}},
      parameter_list{{"user", std::string(4000, 'x')}, {"database", "\xc3\xa9t\xc3\xa9"}});
  std::string built;
  append_startup_message(built, params);

  message_builder expected;
  expected.int32(protocol_3_0);
  for (const auto& [name, value] : params) expected.cstr(name).cstr(value);
  expected.byte('\0');
  CHECK(to_hex(built) == to_hex(expected.untyped()));

  const auto packet = frame_and_decode(built);
  REQUIRE(packet);
  CHECK(packet->kind == startup_kind::startup);
  CHECK(packet->version == protocol_3_0);
  CHECK(packet->parameters == params);
}

TEST_CASE("a 3.x minor version decodes and is reported to the caller", "[startup]") {
  const std::string body =
      message_builder{}.int32((3 << 16) | 2).cstr("user").cstr("u").byte('\0').body();
  const auto packet = decode_startup_packet(as_bytes(body));
  REQUIRE(packet);
  CHECK(packet->version == ((3u << 16) | 2u));
  CHECK(packet->parameters == parameter_list{{"user", "u"}});
}

TEST_CASE("other protocol versions fail but report the version", "[startup]") {
  const std::uint32_t version = GENERATE(2u << 16, (4u << 16) | 0u, (1234u << 16) | 5677u, 0u);
  const std::string body =
      message_builder{}.uint32(version).cstr("user").cstr("u").byte('\0').body();
  const auto packet = decode_startup_packet(as_bytes(body));
  CHECK(packet.error == errc::unsupported_protocol);
  CHECK(packet.value.kind == startup_kind::startup);
  CHECK(packet.value.version == version);
}

TEST_CASE("broken startup bodies give errors", "[startup]") {
  const auto [body_hex, error] = GENERATE(table<std::string, errc>({
      {"", errc::truncated},
      {"0003", errc::truncated},
      {"00030000", errc::malformed},                        // no terminator
      {"00030000 7573657200", errc::malformed},             // name without value
      {"00030000 75736572 00 7573", errc::malformed},       // value without NUL
      {"00030000 7573657200 7500", errc::malformed},        // pairs without terminator
      {"00030000 7573657200 7500 00 00", errc::malformed},  // bytes after the terminator
      {"04d2162f 00", errc::malformed},                     // SSLRequest with extra bytes
      {"04d21630 00000000", errc::malformed},               // GSSENCRequest with extra bytes
      {"04d2162e 00001553", errc::truncated},               // CancelRequest without key
      {"04d2162e 00001553 020d76fc 00", errc::malformed},   // CancelRequest too long
  }));
  const std::string body = from_hex(body_hex);
  INFO("body " << body_hex);
  const auto packet = decode_startup_packet(as_bytes(body));
  CHECK(packet.error == error);
}

TEST_CASE("10,000 random startup packets never crash", "[startup][random]") {
  std::mt19937 rng(20240531);
  const std::vector<std::uint32_t> codes = {protocol_3_0,        ssl_request_code,
                                            gssenc_request_code, cancel_request_code,
                                            (3u << 16) | 1u,     2u << 16};
  const std::string real = from_hex(test::fixtures::psql_startup_message);
  int complete = 0;
  int decoded = 0;
  for (int i = 0; i < 10000; ++i) {
    std::string packet;
    switch (rng() % 3) {
      case 0: {  // Random bytes, with a plausible code most of the time.
        message_builder b;
        b.uint32(rng() % 4 == 0 ? rng() : codes[rng() % codes.size()]);
        const std::size_t n = rng() % 40;
        for (std::size_t j = 0; j < n; ++j) b.byte(static_cast<char>(rng() % 4 == 0 ? 0 : rng()));
        packet = rng() % 8 == 0 ? b.untyped_with_length(rng() % 64) : b.untyped();
        break;
      }
      case 1: {  // A real packet with a few bytes flipped.
        packet = real;
        for (int flips = 1 + rng() % 3; flips > 0; --flips) {
          packet[rng() % packet.size()] = static_cast<char>(rng());
        }
        break;
      }
      default:  // A real packet cut short, with its length field patched to match.
        packet = message_builder{}.raw(real.substr(4, rng() % (real.size() - 4))).untyped();
        break;
    }
    const frame_result framed = frame_startup_packet(as_bytes(packet));
    if (framed.status != frame_status::complete) continue;
    ++complete;
    REQUIRE(framed.message.wire.size() <= packet.size());
    const auto result = decode_startup_packet(framed.message.body);
    if (result) ++decoded;
  }
  CHECK(complete > 0);
  CHECK(decoded > 0);
}

}  // namespace
}  // namespace sluice::protocol
