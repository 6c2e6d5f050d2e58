#include "pool/idle_server_messages.hpp"

#include <catch2/catch.hpp>

#include "tests/pool/wire_fixtures.hpp"

namespace sluice::pool {
namespace {

using namespace testing;

idle_server_scan scan(const std::string& bytes) {
  return scan_idle_server_bytes({bytes.data(), bytes.size()}, max_message);
}

TEST_CASE("idle server: notices, notifications and ParameterStatus keep it fit",
          "[pool][idle_server]") {
  const std::string said = be::notice("checkpoint soon") + be::notification() +
                           be::parameter_status("TimeZone", "Europe/Paris");
  const auto result = scan(said);
  CHECK(result.fit);
  CHECK(result.consumed == said.size());
  REQUIRE(result.parameter_status.size() == 1);
  CHECK(result.parameter_status[0].first == "TimeZone");
  CHECK(result.parameter_status[0].second == "Europe/Paris");
}

TEST_CASE("idle server: a FATAL or anything unasked for makes it unfit", "[pool][idle_server]") {
  std::string fatal;
  protocol::append_error_response(fatal, {.severity = "FATAL",
                                          .sqlstate = "57P01",
                                          .message = "terminating connection due to "
                                                     "administrator command"});
  CHECK_FALSE(scan(be::notice("bye") + fatal).fit);
  CHECK_FALSE(scan(be::ready()).fit);
  CHECK_FALSE(scan(std::string("N\0\0\0\x01", 5)).fit);  // a bad length
}

TEST_CASE("idle server: a message still arriving is left for later", "[pool][idle_server]") {
  const auto notice = be::notice("half");
  const auto result = scan(be::notification() + notice.substr(0, 6));
  CHECK(result.fit);
  CHECK(result.consumed == be::notification().size());
}

}  // namespace
}  // namespace sluice::pool
