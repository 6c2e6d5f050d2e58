#include "protocol/scram_client_fsm.hpp"

#include <catch2/catch.hpp>

#include "protocol/backend_messages.hpp"
#include "protocol/frontend_messages.hpp"
#include "tests/protocol/fixtures.hpp"
#include "tests/protocol/hex.hpp"

namespace sluice::protocol {
namespace {

using test::as_bytes;
using test::as_text;
using test::from_hex;

// RFC 7677 section 3.
constexpr std::string_view rfc_client_first = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view rfc_server_first =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
constexpr std::string_view rfc_client_final =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
constexpr std::string_view rfc_server_final = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

// The SCRAM payloads of the real psql session in the fixtures.
struct psql_exchange {
  std::string client_first, server_first, client_final, server_final;
};

psql_exchange real_exchange() {
  psql_exchange out;
  const std::string initial = from_hex(test::fixtures::psql_sasl_initial_response);
  out.client_first = std::string(decode_sasl_initial_response(as_bytes(initial).subspan(5))->data);
  const std::string cont = from_hex(test::fixtures::auth_sasl_continue);
  out.server_first = std::string(as_text(decode_authentication(as_bytes(cont).subspan(5))->data));
  const std::string response = from_hex(test::fixtures::psql_sasl_response);
  out.client_final = std::string(decode_sasl_response(as_bytes(response).subspan(5))->data);
  const std::string greeting = from_hex(test::fixtures::server_greeting);
  // The greeting starts with AuthenticationSASLFinal.
  const std::size_t final_length = 1 + 0x36;
  out.server_final = std::string(
      as_text(decode_authentication(as_bytes(greeting).subspan(5, final_length - 5))->data));
  return out;
}

TEST_CASE("client fsm reproduces the RFC 7677 exchange", "[scram][client]") {
  scram_client_fsm client("pencil", "rOprNGfwEbeRWgbNEkqO", "user");
  CHECK(client.client_first_message() == rfc_client_first);
  const auto final = client.on_server_first(rfc_server_first);
  REQUIRE(final);
  CHECK(*final == rfc_client_final);
  CHECK_FALSE(client.done());
  CHECK_FALSE(client.on_server_final(rfc_server_final));
  CHECK(client.done());
}

TEST_CASE("client fsm reproduces psql's exchange with a real PostgreSQL", "[scram][client]") {
  const psql_exchange real = real_exchange();
  scram_client_fsm client("pencil", "C2mmBVQY8QOG9e25PIXczitW");
  CHECK(client.client_first_message() == real.client_first);
  const auto final = client.on_server_first(real.server_first);
  REQUIRE(final);
  CHECK(*final == real.client_final);
  CHECK_FALSE(client.on_server_final(real.server_final));
  CHECK(client.done());
}

TEST_CASE("client fsm with the wrong password rejects the server's signature", "[scram][client]") {
  const psql_exchange real = real_exchange();
  scram_client_fsm client("not pencil", "C2mmBVQY8QOG9e25PIXczitW");
  (void)client.client_first_message();
  const auto final = client.on_server_first(real.server_first);
  REQUIRE(final);
  CHECK(*final != real.client_final);
  // A server that accepted us without knowing our password would be an impostor.
  CHECK(client.on_server_final(real.server_final) == errc::auth_failed);
  CHECK_FALSE(client.done());
}

TEST_CASE("client fsm rejects bad server-first messages", "[scram][client]") {
  const auto [server_first, error] = GENERATE(table<std::string, errc>({
      {"", errc::malformed},
      {"r=abc,s=c2FsdA==,i=4096", errc::malformed},        // does not extend our nonce
      {"r=nonce,s=c2FsdA==,i=4096", errc::malformed},      // adds nothing to our nonce
      {"r=nonce\x01,s=c2FsdA==,i=4096", errc::malformed},  // not printable
      {"m=ext,r=nonceS,s=c2FsdA==,i=4096", errc::unsupported_mechanism},
      {"r=nonceS,s=c2FsdA=,i=4096", errc::malformed},  // bad base64
      {"r=nonceS,s=,i=4096", errc::malformed},         // empty salt
      {"r=nonceS,s=c2FsdA==,i=0", errc::malformed},
      {"r=nonceS,s=c2FsdA==,i=-1", errc::malformed},
      {"r=nonceS,s=c2FsdA==,i=abc", errc::malformed},
      {"r=nonceS,s=c2FsdA==", errc::malformed},         // no iterations
      {"r=nonceS,i=4096,s=c2FsdA==", errc::malformed},  // wrong order
      {"r=nonceS,s=c2FsdA==,i=4096,garbage", errc::malformed},
  }));
  INFO(server_first);
  scram_client_fsm client("pencil", "nonce");
  (void)client.client_first_message();
  CHECK(client.on_server_first(server_first).error == error);
  // The exchange is over after an error.
  CHECK(client.on_server_first("r=nonceS,s=c2FsdA==,i=1").error == errc::malformed);
}

TEST_CASE("client fsm accepts extensions after the iteration count", "[scram][client]") {
  scram_client_fsm client("pencil", "nonce");
  (void)client.client_first_message();
  CHECK(client.on_server_first("r=nonceS,s=c2FsdA==,i=1,x=future"));
}

TEST_CASE("client fsm rejects bad server-final messages", "[scram][client]") {
  const auto [server_final, error] = GENERATE(table<std::string, errc>({
      {"e=invalid-proof", errc::auth_failed},
      {"v=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", errc::auth_failed},  // wrong signature
      {"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4", errc::malformed},     // bad base64
      {"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl9", errc::malformed},        // short
      {"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=,x=1", errc::malformed},
      {"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=,", errc::malformed},
      {"x=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", errc::malformed},
      {"", errc::malformed},
  }));
  INFO(server_final);
  scram_client_fsm client("pencil", "rOprNGfwEbeRWgbNEkqO", "user");
  (void)client.client_first_message();
  REQUIRE(client.on_server_first(rfc_server_first));
  CHECK(client.on_server_final(server_final) == error);
  CHECK_FALSE(client.done());
  // No second chance, not even with the right signature.
  CHECK(client.on_server_final(rfc_server_final) == errc::malformed);
}

TEST_CASE("client fsm rejects calls out of order", "[scram][client]") {
  scram_client_fsm client("pencil", "nonce");
  CHECK(client.on_server_first("r=nonceS,s=c2FsdA==,i=1").error == errc::malformed);
  scram_client_fsm other("pencil", "nonce");
  (void)other.client_first_message();
  CHECK(other.on_server_final(rfc_server_final) == errc::malformed);
}

TEST_CASE("client fsm escapes ',' and '=' in the user name", "[scram][client]") {
  scram_client_fsm client("pencil", "nonce", "a,b=c");
  CHECK(client.client_first_message() == "n,,n=a=2Cb=3Dc,r=nonce");
}

TEST_CASE("client fsm draws a fresh 18-byte nonce when none is given", "[scram][client]") {
  scram_client_fsm a("pencil");
  scram_client_fsm b("pencil");
  const std::string first = a.client_first_message();
  CHECK(first.starts_with("n,,n=,r="));
  CHECK(first.size() == std::string_view("n,,n=,r=").size() + 24);  // base64 of 18 bytes
  CHECK(first != b.client_first_message());
}

}  // namespace
}  // namespace sluice::protocol
