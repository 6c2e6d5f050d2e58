#pragma once
// Prometheus metrics over HTTP: GET /metrics on listen.host:listen.metrics_port answers the
// text exposition format with what the admin console shows (pool servers by state, waiting
// clients, clients, prepared statements). Anything else gets 404. Each request is bounded in
// size and time; the endpoint never shows secrets or client addresses.
#include <functional>
#include <memory>
#include <string>

#include <spdlog/logger.h>

#include "proxy/admin_snapshot.hpp"
#include "proxy/asio.hpp"

namespace sluice::proxy {

// The exposition text for one snapshot (pure; tested without sockets).
std::string render_metrics(const admin_snapshot& snapshot);

// Serves until the acceptor is closed. `snapshot` is called once per scrape.
awaitable<void> serve_metrics(tcp::acceptor& acceptor, std::function<admin_snapshot()> snapshot,
                              std::shared_ptr<spdlog::logger> log);

}  // namespace sluice::proxy
