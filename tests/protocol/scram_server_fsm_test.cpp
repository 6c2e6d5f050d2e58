#include "protocol/scram_server_fsm.hpp"

#include <catch2/catch.hpp>

#include "protocol/backend_messages.hpp"
#include "protocol/base64.hpp"
#include "protocol/frontend_messages.hpp"
#include "protocol/scram_client_fsm.hpp"
#include "protocol/scram_crypto.hpp"
#include "tests/protocol/fixtures.hpp"
#include "tests/protocol/hex.hpp"

namespace sluice::protocol {
namespace {

using test::as_bytes;
using test::as_text;
using test::from_hex;

// RFC 7677 section 3.
constexpr std::string_view rfc_client_first = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view rfc_server_nonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
constexpr std::string_view rfc_server_first =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
constexpr std::string_view rfc_client_final =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
constexpr std::string_view rfc_server_final = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

scram_verifier rfc_verifier() {
  return make_scram_verifier("pencil", *base64_decode("W22ZaJ0SNY7soEsUEjb6gQ=="), 4096);
}

// A second, minimal SCRAM client built from the primitives, for client-final messages the client
// fsm never sends (other gs2 headers, extensions).
std::string client_final_for(std::string_view password, std::string_view client_first_bare,
                             std::string_view server_first, std::string_view without_proof,
                             const scram_verifier& verifier) {
  const scram_key salted = scram_salted_password(password, verifier.salt, verifier.iterations);
  const scram_key client_key = scram_client_key(salted);
  const std::string auth_message = std::string(client_first_bare) + "," +
                                   std::string(server_first) + "," + std::string(without_proof);
  const scram_key proof = scram_xor(client_key, scram_hmac(scram_sha256(client_key), auth_message));
  return std::string(without_proof) + ",p=" + base64_encode(scram_key_bytes(proof));
}

TEST_CASE("server fsm reproduces the RFC 7677 exchange", "[scram][server]") {
  scram_server_fsm server(rfc_verifier(), std::string(rfc_server_nonce));
  const auto first = server.on_client_first(rfc_client_first);
  REQUIRE(first);
  CHECK(*first == rfc_server_first);
  const auto final = server.on_client_final(rfc_client_final);
  REQUIRE(final);
  CHECK(*final == rfc_server_final);
  CHECK(server.done());
}

TEST_CASE("server fsm answers psql exactly as PostgreSQL did", "[scram][server]") {
  const auto verifier = parse_scram_verifier(test::fixtures::pencil_verifier);
  REQUIRE(verifier);
  // PostgreSQL's half of the combined nonce in the captured server-first.
  scram_server_fsm server(*verifier, "2DNswmBnL5KB5wQK5rndA4G6");

  const std::string initial = from_hex(test::fixtures::psql_sasl_initial_response);
  const auto first =
      server.on_client_first(decode_sasl_initial_response(as_bytes(initial).subspan(5))->data);
  REQUIRE(first);
  const std::string cont = from_hex(test::fixtures::auth_sasl_continue);
  CHECK(*first == as_text(decode_authentication(as_bytes(cont).subspan(5))->data));

  const std::string response = from_hex(test::fixtures::psql_sasl_response);
  const auto final =
      server.on_client_final(decode_sasl_response(as_bytes(response).subspan(5))->data);
  REQUIRE(final);
  CHECK(*final == "v=cRLHTKBgYluAUMKhjMqn6VTMhG91T/PHf1FgaP+LgUo=");
  CHECK(server.done());
}

TEST_CASE("server fsm and client fsm agree", "[scram][server][client]") {
  const std::string password = GENERATE(as<std::string>{}, "pencil", "", "with,comma=and space",
                                        std::string(200, 'p'), "\xc3\xa9t\xc3\xa9");
  const std::string salt = GENERATE(as<std::string>{}, "0123456789abcdef", std::string(1, '\0'));
  scram_server_fsm server(make_scram_verifier(password, salt, 64));
  scram_client_fsm client(password);

  const auto server_first = server.on_client_first(client.client_first_message());
  REQUIRE(server_first);
  const auto client_final = client.on_server_first(*server_first);
  REQUIRE(client_final);
  const auto server_final = server.on_client_final(*client_final);
  REQUIRE(server_final);
  CHECK_FALSE(client.on_server_final(*server_final));
  CHECK(server.done());
  CHECK(client.done());
}

TEST_CASE("server fsm fails a client with the wrong password", "[scram][server]") {
  scram_server_fsm server(make_scram_verifier("pencil", "salt", 64));
  scram_client_fsm client("pen");
  const auto server_first = server.on_client_first(client.client_first_message());
  REQUIRE(server_first);
  const auto client_final = client.on_server_first(*server_first);
  REQUIRE(client_final);
  CHECK(server.on_client_final(*client_final).error == errc::auth_failed);
  CHECK_FALSE(server.done());
  // One attempt per exchange.
  CHECK(server.on_client_final(*client_final).error == errc::malformed);
}

TEST_CASE("server fsm rejects bad client-first messages", "[scram][server]") {
  const auto [client_first, error] = GENERATE(table<std::string, errc>({
      {"p=tls-server-end-point,,n=,r=abc", errc::unsupported_mechanism},
      {"n,a=admin,n=,r=abc", errc::unsupported_mechanism},
      {"n,,m=ext,n=,r=abc", errc::unsupported_mechanism},
      {"", errc::malformed},
      {"n", errc::malformed},
      {"n,", errc::malformed},
      {"n,,", errc::malformed},
      {"x,,n=,r=abc", errc::malformed},
      {"n,x,n=,r=abc", errc::malformed},
      {"n,,r=abc", errc::malformed},        // no user name
      {"n,,n=,r=", errc::malformed},        // empty nonce
      {"n,,n=", errc::malformed},           // no nonce
      {"n,,n=,r=ab\x7f", errc::malformed},  // nonce not printable
      {"n,,n=,r=abc,garbage", errc::malformed},
  }));
  INFO(client_first);
  scram_server_fsm server(rfc_verifier(), "server");
  CHECK(server.on_client_first(client_first).error == error);
  CHECK(server.on_client_first(rfc_client_first).error == errc::malformed);  // No retry.
}

TEST_CASE("server fsm accepts gs2 'y' and extensions", "[scram][server]") {
  const scram_verifier verifier = rfc_verifier();
  const bool y_flag = GENERATE(false, true);
  const bool with_extension = GENERATE(false, true);
  const std::string gs2 = y_flag ? "y,," : "n,,";
  const std::string bare =
      std::string("n=user,r=rOprNGfwEbeRWgbNEkqO") + (with_extension ? ",x=client-ext" : "");
  scram_server_fsm server(verifier, std::string(rfc_server_nonce));
  const auto server_first = server.on_client_first(gs2 + bare);
  REQUIRE(server_first);
  const std::string without_proof = "c=" + base64_encode(gs2) + ",r=rOprNGfwEbeRWgbNEkqO" +
                                    std::string(rfc_server_nonce) +
                                    (with_extension ? ",x=final-ext" : "");
  const auto final = server.on_client_final(
      client_final_for("pencil", bare, *server_first, without_proof, verifier));
  REQUIRE(final);
  CHECK(server.done());
}

// Channel binding (SCRAM-SHA-256-PLUS, tls-server-end-point), as PostgreSQL checks it.
constexpr std::string_view cb_data = "\x01\x02certificate-hash\xff";

scram_channel_binding offered(bool plus_selected) {
  return {.tls_server_end_point = std::string(cb_data), .plus_selected = plus_selected};
}

TEST_CASE("server fsm verifies tls-server-end-point channel binding", "[scram][server][tls]") {
  const auto verifier = rfc_verifier();
  scram_server_fsm server(verifier, "srv", offered(true));
  const std::string header = "p=tls-server-end-point,,";
  const std::string bare = "n=,r=abc";
  const auto first = server.on_client_first(header + bare);
  REQUIRE(first);
  const std::string without_proof =
      "c=" + base64_encode(header + std::string(cb_data)) + ",r=abcsrv";
  const auto final =
      server.on_client_final(client_final_for("pencil", bare, *first, without_proof, verifier));
  REQUIRE(final);
  CHECK(server.done());
}

TEST_CASE("server fsm refuses binding data of another certificate", "[scram][server][tls]") {
  // What a client sees behind a man in the middle: its hash is of the attacker's certificate.
  const auto verifier = rfc_verifier();
  scram_server_fsm server(verifier, "srv", offered(true));
  const std::string header = "p=tls-server-end-point,,";
  const auto first = server.on_client_first(header + "n=,r=abc");
  REQUIRE(first);
  const std::string without_proof = "c=" + base64_encode(header + "other-hash") + ",r=abcsrv";
  const auto final = server.on_client_final(
      client_final_for("pencil", "n=,r=abc", *first, without_proof, verifier));
  REQUIRE_FALSE(final);
  CHECK(final.error == errc::malformed);
}

TEST_CASE("server fsm checks the gs2 flag against what was offered and chosen",
          "[scram][server][tls]") {
  struct row {
    bool offered;
    bool plus_selected;
    std::string_view client_first;
    errc expected;  // errc::ok: accepted
  };
  const auto r = GENERATE(
      row{false, false, "n,,n=,r=abc", errc::ok}, row{false, false, "y,,n=,r=abc", errc::ok},
      row{false, false, "p=tls-server-end-point,,n=,r=abc", errc::unsupported_mechanism},
      row{true, true, "p=tls-server-end-point,,n=,r=abc", errc::ok},
      row{true, true, "p=tls-unique,,n=,r=abc", errc::unsupported_mechanism},
      row{true, true, "n,,n=,r=abc", errc::malformed},  // -PLUS chosen, no binding data
      row{true, true, "p=tls-server-end-point", errc::malformed},
      row{true, true, "p=tls-server-end-point,a=x,n=,r=abc", errc::unsupported_mechanism},
      row{true, false, "n,,n=,r=abc", errc::ok},         // TLS, but the client wants no binding
      row{true, false, "y,,n=,r=abc", errc::malformed},  // a downgrade: -PLUS was stripped
      row{true, false, "p=tls-server-end-point,,n=,r=abc", errc::malformed});
  CAPTURE(r.client_first, r.offered, r.plus_selected);
  std::optional<scram_channel_binding> binding;
  if (r.offered) binding = offered(r.plus_selected);
  scram_server_fsm server(rfc_verifier(), "srv", binding);
  const auto first = server.on_client_first(r.client_first);
  if (r.expected == errc::ok) {
    CHECK(first);
  } else {
    REQUIRE_FALSE(first);
    CHECK(first.error == r.expected);
  }
}

TEST_CASE("server fsm rejects bad client-final messages", "[scram][server]") {
  const std::string nonce = "rOprNGfwEbeRWgbNEkqO" + std::string(rfc_server_nonce);
  const std::string proof = "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
  const auto [client_final, error] = GENERATE_COPY(table<std::string, errc>({
      {"c=eSws,r=" + nonce + "," + proof, errc::malformed},                  // gs2 flag changed
      {"c=cD10bHMtdW5pcXVlLCw=,r=" + nonce + "," + proof, errc::malformed},  // binding data
      {"c=biws,r=" + nonce + "x," + proof, errc::malformed},                 // nonce changed
      {"c=biws,r=rOprNGfwEbeRWgbNEkqO," + proof, errc::malformed},           // server nonce dropped
      {"r=" + nonce + "," + proof, errc::malformed},                         // no channel binding
      {"c=biws,r=" + nonce, errc::malformed},                                // no proof
      {"c=biws,r=" + nonce + ",p=", errc::malformed},                        // empty proof
      {"c=biws,r=" + nonce + ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7A=", errc::malformed},
      {"c=biws,r=" + nonce + ",p=not*base64", errc::malformed},
      {"c=biws,r=" + nonce + "," + proof + ",x=after", errc::malformed},  // proof must be last
      {"c=biws,r=" + nonce + "," + proof + ",", errc::malformed},
      {"c=biws,r=" + nonce + ",p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", errc::auth_failed},
      {"", errc::malformed},
  }));
  INFO(client_final);
  scram_server_fsm server(rfc_verifier(), std::string(rfc_server_nonce));
  REQUIRE(server.on_client_first(rfc_client_first));
  CHECK(server.on_client_final(client_final).error == error);
  CHECK_FALSE(server.done());
}

TEST_CASE("server fsm rejects calls out of order", "[scram][server]") {
  scram_server_fsm server(rfc_verifier(), std::string(rfc_server_nonce));
  CHECK(server.on_client_final(rfc_client_final).error == errc::malformed);
  CHECK(server.on_client_first(rfc_client_first).error == errc::malformed);
}

TEST_CASE("server fsm draws a fresh 18-byte nonce when none is given", "[scram][server]") {
  scram_server_fsm a(rfc_verifier());
  scram_server_fsm b(rfc_verifier());
  const auto first_a = a.on_client_first(rfc_client_first);
  const auto first_b = b.on_client_first(rfc_client_first);
  REQUIRE(first_a);
  REQUIRE(first_b);
  const std::string_view prefix = "r=rOprNGfwEbeRWgbNEkqO";
  CHECK(first_a->starts_with(prefix));
  CHECK(first_a->find(",s=") == prefix.size() + 24);  // base64 of 18 bytes
  CHECK(*first_a != *first_b);
}

}  // namespace
}  // namespace sluice::protocol
