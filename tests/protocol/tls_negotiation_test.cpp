#include "protocol/tls_negotiation.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace sluice::protocol {
namespace {

// An ALPN protocol_name_list from names.
std::vector<unsigned char> alpn_list(std::initializer_list<std::string_view> names) {
  std::vector<unsigned char> out;
  for (auto name : names) {
    out.push_back(static_cast<unsigned char>(name.size()));
    out.insert(out.end(), name.begin(), name.end());
  }
  return out;
}

std::string text_of(std::span<const unsigned char> bytes) {
  return {bytes.begin(), bytes.end()};
}

TEST_CASE("alpn: postgresql is picked from wherever it is in the list", "[tls][alpn]") {
  const auto list =
      GENERATE(alpn_list({"postgresql"}), alpn_list({"h2", "postgresql"}),
               alpn_list({"postgresql", "http/1.1"}), alpn_list({"x", "postgresql", "postgresql"}));
  const auto chosen = choose_alpn(list);
  REQUIRE(chosen.choice == alpn_choice::selected);
  CHECK(text_of(chosen.protocol) == "postgresql");
  // It points into the client's list, as OpenSSL's select callback requires.
  CHECK(chosen.protocol.data() >= list.data());
  CHECK(chosen.protocol.data() + chosen.protocol.size() <= list.data() + list.size());
}

TEST_CASE("alpn: other protocols only are refused", "[tls][alpn]") {
  const auto list = GENERATE(alpn_list({"h2"}), alpn_list({"http/1.1", "postgres"}),
                             alpn_list({"postgresqlx"}), alpn_list({"PostgreSQL"}));
  CHECK(choose_alpn(list).choice == alpn_choice::no_overlap);
}

TEST_CASE("alpn: a malformed list is refused", "[tls][alpn]") {
  const auto list = GENERATE(std::vector<unsigned char>{}, std::vector<unsigned char>{0},
                             std::vector<unsigned char>{11, 'p', 'o', 's', 't'},
                             // a well-formed name, then a length running past the end
                             [] {
                               auto l = alpn_list({"postgresql"});
                               l.push_back(5);
                               return l;
                             }());
  CHECK(choose_alpn(list).choice == alpn_choice::malformed);
}

TEST_CASE("alpn: after the handshake, as PostgreSQL 17 decides", "[tls][alpn]") {
  struct row {
    tls_entry entry;
    std::optional<std::string_view> negotiated;
    bool acceptable;
  };
  const auto r =
      GENERATE(row{tls_entry::ssl_request, std::nullopt, true},
               row{tls_entry::ssl_request, "postgresql", true},
               row{tls_entry::ssl_request, "h2", false}, row{tls_entry::direct, "postgresql", true},
               row{tls_entry::direct, std::nullopt, false}, row{tls_entry::direct, "h2", false});
  CHECK(alpn_acceptable(r.entry, r.negotiated) == r.acceptable);
}

TEST_CASE("direct tls: a ClientHello is told apart from a startup packet", "[tls]") {
  CHECK(starts_direct_tls(0x16));
  CHECK_FALSE(starts_direct_tls(0x00));  // a startup packet's length, high byte
  CHECK_FALSE(starts_direct_tls('Q'));
}

}  // namespace
}  // namespace sluice::protocol
