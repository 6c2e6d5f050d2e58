#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <system_error>

#include "protocol/errc.hpp"

namespace sluice::protocol {

// Flow: wrap one message body -> read fields front to back -> expect_end() -> check error().
// The first failure sticks: later reads return zero values and consume nothing, so a decoder can
// read every field and test once at the end without ever touching a byte past the body.
// Field encodings: https://www.postgresql.org/docs/15/protocol-message-types.html
class byte_reader {
 public:
  explicit byte_reader(std::span<const char> in) noexcept : in_(in) {}

  // Int8 as a char: message type codes and enum bytes ('S'/'P', 'I'/'T'/'E').
  char read_byte() noexcept {
    if (!take(1)) return '\0';
    return in_[pos_ - 1];
  }

  std::uint16_t read_uint16() noexcept { return static_cast<std::uint16_t>(read_be(2)); }
  std::int16_t read_int16() noexcept { return static_cast<std::int16_t>(read_uint16()); }
  std::uint32_t read_uint32() noexcept { return read_be(4); }
  std::int32_t read_int32() noexcept { return static_cast<std::int32_t>(read_uint32()); }

  // String: bytes up to a NUL, which is consumed but not returned. No NUL before the end of the
  // body is errc::malformed (the protocol always terminates strings, so the body is broken).
  std::string_view read_cstring() noexcept {
    if (failed()) return {};
    if (remaining() == 0) {  // Also keeps a null data() away from memchr.
      fail(errc::malformed);
      return {};
    }
    const char* begin = in_.data() + pos_;
    const void* nul = std::memchr(begin, '\0', remaining());
    if (nul == nullptr) {
      fail(errc::malformed);
      return {};
    }
    const auto length = static_cast<std::size_t>(static_cast<const char*>(nul) - begin);
    pos_ += length + 1;
    return {begin, length};
  }

  // Byten: exactly n bytes; fewer left is errc::truncated.
  std::span<const char> read_bytes(std::size_t n) noexcept {
    if (!take(n)) return {};
    return in_.subspan(pos_ - n, n);
  }

  // Everything not yet consumed (for fields that extend to the end of the message).
  std::span<const char> read_rest() noexcept {
    if (failed()) return {};
    auto rest = in_.subspan(pos_);
    pos_ = in_.size();
    return rest;
  }

  // Bytes after the last field mean the sender and we disagree about the layout: errc::malformed.
  void expect_end() noexcept {
    if (!failed() && pos_ != in_.size()) fail(errc::malformed);
  }

  void fail(errc e) noexcept {
    if (!failed()) error_ = e;
  }

  bool failed() const noexcept { return error_ != errc::ok; }
  std::error_code error() const noexcept {
    return failed() ? make_error_code(error_) : std::error_code{};
  }
  std::size_t offset() const noexcept { return pos_; }
  std::size_t remaining() const noexcept { return in_.size() - pos_; }

 private:
  bool take(std::size_t n) noexcept {
    if (failed()) return false;
    if (in_.size() - pos_ < n) {
      fail(errc::truncated);
      return false;
    }
    pos_ += n;
    return true;
  }

  // Network byte order (big-endian), as every integer in the protocol.
  std::uint32_t read_be(std::size_t n) noexcept {
    if (!take(n)) return 0;
    std::uint32_t value = 0;
    for (std::size_t i = pos_ - n; i < pos_; ++i) {
      value = (value << 8) | static_cast<unsigned char>(in_[i]);
    }
    return value;
  }

  std::span<const char> in_;
  std::size_t pos_ = 0;
  errc error_ = errc::ok;
};

// Reads the big-endian Int32 at the start of `in`; the caller guarantees 4 bytes.
inline std::uint32_t load_uint32(const char* in) noexcept {
  return (std::uint32_t{static_cast<unsigned char>(in[0])} << 24) |
         (std::uint32_t{static_cast<unsigned char>(in[1])} << 16) |
         (std::uint32_t{static_cast<unsigned char>(in[2])} << 8) |
         std::uint32_t{static_cast<unsigned char>(in[3])};
}

}  // namespace sluice::protocol
