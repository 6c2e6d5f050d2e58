// Random and mutated input against the framer and every decoder: none may crash or read out of
// bounds (run under -fsanitize=address,undefined to make the second visible). Fixed seeds keep
// failures reproducible.

#include <catch2/catch.hpp>
#include <random>

#include "protocol/backend_messages.hpp"
#include "protocol/framing.hpp"
#include "protocol/frontend_messages.hpp"
#include "protocol/scram_client_fsm.hpp"
#include "protocol/scram_server_fsm.hpp"
#include "protocol/scram_verifier.hpp"
#include "protocol/startup.hpp"
#include "tests/protocol/fixtures.hpp"
#include "tests/protocol/hex.hpp"
#include "tests/protocol/message_builder.hpp"

namespace sluice::protocol {
namespace {

using test::as_bytes;
using test::from_hex;
using test::message_builder;

// Runs every body decoder; returns how many accepted the body.
int decode_with_everything(std::span<const char> body) {
  int accepted = 0;
  const auto count = [&accepted](const auto& r) { accepted += r ? 1 : 0; };
  count(decode_authentication(body));
  (void)sasl_mechanisms(body);
  count(decode_parameter_status(body));
  count(decode_backend_key_data(body));
  count(decode_ready_for_query(body));
  count(decode_error_response(body));
  count(decode_command_complete(body));
  count(decode_negotiate_protocol_version(body));
  count(decode_password_message(body));
  count(decode_sasl_initial_response(body));
  count(decode_sasl_response(body));
  count(decode_query(body));
  count(decode_parse(body));
  count(decode_bind(body));
  count(decode_describe(body));
  count(decode_execute(body));
  count(decode_close(body));
  count(decode_startup_packet(body));
  return accepted;
}

// Bytes skewed towards what parsers branch on: NULs, small integers, type letters, 0xff.
char interesting_byte(std::mt19937& rng) {
  static constexpr char picks[] = {'\0', '\0', '\0', '\x01', '\x02', '\xff', '\x7f', 'S',
                                   'P',  'I',  'T',  'E',    'C',    'M',    '=',    ','};
  return rng() % 2 == 0 ? picks[rng() % sizeof(picks)] : static_cast<char>(rng());
}

TEST_CASE("every decoder handles an empty body with a null data pointer", "[random]") {
  // Bodiless messages frame to an empty span; a null pointer must not reach memchr or memcpy.
  CHECK(decode_with_everything(std::span<const char>{}) == 1);  // Only SASLResponse.
}

TEST_CASE("10,000 random typed messages never crash the framer or decoders", "[random][framing]") {
  std::mt19937 rng(7677);
  const std::string types = "RSKZENCQPBDEHXpdcf123Inv";
  int complete = 0;
  int accepted = 0;
  for (int i = 0; i < 10000; ++i) {
    message_builder b;
    const std::size_t n = rng() % 48;
    for (std::size_t j = 0; j < n; ++j) b.byte(interesting_byte(rng));
    const char type = rng() % 8 == 0 ? static_cast<char>(rng()) : types[rng() % types.size()];
    const std::string wire = rng() % 6 == 0 ? b.typed_with_length(type, rng() % 64) : b.typed(type);
    const frame_result framed = frame_message(as_bytes(wire), 1 << 16);
    if (framed.status != frame_status::complete) continue;
    ++complete;
    REQUIRE(framed.message.body.size() + 5 == framed.message.wire.size());
    REQUIRE(framed.message.wire.size() <= wire.size());
    accepted += decode_with_everything(framed.message.body);
  }
  CHECK(complete > 5000);
  CHECK(accepted > 0);
}

TEST_CASE("every truncation and byte flip of real messages is handled", "[random]") {
  std::string all;
  for (const std::string_view hex :
       {test::fixtures::server_greeting, test::fixtures::query_response,
        test::fixtures::error_auth_failed, test::fixtures::notice_with_detail_and_hint,
        test::fixtures::psql_sasl_initial_response, test::fixtures::psql_sasl_response,
        test::fixtures::pgbench_parse_sync, test::fixtures::pgbench_bind_describe_execute_sync,
        test::fixtures::auth_md5, test::fixtures::md5_password_message}) {
    all += from_hex(hex);
  }
  std::mt19937 rng(5802);
  std::span<const char> rest = as_bytes(all);
  int messages = 0;
  while (!rest.empty()) {
    const frame_result framed = frame_message(rest, 1 << 16);
    REQUIRE(framed.status == frame_status::complete);
    ++messages;
    const std::string body(test::as_text(framed.message.body));
    // Every prefix of the body, as a copy so the sanitizer sees its real end.
    for (std::size_t n = 0; n <= body.size(); ++n) {
      const std::string prefix = body.substr(0, n);
      (void)decode_with_everything(as_bytes(prefix));
    }
    for (int flips = 0; flips < 50 && !body.empty(); ++flips) {
      std::string mutated = body;
      mutated[rng() % mutated.size()] = interesting_byte(rng);
      (void)decode_with_everything(as_bytes(mutated));
    }
    rest = rest.subspan(framed.message.wire.size());
  }
  CHECK(messages == 17 + 4 + 1 + 1 + 2 + 6 + 1 + 1);
}

TEST_CASE("random SCRAM messages never crash the fsms", "[random][scram]") {
  std::mt19937 rng(5802);
  const std::string alphabet = "nyprcsimve=,abcXYZ019+/";
  const auto random_text = [&](std::string prefix) {
    for (std::size_t n = rng() % 40; n > 0; --n) prefix += alphabet[rng() % alphabet.size()];
    return prefix;
  };
  const scram_verifier verifier = make_scram_verifier("pencil", "salt", 1);
  for (int i = 0; i < 2000; ++i) {
    scram_server_fsm server(verifier, "server");
    (void)server.on_client_first(random_text(rng() % 2 ? "n,,n=,r=" : ""));
    (void)server.on_client_final(random_text(rng() % 2 ? "c=biws,r=" : ""));
    scram_client_fsm client("pencil", "c");
    (void)client.client_first_message();
    (void)client.on_server_first(random_text(rng() % 2 ? "r=c" : ""));
    (void)client.on_server_final(random_text(rng() % 2 ? "v=" : ""));
    (void)parse_scram_verifier(random_text(rng() % 2 ? "SCRAM-SHA-256$" : ""));
  }
  SUCCEED();
}

}  // namespace
}  // namespace sluice::protocol
