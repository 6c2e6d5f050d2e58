#pragma once

#include <cstdint>
#include <string>
#include <string_view>

// Builds fixture messages field by field, independently of the library's own builders, so a
// round-trip test checks the library against a second implementation and not against itself.
// Lengths are computed unless overridden, so tests can also write deliberately wrong ones.

namespace sluice::protocol::test {

class message_builder {
 public:
  message_builder& byte(char value) {
    body_.push_back(value);
    return *this;
  }
  message_builder& int16(std::int16_t value) {
    return big_endian(static_cast<std::uint16_t>(value), 2);
  }
  message_builder& int32(std::int32_t value) {
    return big_endian(static_cast<std::uint32_t>(value), 4);
  }
  message_builder& uint32(std::uint32_t value) { return big_endian(value, 4); }
  message_builder& cstr(std::string_view value) {
    body_.append(value);
    body_.push_back('\0');
    return *this;
  }
  message_builder& raw(std::string_view value) {
    body_.append(value);
    return *this;
  }

  const std::string& body() const { return body_; }

  // Byte1(type) Int32(length) body, with the correct length.
  std::string typed(char type) const {
    return typed_with_length(type, static_cast<std::uint32_t>(body_.size() + 4));
  }
  std::string typed_with_length(char type, std::uint32_t length) const {
    std::string out(1, type);
    append_length(out, length);
    return out + body_;
  }

  // Int32(length) body, for startup-phase packets.
  std::string untyped() const {
    return untyped_with_length(static_cast<std::uint32_t>(body_.size() + 4));
  }
  std::string untyped_with_length(std::uint32_t length) const {
    std::string out;
    append_length(out, length);
    return out + body_;
  }

 private:
  static void append_length(std::string& out, std::uint32_t length) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(length >> shift));
  }

  message_builder& big_endian(std::uint32_t value, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) body_.push_back(static_cast<char>(value >> (8 * i)));
    return *this;
  }

  std::string body_;
};

}  // namespace sluice::protocol::test
