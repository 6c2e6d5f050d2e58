#pragma once
// What every client session, the admin console and the metrics share: the settings, and the
// registries and counters of the daemon, each safe to use from any worker thread.
#include <atomic>
#include <cstdint>
#include <memory>

#include <spdlog/logger.h>

#include "proxy/cancel_directory.hpp"
#include "proxy/client_directory.hpp"
#include "proxy/client_tls.hpp"
#include "proxy/config/settings.hpp"
#include "proxy/console_controls.hpp"
#include "proxy/credentials.hpp"
#include "proxy/daemon_counters.hpp"
#include "proxy/pool_registry.hpp"
#include "proxy/shared_statement_registry.hpp"

namespace sluice::proxy {

// What every session shares: read-only settings and thread-safe registries.
struct daemon_context {
  const config::settings& settings;
  const credential_store& credentials;
  pool_registry& pools;
  cancel_directory& cancels;
  shared_statement_registry& statements;
  client_directory& directory;  // every session, for SHOW CLIENTS
  daemon_counters& counters;    // failed logins, errors sent
  console_controls& controls;   // PAUSE, DISABLE and their opposites
  std::shared_ptr<spdlog::logger> log;
  client_tls* tls = nullptr;              // null when listen.tls.mode is disable
  std::atomic<std::uint32_t> clients{0};  // sessions alive, for max_clients
  // Set once the daemon drains (not implemented yet: the drain that will set it is another
  // change); /readyz then answers 503 so load balancers stop sending new clients.
  std::atomic<bool> draining{false};
};

}  // namespace sluice::proxy
