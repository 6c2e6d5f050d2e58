#pragma once
// What an idle server (parked in its pool, nobody's request outstanding) may say on its own,
// and whether it is still fit to serve.
//
// PostgreSQL sends some messages without being asked (protocol-flow "Asynchronous
// Operations"): a NoticeResponse, a ParameterStatus after a configuration reload, a
// NotificationResponse for a channel the session listens on. None of them is a sign of a dead
// server; a FATAL ErrorResponse (then EOF) is, and so is anything else, which no idle server
// should send. Notices and notifications go to nobody: the client they concerned is gone, and
// the next one never asked for them.
// https://www.postgresql.org/docs/15/protocol-flow.html#PROTOCOL-ASYNC
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace sluice::pool {

struct idle_server_scan {
  std::size_t consumed = 0;  // whole messages dealt with; a partial one stays for later
  bool fit = true;           // false: close the server
  // ParameterStatus values to record in the server's session.
  std::vector<std::pair<std::string, std::string>> parameter_status;
};

idle_server_scan scan_idle_server_bytes(std::span<const char> bytes,
                                        std::uint32_t max_message_size);

}  // namespace sluice::pool
