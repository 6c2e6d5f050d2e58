#pragma once
// How the text of one config scalar becomes a number: whole numbers, durations and byte
// sizes. Pure functions; the loader adds the key path and position to any problem.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/config/settings.hpp"

namespace sluice::config {

// A parsed value, or the reason the text is not one. `problem` never quotes the text: the
// caller decides whether the text may be echoed (it may be a secret).
template <class T>
struct scalar_result {
  std::optional<T> value;
  std::string problem;

  static scalar_result failure(std::string why) { return {std::nullopt, std::move(why)}; }
};

// A whole decimal number, no sign: "0", "6432".
scalar_result<std::uint64_t> parse_unsigned(std::string_view text);

// "250ms", "30s", "5m" (or "5min"), "1h", or a plain number of seconds; decimals are allowed
// ("1.5", "0.25s") as long as the result is a whole number of milliseconds.
scalar_result<duration> parse_duration(std::string_view text);

// "64MB", "1kB", "512B" or a plain number of bytes; kB, MB and GB are powers of 1024, as in
// postgresql.conf.
scalar_result<std::uint64_t> parse_byte_size(std::string_view text);

// The shortest exact spelling of `bytes` in parse_byte_size()'s units, e.g. "64MB".
std::string format_byte_size(std::uint64_t bytes);

// The shortest exact spelling of `d` in parse_duration()'s units, e.g. "10m", "250ms".
std::string format_duration(duration d);

}  // namespace sluice::config
