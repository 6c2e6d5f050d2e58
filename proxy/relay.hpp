#pragma once
// The relay between one client and the server it holds, for the length of one lease.
//
// Flow: two loops run on the session's strand, one per direction.
//   client → server: read bytes, walk message headers (bodies are forwarded by byte count),
//                    update the link state *before* writing, write the bytes on.
//   server → client: read bytes, walk headers, decode only ReadyForQuery, ParameterStatus,
//                    ErrorResponse and CopyInResponse, write the bytes on; at each
//                    ReadyForQuery ask the release policy whether the lease ends here.
// Because the client loop counts a Sync/Query before it sends it, a release can never be
// decided while a request is in flight: when the server loop releases, the client loop is
// parked in a read, which is cancelled without losing bytes (they stay in the buffer).
#include <cstdint>

#include "pool/release_policy.hpp"
#include "pool/session_params.hpp"
#include "proxy/asio.hpp"
#include "proxy/byte_buffer.hpp"
#include "proxy/server_connection.hpp"

namespace sluice::proxy {

enum class relay_end {
  released,          // the release policy handed the server back (transaction mode)
  client_gone,       // the client closed its socket or sent Terminate
  server_gone,       // the server closed or failed; the client was told
  client_violation,  // the client broke framing (bad length); it was told 08P01
};

class relay {
 public:
  relay(tcp::socket& client, byte_buffer& client_in, server_connection& server,
        pool::pool_mode mode, pool::session_params& client_params, std::uint32_t max_message_size);

  awaitable<relay_end> run();
  const pool::link_state& link() const { return link_; }
  bool server_reported_fatal() const { return server_fatal_; }

 private:
  awaitable<void> client_to_server();
  awaitable<void> server_to_client();
  void finish(relay_end why, tcp::socket& wake);

  // How far the bytes at the front of the buffer may be forwarded.
  struct scan_result {
    std::size_t forward = 0;  // bytes to write on
    bool stop = false;        // a Terminate (client) or a release point (server) was reached
    bool violation = false;   // a length field was invalid
  };
  scan_result scan_client(std::span<const char> bytes);
  scan_result scan_server(std::span<const char> bytes);
  void on_server_message(char type, std::span<const char> body);

  tcp::socket& client_;
  byte_buffer& client_in_;
  server_connection& server_;
  const pool::pool_mode mode_;
  pool::session_params& client_params_;
  const std::uint32_t max_message_size_;

  pool::link_state link_;
  std::size_t client_remaining_ = 0;  // bytes of the current client message still to forward
  std::size_t server_remaining_ = 0;  // bytes of the current server message still to forward
  bool finished_ = false;
  relay_end end_ = relay_end::released;
  bool server_fatal_ = false;       // the server sent a FATAL/PANIC ErrorResponse
  bool client_told_error_ = false;  // an ErrorResponse already reached the client
};

}  // namespace sluice::proxy
