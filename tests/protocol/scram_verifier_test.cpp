#include "protocol/scram_verifier.hpp"

#include <catch2/catch.hpp>

#include "protocol/base64.hpp"
#include "tests/protocol/fixtures.hpp"

namespace sluice::protocol {
namespace {

TEST_CASE("parses a verifier PostgreSQL made, and rebuilds it from the password", "[scram]") {
  const auto parsed = parse_scram_verifier(test::fixtures::pencil_verifier);
  REQUIRE(parsed);
  CHECK(parsed->iterations == 4096);
  CHECK(parsed->salt == *base64_decode("k3omoCANXHoiUTfUljmfgw=="));
  CHECK(parsed->salt.size() == 16);
  CHECK(format_scram_verifier(*parsed) == test::fixtures::pencil_verifier);

  const scram_verifier made = make_scram_verifier("pencil", parsed->salt, 4096);
  CHECK(made.iterations == 4096);
  CHECK(made.salt == parsed->salt);
  CHECK(made.stored_key == parsed->stored_key);
  CHECK(made.server_key == parsed->server_key);
  CHECK(format_scram_verifier(made) == test::fixtures::pencil_verifier);

  const scram_verifier other = make_scram_verifier("pencil2", parsed->salt, 4096);
  CHECK(other.stored_key != parsed->stored_key);
}

TEST_CASE("verifiers round-trip through their text form", "[scram]") {
  const auto [salt, iterations] = GENERATE(table<std::string, int>({
      {"0123456789abcdef", 4096},
      {std::string("\0\xff", 2), 1},
      {"s", 100000},
  }));
  const scram_verifier made = make_scram_verifier("secret", salt, iterations);
  const auto parsed = parse_scram_verifier(format_scram_verifier(made));
  REQUIRE(parsed);
  CHECK(parsed->iterations == iterations);
  CHECK(parsed->salt == salt);
  CHECK(parsed->stored_key == made.stored_key);
  CHECK(parsed->server_key == made.server_key);
}

TEST_CASE("malformed verifiers are rejected", "[scram]") {
  const std::string key = "IcHTBUXMAKs6yIpTaUSvFm98Fx74JWK31nffTol6sNM=";
  const std::string text = GENERATE_COPY(
      std::string(""), std::string("md53858f62230ac3c915f300c664312c63f"),
      std::string("SCRAM-SHA-256$"), std::string("SCRAM-SHA-1$4096:c2FsdA==$") + key + ":" + key,
      std::string("SCRAM-SHA-256$4096:c2FsdA==$") + key,              // one key
      std::string("SCRAM-SHA-256$4096:c2FsdA==") + key + ":" + key,   // no '$'
      std::string("SCRAM-SHA-256$4096$c2FsdA==$") + key + ":" + key,  // '$' for ':'
      std::string("SCRAM-SHA-256$0:c2FsdA==$") + key + ":" + key,     // 0 iterations
      std::string("SCRAM-SHA-256$-1:c2FsdA==$") + key + ":" + key,
      std::string("SCRAM-SHA-256$+1:c2FsdA==$") + key + ":" + key,
      std::string("SCRAM-SHA-256$4096x:c2FsdA==$") + key + ":" + key,
      std::string("SCRAM-SHA-256$99999999999:c2FsdA==$") + key + ":" + key,
      std::string("SCRAM-SHA-256$4096:c2FsdA=$") + key + ":" + key,            // bad salt base64
      std::string("SCRAM-SHA-256$4096:c2FsdA==$c2FsdA==:") + key,              // short StoredKey
      std::string("SCRAM-SHA-256$4096:c2FsdA==$") + key + ":" + key + "AAAA",  // long ServerKey
      std::string("SCRAM-SHA-256$4096:c2FsdA==$") + key + ":" + key + "$");
  INFO(text);
  CHECK(parse_scram_verifier(text).error == errc::malformed);
}

}  // namespace
}  // namespace sluice::protocol
