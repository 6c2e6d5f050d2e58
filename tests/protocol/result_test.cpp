#include "protocol/result.hpp"

#include <catch2/catch.hpp>
#include <string>

namespace sluice::protocol {
namespace {

TEST_CASE("result holds a value or an error", "[result]") {
  SECTION("success") {
    result<std::string> r{"abc"};
    REQUIRE(r);
    CHECK(*r == "abc");
    CHECK(r->size() == 3);
    r->append("d");
    CHECK(r.value == "abcd");
  }
  SECTION("failure") {
    const auto r = make_failure<std::string>(errc::truncated);
    CHECK_FALSE(r);
    CHECK(r.error == errc::truncated);
  }
  SECTION("failure from an error_code") {
    const auto r = make_failure<int>(make_error_code(errc::auth_failed));
    CHECK_FALSE(r);
    CHECK(r.error == errc::auth_failed);
  }
}

}  // namespace
}  // namespace sluice::protocol
