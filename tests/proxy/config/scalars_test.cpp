#include "proxy/config/scalars.hpp"

#include <catch2/catch.hpp>

using namespace sluice::config;
using namespace std::chrono_literals;

TEST_CASE("durations: units, plain seconds and decimals", "[config][scalars]") {
  const auto [text, expected] = GENERATE(table<std::string, duration>({
      {"250ms", 250ms},
      {"0ms", 0ms},
      {"30s", 30s},
      {"5m", 5min},
      {"5min", 5min},
      {"1h", 1h},
      {"0", 0ms},
      {"2", 2s},
      {"1.5", 1500ms},
      {"0.25s", 250ms},
      {"0.001", 1ms},
      {"1.5m", 90s},
      {"0.5h", 30min},
      {"1.000000000000", 1s},
      {"007s", 7s},
      {"86400", 24h},
  }));
  CAPTURE(text);
  const auto parsed = parse_duration(text);
  CHECK(parsed.problem.empty());
  REQUIRE(parsed.value);
  CHECK(*parsed.value == expected);
}

TEST_CASE("durations: malformed text is rejected with a reason", "[config][scalars]") {
  const auto [text, problem] = GENERATE(table<std::string, std::string>({
      {"", "expected a duration like 250ms, 30s, 5m, 1h or a number of seconds"},
      {"s", "expected a duration like 250ms, 30s, 5m, 1h or a number of seconds"},
      {"5x", "expected a duration like 250ms, 30s, 5m, 1h or a number of seconds"},
      {"5 s", "expected a duration like 250ms, 30s, 5m, 1h or a number of seconds"},
      {"5S", "expected a duration like 250ms, 30s, 5m, 1h or a number of seconds"},
      {"1e3", "expected a duration like 250ms, 30s, 5m, 1h or a number of seconds"},
      {".5", "expected a duration like 250ms, 30s, 5m, 1h or a number of seconds"},
      {"1.", "expected a duration like 250ms, 30s, 5m, 1h or a number of seconds"},
      {"1.2.3", "expected a duration like 250ms, 30s, 5m, 1h or a number of seconds"},
      {"off", "expected a duration like 250ms, 30s, 5m, 1h or a number of seconds"},
      {"-1s", "must not be negative"},
      {"0.5ms", "must be a whole number of milliseconds"},
      {"0.0001", "must be a whole number of milliseconds"},
      {"1.0000000001", "must be a whole number of milliseconds"},
      {"99999999999999999999h", "is too long"},
      {"2000000000h", "is too long"},
  }));
  CAPTURE(text);
  const auto parsed = parse_duration(text);
  CHECK_FALSE(parsed.value);
  CHECK(parsed.problem == problem);
}

TEST_CASE("byte sizes: units are powers of 1024 as in postgresql.conf", "[config][scalars]") {
  const auto [text, expected] = GENERATE(table<std::string, std::uint64_t>({
      {"0", 0},
      {"512", 512},
      {"512B", 512},
      {"1kB", 1024},
      {"64MB", 64ull << 20},
      {"2GB", 2ull << 30},
  }));
  CAPTURE(text);
  const auto parsed = parse_byte_size(text);
  REQUIRE(parsed.value);
  CHECK(*parsed.value == expected);
}

TEST_CASE("byte sizes: malformed text is rejected", "[config][scalars]") {
  const auto [text, problem] = GENERATE(table<std::string, std::string>({
      {"", "expected a size like 512B, 1kB, 64MB, 1GB or bytes"},
      {"1KB", "expected a size like 512B, 1kB, 64MB, 1GB or bytes"},
      {"1MiB", "expected a size like 512B, 1kB, 64MB, 1GB or bytes"},
      {"1.5MB", "expected a size like 512B, 1kB, 64MB, 1GB or bytes"},
      {"-1", "must not be negative"},
      {"99999999999999999999", "is too large"},
      {"99999999999GB", "is too large"},
  }));
  CAPTURE(text);
  const auto parsed = parse_byte_size(text);
  CHECK_FALSE(parsed.value);
  CHECK(parsed.problem == problem);
}

TEST_CASE("whole numbers", "[config][scalars]") {
  CHECK(parse_unsigned("0").value == 0u);
  CHECK(parse_unsigned("4294967295").value == 4294967295u);
  CHECK(parse_unsigned("4294967296").problem == "is too large");
  CHECK(parse_unsigned("-1").problem == "must not be negative");
  CHECK(parse_unsigned("1.5").problem == "expected a whole number");
  CHECK(parse_unsigned("").problem == "expected a whole number");
  CHECK(parse_unsigned("0x10").problem == "expected a whole number");
}

TEST_CASE("formatting round-trips through parsing", "[config][scalars]") {
  const auto bytes = GENERATE(std::uint64_t{0}, 1, 1000, 1024, 1536, 64ull << 20, 1ull << 30);
  CHECK(parse_byte_size(format_byte_size(bytes)).value == bytes);
  const auto ms = GENERATE(0, 1, 250, 1000, 1500, 60'000, 90'000, 3'600'000);
  CHECK(parse_duration(format_duration(duration{ms})).value == duration{ms});
  CHECK(format_byte_size(64ull << 20) == "64MB");
  CHECK(format_duration(10min) == "10m");
}
