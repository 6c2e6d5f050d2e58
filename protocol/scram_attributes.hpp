#pragma once

#include <charconv>
#include <optional>
#include <string_view>

// Parsing of SCRAM message attributes (RFC 5802 section 7): comma-separated "a=value" pairs where
// the attribute is one ASCII letter. Shared by the server and client fsms.

namespace sluice::protocol {

struct scram_attribute {
  char name;
  std::string_view value;
};

// Splits the next attribute off the front of `in` and consumes its trailing ',' if any.
// std::nullopt when the front is not "<letter>=".
inline std::optional<scram_attribute> next_scram_attribute(std::string_view& in) {
  if (in.size() < 2 || in[1] != '=') return std::nullopt;
  const char name = in[0];
  if (!((name >= 'a' && name <= 'z') || (name >= 'A' && name <= 'Z'))) return std::nullopt;
  const std::size_t comma = in.find(',', 2);
  const std::string_view value =
      in.substr(2, comma == std::string_view::npos ? in.npos : comma - 2);
  in.remove_prefix(comma == std::string_view::npos ? in.size() : comma + 1);
  return scram_attribute{name, value};
}

// The next attribute, which must be `name`.
inline std::optional<std::string_view> expect_scram_attribute(std::string_view& in, char name) {
  const auto attribute = next_scram_attribute(in);
  if (!attribute || attribute->name != name) return std::nullopt;
  return attribute->value;
}

// RFC 5802 "printable": %x21-2B / %x2D-7E, i.e. visible ASCII except ','. Nonces must be.
inline bool is_scram_printable(std::string_view value) {
  for (const char c : value) {
    if (c < 0x21 || c > 0x7e || c == ',') return false;
  }
  return true;
}

// The iteration count: decimal digits only, at least 1, fits in int.
inline std::optional<int> parse_scram_iterations(std::string_view text) {
  int value = 0;
  if (text.empty() || text[0] < '0' || text[0] > '9') return std::nullopt;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value < 1) return std::nullopt;
  return value;
}

}  // namespace sluice::protocol
