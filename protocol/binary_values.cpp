#include "protocol/binary_values.hpp"

#include <charconv>
#include <vector>

namespace sluice::protocol {
namespace {

void put_big_endian(std::string& out, std::uint64_t value, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

template <class Int>
std::optional<Int> parse_int(std::string_view text) {
  Int value{};
  const auto* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  return value;
}

// numeric_send: int16 ndigits, int16 weight, uint16 sign, int16 dscale, then ndigits base-10000
// digits, most significant first, without trailing zero digits.
std::optional<std::string> numeric_binary(std::string_view text) {
  bool negative = false;
  if (!text.empty() && (text.front() == '-' || text.front() == '+')) {
    negative = text.front() == '-';
    text.remove_prefix(1);
  }
  if (text.empty()) return std::nullopt;
  for (char c : text)
    if (c < '0' || c > '9') return std::nullopt;
  while (text.size() > 1 && text.front() == '0') text.remove_prefix(1);
  std::vector<std::uint16_t> digits;  // least significant first
  for (std::size_t end = text.size(); end > 0;) {
    const std::size_t start = end >= 4 ? end - 4 : 0;
    std::uint16_t group = 0;
    for (std::size_t i = start; i < end; ++i)
      group = static_cast<std::uint16_t>(group * 10 + (text[i] - '0'));
    digits.push_back(group);
    end = start;
  }
  const auto weight = static_cast<std::int16_t>(digits.size() - 1);
  while (!digits.empty() && digits.back() == 0) digits.pop_back();  // the value 0
  std::size_t low = 0;
  while (low < digits.size() && digits[low] == 0) ++low;  // trailing zero digits
  std::string out;
  const auto ndigits = digits.size() - low;
  put_big_endian(out, ndigits, 2);
  put_big_endian(out, ndigits == 0 ? 0 : static_cast<std::uint16_t>(weight), 2);
  put_big_endian(out, negative && ndigits != 0 ? 0x4000 : 0x0000, 2);
  put_big_endian(out, 0, 2);  // dscale: whole numbers
  for (std::size_t i = digits.size(); i > low; --i) put_big_endian(out, digits[i - 1], 2);
  return out;
}

}  // namespace

std::optional<std::string> binary_value(std::uint32_t type, std::string_view text) {
  std::string out;
  switch (type) {
    case type_oid::text:
      return std::string(text);
    case type_oid::int4:
      if (auto v = parse_int<std::int32_t>(text)) {
        put_big_endian(out, static_cast<std::uint32_t>(*v), 4);
        return out;
      }
      return std::nullopt;
    case type_oid::int8:
      if (auto v = parse_int<std::int64_t>(text)) {
        put_big_endian(out, static_cast<std::uint64_t>(*v), 8);
        return out;
      }
      return std::nullopt;
    case type_oid::numeric:
      return numeric_binary(text);
    default:
      return std::nullopt;
  }
}

}  // namespace sluice::protocol
