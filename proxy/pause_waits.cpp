#include "proxy/pause_waits.hpp"

#include <chrono>

#include "proxy/server_pool.hpp"

namespace sluice::proxy {
namespace {

constexpr auto poll_period = std::chrono::milliseconds(10);

awaitable<void> sleep_one_period() {
  asio::steady_timer timer(co_await asio::this_coro::executor, poll_period);
  co_await timer.async_wait(use_nothrow);
}

}  // namespace

awaitable<void> wait_while_paused(const console_controls& controls, std::string_view database) {
  while (controls.paused(database)) co_await sleep_one_period();
}

awaitable<void> wait_until_released(const pool_registry& pools,
                                    std::optional<std::string> database) {
  for (;;) {
    bool leased = false;
    for (const auto& pool : pools.all())
      if (!database || pool->database().name == *database)
        leased = leased || pool->snapshot().active > 0;
    if (!leased) co_return;
    co_await sleep_one_period();
  }
}

}  // namespace sluice::proxy
