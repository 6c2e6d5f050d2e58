#pragma once
// The HTTP endpoint for Prometheus and load balancers, with Boost.Beast, on
// listen.host:listen.metrics_port:
//   GET|HEAD /metrics  the text exposition of one snapshot (metrics_text.hpp)
//   GET|HEAD /healthz  200 while the daemon runs (liveness)
//   GET|HEAD /readyz   200 unless it drains or a pool cannot reach its upstream, else 503
// Anything else is 404 (405 for another method). Connections are kept alive as HTTP/1.1 asks;
// every read and write has a deadline, and requests are capped in size. The endpoint never
// shows secrets or client addresses.
#include <functional>
#include <memory>

#include <spdlog/logger.h>

#include "proxy/admin_snapshot.hpp"
#include "proxy/asio.hpp"
#include "proxy/metrics_text.hpp"

namespace sluice::proxy {

// Serves until the acceptor is closed. `snapshot` is called once per request that needs one.
awaitable<void> serve_metrics(tcp::acceptor& acceptor, std::function<admin_snapshot()> snapshot,
                              std::shared_ptr<spdlog::logger> log);

}  // namespace sluice::proxy
