#include "proxy/config/tls_protocols.hpp"

#include <catch2/catch.hpp>

using namespace sluice::config;

TEST_CASE("tls protocols: a list becomes OpenSSL's min and max", "[config][tls]") {
  struct row {
    std::string_view list;
    std::optional<tls_version_range> expected;
  };
  const auto r = GENERATE(row{"TLSv1.2,TLSv1.3", tls_version_range{0x0303, 0x0304}},
                          row{"TLSv1.3, TLSv1.2", tls_version_range{0x0303, 0x0304}},
                          row{"TLSv1.3", tls_version_range{0x0304, 0x0304}},
                          row{" TLSv1.2 ", tls_version_range{0x0303, 0x0303}},
                          row{"TLSv1,TLSv1.1,TLSv1.2", tls_version_range{0x0301, 0x0303}},
                          row{"TLSv1.1,TLSv1.3", std::nullopt},  // a hole OpenSSL cannot express
                          row{"", std::nullopt}, row{"TLSv1.2,", std::nullopt},
                          row{"SSLv3", std::nullopt}, row{"tlsv1.2", std::nullopt});
  CAPTURE(r.list);
  CHECK(parse_tls_protocols(r.list) == r.expected);
}
