#pragma once
// The injected clock for pool tests: a time_point the test advances by hand.
#include <chrono>

#include "pool/time.hpp"

namespace sluice::pool::testing {

struct fake_clock {
  // Far from the epoch, so subtracting a timeout or a recycle age never underflows.
  time_point now = time_point{} + std::chrono::hours{24 * 365};

  time_point advance(duration by) {
    now += by;
    return now;
  }
};

}  // namespace sluice::pool::testing
