#include "protocol/byte_reader.hpp"

#include <catch2/catch.hpp>

#include "tests/protocol/hex.hpp"

namespace sluice::protocol {
namespace {

using test::as_bytes;
using test::from_hex;

TEST_CASE("byte_reader reads big-endian integers and strings", "[byte_reader]") {
  const std::string in = from_hex("ff 0102 80000001 fffffffe 616263 00 7a");
  byte_reader r(as_bytes(in));
  CHECK(r.read_byte() == '\xff');
  CHECK(r.read_int16() == 0x0102);
  CHECK(r.read_uint32() == 0x80000001u);
  CHECK(r.read_int32() == -2);
  CHECK(r.read_cstring() == "abc");
  CHECK(r.remaining() == 1);
  CHECK(test::as_text(r.read_rest()) == "z");
  r.expect_end();
  CHECK_FALSE(r.failed());
  CHECK_FALSE(r.error());
}

TEST_CASE("byte_reader fails without reading past the end, and the first error sticks",
          "[byte_reader]") {
  SECTION("integer past the end is truncated") {
    const std::string in = from_hex("000102");
    byte_reader r(as_bytes(in));
    CHECK(r.read_int32() == 0);
    CHECK(r.error() == errc::truncated);
    CHECK(r.offset() == 0);
    CHECK(r.read_cstring().empty());  // Sticky: no further reads.
    CHECK(r.error() == errc::truncated);
  }
  SECTION("string without NUL is malformed") {
    const std::string in = "abc";
    byte_reader r(as_bytes(in));
    CHECK(r.read_cstring().empty());
    CHECK(r.error() == errc::malformed);
    CHECK(r.read_byte() == '\0');
    CHECK(r.error() == errc::malformed);
  }
  SECTION("read_bytes past the end is truncated") {
    const std::string in = "ab";
    byte_reader r(as_bytes(in));
    CHECK(r.read_bytes(3).empty());
    CHECK(r.error() == errc::truncated);
  }
  SECTION("leftover bytes are malformed") {
    const std::string in = from_hex("00 00");
    byte_reader r(as_bytes(in));
    CHECK(r.read_byte() == '\0');
    r.expect_end();
    CHECK(r.error() == errc::malformed);
  }
  SECTION("empty input") {
    byte_reader r({});
    r.expect_end();
    CHECK_FALSE(r.failed());
    CHECK(r.read_byte() == '\0');
    CHECK(r.error() == errc::truncated);
  }
  SECTION("string from a null span is malformed, without calling memchr on null") {
    // UBSan caught memchr(nullptr, ...) here once, through sasl_mechanisms({}).
    byte_reader r(std::span<const char>{});
    CHECK(r.read_cstring().empty());
    CHECK(r.error() == errc::malformed);
  }
}

}  // namespace
}  // namespace sluice::protocol
