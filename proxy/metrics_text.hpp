#pragma once
// The Prometheus text exposition (format 0.0.4) of one admin_snapshot: a pure function, tested
// without sockets. Names follow Prometheus' conventions: counters end in _total, times are in
// seconds (_seconds), sizes in bytes (_bytes); per-pool series carry the labels database and
// user. The README lists every metric.
#include <string>

#include "proxy/admin_snapshot.hpp"

namespace sluice::proxy {

std::string render_metrics(const admin_snapshot& snapshot);

}  // namespace sluice::proxy
