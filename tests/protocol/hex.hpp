#pragma once

#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

// Hex <-> bytes for fixtures and failure messages. Whitespace in hex input is ignored, so
// fixtures can be laid out one field per line.

namespace sluice::protocol::test {

inline std::string from_hex(std::string_view hex) {
  const auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    throw std::invalid_argument("from_hex: not a hex digit");
  };
  std::string out;
  int high = -1;
  for (const char c : hex) {
    if (c == ' ' || c == '\n' || c == '\t') continue;
    if (high < 0) {
      high = nibble(c);
    } else {
      out.push_back(static_cast<char>((high << 4) | nibble(c)));
      high = -1;
    }
  }
  if (high >= 0) throw std::invalid_argument("from_hex: odd number of digits");
  return out;
}

inline std::string to_hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char c : bytes) {
    const auto byte = static_cast<unsigned char>(c);
    out.push_back(digits[byte >> 4]);
    out.push_back(digits[byte & 0x0f]);
  }
  return out;
}

inline std::string to_hex(std::span<const char> bytes) {
  return to_hex(std::string_view(bytes.data(), bytes.size()));
}

inline std::string to_hex(const std::string& bytes) {
  return to_hex(std::string_view(bytes));
}

inline std::span<const char> as_bytes(std::string_view text) {
  return {text.data(), text.size()};
}

inline std::string_view as_text(std::span<const char> bytes) {
  return {bytes.data(), bytes.size()};
}

}  // namespace sluice::protocol::test
