#pragma once
// Sizing and timing of one server pool. Plain values with defaults; the config layer fills them
// and a reload hands a new copy to server_pool_fsm::update_limits().
#include <chrono>
#include <cstdint>
#include <optional>

#include "pool/time.hpp"

namespace sluice::pool {

struct pool_limits {
  // Servers the pool opens at most in normal operation (connecting ones count).
  std::uint32_t size = 20;
  // Servers kept open even when nobody uses them, so the first clients skip the connect cost.
  // Values above `size` act as `size`.
  std::uint32_t min_size = 0;
  // Extra servers allowed beyond `size` while the oldest waiter has waited `overflow_after`;
  // they are closed as soon as they would go idle.
  std::uint32_t overflow = 0;
  duration overflow_after = std::chrono::seconds{5};
  // A waiter still without a server after this is told so (the daemon answers 53300).
  duration timeout = std::chrono::seconds{30};
  // Servers older than this (since connect) are closed when next idle; nullopt = never.
  std::optional<duration> recycle = std::chrono::hours{1};
  // Servers idle this long are closed while more than `min_size` are open; nullopt = never.
  std::optional<duration> idle_timeout = std::chrono::minutes{10};
  // A server idle at least this long is pinged before a client gets it: 0 = always,
  // nullopt = never.
  std::optional<duration> pre_ping = std::chrono::seconds{30};
  // After a failed connect no new connect is started for this long; it doubles with each
  // further failed attempt up to `open_backoff_max` and resets on the first success. Keeps a
  // down server from being hammered by one connect per arriving client.
  duration open_backoff_initial = std::chrono::milliseconds{500};
  duration open_backoff_max = std::chrono::seconds{30};

  friend bool operator==(const pool_limits&, const pool_limits&) = default;
};

}  // namespace sluice::pool
