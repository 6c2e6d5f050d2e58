#include "proxy/config/scalars.hpp"

#include <array>
#include <limits>
#include <utility>

namespace sluice::config {
namespace {

// Durations beyond ~146 years are surely typos, and staying far below INT64_MAX
// milliseconds keeps every later addition to a time_point safe.
constexpr std::uint64_t max_duration_ms = std::uint64_t{1} << 52;

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

bool all_digits(std::string_view text) {
  if (text.empty()) return false;
  for (const char c : text) {
    if (!is_digit(c)) return false;
  }
  return true;
}

// Splits "30s" into "30" and "s" at the first character that is neither a digit nor '.'.
std::pair<std::string_view, std::string_view> split_number(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size() && (is_digit(text[i]) || text[i] == '.')) ++i;
  return {text.substr(0, i), text.substr(i)};
}

// Parses digits into `out`; false on anything else or on overflow past `limit`.
bool parse_digits(std::string_view digits, std::uint64_t limit, std::uint64_t& out) {
  if (digits.empty()) return false;
  std::uint64_t value = 0;
  for (const char c : digits) {
    if (!is_digit(c)) return false;
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (value > (limit - digit) / 10) return false;
    value = value * 10 + digit;
  }
  out = value;
  return true;
}

struct unit {
  std::string_view suffix;
  std::uint64_t scale;
};

constexpr std::array duration_units{
    unit{"ms", 1},     unit{"s", 1000},     unit{"", 1000},
    unit{"m", 60'000}, unit{"min", 60'000}, unit{"h", 3'600'000},
};

constexpr std::array byte_units{
    unit{"B", 1},
    unit{"", 1},
    unit{"kB", std::uint64_t{1} << 10},
    unit{"MB", std::uint64_t{1} << 20},
    unit{"GB", std::uint64_t{1} << 30},
};

constexpr std::string_view duration_syntax =
    "expected a duration like 250ms, 30s, 5m, 1h or a number of seconds";
constexpr std::string_view byte_size_syntax = "expected a size like 512B, 1kB, 64MB, 1GB or bytes";

}  // namespace

scalar_result<std::uint64_t> parse_unsigned(std::string_view text) {
  if (text.starts_with('-')) return scalar_result<std::uint64_t>::failure("must not be negative");
  const auto [number, rest] = split_number(text);
  std::uint64_t value = 0;
  if (!rest.empty() || number.find('.') != std::string_view::npos) {
    return scalar_result<std::uint64_t>::failure("expected a whole number");
  }
  if (!parse_digits(number, std::numeric_limits<std::uint32_t>::max(), value)) {
    return scalar_result<std::uint64_t>::failure(number.empty() ? "expected a whole number"
                                                                : "is too large");
  }
  return {value, {}};
}

scalar_result<duration> parse_duration(std::string_view text) {
  using result = scalar_result<duration>;
  if (text.starts_with('-')) return result::failure("must not be negative");
  const auto [number, suffix] = split_number(text);
  const unit* found = nullptr;
  for (const auto& u : duration_units) {
    if (u.suffix == suffix) found = &u;
  }
  const auto dot = number.find('.');
  const auto whole = number.substr(0, dot);
  auto fraction = dot == std::string_view::npos ? std::string_view{} : number.substr(dot + 1);
  if (found == nullptr || !all_digits(whole) ||
      (dot != std::string_view::npos && !all_digits(fraction))) {
    return result::failure(std::string(duration_syntax));
  }

  while (fraction.ends_with('0')) fraction.remove_suffix(1);
  // Every unit is at most 3.6e6 ms, so 10 or more significant decimals can never come out
  // as whole milliseconds; capping here also keeps the arithmetic below within 64 bits.
  if (fraction.size() > 9) return result::failure("must be a whole number of milliseconds");
  std::uint64_t whole_value = 0;
  std::uint64_t fraction_value = 0;
  if (!parse_digits(whole, max_duration_ms / found->scale, whole_value)) {
    return result::failure("is too long");
  }
  if (!fraction.empty()) parse_digits(fraction, 999'999'999, fraction_value);
  std::uint64_t fraction_scale = 1;
  for (std::size_t i = 0; i < fraction.size(); ++i) fraction_scale *= 10;
  const std::uint64_t fraction_ms = fraction_value * found->scale;  // < 1e9 * 3.6e6 < 2^62
  if (fraction_ms % fraction_scale != 0) {
    return result::failure("must be a whole number of milliseconds");
  }
  const std::uint64_t total = whole_value * found->scale + fraction_ms / fraction_scale;
  if (total > max_duration_ms) return result::failure("is too long");
  return {duration{static_cast<duration::rep>(total)}, {}};
}

scalar_result<std::uint64_t> parse_byte_size(std::string_view text) {
  using result = scalar_result<std::uint64_t>;
  if (text.starts_with('-')) return result::failure("must not be negative");
  const auto [number, suffix] = split_number(text);
  const unit* found = nullptr;
  for (const auto& u : byte_units) {
    if (u.suffix == suffix) found = &u;
  }
  if (found == nullptr || number.empty() || number.find('.') != std::string_view::npos) {
    return result::failure(std::string(byte_size_syntax));
  }
  std::uint64_t value = 0;
  if (!parse_digits(number, std::numeric_limits<std::uint64_t>::max() / found->scale, value)) {
    return result::failure("is too large");
  }
  return {value * found->scale, {}};
}

std::string format_byte_size(std::uint64_t bytes) {
  for (auto it = byte_units.rbegin(); it != byte_units.rend(); ++it) {
    if (it->suffix.empty()) continue;
    if (bytes != 0 && bytes % it->scale == 0) {
      return std::to_string(bytes / it->scale) + std::string(it->suffix);
    }
  }
  return std::to_string(bytes) + "B";
}

std::string format_duration(duration d) {
  const auto ms = static_cast<std::uint64_t>(d.count());
  if (ms == 0) return "0";
  for (const auto& u : {unit{"h", 3'600'000}, unit{"m", 60'000}, unit{"s", 1000}}) {
    if (ms % u.scale == 0) return std::to_string(ms / u.scale) + std::string(u.suffix);
  }
  return std::to_string(ms) + "ms";
}

}  // namespace sluice::config
