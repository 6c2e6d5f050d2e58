#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <span>
#include <string>
#include <string_view>

namespace sluice::protocol {

// Flow: construct (writes the type byte and a placeholder length) -> append fields -> finish()
// (patches the length, which counts itself but not the type byte). Appending straight into the
// caller's buffer avoids a temporary per message on the relay path.
// Field encodings: https://www.postgresql.org/docs/15/protocol-message-types.html
class message_writer {
 public:
  // A typed message: Byte1(type) Int32(length) ...
  message_writer(std::string& out, char type) : out_(out) {
    out_.push_back(type);
    start_ = out_.size();
    out_.append(4, '\0');
  }

  // An untyped message (StartupMessage, SSLRequest, CancelRequest): Int32(length) ...
  static message_writer untyped(std::string& out) { return message_writer(out); }

  message_writer(const message_writer&) = delete;
  message_writer& operator=(const message_writer&) = delete;
  // An unfinished writer is a bug, unless an allocation threw while appending.
  ~message_writer() { assert(finished_ || std::uncaught_exceptions() > 0); }

  message_writer& byte(char value) {
    out_.push_back(value);
    return *this;
  }

  message_writer& int16(std::int16_t value) {
    return big_endian(static_cast<std::uint16_t>(value), 2);
  }
  message_writer& uint16(std::uint16_t value) { return big_endian(value, 2); }
  message_writer& int32(std::int32_t value) {
    return big_endian(static_cast<std::uint32_t>(value), 4);
  }
  message_writer& uint32(std::uint32_t value) { return big_endian(value, 4); }

  // String: the bytes plus a NUL. The value must not contain a NUL itself, or the receiver would
  // split it into two fields.
  message_writer& cstring(std::string_view value) {
    assert(value.find('\0') == std::string_view::npos);
    out_.append(value);
    out_.push_back('\0');
    return *this;
  }

  // Byten: raw bytes, no terminator.
  message_writer& bytes(std::string_view value) {
    out_.append(value);
    return *this;
  }
  message_writer& bytes(std::span<const char> value) {
    out_.append(value.data(), value.size());
    return *this;
  }

  void finish() {
    const auto length = static_cast<std::uint32_t>(out_.size() - start_);
    for (std::size_t i = 0; i < 4; ++i) {
      out_[start_ + i] = static_cast<char>(length >> (8 * (3 - i)));
    }
    finished_ = true;
  }

 private:
  explicit message_writer(std::string& out) : out_(out), start_(out.size()) {
    out_.append(4, '\0');
  }

  message_writer& big_endian(std::uint32_t value, std::size_t bytes) {
    for (std::size_t i = 0; i < bytes; ++i) {
      out_.push_back(static_cast<char>(value >> (8 * (bytes - 1 - i))));
    }
    return *this;
  }

  std::string& out_;
  std::size_t start_ = 0;
  bool finished_ = false;
};

}  // namespace sluice::protocol
