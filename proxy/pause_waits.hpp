#pragma once
// The two waits of PAUSE: a session's, before it asks a paused pool for a server, and the
// console's, before PAUSE answers (until the paused pools lease no server).
//
// Both poll every 10 ms instead of being woken: a pause is rare and short, and polling keeps
// console_controls free of per-executor wake-up lists (an Asio timer must not be cancelled from
// another thread). The latency it adds after RESUME is at most one period.
#include <optional>
#include <string>
#include <string_view>

#include "proxy/asio.hpp"
#include "proxy/console_controls.hpp"
#include "proxy/pool_registry.hpp"

namespace sluice::proxy {

awaitable<void> wait_while_paused(const console_controls& controls, std::string_view database);

// nullopt: every pool.
awaitable<void> wait_until_released(const pool_registry& pools,
                                    std::optional<std::string> database);

}  // namespace sluice::proxy
