#pragma once
// The pool's notion of time. Pool logic never reads a clock: every call takes `now`, so the
// daemon passes clock::now() and tests pass a time_point they advance by hand.
#include <chrono>

namespace sluice::pool {

// steady_clock: pool deadlines must not jump when the wall clock is set.
using clock = std::chrono::steady_clock;
using time_point = clock::time_point;
// Milliseconds: the finest granularity any pool setting is configured in.
using duration = std::chrono::milliseconds;

}  // namespace sluice::pool
