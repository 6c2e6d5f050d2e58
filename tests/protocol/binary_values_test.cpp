// Binary result values: byte fixtures for int4, int8 and numeric as PostgreSQL's send functions
// write them (numeric fixtures from `SELECT numeric_send(n)` on PostgreSQL 15).
#include "protocol/binary_values.hpp"

#include <catch2/catch.hpp>

#include "tests/protocol/hex.hpp"

using namespace sluice::protocol;

TEST_CASE("binary values: integers are big-endian", "[protocol][binary]") {
  CHECK(binary_value(type_oid::int4, "1") == std::string("\x00\x00\x00\x01", 4));
  CHECK(binary_value(type_oid::int4, "-2") == std::string("\xff\xff\xff\xfe", 4));
  CHECK(binary_value(type_oid::int8, "4294967296") ==
        std::string("\x00\x00\x00\x01\x00\x00\x00\x00", 8));
  CHECK_FALSE(binary_value(type_oid::int4, "4294967296"));  // out of range
  CHECK_FALSE(binary_value(type_oid::int4, "1.5"));
  CHECK_FALSE(binary_value(type_oid::int8, ""));
  CHECK(binary_value(type_oid::text, "abc") == "abc");
  CHECK_FALSE(binary_value(16, "t"));  // bool: none here
}

TEST_CASE("binary values: numeric as numeric_send writes it", "[protocol][binary]") {
  const auto [text, hex] = GENERATE(table<std::string, std::string>({
      {"0", "0000 0000 0000 0000"},
      {"7", "0001 0000 0000 0000 0007"},
      {"10000", "0001 0001 0000 0000 0001"},
      {"123456789", "0003 0002 0000 0000 0001 0929 1a85"},
      {"-42", "0001 0000 4000 0000 002a"},
      {"00012", "0001 0000 0000 0000 000c"},
  }));
  CAPTURE(text);
  CHECK(binary_value(type_oid::numeric, text) == sluice::protocol::test::from_hex(hex));
  CHECK_FALSE(binary_value(type_oid::numeric, "1.5"));
  CHECK_FALSE(binary_value(type_oid::numeric, "-"));
}
