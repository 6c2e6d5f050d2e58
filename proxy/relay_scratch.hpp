#pragma once
// The working memory of one relay (its output lists and gather buffers),
// recycled between leases on the same thread instead of being allocated for each one.
//
// Flow: a relay takes a scratch when a lease starts and gives it back when the lease ends.
// The pool is an Asio service of the session's io_context: one per worker thread, so taking
// and giving back need no lock, and the daemon holds no global state for it.
#include <cstddef>
#include <memory>
#include <vector>

#include "protocol/output_segments.hpp"
#include "proxy/asio.hpp"
#include "proxy/gathered_write.hpp"

namespace sluice::proxy {

struct relay_scratch {
  protocol::output_segments to_server, to_client;
  protocol::output_segments own_to_server;  // what the lease sends the server on its own
  gather_list server_buffers, client_buffers;
};

class relay_scratch_pool : public asio::execution_context::service {
 public:
  using key_type = relay_scratch_pool;
  static inline asio::execution_context::id id;

  explicit relay_scratch_pool(asio::execution_context& context)
      : asio::execution_context::service(context) {}

  // For the thread that runs `executor`'s context; the scratch must be given back there too.
  static relay_scratch_pool& of(const asio::any_io_executor& executor) {
    return asio::use_service<relay_scratch_pool>(asio::query(executor, asio::execution::context));
  }

  std::unique_ptr<relay_scratch> take() {
    if (free_.empty()) return std::make_unique<relay_scratch>();
    auto scratch = std::move(free_.back());
    free_.pop_back();
    return scratch;
  }

  void give_back(std::unique_ptr<relay_scratch> scratch) {
    // After shutdown() the context is going away (it destroys leftover coroutines, whose
    // relays give their scratch back here): free it at once instead of keeping it.
    if (shut_down_) return;
    // Bounded: a burst of a thousand concurrent leases does not pin a thousand scratches, and
    // an arena that grew for one huge rewritten message is not kept.
    if (free_.size() >= max_kept || scratch->to_server.arena_capacity() > max_arena_kept ||
        scratch->to_client.arena_capacity() > max_arena_kept)
      return;
    scratch->to_server.clear();
    scratch->to_client.clear();
    free_.push_back(std::move(scratch));
  }

  static constexpr std::size_t max_kept = 256;
  static constexpr std::size_t max_arena_kept = 64 * 1024;

 private:
  void shutdown() override {
    shut_down_ = true;
    free_.clear();
  }

  std::vector<std::unique_ptr<relay_scratch>> free_;
  bool shut_down_ = false;
};

}  // namespace sluice::proxy
