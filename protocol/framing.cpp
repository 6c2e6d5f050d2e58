#include "protocol/framing.hpp"

#include "protocol/byte_reader.hpp"
#include "protocol/errc.hpp"

namespace sluice::protocol {
namespace {

constexpr std::size_t typed_header_size = 5;     // Byte1 type + Int32 length.
constexpr std::uint32_t min_typed_length = 4;    // The length field counts itself.
constexpr std::uint32_t min_startup_length = 8;  // Int32 length + Int32 protocol/request code.

frame_result frame_error(errc e) {
  return {frame_status::error, {}, make_error_code(e)};
}

}  // namespace

header_result peek_header(std::span<const char> in, std::uint32_t max_length) {
  if (in.size() < typed_header_size) return {frame_status::need_more, {}, {}};
  const message_header header{in[0], load_uint32(in.data() + 1)};
  if (header.length < min_typed_length) {
    return {frame_status::error, header, make_error_code(errc::bad_length)};
  }
  if (header.length > max_length) {
    return {frame_status::error, header, make_error_code(errc::message_too_long)};
  }
  return {frame_status::complete, header, {}};
}

frame_result frame_message(std::span<const char> in, std::uint32_t max_length) {
  const header_result peeked = peek_header(in, max_length);
  if (peeked.status != frame_status::complete) {
    return {peeked.status, {}, peeked.error};
  }
  const std::size_t wire_size = peeked.header.wire_size();
  if (in.size() < wire_size) return {frame_status::need_more, {}, {}};
  const auto wire = in.first(wire_size);
  return {frame_status::complete, {peeked.header.type, wire.subspan(typed_header_size), wire}, {}};
}

frame_result frame_startup_packet(std::span<const char> in) {
  if (in.size() < 4) return {frame_status::need_more, {}, {}};
  const std::uint32_t length = load_uint32(in.data());
  if (length < min_startup_length) return frame_error(errc::bad_length);
  if (length > max_startup_packet_length) return frame_error(errc::message_too_long);
  if (in.size() < length) return {frame_status::need_more, {}, {}};
  const auto wire = in.first(length);
  return {frame_status::complete, {'\0', wire.subspan(4), wire}, {}};
}

}  // namespace sluice::protocol
