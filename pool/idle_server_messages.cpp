#include "pool/idle_server_messages.hpp"

#include "protocol/backend_messages.hpp"
#include "protocol/framing.hpp"
#include "protocol/message_types.hpp"

namespace sluice::pool {

idle_server_scan scan_idle_server_bytes(std::span<const char> bytes,
                                        std::uint32_t max_message_size) {
  namespace be = protocol::backend_type;
  idle_server_scan scan;
  while (scan.consumed < bytes.size()) {
    const auto framed = protocol::frame_message(bytes.subspan(scan.consumed), max_message_size);
    if (framed.status == protocol::frame_status::need_more) break;
    if (framed.status == protocol::frame_status::error) {
      scan.fit = false;
      break;
    }
    const auto& message = framed.message;
    switch (message.type) {
      case be::notice_response:
      case be::notification_response:
        break;
      case be::parameter_status:
        if (auto status = protocol::decode_parameter_status(message.body))
          scan.parameter_status.emplace_back(std::string(status->name), std::string(status->value));
        break;
      default:  // an ErrorResponse (a FATAL before it went) or anything unasked for
        scan.fit = false;
        return scan;
    }
    scan.consumed += message.wire.size();
  }
  return scan;
}

}  // namespace sluice::pool
