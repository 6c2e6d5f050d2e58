#pragma once
// Where a CancelRequest goes. Each client holds a key minted by sluice; while it runs a
// request on a server, the directory knows that server's real key and address, and only then.
//
// A cancel in flight pins the server to its client: PostgreSQL's postmaster signals the
// backend (and its process group) before it closes the cancel connection, so a server handed
// to another client too early would see that client's query cancelled. The session waits for
// pending_cancels() to reach zero before it gives a server back.
//
// Threads: sessions on any worker set and clear their own target; a CancelRequest arriving on
// any worker reads it. One mutex, held for a map operation, never across I/O.
#include <mutex>
#include <optional>
#include <unordered_map>

#include "pool/cancel_registry.hpp"
#include "proxy/asio.hpp"

namespace sluice::proxy {

struct cancel_target {
  stream_endpoint server;
  std::int32_t process_id = 0;
  std::int32_t secret_key = 0;
};

class cancel_directory {
 public:
  pool::backend_key enroll();                // a fresh key for a client that logged in
  void leave(const pool::backend_key& key);  // the client is gone
  void set_target(const pool::backend_key& key, std::optional<cancel_target> target);
  // The server to cancel, and a cancel counted as in flight; nullopt when nothing runs.
  std::optional<cancel_target> begin_cancel(const pool::backend_key& key);
  void end_cancel(const pool::backend_key& key);
  int pending_cancels(const pool::backend_key& key) const;

 private:
  mutable std::mutex mutex_;  // guards both maps
  pool::cancel_registry registry_;
  struct entry {
    std::optional<cancel_target> target;
    int pending = 0;  // cancels sent whose connection the postmaster has not closed yet
  };
  std::unordered_map<pool::client_token, entry> targets_;
  pool::client_token next_token_ = 1;
};

}  // namespace sluice::proxy
